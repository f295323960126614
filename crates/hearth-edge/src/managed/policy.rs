//! Protocol policy: what a request may look like before any attack
//! detector reads it. Allowed methods, content types and charsets,
//! restricted file extensions and headers, method overrides, request
//! cache directives, content codings and the shape of multipart parts.
//! Every list is configurable (`[managed_rules.policy]`); the defaults
//! follow what a public web application needs.

use super::{Finding, Location};
use crate::rules::RequestCtx;

/// The allow- and deny-lists the `method`, `policy` and `multipart`
/// rules enforce. Names are compared without regard to case.
#[derive(Debug, Clone)]
pub struct Policy {
    pub allowed_methods: Vec<String>,
    /// `type/subtype`, `type/*`, or `+suffix` (any `*/*+suffix`).
    pub allowed_content_types: Vec<String>,
    pub allowed_charsets: Vec<String>,
    /// Without the dot.
    pub restricted_extensions: Vec<String>,
    pub restricted_headers: Vec<String>,
}

fn owned(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            allowed_methods: owned(&["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]),
            allowed_content_types: owned(&[
                "application/x-www-form-urlencoded",
                "multipart/form-data",
                "multipart/related",
                "multipart/mixed",
                "application/json",
                "application/x-ndjson",
                "application/xml",
                "text/xml",
                "text/plain",
                "text/csv",
                "application/octet-stream",
                "application/graphql",
                "application/csp-report",
                "application/grpc",
                "application/grpc-web",
                "application/pdf",
                "application/zip",
                "application/gzip",
                "+json",
                "+xml",
                "+proto",
                "image/*",
                "audio/*",
                "video/*",
                "font/*",
            ]),
            allowed_charsets: owned(&[
                "utf-8",
                "utf8",
                "us-ascii",
                "iso-8859-1",
                "iso-8859-15",
                "windows-1252",
            ]),
            restricted_extensions: owned(&[
                "asa",
                "asax",
                "ascx",
                "backup",
                "bak",
                "bat",
                "cdx",
                "cer",
                "cfg",
                "cmd",
                "config",
                "conf",
                "csproj",
                "csr",
                "db",
                "dbf",
                "dll",
                "dos",
                "htr",
                "htw",
                "ida",
                "idc",
                "idq",
                "inc",
                "ini",
                "key",
                "licx",
                "lnk",
                "log",
                "mdb",
                "old",
                "orig",
                "pdb",
                "pol",
                "printer",
                "pwd",
                "rdb",
                "resources",
                "resx",
                "sql",
                "sqlite",
                "swp",
                "sys",
                "vbs",
                "vbproj",
                "vsdisco",
                "webinfo",
                "xsx",
                "tmp",
                "save",
                "sav",
            ]),
            restricted_headers: owned(&[
                "proxy",
                "lock-token",
                "if",
                "request-range",
                "x-http-method-override",
                "x-http-method",
                "x-method-override",
                "x-middleware-subrequest",
            ]),
        }
    }
}

/// Whether `v` holds `charset` in any case.
fn mentions_charset(v: &str) -> bool {
    let b = v.as_bytes();
    b.iter().enumerate().any(|(i, c)| {
        (*c | 0x20) == b'c'
            && b.get(i..i + 7)
                .is_some_and(|w| w.eq_ignore_ascii_case(b"charset"))
    })
}

fn finding(rule: &'static str, loc: Location, name: &str, reason: &'static str) -> Finding {
    Finding {
        rule,
        location: loc,
        name: name.to_string(),
        reason,
    }
}

/// Characters of an HTTP token (RFC 9110 `tchar`).
fn tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A parsed `Content-Type`: the media type in lower case and its
/// parameters (names in lower case, values unquoted).
pub(super) struct MediaType {
    pub essence: String,
    pub params: Vec<(String, String)>,
}

