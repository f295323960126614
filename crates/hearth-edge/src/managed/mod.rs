//! Managed rules: attack detection over every part of a request a worker
//! reads (path, query arguments, cookies, headers, form/JSON/multipart
//! bodies), after decoding the encodings attackers use to hide.
//!
//! Each rule has an id (`sqli`, `xss`, ...), a category and a paranoia
//! level; a rule runs when its level is at most the configured one. Rules
//! are switched off by id, or skipped for requests an exclusion expression
//! matches.

mod detect;
mod policy;
mod prefilter;
pub mod sqli;

pub use policy::Policy;

use std::borrow::Cow;

use crate::rules::{Expr, RequestCtx, form_pairs, percent_decode, percent_decode_cow};

/// Where a value was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    Path,
    Query,
    ArgName,
    Cookie,
    Header,
    Body,
    Request,
}

impl Location {
    pub fn as_str(self) -> &'static str {
        match self {
            Location::Path => "path",
            Location::Query => "query",
            Location::ArgName => "argument name",
            Location::Cookie => "cookie",
            Location::Header => "header",
            Location::Body => "body",
            Location::Request => "request",
        }
    }
}

/// One managed rule.
#[derive(Debug, Clone, Copy)]
pub struct RuleInfo {
    pub id: &'static str,
    pub description: &'static str,
    pub paranoia: u8,
}

/// Every managed rule, in the order they run.
pub const RULES: &[RuleInfo] = &[
    RuleInfo {
        id: "method",
        description: "request methods outside the allowed list",
        paranoia: 1,
    },
    RuleInfo {
        id: "policy",
        description: "content types, charsets, file extensions, headers and codings outside policy",
        paranoia: 1,
    },
    RuleInfo {
        id: "multipart",
        description: "multipart parts with quoting tricks, foreign charsets or transfer encodings",
        paranoia: 1,
    },
    RuleInfo {
        id: "protocol",
        description: "malformed or over-long request parts",
        paranoia: 1,
    },
    RuleInfo {
        id: "scanner",
        description: "known vulnerability scanner",
        paranoia: 1,
    },
    RuleInfo {
        id: "traversal",
        description: "path traversal / local file inclusion",
        paranoia: 1,
    },
    RuleInfo {
        id: "rfi",
        description: "remote file inclusion",
        paranoia: 1,
    },
    RuleInfo {
        id: "rce",
        description: "remote command execution",
        paranoia: 1,
    },
    RuleInfo {
        id: "php",
        description: "PHP injection",
        paranoia: 1,
    },
    RuleInfo {
        id: "java",
        description: "Java / JNDI / expression-language injection",
        paranoia: 1,
    },
    RuleInfo {
        id: "generic",
        description: "server-side template / code injection",
        paranoia: 1,
    },
    RuleInfo {
        id: "xss",
        description: "cross-site scripting",
        paranoia: 1,
    },
    RuleInfo {
        id: "sqli",
        description: "SQL injection",
        paranoia: 1,
    },
    RuleInfo {
        id: "session-fixation",
        description: "session fixation",
        paranoia: 1,
    },
    RuleInfo {
        id: "protocol-attack",
        description: "request smuggling / header injection",
        paranoia: 1,
    },
    RuleInfo {
        id: "xss-strict",
        description: "HTML markup anywhere in input",
        paranoia: 2,
    },
    RuleInfo {
        id: "sqli-strict",
        description: "SQL keywords with SQL punctuation",
        paranoia: 2,
    },
];

