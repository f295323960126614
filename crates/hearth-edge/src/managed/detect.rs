//! The detectors behind the managed rules, each over one decoded value.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::{Regex, RegexSet};

use super::{Finding, Location};
use crate::rules::{RequestCtx, percent_decode};

fn re(p: &str) -> Regex {
    regex::RegexBuilder::new(p)
        .case_insensitive(true)
        .size_limit(1 << 22)
        .build()
        .unwrap_or_else(|e| panic!("managed rule pattern {p:?}: {e}"))
}

fn set(ps: &[&str]) -> RegexSet {
    regex::RegexSetBuilder::new(ps)
        .case_insensitive(true)
        .size_limit(1 << 24)
        .build()
        .unwrap_or_else(|e| panic!("managed rule patterns: {e}"))
}

/// Names of vulnerability scanners and attack tools as they appear in
/// their User-Agents.
static SCANNERS: LazyLock<aho_corasick::AhoCorasick> = LazyLock::new(|| {
    aho_corasick::AhoCorasickBuilder::new()
        .ascii_case_insensitive(true)
        .build([
            "nikto",
            "sqlmap",
            "nmap",
            "masscan",
            "zgrab",
            "acunetix",
            "nessus",
            "openvas",
            "w3af",
            "dirbuster",
            "gobuster",
            "wpscan",
            "nuclei",
            "arachni",
            "skipfish",
            "havij",
            "netsparker",
            "appscan",
            "webinspect",
            "paros",
            "zmeu",
            "morfeus",
            "jorgee",
            "fimap",
            "whatweb",
            "wfuzz",
            "grabber",
            "brutus",
            "bsqlbf",
            "commix",
            "joomscan",
            "nsauditor",
            "blackwidow",
            "httpx",
            "ffuf",
            "feroxbuster",
            "zap/",
            "burp",
            "(hydra",
            ".nasl",
            "pangolin",
            "absinthe",
            "sql power injector",
            "mysqloit",
            "webshag",
            "webvulnscan",
            "cgichk",
            "metis",
            "n-stealth",
            "vega/",
            "qualys",
            "struts-pwn",
            "jaascois",
            "sf/",
            "teh forest lobster",
        ])
        .unwrap_or_else(|e| panic!("scanner names: {e}"))
});

/// A scanner's User-Agent, or a request with an empty one.
pub(super) fn scanner(ctx: &RequestCtx<'_>) -> Option<Finding> {
    let ua = ctx.header("user-agent")?;
    let b = ua.as_bytes();
    let dirb = b.iter().enumerate().any(|(i, c)| {
        (*c | 0x20) == b'd'
            && b.get(i..i + 4)
                .is_some_and(|w| w.eq_ignore_ascii_case(b"dirb"))
            && !b
                .get(i + 4)
                .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
    });
    let ends =
        |tail: &[u8]| b.len() >= tail.len() && b[b.len() - tail.len()..].eq_ignore_ascii_case(tail);
    let old_ie =
        ends(b"mozilla/4.0 (compatible)") || ends(b"mozilla/4.0 (compatible; msie 6.0; win32)");
    (ua.is_empty() || dirb || old_ie || SCANNERS.is_match(ua)).then(|| Finding {
        rule: "scanner",
        location: Location::Header,
        name: "user-agent".into(),
        reason: "a vulnerability scanner's User-Agent",
    })
}

/// `%` not followed by two hex digits (or `%u` + four).
pub(super) fn bad_percent(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while let Some(p) = b[i..].iter().position(|&c| c == b'%') {
        let at = i + p;
        let hex2 = b
            .get(at + 1..at + 3)
            .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit));
        let uni = b.get(at + 1).is_some_and(|c| *c == b'u' || *c == b'U')
            && b.get(at + 2..at + 6)
                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit));
        if !hex2 && !uni {
            return true;
        }
        i = at + 1;
    }
    false
}

/// Bytes a query string never needs once decoded: control characters
/// other than tab and line ends, UTF-8 that does not decode (overlong
/// forms hide `/` and `.`), and `%u` escapes into the full-width range
/// that IIS folds onto ASCII.
pub(super) fn bad_query_bytes(query: &str) -> Option<&'static str> {
    let b = query.as_bytes();
    let mut raw = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if let Some(h) = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                && let Ok(v) = u8::from_str_radix(h, 16)
            {
                raw.push(v);
                i += 3;
                continue;
            }
            if matches!(b.get(i + 1), Some(b'u' | b'U'))
                && b.get(i + 2..i + 4)
                    .is_some_and(|h| h.eq_ignore_ascii_case(b"ff"))
            {
                return Some("a full-width %u escape in the query");
            }
        }
        raw.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    if raw
        .iter()
        .any(|&c| (c < 0x20 && !matches!(c, b'\t' | b'\n' | b'\r')) || c == 0x7f)
    {
        return Some("a control character in the query");
    }
    std::str::from_utf8(&raw)
        .is_err()
        .then_some("a query that is not valid UTF-8")
}

static TRAVERSAL: LazyLock<RegexSet> = LazyLock::new(|| {
    set(&[
        r"(^|[\\/\x22'=\s;:,])\.{2,3}[\\/]",
        r"\.\.;|;\.\.|\.\.%00",
        r"[\\/]\.{2,3}($|[\\/;?])",
        r"^\.{2,3}$",
        r"(^|[\\/=:])(etc[\\/](passwd|shadow|group|hosts|issue|motd|mysql|httpd|apache2|nginx|ssh|sudoers|crontab|security|letsencrypt|ssl[\\/]private|pki[\\/]tls[\\/]private)|proc[\\/](self|\d+)[\\/]|windows[\\/](win\.ini|system32|system\.ini)|boot\.ini|winnt[\\/]|inetpub[\\/]|\.htaccess|\.htpasswd|web\.config|wp-config\.php|\.git[\\/](config|head)|\.svn[\\/]|\.env$|\.bash_history|\.ssh[\\/]|id_rsa|etc[\\/]sub[ug]id|[\\/]sys[\\/](?:class|kernel|devices|module|fs)\b|\.docker[\\/]|\.kube[\\/]config|\.npmrc|\.bash_profile|\.bashrc|\.netrc|\.pgpass|\.my\.cnf|\.aws[\\/]credentials|/var/log/|\.\./\.\.)",
        r"(^|[\\/])(etc|proc|usr|var|windows|winnt|system32)[\\/].*(passwd|shadow|environ|cmdline|\.ini|\.log|\.conf)",
        r"(?:^|/)\.(?:claude|cursor|cursorrules|cursorignore|continue|aider|roo|zed|cline|clinerules|kiro|windsurf|windsurfrules|rovodev|opencode|plandex|n8n|junie|a0proj|fabric|aiignore|gemini|codex|copilot|amazonq|codeium|tabnine|vscode|idea|github/workflows|gitlab-ci|circleci|terraform|vagrant|docker|kube|aws|azure|gcloud|config/gcloud|ssh|gnupg)(?:/|$)",
        r"/proc/(?:self|\d+|interrupts|cpuinfo|meminfo|version|mounts|net|sched_debug|kallsyms|modules)\b|/sys/(?:class|kernel|devices|module|fs|firmware|power|block|bus)\b",
        r"\.(?:sql|sqlite|db|bak|old|backup|dump)\.(?:zip|gz|tgz|tar|bz2|7z|rar|xz)\b",
        // Vite's dev server serving any file through its virtual modules.
        r"(?:^|/)@id/__x00__",
    ])
});

static RFI: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^\s*(https?|ftps?|file|php|data|expect|gopher|dict|ldap|jar|zlib|glob|phar|ssh2|rar|ogg)://(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}|[^?#]*\?+$)|^\s*(https?|ftps?)://[^/]*@|^\s*(file|php|data|expect|gopher|dict|phar|zlib|glob)://",
    )
});

