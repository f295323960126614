//! The CryptoIntel seed app (apps/cryptointel/: dashboard, API and
//! collector workers served together) end to end through `hearth serve`: the app's fixture market server (a worker of the app)
//! serves scripted market data, news, failures and latencies; this test
//! runs the x402 facilitator double and the webhook receiver on 127.0.0.1.
//! Clock-dependent paths (cache TTLs, key rotation grace, session timeout,
//! archival age, TOTP, webhook backoff) run under `hearth serve
//! --test-clock` and move the platform's clock, never real sleeps. So that
//! those jumps do not start collections of their own, the served copy has
//! no `triggers.crons`: the test fires the app's crons on demand.

mod web_support;

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use web_support::{Incoming, Reply, Server, copy_tree, read_request, ws_connect, ws_text};

const ADMIN_KEY: &str = "ci_test_admin_key_0123456789abcdef0123456789abcdef";

// ------------------------------------------------------------------ setup

struct App {
    _dir: tempfile::TempDir,
    root: PathBuf,
    data: PathBuf,
}

fn hearth() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hearth"))
}

/// The app's three workers: the dashboard (the public front, first), the
/// API and the collector.
const WORKERS: [&str; 3] = ["app", "api", "collector"];

/// A copy of the app: test vars in each worker's `.dev.vars`, rate limits
/// replaced (`limits`: binding name -> limit, in every worker declaring
/// it), migrations applied, an admin account with ADMIN_KEY.
fn prepare(vars: &str, limits: &[(&str, u32)]) -> App {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("cryptointel");
    copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../apps/cryptointel"),
        &root,
    );
    let mut replaced: HashSet<&str> = HashSet::new();
    for worker in WORKERS {
        let cfg = root.join(worker).join("wrangler.toml");
        let mut toml = std::fs::read_to_string(&cfg).unwrap();
        for (name, limit) in limits {
            let Some(at) = toml.find(&format!("name = \"{name}\"")) else {
                continue;
            };
            let start = at + toml[at..].find("limit = ").unwrap() + "limit = ".len();
            let end = start + toml[start..].find(',').unwrap();
            toml.replace_range(start..end, &limit.to_string());
            replaced.insert(name);
        }
        if worker == "collector" {
            let crons = "crons = [\"*/15 * * * *\", \"0 3 * * *\"]";
            assert!(toml.contains(crons), "the collector's crons moved");
            toml = toml.replace(crons, "crons = []");
        }
        std::fs::write(&cfg, toml).unwrap();
        std::fs::write(root.join(worker).join(".dev.vars"), vars).unwrap();
    }
    assert_eq!(
        replaced.len(),
        limits.len(),
        "a rate limit no worker declares"
    );
    let cfg = root.join("app/wrangler.toml");
    let data = dir.path().join("data");
    let app = App {
        _dir: dir,
        root,
        data,
    };
    let out = hearth()
        .args(["d1", "migrations", "apply", "cryptointel", "--config"])
        .arg(&cfg)
        .arg("--data-dir")
        .arg(&app.data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hash = hex::encode(Sha256::digest(ADMIN_KEY.as_bytes()));
    d1(
        &app,
        &format!(
            "INSERT INTO users (id, email, role, created_at) VALUES ('usr_admin', 'admin@example.com', 'admin', '2026-01-01T00:00:00.000Z');
             INSERT INTO api_keys (id, user_id, key_hash, prefix, created_at) VALUES ('key_admin', 'usr_admin', '{hash}', 'ci_test_', '2026-01-01T00:00:00.000Z');"
        ),
    );
    app
}

fn start_app(app: &App) -> Server {
    let cfgs: Vec<String> = WORKERS
        .iter()
        .map(|w| {
            app.root
                .join(w)
                .join("wrangler.toml")
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let data = app.data.to_string_lossy().into_owned();
    let mut args: Vec<&str> = cfgs.iter().map(String::as_str).collect();
    args.extend(["--data-dir", &data, "--test-clock"]);
    Server::launch_in(&app.root, "serve", &args, Duration::from_secs(180))
}

fn start_fixture(app: &App) -> Server {
    let cfg = app.root.join("fixture-market/wrangler.toml");
    let cfg = cfg.to_string_lossy().into_owned();
    let data = app.root.join(".fixture-data");
    let data = data.to_string_lossy().into_owned();
    Server::launch_in(
        &app.root,
        "serve",
        &[&cfg, "--data-dir", &data],
        Duration::from_secs(180),
    )
}

fn d1(app: &App, sql: &str) -> Value {
    let out = hearth()
        .args([
            "d1",
            "execute",
            "cryptointel",
            "--json",
            "--command",
            sql,
            "--config",
        ])
        .arg(app.root.join("app/wrangler.toml"))
        .arg("--data-dir")
        .arg(&app.data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{sql}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Rows of the last statement's result.
fn rows(app: &App, sql: &str) -> Vec<Value> {
    let v = d1(app, sql);
    let last = v.as_array().and_then(|a| a.last()).cloned().unwrap_or(v);
    last["results"].as_array().cloned().unwrap_or_default()
}

/// The app's SOURCES, pointed at the fixture; `ids` filters the simple-price source.
fn sources_vars(fixture: &str, ids: &str) -> String {
    let base = format!("http://{fixture}");
    let list = json!([
        {"name": "coingecko", "kind": "coingecko_simple", "url": format!("{base}/api/v3/simple/price?ids={ids}&vs_currencies=usd&include_24hr_vol=true&include_market_cap=true")},
        {"name": "coingecko-markets", "kind": "coingecko_markets", "url": format!("{base}/api/v3/coins/markets?vs_currency=usd")},
        {"name": "defillama", "kind": "defillama_protocols", "url": format!("{base}/protocols")},
        {"name": "news-rss", "kind": "rss", "url": format!("{base}/feeds/rss.xml")},
        {"name": "news-atom", "kind": "atom", "url": format!("{base}/feeds/atom.xml")},
    ]);
    format!("SOURCES={list}\n")
}

fn script(fixture: &Server, patch: Value) {
    let r = fixture.request(
        "PUT",
        "/__fixture",
        &[("Content-Type", "application/json")],
        patch.to_string().as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

/// Runs `scheduled()` for `cron` (one of the app's) now, through the
/// test route that runs any cron: the served copy has none configured.
fn fire(server: &Server, cron: &str) {
    let r = server.get(&format!(
        "/cdn-cgi/handler/scheduled?worker=cryptointel-collector&cron={}",
        cron.replace(' ', "%20")
    ));
    assert_eq!((r.status, r.text().trim()), (200, "ok"), "{cron}");
}

fn collect(server: &Server) {
    fire(server, "*/15 * * * *");
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

// ------------------------------------------------------------------ client

struct Client<'a> {
    server: &'a Server,
    auth: Option<String>,
}

impl<'a> Client<'a> {
    fn key(server: &'a Server, key: &str) -> Self {
        Client {
            server,
            auth: Some(format!("Bearer {key}")),
        }
    }
    fn anon(server: &'a Server) -> Self {
        Client { server, auth: None }
    }
    fn send(&self, method: &str, path: &str, extra: &[(&str, &str)], body: &[u8]) -> Reply {
        let mut headers: Vec<(&str, &str)> = extra.to_vec();
        if let Some(a) = &self.auth {
            headers.push(("Authorization", a));
        }
        if !body.is_empty() {
            headers.push(("Content-Type", "application/json"));
        }
        self.server.request(method, path, &headers, body)
    }
    fn get(&self, path: &str) -> Reply {
        self.send("GET", path, &[], b"")
    }
    fn post(&self, path: &str, body: &Value) -> Reply {
        self.send("POST", path, &[], body.to_string().as_bytes())
    }
}

/// The server's test clock, in seconds forward and ms since the epoch.
struct Clock<'a> {
    server: &'a Server,
}

impl Clock<'_> {
    fn advance(&self, secs: u64) {
        self.server.advance_clock(secs * 1000);
    }
    fn now_ms(&self) -> i64 {
        self.server.clock_ms() as i64
    }
}

// ------------------------------------------------------------------ doubles

#[derive(Clone, Debug)]
struct Req {
    path: String,
    headers: HashMap<String, String>,
    body: String,
}

type Handler = dyn Fn(&Req) -> (u16, String) + Send + Sync;

/// A small HTTP/1.1 server on 127.0.0.1 that keeps every request.
struct Double {
    port: u16,
    seen: Arc<Mutex<Vec<Req>>>,
}

impl Double {
    fn start(handler: Arc<Handler>) -> Double {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let (log, handler) = (log.clone(), handler.clone());
                std::thread::spawn(move || serve_one(stream, &log, &*handler));
            }
        });
        Double { port, seen }
    }
    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
    fn requests(&self, path: &str) -> Vec<Req> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }
}