/// The bit of rule `id` in an active-rules mask (its place in [`RULES`]).
/// Inlined so that a literal id folds to a constant.
#[inline(always)]
pub(super) fn rule_bit(id: &str) -> u64 {
    match id {
        "method" => 1 << 0,
        "policy" => 1 << 1,
        "multipart" => 1 << 2,
        "protocol" => 1 << 3,
        "scanner" => 1 << 4,
        "traversal" => 1 << 5,
        "rfi" => 1 << 6,
        "rce" => 1 << 7,
        "php" => 1 << 8,
        "java" => 1 << 9,
        "generic" => 1 << 10,
        "xss" => 1 << 11,
        "sqli" => 1 << 12,
        "session-fixation" => 1 << 13,
        "protocol-attack" => 1 << 14,
        "xss-strict" => 1 << 15,
        "sqli-strict" => 1 << 16,
        _ => 0,
    }
}

/// Limits on request parts (the `protocol` rule).
#[derive(Debug, Clone)]
pub struct InputLimits {
    pub max_args: usize,
    pub max_arg_name_bytes: usize,
    pub max_arg_value_bytes: usize,
    pub max_header_value_bytes: usize,
    pub max_path_bytes: usize,
}

impl Default for InputLimits {
    fn default() -> Self {
        Self {
            max_args: 255,
            max_arg_name_bytes: 100,
            max_arg_value_bytes: 8000,
            max_header_value_bytes: 8192,
            max_path_bytes: 4096,
        }
    }
}

/// A per-rule exclusion: the rules it names do not run on requests its
/// expression matches.
#[derive(Debug, Clone)]
pub struct Exclusion {
    pub rules: Vec<String>,
    pub when: Expr,
}

/// A managed rule's finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub rule: &'static str,
    pub location: Location,
    /// The name of the argument/header/cookie, when there is one.
    pub name: String,
    pub reason: &'static str,
}

/// The configured managed rule set.
#[derive(Debug, Clone)]
pub struct ManagedRules {
    pub paranoia: u8,
    pub disabled: Vec<String>,
    pub exclusions: Vec<Exclusion>,
    pub limits: InputLimits,
    pub policy: Policy,
    /// Whether values pass the literal prefilter before the detectors
    /// (on by default; off only to check that it changes no verdict).
    pub prefilter: bool,
}

impl Default for ManagedRules {
    fn default() -> Self {
        Self {
            paranoia: 1,
            disabled: Vec::new(),
            exclusions: Vec::new(),
            limits: InputLimits::default(),
            policy: Policy::default(),
            prefilter: true,
        }
    }
}

/// Headers whose values are protocol data, not application input (names
/// in lower case, as requests carry them here).
fn plain_header(name: &str) -> bool {
    matches!(
        name,
        "host"
            | "accept"
            | "accept-encoding"
            | "accept-language"
            | "accept-charset"
            | "connection"
            | "content-length"
            | "content-type"
            | "cache-control"
            | "pragma"
            | "if-none-match"
            | "if-modified-since"
            | "upgrade-insecure-requests"
            | "authorization"
            | "sec-fetch-site"
            | "sec-fetch-mode"
            | "sec-fetch-dest"
            | "sec-fetch-user"
            | "sec-ch-ua"
            | "sec-ch-ua-mobile"
            | "sec-ch-ua-platform"
            | "te"
            | "dnt"
            | "priority"
            | "keep-alive"
            | "cookie"
            | "range"
            | "if-range"
            | "if-match"
            | "if-unmodified-since"
            | "origin"
            | "x-requested-with"
            | "sec-websocket-key"
            | "sec-websocket-version"
            | "sec-websocket-extensions"
            | "upgrade"
            | "x-forwarded-for"
            | "forwarded"
            | "x-forwarded-proto"
            | "x-forwarded-host"
            | "x-real-ip"
            | "transfer-encoding"
            | "expect"
            | "content-encoding"
    )
}

impl ManagedRules {
    pub fn known(id: &str) -> bool {
        RULES.iter().any(|r| r.id == id)
    }

