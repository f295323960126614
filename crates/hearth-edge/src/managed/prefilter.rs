//! The prefilter: one pass over a decoded value that decides whether any
//! detector could match it, so that clean values (a browser's
//! User-Agent, a search word, a session cookie) skip the regular
//! expressions and the SQL tokenizer.
//!
//! A value needs the detectors when it has a byte outside the plain set
//! (letters, digits, space and `-_./():;,`): every detector that can
//! match plain text needs one of the literal triggers below, or a word
//! followed by `(`, or a command name as its first word, or the letters
//! of `javascript`/`vbscript` before a `:` with spaces between them.
//! The triggers are a superset: a trigger only means "look closer". The
//! corpus test checks that every verdict is the same with and without
//! the prefilter.

use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

/// How a trigger must sit in the value to count.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fit {
    /// Anywhere.
    Anywhere,
    /// With no word character (`[a-z0-9_]`) on either side.
    Word,
}

/// Substrings that detectors need on plain text (the expressions in
/// detect.rs and the tokenizer in sqli.rs), matched without regard to
/// case.
const ANYWHERE: &[&str] = &[
    // Comments and separators (`;` is handled apart: what follows it
    // counts as a first word).
    "--",
    "::",
    "..",
    "__",
    "/.",
    // Sensitive files and directories (traversal).
    "etc/",
    "proc/",
    "windows/",
    "win.ini",
    "boot.ini",
    "winnt/",
    "inetpub/",
    ".ht",
    "web.config",
    "wp-config",
    ".git",
    ".svn",
    ".env",
    ".bash",
    ".ssh",
    "id_rsa",
    "sys/",
    ".docker",
    ".kube",
    ".npmrc",
    ".netrc",
    ".pgpass",
    ".my.cnf",
    ".aws",
    "usr/",
    "var/",
    "bin/",
    // Schemes (remote inclusion, PHP wrappers, JNDI).
    "://0",
    "://1",
    "://2",
    "://3",
    "://4",
    "://5",
    "://6",
    "://7",
    "://8",
    "://9",
    "file:",
    "php:",
    "phar:",
    "zlib:",
    "glob:",
    "expect:",
    "data",
    "gopher:",
    "dict:",
    "jdbc:",
    "rmi:",
    "ldap",
    "iiop:",
    "corba:",
    "nds:",
    "nis:",
    "dns:",
    "compress.",
    ".ph",
    "http/",
    // Request forgery targets.
    "localhost",
    "localtest.me",
    "lvh.me",
    "vcap.me",
    "lacolhost",
    "containers.internal",
    "cluster.local",
    ".nip.io",
    ".sslip.io",
    "ip6-",
    "ipv6-",
    "docker",
    "kubernetes",
    "metadata",
    "169.254",
    "100.100.",
    // Java, Node, Python, templates.
    "java",
    "com.sun",
    "org.apache",
    "org.omg",
    ".sql",
    ".bak",
    ".backup",
    ".dump",
    ".db.",
    ".old.",
    "zip:",
    "rar:",
    "ogg:",
    "ssh2.",
    "sun.misc",
    "runtime",
    "processbuilder",
    "class.forname",
    "getclass",
    "classloader",
    "invoke",
    "getmethod",
    "newinstance",
    "defineclass",
    "ognl",
    "infinity",
    "xwork",
    "struts",
    "opensymphony",
    "xmldecoder",
    "xstream",
    "ro0ab",
    "h4sia",
    "transformer",
    "closure",
    "factory",
    "proto",
    "constructor",
    "process",
    "spawn",
    "execsync",
    "os.",
    "subprocess",
    "fromcharcode",
    "console",
    "module.exports",
    "js_function",
    // Scripts in HTML.
    "javascript",
    "vbscript",
    "livescript",
    "mocha",
    "alert",
    "prompt",
    "confirm",
    "eval",
    "settimeout",
    "setinterval",
    "fetch",
    "expression",
    "-moz-binding",
    "behavior",
    // Shell.
    "wmi",
    "argumentlist",
    "win32_process",
    "cmd",
    "powershell",
    "iex",
    "new-object",
    "shell",
    "system",
    "set",
    // Session names.
    "sess",
    "sid",
    "cfid",
    "cftoken",
    "token",
    "cakephp",
    "symfony",
    "wordpress_logged_in",
    // SQL objects and prefixes.
    "xp_",
    "sp_",
    "dbms_",
    "utl_",
    "pg_",
    "information_schema",
    "sysobjects",
    "syscolumns",
    "sysdatabases",
    "sysusers",
    "sysprocesses",
    "msysaccessobjects",
    "msysobjects",
    "tempdb",
    "sqlite_",
    "all_tab",
    "user_tab",
    "all_tables",
    "user_tables",
    "dba_users",
    "schema",
    "openrowset",
    "opendatasource",
    "openquery",
    "varchar",
    "nchar",
    "msdb",
    "master",
    "mysql.",
    "ctxsys",
    "northwind",
    "sqlite_temp",
    "sys.database",
    "msys",
];

