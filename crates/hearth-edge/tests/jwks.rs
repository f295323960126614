//! JWT keys from a JWKS URL, against a loopback identity provider that
//! rotates its keys: the cache, the fetch on an unknown `kid`, the floor
//! between such fetches, the cache's age limit on the injected clock, and
//! the size cap and deadline of a fetch.

use std::borrow::Cow;
use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hearth_core::ManualClock;
use hearth_edge::jwks::{JwksSettings, JwksSource, MAX_JWKS_BYTES, MIN_REFETCH_MS};
use hearth_edge::{Edge, EdgeRequest, Verdict};
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair as _};

/// What the provider answers.
#[derive(Clone)]
enum Answer {
    Jwks(String),
    Status(u16),
    /// A body this many bytes long.
    Huge(usize),
    /// Accepts and never answers.
    Silent,
}

/// A loopback JWKS endpoint counting its requests.
struct Provider {
    url: String,
    answer: Arc<Mutex<Answer>>,
    hits: Arc<AtomicUsize>,
}

impl Provider {
    fn start(answer: Answer) -> Provider {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!(
            "http://{}/.well-known/jwks.json",
            listener.local_addr().unwrap()
        );
        let answer = Arc::new(Mutex::new(answer));
        let hits = Arc::new(AtomicUsize::new(0));
        let (a, h) = (answer.clone(), hits.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { return };
                let a = a.clone();
                h.fetch_add(1, Ordering::SeqCst);
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(conn.try_clone().unwrap());
                    let mut line = String::new();
                    while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                        if line == "\r\n" {
                            break;
                        }
                        line.clear();
                    }
                    let answer = a.lock().unwrap().clone();
                    let (status, body) = match answer {
                        Answer::Jwks(doc) => (200, doc.into_bytes()),
                        Answer::Status(s) => (s, b"{}".to_vec()),
                        Answer::Huge(n) => (200, vec![b' '; n]),
                        Answer::Silent => {
                            std::thread::sleep(std::time::Duration::from_secs(5));
                            return;
                        }
                    };
                    let head = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = conn.write_all(head.as_bytes());
                    let _ = conn.write_all(&body);
                });
            }
        });
        Provider { url, answer, hits }
    }

    fn set(&self, answer: Answer) {
        *self.answer.lock().unwrap() = answer;
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

struct Signer {
    kid: String,
    pair: Ed25519KeyPair,
}

impl Signer {
    fn new(kid: &str) -> Signer {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        Signer {
            kid: kid.into(),
            pair: Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap(),
        }
    }

    fn jwk(&self) -> serde_json::Value {
        serde_json::json!({
            "kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA",
            "kid": self.kid, "x": B64.encode(self.pair.public_key().as_ref()),
        })
    }

    fn token(&self, now_secs: u64) -> String {
        let head = serde_json::json!({"alg": "EdDSA", "typ": "JWT", "kid": self.kid});
        let claims = serde_json::json!({"sub": "user-1", "iss": "https://idp.example.test/", "exp": now_secs + 600});
        let msg = format!(
            "{}.{}",
            B64.encode(head.to_string()),
            B64.encode(claims.to_string())
        );
        let sig = self.pair.sign(msg.as_bytes());
        format!("{msg}.{}", B64.encode(sig.as_ref()))
    }
}

fn jwks(signers: &[&Signer]) -> Answer {
    Answer::Jwks(
        serde_json::json!({"keys": signers.iter().map(|s| s.jwk()).collect::<Vec<_>>()})
            .to_string(),
    )
}

fn edge(dir: &tempfile::TempDir, url: &str, clock: &ManualClock) -> Edge {
    let zone = dir.path().join("hearth.toml");
    std::fs::write(
        &zone,
        format!(
            r#"
[[jwt]]
id = "idp"
algorithms = ["EdDSA"]
issuer = "https://idp.example.test/"
jwks_url = "{url}"
jwks_max_age = 300
jwks_timeout_ms = 2000
"#
        ),
    )
    .unwrap();
    Edge::load(&zone, None, clock.shared()).unwrap()
}

/// The status the edge answers for a request bearing `token`: 200 when it
/// would reach the worker.
fn status(edge: &Edge, token: &str) -> u16 {
    let auth = format!("Bearer {token}");
    let req = EdgeRequest {
        method: "GET",
        host: "example.com",
        path: "/api/me",
        query: "",
        headers: vec![("authorization", Cow::Owned(auth))],
        peer: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7)),
        tls: true,
        port: 443,
        version: "HTTP/1.1",
        ray: "0000000000000001",
    };
    match edge.check(&req) {
        Verdict::Pass(_) => 200,
        Verdict::Reply(r) => r.status,
    }
}