    /// The rules that run on this request, one bit per entry of [`RULES`].
    fn active(&self, ctx: &RequestCtx<'_>, also_off: &[String]) -> u64 {
        let mut mask = 0u64;
        for (i, r) in RULES.iter().enumerate() {
            if r.paranoia <= self.paranoia
                && !self.disabled.iter().chain(also_off).any(|d| d == r.id)
            {
                mask |= 1 << i;
            }
        }
        for e in &self.exclusions {
            if e.when.eval(ctx) {
                for id in &e.rules {
                    mask &= !rule_bit(id);
                }
            }
        }
        mask
    }

    /// The first finding over the request's head and `body` (with its
    /// content type), or `None` for a clean request.
    pub fn scan(&self, ctx: &RequestCtx<'_>, body: Option<&[u8]>) -> Option<Finding> {
        self.scan_parts(ctx, true, body, &[])
    }

    /// Like [`scan`](Self::scan), leaving out the head (path, query,
    /// cookies, headers) when `head` is false: the body of a request
    /// whose head was already scanned. `also_off` names rules a custom
    /// rule skipped for this request.
    pub fn scan_parts(
        &self,
        ctx: &RequestCtx<'_>,
        head: bool,
        body: Option<&[u8]>,
        also_off: &[String],
    ) -> Option<Finding> {
        let active = self.active(ctx, also_off);
        if active == 0 {
            return None;
        }
        let on = |id: &str| active & rule_bit(id) != 0;
        let mut inputs: Vec<(Location, Cow<'_, str>, Cow<'_, str>)> = Vec::with_capacity(32);
        if head && let Err(f) = self.head_inputs(ctx, &on, &mut inputs) {
            return Some(f);
        }
        if let Some(body) = body.filter(|b| !b.is_empty()) {
            if on("policy")
                && let Some(f) = self.policy.body(ctx)
            {
                return Some(f);
            }
            let ctype = ctx.header("content-type").unwrap_or("");
            if on("protocol")
                && (ctype.is_empty()
                    || ctype.to_ascii_lowercase().contains("x-www-form-urlencoded"))
                && std::str::from_utf8(body).is_ok_and(detect::bad_percent)
            {
                return Some(Finding {
                    rule: "protocol",
                    location: Location::Body,
                    name: String::new(),
                    reason: "invalid percent-encoding in a form body",
                });
            }
            if on("multipart")
                && let Some(f) = self.multipart(ctype, body)
            {
                return Some(f);
            }
            if on("php")
                && let Some(f) = uploaded_script(ctype, body)
            {
                return Some(f);
            }
            body_inputs(ctype, body, &mut inputs);
        }
        if on("protocol")
            && let Some(f) = self.arg_limits(&inputs)
        {
            return Some(f);
        }
        for (loc, name, value) in &inputs {
            if let Some((rule, reason)) = detect::value(value, *loc, name, active, self.prefilter) {
                return Some(Finding {
                    rule,
                    location: *loc,
                    name: name.to_string(),
                    reason,
                });
            }
        }
        None
    }

