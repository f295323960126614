//! The edge in front of a worker, through real connections: TLS with a
//! test CA made here, HTTP/2 and HTTP/1.1 by ALPN, certificate renewal,
//! HTTP→HTTPS redirects, client IPs from trusted proxies only (headers and
//! PROXY protocol), custom and managed rules, JWTs, API keys, rate limits
//! on an injected clock, zone reloads, events and metrics.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;
use common::*;
use hearth_core::{Clock, ManualClock, SharedClock};
use hearth_http::{Edge, ServeOptions, Server};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::AsyncWriteExt;
use tokio::sync::oneshot;
use tokio_rustls::rustls;

/// Echoes what the worker was told about the client.
const ECHO: &str = r#"export default { async fetch(req) {
  const body = await req.text();
  return Response.json({
    ip: req.headers.get("cf-connecting-ip"),
    proto: req.cf && req.cf.httpProtocol,
    claims: req.headers.get("x-hearth-jwt-claims"),
    tenant: req.headers.get("x-hearth-tenant"),
    key: req.headers.get("x-hearth-api-key-id"),
    scopes: req.headers.get("x-hearth-api-key-scopes"),
    body,
  });
} };"#;

struct EdgeServer {
    addr: SocketAddr,
    edge_addrs: Vec<SocketAddr>,
    edge: Arc<Edge>,
    dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    handle: tokio::task::JoinHandle<Result<(), hearth_http::ServeError>>,
}

impl EdgeServer {
    async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        self.handle.await.unwrap().unwrap();
    }
}

/// Starts the echo worker behind the zone file `zone` (written into the
/// test directory beside `files`), with keys and events in `data/`.
async fn start_edge(zone: &str, files: &[(&str, &[u8])], clock: SharedClock) -> EdgeServer {
    let dir = tempfile::tempdir().unwrap();
    write_files(dir.path(), &[("index.js", ECHO)]);
    for (name, bytes) in files {
        std::fs::write(dir.path().join(name), bytes).unwrap();
    }
    let zone_path = dir.path().join("hearth.toml");
    std::fs::write(&zone_path, zone).unwrap();
    let data = dir.path().join("data");
    let config = hearth_edge::config::load(&zone_path).unwrap();
    let counter = hearth_edge::ratelimit::memory(clock.clone());
    let edge =
        Arc::new(Edge::from_config(&zone_path, config, Some(&data), clock, counter).unwrap());
    let mut opts = ServeOptions::new(small_config(dir.path()));
    opts.listen = "127.0.0.1:0".parse().unwrap();
    opts.internal_token = Some(INTERNAL_TOKEN.into());
    opts.edge = Some(edge.clone());
    let server = Server::bind(opts).await.unwrap();
    let addr = server.local_addr();
    let edge_addrs = server.edge_addrs();
    let (tx, rx) = oneshot::channel::<()>();
    let handle = tokio::spawn(server.run(async move {
        let _ = rx.await;
    }));
    EdgeServer {
        addr,
        edge_addrs,
        edge,
        dir,
        stop: Some(tx),
        handle,
    }
}

fn system() -> SharedClock {
    hearth_core::SystemClock::shared()
}

struct TestCa {
    cert_der: Vec<u8>,
    params: rcgen::CertificateParams,
    key: rcgen::KeyPair,
}

fn test_ca() -> TestCa {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Hearth test CA");
    let cert = params.self_signed(&key).unwrap();
    TestCa {
        cert_der: cert.der().to_vec(),
        params,
        key,
    }
}

/// A leaf for `names` signed by `ca`: (cert PEM, key PEM, cert DER).
fn leaf(ca: &TestCa, names: &[&str]) -> (String, String, Vec<u8>) {
    let key = rcgen::KeyPair::generate().unwrap();
    let params =
        rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap();
    let issuer = rcgen::Issuer::from_params(&ca.params, &ca.key);
    let cert = params.signed_by(&key, &issuer).unwrap();
    (cert.pem(), key.serialize_pem(), cert.der().to_vec())
}

