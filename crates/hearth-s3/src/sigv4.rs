//! AWS Signature Version 4 as S3 uses it: the `Authorization` header form,
//! the presigned-URL (query) form, and the seed signature of streamed
//! `aws-chunked` bodies.
//!
//! Everything here is pure: parsing takes strings, verification takes the
//! secret, and the caller supplies the time. Nothing panics on any input.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::error::S3Error;

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
pub const STREAMING_PAYLOAD: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
pub const STREAMING_UNSIGNED_TRAILER: &str = "STREAMING-UNSIGNED-PAYLOAD-TRAILER";
/// Signed chunks followed by a trailer with its own signature.
pub const STREAMING_PAYLOAD_TRAILER: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER";
/// The hex SHA-256 of nothing: the payload hash of an empty signed body.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/// Most a request's time may differ from the server's (S3: 15 minutes).
pub const MAX_SKEW_MS: u64 = 15 * 60 * 1000;
/// Longest validity of a presigned URL (S3: 7 days).
pub const MAX_PRESIGN_EXPIRES_SECS: u64 = 7 * 24 * 60 * 60;
/// Longest Authorization header or credential we look at.
const MAX_AUTH_LEN: usize = 8 * 1024;

type HmacSha256 = Hmac<Sha256>;

/// `<key id>/<yyyymmdd>/<region>/<service>/aws4_request`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub access_key_id: String,
    pub date: String,
    pub region: String,
    pub service: String,
}

impl Credential {
    pub fn parse(s: &str) -> Result<Self, S3Error> {
        let bad = |why: &str| {
            S3Error::authorization_header_malformed(format!(
                "the Credential {s:?} is not <access key id>/<yyyymmdd>/<region>/s3/aws4_request: {why}"
            ))
        };
        let parts: Vec<&str> = s.split('/').collect();
        let [key, date, region, service, terminator] = parts.as_slice() else {
            return Err(bad("it needs five parts separated by '/'"));
        };
        if key.is_empty() {
            return Err(bad("the access key id is empty"));
        }
        if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("the date is not eight digits"));
        }
        if region.is_empty() {
            return Err(bad("the region is empty"));
        }
        if *service != "s3" {
            return Err(bad("the service is not s3"));
        }
        if *terminator != "aws4_request" {
            return Err(bad("it does not end in aws4_request"));
        }
        Ok(Self {
            access_key_id: key.to_string(),
            date: date.to_string(),
            region: region.to_string(),
            service: service.to_string(),
        })
    }

    pub fn scope(&self) -> String {
        format!(
            "{}/{}/{}/aws4_request",
            self.date, self.region, self.service
        )
    }
}

/// What the `Authorization` header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthHeader {
    pub credential: Credential,
    /// Lower-case header names, in the order given (they must be sorted).
    pub signed_headers: Vec<String>,
    pub signature: String,
}

impl AuthHeader {
    pub fn parse(header: &str) -> Result<Self, S3Error> {
        if header.len() > MAX_AUTH_LEN {
            return Err(S3Error::authorization_header_malformed(
                "the Authorization header is too long".to_string(),
            ));
        }
        let Some(rest) = header.strip_prefix(ALGORITHM) else {
            return Err(S3Error::authorization_header_malformed(format!(
                "only {ALGORITHM} is supported"
            )));
        };
        if !rest.starts_with(' ') {
            return Err(S3Error::authorization_header_malformed(format!(
                "expected a space after {ALGORITHM}"
            )));
        }
        let mut credential = None;
        let mut signed = None;
        let mut signature = None;
        for part in rest.split(',') {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let Some((name, value)) = part.split_once('=') else {
                return Err(S3Error::authorization_header_malformed(format!(
                    "{part:?} is not name=value"
                )));
            };
            match name {
                "Credential" => credential = Some(Credential::parse(value)?),
                "SignedHeaders" => signed = Some(parse_signed_headers(value)?),
                "Signature" => signature = Some(parse_signature(value)?),
                _ => {
                    return Err(S3Error::authorization_header_malformed(format!(
                        "unknown component {name:?}"
                    )));
                }
            }
        }
        let missing = |what: &str| {
            S3Error::authorization_header_malformed(format!(
                "the Authorization header has no {what}"
            ))
        };
        Ok(Self {
            credential: credential.ok_or_else(|| missing("Credential"))?,
            signed_headers: signed.ok_or_else(|| missing("SignedHeaders"))?,
            signature: signature.ok_or_else(|| missing("Signature"))?,
        })
    }
}

