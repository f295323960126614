//! How a stored response answers a request: conditional requests
//! (`If-None-Match`, `If-Modified-Since`) get 304, `Range` gets 206 (one
//! range, or `multipart/byteranges` for several) or 416 when nothing of the
//! body is in range.

use crate::policy::{header, http_date_ms};

/// What a `Range` header asks of a body of a known length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeAsk {
    /// No `Range`, or one that does not parse: the whole body.
    Whole,
    /// Inclusive byte ranges, each inside the body.
    Ranges(Vec<(u64, u64)>),
    /// A well-formed `Range` none of whose ranges overlap the body.
    Unsatisfiable,
}

/// Parses `bytes=0-9, 20-, -5` against a body of `len` bytes (RFC 9110 14.2).
pub fn parse_range(value: &str, len: u64) -> RangeAsk {
    let value = value.trim();
    let Some(unit_end) = value.find('=') else {
        return RangeAsk::Whole;
    };
    if !value[..unit_end].trim().eq_ignore_ascii_case("bytes") {
        return RangeAsk::Whole;
    }
    let mut ranges = Vec::new();
    for spec in value[unit_end + 1..].split(',') {
        let spec = spec.trim();
        if spec.is_empty() {
            continue;
        }
        let Some((first, last)) = spec.split_once('-') else {
            return RangeAsk::Whole;
        };
        let (first, last) = (first.trim(), last.trim());
        let range = if first.is_empty() {
            // A suffix: the last N bytes.
            let Ok(n) = last.parse::<u64>() else {
                return RangeAsk::Whole;
            };
            if n == 0 || len == 0 {
                None
            } else {
                Some((len.saturating_sub(n), len - 1))
            }
        } else {
            let Ok(start) = first.parse::<u64>() else {
                return RangeAsk::Whole;
            };
            let end = if last.is_empty() {
                u64::MAX
            } else {
                match last.parse::<u64>() {
                    Ok(e) if e >= start => e,
                    _ => return RangeAsk::Whole,
                }
            };
            (start < len).then(|| (start, end.min(len - 1)))
        };
        ranges.extend(range);
    }
    if ranges.is_empty() {
        RangeAsk::Unsatisfiable
    } else {
        RangeAsk::Ranges(ranges)
    }
}

/// Whether `If-None-Match` (weak comparison) or, without it,
/// `If-Modified-Since` makes the stored response a 304.
pub fn not_modified(request: &[(String, String)], stored: &[(String, String)]) -> bool {
    if let Some(inm) = header(request, "if-none-match") {
        let Some(etag) = header(stored, "etag") else {
            return false;
        };
        let bare = |t: &str| t.trim().trim_start_matches("W/").to_string();
        let etag = bare(etag);
        return inm.split(',').any(|t| t.trim() == "*" || bare(t) == etag);
    }
    if let Some(ims) = header(request, "if-modified-since") {
        let (Some(since), Some(modified)) = (
            http_date_ms(ims),
            header(stored, "last-modified").and_then(http_date_ms),
        ) else {
            return false;
        };
        return modified <= since;
    }
    false
}

/// A `multipart/byteranges` body for several ranges of `body`.
pub fn multipart(
    body: &[u8],
    ranges: &[(u64, u64)],
    content_type: Option<&str>,
    boundary: &str,
) -> Vec<u8> {
    let len = body.len();
    let mut out = Vec::new();
    for &(start, end) in ranges {
        out.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        if let Some(ct) = content_type {
            out.extend_from_slice(format!("Content-Type: {ct}\r\n").as_bytes());
        }
        out.extend_from_slice(
            format!("Content-Range: bytes {start}-{end}/{len}\r\n\r\n").as_bytes(),
        );
        out.extend_from_slice(&body[start as usize..=end as usize]);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-4", 10), RangeAsk::Ranges(vec![(0, 4)]));
        assert_eq!(parse_range("bytes=5-", 10), RangeAsk::Ranges(vec![(5, 9)]));
        assert_eq!(parse_range("bytes=-3", 10), RangeAsk::Ranges(vec![(7, 9)]));
        assert_eq!(parse_range("bytes=-30", 10), RangeAsk::Ranges(vec![(0, 9)]));
        assert_eq!(
            parse_range("bytes=8-100", 10),
            RangeAsk::Ranges(vec![(8, 9)])
        );
        assert_eq!(parse_range("bytes=10-", 10), RangeAsk::Unsatisfiable);
        assert_eq!(parse_range("bytes=5-2", 10), RangeAsk::Whole);
        assert_eq!(parse_range("items=0-1", 10), RangeAsk::Whole);
        assert_eq!(
            parse_range("bytes=0-0, -1", 10),
            RangeAsk::Ranges(vec![(0, 0), (9, 9)])
        );
    }

    #[test]
    fn conditionals() {
        let h = |p: &[(&str, &str)]| -> Vec<(String, String)> {
            p.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        let stored = h(&[
            ("etag", "\"v1\""),
            ("last-modified", "Sun, 06 Nov 1994 08:49:37 GMT"),
        ]);
        assert!(not_modified(&h(&[("if-none-match", "W/\"v1\"")]), &stored));
        assert!(!not_modified(&h(&[("if-none-match", "\"v2\"")]), &stored));
        assert!(not_modified(
            &h(&[("if-modified-since", "Sun, 06 Nov 1994 08:49:37 GMT")]),
            &stored
        ));
        assert!(!not_modified(
            &h(&[("if-modified-since", "Sat, 05 Nov 1994 08:49:37 GMT")]),
            &stored
        ));
    }
}