struct TlsReply {
    status: u16,
    body: String,
    alpn: Option<Vec<u8>>,
    peer_cert: Vec<u8>,
}

/// One request over TLS to `addr` as `sni`, offering `alpn`, trusting only
/// `ca`.
async fn tls_request(
    addr: SocketAddr,
    ca: &[u8],
    sni: &str,
    alpn: &[&[u8]],
    path: &str,
) -> TlsReply {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(ca.to_vec()))
        .unwrap();
    let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    cfg.alpn_protocols = alpn.iter().map(|a| a.to_vec()).collect();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from(sni.to_string()).unwrap();
    let tls = connector.connect(name, tcp).await.unwrap();
    let (_, session) = tls.get_ref();
    let negotiated = session.alpn_protocol().map(<[u8]>::to_vec);
    let peer_cert = session.peer_certificates().unwrap()[0].to_vec();
    let req = http::Request::get(format!("https://{sni}{path}"))
        .header("host", sni)
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = if negotiated.as_deref() == Some(b"h2") {
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                .await
                .unwrap();
        tokio::spawn(conn);
        sender.send_request(req).await.unwrap()
    } else {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .unwrap();
        tokio::spawn(conn);
        sender.send_request(req).await.unwrap()
    };
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    TlsReply {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
        alpn: negotiated,
        peer_cert,
    }
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Reply {
    let mut b = http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "example.test");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    send(
        addr,
        b.body(Full::new(Bytes::from(body.to_string()))).unwrap(),
    )
    .await
}

const TLS_ZONE: &str = r#"
[[listeners]]
address = "127.0.0.1:0"
tls = true

[[listeners]]
address = "127.0.0.1:0"

[[tls.certificates]]
names = ["example.test", "*.example.test"]
cert = "site.crt"
key = "site.key"

[[tls.certificates]]
names = ["other.test"]
cert = "other.crt"
key = "other.key"

