//! The Crystal Clear seed app (apps/crystal-clear/) end to end: its eight
//! workers served together by `hearth serve apps/crystal-clear/*/wrangler.toml`
//! (in a temporary copy, with test settings in `.dev.vars`), driven over
//! real HTTP. Webhooks go to a receiver this test runs, which keeps every
//! request so its Standard Webhooks signature can be checked.

mod web_support;

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use web_support::{Incoming, Reply, Server, copy_tree, http, read_request, ws_connect, ws_text};

const JWT_SECRET: &str = "crystal-clear-test-secret-0123456789abcdef";
/// 2100-01-01: tokens in these tests do not expire while they run.
const FAR_EXP: u64 = 4_102_444_800;

// ------------------------------------------------------------------ setup

struct App {
    _dir: tempfile::TempDir,
    root: PathBuf,
    data: PathBuf,
}

fn hearth() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hearth"))
}

/// Every `*/wrangler.toml` of the app, in the order a shell glob lists them.
fn configs(root: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().path().join("wrangler.toml"))
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

/// A copy of the app with test settings, every D1 migration applied.
fn prepare(events_vars: &str, router_vars: &str) -> App {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("crystal-clear");
    copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../apps/crystal-clear"),
        &root,
    );
    std::fs::write(
        root.join("router/.dev.vars"),
        format!("JWT_SECRET={JWT_SECRET}\n{router_vars}"),
    )
    .unwrap();
    std::fs::write(root.join("events/.dev.vars"), events_vars).unwrap();
    let data = dir.path().join("data");
    let cfgs = configs(&root);
    assert_eq!(cfgs.len(), 8, "{cfgs:?}");
    for cfg in &cfgs {
        let name = cfg.parent().unwrap().file_name().unwrap().to_str().unwrap();
        let db = if name == "router" {
            "crystal-clear-monitoring".to_string()
        } else {
            format!("crystal-clear-{name}")
        };
        let out = hearth()
            .args(["d1", "migrations", "apply", &db, "--config"])
            .arg(cfg)
            .arg("--data-dir")
            .arg(&data)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "migrations of {db}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    App {
        _dir: dir,
        root,
        data,
    }
}

fn start(app: &App) -> Server {
    start_with(app, &[])
}