fn serve_one(stream: TcpStream, log: &Mutex<Vec<Req>>, handler: &Handler) {
    let Some(Incoming {
        path,
        headers,
        body,
    }) = read_request(&stream)
    else {
        return;
    };
    let req = Req {
        path,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    let (status, reply) = handler(&req);
    log.lock().unwrap().push(req);
    let mut stream = stream;
    let _ = stream.write_all(
        format!(
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
            reply.len()
        )
        .as_bytes(),
    );
}

/// The x402 facilitator double: a payload whose signature is "0xgood" is
/// valid (payer = authorization.from) and settles; anything else is not.
fn facilitator() -> Double {
    let settled = Arc::new(AtomicUsize::new(0));
    Double::start(Arc::new(move |r: &Req| {
        let body: Value = serde_json::from_str(&r.body).unwrap_or(Value::Null);
        let payload = &body["paymentPayload"]["payload"];
        let good = payload["signature"] == "0xgood";
        let payer = payload["authorization"]["from"].clone();
        match r.path.as_str() {
            "/verify" if good => (200, json!({"isValid": true, "payer": payer}).to_string()),
            "/verify" => (
                200,
                json!({"isValid": false, "invalidReason": "invalid_exact_evm_payload_signature", "payer": payer}).to_string(),
            ),
            "/settle" => {
                let n = settled.fetch_add(1, Ordering::SeqCst) + 1;
                (
                    200,
                    json!({"success": good, "transaction": format!("0xtx{n}"), "network": "base-sepolia", "payer": payer}).to_string(),
                )
            }
            _ => (404, "{}".into()),
        }
    }))
}

/// The webhook receiver: `/hook` answers 204, `/flaky` 500 twice then 204,
/// `/dead` always 500.
fn receiver() -> Double {
    let flaky = Arc::new(AtomicUsize::new(0));
    Double::start(Arc::new(move |r: &Req| match r.path.as_str() {
        "/dead" => (500, "{}".into()),
        "/flaky" if flaky.fetch_add(1, Ordering::SeqCst) < 2 => (500, "{}".into()),
        _ => (204, String::new()),
    }))
}

fn hmac256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn signature_valid(secret: &str, r: &Req) -> bool {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let h = |n: &str| r.headers.get(n).cloned().unwrap_or_default();
    let expected = STANDARD.encode(hmac256(
        &key,
        format!("{}.{}.{}", h("webhook-id"), h("webhook-timestamp"), r.body).as_bytes(),
    ));
    h("webhook-signature")
        .split(' ')
        .any(|s| s.strip_prefix("v1,") == Some(expected.as_str()))
}

// -------------------------------------------------------------------- TOTP

fn base32_decode(s: &str) -> Vec<u8> {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut bits, mut value, mut out) = (0u32, 0u64, Vec::new());
    for c in s.bytes() {
        let i = A.iter().position(|&x| x == c).unwrap() as u64;
        value = (value << 5) | i;
        bits += 5;
        if bits >= 8 {
            out.push(((value >> (bits - 8)) & 0xff) as u8);
            bits -= 8;
        }
    }
    out
}