/// Shell commands whose names are not English words.
const UNIX_COMMANDS: &str = r"(?:tac|whoami|uname|wget|curl|ncat|netcat|bash|sh|zsh|ksh|csh|dash|python[23]?|perl|ruby|php|lua|node|nslookup|ifconfig|chmod|chown|grep|awk|sed|xargs|base64|openssl|telnet|ssh|scp|tftp|passwd|useradd|sudo|crontab|nohup|timeout|gzip|dd|mkfifo|mknod|socat|xterm|busybox|systemctl|whereis|xxd|hostname|sendmail|w3m|netstat|lsof|fuser|killall|pkill|vim|nano|gawk|powershell|pwsh|cmd|systeminfo|tasklist|taskkill|certutil|bitsadmin|wmic|cscript|wscript|mshta|rundll32|regsvr32|ipconfig|getmac|rsh|rlogin|nmap|gcc|svn|npm|pip)";

/// Commands whose names are not English words either, rarer ones: after a
/// separator they are a command whatever follows.
const TOOL_COMMANDS: &str = r"(?:chef-\w+|cscli|iwr|irm|regedit|rmt(?:-\w+)?|lastlogin|uconv|ssh-copy-id|pipx|c89|c99|g\+\+|clang|gdb|lldb|strace|ltrace|cpulimit|ansible(?:-\w+)?|python\d(?:\.\d+)?|gunzip|zcat|zstd|zstdcat|unzstd|bzip2|bunzip2|bzcat|unxz|xzcat|lz4|unlzma|unrar|bsdtar|cpio|mawk|nawk|irb|luajit|nodejs|deno|tclsh|rlwrap|tmux|setsid|stdbuf|unbuffer|taskset|ionice|chroot|runuser|pkexec|doas|kubectl|podman|crictl|nsenter|unshare|capsh|losetup|aria2c|smbclient|ldapsearch|redis-cli|base32|basenc|hexdump|uuencode|uudecode|gpg|journalctl|dmesg|lastlog|getent|usermod|userdel|visudo|pgrep|htop|poweroff|telinit|tcsh|rbash|apt-get|dpkg|dnf|pip3|npx|javac|jshell|jjs|jrunscript|mailx|iconv|xmllint|vmstat|iostat|printenv|setfacl|getfacl|chattr|lsattr|mkdir|rmdir|nsupdate|ssh-keygen|sshpass|openvpn|tcpdump|tshark|iptables|nft|modprobe|insmod|rmmod|lsmod|sysctl|ldconfig|ldd|objdump|readelf|gcore|pstree|byobu|msfconsole|msfvenom|ruby\d|perl\d|php\d|node\d*|aptitude|bcdboot|bcdedit|diskpart|icacls|cacls|takeown|schtasks|netsh|wevtutil|vssadmin|wbadmin|fsutil|cmdkey|nltest|dsquery|ntdsutil|mountvol|forfiles|robocopy|xcopy)";

/// A command opening a value in shapes the separator expressions do not
/// see: glued to a separator (`whoami;`), under a relative binaries
/// directory (`bin/visudo`), or Shellshock's empty function definition.
/// Apart from [`RCE`] so that clean values, which never start this way,
/// skip it after a byte test.
static RCE_OPENING: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"^\s*\(\s*\)\s*\{{|^(?:{UNIX_COMMANDS})(?:;|\|\|?|&&)|^(?:usr/(?:local/)?)?s?bin/(?:{UNIX_COMMANDS}|{TOOL_COMMANDS}|chef)(?:$|[\s;|&])"
    ))
});

fn rce_opening(v: &str) -> bool {
    let t = v.trim_start();
    (t.starts_with('(')
        || t.starts_with("bin/")
        || t.starts_with("sbin/")
        || t.starts_with("usr/")
        || t.contains([';', '|', '&']))
        && RCE_OPENING.is_match(v)
}

static RCE: LazyLock<RegexSet> = LazyLock::new(|| {
    // Commands whose names are also English words or initials ("cat",
    // "cd", "echo") count after a separator only when glued to it
    // (`;id`, `|cat`) or followed by an option or a path.
    let english = r"(?:top|cat|ls|id|who|ping|echo|ed|su|cd|dig|host|net|tar|zip|sleep|export|reg|ver|finger|kill|tee|cut|make|ps|ss|ip|cc|git|vi|java|wc|nl|od|halt|shutdown|reboot|type|dir|del|copy|time|date|more|less|head|tail|sort|find|set|mail|fetch|source|exec|eval|links|touch|which|service|env|printf|expr|jq|nc|rm|mv|cp|pwd|ftp|links|lynx|uniq|strings|diff)";
    let unix = UNIX_COMMANDS;
    let sep = r"(?:;|\|\|?|&&?|\n|\r|`|\$\(|\$\{IFS\}|%0a|%0d|\{)";
    // Commands whose names are not English words: after a separator
    // they are a command whatever follows.
    let tools = TOOL_COMMANDS;
    // English words that are also commands: only with a flag after.
    let words = r"(?:ex|at|go|perf|flock|watch|split|join|fold|free|yes|test|last|who|write|read|make|file|stat|column|paste|look|view|script|install|mount|route|arp|history|trap|wait|alias|unset|umask|ulimit|logger|env|set|time|nice|sort|head|tail|more|less|find|which|mail|type|date|mysql|psql|sqlite3|yum|rpm|apk|screen|expect|wall|python\d(?:\.\d+)?)";
    let first_word = format!(
        r"^\s*(?:[\w/\\.]*/)?(?:{unix}|{english}|{tools}|{words})\s+(?:-{{1,2}}\w|/|\.\.?/|~|\$)"
    );
    let tool_after_sep = format!(r"{sep}\s*(?:[\w/\\.]*/)?{tools}(?:$|[\s;|&<>`)$,{{]|/)");
    let word_after_sep = format!(r"{sep}\s*(?:{words}|{english})\s+(?:-{{1,2}}\w|\+|/|~|\$)");
    let prefix_tool = format!(
        r"^\s*(?:time|nohup|sudo|env|nice|exec|timeout|flock|strace|stdbuf|unbuffer|doas|command|builtin|xargs|watch|setsid)\s+(?:-\S+\s+)*(?:{unix}|{tools})\b"
    );
    // Prefixes that are not English words (nor `sudo`, as in "sudo make
    // me a sandwich") run any command after them.
    let prefix_any = format!(
        r"^\s*(?:nohup|strace|ltrace|stdbuf|unbuffer|doas|setsid|chroot\s+\S+|nsenter|unshare|runuser)\s+(?:-\S+\s+)*(?:{english}|{words})(?:$|[\s;|&])"
    );
    let first = format!(
        r"{sep}\s*(?:[\w/\\.]*/)?['\x22\\]*{unix}['\x22\\]*(?:$|[\s;|&<>`)$,{{]|\$\{{IFS|/)"
    );
    let english_glued = format!(r"{sep}(?:[\w/\\.]*/)?{english}(?:$|[\s;|&<>`)$,{{+]|\$\{{IFS|/)");
    let brace = format!(r"\{{\s*(?:{unix}|{english}),[^}}]*\}}");
    set(&[
        // A command after a separator, possibly with a path or quotes
        // splitting its name.
        first.as_str(),
        r"\$\((?:[^)]*)\)|`[^`]+`|[<>]\(\s*\w",
        r"(?:^|[\s;|&=])/?(?:[\w.-]*/)+[\w.-]*(?:\[[^\]/\s]{1,8}\]|\?{2,}|\*[\w.]*\*)[\w.\[\]?*!-]*",
        r"(?:^|[;|&\s])(?:iwmi|gwmi|wmic)\s|-argumentlist\b|\bwin32_process\b",
        first_word.as_str(),
        tool_after_sep.as_str(),
        word_after_sep.as_str(),
        prefix_tool.as_str(),
        prefix_any.as_str(),
        r"(?:^|[\s;|&])set\s+[-+]o\s+\w+",
        r"/[\w.]*[*?][\w.]*/",
        r"\bfor\b[^%\n]{0,120}%%?[\w\[~@]+\s+in\s*\([^)]*\)\s*do\b",
        r"\bfor\b[^\n]{0,160}?%%?[^\s%]{0,2}\s+in\s*\([^\n]*?\)\s*do\b",
        r"\bif\s*/i\s+[^\s=]+==",
        r"\bif\s+(?:/i\s+)?(?:not\s+)?(?:\S*%[\w~]+%?\S*\s*==|[^\s=]+==\S)",
        // A variable (empty to the shell) before the command.
        r"(?:;|\|\|?|&&?|\n|`|\$\()\s*(?:\$\w+\s+)+(?:cat|wget|curl|nc|bash|sh|id|ls|rm|python\d?|perl|php|whoami|uname|echo)\b",
        // SQLite's shell escape and a shell function definition.
        r"(?:^|[;\n])\s*\.(?:shell|system)\s",
        r"\b\w+\s*\(\)\s*\{[^}]*\}|(?:^|[\s;])[:.]\s*\(\)\s*\{",
        r"\$\{?shell\}?\s",
        r"\{\s*,[^}]*\}|\{[/?\w.*-]*[?*/][/?\w.*-]*,[^}]*\}",
        // IMAP and SMTP commands smuggled after a line break.
        r"[\r\n]\s*[a-z]?\d+\s+(?:authenticate|login|list|lsub|search|select|examine|create|delete|rename|fetch|store|copy|append|uid|capability|logout|starttls)\b|[\r\n]\s*(?:mail\s+from|rcpt\s+to|helo|ehlo)\b",
        r"\bif\s+(?:/i\s+)?(?:not\s+)?(?:exist|defined|errorlevel|cmdextversion)\b|\bif\s+.*\s(?:==|equ|neq|lss|leq|gtr|geq)\s+.*\b(?:echo|goto|call|cmd|set)\b",
        r"\balias\s+(?:[-+]\w+\s+)*[^\s=]+\s*=|(?:^|[;&|])\s*trap\s+\S.*\s(?:sig)?(?:exit|int|term|hup|err|debug|return|kill|quit|\d+)\b",
        r"\$\{IFS\}|\$IFS\$",
        // The shell's `~+`/`~-` (working directories) and `$[...]`.
        r"(?:^|[\s;|&`])~[+-]\d{0,2}(?:$|[\s;|&`/])|\$\[[^\]]*\]",
        brace.as_str(),
        english_glued.as_str(),
        r"(?:^|[\s;|&/\\])(?:/bin/|/usr/bin/|/usr/local/bin/|/sbin/)(?:\w+)",
        r"\(\)\s*\{[^}]*;\s*\}",
        r"(?:^|[;|&\s])(?:cmd(?:\.exe)?\s*/[ck]|powershell(?:\.exe)?\s+-|iex\s*\(|invoke-(?:expression|webrequest|command)|new-object\s+net\.webclient)",
        r"(?:>|>>|<)\s*/(?:dev/(?:tcp|udp)|tmp|etc|var)/",
        r"(?:^|[;|&])\s*[a-z]+\s*=\s*\S+\s*;\s*\$\w",
    ])
});

