//! The node-to-node channel's authentication: every call carries the
//! sending node, a timestamp and an HMAC-SHA256 over them, the path and
//! the body under the cluster's shared secret. A call older or newer than
//! [`MAX_SKEW_MS`] is refused, which bounds how long a captured call could
//! be replayed.

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const NODE_HEADER: &str = "x-hearth-node";
pub const TIME_HEADER: &str = "x-hearth-time";
pub const SIGNATURE_HEADER: &str = "x-hearth-signature";

/// How far a call's timestamp may be from the receiver's clock.
pub const MAX_SKEW_MS: u64 = 60_000;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("missing {0} header")]
    Missing(&'static str),
    #[error("bad {0} header")]
    Malformed(&'static str),
    #[error(
        "the call's timestamp is {0} ms from this node's clock (at most {MAX_SKEW_MS} allowed)"
    )]
    Skew(u64),
    #[error("signature does not match: the calling node has a different secret")]
    BadSignature,
}

fn mac(secret: &[u8], node: &str, time_ms: u64, path: &str, body: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
    mac.update(node.as_bytes());
    mac.update(b"\n");
    mac.update(time_ms.to_string().as_bytes());
    mac.update(b"\n");
    mac.update(path.as_bytes());
    mac.update(b"\n");
    mac.update(body);
    mac
}

/// The headers of a call from `node` at `time_ms`.
pub fn sign(
    secret: &[u8],
    node: &str,
    time_ms: u64,
    path: &str,
    body: &[u8],
) -> [(&'static str, String); 3] {
    let signature = hex::encode(
        mac(secret, node, time_ms, path, body)
            .finalize()
            .into_bytes(),
    );
    [
        (NODE_HEADER, node.to_owned()),
        (TIME_HEADER, time_ms.to_string()),
        (SIGNATURE_HEADER, signature),
    ]
}

/// Checks a call; returns the calling node's name.
pub fn verify<'a>(
    secret: &[u8],
    header: impl Fn(&str) -> Option<&'a str>,
    now_ms: u64,
    path: &str,
    body: &[u8],
) -> Result<&'a str, AuthError> {
    let node = header(NODE_HEADER).ok_or(AuthError::Missing(NODE_HEADER))?;
    let time: u64 = header(TIME_HEADER)
        .ok_or(AuthError::Missing(TIME_HEADER))?
        .parse()
        .map_err(|_| AuthError::Malformed(TIME_HEADER))?;
    let signature = header(SIGNATURE_HEADER).ok_or(AuthError::Missing(SIGNATURE_HEADER))?;
    let signature = hex::decode(signature).map_err(|_| AuthError::Malformed(SIGNATURE_HEADER))?;
    let skew = now_ms.abs_diff(time);
    if skew > MAX_SKEW_MS {
        return Err(AuthError::Skew(skew));
    }
    // verify_slice compares in constant time.
    mac(secret, node, time, path, body)
        .verify_slice(&signature)
        .map_err(|_| AuthError::BadSignature)?;
    Ok(node)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers<'a>(h: &'a [(&'static str, String); 3]) -> impl Fn(&str) -> Option<&'a str> + 'a {
        move |name| h.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }

    #[test]
    fn a_signed_call_verifies_and_any_change_fails() {
        let secret = [7u8; 32];
        let h = sign(&secret, "a", 1_000_000, "/do", b"body");
        assert_eq!(
            verify(&secret, headers(&h), 1_000_500, "/do", b"body"),
            Ok("a")
        );
        assert_eq!(
            verify(&secret, headers(&h), 1_000_500, "/do", b"bodx"),
            Err(AuthError::BadSignature)
        );
        assert_eq!(
            verify(&secret, headers(&h), 1_000_500, "/other", b"body"),
            Err(AuthError::BadSignature)
        );
        assert_eq!(
            verify(&[8u8; 32], headers(&h), 1_000_500, "/do", b"body"),
            Err(AuthError::BadSignature)
        );
        assert_eq!(
            verify(
                &secret,
                headers(&h),
                1_000_000 + MAX_SKEW_MS + 1,
                "/do",
                b"body"
            ),
            Err(AuthError::Skew(MAX_SKEW_MS + 1))
        );
        assert_eq!(
            verify(&secret, |_| None, 0, "/do", b""),
            Err(AuthError::Missing(NODE_HEADER))
        );
    }
}