/// RFC 6238 with HMAC-SHA-1, 30 s steps, 6 digits.
fn totp(secret: &str, at_ms: i64) -> String {
    let counter = (at_ms / 30_000) as u64;
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(&base32_decode(secret)).unwrap();
    mac.update(&counter.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let off = (h[19] & 15) as usize;
    let code = (u32::from_be_bytes([h[off], h[off + 1], h[off + 2], h[off + 3]]) & 0x7fff_ffff)
        % 1_000_000;
    format!("{code:06}")
}

// --------------------------------------------------------------- websocket

/// The next live message of `kind`, skipping others.
fn ws_next(s: &mut TcpStream, kind: &str) -> Value {
    loop {
        let text = ws_text(s).expect("live stream closed");
        let v: Value = serde_json::from_str(&text).unwrap();
        if v["kind"] == kind {
            return v;
        }
    }
}

// ------------------------------------------------------------------- tests

fn mean_std(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

fn create_user(admin: &Client, email: &str, role: &str, extra: Value) -> (String, String) {
    let mut body = json!({"email": email, "role": role});
    if let Value::Object(m) = extra {
        body.as_object_mut().unwrap().extend(m);
    }
    let r = admin.post("/api/v1/users", &body);
    assert_eq!(r.status, 201, "{}", r.text());
    let user = r.json();
    let k = admin.post(
        "/api/v1/keys",
        &json!({"user_id": user["id"].as_str().unwrap()}),
    );
    assert_eq!(k.status, 201, "{}", k.text());
    (
        k.json()["key"].as_str().unwrap().to_string(),
        k.json()["id"].as_str().unwrap().to_string(),
    )
}

#[test]
fn cryptointel_end_to_end() {
    // The fixture needs an address before the app's vars can name it.
    let boot = prepare("", &[]);
    let fixture = start_fixture(&boot);
    let pay = facilitator();
    let hooks = receiver();
    let vars = format!(
        "{}SOURCE_TIMEOUT_MS=1000\nFACILITATOR_URL={}\nWEBHOOK_ALLOW_HOSTS=127.0.0.1\nWEBHOOK_BACKOFF_BASE_SECONDS=60\nWEBHOOK_MAX_ATTEMPTS=3\nKEY_ROTATION_GRACE_SECONDS=3600\nRETENTION_DAYS=1\n",
        sources_vars(&fixture.addr, "bitcoin,ethereum,solana"),
        pay.url("/")
    );
    let app = prepare(
        &vars,
        &[("RL_ANON", 60), ("RL_KEY", 60), ("RL_SIGNALS", 30)],
    );
    let server = start_app(&app);
    let admin = Client::key(&server, ADMIN_KEY);
    let anon = Client::anon(&server);
    let clock = Clock { server: &server };

    // --- health before any collection: the collector has not run.
    let h = anon.get("/health");
    assert_eq!(h.status, 200, "{}", h.text());
    assert_eq!(h.json()["services"]["workers"], "degraded");

    // --- scheduled runs collect every source.
    for _ in 0..6 {
        collect(&server);
    }
    let cols = rows(
        &app,
        "SELECT id, records, rejected, sources FROM collections ORDER BY started_at",
    );
    assert_eq!(cols.len(), 6);
    for c in &cols {
        let sources: Vec<Value> = serde_json::from_str(c["sources"].as_str().unwrap()).unwrap();
        assert_eq!(sources.len(), 5, "{c}");
        assert!(sources.iter().all(|s| s["status"] == "healthy"), "{c}");
        let id = c["id"].as_str().unwrap();
        let n = rows(
            &app,
            &format!("SELECT COUNT(*) AS n FROM market_data WHERE collection_id = '{id}'"),
        );
        assert_eq!(n[0]["n"], 6, "3 coins from each CoinGecko shape");
        let t = rows(
            &app,
            &format!("SELECT COUNT(*) AS n FROM defi_tvl WHERE collection_id = '{id}'"),
        );
        assert_eq!(t[0]["n"], 2);
    }
    // The one story is carried by both feeds and stored once.
    assert_eq!(rows(&app, "SELECT COUNT(*) AS n FROM news")[0]["n"], 1);
    let mentions = rows(
        &app,
        "SELECT entity_name FROM entity_mentions ORDER BY entity_name",
    );
    let names: HashSet<&str> = mentions
        .iter()
        .map(|m| m["entity_name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains("Bitcoin") && names.contains("Coinbase"),
        "{mentions:?}"
    );
    // Structured logs in the seed's shape.
    let logged = server.log.lock().unwrap().iter().any(|l| {
        l.contains(
            r#""level":"INFO","service":"data-collection","message":"Data collection completed""#,
        ) && l.contains(r#""sources_processed":5"#)
    });
    assert!(logged, "no structured collection log line");

    // --- a failing source and a slow one degrade only themselves; bad records are rejected and counted.
    script(
        &fixture,
        json!({"fail": {"protocols": 503}, "delay_ms": {"atom": 3000}, "invalid": {"simple_price": true, "rss": true}}),
    );
    collect(&server);
    let last = rows(
        &app,
        "SELECT id, records, rejected, sources FROM collections ORDER BY started_at DESC LIMIT 1",
    );
    let sources: Vec<Value> = serde_json::from_str(last[0]["sources"].as_str().unwrap()).unwrap();
    let by: HashMap<&str, &Value> = sources
        .iter()
        .map(|s| (s["source"].as_str().unwrap(), s))
        .collect();
    assert_eq!(by["defillama"]["status"], "degraded");
    assert_eq!(by["defillama"]["error"], "HTTP 503");
    assert_eq!(by["news-atom"]["status"], "degraded");
    assert_eq!(by["news-atom"]["error"], "timed out after 1000 ms");
    assert_eq!(by["coingecko"]["status"], "healthy");
    assert_eq!(by["coingecko"]["records"], 3);
    assert_eq!(
        by["coingecko"]["rejected"], 2,
        "negative and non-numeric prices"
    );
    assert_eq!(
        by["news-rss"]["rejected"], 1,
        "an item without title or valid link"
    );
    assert_eq!(by["coingecko-markets"]["records"], 3);
    assert_eq!(last[0]["rejected"], 3);
    let id = last[0]["id"].as_str().unwrap();
    assert_eq!(
        rows(
            &app,
            &format!("SELECT COUNT(*) AS n FROM market_data WHERE collection_id = '{id}'")
        )[0]["n"],
        6
    );
    assert_eq!(
        rows(
            &app,
            &format!("SELECT COUNT(*) AS n FROM defi_tvl WHERE collection_id = '{id}'")
        )[0]["n"],
        0
    );
    let h = anon.get("/health").json();
    assert_eq!(h["services"]["external_apis"], "degraded", "{h}");
    assert_eq!(h["status"], "degraded", "{h}");
    script(
        &fixture,
        json!({"fail": {"protocols": 0}, "delay_ms": {"atom": 0}, "invalid": {"simple_price": false, "rss": false}}),
    );
    collect(&server);
    let h = anon.get("/health");
    let hv = h.json();
    assert_eq!(hv["status"], "healthy", "{hv}");
    let keys = |v: &Value| -> Vec<String> {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(keys(&hv), ["metrics", "services", "status", "timestamp"]);
    assert_eq!(
        keys(&hv["services"]),
        ["cache", "database", "external_apis", "workers"]
    );
    assert_eq!(
        keys(&hv["metrics"]),
        ["error_rate", "response_time_ms", "uptime"]
    );
    assert!(hv["metrics"]["uptime"].as_str().unwrap().ends_with('%'));
    assert!(hv["metrics"]["response_time_ms"].is_u64());

    // --- accounts, keys, roles.
    let (viewer_key, viewer_key_id) = create_user(&admin, "vic@example.com", "viewer", json!({}));
    let (analyst_key, _) = create_user(&admin, "ann@example.com", "analyst", json!({}));
    let (pro_key, _) = create_user(&admin, "pat@example.com", "pro", json!({}));
    let viewer = Client::key(&server, &viewer_key);
    let analyst = Client::key(&server, &analyst_key);
    let pro = Client::key(&server, &pro_key);
    let bad = Client::key(&server, "ci_not_a_key");
    assert_eq!(bad.get("/api/v1/market-data/bitcoin").status, 401);
    let r = anon.get("/api/v1/analytics/usage");
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(viewer.get("/api/v1/analytics/usage").status, 403);
    assert_eq!(
        viewer
            .post(
                "/api/v1/users",
                &json!({"email": "x@example.com", "role": "admin"})
            )
            .status,
        403
    );
    let r = admin.post(
        "/api/v1/users",
        &json!({"email": "y@example.com", "role": "emperor"}),
    );
    assert_eq!((r.status, r.json()["field"].clone()), (400, json!("role")));
    assert_eq!(anon.get("/api/v1/dashboard/overview").status, 401);
    assert_eq!(viewer.get("/api/v1/dashboard/overview").status, 200);
    assert_eq!(viewer.get("/api/v1/market-data/Not%20A%20Coin").status, 400);
    assert_eq!(viewer.get("/api/v1/market-data/dogecoin").status, 404);

    // --- dashboard login with TOTP, then the live stream.
    let r = admin.post(
        "/api/v1/users",
        &json!({"email": "dana@example.com", "role": "analyst", "password": "correct horse battery", "totp": true}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let secret = r.json()["totp_secret"].as_str().unwrap().to_string();
    let login = |body: Value| anon.post("/auth/login", &body);
    let r = login(json!({"email": "dana@example.com", "password": "correct horse battery"}));
    assert_eq!(
        (r.status, r.json()["field"].clone()),
        (401, json!("totp")),
        "{}",
        r.text()
    );
    let r = login(
        json!({"email": "dana@example.com", "password": "wrong horse battery", "totp": totp(&secret, clock.now_ms())}),
    );
    assert_eq!(r.status, 401);
    let wrong = format!(
        "{:06}",
        (totp(&secret, clock.now_ms()).parse::<u32>().unwrap() + 1) % 1_000_000
    );
    let r = login(
        json!({"email": "dana@example.com", "password": "correct horse battery", "totp": wrong}),
    );
    assert_eq!(r.status, 401);
    let r = login(
        json!({"email": "dana@example.com", "password": "correct horse battery", "totp": totp(&secret, clock.now_ms())}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let set_cookie = r.header("set-cookie").unwrap().to_string();
    for attr in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(set_cookie.contains(attr), "{set_cookie}");
    }
    let cookie = set_cookie.split(';').next().unwrap().to_string();
    let with_cookie = |path: &str| server.request("GET", path, &[("Cookie", &cookie)], b"");
    assert_eq!(with_cookie("/api/v1/dashboard/overview").status, 200);
    assert_eq!(with_cookie("/auth/me").json()["role"], "analyst");
    let page = server.get("/");
    assert_eq!(page.status, 200);
    assert!(page.text().contains("CryptoIntel"));
    let mut live = ws_connect(&server.addr, "/live", &format!("Cookie: {cookie}\r\n"));
    ws_next(&mut live, "hello");
    collect(&server);
    let m = ws_next(&mut live, "collection");
    assert_eq!(
        m["records"], 8,
        "6 prices and 2 protocols; no new news: {m}"
    );

    // --- webhooks: SSRF guard, then subscriptions.
    for url in [
        "https://10.1.2.3/x",
        "https://localhost/x",
        "http://example.com/x",
        "https://[::1]/x",
        "https://169.254.169.254/latest",
        "https://2130706434/",
        "https://0x7f.2/",
    ] {
        let r = analyst.post(
            "/api/v1/webhooks",
            &json!({"url": url, "types": ["price_anomaly"]}),
        );
        assert_eq!(
            (r.status, r.json()["field"].clone()),
            (400, json!("url")),
            "{url}: {}",
            r.text()
        );
    }
    let r = analyst.post(
        "/api/v1/webhooks",
        &json!({"url": hooks.url("/hook"), "types": ["volume_spike", "nope"]}),
    );
    assert_eq!(r.status, 400);
    let sub = analyst.post(
        "/api/v1/webhooks",
        &json!({"url": hooks.url("/hook"), "types": ["price_anomaly"]}),
    );
    assert_eq!(sub.status, 201, "{}", sub.text());
    let hook_secret = sub.json()["secret"].as_str().unwrap().to_string();
    for path in ["/flaky", "/dead"] {
        let r = analyst.post(
            "/api/v1/webhooks",
            &json!({"url": hooks.url(path), "types": ["price_anomaly"]}),
        );
        assert_eq!(r.status, 201);
    }

    // --- an injected price jump: a price_anomaly with the expected confidence.
    let before = anon.get("/api/v1/market-data/bitcoin");
    assert_eq!(before.status, 200);
    assert_eq!(before.header("x-cache"), Some("MISS"));
    let cached = anon.get("/api/v1/market-data/bitcoin");
    assert_eq!(cached.header("x-cache"), Some("HIT"));
    assert!(
        cached
            .header("cache-status")
            .unwrap()
            .starts_with("cryptointel-kv; hit; ttl=")
    );
    assert_eq!(cached.json(), before.json());
    let coins = json!([
        {"id": "bitcoin", "symbol": "btc", "name": "Bitcoin", "price": 90000, "volume": 30e9, "market_cap": 1.8e12},
        {"id": "ethereum", "symbol": "eth", "name": "Ethereum", "price": 3000, "volume": 75e9, "market_cap": 3.6e11},
        {"id": "solana", "symbol": "sol", "name": "Solana", "price": 150, "volume": 3e9, "market_cap": 7e10}
    ]);
    let news = json!([
        {"guid": "n-1", "title": "Bitcoin steady as Coinbase volumes hold", "link": "https://news.example/n-1", "description": "Markets were calm.", "published": "2026-01-01T00:00:00Z"},
        {"guid": "n-2", "title": "Bitcoin plunges as exchange hack fears spread", "link": "https://news.example/n-2", "description": "A selloff at Binance.", "published": "2026-01-01T01:00:00Z"}
    ]);
    script(&fixture, json!({"coins": coins, "news": news}));
    collect(&server);
    let jump = rows(
        &app,
        "SELECT id, started_at FROM collections ORDER BY started_at DESC LIMIT 1",
    );
    let jump_id = jump[0]["id"].as_str().unwrap().to_string();
    eventually("detection of the jump", Duration::from_secs(20), || {
        let r = rows(
            &app,
            &format!("SELECT signals_at FROM collections WHERE id = '{jump_id}'"),
        );
        (!r[0]["signals_at"].is_null()).then_some(())
    });
    let signal = eventually("the price anomaly", Duration::from_secs(20), || {
        let s = rows(
            &app,
            "SELECT id, confidence_score, metadata, collection_id FROM signals WHERE type = 'price_anomaly' AND symbol = 'bitcoin'",
        );
        (!s.is_empty()).then_some(s)
    });
    assert_eq!(
        signal.len(),
        1,
        "one signal per symbol, type and window: {signal:?}"
    );
    let meta: Value = serde_json::from_str(signal[0]["metadata"].as_str().unwrap()).unwrap();
    assert_eq!(signal[0]["collection_id"], jump_id.as_str());
    let source = meta["source"].as_str().unwrap();
    let series = rows(
        &app,
        &format!(
            "SELECT price FROM market_data WHERE symbol = 'bitcoin' AND source = '{source}' AND collection_id != '{jump_id}' ORDER BY timestamp DESC LIMIT 20"
        ),
    );
    let prices: Vec<f64> = series
        .iter()
        .map(|r| r["price"].as_f64().unwrap())
        .collect();
    let now_price = rows(
        &app,
        &format!("SELECT price FROM market_data WHERE symbol = 'bitcoin' AND source = '{source}' AND collection_id = '{jump_id}'"),
    )[0]["price"]
        .as_f64()
        .unwrap();
    let (mean, std) = mean_std(&prices);
    let z = (now_price - mean) / std;
    let expected = ((z.abs() / (z.abs() + 3.0)) * 10000.0).round() / 10000.0;
    let got = signal[0]["confidence_score"].as_f64().unwrap();
    assert!(
        (got - expected).abs() < 1e-9,
        "confidence {got}, expected {expected} (z = {z})"
    );
    assert!(z > 3.0, "z = {z}");
    assert_eq!(meta["direction"], "up");
    // A volume spike (5x the window's mean) and a sentiment shift (0 to -1) in the same run.
    let spike = rows(
        &app,
        "SELECT confidence_score, metadata FROM signals WHERE type = 'volume_spike' AND symbol = 'ethereum'",
    );
    assert_eq!(spike.len(), 1, "{spike:?}");
    let ratio =
        serde_json::from_str::<Value>(spike[0]["metadata"].as_str().unwrap()).unwrap()["ratio"]
            .as_f64()
            .unwrap();
    assert!((ratio - 5.0).abs() < 1e-9, "{ratio}");
    assert_eq!(spike[0]["confidence_score"].as_f64(), Some(0.8));
    let shift = rows(
        &app,
        "SELECT confidence_score, metadata FROM signals WHERE type = 'sentiment_shift' AND symbol = 'bitcoin'",
    );
    assert_eq!(shift.len(), 1, "{shift:?}");
    let meta_shift: Value = serde_json::from_str(shift[0]["metadata"].as_str().unwrap()).unwrap();
    assert_eq!(
        (
            meta_shift["previous"].as_f64(),
            meta_shift["sentiment"].as_f64()
        ),
        (Some(0.0), Some(-1.0))
    );
    assert_eq!(shift[0]["confidence_score"].as_f64(), Some(0.5));
    assert!(
        rows(&app, "SELECT 1 FROM signals WHERE symbol = 'solana'").is_empty(),
        "nothing moved for solana"
    );
    // The dashboards heard of each.
    let mut live_signals = HashSet::new();
    while live_signals.len() < 3 {
        let m = ws_next(&mut live, "signal");
        live_signals.insert(format!(
            "{}/{}",
            m["signal"]["type"].as_str().unwrap(),
            m["signal"]["symbol"].as_str().unwrap()
        ));
    }
    assert_eq!(
        live_signals,
        HashSet::from([
            "price_anomaly/bitcoin".to_string(),
            "volume_spike/ethereum".to_string(),
            "sentiment_shift/bitcoin".to_string()
        ])
    );
    // The cached latest price is served until its 5 minutes are up.
    let still = anon.get("/api/v1/market-data/bitcoin");
    assert_eq!(still.header("x-cache"), Some("HIT"));
    assert_eq!(still.json(), before.json());

    // --- the webhook delivery, signed; retries after the backoff (base
    // 60 s: the second attempt 60 s after the first, the third 120 s after
    // that, by the clock); the dead letter after the last attempt.
    let delivered = eventually("the webhook delivery", Duration::from_secs(20), || {
        let d = hooks.requests("/hook");
        (!d.is_empty()).then_some(d)
    });
    assert_eq!(delivered.len(), 1);
    assert!(
        signature_valid(&hook_secret, &delivered[0]),
        "bad signature: {:?}",
        delivered[0]
    );
    let payload: Value = serde_json::from_str(&delivered[0].body).unwrap();
    assert_eq!(payload["type"], "signal.price_anomaly");
    assert_eq!(payload["data"]["symbol"], "bitcoin");
    assert_eq!(payload["data"]["confidence_score"].as_f64(), Some(expected));
    let states = |list: &[Value]| -> Vec<(String, i64)> {
        let mut v: Vec<(String, i64)> = list
            .iter()
            .map(|x| {
                (
                    x["status"].as_str().unwrap().to_string(),
                    x["attempts"].as_i64().unwrap(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let want: Vec<(String, i64)> = vec![
        ("dead".into(), 3),
        ("delivered".into(), 1),
        ("delivered".into(), 3),
    ];
    let stamp = |r: &Req| -> u64 { r.headers["webhook-timestamp"].parse().unwrap() };
    let attempts = |n: usize| {
        eventually(
            &format!("attempt {n} of the failing hooks"),
            Duration::from_secs(20),
            || {
                let (f, d) = (hooks.requests("/flaky"), hooks.requests("/dead"));
                (f.len() >= n && d.len() >= n).then_some((f, d))
            },
        )
    };
    let not_yet = |n: usize| {
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(
            (
                hooks.requests("/flaky").len(),
                hooks.requests("/dead").len()
            ),
            (n, n),
            "a retry came before its backoff"
        );
    };
    let (flaky1, dead1) = attempts(1);
    not_yet(1);
    clock.advance(30);
    not_yet(1);
    clock.advance(30);
    let (flaky2, dead2) = attempts(2);
    assert!(
        stamp(&flaky2[1]) >= stamp(&flaky1[0]) + 60,
        "{:?} {:?}",
        flaky1[0].headers,
        flaky2[1].headers
    );
    assert!(stamp(&dead2[1]) >= stamp(&dead1[0]) + 60);
    assert!(
        stamp(&dead2[1]) < stamp(&dead1[0]) + 120,
        "retried on time, not late"
    );
    // The attempt after the second waits twice as long.
    clock.advance(60);
    not_yet(2);
    clock.advance(60);
    let (flaky3, dead3) = attempts(3);
    assert!(stamp(&flaky3[2]) >= stamp(&flaky2[1]) + 120);
    assert!(stamp(&dead3[2]) >= stamp(&dead2[1]) + 120);
    assert!(
        stamp(&dead3[2]) < stamp(&dead2[1]) + 240,
        "retried on time, not late"
    );
    // Polled in D1, not through the API, so the polling does not spend the admin's rate limit.
    eventually(
        "retries and the dead letter",
        Duration::from_secs(20),
        || {
            (states(&rows(
                &app,
                "SELECT status, attempts FROM webhook_deliveries",
            )) == want)
                .then_some(())
        },
    );
    let listed = admin.get("/api/v1/webhooks/deliveries");
    assert_eq!(
        states(listed.json()["data"].as_array().unwrap()),
        want,
        "{}",
        listed.text()
    );
    let dead = rows(
        &app,
        "SELECT last_error FROM webhook_deliveries WHERE status = 'dead'",
    );
    assert_eq!(dead[0]["last_error"], "HTTP 500");
    assert_eq!(hooks.requests("/dead").len(), 3);
    assert_eq!(hooks.requests("/flaky").len(), 3);

    // --- cache expiry by the app clock: after 5 minutes the new price shows.
    clock.advance(301);
    let fresh = anon.get("/api/v1/market-data/bitcoin");
    assert_eq!(fresh.header("x-cache"), Some("MISS"));
    assert!(
        fresh.json()["data"]["price"].as_f64().unwrap() > 80000.0,
        "{}",
        fresh.text()
    );

    // --- x402: 402 with requirements, then paid access through the facilitator.
    let r = anon.get("/api/v1/signals/price_anomaly");
    assert_eq!(r.status, 402, "{}", r.text());
    let req = r.json();
    assert_eq!(req["x402Version"], 1);
    let accepts = &req["accepts"][0];
    assert_eq!(accepts["scheme"], "exact");
    assert_eq!(accepts["network"], "base-sepolia");
    assert_eq!(accepts["maxAmountRequired"], "10000");
    assert!(
        accepts["resource"]
            .as_str()
            .unwrap()
            .ends_with("/api/v1/signals/price_anomaly")
    );
    assert!(accepts["payTo"].as_str().unwrap().starts_with("0x"));
    assert_eq!(
        viewer.get("/api/v1/signals/price_anomaly").status,
        402,
        "viewers pay too"
    );
    let payment = |sig: &str, nonce: &str| {
        STANDARD.encode(
            json!({"x402Version": 1, "scheme": "exact", "network": "base-sepolia",
                   "payload": {"signature": sig, "authorization": {"from": "0xPAYER", "to": accepts["payTo"], "value": "10000", "nonce": nonce}}})
            .to_string(),
        )
    };
    let good = payment("0xgood", "0x01");
    let r = anon.send(
        "GET",
        "/api/v1/signals/price_anomaly",
        &[("X-PAYMENT", &good)],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.json()["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["symbol"] == "bitcoin"),
        "{}",
        r.text()
    );
    let settle: Value = serde_json::from_slice(
        &STANDARD
            .decode(r.header("x-payment-response").unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(settle["success"], true);
    assert_eq!(settle["transaction"], "0xtx1");
    let verify: Value = serde_json::from_str(&pay.requests("/verify")[0].body).unwrap();
    assert_eq!(verify["paymentRequirements"]["maxAmountRequired"], "10000");
    assert_eq!(verify["paymentPayload"]["payload"]["signature"], "0xgood");
    let r = anon.send(
        "GET",
        "/api/v1/signals/price_anomaly",
        &[("X-PAYMENT", &good)],
        b"",
    );
    assert_eq!(r.status, 402);
    assert_eq!(r.json()["error"], "payment already used");
    let r = anon.send(
        "GET",
        "/api/v1/signals/price_anomaly",
        &[("X-PAYMENT", &payment("0xbad", "0x02"))],
        b"",
    );
    assert_eq!(r.status, 402);
    assert_eq!(
        r.json()["error"],
        "payment invalid: invalid_exact_evm_payload_signature"
    );
    let r = anon.send(
        "GET",
        "/api/v1/signals/price_anomaly",
        &[("X-PAYMENT", "%%%")],
        b"",
    );
    assert_eq!(r.status, 402);

    // --- pagination over signals (extra rows in other windows), filters, caching.
    let mut values = Vec::new();
    for i in 0..24 {
        values.push(format!(
            "('volume_spike', '{}', {}, '{{}}', '2026-01-01T00:{:02}:00.000Z', '2026-01-01T00:{:02}:00.000Z')",
            ["ethereum", "solana"][i % 2],
            0.5 + i as f64 / 100.0,
            i,
            i
        ));
    }
    d1(
        &app,
        &format!(
            "INSERT INTO signals (type, symbol, confidence_score, metadata, created_at, window_start) VALUES {}",
            values.join(",")
        ),
    );
    let mut cursor: Option<String> = None;
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/signals/volume_spike?limit=10&cursor={c}"),
            None => "/api/v1/signals/volume_spike?limit=10".into(),
        };
        let r = pro.get(&path);
        assert_eq!(r.status, 200, "{}", r.text());
        let v = r.json();
        pages += 1;
        for s in v["data"].as_array().unwrap() {
            seen.push(s["id"].as_i64().unwrap());
        }
        match v["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 24 + 1, "and the live ethereum spike");
    assert!(
        seen.windows(2).all(|w| w[0] > w[1]),
        "ids descending, no repeats: {seen:?}"
    );
    let r = pro
        .get("/api/v1/signals/volume_spike?symbol=solana&min_confidence=0.6&limit=100")
        .json();
    let got: Vec<f64> = r["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["confidence_score"].as_f64().unwrap())
        .collect();
    assert!(!got.is_empty() && got.iter().all(|c| *c >= 0.6));
    assert!(
        r["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["symbol"] == "solana")
    );
    let r = pro
        .get("/api/v1/signals/volume_spike?since=2026-01-01T00:20:00Z&limit=100")
        .json();
    assert_eq!(
        r["data"].as_array().unwrap().len(),
        4 + 1,
        "rows created at :20 to :23, and the live one"
    );
    let r = pro.get("/api/v1/signals/all?limit=100").json();
    assert!(r["data"].as_array().unwrap().len() > 24);
    assert_eq!(
        pro.get("/api/v1/signals/volume_spike?cursor=garbage")
            .status,
        400
    );
    assert_eq!(pro.get("/api/v1/signals/volume_spike?limit=0").status, 400);
    assert_eq!(
        pro.get("/api/v1/signals/volume_spike?min_confidence=2")
            .status,
        400
    );
    assert_eq!(pro.get("/api/v1/signals/moon").status, 404);
    // API responses: cached for everyone alike (the paid request above cached its query).
    let a = pro.get("/api/v1/signals/price_anomaly?limit=7");
    let b = pro.get("/api/v1/signals/price_anomaly?limit=7");
    assert_eq!(
        (a.header("x-cache"), b.header("x-cache")),
        (Some("MISS"), Some("HIT"))
    );
    assert_eq!(
        pro.get("/api/v1/signals/price_anomaly").header("x-cache"),
        Some("HIT")
    );
    clock.advance(61);
    assert_eq!(
        pro.get("/api/v1/signals/price_anomaly?limit=7")
            .header("x-cache"),
        Some("MISS")
    );

    // --- market-data history.
    let r = viewer.get("/api/v1/market-data/bitcoin?interval=raw&from=2020-01-01T00:00:00Z");
    assert_eq!(r.status, 400, "more than 90 days");
    let to = clock.now_ms() / 1000 + 60;
    let r = viewer.get(&format!(
        "/api/v1/market-data/bitcoin?interval=raw&from={}&to={to}",
        to - 3600
    ));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["data"].as_array().unwrap().len(),
        2 * 10,
        "two sources over 10 collections"
    );
    let r = viewer.get(&format!(
        "/api/v1/market-data/bitcoin?interval=1d&from={}&to={to}",
        to - 3600
    ));
    let buckets = r.json()["data"].as_array().unwrap().clone();
    assert_eq!(
        buckets
            .iter()
            .map(|b| b["points"].as_i64().unwrap())
            .sum::<i64>(),
        20
    );
    assert_eq!(
        viewer.get("/api/v1/market-data/bitcoin?interval=7m").status,
        400
    );

    // --- analytics: per user and endpoint; analysts see only themselves.
    let r = analyst.get("/api/v1/analytics/usage");
    assert_eq!(r.status, 200, "{}", r.text());
    let data = r.json()["data"].as_array().unwrap().clone();
    assert!(!data.is_empty());
    let me = data[0]["user_id"].as_str().unwrap().to_string();
    assert!(data.iter().all(|d| d["user_id"] == me.as_str()));
    assert_eq!(
        analyst
            .get("/api/v1/analytics/usage?user_id=usr_admin")
            .status,
        403
    );
    let all = admin.get("/api/v1/analytics/endpoints").json();
    let eps: HashSet<&str> = all["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["endpoint"].as_str().unwrap())
        .collect();
    for e in [
        "/market-data/{symbol}",
        "/signals/{type}",
        "/analytics/{metric}",
        "/dashboard/{view}",
    ] {
        assert!(eps.contains(e), "{e} in {eps:?}");
    }
    let revenue = admin.get("/api/v1/analytics/revenue").json();
    let paid = revenue["data"].as_array().unwrap();
    assert_eq!(paid.len(), 1, "{revenue}");
    assert_eq!(paid[0]["user_id"], "x402:0xPAYER");
    assert_eq!(paid[0]["revenue"].as_f64(), Some(0.01));
    assert_eq!(admin.get("/api/v1/analytics/moon").status, 404);

    // --- key rotation: the old key works through its grace period only.
    let r = viewer.post(&format!("/api/v1/keys/{viewer_key_id}/rotate"), &json!({}));
    assert_eq!(r.status, 201, "{}", r.text());
    let new_key = r.json()["key"].as_str().unwrap().to_string();
    let rotated = Client::key(&server, &new_key);
    assert_eq!(
        viewer.get("/api/v1/dashboard/sources").status,
        200,
        "old key in grace"
    );
    assert_eq!(rotated.get("/api/v1/dashboard/sources").status, 200);
    assert_eq!(
        analyst
            .post(&format!("/api/v1/keys/{viewer_key_id}/rotate"), &json!({}))
            .status,
        404,
        "not the analyst's key"
    );
    // Meanwhile the dashboard session is used every 1,000 s: past half its
    // 30-minute idle timeout each use refreshes it (a new cookie), so it
    // outlives 30 minutes since sign-in.
    for _ in 0..2 {
        clock.advance(1000);
        let me = with_cookie("/auth/me");
        assert_eq!(me.status, 200, "{}", me.text());
        let refreshed = me.header("set-cookie").expect("a refreshed cookie");
        assert!(
            refreshed.starts_with(&cookie) && refreshed.contains("Max-Age=1800"),
            "{refreshed}"
        );
    }
    assert_eq!(
        viewer.get("/api/v1/dashboard/sources").status,
        200,
        "2,000 s into the 3,600 s grace"
    );
    clock.advance(1601);
    let r = viewer.get("/api/v1/dashboard/sources");
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(r.json()["error"].as_str().unwrap().contains("expired"));
    assert_eq!(rotated.get("/api/v1/dashboard/sources").status, 200);

    // --- an idle session times out after 30 minutes; signing out ends one at once.
    assert_eq!(with_cookie("/auth/me").status, 200, "1,601 s idle");
    clock.advance(1801);
    assert_eq!(with_cookie("/auth/me").status, 401);
    assert_eq!(with_cookie("/api/v1/dashboard/overview").status, 401);
    let r = login(
        json!({"email": "dana@example.com", "password": "correct horse battery", "totp": totp(&secret, clock.now_ms())}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let second = r
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(
        server
            .request("GET", "/auth/me", &[("Cookie", &second)], b"")
            .status,
        200
    );
    assert_eq!(
        server
            .request("POST", "/auth/logout", &[("Cookie", &second)], b"")
            .status,
        204
    );
    assert_eq!(
        server
            .request("GET", "/auth/me", &[("Cookie", &second)], b"")
            .status,
        401
    );

    // --- archival round trip: two days on, everything is past retention.
    let before: Vec<Value> = rows(
        &app,
        "SELECT id, symbol, price, timestamp FROM market_data ORDER BY id",
    );
    assert_eq!(before.len(), 6 * 10);
    clock.advance(2 * 86400);
    fire(&server, "0 3 * * *");
    assert_eq!(
        rows(&app, "SELECT COUNT(*) AS n FROM market_data")[0]["n"],
        0
    );
    let listed = admin.get("/api/v1/admin/archive").json();
    let objects = listed["objects"].as_array().unwrap().clone();
    assert!(!objects.is_empty(), "{listed}");
    assert_eq!(
        objects
            .iter()
            .map(|o| o["rows"].as_i64().unwrap())
            .sum::<i64>(),
        before.len() as i64
    );
    for o in &objects {
        assert!(o["key"].as_str().unwrap().ends_with(".ndjson.gz"));
        let r = admin.post("/api/v1/admin/archive/restore", &json!({"key": o["key"]}));
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["restored"], o["rows"]);
    }
    let after: Vec<Value> = rows(
        &app,
        "SELECT id, symbol, price, timestamp FROM market_data ORDER BY id",
    );
    assert_eq!(after, before, "restored rows equal the archived ones");
    let again = admin.post(
        "/api/v1/admin/archive/restore",
        &json!({"key": objects[0]["key"]}),
    );
    assert_eq!(
        again.json()["restored"],
        0,
        "restoring twice changes nothing"
    );
    assert_eq!(
        admin
            .post(
                "/api/v1/admin/archive/restore",
                &json!({"key": "elsewhere/x"})
            )
            .status,
        400
    );

    // --- rate limits: per key, per endpoint, per IP; 429 with Retry-After.
    let burst = |c: &Client, path: &str, n: usize| -> Option<Reply> {
        (0..n).map(|_| c.get(path)).find(|r| r.status == 429)
    };
    let (burst_key, _) = create_user(&admin, "bo@example.com", "viewer", json!({}));
    let r = burst(
        &Client::key(&server, &burst_key),
        "/api/v1/dashboard/sources",
        121,
    )
    .expect("per-key limit");
    assert_eq!(r.header("x-ratelimit-layer"), Some("key"));
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let r = burst(&pro, "/api/v1/signals/all", 61).expect("per-endpoint limit");
    assert_eq!(r.header("x-ratelimit-layer"), Some("endpoint"));
    let r = burst(&anon, "/api/v1/market-data/bitcoin", 121).expect("per-IP limit");
    assert_eq!(r.header("x-ratelimit-layer"), Some("ip"));
    assert!(r.header("retry-after").is_some());
    // Another identity is not limited by those.
    assert_eq!(analyst.get("/api/v1/dashboard/sources").status, 200);

    // --- an admin's on-demand collection: the API queues it, the
    // collector worker runs it.
    clock.advance(61);
    let count = || {
        rows(&app, "SELECT COUNT(*) AS n FROM collections")[0]["n"]
            .as_i64()
            .unwrap()
    };
    let before = count();
    let r = admin.post("/api/v1/admin/collect", &json!({}));
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(r.json(), json!({"queued": true}));
    eventually("the queued collection", Duration::from_secs(20), || {
        (count() == before + 1).then_some(())
    });
    assert_eq!(
        analyst.post("/api/v1/admin/collect", &json!({})).status,
        403
    );
}

/// kill -9 at several points of a large collection: every collection that
/// is stored is stored whole (its row and all its records), and records
/// never exist without their collection.
#[test]
fn cryptointel_kill9_during_collection_stores_no_half_batch() {
    let boot = prepare("", &[]);
    let fixture = start_fixture(&boot);
    let coins: Vec<Value> = (0..1500)
        .map(|i| json!({"id": format!("coin-{i}"), "symbol": format!("c{i}"), "name": format!("Coin {i}"), "price": 1.0 + i as f64, "volume": 1000.0, "market_cap": 1e6}))
        .collect();
    script(&fixture, json!({"coins": coins}));
    let app = prepare(
        &format!(
            "{}SOURCE_TIMEOUT_MS=30000\n",
            sources_vars(&fixture.addr, "")
        ),
        &[],
    );

    let mut stored_runs = 0;
    for delay_ms in [150u64, 400, 900, 1600] {
        let server = start_app(&app);
        let addr = server.addr.clone();
        let firing = std::thread::spawn(move || {
            web_support::try_http(
                &addr,
                "GET",
                "/__hearth/scheduled?cron=*/15%20*%20*%20*%20*",
                &[],
                b"",
                Duration::from_secs(30),
            )
        });
        std::thread::sleep(Duration::from_millis(delay_ms));
        server.kill9();
        let _ = firing.join();
        let cols = rows(&app, "SELECT id, records, sources FROM collections");
        for c in &cols {
            let id = c["id"].as_str().unwrap();
            let sources: Vec<Value> = serde_json::from_str(c["sources"].as_str().unwrap()).unwrap();
            let market: i64 = sources
                .iter()
                .filter(|s| s["source"].as_str().unwrap().starts_with("coingecko"))
                .map(|s| s["records"].as_i64().unwrap())
                .sum();
            let n = rows(
                &app,
                &format!("SELECT COUNT(*) AS n FROM market_data WHERE collection_id = '{id}'"),
            );
            assert_eq!(
                n[0]["n"].as_i64().unwrap(),
                market,
                "collection {id} stored partly"
            );
        }
        let orphans = rows(
            &app,
            "SELECT COUNT(*) AS n FROM market_data WHERE collection_id NOT IN (SELECT id FROM collections)",
        );
        assert_eq!(
            orphans[0]["n"], 0,
            "records without their collection (after a {delay_ms} ms kill)"
        );
        stored_runs = cols.len();
    }
    // And a run that is left alone stores all of its 3,000 market records.
    let server = start_app(&app);
    collect(&server);
    let cols = rows(
        &app,
        "SELECT id, sources FROM collections ORDER BY started_at DESC LIMIT 1",
    );
    let n = rows(
        &app,
        &format!(
            "SELECT COUNT(*) AS n FROM market_data WHERE collection_id = '{}'",
            cols[0]["id"].as_str().unwrap()
        ),
    );
    assert_eq!(n[0]["n"], 3000, "{}", cols[0]["sources"]);
    eprintln!("collections stored across the kills: {stored_runs}");
}

/// The global layer: every caller together, checked before the others.
#[test]
fn cryptointel_global_rate_limit_answers_429_for_everyone() {
    let app = prepare(
        "SOURCES=[]\n",
        &[("RL_GLOBAL", 20), ("RL_ANON", 1000), ("RL_KEY", 1000)],
    );
    let server = start_app(&app);
    let admin = Client::key(&server, ADMIN_KEY);
    let anon = Client::anon(&server);
    // 41 requests cross at most one window boundary, so at least one is refused.
    let refused = (0..41)
        .map(|i| {
            if i % 2 == 0 {
                anon.get("/api/v1/market-data/bitcoin")
            } else {
                admin.get("/api/v1/dashboard/sources")
            }
        })
        .find(|r| r.status == 429)
        .expect("the global limit");
    assert_eq!(refused.header("x-ratelimit-layer"), Some("global"));
    let retry: u64 = refused.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(refused.json()["error"], "rate limit exceeded (global)");
    // Health is outside the API's limits.
    assert_eq!(server.get("/health").status, 200);
}
