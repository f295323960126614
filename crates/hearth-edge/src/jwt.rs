//! JSON Web Token validation (RFC 7519) with `ring`: HS256, RS256, ES256
//! and EdDSA (Ed25519) signatures; `exp`/`nbf` with clock skew, `iss`,
//! `aud`. Keys come from PEM files (SubjectPublicKeyInfo), raw HMAC secret
//! files, or a JWKS document (RFC 7517).

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{self, UnparsedPublicKey};

/// The algorithms a policy may accept. `none` never is.
pub const ALGORITHMS: &[&str] = &["HS256", "RS256", "ES256", "EdDSA"];

/// Longest token read; a longer one is refused unparsed.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("no token")]
    Missing,
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    #[error("algorithm {0:?} is not accepted")]
    Algorithm(String),
    #[error("no key matches the token")]
    NoKey,
    #[error("bad signature")]
    Signature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet (nbf)")]
    NotYetValid,
    #[error("wrong issuer")]
    Issuer,
    #[error("wrong audience")]
    Audience,
}

impl JwtError {
    /// A short machine-readable reason for events and `WWW-Authenticate`.
    pub fn code(&self) -> &'static str {
        match self {
            JwtError::Missing => "missing_token",
            JwtError::Malformed(_) => "malformed_token",
            JwtError::Algorithm(_) => "algorithm_not_accepted",
            JwtError::NoKey => "unknown_key",
            JwtError::Signature => "bad_signature",
            JwtError::Expired => "expired",
            JwtError::NotYetValid => "not_yet_valid",
            JwtError::Issuer => "wrong_issuer",
            JwtError::Audience => "wrong_audience",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Material {
    Hmac(Vec<u8>),
    /// PKCS#1 RSAPublicKey DER.
    Rsa(Vec<u8>),
    RsaComponents {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// Uncompressed P-256 point.
    P256(Vec<u8>),
    Ed25519(Vec<u8>),
}

/// One verification key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    pub kid: Option<String>,
    material: Material,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "{0}: not a PEM public key (-----BEGIN PUBLIC KEY-----) of type RSA, EC P-256 or Ed25519"
    )]
    Pem(String),
    #[error("JWKS: {0}")]
    Jwks(String),
}

impl Key {
    pub fn hmac(secret: &[u8]) -> Key {
        Key {
            kid: None,
            material: Material::Hmac(secret.to_vec()),
        }
    }