/// A system directory at the start of a header that is never a path.
static SYSTEM_PATH: LazyLock<Regex> =
    LazyLock::new(|| re(r"^\s*/(?:etc|proc|sys|dev|bin|sbin|usr|var|tmp|root|boot)/"));

/// A User-Agent that is a command line rather than a product token.
static UA_COMMAND: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^\s*['\x22]?(?:code=)?(?:ansible(?:-\w+)?|chef(?:-\w+)?|cscli|visudo|dd\s+\w+=|env|perf|time|set|sudo|nohup|bash|sh|zsh|cat|id|whoami|uname|ls|nc|ncat|netcat|ifconfig|ping|nslookup|python\d?|perl|ruby|php|echo|printf|kill|rm|chmod|systemctl|crontab)(?:['\x22]?\s+\S|\s*$)",
    )
});

static PHP: LazyLock<RegexSet> = LazyLock::new(|| {
    set(&[
        r"<\?=|<\?(?:php)?(?:[\s(]|$)",
        r"[\[{][/\\]?php[\]}]",
        r"(?:^|[^\w])(?:system|exec|shell_exec|passthru|popen|proc_open|pcntl_exec|eval|assert|preg_replace|create_function|call_user_func(?:_array)?|base64_decode|gzinflate|gzuncompress|str_rot13|file_get_contents|file_put_contents|fopen|fwrite|readfile|include|include_once|require|require_once|phpinfo|unserialize|highlight_file|show_source|move_uploaded_file|chr|ob_start|array_map|array_filter|usort|var_dump|print_r|posix_\w+|ini_set|ini_get|getenv|putenv|mail|dl|symlink|chmod|unlink|rename|copy|scandir|glob|opendir|parse_str|extract|compact|\$_(?:GET|POST|REQUEST|COOKIE|SERVER|FILES|ENV|SESSION)|\$GLOBALS)\s*(?:\(|\[|/\*)",
        r"(?:^|[;{}])\s*[OC]:\d+:\x22[\w\\]+\x22:\d+:\{",
        r"(?:^|[;{])\s*a:\d+:\{(?:[sibd]:\d+[:;])",
        r"\b(?:php|phar|zlib|glob|expect|data|zip|rar|ogg|ssh2\.\w+|compress\.zlib|compress\.bzip2)://",
        r"\$\s*\{\s*(?:['\x22]|\$)",
        r"\$\{?\w+\}?\s*\(\s*\$",
        r"\b(?:session_start|session_id|setcookie|header)\s*\(",
        r"\.(?:php\d?|phtml|phar)(?:$|[\s?#/])",
    ])
});

static JAVA: LazyLock<RegexSet> = LazyLock::new(|| {
    set(&[
        r"\$\{\s*(?:jndi|lower|upper|env|sys|java|date|main|bundle|ctx|spring|k8s|docker|log4j|base64|url|:-)",
        r"\$\{[^}]*\$\{",
        r"java\.(?:lang|io|net|util|beans|rmi)\.|javax\.|com\.sun\.|org\.apache\.|sun\.misc|runtime\s*\.\s*getruntime|getruntime\s*\(|processbuilder|class\.forname|\.getclass\s*\(|classloader|invoke\s*\(|getmethod\s*\(|newinstance\s*\(|defineclass",
        r"#(?:_memberaccess|context|request|session|application|parameters|attr)\b|@ognl|ognlcontext|xwork\.|\(#\w+=|%\{|#\{",
        r"<(?:java|object|void|new|string|array)\s[^>]*class=|xmldecoder|xstream|\bjava\.beans\.",
        r"\xac\xed\x00\x05|ro0ab|rO0AB|h4sia",
        r"\b(?:jdbc|rmi|ldaps?|iiop|corba|nds|nis|dns)://",
        r"\b(?:T\(|new\s+java|@java|\.exec\s*\()",
        r"\bjava\.\w*runtime\b|\bjava\.\w*processbuilder\b|processbuilder|clonetransformer|forclosure|invokertransformer|instantiatetransformer|chainedtransformer|whileclosure|\bruntime\b.{0,40}\bexec\b",
    ])
});

static GENERIC: LazyLock<RegexSet> = LazyLock::new(|| {
    set(&[
        r"\{\{.*\}\}|\{%.*%\}|\$\{\{|<%=?.*%>|#\{[^}]*\}|\{\$[a-z]",
        r"(?:__proto__|constructor\s*\[|constructor\.prototype|prototype\s*\[)",
        r"(?:require|import)\s*\(\s*['\x22](?:child_process|fs|net|os|vm|process)",
        r"\b(?:process\.(?:mainmodule|binding|env|exit|kill)|child_process|\.spawn\s*\(|\.execsync\s*\(|global\.process|this\.constructor)",
        r"\b(?:__import__|__builtins__|__globals__|__subclasses__|__class__|__mro__|__init__|os\.system|os\.popen|subprocess\.|eval\s*\(|exec\s*\(|compile\s*\(|getattr\s*\()",
        r"\b(?:Function\s*\(|setTimeout\s*\(\s*['\x22]|new\s+Function)",
        r"\b(?:string\.fromcharcode|\.constructor\s*\()",
        r"\b(?:fromcharcode|atob|btoa)\s*\(",
        r"\bconsole\s*(?:\.\s*\w+\s*(?:\(|\.call|\.apply)|\[)|\bprocess\s*\[|\bmodule\.exports\s*=|__js_function|\brequire\s*\(\s*['\x22]\w",
    ])
});

