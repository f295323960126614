//! JWT signatures of every accepted algorithm, keys from PEM and JWKS,
//! and the claim checks. The RSA pair in `tests/keys/` exists only for
//! these tests.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hearth_edge::jwt::{JwtError, Key, Validation, verify};
use rcgen::PublicKeyData as _;
use ring::rand::SystemRandom;
use ring::signature;

fn token(
    alg: &str,
    kid: Option<&str>,
    claims: &serde_json::Value,
    sign: impl Fn(&[u8]) -> Vec<u8>,
) -> String {
    let mut head = serde_json::json!({"alg": alg, "typ": "JWT"});
    if let Some(k) = kid {
        head["kid"] = k.into();
    }
    let msg = format!(
        "{}.{}",
        B64.encode(head.to_string()),
        B64.encode(claims.to_string())
    );
    let sig = sign(msg.as_bytes());
    format!("{msg}.{}", B64.encode(sig))
}

fn validation(algs: &[String]) -> Validation<'_> {
    Validation {
        algorithms: algs,
        issuer: None,
        audiences: &[],
        clock_skew_secs: 0,
        now_secs: 1_000,
    }
}

fn claims() -> serde_json::Value {
    serde_json::json!({"sub": "u", "exp": 2_000})
}

fn pem_of(spki_der: &[u8]) -> String {
    let b = base64::engine::general_purpose::STANDARD.encode(spki_der);
    format!("-----BEGIN PUBLIC KEY-----\n{b}\n-----END PUBLIC KEY-----\n")
}

#[test]
fn es256_and_eddsa_verify_with_pem_keys_and_refuse_other_keys() {
    let rng = SystemRandom::new();
    let ec = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let ec_signer = signature::EcdsaKeyPair::from_pkcs8(
        &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &ec.serialize_der(),
        &rng,
    )
    .unwrap();
    let ec_key = Key::pem(&pem_of(&ec.subject_public_key_info())).expect("EC SPKI");
    let ed = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let ed_signer =
        signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(&ed.serialize_der()).unwrap();
    let ed_key = Key::pem(&pem_of(&ed.subject_public_key_info())).expect("Ed25519 SPKI");
    let algs = vec!["ES256".to_string(), "EdDSA".to_string()];

    let es = token("ES256", None, &claims(), |m| {
        ec_signer.sign(&rng, m).unwrap().as_ref().to_vec()
    });
    assert_eq!(
        verify(&es, &[ed_key.clone(), ec_key.clone()], &validation(&algs)).unwrap()["sub"],
        "u"
    );
    let eddsa = token("EdDSA", None, &claims(), |m| {
        ed_signer.sign(m).as_ref().to_vec()
    });
    assert!(
        verify(
            &eddsa,
            &[ec_key.clone(), ed_key.clone()],
            &validation(&algs)
        )
        .is_ok()
    );

    // Another EC key does not verify it; a tampered payload fails.
    let other = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let other_key = Key::pem(&pem_of(&other.subject_public_key_info())).unwrap();
    assert_eq!(
        verify(&es, &[other_key], &validation(&algs)),
        Err(JwtError::Signature)
    );
    let parts: Vec<&str> = es.split('.').collect();
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        B64.encode(r#"{"sub":"admin","exp":2000}"#),
        parts[2]
    );
    assert_eq!(
        verify(&forged, std::slice::from_ref(&ec_key), &validation(&algs)),
        Err(JwtError::Signature)
    );
    // An algorithm the policy does not list is refused before any key.
    assert!(matches!(
        verify(&es, &[ec_key], &validation(&["EdDSA".to_string()])),
        Err(JwtError::Algorithm(_))
    ));
}