/// Keywords the tokenizer and the expressions act on, as whole words.
/// Comparison words (`like`, `in`, `is`, `between`) and functions the
/// tokenizer only judges when called are left out: they count only
/// beside `or`/`and`, a quote or a `(`, which trigger on their own.
const WORDS: &[&str] = &[
    "alter",
    "analyse",
    "and",
    "begin",
    "benchmark",
    "call",
    "concat_ws",
    "create",
    "current_user",
    "db_name",
    "declare",
    "delay",
    "delete",
    "distinct",
    "drop",
    "dumpfile",
    "exec",
    "execute",
    "extractvalue",
    "false",
    "from",
    "geometrycollection",
    "grant",
    "group",
    "group_concat",
    "having",
    "if",
    "insert",
    "into",
    "json_keys",
    "linestring",
    "load",
    "load_file",
    "make_set",
    "multipoint",
    "name_const",
    "not",
    "null",
    "nvarchar",
    "or",
    "order",
    "outfile",
    "pg_read_file",
    "pg_sleep",
    "polygon",
    "procedure",
    "randomblob",
    "regexp",
    "rename",
    "replace",
    "revoke",
    "rlike",
    "select",
    "session_user",
    "shutdown",
    "sleep",
    "sys_eval",
    "sys_exec",
    "table",
    "then",
    "true",
    "truncate",
    "unhex",
    "union",
    "update",
    "updatexml",
    "user_name",
    "values",
    "waitfor",
    "when",
    "where",
    "with",
    "xmltype",
    "xor",
    "document",
    "window",
];