static XSS: LazyLock<RegexSet> = LazyLock::new(|| {
    set(&[
        r"<\s*/?\s*(?:script|iframe|frame|frameset|object|embed|applet|svg|math|style|link|meta|base|form|input|button|textarea|select|img|image|video|audio|source|body|html|marquee|isindex|details|dialog|template|xss|x|a|div|span|p|table|td|xml|vmlframe|bgsound|layer|ilayer|keygen|animate|set|handler|listener|portal|picture|noscript|title|h1)\b[^>]*(?:>|$|\s|/)",
        r"(?:^|[\s\x22'`/;<>])on[a-z]{3,}\s*=",
        r"(?:javascript|vbscript|livescript|mocha|data\s*:\s*text/html|data\s*:[^,]*base64)\s*:",
        r"(?:j\s*a\s*v\s*a\s*s\s*c\s*r\s*i\s*p\s*t|v\s*b\s*s\s*c\s*r\s*i\s*p\s*t)\s*:",
        r"\b(?:alert|prompt|confirm|eval|settimeout|setinterval|fetch|document\.write)\s*(?:\(|`)|document\s*\.\s*(?:cookie|domain|location|write)|window\s*\.\s*(?:location|open|name)|\.innerhtml\s*=|\blocation\s*(?:\.href)?\s*=",
        r"(?:expression|url)\s*\(\s*['\x22]?\s*(?:javascript|vbscript|expression)|-moz-binding|behavior\s*:",
        r"<!\[cdata\[|<!--.*-->|<\?xml|<!doctype|<!entity",
        r"\bsrcdoc\s*=|\bformaction\s*=|\bxlink:href\s*=|\bhref\s*=\s*['\x22]?\s*(?:javascript|data):",
        r"<[a-z][a-z0-9]*[^>]*\s(?:style|src|href|action|background|dynsrc|lowsrc|poster|data)\s*=",
        r"(?:\\u003c|\\x3c|&#x0*3c;?|&#0*60;?|&lt;)\s*(?:script|img|svg|iframe)",
        r"<[a-z][\w:-]*[^>]*\sxmlns(?::\w+)?\s*=",
    ])
});

/// Java gadget classes and struts internals by name.
static JAVA_EXTRA: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\bjava\.[\w.]*\b(?:runtime|processbuilder|classloader)\b|(?:clonetransformer|forclosure|instantiatefactory|instantiatetransformer|invokertransformer|prototypeclonefactory|prototypeserializationfactory|whileclosure|opensymphony|\bxwork2?\b|\bstruts2?\.|\borg\.omg\.)",
    )
});

/// Node, Perl and template engines executing code, prototype pollution,
/// and internal addresses written to dodge a blocklist (server-side
/// request forgery).
static GENERIC_EXTRA: LazyLock<RegexSet> = LazyLock::new(|| {
    set(&[
        r"@\{\s*\[",
        r"\bwhile\s*\(\s*(?:!|[-+]?infinity\b|true\s*\)\s*(?:;|\{|$))",
        // Loops on a value that is always true: numbers, objects,
        // constructors, `this`.
        r"\bwhile\s*\(+\s*(?:[-+]?[1-9]\d*|true|this|new\s+[a-z]\w*|string|object|number|boolean|symbol|date|\[\s*\]|\{\s*\})\s*\)+\s*(?:;|\{|$)",
        r"_\$\$nd_func\$\$_|__js_function",
        r"__proto__|\bconstructor\s*(?:\.|\[\s*['\x22]?)\s*prototype\b|\[\s*constructor\s*\]\s*\[\s*prototype\s*\]",
        // Hosts as one integer, hexadecimal, octal or short dotted forms.
        r"^\s*(?:[a-z][a-z0-9+._-]*://|(?:https?|ftps?|file|gopher|dict|ldap|imap|pop3|acap|irc|smb|tftp|local_file|netdoc):/?)(?:[^/@]*@)?(?:\d{8,}|0x[0-9a-f]+|(?:0x[0-9a-f]{1,2}|0[0-7]+)(?:\.(?:0x[0-9a-f]{1,2}|0[0-7]+|\d{1,3}))+|\d{1,3}\.\d{4,}|\d{1,3}\.\d{1,3}\.\d{4,}|\[[0-9a-f:.]*\]|0(?:\.0){0,3}|127(?:\.\d{1,3}){1,3}|169\.254\.169\.254|metadata\.google\.internal|100\.100\.100\.200)(?:[:/?#]|$)",
        r"(?:^|//|@)(?:localhost(?:\.localdomain)?|localhost[46](?:\.localdomain[46])?|ipv6-localhost|ip6-localhost|ip6-loopback|(?:host|gateway|kubernetes)\.docker\.internal|host\.containers\.internal|kubernetes\.default(?:\.svc)?|[\w.-]+\.svc\.cluster\.local|(?:[\w-]+\.)*(?:localtest\.me|lvh\.me|vcap\.me|lacolhost\.com)|(?:\d{1,3}\.){3}\d{1,3}\.(?:nip|sslip)\.io)(?::\d+)?(?:[/?#]|$)",
    ])
});

/// Django-style lookups (`field__startswith`) that let a client filter on
/// fields it should not see.
static ORM_LOOKUP: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\w__(?:i?startswith|i?endswith|i?contains|i?exact|i?regex|gte?|lte?|isnull|has_keys?|has_any_keys|range|in|search|year|month|day)$",
    )
});

/// PHP functions attacks use, called (`name(` or `name=(`), even glued to
/// other text.
static PHP_EXTRA: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?:call_user_func(?:_array)?|fsockopen|pfsockopen|gzdecode|gzinflate|gzuncompress|bzdecompress|zlib_decode|shell_exec|proc_open|proc_nice|proc_terminate|pcntl_exec|pcntl_fork|create_function|assert_options|posix_kill|posix_setuid|posix_getpwuid|str_rot13|convert_uudecode|hex2bin|filegroup|fileowner|fileperms|ftp_connect|curl_exec|curl_init|stream_socket_client|stream_get_contents|socket_create|highlight_file|show_source|php_uname|phpinfo|get_defined_vars|get_defined_functions|getmypid|getmyuid|ini_restore|apache_setenv|mb_ereg_replace|preg_replace_callback|register_shutdown_function|register_tick_function|set_error_handler|array_walk|array_map|iterator_apply|unserialize|var_export|unpack|readline_callback_handler_install|dl|escapeshellcmd|escapeshellarg)[\s=]*\(|\$+(?:\{[^}]*\}|[a-z_]\w*)(?:\s*(?:\[[^\]]*\]+|\{[^}]*\}))*\s*\(",
    )
});

/// PHP's own functions called: those of its extensions by prefix
/// (`sodium_`, `tidy_`, `posix_`...) and string and type functions
/// attacks chain, the English-looking ones only glued to their `(`.
static PHP_CALL: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?:^|[^\w$>:.])(?:(?:sodium|tidy|zend|mb|iconv|posix|pcntl|openssl|curl|ftp|socket|stream|proc|preg|gz|bz|zlib|mysqli?|pg|sqlite|ldap|xsl|simplexml|apache|ob|imap|gmp|bc|intl|spl|ini|highlight|escapeshell|get_defined|register_shutdown|set_error|set_exception|str_rot|convert_uu|base64|html_entity|htmlspecialchars|strip|add|var|func_get|call_user|is_callable|function|class|method)_\w+|gethostbyname[l]?|gethostbyaddr|stripslashes|addslashes|htmlspecialchars|urldecode|rawurldecode|strrev|strtoupper|strtolower|str_replace|substr_replace|chunk_split|intval|floatval|strval|boolval|settype|gettype|sprintf|vsprintf|printf)\s*\(|(?:^|[^\w$>:.])(?:crypt|md5|sha1|crc32|chr|ord|pack|implode|explode|serialize|constant|define|compact|extract)\(",
    )
});