fn parse_signed_headers(value: &str) -> Result<Vec<String>, S3Error> {
    let names: Vec<String> = value.split(';').map(str::to_string).collect();
    let valid = names.iter().all(|n| {
        !n.is_empty()
            && n.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    });
    if !valid {
        return Err(S3Error::authorization_header_malformed(format!(
            "SignedHeaders {value:?} must be lower-case header names separated by ';'"
        )));
    }
    if !names.iter().any(|n| n == "host") {
        return Err(S3Error::authorization_header_malformed(
            "SignedHeaders must include host".to_string(),
        ));
    }
    Ok(names)
}

fn parse_signature(value: &str) -> Result<String, S3Error> {
    if value.len() != 64 || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(S3Error::authorization_header_malformed(
            "the Signature is not 64 hex digits".to_string(),
        ));
    }
    Ok(value.to_ascii_lowercase())
}

/// The `X-Amz-*` parameters of a presigned URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presigned {
    pub credential: Credential,
    pub amz_date: String,
    pub expires_secs: u64,
    pub signed_headers: Vec<String>,
    pub signature: String,
}

impl Presigned {
    /// `query` is the decoded query parameters. `Ok(None)` when the URL is
    /// not presigned at all.
    pub fn parse(query: &[(String, String)]) -> Result<Option<Self>, S3Error> {
        let get = |name: &str| {
            query
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let Some(algorithm) = get("X-Amz-Algorithm") else {
            return Ok(None);
        };
        if algorithm != ALGORITHM {
            return Err(S3Error::authorization_query_malformed(format!(
                "X-Amz-Algorithm must be {ALGORITHM}"
            )));
        }
        let need = |name: &str| {
            get(name).ok_or_else(|| {
                S3Error::authorization_query_malformed(format!("the query has no {name}"))
            })
        };
        let credential = Credential::parse(need("X-Amz-Credential")?)?;
        let amz_date = need("X-Amz-Date")?.to_string();
        parse_amz_date(&amz_date)?;
        let expires = need("X-Amz-Expires")?;
        let expires_secs: u64 = expires.parse().map_err(|_| {
            S3Error::authorization_query_malformed(format!(
                "X-Amz-Expires {expires:?} is not a number of seconds"
            ))
        })?;
        if expires_secs > MAX_PRESIGN_EXPIRES_SECS {
            return Err(S3Error::authorization_query_malformed(format!(
                "X-Amz-Expires must be at most {MAX_PRESIGN_EXPIRES_SECS} seconds (7 days)"
            )));
        }
        let signed_headers = parse_signed_headers(need("X-Amz-SignedHeaders")?)?;
        let signature = parse_signature(need("X-Amz-Signature")?)?;
        Ok(Some(Self {
            credential,
            amz_date,
            expires_secs,
            signed_headers,
            signature,
        }))
    }
}

/// `yyyymmddThhmmssZ` to milliseconds since the Unix epoch.
pub fn parse_amz_date(s: &str) -> Result<u64, S3Error> {
    let bad = || S3Error::access_denied(format!("X-Amz-Date {s:?} is not yyyymmddThhmmssZ"));
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| -> Result<u32, S3Error> {
        let part = s.get(r).ok_or_else(bad)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        part.parse().map_err(|_| bad())
    };
    let (y, mo, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (h, mi, se) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return Err(bad());
    }
    let days = crate::time::days_from_civil(i64::from(y), mo, d);
    let secs = days * 86_400 + i64::from(h) * 3600 + i64::from(mi) * 60 + i64::from(se);
    u64::try_from(secs).map(|s| s * 1000).map_err(|_| bad())
}

/// RFC 3986 encoding as SigV4 wants it: everything but `A-Za-z0-9-_.~`,
/// and `/` too unless `keep_slash`.
pub fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b'/' if keep_slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Decodes `%XX` escapes (`+` stays a plus, as S3 reads it in paths).
pub fn percent_decode(s: &str) -> Result<String, S3Error> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| S3Error::invalid_argument(format!("{s:?} does not decode to UTF-8")))
}