/// Parses a media type strictly: `type/subtype` of token characters, then
/// `; name=value` pairs whose values are tokens or quoted strings.
pub(super) fn parse_media_type(v: &str) -> Option<MediaType> {
    let mut parts = split_params(v)?;
    let essence = parts.remove(0).trim().to_ascii_lowercase();
    let (t, s) = essence.split_once('/')?;
    if t.is_empty() || s.is_empty() || !t.bytes().all(tchar) || !s.bytes().all(tchar) {
        return None;
    }
    let mut params = Vec::new();
    for p in parts {
        let p = p.trim();
        if p.is_empty() {
            continue;
        }
        let (k, val) = p.split_once('=')?;
        let k = k.trim().to_ascii_lowercase();
        if k.is_empty() || !k.bytes().all(tchar) {
            return None;
        }
        // One space after `=` is tolerated; more is a parser-confusion trick.
        let val = val.strip_prefix(' ').unwrap_or(val);
        let val = if let Some(q) = val.strip_prefix('"') {
            q.strip_suffix('"')?.replace("\\\"", "\"")
        } else {
            if val.is_empty() || val.starts_with(' ') || val.trim_end().contains(' ') {
                return None;
            }
            val.trim_end().to_string()
        };
        params.push((k, val));
    }
    Some(MediaType { essence, params })
}