    /// Collects the head's inputs, or returns a finding of the checks
    /// that look at the request as a whole (`Err` carries it).
    fn head_inputs<'c>(
        &self,
        ctx: &'c RequestCtx<'_>,
        on: &dyn Fn(&str) -> bool,
        inputs: &mut Vec<(Location, Cow<'c, str>, Cow<'c, str>)>,
    ) -> Result<(), Finding> {
        if on("method")
            && let Some(f) = self.policy.method(ctx)
        {
            return Err(f);
        }
        if on("protocol")
            && let Some(f) = self.protocol(ctx)
        {
            return Err(f);
        }
        if on("policy")
            && let Some(f) = self.policy.head(ctx)
        {
            return Err(f);
        }
        if on("scanner")
            && let Some(f) = detect::scanner(ctx)
        {
            return Err(f);
        }
        // The path, decoded, is one input; its raw form catches encodings.
        inputs.push((
            Location::Path,
            Cow::Borrowed(""),
            percent_decode_cow(ctx.path, false),
        ));
        // Arguments and cookies are read straight from the query and the
        // Cookie headers, borrowed unless an escape needs decoding.
        for pair in ctx.query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let k = percent_decode_cow(k, true);
            inputs.push((Location::ArgName, k.clone(), k.clone()));
            inputs.push((Location::Query, k, percent_decode_cow(v, true)));
        }
        if !ctx.query.is_empty() && !ctx.query.contains('=') {
            inputs.push((
                Location::Query,
                Cow::Borrowed(""),
                Cow::Owned(percent_decode(ctx.query, true)),
            ));
        }
        for (k, v) in &ctx.headers {
            if k.eq_ignore_ascii_case("cookie") {
                for pair in v.split(';') {
                    let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                    let name = Cow::Borrowed(name.trim());
                    inputs.push((Location::Cookie, name.clone(), name.clone()));
                    inputs.push((
                        Location::Cookie,
                        name,
                        percent_decode_cow(value.trim(), false),
                    ));
                }
            } else if !plain_header(k) {
                inputs.push((
                    Location::Header,
                    Cow::Borrowed(*k),
                    Cow::Borrowed(v.as_ref()),
                ));
            }
        }
        Ok(())
    }

    fn protocol(&self, ctx: &RequestCtx<'_>) -> Option<Finding> {
        let f = |reason, name: &str| {
            Some(Finding {
                rule: "protocol",
                location: Location::Request,
                name: name.to_string(),
                reason,
            })
        };
        if ctx.path.len() > self.limits.max_path_bytes {
            return f("the path is over-long", "");
        }
        if ctx.path.contains('\0') || ctx.query.contains("%00") || ctx.path.contains("%00") {
            return f("a NUL byte in the URL", "");
        }
        if detect::bad_percent(ctx.query) || detect::bad_percent(ctx.path) {
            return f("invalid percent-encoding in the URL", "");
        }
        if let Some(why) = detect::bad_query_bytes(ctx.query) {
            return f(why, "");
        }
        for (k, v) in &ctx.headers {
            if v.len() > self.limits.max_header_value_bytes {
                return f("an over-long header", k);
            }
            if v.contains('\0') {
                return f("a NUL byte in a header", k);
            }
        }
        if ctx
            .header("content-length")
            .is_some_and(|v| v.trim().parse::<u64>().is_err())
        {
            return f("a Content-Length that is not a number", "content-length");
        }
        if ctx.header("content-length").is_some() && ctx.header("transfer-encoding").is_some() {
            return f(
                "both Content-Length and Transfer-Encoding",
                "transfer-encoding",
            );
        }
        if let Some(range) = ctx.header("range").or_else(|| ctx.header("request-range"))
            && range.matches(',').count() >= 5
        {
            return f("too many ranges", "range");
        }
        None
    }

    fn multipart(&self, ctype: &str, body: &[u8]) -> Option<Finding> {
        if !ctype.to_ascii_lowercase().starts_with("multipart/") {
            return None;
        }
        let text = String::from_utf8_lossy(body);
        for (head, value) in multipart_parts(&text) {
            if let Some(reason) = self.policy.multipart_part(&head, &value) {
                return Some(Finding {
                    rule: "multipart",
                    location: Location::Body,
                    name: "multipart".into(),
                    reason,
                });
            }
        }
        None
    }

    fn arg_limits(&self, inputs: &[(Location, Cow<'_, str>, Cow<'_, str>)]) -> Option<Finding> {
        let mut args = 0;
        for (loc, name, value) in inputs {
            if !matches!(loc, Location::Query | Location::Body) {
                continue;
            }
            args += 1;
            let reason = if name.len() > self.limits.max_arg_name_bytes {
                "an over-long argument name"
            } else if value.len() > self.limits.max_arg_value_bytes {
                "an over-long argument value"
            } else if args > self.limits.max_args {
                "too many arguments"
            } else {
                continue;
            };
            return Some(Finding {
                rule: "protocol",
                location: *loc,
                name: name.to_string(),
                reason,
            });
        }
        None
    }
}