/// PHP configuration directives set from a value (`name=value`), as
/// `php.ini` or `ini_set` would take them: the settings attacks change
/// (inclusion, wrappers, limits) and the dotted extension sections. The
/// short names that are also English words only when glued to their `=`.
static PHP_INI: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?:^|[\s;&\n])(?:allow_url_(?:fopen|include)|auto_(?:prepend|append)_file|open_basedir|disable_(?:functions|classes)|safe_mode\w*|register_globals|memory_limit|max_execution_time|max_input_time|extension_dir|sendmail_path|sendmail_from|include_path|user_dir|doc_root|upload_tmp_dir|file_uploads|display_errors|display_startup_errors|log_errors|error_log|error_reporting|short_open_tag|expose_php|unserialize_(?:max_depth|callback_func)|(?:opcache|mbstring|session|pcre|zend|xdebug|apc|apcu|mysqli|pdo_mysql|phar|assert|soap|zlib|sqlite3|curl|openssl|cgi|fastcgi|user_ini|mail|iconv|intl|ffi)\.[a-z_]+)\s*=|(?:^|[\s;&\n])(?:engine|extension|precision|smtp(?:_port)?)=",
    )
});

/// Server-side script and session files named in upload headers.
static UPLOAD_HEADER: LazyLock<Regex> = LazyLock::new(|| re(r"^x[-_.]?file[-_.]?name$"));
static SCRIPT_FILE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\.\s*(?:php\d*|phtml|phar|pht|phpt|phps|jsp|jspx|jspf|jsw|jsv|asp|aspx|ashx|asmx|cer|asa|cfm|cgi|pl|py|sh|war)[\s.]*$|(?:^|[\\/])sess_[\w,-]{8,}$|(?:^|[\\/])wp-config",
    )
});

/// The name of an uploaded file (a multipart part's `filename`, an
/// `X-Filename` header) that the server would run, or that overwrites a
/// session or the application's configuration. Spaces around the dot or
/// at the end are dropped by the file systems the upload lands on.
pub(super) fn script_file_name(name: &str) -> bool {
    !name.is_empty() && SCRIPT_FILE.is_match(&name.trim().to_lowercase())
}

/// SQL beyond the tokenizer's shapes: system objects and procedures,
/// functions called with no space before the bracket, aliases before
/// `FROM`, clauses after a table name, and JSON operators.
static SQL_MORE: LazyLock<RegexSet> = LazyLock::new(|| {
    set(&[
        r"\b(?:information_schema|pg_catalog|pg_class|pg_shadow|sysobjects|syscolumns|msysaccessobjects|msysobjects|tempdb|sqlite_master|sqlite_schema|all_tab_columns|user_tab_columns|schema_name|table_schema|xp_cmdshell|xp_dirtree|xp_regread|xp_fileexist|sp_executesql|sp_oacreate|sp_password|utl_http|utl_inaddr|openrowset|opendatasource|openquery|dbms_pipe|dbms_lock|msdb|northwind|master\.\.sysdatabases|mysql\.db|pg_toast|sqlite_temp_master|sys\.database_name|msysaccessstorage|msysmodules2?|msysqueries|msysrelationships)\b",
        r"(?:^|[^\w.])(?:abs|acos|asin|atan2?|ceil(?:ing)?|cos|cot|degrees|exp|ln|log(?:2|10)?|mod|pow(?:er)?|radians|round|sign|sin|sqrt|tan|date|day|dayname|dayofweek|dayofyear|hour|minute|month|quarter|second|week|year|yearweek|curdate|curtime|sysdate|utc_date|date_add|date_sub|datediff|date_format|str_to_date|from_unixtime|unix_timestamp|last_insert_id|row_count|found_rows|connection_id|current_user|session_user|system_user|decode|encode|compress|uncompress|aes_encrypt|aes_decrypt|des_encrypt|encrypt|password|old_password|sha2?|md5|crc32|insert|trim|lower|upper|length|char_length|octet_length|bit_length|make_set|export_set|format|quote|default|uuid|inet_aton|inet_ntoa|is_ipv4|name_const|get_lock|release_lock|is_free_lock|master_pos_wait|geometrycollection|multipoint|polygon|linestring|exp|json_keys|json_extract)\\?=?\(",
        r"\)\s*as\s+['\x22`]?[\w]+['\x22`]?\s+from\b|\b\d+\s+as\s+['\x22`][\w]+['\x22`]\s+from\b",
        r"\bselect\s*\(\s*case\b|\bhaving\s+\d+\s*[=<>]|\bfrom\s+[\w.`\x22\[\]]+\s+(?:group\s+by|order\s+by|where)\b|\border\s+by\b\s*$",
        r"'\s*[\[{].*[\]}]'\s*(?:->>?|#>>?|\?[|&]?|@>|<@)\s*",
        r"(?:^|\s)x?or\s+(?:\d+|'[^']*')\s*[<>]",
        r"^\s*(?:n?varchar|nchar|xp_\w+|sp_\w+)\s*$",
    ])
});

/// MongoDB query operators in an argument name (`user[$ne]=`) or a JSON
/// key, which turn an equality test into any other test.
static NOSQL: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?:\[\s*|^)\$(?:ne|eq|gte?|lte?|in|nin|regex|where|exists|or|and|nor|not|expr|elemmatch|all|size|mod|text|jsonschema|function|accumulator)\s*(?:\]|$)",
    )
});

/// A URL given to an argument named as a file-system location
/// (`_CONF[path]=https://...`): the application will include it.
static RFI_NAME: LazyLock<Regex> = LazyLock::new(|| {
    re(r"(?:^|[_\[.])(?:path|abs(?:olute)?_?path|base_?dir|root_?dir|dir|include|inc|root)\]?$")
});
static REMOTE_URL: LazyLock<Regex> = LazyLock::new(|| re(r"^\s*(?:https?|ftps?)://[^/?#\s]"));

/// A scheme alone before trailing `?`s (`http?`, `file:x?`), the shape
/// left when an inclusion URL is cut to dodge a suffix.
static RFI_TRAILING: LazyLock<Regex> =
    LazyLock::new(|| re(r"^\s*(?:file|ftps?|https?)(?::\S*)?\?+$"));

/// LDAP filters closed and reopened inside a value.
static LDAP: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\)\s*!?\s*\(\s*(?:[|&!]|[\w.-]+\s*[~<>]?=)|\)\s*\(\s*[|&]\s*\)?|\*\)\s*!?\(|\)\s*[|&]\s*\(\s*[\w.-]+\s*[~<>]?=",
    )
});

/// What a form field must not carry even though text areas have line
/// breaks: a header line that frames a response, or a second request.
static PROTO_ATTACK_BODY: LazyLock<RegexSet> = LazyLock::new(|| {
    set(&[
        r"[\r\n]\s*(?:content-(?:type|length)|set-cookie|transfer-encoding)\s*:",
        r"(?:get|post|head|put|delete|options|connect|trace|patch)\s+[^\s]+\s+http/\d",
    ])
});

/// Apache's `unix:` socket syntax before a proxied URL.
static UNIX_PROXY: LazyLock<Regex> = LazyLock::new(|| re(r"\bunix:[^|]*\|"));

/// `\uXXXX` written into a form value: a character spelled for a decoder
/// other than the form's.
static UNICODE_ESCAPE: LazyLock<Regex> = LazyLock::new(|| re(r"\\u[0-9a-f]{4}"));

/// A PHP function named by a string or a variable, or assembled from
/// pieces, then called: `("sys"."tem")("id")`, `(system)(ls)`.
fn php_dynamic_call(v: &str) -> bool {
    let code = remove_sql_comments(v);
    if !(code.contains(")(")
        || code.contains("\"(")
        || code.contains("'(")
        || code.contains(") (")
        || code.contains("](")
        || code.contains("} ("))
    {
        return false;
    }
    let squashed: String = code
        .chars()
        .filter(|c| {
            !matches!(
                c,
                '\'' | '"' | '.' | ' ' | '(' | ')' | '[' | ']' | '{' | '}' | '\t'
            )
        })
        .collect();
    PHP_DANGEROUS.is_match(&squashed)
}

static PHP_DANGEROUS: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"system|passthru|shell_exec|exec|popen|proc_open|pcntl_exec|assert|eval|create_function|call_user_func|base64_decode|file_get_contents|file_put_contents|include|require|phpinfo|unlink|fopen|readfile|string\w*system",
    )
});