/// Serves the app with extra `hearth serve` flags (e.g. `--test-clock`).
fn start_with(app: &App, flags: &[&str]) -> Server {
    let mut args: Vec<String> = configs(&app.root)
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    args.push("--data-dir".into());
    args.push(app.data.to_string_lossy().into_owned());
    args.extend(flags.iter().map(|f| f.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Server::launch_in(&app.root, "serve", &args, Duration::from_secs(180))
}

fn d1_json(app: &App, worker: &str, db: &str, sql: &str) -> Result<Value, String> {
    let out = hearth()
        .args(["d1", "execute", db, "--json", "--command", sql, "--config"])
        .arg(app.root.join(worker).join("wrangler.toml"))
        .arg("--data-dir")
        .arg(&app.data)
        .output()
        .unwrap();
    if !out.status.success() {
        return Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())
}

// ------------------------------------------------------------------ tokens

fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn hmac256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn jwt_with(header: &Value, claims: &Value, secret: &str) -> String {
    let head = b64url(header.to_string().as_bytes());
    let body = b64url(claims.to_string().as_bytes());
    let sig = b64url(&hmac256(
        secret.as_bytes(),
        format!("{head}.{body}").as_bytes(),
    ));
    format!("{head}.{body}.{sig}")
}

fn jwt(sub: &str, role: &str) -> String {
    jwt_with(
        &json!({"alg": "HS256", "typ": "JWT"}),
        &json!({"sub": sub, "role": role, "exp": FAR_EXP}),
        JWT_SECRET,
    )
}

/// A client with one identity.
struct Api<'a> {
    server: &'a Server,
    bearer: String,
}

impl<'a> Api<'a> {
    fn new(server: &'a Server, sub: &str, role: &str) -> Self {
        Api {
            server,
            bearer: format!("Bearer {}", jwt(sub, role)),
        }
    }

    fn get(&self, path: &str) -> Reply {
        self.server
            .request("GET", path, &[("Authorization", &self.bearer)], b"")
    }

    fn post(&self, path: &str, key: &str, body: &Value) -> Reply {
        self.server.request(
            "POST",
            path,
            &[
                ("Authorization", &self.bearer),
                ("Content-Type", "application/json"),
                ("Idempotency-Key", key),
            ],
            body.to_string().as_bytes(),
        )
    }
}

fn post_on(addr: &str, bearer: &str, path: &str, key: &str, body: &Value) -> Reply {
    http(
        addr,
        "POST",
        path,
        &[
            ("Authorization", bearer),
            ("Content-Type", "application/json"),
            ("Idempotency-Key", key),
        ],
        body.to_string().as_bytes(),
    )
}

fn assert_field(r: &Reply, status: u16, field: &str) {
    assert_eq!(r.status, status, "{}", r.text());
    assert_eq!(r.json()["field"], field, "{}", r.text());
}

/// Polls `probe` until it returns Some, for at most `limit`.
fn eventually<T>(what: &str, limit: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn fire_cron(server: &Server, worker: &str) {
    let r = server.get(&format!(
        "/__hearth/scheduled?cron=*%20*%20*%20*%20*&worker={worker}"
    ));
    assert_eq!(r.status, 200, "{}", r.text());
}

// ---------------------------------------------------------------- receiver

#[derive(Clone, Debug)]
struct Hook {
    /// The receiver's epoch when the request arrived.
    epoch: usize,
    path: String,
    id: String,
    timestamp: String,
    signature: String,
    body: String,
}

/// A webhook receiver: `/ok` answers 204, `/flaky` answers 500 to its first
/// two requests, `/dead` always 500; while `hold` is set every request is
/// held (unanswered) until it is cleared.
struct Receiver {
    port: u16,
    hooks: Arc<Mutex<Vec<Hook>>>,
    hold: Arc<AtomicBool>,
    arrived: Arc<AtomicUsize>,
    epoch: Arc<AtomicUsize>,
}

impl Receiver {
    fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let hooks = Arc::new(Mutex::new(Vec::new()));
        let hold = Arc::new(AtomicBool::new(false));
        let arrived = Arc::new(AtomicUsize::new(0));
        let epoch = Arc::new(AtomicUsize::new(0));
        let flaky = Arc::new(AtomicUsize::new(0));
        let shared = (hooks.clone(), hold.clone(), arrived.clone(), epoch.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let (h, hd, ar, ep) = shared.clone();
                let fl = flaky.clone();
                std::thread::spawn(move || serve_hook(stream, &h, &hd, &ar, &ep, &fl));
            }
        });
        Receiver {
            port,
            hooks,
            hold,
            arrived,
            epoch,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn hooks(&self, path: &str) -> Vec<Hook> {
        self.hooks
            .lock()
            .unwrap()
            .iter()
            .filter(|h| h.path == path)
            .cloned()
            .collect()
    }
}

fn serve_hook(
    stream: TcpStream,
    hooks: &Mutex<Vec<Hook>>,
    hold: &AtomicBool,
    arrived: &AtomicUsize,
    epoch: &AtomicUsize,
    flaky: &AtomicUsize,
) {
    let Some(Incoming {
        path,
        headers,
        body,
    }) = read_request(&stream)
    else {
        return;
    };
    let arrived_in = epoch.load(Ordering::SeqCst);
    arrived.fetch_add(1, Ordering::SeqCst);
    while hold.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let header = |n: &str| headers.get(n).cloned().unwrap_or_default();
    hooks.lock().unwrap().push(Hook {
        epoch: arrived_in,
        path: path.clone(),
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    let status = match path.as_str() {
        "/dead" => 500,
        "/flaky" if flaky.fetch_add(1, Ordering::SeqCst) < 2 => 500,
        _ => 204,
    };
    let mut stream = stream;
    let _ = stream.write_all(
        format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes(),
    );
}

/// Checks a delivery's signature as a Standard Webhooks receiver would.
fn signature_valid(secret: &str, hook: &Hook) -> bool {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let expected = STANDARD.encode(hmac256(
        &key,
        format!("{}.{}.{}", hook.id, hook.timestamp, hook.body).as_bytes(),
    ));
    hook.signature
        .split(' ')
        .any(|s| s.strip_prefix("v1,") == Some(expected.as_str()))
}

// --------------------------------------------------------------- websocket

// ------------------------------------------------------------------- tests

const EVENTS_VARS: &str = "WEBHOOK_ALLOW_HOSTS=127.0.0.1\nWEBHOOK_BACKOFF_BASE_SECONDS=0.001\nWEBHOOK_MAX_ATTEMPTS=4\nWEBHOOK_LEASE_SECONDS=3\nWEBHOOK_TIMEOUT_MS=20000\n";

#[test]
fn crystal_clear_end_to_end() {
    let app = prepare(EVENTS_VARS, "");
    let server = start(&app);
    let hooks = Receiver::start();
    let ops = Api::new(&server, "ops-ann", "operator");
    let svc = Api::new(&server, "svc-games", "service");
    let viewer = Api::new(&server, "viewer-vic", "read-only");

    // Health of every worker, without a token; the router is the default
    // worker although its directory is not first on the command line.
    for d in [
        "collections",
        "distributions",
        "free-play",
        "balance",
        "adjustment",
        "coordinator",
        "events",
    ] {
        let r = server.get(&format!("/api/domains/{d}/health"));
        assert_eq!(r.status, 200, "{d}: {}", r.text());
        assert_eq!(r.json()["status"], "healthy", "{d}");
    }
    let r = server.get("/coordinator/health");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["activeTransactions"], 0);
    let before = ops.get("/monitoring/unified-metrics").json();

    // The dashboard page and its script come from the assets.
    let r = server.get("/");
    assert_eq!(r.status, 200);
    assert!(r.text().contains("<title>Crystal Clear monitoring</title>"));
    assert_eq!(server.get("/dashboard.js").status, 200);

    // ---- authentication and roles
    let coll =
        json!({"merchantId": "M1", "amount": 100.5, "currency": "USD", "paymentMethod": "card"});
    let r = server.request(
        "POST",
        "/api/domains/collections",
        &[("Idempotency-Key", "k")],
        coll.to_string().as_bytes(),
    );
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(r.header("www-authenticate").is_some());
    let forged = jwt_with(
        &json!({"alg": "HS256"}),
        &json!({"sub": "x", "role": "operator", "exp": FAR_EXP}),
        "another-secret-another-secret-another",
    );
    let none = format!(
        "{}.{}.",
        b64url(br#"{"alg":"none"}"#),
        b64url(
            json!({"sub": "x", "role": "operator", "exp": FAR_EXP})
                .to_string()
                .as_bytes()
        )
    );
    let expired = jwt_with(
        &json!({"alg": "HS256"}),
        &json!({"sub": "x", "role": "operator", "exp": 1_000_000_000}),
        JWT_SECRET,
    );
    let no_role = jwt_with(
        &json!({"alg": "HS256"}),
        &json!({"sub": "x", "exp": FAR_EXP}),
        JWT_SECRET,
    );
    for (what, token) in [
        ("forged", forged),
        ("alg none", none),
        ("expired", expired),
        ("no role", no_role),
    ] {
        let r = post_on(
            &server.addr,
            &format!("Bearer {token}"),
            "/api/domains/collections",
            "k",
            &coll,
        );
        assert_eq!(r.status, 401, "{what}: {}", r.text());
    }
    assert_eq!(
        viewer.post("/api/domains/collections", "k", &coll).status,
        403
    );
    assert_eq!(viewer.get("/api/domains/collections/dashboard").status, 200);
    let adj = json!({"playerId": "P1", "amount": 1, "currency": "USD", "direction": "credit", "reason": "service may not adjust"});
    assert_eq!(svc.post("/api/domains/adjustment", "k", &adj).status, 403);

    // ---- webhook subscriptions first, so later events reach them
    for url in [
        format!("http://localhost:{}/ok", hooks.port),
        format!("http://127.0.0.2:{}/ok", hooks.port),
        "http://10.0.0.5/hook".into(),
        "http://169.254.169.254/latest/meta-data".into(),
        "http://192.168.1.10/hook".into(),
        "http://172.16.0.1/hook".into(),
        "http://[::1]:8080/hook".into(),
        "http://[fe80::1]/hook".into(),
        "http://[::ffff:10.0.0.1]/hook".into(),
        "http://0x7f000002/hook".into(),
        "http://metadata.internal/hook".into(),
        "http://printer/hook".into(),
        "ftp://example.com/hook".into(),
        "https://user:pw@example.com/hook".into(),
        "not a url".into(),
    ] {
        let r = ops.post(
            "/api/domains/events/subscriptions",
            &format!("ssrf-{url}"),
            &json!({"domain": "balance", "eventTypes": ["BALANCE_UPDATED"], "webhookUrl": url}),
        );
        assert_field(&r, 400, "webhookUrl");
    }
    assert_eq!(
        svc.post(
            "/api/domains/events/subscriptions",
            "svc-sub",
            &json!({"domain": "balance", "eventTypes": ["BALANCE_UPDATED"], "webhookUrl": hooks.url("/ok")}),
        )
        .status,
        403
    );
    let r = ops.post(
        "/api/domains/events/subscriptions",
        "sub-bad-type",
        &json!({"domain": "balance", "eventTypes": ["balance updated"], "webhookUrl": hooks.url("/ok")}),
    );
    assert_field(&r, 400, "eventTypes");
    let subscribe = |key: &str, domain: &str, types: &[&str], path: &str| -> (String, String) {
        let r = ops.post(
            "/api/domains/events/subscriptions",
            key,
            &json!({"domain": domain, "eventTypes": types, "webhookUrl": hooks.url(path)}),
        );
        assert_eq!(r.status, 201, "{}", r.text());
        let j = r.json();
        let secret = j["secret"].as_str().unwrap().to_string();
        assert!(secret.starts_with("whsec_"));
        (j["id"].as_str().unwrap().to_string(), secret)
    };
    let (sub_ok, secret_ok) = subscribe("sub-ok", "balance", &["BALANCE_UPDATED"], "/ok");
    let (sub_flaky, secret_flaky) = subscribe(
        "sub-flaky",
        "collections",
        &["COLLECTION_COMPLETED"],
        "/flaky",
    );
    let (sub_dead, _) = subscribe("sub-dead", "adjustment", &["ADJUSTMENT_APPLIED"], "/dead");
    let listed = ops.get("/api/domains/events/subscriptions").json();
    assert_eq!(listed["subscriptions"].as_array().unwrap().len(), 3);
    assert!(
        !listed.to_string().contains("whsec_"),
        "secrets are shown once"
    );

    // The live stream, connected before the traffic.
    let mut stream = ws_connect(
        &server.addr,
        &format!(
            "/monitoring/stream?access_token={}",
            jwt("viewer-vic", "read-only")
        ),
        "",
    );
    let hello: Value = serde_json::from_str(&ws_text(&mut stream).unwrap()).unwrap();
    assert_eq!(hello["kind"], "hello");
    let r = server.get("/monitoring/stream?access_token=not.a.token");
    assert_eq!(r.status, 401);

    // ---- collections
    let r = server.request(
        "POST",
        "/api/domains/collections",
        &[
            ("Authorization", &ops.bearer),
            ("Content-Type", "application/json"),
        ],
        coll.to_string().as_bytes(),
    );
    assert_field(&r, 400, "Idempotency-Key");
    for (body, field) in [
        (
            json!({"merchantId": "M1", "amount": 10.001, "currency": "USD", "paymentMethod": "card"}),
            "amount",
        ),
        (
            json!({"merchantId": "M1", "amount": "10", "currency": "USD", "paymentMethod": "card"}),
            "amount",
        ),
        (
            json!({"merchantId": "M1", "amount": -5, "currency": "USD", "paymentMethod": "card"}),
            "amount",
        ),
        (
            json!({"merchantId": "M1", "amount": 0, "currency": "USD", "paymentMethod": "card"}),
            "amount",
        ),
        (
            json!({"merchantId": "M1", "amount": 1e13, "currency": "USD", "paymentMethod": "card"}),
            "amount",
        ),
        (
            json!({"merchantId": "M1", "amount": 10, "currency": "usd", "paymentMethod": "card"}),
            "currency",
        ),
        (
            json!({"amount": 10, "currency": "USD", "paymentMethod": "card"}),
            "merchantId",
        ),
        (
            json!({"merchantId": "M 1", "amount": 10, "currency": "USD", "paymentMethod": "card"}),
            "merchantId",
        ),
        (
            json!({"merchantId": "M1", "amount": 10, "currency": "USD"}),
            "paymentMethod",
        ),
    ] {
        assert_field(
            &ops.post("/api/domains/collections", "bad", &body),
            400,
            field,
        );
    }
    let r = server.request(
        "POST",
        "/api/domains/collections",
        &[("Authorization", &ops.bearer), ("Idempotency-Key", "nj")],
        b"{not json",
    );
    assert_field(&r, 400, "body");

    let r = svc.post("/api/domains/collections", "col-1", &coll);
    assert_eq!(r.status, 201, "{}", r.text());
    let c1 = r.json();
    assert_eq!(
        (c1["status"].as_str(), c1["amount"].as_f64()),
        (Some("COMPLETED"), Some(100.5))
    );
    let col_id = c1["id"].as_str().unwrap().to_string();
    let again = svc.post("/api/domains/collections", "col-1", &coll);
    assert_eq!(again.status, 201);
    assert_eq!(
        again.json()["id"],
        c1["id"],
        "a retry returns the first answer"
    );
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    let other =
        json!({"merchantId": "M1", "amount": 7, "currency": "USD", "paymentMethod": "card"});
    assert_field(
        &svc.post("/api/domains/collections", "col-1", &other),
        422,
        "Idempotency-Key",
    );
    let r = ops.get(&format!("/api/domains/collections/{col_id}"));
    assert_eq!(r.json()["merchantId"], "M1");
    assert_eq!(ops.get("/api/domains/collections/col_nope").status, 404);
    let declined =
        json!({"merchantId": "M1", "amount": 300000, "currency": "USD", "paymentMethod": "card"});
    let r = svc.post("/api/domains/collections", "col-big", &declined);
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(r.json()["status"], "FAILED");
    assert_eq!(r.json()["field"], "amount");
    let dash = ops.get("/api/domains/collections/dashboard").json();
    assert_eq!(
        dash["byMerchant"]["M1"]["USD"]["COMPLETED"],
        json!({"count": 1, "amount": 100.5})
    );
    assert_eq!(dash["byMerchant"]["M1"]["USD"]["FAILED"]["count"], 1);
    assert_eq!(dash["completedByCurrency"]["USD"]["amount"], 100.5);

    // ---- distributions: rates from D1, payouts bounded by commissions
    let rates = ops.get("/api/domains/distributions/rates").json();
    assert_eq!(rates["rates"].as_array().unwrap().len(), 7);
    let r = svc.post(
        "/api/domains/distributions/commissions",
        "com-1",
        &json!({"agentId": "AG1", "amount": 1000, "period": "monthly"}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        (r.json()["rate"].as_f64(), r.json()["commission"].as_f64()),
        (Some(0.05), Some(50.0))
    );
    let r = svc.post(
        "/api/domains/distributions/commissions",
        "com-2",
        &json!({"agentId": "AG1", "amount": 20000, "period": "monthly"}),
    );
    assert_eq!(
        (r.json()["rate"].as_f64(), r.json()["commission"].as_f64()),
        (Some(0.075), Some(1500.0))
    );
    assert_field(
        &svc.post(
            "/api/domains/distributions/commissions",
            "com-3",
            &json!({"agentId": "AG1", "amount": 5, "period": "yearly"}),
        ),
        400,
        "period",
    );
    let payout = |key: &str, amount: f64| {
        svc.post(
            "/api/domains/distributions/payouts",
            key,
            &json!({"agentId": "AG1", "amount": amount, "method": "bank_transfer"}),
        )
    };
    assert_field(&payout("pay-1", 2000.0), 409, "amount");
    let r = payout("pay-2", 1550.0);
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["status"], "PROCESSED");
    assert_eq!(payout("pay-2", 1550.0).json()["id"], r.json()["id"]);
    assert_field(&payout("pay-3", 0.01), 409, "amount");
    assert_eq!(
        payout("pay-1", 2000.0).status,
        409,
        "a refusal is replayed too"
    );
    let standing = ops.get("/api/domains/distributions/agents/AG1").json();
    assert_eq!(
        standing["balances"]["USD"],
        json!({"earned": 1550, "paid": 1550, "available": 0})
    );

    // ---- balance
    let bal = |key: &str, player: &str, amount: f64, kind: &str| {
        svc.post(
            "/api/domains/balance",
            key,
            &json!({"playerId": player, "amount": amount, "currency": "USD", "type": kind}),
        )
    };
    let r = bal("b-1", "P1", 100.0, "credit");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["version"], 1);
    let r = bal("b-2", "P1", 150.0, "debit");
    assert_field(&r, 409, "amount");
    assert_eq!(
        bal("b-3", "P1", 40.25, "debit").json()["balance"].as_f64(),
        Some(59.75)
    );
    let first = bal("b-1", "P1", 100.0, "credit");
    assert_eq!(first.json()["version"], 1, "replayed, not applied again");
    assert_field(
        &svc.post(
            "/api/domains/balance",
            "b-4",
            &json!({"playerId": "P1", "amount": 5, "currency": "JPY", "type": "credit"}),
        ),
        400,
        "currency",
    );
    assert_field(
        &svc.post(
            "/api/domains/balance",
            "b-5",
            &json!({"playerId": "P1", "amount": 5, "currency": "USD", "type": "gift"}),
        ),
        400,
        "type",
    );
    assert_eq!(
        ops.get("/api/domains/balance/P1").json(),
        json!({"playerId": "P1", "balances": {"USD": 59.75}, "version": 2})
    );

    // 200 concurrent credits and debits on one player (and 50 of them
    // sent twice at once with the same key) conserve the sum exactly.
    assert_eq!(bal("conc-seed", "PCONC", 1000.0, "credit").status, 200);
    let addr = server.addr.clone();
    let bearer = svc.bearer.clone();
    let threads: Vec<_> = (0..250)
        .map(|i| {
            let (addr, bearer) = (addr.clone(), bearer.clone());
            std::thread::spawn(move || {
                let n = i % 200;
                let (kind, amount) = if n % 2 == 0 { ("credit", 1.25) } else { ("debit", 0.75) };
                let r = post_on(
                    &addr,
                    &bearer,
                    "/api/domains/balance",
                    &format!("conc-{n}"),
                    &json!({"playerId": "PCONC", "amount": amount, "currency": "USD", "type": kind}),
                );
                (n, r.status, r.json()["operationId"].as_str().map(str::to_string))
            })
        })
        .collect();
    let mut op_ids: HashMap<usize, HashSet<String>> = HashMap::new();
    for t in threads {
        let (n, status, id) = t.join().unwrap();
        assert_eq!(status, 200);
        op_ids.entry(n).or_default().insert(id.unwrap());
    }
    assert!(
        op_ids.values().all(|ids| ids.len() == 1),
        "a repeated key got a second operation"
    );
    assert_eq!(
        ops.get("/api/domains/balance/PCONC").json(),
        json!({"playerId": "PCONC", "balances": {"USD": 1050}, "version": 201})
    );
    // 30 concurrent debits of 1.00 against 10.00: exactly ten succeed.
    assert_eq!(bal("race-seed", "PRACE", 10.0, "credit").status, 200);
    let threads: Vec<_> = (0..30)
        .map(|i| {
            let (addr, bearer) = (addr.clone(), bearer.clone());
            std::thread::spawn(move || {
                post_on(
                    &addr,
                    &bearer,
                    "/api/domains/balance",
                    &format!("race-{i}"),
                    &json!({"playerId": "PRACE", "amount": 1, "currency": "USD", "type": "debit"}),
                )
                .status
            })
        })
        .collect();
    let statuses: Vec<u16> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        10,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        20,
        "{statuses:?}"
    );
    assert_eq!(
        ops.get("/api/domains/balance/PRACE").json()["balances"]["USD"],
        0.0
    );

    // ---- free play: credits with expiry, spent before cash
    assert_field(
        &svc.post("/api/domains/free-play/grants", "fp-old",
            &json!({"playerId": "P1", "amount": 5, "currency": "USD", "expiresAt": "2000-01-01T00:00:00Z"})),
        400,
        "expiresAt",
    );
    let r = svc.post(
        "/api/domains/free-play/grants",
        "fp-1",
        &json!({"playerId": "P1", "amount": 20, "currency": "USD", "expiresInDays": 30, "campaign": "WELCOME"}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        ops.get("/api/domains/free-play/players/P1").json()["credits"]["USD"],
        20.0
    );
    let r = svc.post(
        "/api/domains/free-play/wagers",
        "w-1",
        &json!({"playerId": "P1", "amount": 25, "currency": "USD", "gameId": "SLOTS_1"}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        (
            r.json()["freePlayUsed"].as_f64(),
            r.json()["cashUsed"].as_f64()
        ),
        (Some(20.0), Some(5.0))
    );
    assert_eq!(
        ops.get("/api/domains/balance/P1").json()["balances"]["USD"],
        54.75
    );
    assert_eq!(
        svc.post(
            "/api/domains/free-play/wagers",
            "w-1",
            &json!({"playerId": "P1", "amount": 25, "currency": "USD", "gameId": "SLOTS_1"})
        )
        .status,
        201
    );
    assert_eq!(
        ops.get("/api/domains/balance/P1").json()["balances"]["USD"],
        54.75,
        "a retried wager is not charged twice"
    );
    assert_field(
        &svc.post(
            "/api/domains/free-play/wagers",
            "w-2",
            &json!({"playerId": "P1", "amount": 100, "currency": "USD"}),
        ),
        409,
        "amount",
    );
    assert_eq!(
        ops.get("/api/domains/balance/P1").json()["balances"]["USD"],
        54.75
    );
    let fp = ops.get("/api/domains/free-play/players/P1").json();
    assert_eq!(fp["grants"][0]["status"], "USED");

    // ---- adjustment: operator only, with a reason, always audited
    let adj_credit = json!({"playerId": "P1", "amount": 10, "currency": "USD", "direction": "credit", "reason": "goodwill credit after outage"});
    let r = ops.post("/api/domains/adjustment", "adj-1", &adj_credit);
    assert_eq!(r.status, 201, "{}", r.text());
    let a1 = r.json();
    assert_eq!(
        (
            a1["status"].as_str(),
            a1["operatorId"].as_str(),
            a1["balanceAfter"].as_f64()
        ),
        (Some("APPLIED"), Some("ops-ann"), Some(64.75))
    );
    assert_eq!(
        ops.post("/api/domains/adjustment", "adj-1", &adj_credit)
            .json()["id"],
        a1["id"]
    );
    assert_eq!(
        ops.get("/api/domains/balance/P1").json()["balances"]["USD"],
        64.75
    );
    let r = ops.post("/api/domains/adjustment", "adj-2", &json!({"playerId": "P1", "amount": 1000, "currency": "USD", "direction": "debit", "reason": "reverse a bonus paid twice"}));
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(r.json()["status"], "REJECTED");
    assert_field(&ops.post("/api/domains/adjustment", "adj-3", &json!({"playerId": "P1", "amount": 1, "currency": "USD", "direction": "credit", "reason": "oops"})), 400, "reason");
    let audit = ops
        .get(&format!(
            "/api/domains/adjustment/audit/{}",
            a1["id"].as_str().unwrap()
        ))
        .json();
    assert_eq!(audit["entries"][0]["action"], "adjustment.applied");
    assert_eq!(audit["entries"][0]["subject"], "ops-ann");
    let list = ops.get("/api/domains/adjustment?playerId=P1").json();
    assert_eq!(
        list["adjustments"].as_array().unwrap().len(),
        2,
        "the refusal is recorded too"
    );

    // ---- coordinator: a saga across three domains
    let winnings = |player: &str, amount: f64, currency: &str| {
        json!({"type": "PLAYER_WINNINGS", "domains": ["collections", "distributions", "balance"],
               "payload": {"playerId": player, "amount": amount, "currency": currency, "gameId": "SLOTS_777", "agentId": "AG-SAGA"}})
    };
    let r = svc.post(
        "/api/domains/coordinator/coordinate",
        "saga-1",
        &winnings("PWIN", 250.0, "USD"),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let tx = r.json();
    assert_eq!(tx["status"], "COMPLETED", "{tx}");
    let states: Vec<&str> = tx["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["done", "done", "done"]);
    let tx_id = tx["id"].as_str().unwrap().to_string();
    assert_eq!(
        ops.get(&format!("/api/domains/coordinator/transactions/{tx_id}"))
            .json()["status"],
        "COMPLETED"
    );
    assert_eq!(
        ops.get("/api/domains/balance/PWIN").json()["balances"]["USD"],
        250.0
    );
    assert_eq!(
        tx["steps"][1]["result"]["commission"], 7.5,
        "daily 3% of 250.00"
    );
    let again = svc.post(
        "/api/domains/coordinator/coordinate",
        "saga-1",
        &winnings("PWIN", 250.0, "USD"),
    );
    assert_eq!(again.json()["id"], tx["id"]);
    assert_eq!(
        ops.get("/api/domains/balance/PWIN").json(),
        json!({"playerId": "PWIN", "balances": {"USD": 250}, "version": 1})
    );
    // The third step fails (the balance domain does not hold JPY): the
    // first two are compensated, last first.
    let r = svc.post(
        "/api/domains/coordinator/coordinate",
        "saga-2",
        &winnings("PCOMP", 80.0, "JPY"),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let tx2 = r.json();
    assert_eq!(tx2["status"], "COMPENSATED", "{tx2}");
    let states: Vec<&str> = tx2["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["compensated", "compensated", "failed"]);
    assert!(
        tx2["steps"][2]["error"]
            .as_str()
            .unwrap()
            .contains("currency")
    );
    let col = tx2["steps"][0]["result"]["id"].as_str().unwrap();
    assert_eq!(
        ops.get(&format!("/api/domains/collections/{col}")).json()["status"],
        "REVERSED"
    );
    let com = tx2["steps"][1]["result"]["id"].as_str().unwrap();
    assert_eq!(
        ops.get(&format!("/api/domains/distributions/commissions/{com}"))
            .json()["status"],
        "VOID"
    );
    assert_eq!(ops.get("/api/domains/balance/PCOMP").json()["version"], 0);
    for (body, field) in [
        (
            json!({"type": "REFUND", "domains": [], "payload": {}}),
            "type",
        ),
        (
            json!({"type": "PLAYER_WINNINGS", "domains": ["balance"], "payload": {}}),
            "domains",
        ),
        (
            json!({"type": "PLAYER_WINNINGS", "domains": ["collections", "distributions", "balance"],
                "payload": {"playerId": "P", "amount": 1.234, "gameId": "G"}}),
            "payload.amount",
        ),
    ] {
        assert_field(
            &svc.post("/api/domains/coordinator/coordinate", "saga-bad", &body),
            400,
            field,
        );
    }
    assert_eq!(
        ops.get("/api/domains/coordinator/transactions/tx_00000000000000000000000000000000")
            .status,
        404
    );
    let h = server.get("/coordinator/health").json();
    assert_eq!(
        (
            h["activeTransactions"].as_u64(),
            h["completed"].as_u64(),
            h["compensated"].as_u64()
        ),
        (Some(0), Some(1), Some(1))
    );

    // ---- events: publish by hand; the stream shows it
    assert_field(
        &svc.post(
            "/api/domains/events",
            "ev-bad",
            &json!({"type": "payment failed", "domain": "collections", "data": {}}),
        ),
        400,
        "type",
    );
    assert_field(
        &svc.post(
            "/api/domains/events",
            "ev-bad2",
            &json!({"type": "PAYMENT_FAILED", "domain": "shipping", "data": {}}),
        ),
        400,
        "domain",
    );
    let r = svc.post("/api/domains/events", "ev-1", &json!({"type": "PAYMENT_FAILED", "domain": "collections", "data": {"collectionId": "COLL_123", "amount": 100}}));
    assert_eq!(r.status, 202, "{}", r.text());
    let published = r.json()["id"].as_str().unwrap().to_string();
    let seen = eventually(
        "the published event on the stream",
        Duration::from_secs(30),
        || {
            let m: Value = serde_json::from_str(&ws_text(&mut stream)?).ok()?;
            (m["kind"] == "event" && m["event"]["id"] == published.as_str()).then_some(m)
        },
    );
    assert_eq!(seen["event"]["type"], "PAYMENT_FAILED");
    let stored = eventually("the event stored", Duration::from_secs(30), || {
        let r = ops.get(&format!("/api/domains/events/{published}"));
        (r.status == 200).then(|| r.json())
    });
    assert_eq!(stored["data"]["collectionId"], "COLL_123");

    // ---- webhooks: every balance change reaches /ok, signed
    // Every applied balance operation above: P1 (2), PCONC (201), PRACE
    // (11), the wager's cash part, the adjustment, the completed saga.
    let expected_balance_events = 2 + 201 + 11 + 1 + 1 + 1;
    let deliveries = eventually(
        "balance webhooks delivered",
        Duration::from_secs(120),
        || {
            fire_cron(&server, "crystal-clear-events");
            let d = ops
                .get(&format!(
                    "/api/domains/events/deliveries?subscription={sub_ok}"
                ))
                .json();
            let list = d["deliveries"].as_array()?.clone();
            (list.len() == expected_balance_events
                && list.iter().all(|x| x["status"] == "delivered"))
            .then_some(list)
        },
    );
    let received = hooks.hooks("/ok");
    for h in &received {
        assert!(signature_valid(&secret_ok, h), "bad signature on {h:?}");
        assert!(h.timestamp.parse::<u64>().unwrap() > 1_700_000_000);
        let body: Value = serde_json::from_str(&h.body).unwrap();
        assert_eq!(body["type"], "BALANCE_UPDATED");
    }
    let ids: HashSet<&str> = received.iter().map(|h| h.id.as_str()).collect();
    for d in &deliveries {
        assert!(
            ids.contains(d["id"].as_str().unwrap()),
            "delivery {d} never arrived"
        );
    }
    let mut tampered = received[0].clone();
    tampered.body.push(' ');
    assert!(!signature_valid(&secret_ok, &tampered));

    // /flaky fails twice: retried through the cron sweep until delivered.
    let flaky = eventually("flaky deliveries", Duration::from_secs(60), || {
        fire_cron(&server, "crystal-clear-events");
        let d = ops
            .get(&format!(
                "/api/domains/events/deliveries?subscription={sub_flaky}"
            ))
            .json();
        let list = d["deliveries"].as_array()?.clone();
        (list.len() == 3 && list.iter().all(|x| x["status"] == "delivered")).then_some(list)
    });
    let failed_attempts: usize = flaky
        .iter()
        .map(|d| {
            d["attemptLog"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|a| a["httpStatus"] == 500)
                .count()
        })
        .sum();
    assert_eq!(failed_attempts, 2);
    assert!(
        hooks
            .hooks("/flaky")
            .iter()
            .all(|h| signature_valid(&secret_flaky, h))
    );
    let retried = flaky
        .iter()
        .find(|d| d["attempts"].as_u64() > Some(1))
        .unwrap();
    let first_id = retried["id"].as_str().unwrap();
    assert!(
        hooks
            .hooks("/flaky")
            .iter()
            .filter(|h| h.id == first_id)
            .count()
            >= 2,
        "a retry keeps its webhook-id"
    );

    // /dead always fails: four attempts with doubling backoff, then the
    // dead-letter queue.
    let dead = eventually("dead-lettered delivery", Duration::from_secs(60), || {
        fire_cron(&server, "crystal-clear-events");
        let d = ops
            .get(&format!(
                "/api/domains/events/deliveries?subscription={sub_dead}"
            ))
            .json();
        let list = d["deliveries"].as_array()?.clone();
        (list.len() == 1 && list[0]["status"] == "dead").then_some(list)
    });
    let log = dead[0]["attemptLog"].as_array().unwrap();
    assert_eq!(log.len(), 4);
    let ms = |v: &Value| -> i64 {
        // "YYYY-MM-DDTHH:MM:SS.mmmZ" to milliseconds within the day.
        let t = v.as_str().unwrap();
        let (h, m, s, f): (i64, i64, i64, i64) = (
            t[11..13].parse().unwrap(),
            t[14..16].parse().unwrap(),
            t[17..19].parse().unwrap(),
            t[20..23].parse().unwrap(),
        );
        ((h * 60 + m) * 60 + s) * 1000 + f
    };
    let gaps: Vec<i64> = log[..3]
        .iter()
        .map(|a| ms(&a["nextAttemptAt"]) - ms(&a["at"]))
        .collect();
    assert_eq!(
        gaps,
        [1, 2, 4],
        "backoff doubles from WEBHOOK_BACKOFF_BASE_SECONDS"
    );
    assert!(log[3]["nextAttemptAt"].is_null());
    eventually("dead letter recorded", Duration::from_secs(30), || {
        let s = ops.get("/api/domains/events/stats").json();
        (s["deadLetters"].as_u64()? >= 1).then_some(())
    });

    // ---- monitoring follows the traffic
    let after = ops.get("/monitoring/unified-metrics").json();
    let reqs = |m: &Value, d: &str| m["domains"][d]["metrics"]["requests"].as_u64().unwrap_or(0);
    assert!(
        reqs(&after, "balance") >= reqs(&before, "balance") + 250,
        "{after}"
    );
    assert!(reqs(&after, "collections") > reqs(&before, "collections"));
    assert!(
        after["dashboard"]["metrics"]["requests"].as_u64()
            > before["dashboard"]["metrics"]["requests"].as_u64()
    );
    assert!(
        after["domains"]["balance"]["metrics"]["clientErrors"]
            .as_u64()
            .unwrap()
            >= 20
    );
    assert_eq!(after["coordinator"]["completed"], 1);
    assert_eq!(after["coordinator"]["compensated"], 1);
    assert_eq!(after["system"]["failedSagas"], 1);
    assert!(after["system"]["deadLetters"].as_u64().unwrap() >= 1);
    assert!(
        after["system"]["healthScore"].as_u64().unwrap()
            < before["system"]["healthScore"].as_u64().unwrap()
    );
    assert_eq!(before["system"]["overallStatus"], "healthy");
    assert_ne!(after["system"]["overallStatus"], "healthy");
    assert!(
        after["dashboard"]["metrics"]["webhooksDelivered"]
            .as_u64()
            .unwrap()
            >= expected_balance_events as u64
    );

    assert_eq!(
        viewer
            .post("/monitoring/check-alerts", "x", &json!({}))
            .status,
        403
    );
    let check = ops
        .post("/monitoring/check-alerts", "chk-1", &json!({}))
        .json();
    let triggered: HashSet<&str> = check["triggered"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["ruleId"].as_str().unwrap())
        .collect();
    assert!(
        triggered.contains("failed-sagas") && triggered.contains("dead-letters"),
        "{check}"
    );
    assert!(!triggered.contains("high-error-rate"), "{check}");
    let again = ops
        .post("/monitoring/check-alerts", "chk-2", &json!({}))
        .json();
    assert!(
        again["triggered"].as_array().unwrap().is_empty(),
        "an active alert is not raised twice"
    );
    let active = viewer.get("/monitoring/alerts").json();
    assert_eq!(active["alerts"].as_array().unwrap().len(), triggered.len());
    let alert_msg = eventually("the alert on the stream", Duration::from_secs(30), || {
        let m: Value = serde_json::from_str(&ws_text(&mut stream)?).ok()?;
        (m["kind"] == "alert").then_some(m)
    });
    assert!(alert_msg["alert"]["message"].is_string());
    let report = viewer.get("/monitoring/report").json();
    assert_eq!(
        report["alerts"]["active"].as_array().unwrap().len(),
        triggered.len()
    );
    assert_eq!(report["busiestDomain"], "balance");
    assert!(!report["findings"].as_array().unwrap().is_empty());

    // ---- audit: every mutation recorded, and the log refuses changes
    let rows = d1_json(
        &app,
        "collections",
        "crystal-clear-collections",
        "SELECT action, COUNT(*) AS n FROM audit_log GROUP BY action ORDER BY action",
    )
    .unwrap();
    let text = rows.to_string();
    for action in [
        "collection.created",
        "collection.declined",
        "collection.reversed",
    ] {
        assert!(text.contains(action), "{text}");
    }
    let err = d1_json(
        &app,
        "collections",
        "crystal-clear-collections",
        "DELETE FROM audit_log",
    )
    .unwrap_err();
    assert!(err.contains("append-only"), "{err}");
    let balance_audit = eventually("balance audit copied", Duration::from_secs(30), || {
        let v = d1_json(
            &app,
            "balance",
            "crystal-clear-balance",
            "SELECT COUNT(*) AS n FROM audit_log",
        )
        .ok()?;
        let n = v.to_string();
        n.contains(&format!("\"n\":{expected_balance_events}"))
            .then_some(n)
    });
    assert!(!balance_audit.is_empty());

    drop(stream);
    server.terminate();
}

/// kill -9 while sagas are in flight, restart, and kill -9 again while a
/// webhook delivery is unanswered, restart: every saga completes (or never
/// started), no balance change is applied twice, and every event is
/// delivered at least once.
#[test]
fn crystal_clear_survives_kill9_mid_saga_and_mid_delivery() {
    let app = prepare(EVENTS_VARS, "");
    let server = start(&app);
    let hooks = Receiver::start();
    let ops = Api::new(&server, "ops-kim", "operator");
    let r = ops.post(
        "/api/domains/events/subscriptions",
        "sub",
        &json!({"domain": "balance", "eventTypes": ["BALANCE_UPDATED"], "webhookUrl": hooks.url("/ok")}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let sub = r.json()["id"].as_str().unwrap().to_string();
    let secret = r.json()["secret"].as_str().unwrap().to_string();

    // Deliveries are held unanswered throughout; 40 sagas start at once and
    // the server dies as soon as one is seen running.
    hooks.hold.store(true, Ordering::SeqCst);
    const SAGAS: usize = 40;
    let winnings = |i: usize| {
        json!({"type": "PLAYER_WINNINGS", "domains": ["collections", "distributions", "balance"],
            "payload": {"playerId": "PKILL", "amount": (i + 1) as f64, "gameId": "G", "agentId": "AGK"}})
    };
    let clients: Vec<_> = (0..SAGAS)
        .map(|i| {
            let (addr, bearer, body) = (server.addr.clone(), ops.bearer.clone(), winnings(i));
            std::thread::spawn(move || {
                let _ = web_support::try_http(
                    &addr,
                    "POST",
                    "/api/domains/coordinator/coordinate",
                    &[
                        ("Authorization", &bearer),
                        ("Content-Type", "application/json"),
                        ("Idempotency-Key", &format!("kill-{i}")),
                    ],
                    body.to_string().as_bytes(),
                    Duration::from_secs(60),
                );
            })
        })
        .collect();
    eventually("a saga running", Duration::from_secs(60), || {
        let r = ops.get("/api/domains/coordinator/transactions?status=RUNNING");
        (r.status == 200 && !r.json()["transactions"].as_array()?.is_empty()).then_some(())
    });
    server.kill9();
    for c in clients {
        c.join().unwrap();
    }

    // Each saga the first server accepted finishes after the restart (its
    // alarm resumes it); the others never started.
    let server = start(&app);
    let ops = Api::new(&server, "ops-kim", "operator");
    let mut completed_total = 0.0;
    let mut completed = 0;
    let mut resumed = 0;
    for i in 0..SAGAS {
        let id = tx_id(&format!("kill-{i}"));
        let started = Instant::now();
        let state = loop {
            let r = ops.get(&format!("/api/domains/coordinator/transactions/{id}"));
            if r.status == 404 {
                break None;
            }
            let j = r.json();
            if r.status != 200 {
                // Reported, and asked again: the state is what is checked.
                let log = server.log.lock().unwrap();
                let tail = log[log.len().saturating_sub(20)..].join("\n");
                eprintln!("GET {id}: {} {j}\n{tail}", r.status);
            } else if !matches!(j["status"].as_str(), Some("RUNNING" | "COMPENSATING")) {
                break Some(j);
            }
            if started.elapsed() > Duration::from_secs(60) {
                panic!(
                    "saga {id} unfinished: {j}\nserver log:\n{}",
                    server.log.lock().unwrap().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        if let Some(s) = state {
            assert_eq!(s["status"], "COMPLETED", "{s}");
            if s["steps"]
                .as_array()
                .unwrap()
                .iter()
                .any(|st| st["attempts"].as_u64() > Some(1))
            {
                resumed += 1;
            }
            completed += 1;
            completed_total += (i + 1) as f64;
        }
    }
    eprintln!(
        "{completed} of {SAGAS} sagas had started before the kill; {resumed} repeated a step after the restart"
    );
    assert!(completed > 0);
    let bal = ops.get("/api/domains/balance/PKILL").json();
    assert_eq!(
        bal["balances"]["USD"].as_f64(),
        Some(completed_total),
        "{bal}"
    );
    assert_eq!(bal["version"], completed, "one balance change per saga");
    let h = server.get("/coordinator/health").json();
    assert_eq!(h["activeTransactions"], 0, "{h}");

    // The second server delivers too; kill it while a delivery is held.
    let arrived = hooks.arrived.load(Ordering::SeqCst);
    eventually(
        "a webhook delivery in flight",
        Duration::from_secs(60),
        || {
            fire_cron(&server, "crystal-clear-events");
            (hooks.arrived.load(Ordering::SeqCst) > arrived).then_some(())
        },
    );
    server.kill9();
    // Whatever the killed servers sent is set apart: only what the last
    // server delivers counts below.
    hooks.epoch.store(1, Ordering::SeqCst);
    hooks.hold.store(false, Ordering::SeqCst);

    let server = start(&app);
    let ops = Api::new(&server, "ops-kim", "operator");
    let list = eventually(
        "deliveries after the restart",
        Duration::from_secs(120),
        || {
            fire_cron(&server, "crystal-clear-events");
            let d = ops
                .get(&format!(
                    "/api/domains/events/deliveries?subscription={sub}"
                ))
                .json();
            let list = d["deliveries"].as_array()?.clone();
            (list.len() == completed && list.iter().all(|x| x["status"] == "delivered"))
                .then_some(list)
        },
    );
    let received: Vec<Hook> = hooks
        .hooks("/ok")
        .into_iter()
        .filter(|h| h.epoch == 1)
        .collect();
    assert!(received.iter().all(|h| signature_valid(&secret, h)));
    let ids: HashSet<&str> = received.iter().map(|h| h.id.as_str()).collect();
    for d in &list {
        assert!(ids.contains(d["id"].as_str().unwrap()), "{d} never arrived");
    }
    let events: HashSet<String> = received
        .iter()
        .map(|h| {
            serde_json::from_str::<Value>(&h.body).unwrap()["data"]["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        events.len(),
        completed,
        "one distinct event per balance change"
    );
    assert_eq!(
        ops.get("/api/domains/balance/PKILL").json()["version"],
        completed
    );
    server.terminate();
}

/// The coordinator's transaction id for an Idempotency-Key.
fn tx_id(key: &str) -> String {
    use sha2::Digest;
    let digest = Sha256::digest(format!("coordinate:{key}").as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("tx_{}", &hex[..32])
}

// ------------------------------------------------------------- over time

const DAY_MS: u64 = 86_400_000;
const HOUR_MS: u64 = 3_600_000;

fn usd(v: &Value) -> f64 {
    v["balances"]["USD"].as_f64().unwrap_or(0.0)
}

/// Time-bound rules under `hearth serve --test-clock`, moved with
/// `POST /__hearth/clock` instead of waiting: Free Play credits expire,
/// idempotency records expire after 24 hours (and the cron trigger purges
/// them), and the per-subject Rate Limiting binding refuses with 429 and a
/// Retry-After that the clock then runs out.
#[test]
fn crystal_clear_over_time_with_the_test_clock() {
    let app = prepare(EVENTS_VARS, "");
    // A small read-only budget, so the limit is reached in a few requests.
    let router_cfg = app.root.join("router/wrangler.toml");
    let cfg = std::fs::read_to_string(&router_cfg).unwrap();
    let small = cfg.replace(
        "simple = { limit = 300, period = 60 }",
        "simple = { limit = 5, period = 60 }",
    );
    assert_ne!(
        small, cfg,
        "the read-only binding's limit is in wrangler.toml"
    );
    std::fs::write(&router_cfg, small).unwrap();
    let server = start_with(&app, &["--test-clock"]);
    let ops = Api::new(&server, "ops-tim", "operator");
    let svc = Api::new(&server, "svc-tim", "service");

    // ---- Free Play: credits usable before their expiry, not after
    let r = svc.post(
        "/api/domains/balance",
        "t-cash",
        &json!({"playerId": "PT", "amount": 10, "currency": "USD", "type": "credit"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let grant = |key: &str, amount: f64, days: u64| {
        let r = svc.post(
            "/api/domains/free-play/grants",
            key,
            &json!({"playerId": "PT", "amount": amount, "currency": "USD", "expiresInDays": days}),
        );
        assert_eq!(r.status, 201, "{}", r.text());
        r.json()["id"].as_str().unwrap().to_string()
    };
    let wager = |key: &str, amount: f64| {
        svc.post(
            "/api/domains/free-play/wagers",
            key,
            &json!({"playerId": "PT", "amount": amount, "currency": "USD"}),
        )
    };
    let g1 = grant("t-g1", 20.0, 1);
    let g2 = grant("t-g2", 5.0, 3);
    let r = wager("t-w1", 15.0);
    assert_eq!(r.status, 201, "{}", r.text());
    let w1 = r.json();
    assert_eq!(
        (w1["freePlayUsed"].as_f64(), w1["cashUsed"].as_f64()),
        (Some(15.0), Some(0.0))
    );
    assert_eq!(
        w1["grants"],
        json!([{"grantId": g1, "used": 15}]),
        "soonest expiry first"
    );
    let fp = ops.get("/api/domains/free-play/players/PT").json();
    assert_eq!(fp["credits"]["USD"], 10.0, "{fp}");

    // A day and a second later the first grant has expired, 5.00 unspent.
    server.advance_clock(DAY_MS + 1000);
    let fp = ops.get("/api/domains/free-play/players/PT").json();
    assert_eq!(fp["credits"]["USD"], 5.0, "{fp}");
    let status_of = |fp: &Value, id: &str| {
        fp["grants"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["id"] == id)
            .map(|g| (g["status"].clone(), g["remaining"].as_f64()))
            .unwrap()
    };
    assert_eq!(status_of(&fp, &g1), (json!("EXPIRED"), Some(5.0)));
    assert_eq!(status_of(&fp, &g2), (json!("ACTIVE"), Some(5.0)));
    // 12.00: the expired 5.00 is not usable; 5.00 of free play, 7.00 cash.
    let r = wager("t-w2", 12.0);
    assert_eq!(r.status, 201, "{}", r.text());
    let w2 = r.json();
    assert_eq!(
        (w2["freePlayUsed"].as_f64(), w2["cashUsed"].as_f64()),
        (Some(5.0), Some(7.0))
    );
    assert_eq!(w2["grants"], json!([{"grantId": g2, "used": 5}]));
    assert_eq!(usd(&ops.get("/api/domains/balance/PT").json()), 3.0);

    // A grant that expires unused: after it, a wager beyond the cash is
    // refused and spends nothing; one within the cash spends only cash.
    let g3 = grant("t-g3", 7.0, 2);
    assert_eq!(
        ops.get("/api/domains/free-play/players/PT").json()["credits"]["USD"],
        7.0
    );
    server.advance_clock(2 * DAY_MS + 1000);
    let fp = ops.get("/api/domains/free-play/players/PT").json();
    assert!(fp["credits"].get("USD").is_none(), "{fp}");
    assert_eq!(status_of(&fp, &g3), (json!("EXPIRED"), Some(7.0)));
    assert_field(&wager("t-w3", 5.0), 409, "amount");
    assert_eq!(usd(&ops.get("/api/domains/balance/PT").json()), 3.0);
    let fp = ops.get("/api/domains/free-play/players/PT").json();
    assert_eq!(status_of(&fp, &g3), (json!("EXPIRED"), Some(7.0)));
    let r = wager("t-w4", 3.0);
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        (
            r.json()["freePlayUsed"].as_f64(),
            r.json()["cashUsed"].as_f64()
        ),
        (Some(0.0), Some(3.0))
    );
    let b = ops.get("/api/domains/balance/PT").json();
    assert_eq!(usd(&b), 0.0);
    // Credit, then the cash parts of t-w2 and t-w4.
    assert_eq!(b["version"], 3, "{b}");

    // ---- idempotency records expire after 24 hours
    let credit = json!({"playerId": "P-IDEM", "amount": 1, "currency": "USD", "type": "credit"});
    let r = svc.post("/api/domains/balance", "idem-1", &credit);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["version"], 1);
    let coll = |amount: f64| json!({"merchantId": "M-IDEM", "amount": amount, "currency": "USD", "paymentMethod": "card"});
    let r = svc.post("/api/domains/collections", "idem-c", &coll(3.0));
    assert_eq!(r.status, 201, "{}", r.text());
    let first_collection = r.json()["id"].as_str().unwrap().to_string();
    assert_eq!(
        svc.post("/api/domains/collections", "idem-p", &coll(4.0))
            .status,
        201
    );
    let kept = |key: &str| {
        d1_json(
            &app,
            "collections",
            "crystal-clear-collections",
            &format!("SELECT COUNT(*) AS n FROM idempotency WHERE key LIKE '%:{key}'"),
        )
        .unwrap()
        .to_string()
    };
    // 23 hours on: still answered from the record, and still bound to its body.
    server.advance_clock(23 * HOUR_MS);
    let r = svc.post("/api/domains/balance", "idem-1", &credit);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("idempotent-replayed"), Some("true"));
    assert_eq!(r.json()["version"], 1);
    let r = svc.post("/api/domains/collections", "idem-c", &coll(3.0));
    assert_eq!(r.header("idempotent-replayed"), Some("true"));
    assert_eq!(r.json()["id"], first_collection.as_str());
    assert_field(
        &svc.post("/api/domains/collections", "idem-c", &coll(9.0)),
        422,
        "Idempotency-Key",
    );
    assert!(kept("idem-p").contains("\"n\":1"), "{}", kept("idem-p"));
    fire_cron(&server, "crystal-clear-collections");
    assert!(
        kept("idem-p").contains("\"n\":1"),
        "an unexpired record stays"
    );
    // 25 hours on: the key is free again, so the same request is new.
    server.advance_clock(2 * HOUR_MS);
    let r = svc.post("/api/domains/balance", "idem-1", &credit);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("idempotent-replayed"), None);
    assert_eq!(r.json()["version"], 2);
    assert_eq!(usd(&ops.get("/api/domains/balance/P-IDEM").json()), 2.0);
    let r = svc.post("/api/domains/collections", "idem-c", &coll(9.0));
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.header("idempotent-replayed"), None);
    assert_ne!(r.json()["id"], first_collection.as_str());
    // ... and from then on answered from its new record.
    let again = svc.post("/api/domains/collections", "idem-c", &coll(9.0));
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.json()["id"], r.json()["id"]);
    // The cron trigger deletes expired records.
    fire_cron(&server, "crystal-clear-collections");
    assert!(kept("idem-p").contains("\"n\":0"), "{}", kept("idem-p"));
    assert!(kept("idem-c").contains("\"n\":1"), "{}", kept("idem-c"));

    // ---- rate limit per subject (read-only: 5 a minute in this test)
    // Start one second into a minute: the binding's windows are aligned
    // to the clock.
    let now = server.clock_ms();
    server.set_clock(now - now % 60_000 + 61_000);
    let viewer = Api::new(&server, "viewer-rl", "read-only");
    for i in 0..5 {
        let r = viewer.get("/api/domains/balance/PT");
        assert_eq!(r.status, 200, "request {i}: {}", r.text());
    }
    let r = viewer.get("/api/domains/balance/PT");
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(
        r.json()["error"].as_str().unwrap().contains("viewer-rl"),
        "{}",
        r.text()
    );
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((50..=59).contains(&retry), "Retry-After {retry}");
    // Per subject: another read-only subject, and this subject's own
    // writes under another role, are not limited by it.
    assert_eq!(
        Api::new(&server, "viewer-other", "read-only")
            .get("/api/domains/balance/PT")
            .status,
        200
    );
    assert_eq!(
        Api::new(&server, "viewer-rl", "operator")
            .get("/api/domains/balance/PT")
            .status,
        200
    );
    // Still refused until the Retry-After has passed, then served again.
    server.advance_clock((retry - 5) * 1000);
    assert_eq!(viewer.get("/api/domains/balance/PT").status, 429);
    server.advance_clock(5_000);
    let r = viewer.get("/api/domains/balance/PT");
    assert_eq!(r.status, 200, "{}", r.text());

    server.terminate();
}

// ---------------------------------------------------------- payout saga

fn step_states(tx: &Value) -> Vec<String> {
    tx["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["state"].as_str().unwrap().to_string())
        .collect()
}

/// The AGENT_PAYOUT saga: distribution payout, then a debit of the payout
/// funding account, then PAYOUT_SETTLED on the event bus. When the debit
/// is refused the payout is reversed, so the agent's commissions are
/// available again; when the payout itself is refused nothing is undone.
#[test]
fn crystal_clear_agent_payout_saga_completes_or_compensates() {
    let app = prepare(EVENTS_VARS, "");
    let server = start(&app);
    let ops = Api::new(&server, "ops-pay", "operator");
    let svc = Api::new(&server, "svc-pay", "service");
    let payout = |amount: f64, fund: &str| {
        json!({"type": "AGENT_PAYOUT", "domains": ["distributions", "balance", "events"],
               "payload": {"agentId": "AG-P", "amount": amount, "method": "wire", "fundingAccount": fund}})
    };
    let available = || {
        ops.get("/api/domains/distributions/agents/AG-P").json()["balances"]["USD"]["available"]
            .as_f64()
    };
    // Validation names the field; the domains must be the saga's.
    for (body, field) in [
        (
            json!({"type": "AGENT_PAYOUT", "domains": ["collections", "distributions", "balance"], "payload": {}}),
            "domains",
        ),
        (
            json!({"type": "AGENT_PAYOUT", "domains": ["distributions", "balance", "events"],
                   "payload": {"agentId": "AG-P", "amount": 5, "method": "cash"}}),
            "payload.method",
        ),
        (
            json!({"type": "AGENT_PAYOUT", "domains": ["distributions", "balance", "events"],
                   "payload": {"agentId": "AG-P", "amount": 5.001, "method": "wire"}}),
            "payload.amount",
        ),
    ] {
        assert_field(
            &svc.post("/api/domains/coordinator/coordinate", "pay-bad", &body),
            400,
            field,
        );
    }

    // 50.00 earned (monthly 5% of 1,000.00); 30.00 in the funding account.
    let r = svc.post(
        "/api/domains/distributions/commissions",
        "pay-com",
        &json!({"agentId": "AG-P", "amount": 1000, "period": "monthly"}),
    );
    assert_eq!(r.json()["commission"], 50.0, "{}", r.text());
    let r = svc.post(
        "/api/domains/balance",
        "pay-fund",
        &json!({"playerId": "FUND-1", "amount": 30, "currency": "USD", "type": "credit"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());

    // Completes: payout, debit, event.
    let r = svc.post(
        "/api/domains/coordinator/coordinate",
        "pay-1",
        &payout(20.0, "FUND-1"),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let tx = r.json();
    assert_eq!(tx["status"], "COMPLETED", "{tx}");
    assert_eq!(step_states(&tx), ["done", "done", "done"]);
    let payout_id = tx["steps"][0]["result"]["id"].as_str().unwrap().to_string();
    assert_eq!(available(), Some(30.0));
    let fund = ops.get("/api/domains/balance/FUND-1").json();
    assert_eq!((usd(&fund), fund["version"].as_u64()), (10.0, Some(2)));
    let settled = tx["steps"][2]["result"]["id"].as_str().unwrap().to_string();
    let event = eventually("PAYOUT_SETTLED stored", Duration::from_secs(30), || {
        let r = ops.get(&format!("/api/domains/events/{settled}"));
        (r.status == 200).then(|| r.json())
    });
    assert_eq!(event["type"], "PAYOUT_SETTLED", "{event}");
    assert_eq!(event["data"]["payoutId"], payout_id.as_str());
    assert_eq!(event["data"]["amount"], 20.0);
    // A retry is the same transaction and moves no money again.
    let again = svc.post(
        "/api/domains/coordinator/coordinate",
        "pay-1",
        &payout(20.0, "FUND-1"),
    );
    assert_eq!(again.json()["id"], tx["id"]);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(available(), Some(30.0));
    assert_eq!(usd(&ops.get("/api/domains/balance/FUND-1").json()), 10.0);

    // The debit is refused (25.00 against 10.00): the payout is reversed.
    let r = svc.post(
        "/api/domains/coordinator/coordinate",
        "pay-2",
        &payout(25.0, "FUND-1"),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let tx2 = r.json();
    assert_eq!(tx2["status"], "COMPENSATED", "{tx2}");
    assert_eq!(step_states(&tx2), ["compensated", "failed", "skipped"]);
    assert!(
        tx2["steps"][1]["error"]
            .as_str()
            .unwrap()
            .starts_with("409"),
        "{tx2}"
    );
    let reversed = tx2["steps"][0]["result"]["id"].as_str().unwrap();
    let p = ops
        .get(&format!("/api/domains/distributions/payouts/{reversed}"))
        .json();
    assert_eq!(p["status"], "REVERSED", "{p}");
    assert!(
        p["reversalReason"]
            .as_str()
            .unwrap()
            .contains("balance.debit")
    );
    assert_eq!(available(), Some(30.0), "the reversed payout is not paid");
    let fund = ops.get("/api/domains/balance/FUND-1").json();
    assert_eq!((usd(&fund), fund["version"].as_u64()), (10.0, Some(2)));
    // A reversed payout cannot be reversed again.
    assert_field(
        &ops.post(
            &format!("/api/domains/distributions/payouts/{reversed}/reverse"),
            "pay-rev-again",
            &json!({"reason": "second try"}),
        ),
        409,
        "id",
    );
    // The completed payout is still PROCESSED.
    assert_eq!(
        ops.get(&format!("/api/domains/distributions/payouts/{payout_id}"))
            .json()["status"],
        "PROCESSED"
    );

    // The payout itself is refused (above the 30.00 available): nothing to
    // undo, and no money moves.
    let r = svc.post(
        "/api/domains/coordinator/coordinate",
        "pay-3",
        &payout(31.0, "FUND-1"),
    );
    let tx3 = r.json();
    assert_eq!(tx3["status"], "COMPENSATED", "{tx3}");
    assert_eq!(step_states(&tx3), ["failed", "skipped", "skipped"]);
    assert_eq!(available(), Some(30.0));
    assert_eq!(usd(&ops.get("/api/domains/balance/FUND-1").json()), 10.0);

    let h = server.get("/coordinator/health").json();
    assert_eq!(
        (h["completed"].as_u64(), h["compensated"].as_u64()),
        (Some(1), Some(2)),
        "{h}"
    );

    // kill -9 while payout sagas run, restart: each one the server had
    // accepted completes, and no payout or debit is applied twice.
    let r = svc.post(
        "/api/domains/distributions/commissions",
        "pay-com-k",
        &json!({"agentId": "AG-K", "amount": 100000, "period": "monthly"}),
    );
    assert_eq!(r.json()["commission"], 10000.0, "{}", r.text());
    let r = svc.post(
        "/api/domains/balance",
        "pay-fund-k",
        &json!({"playerId": "FUND-K", "amount": 10000, "currency": "USD", "type": "credit"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    const PAYOUTS: usize = 20;
    let clients: Vec<_> = (0..PAYOUTS)
        .map(|i| {
            let (addr, bearer) = (server.addr.clone(), svc.bearer.clone());
            let body = json!({"type": "AGENT_PAYOUT", "domains": ["distributions", "balance", "events"],
                "payload": {"agentId": "AG-K", "amount": (i + 1) as f64, "method": "bank_transfer", "fundingAccount": "FUND-K"}});
            std::thread::spawn(move || {
                let _ = web_support::try_http(
                    &addr,
                    "POST",
                    "/api/domains/coordinator/coordinate",
                    &[
                        ("Authorization", &bearer),
                        ("Content-Type", "application/json"),
                        ("Idempotency-Key", &format!("pkill-{i}")),
                    ],
                    body.to_string().as_bytes(),
                    Duration::from_secs(60),
                );
            })
        })
        .collect();
    eventually("a payout saga running", Duration::from_secs(60), || {
        let r = ops.get("/api/domains/coordinator/transactions?status=RUNNING");
        (r.status == 200 && !r.json()["transactions"].as_array()?.is_empty()).then_some(())
    });
    server.kill9();
    for c in clients {
        c.join().unwrap();
    }
    let server = start(&app);
    let ops = Api::new(&server, "ops-pay", "operator");
    let (mut completed, mut resumed, mut paid) = (0u64, 0u64, 0.0);
    for i in 0..PAYOUTS {
        let id = tx_id(&format!("pkill-{i}"));
        let state = eventually("the payout saga to finish", Duration::from_secs(90), || {
            let r = ops.get(&format!("/api/domains/coordinator/transactions/{id}"));
            match r.status {
                404 => Some(None),
                200 if !matches!(
                    r.json()["status"].as_str(),
                    Some("RUNNING" | "COMPENSATING")
                ) =>
                {
                    Some(Some(r.json()))
                }
                _ => None,
            }
        });
        if let Some(tx) = state {
            assert_eq!(tx["status"], "COMPLETED", "{tx}");
            if tx["steps"]
                .as_array()
                .unwrap()
                .iter()
                .any(|st| st["attempts"].as_u64() > Some(1))
            {
                resumed += 1;
            }
            completed += 1;
            paid += (i + 1) as f64;
        }
    }
    eprintln!(
        "{completed} of {PAYOUTS} payout sagas had started before the kill; {resumed} repeated a step after the restart"
    );
    assert!(completed > 0);
    let fund = ops.get("/api/domains/balance/FUND-K").json();
    assert_eq!(
        (usd(&fund), fund["version"].as_u64()),
        (10000.0 - paid, Some(1 + completed)),
        "one debit per completed payout: {fund}"
    );
    let agent = ops.get("/api/domains/distributions/agents/AG-K").json();
    assert_eq!(
        agent["balances"]["USD"]["paid"].as_f64(),
        Some(paid),
        "one payout per completed saga: {agent}"
    );
    server.terminate();
}

// ------------------------------------------------------ shared migrations

/// Every D1 database needs its own copy of the idempotency, audit and
/// outbox tables; `shared/migrations/common.sql` is their one source and
/// `shared/sync-migrations.sh` copies it. A copy that drifts fails here.
#[test]
fn crystal_clear_shared_migrations_match_their_source() {
    let app = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../apps/crystal-clear");
    let source = std::fs::read_to_string(app.join("shared/migrations/common.sql")).unwrap();
    let script = std::fs::read_to_string(app.join("shared/sync-migrations.sh")).unwrap();
    let marker = "-- ==== shared/migrations/common.sql (copied by shared/sync-migrations.sh: edit that file, not this copy) ====\n";
    assert!(
        script.contains(marker.trim_end()),
        "the script writes the marker"
    );
    let mut checked = 0;
    for worker in [
        "adjustment",
        "collections",
        "coordinator",
        "distributions",
        "events",
        "free-play",
        "router",
    ] {
        assert!(script.contains(worker), "the script copies into {worker}");
        let first = std::fs::read_dir(app.join(worker).join("migrations"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                let name = p.file_name().unwrap().to_string_lossy();
                name.starts_with("0001_") && name.ends_with(".sql")
            })
            .collect::<Vec<_>>();
        assert_eq!(first.len(), 1, "{worker}: {first:?}");
        let text = std::fs::read_to_string(&first[0]).unwrap();
        let (own, copy) = text
            .split_once(marker)
            .unwrap_or_else(|| panic!("{}: no shared block", first[0].display()));
        assert_eq!(
            copy,
            source,
            "{} differs from shared/migrations/common.sql: run sh apps/crystal-clear/shared/sync-migrations.sh",
            first[0].display()
        );
        // The worker's own tables come first and do not repeat the shared ones.
        assert!(!own.contains("CREATE TABLE idempotency"), "{worker}");
        assert!(!own.contains("CREATE TABLE audit_log"), "{worker}");
        checked += 1;
    }
    assert_eq!(checked, 7);
    // Every worker with D1 but Balance (whose object keeps its own
    // idempotency records and ledger) is in the list above.
    let mut with_d1: Vec<String> = configs(&app)
        .iter()
        .filter(|c| {
            std::fs::read_to_string(c)
                .unwrap()
                .contains("[[d1_databases]]")
        })
        .map(|c| {
            c.parent()
                .unwrap()
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    with_d1.retain(|w| w != "balance");
    assert_eq!(with_d1.len(), 7, "{with_d1:?}");
}

// ---------------------------------------------------------------- browser

fn chromium() -> Option<PathBuf> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// A headless Chromium driven over the DevTools protocol (a WebSocket to
/// one page), enough to type, click and read the DOM.
struct Browser {
    _child: KillOnDrop,
    _profile: tempfile::TempDir,
    page: TcpStream,
    next_id: u64,
}

impl Browser {
    fn launch(path: &Path, url: &str) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let child = Command::new(path)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let child = KillOnDrop(child);
        // With port 0 Chromium writes the port it chose to this file.
        let port = eventually("Chromium's DevTools port", Duration::from_secs(60), || {
            let text = std::fs::read_to_string(profile.path().join("DevToolsActivePort")).ok()?;
            text.lines().next()?.trim().parse::<u16>().ok()
        });
        let devtools = format!("127.0.0.1:{port}");
        let target = devtools_put(&devtools, &format!("/json/new?{url}"));
        let ws = target["webSocketDebuggerUrl"].as_str().unwrap();
        let path = &ws[ws.find("/devtools/").unwrap()..];
        // DevTools accepts only an IP or localhost as Host.
        let mut page = TcpStream::connect(&devtools).unwrap();
        page.set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        write!(
            page,
            "GET {path} HTTP/1.1\r\nHost: {devtools}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        .unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            std::io::Read::read_exact(&mut page, &mut byte).unwrap();
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head);
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        Browser {
            _child: child,
            _profile: profile,
            page,
            next_id: 0,
        }
    }

    /// Evaluates `expression` in the page (awaiting a promise) and returns
    /// its JSON value; panics on a script exception.
    fn eval(&mut self, expression: &str) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let call = json!({"id": id, "method": "Runtime.evaluate",
            "params": {"expression": expression, "returnByValue": true, "awaitPromise": true}});
        web_support::ws_send_text(&mut self.page, &call.to_string());
        loop {
            let text = ws_text(&mut self.page).expect("DevTools closed the connection");
            let m: Value = serde_json::from_str(&text).unwrap();
            if m["id"] != id {
                continue;
            }
            assert!(
                m["result"]["exceptionDetails"].is_null(),
                "{expression}: {m}"
            );
            return m["result"]["result"]["value"].clone();
        }
    }

    /// Polls `expression` until it is truthy.
    fn wait_for(&mut self, what: &str, expression: &str) -> Value {
        let start = Instant::now();
        loop {
            let v = self.eval(expression);
            if !(v.is_null() || v == json!(false) || v == json!("")) {
                return v;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "timed out waiting for {what}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// Chromium's process, ended when the test ends, also on a panic.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `PUT path` to the DevTools HTTP endpoint, which keeps the connection
/// open: the body is read by its Content-Length.
fn devtools_put(devtools: &str, path: &str) -> Value {
    use std::io::{BufRead, BufReader, Read};
    let mut s = TcpStream::connect(devtools).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "PUT {path} HTTP/1.1\r\nHost: {devtools}\r\nContent-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut reader = BufReader::new(s);
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    assert!(status.starts_with("HTTP/1.1 200"), "{path}: {status}");
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line == "\r\n" {
            break;
        }
        if let Some((n, v)) = line.split_once(':')
            && n.eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    serde_json::from_slice(&body).unwrap()
}

/// The dashboard page in a real (headless) Chromium: paste a token,
/// connect, see the unified metrics, and see an event published after the
/// page connected arrive over the WebSocket.
#[test]
fn crystal_clear_dashboard_in_headless_chromium() {
    let test = "crystal_clear_dashboard_in_headless_chromium";
    let Some(path) = chromium() else {
        // CI (.ci/run) installs Chromium and sets this: there it must run.
        assert!(
            std::env::var_os("HEARTH_TEST_REQUIRE_BROWSER").is_none(),
            "{test}: Chromium is not installed and HEARTH_TEST_REQUIRE_BROWSER is set"
        );
        eprintln!("SKIPPED {test}: Chromium is not installed (apt-get install chromium)");
        return;
    };
    let app = prepare(EVENTS_VARS, "");
    let server = start(&app);
    let svc = Api::new(&server, "svc-browser", "service");
    // Some traffic first, so the metrics have something to show.
    let r = svc.post(
        "/api/domains/balance",
        "browser-credit",
        &json!({"playerId": "PBROWSER", "amount": 12.5, "currency": "USD", "type": "credit"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());

    let mut browser = Browser::launch(&path, &format!("http://{}/", server.addr));
    browser.wait_for(
        "the dashboard page",
        "document.readyState === 'complete' && document.title",
    );
    assert_eq!(
        browser.eval("document.getElementById('conn').textContent"),
        "disconnected"
    );
    let token = jwt("viewer-browser", "read-only");
    browser.eval(&format!(
        "document.getElementById('token').value = {}; document.querySelector('#login button').click(); true",
        json!(token)
    ));
    browser.wait_for(
        "the stream to connect",
        "document.getElementById('conn').textContent === 'connected'",
    );
    // The metrics panel filled from /monitoring/unified-metrics.
    let score = browser.wait_for(
        "the health score",
        "/^\\d+$/.test(document.getElementById('score').textContent) && document.getElementById('score').textContent",
    );
    assert!(score.as_str().unwrap().parse::<u32>().unwrap() <= 100);
    let rows = browser.wait_for(
        "the domain rows",
        "[...document.querySelectorAll('#domains tr')].map((tr) => tr.firstChild.textContent).join(',')",
    );
    assert_eq!(
        rows,
        "collections,distributions,free-play,balance,adjustment"
    );
    let requests: u64 = browser
        .eval("document.getElementById('requests').textContent")
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(requests >= 1, "{requests}");

    // An event published now arrives live, over the page's WebSocket.
    let r = svc.post(
        "/api/domains/events",
        "browser-event",
        &json!({"type": "BROWSER_CHECK", "domain": "collections", "data": {"note": "seen in the page"}}),
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_string();
    let line = browser.wait_for(
        "the event in the page",
        &format!(
            "[...document.querySelectorAll('#events li')].filter((li) => li.dataset.eventId === {}).map((li) => li.dataset.type + ' ' + li.textContent).join('')",
            json!(id)
        ),
    );
    let line = line.as_str().unwrap();
    assert!(line.starts_with("BROWSER_CHECK "), "{line}");
    assert!(line.contains("seen in the page"), "{line}");
    drop(browser);
    server.terminate();
}