/// Splits on `;` outside quoted strings; `None` for an unclosed quote.
fn split_params(v: &str) -> Option<Vec<&str>> {
    let mut out = Vec::new();
    let (mut start, mut quoted, mut esc) = (0, false, false);
    for (i, c) in v.char_indices() {
        match c {
            _ if esc => esc = false,
            '\\' if quoted => esc = true,
            '"' => quoted = !quoted,
            ';' if !quoted => {
                out.push(&v[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if quoted {
        return None;
    }
    out.push(&v[start..]);
    Some(out)
}

impl Policy {
    fn content_type_allowed(&self, essence: &str) -> bool {
        let (t, _) = essence.split_once('/').unwrap_or((essence, ""));
        self.allowed_content_types.iter().any(|a| {
            let a = a.to_ascii_lowercase();
            if let Some(suffix) = a.strip_prefix('+') {
                essence.rsplit_once('+').is_some_and(|(_, s)| s == suffix)
            } else if let Some(ty) = a.strip_suffix("/*") {
                t == ty
            } else {
                a == essence
            }
        })
    }

    fn charset_allowed(&self, cs: &str) -> bool {
        self.allowed_charsets
            .iter()
            .any(|a| a.eq_ignore_ascii_case(cs.trim()))
    }

    /// The `method` rule: the request method is one the zone serves.
    pub(super) fn method(&self, ctx: &RequestCtx<'_>) -> Option<Finding> {
        let m = ctx.method;
        if m.is_empty()
            || !m
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b == b'-' || b == b'_')
        {
            return Some(finding(
                "method",
                Location::Request,
                "method",
                "a malformed request method",
            ));
        }
        (!self
            .allowed_methods
            .iter()
            .any(|a| a.eq_ignore_ascii_case(m)))
        .then(|| {
            finding(
                "method",
                Location::Request,
                "method",
                "a request method the zone does not allow",
            )
        })
    }

    /// The `policy` rule over the request head.
    pub(super) fn head(&self, ctx: &RequestCtx<'_>) -> Option<Finding> {
        let req = |name: &str, reason| Some(finding("policy", Location::Request, name, reason));
        let hdr = |name: &str, reason| Some(finding("policy", Location::Header, name, reason));
        // Restricted file extensions and editor backup files in the path.
        let path = ctx.path.split(';').next().unwrap_or("");
        for seg in path.split('/').filter(|s| !s.is_empty()) {
            let seg = if seg.contains('%') {
                std::borrow::Cow::Owned(crate::rules::percent_decode(seg, false))
            } else {
                std::borrow::Cow::Borrowed(seg)
            };
            if seg.ends_with('~') {
                return req("path", "a request for an editor backup file");
            }
            if let Some((_, ext)) = seg.rsplit_once('.')
                && self
                    .restricted_extensions
                    .iter()
                    .any(|r| r.eq_ignore_ascii_case(ext))
            {
                return req("path", "a file extension the zone does not serve");
            }
        }
        for (k, v) in &ctx.headers {
            if self
                .restricted_headers
                .iter()
                .any(|r| r.eq_ignore_ascii_case(k))
            {
                return hdr(k, "a header the zone does not accept");
            }
            match *k {
                "content-type" => {
                    let Some(mt) = parse_media_type(v) else {
                        return hdr(k, "a malformed Content-Type");
                    };
                    if !self.content_type_allowed(&mt.essence) {
                        return hdr(k, "a content type the zone does not accept");
                    }
                    let charsets: Vec<_> =
                        mt.params.iter().filter(|(n, _)| n == "charset").collect();
                    if charsets.len() > 1 {
                        return hdr(k, "more than one charset in Content-Type");
                    }
                    if let Some((_, cs)) = charsets.first()
                        && !self.charset_allowed(cs)
                    {
                        return hdr(k, "a charset the zone does not accept");
                    }
                    if !mt.essence.starts_with("multipart/")
                        && mt.params.iter().any(|(n, _)| n == "boundary")
                    {
                        return hdr(k, "a boundary on a content type that is not multipart");
                    }
                    if mt.params.iter().any(|(_, v)| {
                        let v = v.to_ascii_lowercase();
                        v.contains('/')
                            && parse_media_type(&v).is_some_and(|m| m.essence != mt.essence)
                            && !v.contains(':')
                    }) {
                        return hdr(k, "a second media type hidden in Content-Type");
                    }
                }
                // Request directives only; `must-revalidate` is a response
                // directive that HTTP libraries are often told to send.
                "cache-control" => {
                    let ok = v.split(',').all(|d| {
                        let (n, val) = d.trim().split_once('=').unwrap_or((d.trim(), ""));
                        match n.to_ascii_lowercase().as_str() {
                            "max-age" | "max-stale" | "min-fresh" | "stale-if-error" => {
                                val.is_empty() && n.eq_ignore_ascii_case("max-stale")
                                    || val.bytes().all(|b| b.is_ascii_digit()) && !val.is_empty()
                            }
                            "no-cache" | "no-store" | "no-transform" | "only-if-cached"
                            | "must-revalidate" => val.is_empty(),
                            _ => false,
                        }
                    });
                    if !ok {
                        return hdr(k, "a Cache-Control directive requests do not carry");
                    }
                }
                "accept-encoding" => {
                    let ok = v.len() <= 100
                        && v.split(',').all(|c| {
                            let coding = c.split(';').next().unwrap_or("").trim();
                            coding.is_empty()
                                || [
                                    "gzip",
                                    "deflate",
                                    "br",
                                    "zstd",
                                    "compress",
                                    "identity",
                                    "*",
                                    "x-gzip",
                                    "x-compress",
                                    "aes128gcm",
                                    "exi",
                                    "pack200-gzip",
                                    "dcb",
                                    "dcz",
                                    "bzip2",
                                    "xz",
                                    "lzma",
                                    "sdch",
                                ]
                                .iter()
                                .any(|a| a.eq_ignore_ascii_case(coding))
                        });
                    if !ok {
                        return hdr(k, "an unknown or over-long Accept-Encoding");
                    }
                }
                // Most Accept headers name no charset: one byte scan
                // skips splitting them.
                "accept" if mentions_charset(v) => {
                    let mut charsets = v
                        .split([',', ';'])
                        .filter_map(|p| p.trim().split_once('='))
                        .filter(|(n, _)| n.trim().eq_ignore_ascii_case("charset"))
                        .map(|(_, cs)| cs.trim().trim_matches('"'));
                    if charsets.any(|cs| !self.charset_allowed(cs)) {
                        return hdr(k, "a charset the zone does not accept in Accept");
                    }
                }
                "connection" => {
                    let tokens: Vec<String> = v
                        .split(',')
                        .map(|t| t.trim().to_ascii_lowercase())
                        .filter(|t| !t.is_empty())
                        .collect();
                    let dup = tokens
                        .iter()
                        .enumerate()
                        .any(|(i, t)| tokens[..i].contains(t));
                    let both = tokens.iter().any(|t| t == "close")
                        && tokens.iter().any(|t| t == "keep-alive");
                    if dup || both {
                        return hdr(k, "a Connection header that repeats or contradicts itself");
                    }
                }
                "sec-fetch-user" if v.trim() != "?1" => {
                    return hdr(k, "a malformed Sec-Fetch-User");
                }
                "sec-ch-ua-mobile" if !matches!(v.trim(), "?0" | "?1") => {
                    return hdr(k, "a malformed Sec-CH-UA-Mobile");
                }
                _ => {}
            }
        }
        // A method override in the query string.
        let override_name = |k: &str| {
            ["_method", "x-http-method-override", "_httpmethod"]
                .iter()
                .any(|m| m.eq_ignore_ascii_case(k))
        };
        if ctx.query.split('&').any(|pair| {
            let k = pair.split_once('=').map_or(pair, |(k, _)| k);
            override_name(&crate::rules::percent_decode_cow(k, true))
        }) {
            return req("_method", "a method override in the query string");
        }
        None
    }

    /// The `policy` rule over a body: GET and HEAD carry none.
    pub(super) fn body(&self, ctx: &RequestCtx<'_>) -> Option<Finding> {
        matches!(ctx.method, "GET" | "HEAD").then(|| {
            finding(
                "policy",
                Location::Body,
                "",
                "a body on a GET or HEAD request",
            )
        })
    }

    /// The `multipart` rule: part names and file names without quoting
    /// tricks, part charsets from the allow-list, no transfer encodings.
    pub(super) fn multipart_part(&self, head: &str, value: &str) -> Option<&'static str> {
        for line in head.lines() {
            let Some((name, v)) = line.split_once(':') else {
                continue;
            };
            let name = name.trim().to_ascii_lowercase();
            match name.as_str() {
                "content-disposition" => {
                    for key in ["name", "filename"] {
                        if let Some(val) = disposition_param(v, key)
                            && strip_entities(&val).contains([';', '=', '\'', '"', '\\'])
                        {
                            return Some("quoting tricks in a multipart part name");
                        }
                    }
                    if disposition_param(v, "name").as_deref() == Some("_charset_")
                        && !self.charset_allowed(value.trim())
                    {
                        return Some("a multipart _charset_ the zone does not accept");
                    }
                }
                "content-type" => {
                    let lower = v.to_ascii_lowercase();
                    if let Some(at) = lower.find("charset") {
                        let rest = lower[at + 7..].trim_start();
                        if let Some(cs) = rest.strip_prefix('=') {
                            let cs = cs.trim().trim_matches('"');
                            let cs = cs.split([';', ' ']).next().unwrap_or("");
                            if !self.charset_allowed(cs) {
                                return Some("a multipart part charset the zone does not accept");
                            }
                        }
                    }
                }
                "content-transfer-encoding" => {
                    return Some("a Content-Transfer-Encoding in a multipart part");
                }
                _ => {}
            }
        }
        None
    }
}

/// The raw (quoted) value of `key` in a Content-Disposition header.
pub(super) fn disposition_param(v: &str, key: &str) -> Option<String> {
    let lower = v.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = lower[from..].find(key) {
        let at = from + i;
        from = at + key.len();
        let before_ok = at == 0 || matches!(lower.as_bytes()[at - 1], b' ' | b';' | b'\t');
        let rest = v[from..].trim_start();
        if !before_ok || !rest.starts_with('=') {
            continue;
        }
        let rest = rest[1..].trim_start();
        return Some(if let Some(q) = rest.strip_prefix('"') {
            // The value runs to the closing quote that ends the parameter.
            match q.rfind('"') {
                Some(end) => {
                    let inner = &q[..end];
                    // Another parameter after it: cut at the quote before `;`.
                    match inner.find("\"; ") {
                        Some(cut) => inner[..cut].to_string(),
                        None => inner.to_string(),
                    }
                }
                None => q.to_string(),
            }
        } else {
            rest.split(';').next().unwrap_or("").trim().to_string()
        });
    }
    None
}

/// Removes well-formed named character references (`&auml;`): browsers
/// write non-ASCII names that way, and they are not punctuation.
fn strip_entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let tail = &rest[i + 1..];
        let end = tail
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(tail.len());
        if end > 1 && tail[end..].starts_with(';') {
            rest = &tail[end + 1..];
        } else {
            out.push('&');
            rest = tail;
        }
    }
    out.push_str(rest);
    out
}