/// What a Java deserialization exploit carries, looked for inside base64
/// text without decoding it: the serialization stream's magic bytes,
/// Node's serialized-function marker, and the gadget classes exploits
/// name (in lower case and as Java spells them).
const BASE64_NEEDLES: &[&[u8]] = &[
    b"\xac\xed\x00\x05",
    b"$$ND_FUNC$$",
    b"runtime",
    b"Runtime",
    b"processbuilder",
    b"ProcessBuilder",
    b"clonetransformer",
    b"CloneTransformer",
    b"forclosure",
    b"ForClosure",
    b"instantiatefactory",
    b"InstantiateFactory",
    b"instantiatetransformer",
    b"InstantiateTransformer",
    b"invokertransformer",
    b"InvokerTransformer",
    b"prototypeclonefactory",
    b"PrototypeCloneFactory",
    b"prototypeserializationfactory",
    b"PrototypeSerializationFactory",
    b"whileclosure",
    b"WhileClosure",
];

/// For each needle and each of the three byte offsets it can start at
/// inside a base64 group, the base64 characters that depend on the
/// needle's bytes alone: any base64 text whose decoding contains the
/// needle contains one of these strings, whatever surrounds it.
pub(super) static BASE64_SIGNATURE_LIST: LazyLock<Vec<String>> = LazyLock::new(|| {
    use base64::Engine as _;
    let mut sigs = Vec::new();
    for needle in BASE64_NEEDLES {
        for offset in 0..3usize {
            let mut bytes = vec![0u8; offset];
            bytes.extend_from_slice(needle);
            let text = base64::engine::general_purpose::STANDARD_NO_PAD.encode(&bytes);
            let (start_bit, end_bit) = (8 * offset, 8 * (offset + needle.len()));
            let first = start_bit.div_ceil(6);
            let last = end_bit / 6; // exclusive: char i covers bits 6i..6i+6
            if last > first + 3 {
                sigs.push(text[first..last].to_string());
                // The URL-safe alphabet spells 62 and 63 differently.
                sigs.push(text[first..last].replace('+', "-").replace('/', "_"));
            }
        }
    }
    sigs.sort();
    sigs.dedup();
    sigs
});

static BASE64_SIGNATURES: LazyLock<aho_corasick::AhoCorasick> = LazyLock::new(|| {
    aho_corasick::AhoCorasick::new(BASE64_SIGNATURE_LIST.iter())
        .unwrap_or_else(|e| panic!("base64 signatures: {e}"))
});

/// A serialized Java object or a gadget class inside base64 text.
fn base64_java(v: &str) -> bool {
    BASE64_SIGNATURES.is_match(v)
}

/// Characters a URL parser folds onto ASCII (circled and full-width
/// letters and digits, ideographic full stops) written as ASCII, and
/// backslashes dropped: `①②⑦.⓪.⓪.①`, `169。254。169。254` and
/// `\\l\\o\\c\\a\\l\\h\\o\\s\\t` are hosts too.
fn fold_host(s: &str) -> Cow<'_, str> {
    if s.is_ascii() && !s.contains('\\') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let n = c as u32;
        match n {
            0x5c => {}
            0x2460..=0x2468 => out.push(char::from(b'1' + (n - 0x2460) as u8)),
            0x24ea => out.push('0'),
            0x24b6..=0x24cf => out.push(char::from(b'a' + (n - 0x24b6) as u8)),
            0x24d0..=0x24e9 => out.push(char::from(b'a' + (n - 0x24d0) as u8)),
            0xff10..=0xff19 => out.push(char::from(b'0' + (n - 0xff10) as u8)),
            0xff21..=0xff3a => out.push(char::from(b'a' + (n - 0xff21) as u8)),
            0xff41..=0xff5a => out.push(char::from(b'a' + (n - 0xff41) as u8)),
            0x3002 | 0xff0e | 0xff61 => out.push('.'),
            _ => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// `\uXXXX` and `\xXX` escapes, as JavaScript and JSON read them.
fn js_unescape(s: &str) -> Cow<'_, str> {
    if !s.contains("\\u") && !s.contains("\\x") {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let tail = &rest[i + 1..];
        let (len, code) = if let Some(h) = tail.strip_prefix('u').and_then(|t| t.get(..4)) {
            (5, u32::from_str_radix(h, 16).ok())
        } else if let Some(h) = tail.strip_prefix('x').and_then(|t| t.get(..2)) {
            (3, u32::from_str_radix(h, 16).ok())
        } else {
            (0, None)
        };
        match code.and_then(char::from_u32) {
            Some(c) => {
                out.push(c);
                rest = &tail[len..];
            }
            None => {
                out.push('\\');
                rest = tail;
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// Script shapes beyond markup: tag names spelled with spaces, JSFuck,
/// bracketed access to the browser's globals, DOM writes, UTF-7 markup,
/// HTML components.
static XSS_EXTRA: LazyLock<RegexSet> = LazyLock::new(|| {
    set(&[
        r"<\s*(?:[a-z]\s+){2,}[a-z]",
        r"!\+?\[\]|\[\]\s*\+\s*\[\]|\+!!\[\]",
        r"\b(?:window|self|top|parent|globalthis|frames|document)\s*(?:/\*.*?\*/\s*)?\)?\s*\[\s*(?:/\*.*?\*/\s*)?['\x22`\\]",
        r"\bdocument\s*\.\s*(?:queryselector(?:all)?|getelementsby\w+|getelementbyid|body|createelement|forms|head|documentelement)\b|\.(?:textcontent|innertext|outerhtml|innerhtml)\s*=",
        r"<\??\s*import(?:\b|implementation)",
        r"!entity\s+(?:%\s*)?[\w.:-]+\s+(?:system|public)\b",
        r"<\s*[\w-]*:\s*(?:vmlframe|shape|imagedata|rect|oval|roundrect)\b",
        r"\+ad[w4]-",
    ])
});

static SESSION: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\.cookie\b.*;?\s*?\b(?:domain|expires)\s*=|\bhttp-equiv\b[\W]+set-cookie\b|^(?:jsessionid|aspsessionid|asp\.net_sessionid|phpsession|phpsessid|weblogicsession|session_id|session-id|cfid|cftoken|cfsid|jservsession|jwsession|laravel_session|connect\.sid|_flask_session|next-auth\.session-token|__(?:secure|host)-next-auth\.session-token|zend_session_id|shiny-token|meteor_login_token|rack\.session|play_session|sails\.sid|cakephp|ci_session|_session_id|sessionid|express\.sid|koa\.sess|koa:sess|symfony|_rails_session|wordpress_logged_in_\w*|shopify_session|phoenix_session|_gorilla_session)$",
    )
});

static PROTO_ATTACK: LazyLock<RegexSet> = LazyLock::new(|| {
    set(&[
        r"[\r\n]\s*(?:content-(?:type|length)|set-cookie|location|host|transfer-encoding|x-\w+|cookie)\s*:",
        r"(?:get|post|head|put|delete|options|connect|trace|patch)\s+[^\s]+\s+http/\d",
        r"^\s*http/\d\.\d\s+\d{3}",
        r"[\r\n]",
    ])
});

/// SQL shapes CRS's SQL rules flag at their first level beyond the
/// tokenizer: a call of a SQL function, NoSQL operators, PostgreSQL casts,
/// system tables and procedures, DDL statements.
static SQL_EXTRA: LazyLock<RegexSet> = LazyLock::new(|| {
    set(&[
        r"(?:^|[^\w.])(?:sleep|benchmark|ifnull|nullif|isnull|substr|substring|ascii|chr|concat|concat_ws|database|md5|sha1|unhex|coalesce|elt|find_in_set|group_concat|instr|lcase|ucase|lpad|rpad|ltrim|rtrim|locate|soundex|strcmp|extractvalue|updatexml|load_file|utl_inaddr|dbms_\w+|pg_\w+|json_\w+|jsonb_\w+|xp_\w+|sp_\w+|unistr|iif|waitfor|lo_(?:get|put|import|export|open|creat|create|unlink|from_bytea))\s*\(",
        r"(?:^|[^\w.])(?:count|now|pi|time|values|length\??|floor|rand|ord|char|version|user|schema|hex|bin|cast|convert|field|left|right|mid|position|repeat|replace|reverse|space|sum|avg|min|max|if\\?|exec|execute|declare|having|local)\(",
        r"^\$(?:ne|eq|gt|gte|lt|lte|in|nin|or|and|nor|not|where|regex|exists|expr|elemmatch|size|type|all|text|function|accumulator)$",
        r"(?:'|\)|\w)\s*::\s*(?:int\d?|integer|bigint|text|varchar|char|jsonb?|regclass|numeric|bool|boolean|bytea|oid|name)\b",
        r"\b(?:msdb|master\.\.|sysdatabases|sysusers|sysprocesses|information_schema|mysql\.(?:user|db)|pg_shadow|pg_user|all_tables|user_tables|dba_users|v\$version)\b|\bxp_\w+|\bsp_(?:executesql|oacreate|makewebtask|password|addlogin|configure)",
        r"\b(?:create|alter|drop|truncate|rename)\s+(?:table|database|schema|function|procedure|view|index|trigger|user|login)\b",
        r"\bgroup\s+by\b.+\bhaving\b|\border\s+by\s+\d+\s*(?:--|#|/\*|$)|\bunion\b.*\bselect\b|\bselect\b.*\bfrom\b.*\bwhere\b",
        r"(?:^|[\s'\x22(])(?:and|or|xor|&&|\|\|)\s*(?:'[^']*'|\d+)\s*(?:[=<>!]+|like|rlike|regexp)\s*(?:'[^']*'|\d+)",
        r"'\s*(?:;|--|#|/\*)|[\x22`]\s*(?:;\s*)?--|^\s*['\x22`]\s*(?:or|and|xor|union|having|group|order|like|rlike|regexp|is|not|div)\b",
    ])
});

static SQL_STRICT: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(?:select|union|insert|update|delete|drop|alter|exec|declare|having|where|order\s+by|group\s+by)\b.*(?:'|--|;|\(|\*|/\*|@)",
    )
});

