//! Whether a response may be stored, and for how long: Cloudflare's rules
//! for the Cache API, which are its CDN's rules for an origin response.
//!
//! - `Cache-Control: no-store`, a bare `private` or a bare `no-cache` is
//!   never stored; `private="Set-Cookie"` (or `no-cache="..."`) stores the
//!   response without the named headers.
//! - A response that still carries `Set-Cookie` is never stored.
//! - The time to live is `s-maxage`, else `max-age`, else `Expires` minus
//!   `Date` (or minus now without a `Date`), else Cloudflare's default edge
//!   TTL for the status: 120 minutes for 200, 206 and 301, 20 minutes for
//!   302 and 303, 3 minutes for 404 and 410; other statuses are not stored.
//! - A time to live of zero (`max-age=0`, an `Expires` in the past or one
//!   that does not parse) is not stored.

use std::time::{Duration, UNIX_EPOCH};

/// Why a response was not stored. `put()` still succeeds, as on Cloudflare,
/// where the cache answers such a write with 413 and the runtime ignores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotStored {
    /// `Cache-Control: no-store`.
    NoStore,
    /// A bare `Cache-Control: private`.
    Private,
    /// A bare `Cache-Control: no-cache`.
    NoCache,
    /// A `Set-Cookie` header (remove it, or send `private=Set-Cookie`).
    SetCookie,
    /// The time to live is zero: `max-age=0`, `s-maxage=0`, an `Expires`
    /// not after `Date`, or an `Expires` that does not parse.
    Expired,
    /// No freshness headers, and the status has no default edge TTL.
    StatusNotCached(u16),
    /// A 304 response: discarded, as workerd does.
    NotModified,
    /// Larger than one entry may be (`CacheLimits::max_entry_bytes`) or
    /// than the whole cache.
    TooLarge { size: u64, limit: u64 },
}

/// The decision for one response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Store for `ttl_ms`, without the headers named in `strip` (lower case).
    Store {
        ttl_ms: u64,
        strip: Vec<String>,
    },
    Skip(NotStored),
}

/// The parsed `Cache-Control` directives the decision reads.
#[derive(Debug, Default)]
struct Directives {
    no_store: bool,
    private: bool,
    no_cache: bool,
    /// Header names from `private="..."` and `no-cache="..."`.
    strip: Vec<String>,
    max_age: Option<u64>,
    s_maxage: Option<u64>,
}

/// Splits `a, b="x, y", c=1` into `(name, value)` pairs, keeping commas
/// inside quotes.
fn split_directives(value: &str) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    let mut part = String::new();
    let mut quoted = false;
    let mut push = |part: &mut String| {
        let p = part.trim();
        if !p.is_empty() {
            let (name, value) = match p.split_once('=') {
                Some((n, v)) => {
                    let v = v.trim();
                    let v = v
                        .strip_prefix('"')
                        .and_then(|v| v.strip_suffix('"'))
                        .unwrap_or(v);
                    (n.trim().to_ascii_lowercase(), Some(v.to_string()))
                }
                None => (p.to_ascii_lowercase(), None),
            };
            out.push((name, value));
        }
        part.clear();
    };
    for c in value.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                part.push(c);
            }
            ',' if !quoted => push(&mut part),
            _ => part.push(c),
        }
    }
    push(&mut part);
    out
}

/// A delta-seconds value; one that does not parse counts as zero, so the
/// response is treated as stale (RFC 9111, 1.2.2).
fn seconds(value: Option<&str>) -> u64 {
    value
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0)
}

fn parse_cache_control(headers: &[(String, String)]) -> Directives {
    let mut d = Directives::default();
    for (name, value) in headers {
        if !name.eq_ignore_ascii_case("cache-control") {
            continue;
        }
        for (directive, arg) in split_directives(value) {
            match directive.as_str() {
                "no-store" => d.no_store = true,
                "private" | "no-cache" => match arg {
                    Some(fields) if !fields.trim().is_empty() => d.strip.extend(
                        fields
                            .split(',')
                            .map(|f| f.trim().to_ascii_lowercase())
                            .filter(|f| !f.is_empty()),
                    ),
                    _ if directive == "private" => d.private = true,
                    _ => d.no_cache = true,
                },
                // The first occurrence wins, as RFC 9111 asks of duplicates.
                "max-age" if d.max_age.is_none() => d.max_age = Some(seconds(arg.as_deref())),
                "s-maxage" if d.s_maxage.is_none() => d.s_maxage = Some(seconds(arg.as_deref())),
                _ => {}
            }
        }
    }
    d
}

