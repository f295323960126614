//! What the front decides about a request before a worker sees it: whether
//! its Host can be part of a URL, and which client-identity headers are the
//! server's to set.

/// Request headers only the edge sets. A client's copies are dropped, so a
/// worker never mistakes them for the edge's word.
pub(crate) const EDGE_HEADERS: [&str; 8] = [
    "cf-connecting-ip",
    "cf-connecting-ipv6",
    "x-real-ip",
    "true-client-ip",
    "cf-ray",
    "cf-ipcountry",
    "cf-visitor",
    "cf-worker",
];

/// Whether a client-sent request header is dropped before the worker.
pub(crate) fn is_edge_header(name: &str) -> bool {
    EDGE_HEADERS.contains(&name)
}

/// Why a Host header was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum BadHost {
    #[error("the Host header is empty")]
    Empty,
    #[error("the Host header is not valid text")]
    NotText,
    #[error("the Host header appears more than once")]
    Repeated,
    #[error("the Host header {0:?} has a character a host name cannot have")]
    Character(String),
    #[error("the Host header {0:?} has a bad port (a number up to 65535)")]
    Port(String),
    #[error("the Host header {0:?} has a bad IPv6 address or unbalanced brackets")]
    Ipv6(String),
    #[error("the Host header {0:?} has a bad percent-encoding")]
    Percent(String),
    #[error("the Host header {0:?} is not a host a URL can hold")]
    Url(String),
}

/// Checks a Host header value: an RFC 3986 reg-name, IPv4 address or
/// bracketed IPv6 address, then an optional `:port`. The value is pasted
/// into `request.url`, so anything else (`/ ? # \ @`, a bad port,
/// unbalanced brackets) is refused rather than allowed to move the path.
pub(crate) fn check_host(value: &str) -> Result<(), BadHost> {
    if value.is_empty() {
        return Err(BadHost::Empty);
    }
    let bad = || value.to_string();
    let (host, port) = if let Some(rest) = value.strip_prefix('[') {
        let Some((addr, after)) = rest.split_once(']') else {
            return Err(BadHost::Ipv6(bad()));
        };
        if addr.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(BadHost::Ipv6(bad()));
        }
        let port = match after {
            "" => None,
            p => match p.strip_prefix(':') {
                Some(p) => Some(p),
                None => return Err(BadHost::Ipv6(bad())),
            },
        };
        (None, port)
    } else {
        match value.split_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(value), None),
        }
    };
    if let Some(port) = port
        && (port.is_empty()
            || port.len() > 5
            || !port.bytes().all(|b| b.is_ascii_digit())
            || port.parse::<u32>().map_or(true, |p| p > 65535))
    {
        return Err(BadHost::Port(bad()));
    }
    if let Some(host) = host {
        if host.is_empty() {
            return Err(BadHost::Empty);
        }
        let b = host.as_bytes();
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'%' => {
                    let hex = |j: usize| b.get(j).is_some_and(u8::is_ascii_hexdigit);
                    if !(hex(i + 1) && hex(i + 2)) {
                        return Err(BadHost::Percent(bad()));
                    }
                    i += 3;
                    continue;
                }
                c if c.is_ascii_alphanumeric() => {}
                // unreserved and sub-delims
                b'-' | b'.' | b'_' | b'~' | b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*'
                | b'+' | b',' | b';' | b'=' => {}
                _ => return Err(BadHost::Character(bad())),
            }
            i += 1;
        }
    }
    // What RFC 3986 allows must also make a URL the worker can parse.
    match url::Url::parse(&format!("http://{value}/")) {
        Ok(u) if u.path() == "/" && u.query().is_none() && u.fragment().is_none() => Ok(()),
        _ => Err(BadHost::Url(bad())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_a_url_can_hold_pass() {
        for ok in [
            "example.com",
            "example.com:8080",
            "127.0.0.1",
            "127.0.0.1:8787",
            "[::1]",
            "[::1]:8787",
            "a-b.c_d.example",
            "localhost:1",
        ] {
            assert_eq!(check_host(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn hosts_that_would_move_the_path_are_refused() {
        for bad in [
            "evil.com/kv/secret?",
            "evil.com?x",
            "evil.com#x",
            "evil.com\\x",
            "user@evil.com",
            "x:1:2",
            "[::1",
            "::1]",
            "[::1]x",
            "[zz]",
            "host:",
            "host:65536",
            "host:-1",
            ":80",
            "",
            "a b",
            "a%zz",
        ] {
            assert!(check_host(bad).is_err(), "{bad:?} passed");
        }
    }
}