/// The first rule that finds `value` hostile, with why.
pub(super) fn value(
    value: &str,
    loc: Location,
    name: &str,
    active: u64,
    prefilter: bool,
) -> Option<(&'static str, &'static str)> {
    let on = |id: &str| active & super::rule_bit(id) != 0;
    if value.is_empty() {
        return None;
    }
    // One pass for the bytes the checks below look for: a value without
    // them skips the decoding and those checks.
    let (mut pct, mut nul, mut dollar, mut line) = (false, false, false, false);
    for &b in value.as_bytes() {
        match b {
            b'%' => pct = true,
            0 => nul = true,
            b'$' => dollar = true,
            b'\n' | b'\r' => line = true,
            _ => {}
        }
    }
    // Double and triple encodings, `%u` escapes and overlong UTF-8 dots
    // collapse to what the application will finally see.
    let mut decoded = Cow::Borrowed(value);
    for _ in 0..3 {
        if !pct || !decoded.contains('%') {
            break;
        }
        let next = percent_decode(&unicode_escapes(&decoded), false);
        if next == *decoded {
            break;
        }
        decoded = Cow::Owned(next);
    }
    if pct {
        // Decoding may have brought any of them in.
        let b = decoded.as_bytes();
        nul = b.contains(&0);
        dollar = b.contains(&b'$');
        line = b.iter().any(|c| matches!(c, b'\n' | b'\r'));
    }
    let v = if nul {
        Cow::Owned(decoded.replace('\0', ""))
    } else {
        decoded
    };
    // The float that sends some parsers into an endless loop. (Cheap
    // tests before `on`, which runs for every value.)
    if v.len() > 20
        && v.contains("e-308")
        && v.contains("2.22507385850720")
        && matches!(
            loc,
            Location::Query | Location::Body | Location::ArgName | Location::Cookie
        )
        && on("generic")
    {
        return Some(("generic", "a floating-point value that hangs some parsers"));
    }
    if dollar
        && matches!(loc, Location::ArgName | Location::Query | Location::Body)
        && on("sqli")
        && NOSQL.is_match(&v)
    {
        return Some(("sqli", "a MongoDB query operator"));
    }
    if matches!(loc, Location::Query | Location::Body)
        && v.trim_start()
            .as_bytes()
            .get(..3)
            .is_some_and(|p| p.eq_ignore_ascii_case(b"htt") || p.eq_ignore_ascii_case(b"ftp"))
        && on("rfi")
        && REMOTE_URL.is_match(&v)
        && RFI_NAME.is_match(name)
    {
        return Some(("rfi", "a remote URL for a file-system argument"));
    }
    // A line break in the path splits the request or the headers behind it.
    if loc == Location::Path && line && on("protocol-attack") {
        return Some(("protocol-attack", "a line break in the path"));
    }
    // A User-Agent or Referer that is a file path: neither starts with `/`.
    if loc == Location::Header
        && matches!(name, "user-agent" | "referer")
        && v.trim_start().starts_with('/')
        && on("traversal")
        && SYSTEM_PATH.is_match(&v)
    {
        return Some(("traversal", "a system file path in a header"));
    }
    let upload_header = loc == Location::Header && name.starts_with('x') && name.contains("file");
    if upload_header && on("php") && UPLOAD_HEADER.is_match(name) && script_file_name(&v) {
        return Some((
            "php",
            "an uploaded file name of a server-side script, session or configuration",
        ));
    }
    if prefilter
        && !upload_header
        && !super::prefilter::needs_scan(&v, loc == Location::Header && name == "user-agent")
    {
        return None;
    }
    // Words, numbers and spaces can only be SQL keywords: the other
    // detectors all need punctuation.
    if v.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b' ' | b'_' | b'-'))
    {
        if on("sqli") && loc != Location::Header && SQL_MORE.is_match(&v.to_ascii_lowercase()) {
            return Some(("sqli", "SQL system objects, functions or clauses"));
        }
        if on("sqli") && v.contains(' ') && loc != Location::Header {
            if let Some(why) = super::sqli::detect(&v) {
                return Some(("sqli", why));
            }
            if SQL_EXTRA.is_match(&v) {
                return Some(("sqli", "SQL function, operator or statement"));
            }
        }
        if on("session-fixation")
            && matches!(loc, Location::Query | Location::Body | Location::ArgName)
            && SESSION.is_match(&v)
        {
            return Some(("session-fixation", "a session id set from the request"));
        }
        if on("rce") && loc == Location::Header && name == "user-agent" && UA_COMMAND.is_match(&v) {
            return Some(("rce", "a User-Agent that is a command line"));
        }
        if on("rce")
            && v.contains(' ')
            && (loc != Location::Header || matches!(name, "user-agent" | "referer"))
            && RCE.is_match(&v.to_ascii_lowercase())
        {
            return Some(("rce", "a shell command"));
        }
        if on("java") && v.len() >= 6 && base64_java(&v) {
            return Some(("java", "a serialized Java object or gadget class in base64"));
        }
        // `__proto__` and marshalled functions as a bare JSON key or value.
        if on("generic")
            && loc != Location::Header
            && v.contains("__")
            && GENERIC_EXTRA.is_match(&v.to_ascii_lowercase())
        {
            return Some((
                "generic",
                "code injection, prototype pollution or a request forgery target",
            ));
        }
        if on("generic") && loc == Location::ArgName && ORM_LOOKUP.is_match(&v) {
            return Some(("generic", "an ORM lookup operator in an argument name"));
        }
        return None;
    }
    let is_header = loc == Location::Header;
    let is_name = loc == Location::ArgName;
    if on("protocol")
        && matches!(loc, Location::Query | Location::Body)
        && v.contains("\\u")
        && UNICODE_ESCAPE.is_match(&v)
    {
        return Some(("protocol", "a \\u escape in an argument"));
    }
    let v = js_unescape(&v);
    let lower = v.to_lowercase();
    if on("java") && JAVA_EXTRA.is_match(&lower) || on("java") && v.len() >= 6 && base64_java(&v) {
        return Some(("java", "a Java gadget class or a serialized Java object"));
    }
    if on("generic") && !is_header && GENERIC_EXTRA.is_match(&fold_host(&lower)) {
        return Some((
            "generic",
            "code injection, prototype pollution or a request forgery target",
        ));
    }
    if on("generic") && is_name && ORM_LOOKUP.is_match(&lower) {
        return Some(("generic", "an ORM lookup operator in an argument name"));
    }
    if on("php") && !is_header && PHP_EXTRA.is_match(&lower) {
        return Some(("php", "a PHP function call"));
    }
    if on("php")
        && !is_header
        && lower.contains("/*")
        && PHP_EXTRA.is_match(&remove_sql_comments(&lower).replace(' ', ""))
    {
        return Some(("php", "a PHP function call"));
    }
    if on("php")
        && !is_header
        && loc != Location::Path
        && lower.contains('(')
        && PHP_CALL.is_match(&lower)
    {
        return Some(("php", "a PHP function call"));
    }
    if on("php") && !is_header && lower.contains('=') && PHP_INI.is_match(&lower) {
        return Some(("php", "a PHP configuration directive"));
    }
    if on("php") && !is_header && php_dynamic_call(&lower) {
        return Some(("php", "a PHP function called through a string or variable"));
    }
    if on("php") && is_header && UPLOAD_HEADER.is_match(name) && script_file_name(&lower) {
        return Some((
            "php",
            "an uploaded file name of a server-side script, session or configuration",
        ));
    }
    if on("sqli") && !is_header && SQL_MORE.is_match(&lower) {
        return Some(("sqli", "SQL system objects, functions or clauses"));
    }
    if on("protocol-attack") && !is_header && LDAP.is_match(&lower) {
        return Some(("protocol-attack", "an LDAP filter injection"));
    }
    let slashed = lower.replace('\\', "/");

    if on("traversal") && !is_header && TRAVERSAL.is_match(&slashed) {
        return Some(("traversal", "a path traversal or sensitive file"));
    }
    if on("traversal") && is_header && name != "referer" && slashed.contains("../") {
        return Some(("traversal", "a path traversal"));
    }
    if on("rfi")
        && !is_header
        && loc != Location::Path
        && lower.ends_with('?')
        && RFI_TRAILING.is_match(&lower)
    {
        return Some(("rfi", "a URL scheme before trailing question marks"));
    }
    if on("rfi") && !is_header && loc != Location::Path && RFI.is_match(&lower) {
        return Some(("rfi", "a remote file inclusion URL"));
    }
    if on("java") && JAVA.is_match(&v) {
        return Some(("java", "Java, JNDI or expression-language injection"));
    }
    if on("rce")
        && !is_header
        && lower.contains(['\'', '"', '$', '`', '<', '>', '\\', '^'])
        && super::prefilter::quoted_command(&lower, &remove_shell_quotes(&lower))
    {
        return Some(("rce", "a command name split by quotes"));
    }
    if on("rce") && name == "user-agent" && is_header && UA_COMMAND.is_match(&v) {
        return Some(("rce", "a User-Agent that is a command line"));
    }
    if on("rce") && (!is_header || name == "user-agent" || name == "referer" || v.contains("() {"))
    {
        let unescaped = remove_shell_quotes(&lower);
        // In a path only a separator makes a command, not a bare name.
        let separated = loc != Location::Path || unescaped.contains([';', '|', '`', '$', '\n']);
        if separated && (RCE.is_match(&unescaped) || rce_opening(&unescaped)) {
            return Some(("rce", "a shell command"));
        }
    }
    if on("php") && loc != Location::Path && PHP.is_match(&v) {
        return Some(("php", "PHP code or a PHP stream wrapper"));
    }
    if on("generic") && !is_name && GENERIC.is_match(&v) {
        return Some(("generic", "template or server-side code injection"));
    }
    if on("xss") {
        let html = html_decode(&v);
        if XSS.is_match(&html) || XSS_EXTRA.is_match(&html) {
            return Some(("xss", "HTML or script markup"));
        }
    }
    if on("sqli") && (!is_header || matches!(name, "user-agent" | "referer" | "x-forwarded-host"))
        || on("sqli") && loc == Location::Cookie
    {
        let squashed = remove_sql_comments(&v);
        if let Some(why) = super::sqli::detect(&squashed).or_else(|| super::sqli::detect(&v)) {
            return Some(("sqli", why));
        }
        if SQL_EXTRA.is_match(&squashed) {
            return Some(("sqli", "SQL function, operator or statement"));
        }
    }
    if on("session-fixation")
        && matches!(loc, Location::Query | Location::Body | Location::ArgName)
        && SESSION.is_match(&lower)
    {
        return Some(("session-fixation", "a session id set from the request"));
    }
    if on("protocol-attack")
        && (matches!(loc, Location::Query | Location::ArgName) || is_header)
        && PROTO_ATTACK.is_match(&v)
    {
        return Some(("protocol-attack", "header injection or request smuggling"));
    }
    if on("protocol-attack")
        && loc == Location::Body
        && (lower.contains("http/") || lower.contains(['\n', '\r']))
        && PROTO_ATTACK_BODY.is_match(&lower)
    {
        return Some((
            "protocol-attack",
            "a header line or a request line in a form field",
        ));
    }
    if on("protocol-attack") && !is_header && lower.contains("unix:") && UNIX_PROXY.is_match(&lower)
    {
        return Some(("protocol-attack", "a unix socket path before a proxied URL"));
    }
    if on("xss-strict") && v.contains('<') && v.contains('>') {
        return Some(("xss-strict", "HTML markup"));
    }
    if on("sqli-strict") && SQL_STRICT.is_match(&v) {
        return Some(("sqli-strict", "SQL keywords with SQL punctuation"));
    }
    None
}