/// The value of the first header called `name` (lower case).
pub(crate) fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// An HTTP date as milliseconds since the epoch.
pub(crate) fn http_date_ms(value: &str) -> Option<u64> {
    let t = httpdate::parse_http_date(value.trim()).ok()?;
    t.duration_since(UNIX_EPOCH)
        .ok()
        .map(|d: Duration| d.as_millis() as u64)
}

/// Cloudflare's default edge TTL for a status without freshness headers.
pub fn default_ttl_secs(status: u16) -> Option<u64> {
    match status {
        200 | 206 | 301 => Some(120 * 60),
        302 | 303 => Some(20 * 60),
        404 | 410 => Some(3 * 60),
        _ => None,
    }
}

/// Decides whether a response with `status` and `headers` is stored, and
/// for how long, at `now_ms`.
pub fn decide(status: u16, headers: &[(String, String)], now_ms: u64) -> Decision {
    if status == 304 {
        return Decision::Skip(NotStored::NotModified);
    }
    let d = parse_cache_control(headers);
    if d.no_store {
        return Decision::Skip(NotStored::NoStore);
    }
    if d.private {
        return Decision::Skip(NotStored::Private);
    }
    if d.no_cache {
        return Decision::Skip(NotStored::NoCache);
    }
    let strips_cookie = d.strip.iter().any(|f| f == "set-cookie");
    if !strips_cookie && header(headers, "set-cookie").is_some() {
        return Decision::Skip(NotStored::SetCookie);
    }
    let ttl_secs = if let Some(s) = d.s_maxage {
        s
    } else if let Some(m) = d.max_age {
        m
    } else if let Some(expires) = header(headers, "expires") {
        let base = header(headers, "date")
            .and_then(http_date_ms)
            .unwrap_or(now_ms);
        match http_date_ms(expires) {
            Some(at) => at.saturating_sub(base) / 1000,
            None => 0,
        }
    } else {
        match default_ttl_secs(status) {
            Some(s) => s,
            None => return Decision::Skip(NotStored::StatusNotCached(status)),
        }
    };
    if ttl_secs == 0 {
        return Decision::Skip(NotStored::Expired);
    }
    Decision::Store {
        ttl_ms: ttl_secs.saturating_mul(1000),
        strip: d.strip,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn quoted_field_lists_keep_their_commas() {
        let d = split_directives(r#"public, private="set-cookie, x-a", max-age=5"#);
        assert_eq!(d.len(), 3);
        assert_eq!(d[1].1.as_deref(), Some("set-cookie, x-a"));
    }

    #[test]
    fn s_maxage_wins_over_max_age() {
        let got = decide(200, &h(&[("cache-control", "max-age=10, s-maxage=60")]), 0);
        assert_eq!(
            got,
            Decision::Store {
                ttl_ms: 60_000,
                strip: vec![]
            }
        );
    }

    #[test]
    fn expires_counts_from_date() {
        let got = decide(
            200,
            &h(&[
                ("date", "Sun, 06 Nov 1994 08:49:37 GMT"),
                ("expires", "Sun, 06 Nov 1994 08:50:37 GMT"),
            ]),
            5,
        );
        assert_eq!(
            got,
            Decision::Store {
                ttl_ms: 60_000,
                strip: vec![]
            }
        );
        assert_eq!(
            decide(200, &h(&[("expires", "0")]), 5),
            Decision::Skip(NotStored::Expired)
        );
    }

    #[test]
    fn default_ttls_by_status() {
        assert_eq!(default_ttl_secs(200), Some(7200));
        assert_eq!(default_ttl_secs(302), Some(1200));
        assert_eq!(default_ttl_secs(410), Some(180));
        assert_eq!(
            decide(500, &[], 0),
            Decision::Skip(NotStored::StatusNotCached(500))
        );
    }
}