    /// An HMAC secret read from a file (surrounding whitespace trimmed).
    pub fn hmac_file(path: &Path) -> Result<Key, KeyError> {
        let bytes = std::fs::read(path).map_err(|source| KeyError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let text = String::from_utf8_lossy(&bytes);
        Ok(Key::hmac(text.trim().as_bytes()))
    }

    /// A PEM `PUBLIC KEY` (SubjectPublicKeyInfo) file.
    pub fn pem_file(path: &Path) -> Result<Key, KeyError> {
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Key::pem(&text).ok_or_else(|| KeyError::Pem(path.display().to_string()))
    }

    pub fn pem(text: &str) -> Option<Key> {
        let start = text.find("-----BEGIN PUBLIC KEY-----")? + "-----BEGIN PUBLIC KEY-----".len();
        let end = text[start..].find("-----END PUBLIC KEY-----")? + start;
        let b64: String = text[start..end]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        let der = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
        Key::spki(&der)
    }

    /// A DER SubjectPublicKeyInfo.
    pub fn spki(der: &[u8]) -> Option<Key> {
        const RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
        const EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
        const P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
        const ED25519: &[u8] = &[0x2b, 0x65, 0x70];
        let (outer, _) = der_take(der, 0x30)?;
        let (alg, rest) = der_take(outer, 0x30)?;
        let (bits, _) = der_take(rest, 0x03)?;
        let (&unused, key) = bits.split_first()?;
        if unused != 0 {
            return None;
        }
        let (oid, params) = der_take(alg, 0x06)?;
        let material = if oid == RSA {
            Material::Rsa(key.to_vec())
        } else if oid == EC {
            let (curve, _) = der_take(params, 0x06)?;
            if curve != P256 {
                return None;
            }
            Material::P256(key.to_vec())
        } else if oid == ED25519 {
            Material::Ed25519(key.to_vec())
        } else {
            return None;
        };
        Some(Key {
            kid: None,
            material,
        })
    }

    /// The keys of a JWKS document; keys of unknown types are skipped.
    pub fn jwks(json: &[u8]) -> Result<Vec<Key>, KeyError> {
        let doc: serde_json::Value =
            serde_json::from_slice(json).map_err(|e| KeyError::Jwks(e.to_string()))?;
        let keys = doc["keys"]
            .as_array()
            .ok_or_else(|| KeyError::Jwks("no \"keys\" array".into()))?;
        let b = |k: &serde_json::Value, f: &str| {
            k[f].as_str()
                .and_then(|s| URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok())
        };
        let mut out = Vec::new();
        for k in keys {
            let kid = k["kid"].as_str().map(str::to_string);
            let material = match (k["kty"].as_str(), k["crv"].as_str()) {
                (Some("RSA"), _) => match (b(k, "n"), b(k, "e")) {
                    (Some(n), Some(e)) => Material::RsaComponents { n, e },
                    _ => continue,
                },
                (Some("EC"), Some("P-256")) => match (b(k, "x"), b(k, "y")) {
                    (Some(x), Some(y)) if x.len() == 32 && y.len() == 32 => {
                        let mut p = vec![4];
                        p.extend(x);
                        p.extend(y);
                        Material::P256(p)
                    }
                    _ => continue,
                },
                (Some("OKP"), Some("Ed25519")) => match b(k, "x") {
                    Some(x) => Material::Ed25519(x),
                    None => continue,
                },
                (Some("oct"), _) => match b(k, "k") {
                    Some(secret) => Material::Hmac(secret),
                    None => continue,
                },
                _ => continue,
            };
            out.push(Key { kid, material });
        }
        Ok(out)
    }

    fn fits(&self, alg: &str) -> bool {
        matches!(
            (alg, &self.material),
            ("HS256", Material::Hmac(_))
                | ("RS256", Material::Rsa(_) | Material::RsaComponents { .. })
                | ("ES256", Material::P256(_))
                | ("EdDSA", Material::Ed25519(_))
        )
    }

    fn verify(&self, message: &[u8], sig: &[u8]) -> bool {
        match &self.material {
            Material::Hmac(secret) => {
                let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
                ring::hmac::verify(&key, message, sig).is_ok()
            }
            Material::Rsa(der) => {
                UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, der)
                    .verify(message, sig)
                    .is_ok()
            }
            Material::RsaComponents { n, e } => signature::RsaPublicKeyComponents { n, e }
                .verify(&signature::RSA_PKCS1_2048_8192_SHA256, message, sig)
                .is_ok(),
            Material::P256(point) => {
                UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                    .verify(message, sig)
                    .is_ok()
            }
            Material::Ed25519(pk) => UnparsedPublicKey::new(&signature::ED25519, pk)
                .verify(message, sig)
                .is_ok(),
        }
    }
}

/// One DER element of `tag` at the start of `b`: its contents and what
/// follows it.
fn der_take(b: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&t, rest) = b.split_first()?;
    if t != tag {
        return None;
    }
    let (&l, rest) = rest.split_first()?;
    let (len, rest) = if l < 0x80 {
        (usize::from(l), rest)
    } else {
        let n = usize::from(l & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &x| (acc << 8) | usize::from(x));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((&rest[..len], &rest[len..]))
}

/// What a token must satisfy besides its signature.
#[derive(Debug, Clone)]
pub struct Validation<'a> {
    pub algorithms: &'a [String],
    pub issuer: Option<&'a str>,
    pub audiences: &'a [String],
    pub clock_skew_secs: u64,
    pub now_secs: u64,
}

/// The `kid` a token's header names, without verifying anything.
pub fn token_kid(token: &str) -> Option<String> {
    if token.len() > MAX_TOKEN_BYTES {
        return None;
    }
    let h = token.split('.').next()?;
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).ok()?).ok()?;
    header["kid"].as_str().map(str::to_string)
}