/// The inspectable values of a body: form fields, JSON strings (keys and
/// values), multipart parts, or the body as text.
fn body_inputs<'a>(
    ctype: &str,
    body: &'a [u8],
    out: &mut Vec<(Location, Cow<'a, str>, Cow<'a, str>)>,
) {
    let text = String::from_utf8_lossy(body);
    let ctype = ctype.to_ascii_lowercase();
    if ctype.contains("json")
        && let Ok(v) = serde_json::from_slice::<serde_json::Value>(body)
    {
        let mut stack = vec![(String::new(), &v)];
        let mut seen = 0;
        while let Some((key, v)) = stack.pop() {
            seen += 1;
            if seen > 10_000 {
                break;
            }
            match v {
                serde_json::Value::String(s) => {
                    out.push((Location::Body, Cow::Owned(key), Cow::Owned(s.clone())))
                }
                serde_json::Value::Array(a) => stack.extend(a.iter().map(|x| (key.clone(), x))),
                serde_json::Value::Object(o) => {
                    for (k, x) in o {
                        out.push((
                            Location::ArgName,
                            Cow::Owned(k.clone()),
                            Cow::Owned(k.clone()),
                        ));
                        stack.push((k.clone(), x));
                    }
                }
                _ => {}
            }
        }
        return;
    }
    if ctype.starts_with("multipart/") || text.starts_with("--") {
        for (head, value) in multipart_parts(&text) {
            // A part's headers carry its name and file name.
            for line in head.lines() {
                out.push((
                    Location::Body,
                    Cow::Borrowed("multipart header"),
                    Cow::Owned(line.to_string()),
                ));
            }
            out.push((
                Location::Body,
                Cow::Borrowed("multipart"),
                Cow::Owned(value),
            ));
        }
        return;
    }
    if ctype.is_empty() || ctype.contains("x-www-form-urlencoded") {
        for (k, v) in form_pairs(&text) {
            out.push((
                Location::ArgName,
                Cow::Owned(k.clone()),
                Cow::Owned(k.clone()),
            ));
            out.push((Location::Body, Cow::Owned(k), Cow::Owned(v)));
        }
        return;
    }
    out.push((
        Location::Body,
        Cow::Borrowed(""),
        Cow::Owned(text.into_owned()),
    ));
}

/// A multipart part uploading a file under a name the server would run,
/// or a session or configuration file's name.
fn uploaded_script(ctype: &str, body: &[u8]) -> Option<Finding> {
    if !ctype.to_ascii_lowercase().starts_with("multipart/") {
        return None;
    }
    let text = String::from_utf8_lossy(body);
    for (head, _) in multipart_parts(&text) {
        for line in head.lines() {
            let Some((name, v)) = line.split_once(':') else {
                continue;
            };
            if name.trim().eq_ignore_ascii_case("content-disposition")
                && let Some(file) = policy::disposition_param(v, "filename")
                && detect::script_file_name(&file)
            {
                return Some(Finding {
                    rule: "php",
                    location: Location::Body,
                    name: file,
                    reason: "an uploaded file name of a server-side script, session or configuration",
                });
            }
        }
    }
    None
}

/// The parts of a multipart body as (headers, value), the boundary line
/// left out of the headers.
fn multipart_parts(text: &str) -> Vec<(String, String)> {
    let norm = text.replace("\r\n", "\n");
    norm.split("\n--")
        .filter(|p| !p.trim().is_empty())
        .map(|part| {
            let (head, value) = part.split_once("\n\n").unwrap_or((part, ""));
            let head = head.split_once('\n').map_or("", |(_, h)| h);
            (head.to_string(), value.trim_end_matches('-').to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_rule_has_its_own_bit() {
        for (i, r) in super::RULES.iter().enumerate() {
            assert_eq!(super::rule_bit(r.id), 1 << i, "{}", r.id);
        }
    }
}