/// Commands the anchored shell expressions (a command line as the whole
/// value or the User-Agent) look for first.
const FIRST_WORDS: &[&str] = &[
    "cat",
    "top",
    "tac",
    "nl",
    "ls",
    "id",
    "whoami",
    "uname",
    "wget",
    "curl",
    "nc",
    "ncat",
    "netcat",
    "bash",
    "sh",
    "zsh",
    "ksh",
    "csh",
    "dash",
    "python",
    "perl",
    "ruby",
    "php",
    "lua",
    "node",
    "nslookup",
    "ping",
    "ifconfig",
    "ip",
    "ps",
    "kill",
    "chmod",
    "chown",
    "rm",
    "mv",
    "cp",
    "echo",
    "printf",
    "env",
    "set",
    "export",
    "sleep",
    "head",
    "tail",
    "more",
    "less",
    "grep",
    "awk",
    "sed",
    "find",
    "xargs",
    "base64",
    "openssl",
    "telnet",
    "ssh",
    "scp",
    "ftp",
    "tftp",
    "dig",
    "host",
    "passwd",
    "useradd",
    "su",
    "sudo",
    "crontab",
    "nohup",
    "timeout",
    "tar",
    "zip",
    "gzip",
    "dd",
    "mkfifo",
    "mknod",
    "socat",
    "xterm",
    "busybox",
    "systemctl",
    "service",
    "which",
    "whereis",
    "touch",
    "tee",
    "od",
    "xxd",
    "strings",
    "cut",
    "sort",
    "uniq",
    "wc",
    "diff",
    "hostname",
    "pwd",
    "cd",
    "mail",
    "sendmail",
    "lynx",
    "links",
    "w3m",
    "net",
    "netstat",
    "ss",
    "lsof",
    "fuser",
    "killall",
    "pkill",
    "shutdown",
    "reboot",
    "halt",
    "exec",
    "eval",
    "source",
    "vi",
    "vim",
    "nano",
    "ed",
    "expr",
    "gawk",
    "jq",
    "fetch",
    "powershell",
    "pwsh",
    "cmd",
    "systeminfo",
    "tasklist",
    "taskkill",
    "reg",
    "certutil",
    "aptitude",
    "bcdboot",
    "bcdedit",
    "diskpart",
    "icacls",
    "cacls",
    "takeown",
    "schtasks",
    "netsh",
    "wevtutil",
    "vssadmin",
    "wbadmin",
    "fsutil",
    "cmdkey",
    "nltest",
    "dsquery",
    "ntdsutil",
    "mountvol",
    "forfiles",
    "robocopy",
    "xcopy",
    "bitsadmin",
    "wmic",
    "cscript",
    "wscript",
    "mshta",
    "rundll32",
    "regsvr32",
    "type",
    "dir",
    "del",
    "copy",
    "ipconfig",
    "getmac",
    "ver",
    "time",
    "date",
    "finger",
    "rsh",
    "rlogin",
    "nmap",
    "java",
    "gcc",
    "cc",
    "make",
    "git",
    "svn",
    "npm",
    "pip",
    "c89",
    "c99",
    "g++",
    "clang",
    "gdb",
    "lldb",
    "strace",
    "ltrace",
    "cpulimit",
    "ansible",
    "gunzip",
    "zcat",
    "zstd",
    "zstdcat",
    "unzstd",
    "bzip2",
    "bunzip2",
    "bzcat",
    "unxz",
    "xzcat",
    "lz4",
    "unlzma",
    "unrar",
    "bsdtar",
    "cpio",
    "mawk",
    "nawk",
    "irb",
    "luajit",
    "nodejs",
    "deno",
    "tclsh",
    "rlwrap",
    "tmux",
    "setsid",
    "stdbuf",
    "unbuffer",
    "taskset",
    "ionice",
    "chroot",
    "runuser",
    "pkexec",
    "doas",
    "kubectl",
    "podman",
    "crictl",
    "nsenter",
    "unshare",
    "capsh",
    "losetup",
    "aria2c",
    "smbclient",
    "ldapsearch",
    "redis-cli",
    "base32",
    "basenc",
    "hexdump",
    "uuencode",
    "uudecode",
    "gpg",
    "journalctl",
    "dmesg",
    "lastlog",
    "getent",
    "usermod",
    "userdel",
    "visudo",
    "pgrep",
    "htop",
    "poweroff",
    "telinit",
    "tcsh",
    "rbash",
    "apt-get",
    "dpkg",
    "dnf",
    "pip3",
    "npx",
    "javac",
    "jshell",
    "jjs",
    "jrunscript",
    "mailx",
    "iconv",
    "xmllint",
    "vmstat",
    "iostat",
    "printenv",
    "setfacl",
    "getfacl",
    "chattr",
    "lsattr",
    "mkdir",
    "rmdir",
    "nsupdate",
    "ssh-keygen",
    "sshpass",
    "openvpn",
    "tcpdump",
    "tshark",
    "iptables",
    "nft",
    "modprobe",
    "insmod",
    "rmmod",
    "lsmod",
    "sysctl",
    "ldconfig",
    "ldd",
    "objdump",
    "readelf",
    "gcore",
    "pstree",
    "byobu",
    "msfconsole",
    "msfvenom",
    "ex",
    "at",
    "go",
    "perf",
    "flock",
    "watch",
    "split",
    "join",
    "fold",
    "free",
    "yes",
    "test",
    "last",
    "who",
    "write",
    "read",
    "file",
    "stat",
    "column",
    "paste",
    "look",
    "view",
    "script",
    "install",
    "mount",
    "route",
    "arp",
    "history",
    "trap",
    "wait",
    "alias",
    "unset",
    "umask",
    "ulimit",
    "logger",
    "nice",
    "mysql",
    "psql",
    "sqlite3",
    "yum",
    "rpm",
    "apk",
    "screen",
    "expect",
    "wall",
    "chef",
    "cscli",
    "iwr",
    "irm",
    "regedit",
    "rmt",
    "lastlogin",
    "uconv",
    "pipx",
    "command",
    "builtin",
    "code",
];

struct Triggers {
    /// `ANYWHERE` and `WORDS`, searched over the whole value.
    ac: AhoCorasick,
    fit: Vec<Fit>,
    /// `FIRST_WORDS`, tried only where a command can start.
    first: AhoCorasick,
}