/// `%uXXXX` (IIS) escapes as UTF-8 percent escapes.
fn unicode_escapes(s: &str) -> String {
    if !s.contains("%u") && !s.contains("%U") {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(['%']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let code = tail
            .get(2..6)
            .filter(|_| tail[1..].starts_with(['u', 'U']))
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .and_then(char::from_u32);
        match code {
            Some(c) => {
                out.push(c);
                rest = &tail[6..];
            }
            None => {
                out.push('%');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Drops the quoting tricks shells ignore (`c''at`, `c\at`, `c"a"t`).
fn remove_shell_quotes(s: &str) -> String {
    s.replace(['\'', '"', '\\', '^'], "")
        .replace("$@", "")
        .replace("$!", "")
        .replace("$$", "")
        .replace("${}", "")
        .replace("$*", "")
        .replace("$?", "")
        .replace("``", "")
        .replace("<()", "")
        .replace(">()", "")
}

fn remove_sql_comments(s: &str) -> String {
    if !s.contains("/*") {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("/*") {
        out.push_str(&rest[..i]);
        if rest[i..].starts_with("/*!") {
            out.push_str("/*!");
            rest = &rest[i + 3..];
            continue;
        }
        match rest[i + 2..].find("*/") {
            Some(j) => {
                out.push(' ');
                rest = &rest[i + 2 + j + 2..];
            }
            None => {
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Decodes HTML character references (`&#x3c;`, `&#60;`, `&lt;`, ...)
/// the way a browser would read an attribute.
fn html_decode(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let tail = &rest[i + 1..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '#'))
            .unwrap_or(tail.len());
        let ent = &tail[..end];
        let c = if let Some(num) = ent.strip_prefix("#x").or_else(|| ent.strip_prefix("#X")) {
            u32::from_str_radix(num, 16).ok().and_then(char::from_u32)
        } else if let Some(num) = ent.strip_prefix('#') {
            num.parse::<u32>().ok().and_then(char::from_u32)
        } else {
            match ent.to_ascii_lowercase().as_str() {
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "amp" => Some('&'),
                "colon" => Some(':'),
                "tab" => Some('\t'),
                "newline" => Some('\n'),
                "lpar" => Some('('),
                "rpar" => Some(')'),
                _ => None,
            }
        };
        match c {
            Some(c) if !ent.is_empty() => {
                out.push(c);
                let skip = end + usize::from(tail[end..].starts_with(';'));
                rest = &tail[skip..];
            }
            _ => {
                out.push('&');
                rest = tail;
            }
        }
    }
    out.push_str(rest);
    out
}