/// Splits a raw query string into decoded pairs, in order.
pub fn parse_query(raw: &str) -> Result<Vec<(String, String)>, S3Error> {
    let mut out = Vec::new();
    for pair in raw.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        out.push((percent_decode(k)?, percent_decode(v)?));
    }
    Ok(out)
}

/// The canonical query string: every parameter but `X-Amz-Signature`,
/// encoded, sorted by name then value.
pub fn canonical_query(query: &[(String, String)]) -> String {
    let mut pairs: Vec<(String, String)> = query
        .iter()
        .filter(|(k, _)| k != "X-Amz-Signature")
        .map(|(k, v)| (uri_encode(k, false), uri_encode(v, false)))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// `name:value\n` for each signed header: values trimmed, inner runs of
/// spaces collapsed, repeated headers joined with commas. A signed header
/// the request lacks is an error.
pub fn canonical_headers<'a>(
    signed: &[String],
    lookup: impl Fn(&str) -> Vec<&'a str>,
) -> Result<String, S3Error> {
    let mut out = String::new();
    for name in signed {
        let values = lookup(name);
        if values.is_empty() {
            return Err(S3Error::access_denied(format!(
                "the signed header {name:?} is not in the request"
            )));
        }
        let joined: Vec<String> = values
            .iter()
            .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        out.push_str(name);
        out.push(':');
        out.push_str(&joined.join(","));
        out.push('\n');
    }
    Ok(out)
}

pub struct CanonicalRequest<'a> {
    pub method: &'a str,
    /// The path exactly as sent (S3 does not normalise it).
    pub raw_path: &'a str,
    pub canonical_query: String,
    pub canonical_headers: String,
    pub signed_headers: &'a [String],
    pub payload_hash: &'a str,
}

impl CanonicalRequest<'_> {
    pub fn render(&self) -> String {
        format!(
            "{}\n{}\n{}\n{}\n{}\n{}",
            self.method,
            self.raw_path,
            self.canonical_query,
            self.canonical_headers,
            self.signed_headers.join(";"),
            self.payload_hash
        )
    }
}

pub fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    )
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// The key derived from the secret for one day, region and service.
#[derive(Clone)]
pub struct SigningKey([u8; 32]);

impl SigningKey {
    pub fn derive(secret: &str, credential: &Credential) -> Self {
        let k_date = hmac(
            format!("AWS4{secret}").as_bytes(),
            credential.date.as_bytes(),
        );
        let k_region = hmac(&k_date, credential.region.as_bytes());
        let k_service = hmac(&k_region, credential.service.as_bytes());
        Self(hmac(&k_service, b"aws4_request"))
    }

    pub fn sign(&self, string_to_sign: &str) -> String {
        hex::encode(hmac(&self.0, string_to_sign.as_bytes()))
    }

    /// Compares in constant time.
    pub fn verify(&self, string_to_sign: &str, signature: &str) -> bool {
        let Ok(given) = hex::decode(signature) else {
            return false;
        };
        let Ok(mut mac) = <HmacSha256 as Mac>::new_from_slice(&self.0) else {
            return false;
        };
        mac.update(string_to_sign.as_bytes());
        mac.verify_slice(&given).is_ok()
    }
}

/// The string signed for one chunk of a `STREAMING-AWS4-HMAC-SHA256-PAYLOAD`
/// body, chained on the previous chunk's signature.
pub fn chunk_string_to_sign(
    amz_date: &str,
    scope: &str,
    previous_signature: &str,
    chunk_sha256_hex: &str,
) -> String {
    format!(
        "AWS4-HMAC-SHA256-PAYLOAD\n{amz_date}\n{scope}\n{previous_signature}\n{EMPTY_SHA256}\n{chunk_sha256_hex}"
    )
}