static TRIGGERS: LazyLock<Triggers> = LazyLock::new(|| {
    let mut pats: Vec<&str> = Vec::new();
    let mut fit = Vec::new();
    for (list, f) in [(ANYWHERE, Fit::Anywhere), (WORDS, Fit::Word)] {
        for p in list {
            pats.push(p);
            fit.push(f);
        }
    }
    // Gadget classes and serialized objects inside base64 text.
    for sig in super::detect::BASE64_SIGNATURE_LIST.iter() {
        pats.push(sig);
        fit.push(Fit::Anywhere);
    }
    // A scheme without `//` before a numeric host (`http:2852039166`).
    let schemes: Vec<String> = [
        "http",
        "https",
        "ftp",
        "ftps",
        "file",
        "gopher",
        "dict",
        "ldap",
        "imap",
        "pop3",
        "acap",
        "irc",
        "smb",
        "tftp",
        "local_file",
        "netdoc",
    ]
    .iter()
    .flat_map(|s| (0..10).flat_map(move |d| [format!("{s}:{d}"), format!("{s}:/{d}")]))
    .collect();
    for sch in &schemes {
        pats.push(sch);
        fit.push(Fit::Anywhere);
    }
    pats.push("local_file");
    fit.push(Fit::Anywhere);
    // `1.e.tables`: a number in scientific notation before a name.
    let sci: Vec<String> = (0..10).map(|d| format!("{d}.e.")).collect();
    for p in &sci {
        pats.push(p);
        fit.push(Fit::Anywhere);
    }
    let ac = AhoCorasickBuilder::new()
        .kind(Some(aho_corasick::AhoCorasickKind::DFA))
        .ascii_case_insensitive(true)
        .match_kind(MatchKind::Standard)
        .build(&pats)
        .unwrap_or_else(|e| panic!("prefilter triggers: {e}"));
    let first = AhoCorasickBuilder::new()
        .kind(Some(aho_corasick::AhoCorasickKind::DFA))
        .ascii_case_insensitive(true)
        .match_kind(MatchKind::LeftmostLongest)
        .start_kind(aho_corasick::StartKind::Anchored)
        .build(FIRST_WORDS)
        .unwrap_or_else(|e| panic!("prefilter commands: {e}"));
    Triggers { ac, fit, first }
});

/// Whether a command name starts at `at` and ends where a letter cannot
/// follow (`python3`, `ansible-playbook`, `cat/etc` count; `shoes` does
/// not). The longest name wins, so a shorter one inside it is not missed.
fn command_at(t: &Triggers, v: &str, at: usize) -> bool {
    let input = aho_corasick::Input::new(v)
        .span(at..v.len())
        .anchored(aho_corasick::Anchored::Yes);
    t.first.find(input).is_some_and(|m| {
        !v.as_bytes()
            .get(m.end())
            .is_some_and(u8::is_ascii_alphabetic)
    })
}

/// The plain bytes: letters, digits, space and `-_./():;,`.
static PLAIN: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b' ' | b'-' | b'_' | b'.' | b'/' | b'(' | b')' | b':' | b';' | b','
            );
        i += 1;
    }
    t
};

// Byte classes for `needs_scan`'s single pass.
const PLAIN_BYTE: u8 = 1;
const PAREN: u8 = 2;
const COLON: u8 = 4;
const SPACED: u8 = 8;
const DIGIT: u8 = 16;

static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        let mut k = if PLAIN[i] { PLAIN_BYTE } else { 0 };
        match b {
            b'(' => k |= PAREN,
            b':' => k |= COLON,
            b' ' | b';' => k |= SPACED,
            _ => {}
        }
        if b.is_ascii_digit() {
            k |= DIGIT;
        }
        t[i] = k;
        i += 1;
    }
    t
};