[[hosts]]
host = "secure.example.test"
redirect_https = true
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_serves_http2_and_http1_by_alpn_with_a_certificate_per_sni_name() {
    let ca = test_ca();
    let (site_crt, site_key, site_der) = leaf(&ca, &["example.test", "*.example.test"]);
    let (other_crt, other_key, other_der) = leaf(&ca, &["other.test"]);
    let s = start_edge(
        TLS_ZONE,
        &[
            ("site.crt", site_crt.as_bytes()),
            ("site.key", site_key.as_bytes()),
            ("other.crt", other_crt.as_bytes()),
            ("other.key", other_key.as_bytes()),
        ],
        system(),
    )
    .await;
    let tls_addr = s.edge_addrs[0];

    let h2 = tls_request(
        tls_addr,
        &ca.cert_der,
        "example.test",
        &[b"h2", b"http/1.1"],
        "/",
    )
    .await;
    assert_eq!(h2.alpn.as_deref(), Some(&b"h2"[..]));
    assert_eq!(h2.status, 200);
    assert_eq!(json(&h2.body)["proto"], "HTTP/2");
    assert_eq!(h2.peer_cert, site_der);

    let h1 = tls_request(
        tls_addr,
        &ca.cert_der,
        "api.example.test",
        &[b"http/1.1"],
        "/",
    )
    .await;
    assert_eq!(h1.alpn.as_deref(), Some(&b"http/1.1"[..]));
    assert_eq!(h1.status, 200);
    assert_eq!(json(&h1.body)["proto"], "HTTP/1.1");
    assert_eq!(
        h1.peer_cert, site_der,
        "the wildcard name picks the site certificate"
    );

    let other = tls_request(tls_addr, &ca.cert_der, "other.test", &[b"h2"], "/").await;
    assert_eq!(other.peer_cert, other_der);

    // A renewed certificate on disk is served to new connections.
    let (new_crt, new_key, new_der) = leaf(&ca, &["example.test", "*.example.test"]);
    std::fs::write(s.dir.path().join("site.key"), new_key).unwrap();
    std::fs::write(s.dir.path().join("site.crt"), new_crt).unwrap();
    let (renewed, errors) = s.edge.refresh_certificates();
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(renewed, 1);
    let after = tls_request(tls_addr, &ca.cert_der, "example.test", &[b"h2"], "/").await;
    assert_eq!(after.peer_cert, new_der);
    assert_ne!(after.peer_cert, site_der);

    // Plain HTTP to a host that asks for it is sent to HTTPS.
    let plain = s.edge_addrs[1];
    let req = http::Request::get("/login?next=%2F")
        .header("host", "secure.example.test")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let r = send(plain, req).await;
    assert_eq!(r.status, 301);
    assert_eq!(
        r.headers["location"],
        "https://secure.example.test/login?next=%2F"
    );
    // Other hosts are served over plain HTTP.
    let r = request(plain, "GET", "/", &[], "").await;
    assert_eq!(r.status, 200);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_ip_comes_from_trusted_proxies_only() {
    // Loopback is not trusted: a spoofed X-Forwarded-For is ignored.
    let untrusted = start_edge(
        r#"
[trusted_proxies]
cidrs = ["10.0.0.0/8"]

[[rules]]
id = "deny-spoofed"
expression = 'ip.src eq 203.0.113.9'
action = "block"
"#,
        &[],
        system(),
    )
    .await;
    let r = request(
        untrusted.addr,
        "GET",
        "/",
        &[("x-forwarded-for", "203.0.113.9")],
        "",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(json(&r.body)["ip"], "127.0.0.1");
    untrusted.stop().await;

    // Loopback trusted: the first untrusted hop from the right is the client.
    let trusted = start_edge(
        r#"
[[listeners]]
address = "127.0.0.1:0"
proxy_protocol = true

[trusted_proxies]
cidrs = ["127.0.0.0/8", "10.0.0.0/8"]

[[rules]]
id = "deny-one"
expression = 'ip.src in {198.51.100.0/24}'
action = "block"
status = 451
body = "not here"
"#,
        &[],
        system(),
    )
    .await;
    let r = request(
        trusted.addr,
        "GET",
        "/",
        &[("x-forwarded-for", "6.6.6.6, 203.0.113.9, 10.1.2.3")],
        "",
    )
    .await;
    assert_eq!(json(&r.body)["ip"], "203.0.113.9");
    let r = request(
        trusted.addr,
        "GET",
        "/",
        &[("x-forwarded-for", "198.51.100.7")],
        "",
    )
    .await;
    assert_eq!((r.status, r.body.as_str()), (451, "not here"));

    // PROXY protocol v1 on the listener that expects it.
    let mut raw = tokio::net::TcpStream::connect(trusted.edge_addrs[0])
        .await
        .unwrap();
    raw.write_all(b"PROXY TCP4 192.0.2.44 127.0.0.1 5555 80\r\nGET / HTTP/1.1\r\nhost: example.test\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut raw, &mut got)
        .await
        .unwrap();
    let resp = parse_responses(&got);
    assert_eq!(resp[0].status, 200);
    assert_eq!(
        json(&String::from_utf8_lossy(&resp[0].body))["ip"],
        "192.0.2.44"
    );
    trusted.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_and_managed_rules_block_log_and_skip() {
    let s = start_edge(
        r#"
[[rules]]
id = "admin-only-inside"
expression = 'http.request.uri.path contains "/admin" and not ip.src in {10.0.0.0/8}'
action = "block"
status = 403
body = "admins only"

[[rules]]
id = "watch-exports"
expression = 'starts_with(http.request.uri.path, "/export") and any(lower(http.request.headers["x-client"][*]) eq "batch")'
action = "log"

[[rules]]
id = "trusted-importer"
expression = 'http.request.uri.path eq "/import" and http.request.headers["x-import-token"][0] eq "s3cret"'
action = "skip"
skip = ["managed_rules"]

[managed_rules]
paranoia_level = 1
"#,
        &[],
        system(),
    )
    .await;
    let r = request(s.addr, "GET", "/admin/users", &[], "").await;
    assert_eq!((r.status, r.body.as_str()), (403, "admins only"));
    assert!(r.headers.contains_key("cf-ray"));

    let r = request(s.addr, "GET", "/export/all", &[("x-client", "BATCH")], "").await;
    assert_eq!(r.status, 200);

    // SQL injection in the query, in a JSON body, XSS in a form body.
    let r = request(
        s.addr,
        "GET",
        "/items?id=1%20UNION%20SELECT%20password%20FROM%20users",
        &[],
        "",
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.body);
    let r = request(
        s.addr,
        "POST",
        "/api",
        &[("content-type", "application/json")],
        r#"{"q":"x' OR '1'='1"}"#,
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.body);
    let r = request(
        s.addr,
        "POST",
        "/comment",
        &[("content-type", "application/x-www-form-urlencoded")],
        "text=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.body);
    // A benign request with the same shapes passes.
    let r = request(
        s.addr,
        "POST",
        "/api",
        &[("content-type", "application/json")],
        r#"{"q":"O'Brien's pub"}"#,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // The skip rule lets a trusted importer through the managed rules only.
    let r = request(
        s.addr,
        "POST",
        "/import",
        &[("x-import-token", "s3cret"), ("content-type", "text/plain")],
        "DROP TABLE x; --",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = request(s.addr, "GET", "/import?x=1;DROP%20TABLE%20users", &[], "").await;
    assert_eq!(r.status, 403);

    // Every decision is an event with its rule and ray id, and a metric.
    let events = s.edge.events().recent();
    let rules: Vec<&str> = events.iter().map(|e| e.rule.as_str()).collect();
    assert_eq!(
        rules,
        [
            "admin-only-inside",
            "watch-exports",
            "sqli",
            "sqli",
            "xss",
            "sqli"
        ]
    );
    assert_eq!(events[1].action, "log");
    assert_eq!(events[0].client_ip, "127.0.0.1");
    assert_eq!(events[0].path, "/admin/users");
    assert_eq!(events[0].ray.len(), 16);
    let m = get_internal(s.addr, "/__hearth/metrics").await;
    assert!(
        m.body.contains("hearth_edge_events_total{phase=\"custom_rules\",rule=\"admin-only-inside\",action=\"block\"} 1"),
        "{}",
        m.body
    );
    assert!(m.body.contains(
        "hearth_edge_events_total{phase=\"managed_rules\",rule=\"sqli\",action=\"block\"} 3"
    ));
    s.stop().await;
}

fn hs256(secret: &[u8], claims: serde_json::Value) -> String {
    let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    let head = b64(br#"{"alg":"HS256","typ":"JWT"}"#);
    let body = b64(claims.to_string().as_bytes());
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let sig = ring::hmac::sign(&key, format!("{head}.{body}").as_bytes());
    format!("{head}.{body}.{}", b64(sig.as_ref()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwts_are_verified_and_their_claims_cannot_be_forged() {
    let clock = ManualClock::new(1_700_000_000_000);
    let s = start_edge(
        r#"
[[jwt]]
id = "api-jwt"
expression = 'starts_with(http.request.uri.path, "/api/")'
algorithms = ["HS256"]
hmac_secret_files = ["jwt.secret"]
issuer = "https://auth.example.test/"
audience = ["hearth-api"]
clock_skew = 30
tenant_claim = "org"
"#,
        &[("jwt.secret", b"correct horse battery staple\n")],
        clock.shared(),
    )
    .await;
    let now = clock.now_secs();
    let good = serde_json::json!({"sub": "u1", "org": "acme", "iss": "https://auth.example.test/", "aud": "hearth-api", "exp": now + 60});
    let token = hs256(b"correct horse battery staple", good.clone());
    let bearer = format!("Bearer {token}");
    let r = request(
        s.addr,
        "GET",
        "/api/me",
        &[
            ("authorization", &bearer),
            ("x-hearth-tenant", "evil"),
            ("x-hearth-jwt-claims", "{\"sub\":\"admin\"}"),
        ],
        "",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v = json(&r.body);
    assert_eq!(
        v["tenant"], "acme",
        "the tenant comes from the verified claim, not the client's header"
    );
    assert_eq!(json(v["claims"].as_str().unwrap())["sub"], "u1");

    // Outside the policy's expression no token is needed, and forged
    // headers are still removed.
    let r = request(s.addr, "GET", "/public", &[("x-hearth-tenant", "evil")], "").await;
    assert_eq!(json(&r.body)["tenant"], serde_json::Value::Null);

    let cases = [
        ("no token", None, "missing_token"),
        (
            "forged",
            Some(hs256(b"another secret", good.clone())),
            "bad_signature",
        ),
        (
            "wrong audience",
            Some(hs256(
                b"correct horse battery staple",
                serde_json::json!({"org": "acme", "iss": "https://auth.example.test/", "aud": "other", "exp": now + 60}),
            )),
            "wrong_audience",
        ),
        (
            "wrong issuer",
            Some(hs256(
                b"correct horse battery staple",
                serde_json::json!({"org": "acme", "iss": "https://evil.test/", "aud": "hearth-api", "exp": now + 60}),
            )),
            "wrong_issuer",
        ),
        (
            "alg none",
            Some(format!(
                "{}.{}.",
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#),
                token.split('.').nth(1).unwrap()
            )),
            "algorithm_not_accepted",
        ),
    ];
    for (what, token, code) in cases {
        let header = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = header
            .iter()
            .map(|h| ("authorization", h.as_str()))
            .collect();
        let r = request(s.addr, "GET", "/api/me", &headers, "").await;
        assert_eq!(r.status, 401, "{what}: {}", r.body);
        assert_eq!(
            r.headers["www-authenticate"],
            format!("Bearer error=\"{code}\""),
            "{what}"
        );
    }

    // Expiry on the injected clock, with the configured skew.
    clock.advance_secs(60 + 29);
    let r = request(s.addr, "GET", "/api/me", &[("authorization", &bearer)], "").await;
    assert_eq!(r.status, 200, "within the skew");
    clock.advance_secs(2);
    let r = request(s.addr, "GET", "/api/me", &[("authorization", &bearer)], "").await;
    assert_eq!(r.status, 401);
    assert_eq!(r.headers["www-authenticate"], "Bearer error=\"expired\"");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_carry_tenant_and_scopes_and_revocation_applies_at_once() {
    let clock = ManualClock::new(1_700_000_000_000);
    let s = start_edge(
        r#"
[[api_keys]]
id = "partner-api"
expression = 'starts_with(http.request.uri.path, "/partner/")'
header = "x-api-key"
scopes = ["orders:read"]

[[rate_limits]]
id = "per-key"
expression = 'starts_with(http.request.uri.path, "/partner/")'
characteristics = ["api_key"]
requests_per_period = 3
period = 10
action = "block"
"#,
        &[],
        clock.shared(),
    )
    .await;
    let store = hearth_edge::keys::KeyStore::open(&hearth_edge::keys::store_path(
        &s.dir.path().join("data"),
    ))
    .unwrap();
    let (k1, key1) = store
        .create(
            "acme",
            &["orders:read".into(), "orders:write".into()],
            "ci",
            1,
        )
        .unwrap();
    let (_, key2) = store
        .create("globex", &["orders:read".into()], "", 2)
        .unwrap();
    let (_, weak) = store.create("initech", &["billing".into()], "", 3).unwrap();

    let r = request(
        s.addr,
        "GET",
        "/partner/orders",
        &[("x-api-key", &key1), ("x-hearth-tenant", "globex")],
        "",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v = json(&r.body);
    assert_eq!(
        (v["tenant"].as_str(), v["key"].as_str()),
        (Some("acme"), Some(k1.id.as_str()))
    );
    assert_eq!(v["scopes"], "orders:read orders:write");

    let r = request(
        s.addr,
        "GET",
        "/partner/orders",
        &[("x-api-key", &weak)],
        "",
    )
    .await;
    assert_eq!(r.status, 403, "a key without the scope");
    let r = request(
        s.addr,
        "GET",
        "/partner/orders",
        &[("x-api-key", "hk_000000000000_nope")],
        "",
    )
    .await;
    assert_eq!(r.status, 401);
    let r = request(s.addr, "GET", "/partner/orders", &[], "").await;
    assert_eq!(r.status, 401);

    // The rate limit counts per key: key1 has used 1 of 3.
    for _ in 0..2 {
        assert_eq!(
            request(
                s.addr,
                "GET",
                "/partner/orders",
                &[("x-api-key", &key1)],
                ""
            )
            .await
            .status,
            200
        );
    }
    let r = request(
        s.addr,
        "GET",
        "/partner/orders",
        &[("x-api-key", &key1)],
        "",
    )
    .await;
    assert_eq!(r.status, 429);
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=10).contains(&retry), "{retry}");
    assert_eq!(
        request(
            s.addr,
            "GET",
            "/partner/orders",
            &[("x-api-key", &key2)],
            ""
        )
        .await
        .status,
        200,
        "another key has its own count"
    );
    clock.advance_secs(25);
    assert_eq!(
        request(
            s.addr,
            "GET",
            "/partner/orders",
            &[("x-api-key", &key1)],
            ""
        )
        .await
        .status,
        200,
        "a new period"
    );

    store.revoke(&k1.id, 4).unwrap();
    let r = request(
        s.addr,
        "GET",
        "/partner/orders",
        &[("x-api-key", &key1)],
        "",
    )
    .await;
    assert_eq!(
        r.status, 401,
        "revoked keys are refused on the next request"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_block_with_retry_after_until_the_mitigation_timeout() {
    let clock = ManualClock::new(1_700_000_000_000);
    let s = start_edge(
        r#"
[[rate_limits]]
id = "login"
expression = 'http.request.uri.path eq "/login"'
characteristics = ["ip.src"]
requests_per_period = 2
period = 60
mitigation_timeout = 600
action = "block"
"#,
        &[],
        clock.shared(),
    )
    .await;
    for _ in 0..2 {
        assert_eq!(request(s.addr, "POST", "/login", &[], "").await.status, 200);
    }
    let r = request(s.addr, "POST", "/login", &[], "").await;
    assert_eq!(r.status, 429);
    assert_eq!(r.headers["retry-after"], "600");
    assert_eq!(
        request(s.addr, "GET", "/", &[], "").await.status,
        200,
        "other paths are not limited"
    );
    clock.advance_secs(300);
    let r = request(s.addr, "POST", "/login", &[], "").await;
    assert_eq!(
        (r.status, r.headers["retry-after"].to_str().unwrap()),
        (429, "300")
    );
    clock.advance_secs(301);
    assert_eq!(
        request(s.addr, "POST", "/login", &[], "").await.status,
        200,
        "mitigation over"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_swaps_the_rules_without_dropping_connections_and_a_bad_file_keeps_the_old_rules()
{
    let s = start_edge(
        r#"
[[rules]]
id = "old"
expression = 'http.request.uri.path eq "/old"'
action = "block"
"#,
        &[],
        system(),
    )
    .await;
    // One keep-alive connection across the reload.
    let stream = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let get = |p: &str| {
        http::Request::get(p)
            .header("host", "example.test")
            .body(Full::new(Bytes::new()))
            .unwrap()
    };
    assert_eq!(
        sender.send_request(get("/old")).await.unwrap().status(),
        403
    );
    std::fs::write(
        s.edge.path(),
        "[[rules]]\nid = \"new\"\nexpression = 'http.request.uri.path eq \"/new\"'\naction = \"block\"\n",
    )
    .unwrap();
    s.edge.reload().unwrap();
    sender.ready().await.unwrap();
    assert_eq!(
        sender.send_request(get("/old")).await.unwrap().status(),
        200
    );
    sender.ready().await.unwrap();
    assert_eq!(
        sender.send_request(get("/new")).await.unwrap().status(),
        403
    );

    std::fs::write(
        s.edge.path(),
        "[[rules]]\nid = \"broken\"\nexpression = 'http.request.uri.path eq'\naction = \"block\"\n",
    )
    .unwrap();
    let err = s.edge.reload().unwrap_err().to_string();
    assert!(
        err.contains("hearth.toml: rules[0].expression: invalid expression"),
        "{err}"
    );
    sender.ready().await.unwrap();
    assert_eq!(
        sender.send_request(get("/new")).await.unwrap().status(),
        403,
        "the old rules still run"
    );
    s.stop().await;
}

#[test]
fn zone_file_errors_name_the_file_the_field_and_what_was_expected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hearth.toml");
    std::fs::write(
        &path,
        r#"
[[listeners]]
address = "nowhere"
tls = "yes"

[[rules]]
id = "a"
expression = 'http.request.uri.pathh eq "/"'
action = "challenge"

[[rate_limits]]
id = "r"
characteristics = ["cookie"]
requests_per_period = 0
period = 60
action = "block"

[managed_rules]
paranoia_level = 9
disabled_rules = ["nope"]
"#,
    )
    .unwrap();
    let err = hearth_edge::config::load(&path).unwrap_err().to_string();
    let f = path.display().to_string();
    for expected in [
        format!("{f}: listeners[0].address: \"nowhere\" is not an address:port"),
        format!(
            "{f}: rules[0].expression: invalid expression \"http.request.uri.pathh eq \\\"/\\\"\": at column 1: unknown field \"http.request.uri.pathh\""
        ),
        format!("{f}: rules[0].action: \"challenge\" is not supported"),
        format!("{f}: rate_limits[0].characteristics[0]: \"cookie\": expected"),
        format!(
            "{f}: rate_limits[0].requests_per_period: 0 is out of range; expected 1 to 1000000000"
        ),
        format!("{f}: managed_rules.paranoia_level: 9 is out of range; expected 1 to 4"),
        format!("{f}: managed_rules.disabled_rules[0]: \"nope\" is not a managed rule id"),
    ] {
        assert!(err.contains(&expected), "missing {expected:?} in:\n{err}");
    }
    let _ = Path::new(&f);
}

/// An identity provider's JWKS endpoint on loopback that can be told to
/// hold its answers until released.
struct SlowIdp {
    url: String,
    state: Arc<(std::sync::Mutex<IdpState>, std::sync::Condvar)>,
}

#[derive(Default)]
struct IdpState {
    jwks: String,
    hold: bool,
    /// Requests received (answered or held).
    hits: usize,
}

impl SlowIdp {
    fn start(jwks: String) -> SlowIdp {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/jwks", listener.local_addr().unwrap());
        let state = Arc::new((
            std::sync::Mutex::new(IdpState {
                jwks,
                ..IdpState::default()
            }),
            std::sync::Condvar::new(),
        ));
        let served = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let served = served.clone();
                std::thread::spawn(move || {
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                        head.push(byte[0]);
                    }
                    let (lock, released) = &*served;
                    let mut s = lock.lock().unwrap();
                    s.hits += 1;
                    released.notify_all();
                    while s.hold {
                        s = released.wait(s).unwrap();
                    }
                    let body = s.jwks.clone();
                    drop(s);
                    let _ = write!(
                        stream,
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                });
            }
        });
        SlowIdp { url, state }
    }

    fn with<R>(&self, f: impl FnOnce(&mut IdpState) -> R) -> R {
        let (lock, changed) = &*self.state;
        let r = f(&mut lock.lock().unwrap());
        changed.notify_all();
        r
    }

    /// Waits until the provider has received `n` requests.
    fn wait_for_hits(&self, n: usize) {
        let (lock, changed) = &*self.state;
        let s = lock.lock().unwrap();
        let (s, timeout) = changed
            .wait_timeout_while(s, std::time::Duration::from_secs(30), |s| s.hits < n)
            .unwrap();
        assert!(!timeout.timed_out(), "the provider got {} requests", s.hits);
    }
}

fn oct_jwk(kid: &str, secret: &[u8]) -> serde_json::Value {
    let k = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
    serde_json::json!({"kty": "oct", "kid": kid, "alg": "HS256", "k": k})
}

fn hs256_kid(kid: &str, secret: &[u8], claims: serde_json::Value) -> String {
    let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    let head = b64(
        serde_json::json!({"alg": "HS256", "typ": "JWT", "kid": kid})
            .to_string()
            .as_bytes(),
    );
    let body = b64(claims.to_string().as_bytes());
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let sig = ring::hmac::sign(&key, format!("{head}.{body}").as_bytes());
    format!("{head}.{body}.{}", b64(sig.as_ref()))
}

/// A blocking HTTP/1.1 GET with a read deadline; the status, or the error.
fn blocking_get(addr: SocketAddr, path: &str, token: Option<&str>) -> Result<u16, String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    let auth = token.map_or(String::new(), |t| format!("authorization: Bearer {t}\r\n"));
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nhost: example.test\r\n{auth}connection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut reply = Vec::new();
    stream
        .read_to_end(&mut reply)
        .map_err(|e| format!("{path}: {e}"))?;
    let text = String::from_utf8_lossy(&reply);
    text.get(9..12)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("{path}: no status in {text:?}"))
}

// One front thread: a JWKS fetch held by the provider would stall every
// connection if it ran on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_slow_jwks_provider_holds_only_the_requests_that_need_its_keys() {
    let clock = ManualClock::new(1_700_000_000_000);
    let (old, new) = (
        b"the first signing secret".as_slice(),
        b"the rotated signing secret".as_slice(),
    );
    let idp = SlowIdp::start(serde_json::json!({"keys": [oct_jwk("k1", old)]}).to_string());
    let s = start_edge(
        &format!(
            r#"
[[jwt]]
id = "api-jwt"
expression = 'starts_with(http.request.uri.path, "/api/")'
algorithms = ["HS256"]
jwks_url = "{}"
jwks_timeout_ms = 20000
"#,
            idp.url
        ),
        &[],
        clock.shared(),
    )
    .await;
    idp.wait_for_hits(1);
    let exp = clock.now_secs() + 600;
    let known = hs256_kid("k1", old, serde_json::json!({"sub": "u1", "exp": exp}));
    let rotated = hs256_kid("k2", new, serde_json::json!({"sub": "u2", "exp": exp}));
    let addr = s.addr;
    assert_eq!(blocking_get(addr, "/api/me", Some(&known)), Ok(200));

    // The provider rotates and then stalls: the token under the new kid
    // waits for the fetch it causes.
    idp.with(|st| {
        st.hold = true;
        st.jwks = serde_json::json!({"keys": [oct_jwk("k1", old), oct_jwk("k2", new)]}).to_string();
    });
    clock.advance_ms(hearth_edge::jwks::MIN_REFETCH_MS);
    let waiting = std::thread::spawn(move || blocking_get(addr, "/api/me", Some(&rotated)));
    idp.wait_for_hits(2);

    // Meanwhile requests that need no fetch are answered.
    for i in 0..20 {
        assert_eq!(blocking_get(addr, "/public", None), Ok(200), "request {i}");
    }
    assert_eq!(blocking_get(addr, "/api/me", Some(&known)), Ok(200));
    assert!(
        !waiting.is_finished(),
        "the rotated token waits for the fetch"
    );
    assert_eq!(idp.with(|st| st.hits), 2, "one fetch while it is held");

    idp.with(|st| st.hold = false);
    assert_eq!(
        waiting.join().unwrap(),
        Ok(200),
        "verified with the fetched key"
    );
    s.stop().await;
}