#[test]
fn keys_are_cached_refetched_on_rotation_and_after_their_max_age() {
    let clock = ManualClock::new(1_800_000_000_000);
    let now_secs = || {
        use hearth_core::Clock as _;
        clock.now_ms() / 1000
    };
    let (a, b, c) = (
        Signer::new("key-a"),
        Signer::new("key-b"),
        Signer::new("key-c"),
    );
    let idp = Provider::start(jwks(&[&a]));
    let dir = tempfile::tempdir().unwrap();
    let edge = edge(&dir, &idp.url, &clock);
    // Fetched once at load; tokens then verify from the cache.
    assert_eq!(idp.hits(), 1);
    for _ in 0..5 {
        assert_eq!(status(&edge, &a.token(now_secs())), 200);
    }
    assert_eq!(idp.hits(), 1, "verified from the cache");

    // A token no key signed, under a kid the cache has, is refused without a fetch.
    let forged = Signer {
        kid: "key-a".into(),
        pair: Signer::new("x").pair,
    };
    assert_eq!(status(&edge, &forged.token(now_secs())), 401);
    assert_eq!(idp.hits(), 1);

    // The provider rotates to key B: its first token fetches the set again.
    idp.set(jwks(&[&b]));
    clock.advance_ms(MIN_REFETCH_MS);
    assert_eq!(status(&edge, &b.token(now_secs())), 200);
    assert_eq!(idp.hits(), 2);
    // Key A is gone from the set: its tokens are refused now.
    assert_eq!(status(&edge, &a.token(now_secs())), 401);

    // Tokens with unknown kids fetch at most once per floor interval.
    idp.set(jwks(&[&b, &c]));
    clock.advance_ms(MIN_REFETCH_MS);
    let unknown = Signer::new("made-up");
    for _ in 0..10 {
        assert_eq!(status(&edge, &unknown.token(now_secs())), 401);
    }
    assert_eq!(idp.hits(), 3, "one fetch for ten unknown-kid tokens");
    // That fetch brought key C, so its token passes without another.
    assert_eq!(status(&edge, &c.token(now_secs())), 200);
    assert_eq!(idp.hits(), 3);

    // Past the max age the set is fetched again even for known kids.
    idp.set(jwks(&[&c]));
    clock.advance_ms(299_000);
    assert_eq!(status(&edge, &b.token(now_secs())), 200);
    assert_eq!(idp.hits(), 3, "still within 300 s of the last fetch");
    clock.advance_ms(2_000);
    assert_eq!(status(&edge, &b.token(now_secs())), 401);
    assert_eq!(idp.hits(), 4);
    assert_eq!(status(&edge, &c.token(now_secs())), 200);

    // The provider failing keeps the keys held, and is not asked again
    // before the floor interval.
    idp.set(Answer::Status(503));
    clock.advance_ms(301_000);
    assert_eq!(status(&edge, &c.token(now_secs())), 200);
    assert_eq!(idp.hits(), 5);
    clock.advance_ms(1_000);
    assert_eq!(status(&edge, &c.token(now_secs())), 200);
    assert_eq!(idp.hits(), 5);

    // A reload with the same URL keeps the cache: no fetch.
    edge.reload().unwrap();
    assert_eq!(idp.hits(), 5);
    assert_eq!(status(&edge, &c.token(now_secs())), 200);
}

#[test]
fn a_fetch_is_size_capped_status_checked_and_has_a_deadline() {
    let settings = |url: &str, timeout_ms| JwksSettings {
        url: url.into(),
        max_age_secs: 600,
        timeout_ms,
    };
    let idp = Provider::start(Answer::Huge(MAX_JWKS_BYTES as usize + 1));
    let err = JwksSource::new(settings(&idp.url, 2_000))
        .fetch()
        .unwrap_err();
    assert!(err.to_string().contains("over"), "{err}");

    idp.set(Answer::Status(404));
    let err = JwksSource::new(settings(&idp.url, 2_000))
        .fetch()
        .unwrap_err();
    assert!(err.to_string().contains("status 404"), "{err}");

    idp.set(Answer::Jwks("{\"not_keys\": 1}".into()));
    let err = JwksSource::new(settings(&idp.url, 2_000))
        .fetch()
        .unwrap_err();
    assert!(err.to_string().contains("keys"), "{err}");

    idp.set(Answer::Silent);
    let started = std::time::Instant::now();
    let err = JwksSource::new(settings(&idp.url, 300))
        .fetch()
        .unwrap_err();
    // The deadline is what ends the fetch (the provider holds it for 5 s).
    assert!(
        started.elapsed() < std::time::Duration::from_secs(4),
        "{err}"
    );

    // A provider that never answered leaves no keys: tokens are refused.
    let clock = ManualClock::new(1_800_000_000_000);
    let dir = tempfile::tempdir().unwrap();
    idp.set(Answer::Status(500));
    let edge = edge(&dir, &idp.url, &clock);
    let a = Signer::new("key-a");
    assert_eq!(status(&edge, &a.token(1_800_000_000)), 401);
    // Once it answers (after the floor interval), the same token passes.
    idp.set(jwks(&[&a]));
    clock.advance_ms(MIN_REFETCH_MS);
    assert_eq!(status(&edge, &a.token(1_800_000_000)), 200);
}

#[test]
fn jwks_url_settings_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let zone = dir.path().join("hearth.toml");
    for (body, want) in [
        (
            "jwks_url = \"ftp://idp.example.test/keys\"",
            "jwt[0].jwks_url: \"ftp://idp.example.test/keys\": expected an http:// or https:// URL",
        ),
        (
            "jwks_url = \"https://idp.example.test/keys\"\njwks_max_age = 5",
            "jwt[0].jwks_max_age: 5 is out of range; expected 60 to 86400",
        ),
        (
            "keys = []\njwks_timeout_ms = 500",
            "jwt[0].jwks_timeout_ms: only applies with `jwks_url`",
        ),
    ] {
        std::fs::write(
            &zone,
            format!("[[jwt]]\nalgorithms = [\"EdDSA\"]\n{body}\n"),
        )
        .unwrap();
        let err = hearth_edge::config::load(&zone).unwrap_err().to_string();
        assert!(err.contains(want), "{err}\nwanted: {want}");
    }
}