/// The string to sign for the trailer of a signed `aws-chunked` body
/// (`STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER`): chained on the final,
/// empty chunk's signature, over the trailer lines as `name:value\n`.
pub fn trailer_string_to_sign(
    amz_date: &str,
    scope: &str,
    previous_signature: &str,
    trailer_sha256_hex: &str,
) -> String {
    format!(
        "AWS4-HMAC-SHA256-TRAILER\n{amz_date}\n{scope}\n{previous_signature}\n{trailer_sha256_hex}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked example of AWS's SigV4 documentation for S3 (GET with a
    /// Range header).
    #[test]
    fn aws_documented_get_object_example() {
        let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
        let auth = AuthHeader::parse(
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
        )
        .unwrap();
        let headers = [
            ("host", "examplebucket.s3.amazonaws.com"),
            ("range", "bytes=0-9"),
            ("x-amz-content-sha256", EMPTY_SHA256),
            ("x-amz-date", "20130524T000000Z"),
        ];
        let ch = canonical_headers(&auth.signed_headers, |n| {
            headers
                .iter()
                .filter(|(k, _)| *k == n)
                .map(|(_, v)| *v)
                .collect()
        })
        .unwrap();
        let cr = CanonicalRequest {
            method: "GET",
            raw_path: "/test.txt",
            canonical_query: String::new(),
            canonical_headers: ch,
            signed_headers: &auth.signed_headers,
            payload_hash: EMPTY_SHA256,
        };
        let sts = string_to_sign("20130524T000000Z", &auth.credential.scope(), &cr.render());
        let key = SigningKey::derive(secret, &auth.credential);
        assert_eq!(key.sign(&sts), auth.signature);
        assert!(key.verify(&sts, &auth.signature));
        let wrong = SigningKey::derive("not the secret", &auth.credential);
        assert!(!wrong.verify(&sts, &auth.signature));
    }

    /// AWS's presigned-URL example (GET test.txt, 86400 seconds).
    #[test]
    fn aws_documented_presigned_example() {
        let query = parse_query(
            "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404",
        )
        .unwrap();
        let p = Presigned::parse(&query).unwrap().unwrap();
        assert_eq!(p.expires_secs, 86400);
        let cr = CanonicalRequest {
            method: "GET",
            raw_path: "/test.txt",
            canonical_query: canonical_query(&query),
            canonical_headers: "host:examplebucket.s3.amazonaws.com\n".to_string(),
            signed_headers: &p.signed_headers,
            payload_hash: UNSIGNED_PAYLOAD,
        };
        let sts = string_to_sign(&p.amz_date, &p.credential.scope(), &cr.render());
        let key = SigningKey::derive("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", &p.credential);
        assert_eq!(key.sign(&sts), p.signature);
    }

    #[test]
    fn malformed_headers_are_named() {
        for (h, want) in [
            ("AWS4-HMAC-SHA1 Credential=a", "only AWS4-HMAC-SHA256"),
            (
                "AWS4-HMAC-SHA256 Credential=AK/2013/us/s3/aws4_request,SignedHeaders=host,Signature=00",
                "eight digits",
            ),
            (
                "AWS4-HMAC-SHA256 Credential=AK/20130524/us/s3/aws4_request,SignedHeaders=Host,Signature=00",
                "lower-case",
            ),
            (
                "AWS4-HMAC-SHA256 Credential=AK/20130524/us/s3/aws4_request,SignedHeaders=host",
                "no Signature",
            ),
        ] {
            let e = AuthHeader::parse(h).unwrap_err();
            assert!(e.message.contains(want), "{h}: {}", e.message);
            assert_eq!(e.code, "AuthorizationHeaderMalformed");
        }
    }

    #[test]
    fn amz_dates() {
        assert_eq!(parse_amz_date("19700101T000001Z").unwrap(), 1000);
        assert_eq!(
            parse_amz_date("20130524T000000Z").unwrap(),
            1_369_353_600_000
        );
        assert!(parse_amz_date("20131324T000000Z").is_err());
        assert!(parse_amz_date("2013052400000Z").is_err());
        assert!(parse_amz_date("2013+524T000000Z").is_err());
    }
}