fn word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Whether `v` (decoded) needs the detectors.
pub(super) fn needs_scan(v: &str, user_agent: bool) -> bool {
    let b = v.as_bytes();
    // One table load per byte gathers every class the checks below need:
    // `any` has a class some byte is in, `all` one every byte is in.
    let (mut any, mut all) = (0u8, PLAIN_BYTE | DIGIT);
    for &c in b {
        let k = CLASS[usize::from(c)];
        any |= k;
        all &= k;
    }
    if all & PLAIN_BYTE == 0 {
        return true;
    }
    if all & DIGIT != 0 {
        return false;
    }
    let (paren, colon, spaced) = (any & PAREN != 0, any & COLON != 0, any & SPACED != 0);
    if b.first() == Some(&b'.') {
        return true;
    }
    // A word right before `(`: a function call.
    if paren {
        for (i, _) in b.iter().enumerate().filter(|(_, c)| **c == b'(') {
            let mut j = i;
            // `day. (`: MySQL reads a call through a dot and spaces.
            while j > 0 && matches!(b[j - 1], b' ' | b'.') {
                j -= 1;
            }
            let start = b[..j]
                .iter()
                .rposition(|c| !word_byte(*c))
                .map_or(0, |p| p + 1);
            if b[start..j]
                .iter()
                .any(|c| c.is_ascii_alphabetic() || *c == b'_')
            {
                return true;
            }
        }
    }
    if colon && spaced_scheme(b) {
        return true;
    }
    let t = &*TRIGGERS;
    // The first word, after leading space and any directory part, and
    // each word after a `;`: a command's place.
    // The shell expressions that start from a command need a space or a
    // `;` after it, except a User-Agent that is only a command.
    let mut at = 0;
    let mut more = spaced || user_agent;
    while more {
        let lead = at
            + b[at..]
                .iter()
                .position(|c| *c != b' ')
                .unwrap_or(b.len() - at);
        let end = b[lead..]
            .iter()
            .position(|c| matches!(c, b' ' | b';'))
            .map_or(b.len(), |p| lead + p);
        if lead < b.len() && command_at(t, v, lead) {
            return true;
        }
        if let Some(p) = b[lead..end].iter().rposition(|c| *c == b'/')
            && command_at(t, v, lead + p + 1)
        {
            return true;
        }
        match b[at..].iter().position(|c| *c == b';') {
            Some(p) => at += p + 1,
            None => more = false,
        }
    }
    // Most clean values hold no trigger at all, and a plain search says
    // so faster than the overlapping one that checks word edges.
    if !t.ac.is_match(v) {
        return false;
    }
    for m in t.ac.find_overlapping_iter(v) {
        match t.fit[m.pattern().as_usize()] {
            Fit::Anywhere => return true,
            Fit::Word => {
                let before = m.start().checked_sub(1).map(|i| b[i]);
                let after = b.get(m.end()).copied();
                if !before.is_some_and(word_byte) && !after.is_some_and(word_byte) {
                    return true;
                }
            }
        }
    }
    false
}

/// Whether a quote split the command name that starts `unquoted` (the
/// value with its shell quotes removed): `'wh'oami`, `c"ur"l -s`. Names
/// under four letters are left out, or "I'd" would read as `id`.
pub(super) fn quoted_command(quoted: &str, unquoted: &str) -> bool {
    let t = &*TRIGGERS;
    let lead = unquoted.len() - unquoted.trim_start().len();
    let input = aho_corasick::Input::new(unquoted)
        .span(lead..unquoted.len())
        .anchored(aho_corasick::Anchored::Yes);
    let Some(m) = t.first.find(input) else {
        return false;
    };
    let name = &unquoted[m.start()..m.end()];
    let b = unquoted.as_bytes();
    name.len() >= 4
        && !b.get(m.end()).is_some_and(u8::is_ascii_alphanumeric)
        && (!quoted.trim_start().starts_with(name) || shell_no_op(quoted))
}

/// Tokens the shell reads as nothing, which only an attempt to hide a
/// command puts in a value: empty quotes and backticks, `$@`, `$*`,
/// `${}`, empty process substitutions.
fn shell_no_op(v: &str) -> bool {
    ["``", "$@", "$*", "${}", "<()", ">()", "''", "\"\""]
        .iter()
        .any(|t| v.contains(t))
}

/// `j a v a s c r i p t :` and `vbscript` spelled with spaces before a
/// colon.
fn spaced_scheme(b: &[u8]) -> bool {
    // The letters before the colon, last first, spaces left out.
    let spelled = |i: usize, word: &[u8]| {
        let mut letters = b[..i].iter().rev().filter(|c| **c != b' ');
        word.iter()
            .all(|w| letters.next().is_some_and(|c| c.to_ascii_lowercase() == *w))
    };
    b.iter()
        .enumerate()
        .any(|(i, c)| *c == b':' && (spelled(i, b"tpircsavaj") || spelled(i, b"tpircsbv")))
}

#[cfg(test)]
mod tests {
    use super::needs_scan;

    #[test]
    fn a_browsers_head_passes_without_a_scan() {
        for v in [
            "/",
            "shoes",
            "page",
            "2",
            "ab12cd34ef56",
            "dark",
            "cart_id",
            "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
            "https://example.com/products/shoes",
        ] {
            assert!(!needs_scan(v, true), "{v}");
        }
    }

    #[test]
    fn attack_shapes_need_a_scan() {
        for v in [
            "1 union select 2",
            "; cat /etc/passwd",
            "x; id",
            "javascript:alert(1)",
            "j a v a s c r i p t:x",
            "sleep (5)",
            "../../x",
            "http://2852039166/",
            "whoami -a",
            "/bin/ls -la",
            "a;/usr/bin/id",
            "1 or true",
            "<b>",
        ] {
            assert!(needs_scan(v, false), "{v}");
        }
        // A User-Agent that is only a command.
        assert!(needs_scan("visudo", true));
        assert!(!needs_scan("visudo", false));
    }
}
