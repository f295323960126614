//! Limits, and the checks on request paths: decoding, canonical encoding,
//! and the run_worker_first route patterns.

/// Cloudflare's limits on an assets directory. A user may raise them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssetLimits {
    /// Largest single asset (Cloudflare: 25 MiB).
    pub max_asset_bytes: u64,
    /// Most files in the directory (Cloudflare: 20,000 per version).
    pub max_asset_count: u64,
}

/// 25 MiB.
pub const MAX_ASSET_BYTES: u64 = 25 * 1024 * 1024;
/// 20,000 files.
pub const MAX_ASSET_COUNT: u64 = 20_000;

impl Default for AssetLimits {
    fn default() -> Self {
        Self {
            max_asset_bytes: MAX_ASSET_BYTES,
            max_asset_count: MAX_ASSET_COUNT,
        }
    }
}

/// Files at the top of the directory that configure the deployment and
/// are never served, as wrangler leaves them out of the upload.
pub const IGNORED_ROOT_FILES: [&str; 3] = [".assetsignore", "_headers", "_redirects"];

/// Whether a file or directory name is a local-secrets file
/// (`.dev.vars`, `.dev.vars.<env>`), which is never an asset at any depth.
pub fn is_dev_vars(name: &str) -> bool {
    name == ".dev.vars" || name.starts_with(".dev.vars.")
}

/// Percent-decodes each segment of a request path (a segment that is not
/// valid UTF-8 once decoded stays as it was) and collapses runs of `/`, so
/// `/a//b%20c` names the file `a/b c`.
pub fn decode_path(raw: &str) -> String {
    let joined = raw
        .split('/')
        .map(|segment| decode_component(segment).unwrap_or_else(|| segment.to_string()))
        .collect::<Vec<_>>()
        .join("/");
    let mut out = String::with_capacity(joined.len());
    for c in joined.chars() {
        if c == '/' && out.ends_with('/') {
            continue;
        }
        out.push(c);
    }
    out
}

fn decode_component(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hi = bytes.get(i + 1).and_then(|b| (*b as char).to_digit(16))?;
            let lo = bytes.get(i + 2).and_then(|b| (*b as char).to_digit(16))?;
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Encodes each segment as JavaScript's `encodeURIComponent` does; the
/// result is the canonical URL path of an asset, and a request for any
/// other spelling of it is redirected there.
pub fn encode_path(decoded: &str) -> String {
    decoded
        .split('/')
        .map(encode_component)
        .collect::<Vec<_>>()
        .join("/")
}

fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        let keep = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')'
            );
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The segments of a decoded path that may name a file below the assets
/// directory; `None` for anything that could leave it (`..`, `.`, a NUL,
/// a backslash) or that is not an absolute path.
pub fn file_segments(decoded: &str) -> Option<Vec<&str>> {
    let rest = decoded.strip_prefix('/')?;
    let segments: Vec<&str> = rest.split('/').collect();
    for s in &segments {
        if s.is_empty() || *s == "." || *s == ".." || s.contains('\0') || s.contains('\\') {
            return None;
        }
    }
    if segments.len() == 1 && IGNORED_ROOT_FILES.contains(&segments[0]) {
        return None;
    }
    Some(segments)
}

/// Whether a `run_worker_first` / static-routing pattern matches a request
/// path: `*` matches any run of characters (slashes included), everything
/// else matches itself, and the whole path must match.
pub fn route_pattern_matches(pattern: &str, path: &str) -> bool {
    let p = pattern.as_bytes();
    let s = path.as_bytes();
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if pi < p.len() && p[pi] == s[si] {
            pi += 1;
            si += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding_and_encoding() {
        assert_eq!(decode_path("/a//b%20c"), "/a/b c");
        assert_eq!(decode_path("/%2e%2e/x"), "/../x");
        assert_eq!(decode_path("/bad%zz"), "/bad%zz");
        assert_eq!(decode_path("/caf%C3%A9"), "/café");
        assert_eq!(encode_path("/café/[x].txt"), "/caf%C3%A9/%5Bx%5D.txt");
        assert_eq!(encode_path("/a b/c~d"), "/a%20b/c~d");
    }

    #[test]
    fn segments_refuse_escapes() {
        assert_eq!(file_segments("/a/b.txt"), Some(vec!["a", "b.txt"]));
        assert_eq!(file_segments("/../etc/passwd"), None);
        assert_eq!(file_segments("/a/./b"), None);
        assert_eq!(file_segments("/a/"), None);
        assert_eq!(file_segments("a"), None);
        assert_eq!(file_segments("/_headers"), None);
        assert_eq!(file_segments("/x/_headers"), Some(vec!["x", "_headers"]));
    }

    #[test]
    fn patterns() {
        assert!(route_pattern_matches("/api/*", "/api/users/1"));
        assert!(!route_pattern_matches("/api/*", "/api"));
        assert!(route_pattern_matches("/api*", "/api"));
        assert!(route_pattern_matches("/*.json", "/a/b.json"));
        assert!(!route_pattern_matches("/exact", "/exact/"));
        assert!(route_pattern_matches("/exact", "/exact"));
    }
}