#[test]
fn rs256_verifies_from_a_pem_file_and_from_jwks_components_with_kid() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/keys");
    let private = std::fs::read_to_string(dir.join("rsa-test-private.pem")).unwrap();
    let b64: String = private
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let pkcs8 = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    let signer = signature::RsaKeyPair::from_pkcs8(&pkcs8).unwrap();
    let rng = SystemRandom::new();
    let sign = |m: &[u8]| {
        let mut sig = vec![0; signer.public().modulus_len()];
        signer
            .sign(&signature::RSA_PKCS1_SHA256, &rng, m, &mut sig)
            .unwrap();
        sig
    };
    let algs = vec!["RS256".to_string()];
    let from_pem = Key::pem_file(&dir.join("rsa-test-public.pem")).unwrap();
    let t = token("RS256", None, &claims(), sign);
    assert!(verify(&t, &[from_pem], &validation(&algs)).is_ok());

    let comps: ring::rsa::PublicKeyComponents<Vec<u8>> = signer.public().into();
    let jwks = serde_json::json!({"keys": [
        {"kty": "RSA", "kid": "old", "n": B64.encode([1u8; 256]), "e": "AQAB"},
        {"kty": "RSA", "kid": "new", "n": B64.encode(&comps.n), "e": B64.encode(&comps.e)},
        {"kty": "unknown"}
    ]});
    let keys = Key::jwks(jwks.to_string().as_bytes()).unwrap();
    assert_eq!(keys.len(), 2);
    let with_kid = token("RS256", Some("new"), &claims(), sign);
    assert!(verify(&with_kid, &keys, &validation(&algs)).is_ok());
    // A kid that names the other key finds only that one, which fails.
    let wrong_kid = token("RS256", Some("old"), &claims(), sign);
    assert_eq!(
        verify(&wrong_kid, &keys, &validation(&algs)),
        Err(JwtError::Signature)
    );
    let unknown_kid = token("RS256", Some("gone"), &claims(), sign);
    assert_eq!(
        verify(&unknown_kid, &keys, &validation(&algs)),
        Err(JwtError::NoKey)
    );
}

#[test]
fn exp_nbf_iss_and_aud_are_checked_with_skew() {
    let key = Key::hmac(b"k");
    let sign = |m: &[u8]| {
        ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"k"), m)
            .as_ref()
            .to_vec()
    };
    let algs = vec!["HS256".to_string()];
    let aud = vec!["a".to_string(), "b".to_string()];
    let v = |now| Validation {
        algorithms: &algs,
        issuer: Some("iss"),
        audiences: &aud,
        clock_skew_secs: 10,
        now_secs: now,
    };
    let t = token(
        "HS256",
        None,
        &serde_json::json!({"iss": "iss", "aud": ["x", "b"], "nbf": 100, "exp": 200}),
        sign,
    );
    assert_eq!(
        verify(&t, std::slice::from_ref(&key), &v(89)),
        Err(JwtError::NotYetValid)
    );
    assert!(
        verify(&t, std::slice::from_ref(&key), &v(90)).is_ok(),
        "nbf within the skew"
    );
    assert!(
        verify(&t, std::slice::from_ref(&key), &v(209)).is_ok(),
        "exp within the skew"
    );
    assert_eq!(
        verify(&t, std::slice::from_ref(&key), &v(210)),
        Err(JwtError::Expired)
    );
    let t = token(
        "HS256",
        None,
        &serde_json::json!({"iss": "other", "aud": "a"}),
        sign,
    );
    assert_eq!(
        verify(&t, std::slice::from_ref(&key), &v(150)),
        Err(JwtError::Issuer)
    );
    let t = token(
        "HS256",
        None,
        &serde_json::json!({"iss": "iss", "aud": "c"}),
        sign,
    );
    assert_eq!(
        verify(&t, std::slice::from_ref(&key), &v(150)),
        Err(JwtError::Audience)
    );
    let t = token("HS256", None, &serde_json::json!({"iss": "iss"}), sign);
    assert_eq!(
        verify(&t, std::slice::from_ref(&key), &v(150)),
        Err(JwtError::Audience),
        "aud required when configured"
    );
    assert!(matches!(
        verify("a.b", std::slice::from_ref(&key), &v(150)),
        Err(JwtError::Malformed(_))
    ));
    assert!(matches!(
        verify(&"x".repeat(20_000), &[key], &v(150)),
        Err(JwtError::Malformed(_))
    ));
}
