//! Route patterns as Cloudflare matches them (`example.com/api/*`,
//! `*.example.com/*`, `*example.com/*`): a host part and a path part, each
//! with `*` matching any run of characters; the scheme, if given, is
//! ignored, and so are the query string and the request's port.

/// One parsed `routes` pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutePattern {
    host: String,
    path: String,
}

impl RoutePattern {
    /// Parses `[scheme://]host[/path]`; a pattern without a path matches
    /// only `/`, as on Cloudflare.
    pub fn parse(pattern: &str) -> Self {
        let rest = pattern.split_once("://").map(|(_, r)| r).unwrap_or(pattern);
        let (host, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        Self {
            host: host.to_ascii_lowercase(),
            path: path.to_string(),
        }
    }

    /// Whether a request to `host` (port allowed) and `path` (query
    /// allowed) matches.
    pub fn matches(&self, host: &str, path: &str) -> bool {
        let host = strip_port(host).to_ascii_lowercase();
        let path = path.split('?').next().unwrap_or(path);
        glob(&self.host, &host) && glob(&self.path, path)
    }

    /// How specific the pattern is: more literal characters win when
    /// several patterns match.
    pub fn specificity(&self) -> usize {
        self.host.len() + self.path.len()
            - self.host.matches('*').count()
            - self.path.matches('*').count()
    }
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split_once(']').map(|(h, _)| &h[1..]).unwrap_or(host);
    }
    match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

/// `*` matches any (possibly empty) run; everything else is literal.
fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &text[first.len()..];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

/// The index of the worker whose routes match best; `None` when none
/// matches (the default worker answers).
pub fn pick(routes: &[(RoutePattern, usize)], host: &str, path: &str) -> Option<usize> {
    routes
        .iter()
        .filter(|(p, _)| p.matches(host, path))
        .max_by_key(|(p, _)| p.specificity())
        .map(|(_, i)| *i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_path_wildcards() {
        let p = RoutePattern::parse("example.com/api/*");
        assert!(p.matches("example.com", "/api/x?y=1"));
        assert!(p.matches("example.com:8787", "/api/"));
        assert!(!p.matches("example.com", "/apix"));
        assert!(!p.matches("www.example.com", "/api/x"));

        let sub = RoutePattern::parse("*.example.com/*");
        assert!(sub.matches("a.example.com", "/"));
        assert!(!sub.matches("example.com", "/"));
        let any = RoutePattern::parse("*example.com/*");
        assert!(any.matches("example.com", "/x"));
        assert!(any.matches("a.b.example.com", "/x"));
        assert!(!any.matches("example.org", "/x"));
    }

    #[test]
    fn scheme_ignored_and_bare_host_matches_root_only() {
        let p = RoutePattern::parse("https://Example.com");
        assert!(p.matches("example.com", "/"));
        assert!(!p.matches("example.com", "/a"));
    }

    #[test]
    fn most_specific_wins() {
        let routes = vec![
            (RoutePattern::parse("example.com/*"), 0),
            (RoutePattern::parse("example.com/api/*"), 1),
        ];
        assert_eq!(pick(&routes, "example.com", "/api/a"), Some(1));
        assert_eq!(pick(&routes, "example.com", "/b"), Some(0));
        assert_eq!(pick(&routes, "other.com", "/b"), None);
    }
}