/// Verifies `token` and returns its claims.
pub fn verify(
    token: &str,
    keys: &[Key],
    v: &Validation<'_>,
) -> Result<serde_json::Map<String, serde_json::Value>, JwtError> {
    verify_in(token, &[keys], v)
}

/// Like [`verify`], with keys from several sets (files and a JWKS URL).
pub fn verify_in(
    token: &str,
    key_sets: &[&[Key]],
    v: &Validation<'_>,
) -> Result<serde_json::Map<String, serde_json::Value>, JwtError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(JwtError::Malformed("over-long"));
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed("a JWS compact token has three parts"));
    };
    let decode = |x: &str, what| {
        URL_SAFE_NO_PAD
            .decode(x)
            .map_err(|_| JwtError::Malformed(what))
    };
    let header: serde_json::Value = serde_json::from_slice(&decode(h, "header is not base64url")?)
        .map_err(|_| JwtError::Malformed("header is not JSON"))?;
    let alg = header["alg"]
        .as_str()
        .ok_or(JwtError::Malformed("no alg"))?;
    if !v.algorithms.iter().any(|a| a == alg) || !ALGORITHMS.contains(&alg) {
        return Err(JwtError::Algorithm(alg.to_string()));
    }
    if header.get("crit").is_some() {
        return Err(JwtError::Malformed(
            "crit header parameters are not understood",
        ));
    }
    let kid = header["kid"].as_str();
    let sig = decode(s, "signature is not base64url")?;
    let message = &token.as_bytes()[..h.len() + 1 + p.len()];
    let candidates: Vec<&Key> = key_sets
        .iter()
        .flat_map(|set| set.iter())
        .filter(|k| k.fits(alg) && (kid.is_none() || k.kid.is_none() || k.kid.as_deref() == kid))
        .collect();
    if candidates.is_empty() {
        return Err(JwtError::NoKey);
    }
    if !candidates.iter().any(|k| k.verify(message, &sig)) {
        return Err(JwtError::Signature);
    }
    let claims: serde_json::Value = serde_json::from_slice(&decode(p, "payload is not base64url")?)
        .map_err(|_| JwtError::Malformed("payload is not JSON"))?;
    let serde_json::Value::Object(claims) = claims else {
        return Err(JwtError::Malformed("payload is not a JSON object"));
    };
    let num = |k: &str| {
        claims.get(k).map(|x| {
            x.as_f64()
                .ok_or(JwtError::Malformed("exp/nbf must be numbers"))
        })
    };
    if let Some(exp) = num("exp").transpose()?
        && (v.now_secs as f64) >= exp + v.clock_skew_secs as f64
    {
        return Err(JwtError::Expired);
    }
    if let Some(nbf) = num("nbf").transpose()?
        && (v.now_secs as f64) + (v.clock_skew_secs as f64) < nbf
    {
        return Err(JwtError::NotYetValid);
    }
    if let Some(iss) = v.issuer
        && claims.get("iss").and_then(|x| x.as_str()) != Some(iss)
    {
        return Err(JwtError::Issuer);
    }
    if !v.audiences.is_empty() {
        let ok = match claims.get("aud") {
            Some(serde_json::Value::String(a)) => v.audiences.contains(a),
            Some(serde_json::Value::Array(list)) => list.iter().any(|a| {
                a.as_str()
                    .is_some_and(|a| v.audiences.iter().any(|x| x == a))
            }),
            _ => false,
        };
        if !ok {
            return Err(JwtError::Audience);
        }
    }
    Ok(claims)
}

/// Claims as the Rules language's `http.request.jwt.claims` map: each
/// claim's string forms (arrays give one value per element).
pub fn claim_map(
    claims: &serde_json::Map<String, serde_json::Value>,
) -> Vec<(String, Vec<String>)> {
    let one = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    claims
        .iter()
        .map(|(k, v)| {
            let vals = match v {
                serde_json::Value::Array(a) => a.iter().filter_map(one).collect(),
                v => one(v).into_iter().collect(),
            };
            (k.clone(), vals)
        })
        .collect()
}
