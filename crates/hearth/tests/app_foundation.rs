//! The Foundation v2.5 seed app (apps/foundation/) end to end: its four
//! Workers projects (gateway, planning-machine, agents, queues) served
//! together by one `hearth serve` with `--ai-gateway`, after `npm ci` of
//! the gateway (Hono) in a temporary copy. The test runs one double on
//! 127.0.0.1 that plays the Turnstile verifier, the model provider behind
//! AI Gateway (scripted answers per phase, countable calls, a call that can
//! be held) and the webhook receivers.

mod web_support;

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use web_support::{
    Incoming, Reply, Server, copy_tree, free_port, read_request, ws_connect, ws_text,
};

const JWT_SECRET: &str = "test-jwt-secret-0123456789abcdef";
const CONTEXT_SECRET: &str = "test-context-secret-0123456789abcdef";
const PASS: &str = "pass-token";
/// A P-256 key used only by these tests to sign audit checkpoints.
const AUDIT_PRIVATE_JWK: &str = r#"{"kty":"EC","x":"CkynIHIutEWEl6tPim-qKHxpTjPTv5y3umiVVdWOHg4","y":"6EhmlOIW-PquBQC9rqtR109mYwgOxMQV42LAjHfShJ8","crv":"P-256","d":"_ASPK2Y2K9LifbaxYjmmlyPU6xmgRwTSBATszm771Ts"}"#;
const AUDIT_PUBLIC_JWK: &str = r#"{"kty":"EC","x":"CkynIHIutEWEl6tPim-qKHxpTjPTv5y3umiVVdWOHg4","y":"6EhmlOIW-PquBQC9rqtR109mYwgOxMQV42LAjHfShJ8","crv":"P-256"}"#;
const DIMS: usize = 16;
const PHASES: [&str; 15] = [
    "opportunity",
    "customer-intel",
    "market-research",
    "competitive-intel",
    "kill-test",
    "revenue-expansion",
    "strategy",
    "business-model",
    "product-design",
    "gtm-marketing",
    "content-engine",
    "tech-arch",
    "analytics",
    "launch-execution",
    "synthesis",
];

// ------------------------------------------------------------------ the double

#[derive(Default)]
struct DoubleState {
    /// Scripted answers per phase, used in order; otherwise a default text
    /// (kill-test: GO).
    answers: HashMap<String, VecDeque<String>>,
    /// (phase, user prompt) of every chat call, in arrival order.
    calls: Vec<(String, String)>,
    embeddings: usize,
    turnstile_calls: usize,
    /// Webhook deliveries: the path and the request.
    hooks: Vec<Incoming>,
    /// Statuses the next deliveries to a path get (then 200).
    hook_statuses: HashMap<String, VecDeque<u16>>,
    /// Chat calls for this phase block while `hold` is set.
    hold_phase: Option<String>,
    held: usize,
}

struct Double {
    addr: String,
    state: Arc<Mutex<DoubleState>>,
    hold: Arc<AtomicBool>,
}

fn respond(mut s: &TcpStream, status: u16, body: &str) {
    let _ = write!(
        s,
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
}

fn embedding(text: &str) -> Vec<f64> {
    let h = Sha256::digest(text.as_bytes());
    (0..DIMS)
        .map(|i| (h[i % 32] as f64 - 127.5) / 128.0)
        .collect()
}

impl Double {
    fn start() -> Double {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let state = Arc::new(Mutex::new(DoubleState::default()));
        let hold = Arc::new(AtomicBool::new(false));
        let (st, hd) = (state.clone(), hold.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let (st, hd) = (st.clone(), hd.clone());
                std::thread::spawn(move || Double::serve(stream, st, hd));
            }
        });
        Double { addr, state, hold }
    }

    fn serve(stream: TcpStream, st: Arc<Mutex<DoubleState>>, hold: Arc<AtomicBool>) {
        let Some(req) = read_request(&stream) else {
            return;
        };
        if req.path.starts_with("/turnstile") {
            st.lock().unwrap().turnstile_calls += 1;
            let ok = String::from_utf8_lossy(&req.body).contains(PASS);
            let codes = if ok {
                "[]"
            } else {
                r#"["invalid-input-response"]"#
            };
            return respond(
                &stream,
                200,
                &format!(r#"{{"success":{ok},"error-codes":{codes}}}"#),
            );
        }
        if req.path.ends_with("/embeddings") {
            let body: Value = serde_json::from_slice(&req.body).unwrap();
            assert_eq!(body["dimensions"], DIMS, "{body}");
            st.lock().unwrap().embeddings += 1;
            let v = embedding(body["input"].as_str().unwrap_or(""));
            return respond(
                &stream,
                200,
                &json!({"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": v}]})
                    .to_string(),
            );
        }
        if req.path.ends_with("/chat/completions") {
            let body: Value = serde_json::from_slice(&req.body).unwrap();
            let system = body["messages"][0]["content"].as_str().unwrap_or("");
            let user = body["messages"][1]["content"]
                .as_str()
                .unwrap_or("")
                .to_string();
            let phase = system
                .split("PHASE: ")
                .nth(1)
                .and_then(|r| r.lines().next())
                .unwrap_or("?")
                .to_string();
            let held = {
                let mut s = st.lock().unwrap();
                if s.hold_phase.as_deref() == Some(&phase) && hold.load(Ordering::SeqCst) {
                    s.held += 1;
                    true
                } else {
                    false
                }
            };
            if held {
                while hold.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(20));
                }
                return; // the caller was killed meanwhile
            }
            let text = {
                let mut s = st.lock().unwrap();
                s.calls.push((phase.clone(), user.clone()));
                s.answers
                    .get_mut(&phase)
                    .and_then(|q| q.pop_front())
                    .unwrap_or_else(|| {
                        if phase == "kill-test" {
                            r#"{"verdict":"GO","reason":"clear demand"}"#.to_string()
                        } else {
                            format!("The {phase} artifact.")
                        }
                    })
            };
            return respond(
                &stream,
                200,
                &json!({"id": "cmpl-1", "object": "chat.completion", "model": body["model"],
                    "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
                    "usage": {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30}})
                .to_string(),
            );
        }
        if req.path.starts_with("/hook") {
            let status = {
                let mut s = st.lock().unwrap();
                let status = s
                    .hook_statuses
                    .get_mut(&req.path)
                    .and_then(|q| q.pop_front())
                    .unwrap_or(200);
                s.hooks.push(req);
                status
            };
            return respond(&stream, status, "{}");
        }
        respond(&stream, 404, r#"{"error":"double: unknown path"}"#);
    }

    fn calls(&self, phase: &str) -> Vec<String> {
        let s = self.state.lock().unwrap();
        s.calls
            .iter()
            .filter(|(p, _)| p == phase)
            .map(|(_, u)| u.clone())
            .collect()
    }

    fn script(&self, phase: &str, answers: &[&str]) {
        self.state.lock().unwrap().answers.insert(
            phase.into(),
            answers.iter().map(|s| s.to_string()).collect(),
        );
    }

    fn hooks_to(&self, path: &str) -> Vec<(HashMap<String, String>, Vec<u8>)> {
        let s = self.state.lock().unwrap();
        s.hooks
            .iter()
            .filter(|h| h.path == path)
            .map(|h| (h.headers.clone(), h.body.clone()))
            .collect()
    }
}

// ------------------------------------------------------------------ the app

struct App {
    _dir: tempfile::TempDir,
    root: PathBuf,
    data: PathBuf,
    port: u16,
    double: Double,
}

fn hearth() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hearth"))
}

/// A copy of the app with test secrets in each worker's `.dev.vars`
/// (`extra`: worker dir -> more lines), the gateway's rate limits raised
/// out of the way except those in `limits` (binding -> limit), the gateway's packages installed, D1 migrated and the
/// Vectorize index created. None when npm is missing.
fn prepare(test: &str, extra: &[(&str, &str)], limits: &[(&str, u32)]) -> Option<App> {
    if !web_support::npm_or_skip(test) {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("foundation");
    copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../apps/foundation"),
        &root,
    );
    // A local build of the UI is not part of the app's sources.
    let _ = std::fs::remove_dir_all(root.join("ui/.svelte-kit"));
    web_support::npm(&root.join("gateway"), &["ci"]);
    let double = Double::start();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let dbl = &double.addr;
    let mut vars: HashMap<&str, String> = HashMap::new();
    vars.insert(
        "gateway",
        format!(
            "JWT_SECRET={JWT_SECRET}\nCONTEXT_TOKEN_SECRET={CONTEXT_SECRET}\nTURNSTILE_SECRET=ts-secret\n\
             TURNSTILE_VERIFY_URL=http://{dbl}/turnstile\nAUDIT_PUBLIC_KEY={AUDIT_PUBLIC_JWK}\n\
             ANALYTICS_API_TOKEN=analytics-token\nANALYTICS_SQL_URL={base}/client/v4/accounts/acc/analytics_engine/sql\n\
             WEBHOOK_ALLOW_HOSTS={dbl}\nALLOWED_ORIGINS=https://app.example\n"
        ),
    );
    vars.insert(
        "planning-machine",
        format!(
            "CONTEXT_TOKEN_SECRET={CONTEXT_SECRET}\nOPENAI_API_KEY=sk-test-key\n\
             AI_GATEWAY_BASE={base}/__hearth/ai-gateway/foundation\nEMBEDDING_DIMENSIONS={DIMS}\nREVIEW_PHASES=\n\
             AGENT_STEP_TIMEOUT=10 seconds\n"
        ),
    );
    vars.insert("agents", format!("CONTEXT_TOKEN_SECRET={CONTEXT_SECRET}\n"));
    vars.insert("ui", format!("TURNSTILE_DEV_TOKEN={PASS}\n"));
    vars.insert(
        "queues",
        format!(
            "AUDIT_SIGNING_KEY={AUDIT_PRIVATE_JWK}\nWEBHOOK_ALLOW_HOSTS={dbl}\nWEBHOOK_BACKOFF_BASE_SECONDS=0\nWEBHOOK_MAX_ATTEMPTS=3\n"
        ),
    );
    for (worker, more) in extra {
        vars.get_mut(worker).unwrap().push_str(more);
    }
    for (worker, text) in &vars {
        std::fs::write(root.join(worker).join(".dev.vars"), text).unwrap();
    }
    let cfg = root.join("gateway/wrangler.toml");
    let mut toml = std::fs::read_to_string(&cfg).unwrap();
    // The tests poll fast; only the limits a test names are tight.
    let mut all: Vec<(&str, u32)> = ["RL_IP", "RL_TENANT", "RL_USER"]
        .iter()
        .map(|n| (*n, 1_000_000))
        .collect();
    all.extend_from_slice(limits);
    for (name, limit) in &all {
        let at = toml.find(&format!("name = \"{name}\"")).unwrap();
        let start = at + toml[at..].find("limit = ").unwrap() + "limit = ".len();
        let end = start + toml[start..].find(',').unwrap();
        toml.replace_range(start..end, &limit.to_string());
    }
    std::fs::write(&cfg, toml).unwrap();
    std::fs::write(
        root.join("gateways.toml"),
        format!(
            "[[gateways]]\nid = \"foundation\"\ncollect_logs = true\nkey_metadata = \"tenant\"\n\n[providers.openai]\nbase_url = \"http://{dbl}/v1\"\n"
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let app = App {
        _dir: dir,
        root,
        data,
        port,
        double,
    };
    run_cli(
        &app,
        &["d1", "migrations", "apply", "foundation"],
        "gateway",
    );
    run_cli(
        &app,
        &[
            "vectorize",
            "create",
            "foundation-artifacts",
            "--dimensions",
            &DIMS.to_string(),
            "--metric",
            "cosine",
        ],
        "planning-machine",
    );
    Some(app)
}

fn run_cli(app: &App, args: &[&str], worker: &str) -> Vec<u8> {
    let out = hearth()
        .args(args)
        .arg("--config")
        .arg(app.root.join(worker).join("wrangler.toml"))
        .arg("--data-dir")
        .arg(&app.data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn d1(app: &App, sql: &str) -> Vec<Value> {
    let out = run_cli(
        app,
        &["d1", "execute", "foundation", "--json", "--command", sql],
        "gateway",
    );
    let v: Value = serde_json::from_slice(&out).unwrap();
    let last = v.as_array().and_then(|a| a.last()).cloned().unwrap_or(v);
    last["results"].as_array().cloned().unwrap_or_default()
}

fn start(app: &App) -> Server {
    start_with(app, &[])
}

/// `start`, with more worker configs served in front of the app's.
fn start_with(app: &App, first: &[PathBuf]) -> Server {
    spawn(app, serve_command(app, first))
}

/// `start`, with the server's clock moved only by the test (and real time).
fn start_with_test_clock(app: &App) -> Server {
    let mut cmd = serve_command(app, &[]);
    cmd.arg("--test-clock");
    spawn(app, cmd)
}

fn serve_command(app: &App, first: &[PathBuf]) -> Command {
    let mut cmd = hearth();
    cmd.arg("serve");
    cmd.args(first);
    // The UI, when built, answers the requests no route claims: first.
    if app
        .root
        .join("ui/.svelte-kit/cloudflare/_worker.js")
        .exists()
    {
        cmd.arg(app.root.join("ui/wrangler.toml"));
    }
    for w in ["gateway", "planning-machine", "agents", "queues"] {
        cmd.arg(app.root.join(w).join("wrangler.toml"));
    }
    cmd.arg("--data-dir")
        .arg(&app.data)
        .arg("--ai-gateway")
        .arg(app.root.join("gateways.toml"))
        .args(["--analytics-token", "analytics-token"])
        .current_dir(&app.root)
        .env_remove("HEARTH_DATA_DIR")
        // A killed server's workflow run is taken over this long after its
        // last step call (plus the step's timeout), not two minutes.
        .env("HEARTH_WORKFLOW_LEASE_MS", "500");
    cmd
}

fn spawn(app: &App, cmd: Command) -> Server {
    Server::spawn_listening(
        cmd,
        &format!("127.0.0.1:{}", app.port),
        Duration::from_secs(180),
    )
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

// ------------------------------------------------------------------ clients

struct Session {
    token: String,
    cookie: String,
    tenant: String,
    user: String,
}

fn signup(server: &Server, email: &str, tenant: &str) -> Session {
    let body = json!({"email": email, "password": "correct horse battery", "tenant_name": tenant});
    let r = server.request(
        "POST",
        "/api/auth/signup",
        &[("CF-Turnstile-Response", PASS)],
        body.to_string().as_bytes(),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let cookie = r.header("set-cookie").unwrap().to_string();
    let v = r.json();
    Session {
        token: v["token"].as_str().unwrap().into(),
        cookie,
        tenant: v["tenant_id"].as_str().unwrap().into(),
        user: v["user_id"].as_str().unwrap().into(),
    }
}

fn call(server: &Server, s: &Session, method: &str, path: &str, body: Option<Value>) -> Reply {
    let auth = format!("Bearer {}", s.token);
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    server.request(
        method,
        path,
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        body.as_bytes(),
    )
}

fn jwt(claims: &Value, alg: &str, secret: &str) -> String {
    let head = URL_SAFE_NO_PAD.encode(json!({"alg": alg, "typ": "JWT"}).to_string());
    let body = URL_SAFE_NO_PAD.encode(claims.to_string());
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{head}.{body}").as_bytes());
    let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{head}.{body}.{sig}")
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn create_run(server: &Server, s: &Session, idea: &str, review: &[&str]) -> String {
    let r = call(
        server,
        s,
        "POST",
        "/api/planning/runs",
        Some(json!({"idea": idea, "review_phases": review})),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()["id"].as_str().unwrap().to_string()
}

fn run_state(server: &Server, s: &Session, run: &str) -> Value {
    let r = call(server, s, "GET", &format!("/api/planning/runs/{run}"), None);
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

fn wait_status(server: &Server, s: &Session, run: &str, status: &str) -> Value {
    let started = Instant::now();
    loop {
        let v = run_state(server, s, run);
        assert_ne!(v["status"], "failed", "{v}");
        if v["status"] == status {
            return v;
        }
        if started.elapsed() > Duration::from_secs(120) {
            let log = server.log.lock().unwrap();
            let tail = log[log.len().saturating_sub(40)..].join("\n");
            panic!(
                "timed out waiting for run {run} to be {status}; last state {v}\nserver log:\n{tail}"
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn phase_status(v: &Value, phase: &str) -> String {
    v["phases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["phase"] == phase)
        .map(|p| p["status"].as_str().unwrap().to_string())
        .unwrap()
}

fn wait_review(server: &Server, s: &Session, run: &str, phase: &str, iteration: u64) -> Value {
    eventually(
        &format!("{phase} of {run} to await review {iteration}"),
        Duration::from_secs(90),
        || {
            let v = run_state(server, s, run);
            let p = v["phases"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["phase"] == phase)
                .cloned()
                .unwrap();
            (p["status"] == "awaiting_review" && p["iteration"] == iteration).then_some(v)
        },
    )
}

/// JSON with object keys sorted, no whitespace: the audit chain's hashed form.
fn canonical(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .iter()
                .map(|k| format!("{}:{}", Value::String((*k).clone()), canonical(&m[*k])))
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(canonical).collect::<Vec<_>>().join(",")
        ),
        other => other.to_string(),
    }
}

// ------------------------------------------------------------------ tests

#[test]
fn gateway_middleware_order_and_each_refusal() {
    let Some(app) = prepare("gateway_middleware_order_and_each_refusal", &[], &[]) else {
        return;
    };
    let server = start(&app);

    // CORS first: a preflight is answered without credentials; an origin
    // not in ALLOWED_ORIGINS gets no CORS grant.
    let r = server.request(
        "OPTIONS",
        "/api/me",
        &[
            ("Origin", "https://app.example"),
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "Authorization"),
        ],
        b"",
    );
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    let r = server.request("GET", "/api/me", &[("Origin", "https://evil.example")], b"");
    assert_eq!(r.status, 401);
    assert_eq!(r.header("access-control-allow-origin"), None);

    // Correlation id: kept when well formed, minted otherwise, on refusals too.
    let r = server.request(
        "GET",
        "/api/me",
        &[("X-Correlation-Id", "corr-0123456789")],
        b"",
    );
    assert_eq!(r.status, 401);
    assert_eq!(r.header("x-correlation-id"), Some("corr-0123456789"));
    assert_eq!(r.json()["correlation_id"], "corr-0123456789");
    let r = server.request("GET", "/api/me", &[("X-Correlation-Id", "bad id!")], b"");
    let minted = r.header("x-correlation-id").unwrap();
    assert_ne!(minted, "bad id!");
    assert_eq!(minted.len(), 36, "{minted}");

    // Turnstile on the public endpoints, checked at the configured verifier.
    let body = json!({"email": "ann@acme.test", "password": "correct horse battery", "tenant_name": "Acme"})
        .to_string();
    let r = server.request("POST", "/api/auth/signup", &[], body.as_bytes());
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("Turnstile token missing"), "{}", r.text());
    assert_eq!(app.double.state.lock().unwrap().turnstile_calls, 0);
    let r = server.request(
        "POST",
        "/api/auth/signup",
        &[("CF-Turnstile-Response", "forged")],
        body.as_bytes(),
    );
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.json()["codes"], json!(["invalid-input-response"]));
    assert_eq!(app.double.state.lock().unwrap().turnstile_calls, 1);
    let ann = signup(&server, "ann@acme.test", "Acme");
    assert_eq!(app.double.state.lock().unwrap().turnstile_calls, 2);
    for attr in [
        "__Host-foundation_session=",
        "HttpOnly",
        "Secure",
        "SameSite=Strict",
        "Path=/",
    ] {
        assert!(ann.cookie.contains(attr), "{attr} in {}", ann.cookie);
    }
    // Input errors name the field.
    let r = server.request(
        "POST",
        "/api/auth/signup",
        &[("CF-Turnstile-Response", PASS)],
        br#"{"email":"x@y.z","password":"short","tenant_name":"T"}"#,
    );
    assert_eq!(r.status, 400);
    assert!(r.text().contains("password must be"), "{}", r.text());
    // Login: Turnstile, then the password.
    let r = server.request(
        "POST",
        "/api/auth/login",
        &[("CF-Turnstile-Response", PASS)],
        br#"{"email":"ann@acme.test","password":"wrong password!"}"#,
    );
    assert_eq!(r.status, 401, "{}", r.text());
    let r = server.request(
        "POST",
        "/api/auth/login",
        &[("CF-Turnstile-Response", PASS)],
        br#"{"email":"ANN@acme.test","password":"correct horse battery"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());

    // Auth: the bearer token and the session cookie both work ...
    let me = call(&server, &ann, "GET", "/api/me", None).json();
    assert_eq!(
        (me["tenant_id"].as_str(), me["auth"].as_str()),
        (Some(ann.tenant.as_str()), Some("bearer"))
    );
    let cookie = ann.cookie.split(';').next().unwrap();
    let r = server.request("GET", "/api/me", &[("Cookie", cookie)], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["auth"], "cookie");
    let r = server.request(
        "GET",
        "/api/me",
        &[("Cookie", "__Host-foundation_session=ses_forged")],
        b"",
    );
    assert_eq!(r.status, 401);

    // ... and bad ones are refused, each with its reason.
    let claims = |exp: u64, tid: &str| json!({"sub": ann.user, "tid": tid, "role": "admin", "iat": now() - 10, "exp": exp, "aud": "foundation-api"});
    let cases = [
        (
            jwt(&claims(now() + 600, &ann.tenant), "HS256", "not-the-secret"),
            "invalid token signature",
        ),
        (
            jwt(&claims(now() - 5, &ann.tenant), "HS256", JWT_SECRET),
            "token expired",
        ),
        (
            jwt(&claims(now() + 600, &ann.tenant), "none", JWT_SECRET),
            "unsupported token algorithm",
        ),
        ("abc.def".to_string(), "malformed token"),
    ];
    for (token, reason) in cases {
        let r = server.request(
            "GET",
            "/api/me",
            &[("Authorization", &format!("Bearer {token}"))],
            b"",
        );
        assert_eq!(r.status, 401, "{reason}: {}", r.text());
        assert!(r.text().contains(reason), "{reason}: {}", r.text());
        assert!(r.header("www-authenticate").is_some());
    }
    // A token the gateway signed with a forged tenant it never issued would
    // need the secret: the tenant comes from the verified token only.
    let r = server.request(
        "GET",
        "/api/me",
        &[
            ("Authorization", &format!("Bearer {}", ann.token)),
            ("X-Tenant-Id", "ten_someone_else"),
        ],
        b"",
    );
    assert_eq!(r.status, 403, "{}", r.text());

    // Cross-tenant access: rows are scoped by tenant_id everywhere.
    let bob = signup(&server, "bob@beta.test", "Beta");
    let run = create_run(&server, &ann, "Invoices for plumbers", &[]);
    wait_status(&server, &ann, &run, "completed");
    let r = call(
        &server,
        &bob,
        "GET",
        &format!("/api/planning/runs/{run}"),
        None,
    );
    assert_eq!(r.status, 404, "{}", r.text());
    let r = call(
        &server,
        &bob,
        "GET",
        &format!("/api/planning/runs/{run}/package"),
        None,
    );
    assert_eq!(r.status, 404);
    let r = call(
        &server,
        &bob,
        "GET",
        &format!("/api/planning/runs/{run}/artifacts/opportunity"),
        None,
    );
    assert_eq!(r.status, 404);
    assert_eq!(
        call(&server, &bob, "GET", "/api/planning/runs", None).json()["runs"],
        json!([])
    );
    let r = call(
        &server,
        &bob,
        "POST",
        &format!("/api/planning/runs/{run}/phases/strategy/review"),
        Some(json!({"verdict": "approve"})),
    );
    assert_eq!(r.status, 404, "{}", r.text());
    let r = server.request(
        "GET",
        &format!("/api/runs/{run}/live"),
        &[
            ("Authorization", &format!("Bearer {}", bob.token)),
            ("Upgrade", "websocket"),
        ],
        b"",
    );
    assert_eq!(r.status, 404, "{}", r.text());
    // The audit trail of one tenant never shows another's events.
    eventually("bob's audit entry", Duration::from_secs(20), || {
        (call(&server, &bob, "GET", "/api/audit", None).json()["entries"]
            .as_array()
            .unwrap()
            .len()
            == 1)
            .then_some(())
    });
    let bob_audit = call(&server, &bob, "GET", "/api/audit", None).json();
    assert_eq!(bob_audit["entries"][0]["event_type"], "tenant.created");
    assert!(!bob_audit.to_string().contains(&ann.tenant));

    // The services behind the gateway refuse calls without a context token:
    // the MCP endpoint reached through the gateway carries one and works.
    let r = call(
        &server,
        &ann,
        "POST",
        "/api/mcp",
        Some(
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "get_run", "arguments": {"run_id": run}}}),
        ),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let text = r.json()["result"]["content"][0]["text"]
        .as_str()
        .unwrap()
        .to_string();
    let got: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(got["status"], "completed");
    let r = call(
        &server,
        &ann,
        "POST",
        "/api/mcp",
        Some(json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"})),
    );
    let listed = r.json();
    let tools: Vec<&str> = listed["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        tools,
        ["create_run", "get_run", "list_runs", "review_phase"]
    );
    let r = call(
        &server,
        &ann,
        "POST",
        "/api/mcp",
        Some(json!({"jsonrpc": "2.0", "id": 4, "method": "nope"})),
    );
    assert_eq!(r.json()["error"]["code"], -32601);
    let r = call(
        &server,
        &bob,
        "POST",
        "/api/mcp",
        Some(
            json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "get_run", "arguments": {"run_id": run}}}),
        ),
    );
    assert_eq!(r.json()["result"]["isError"], true, "{}", r.text());

    // Browsers open the live socket with a one-time ticket, scoped to the
    // tenant and the run.
    let r = call(
        &server,
        &bob,
        "POST",
        &format!("/api/runs/{run}/live-ticket"),
        None,
    );
    assert_eq!(r.status, 404, "{}", r.text());
    let ticket = |s: &Session| {
        let r = call(
            &server,
            s,
            "POST",
            &format!("/api/runs/{run}/live-ticket"),
            None,
        );
        assert_eq!(r.status, 201, "{}", r.text());
        r.json()["ticket"].as_str().unwrap().to_string()
    };
    let t = ticket(&ann);
    let mut ws = ws_connect(
        &server.addr,
        &format!("/api/runs/{run}/live?ticket={t}"),
        "",
    );
    let first: Value = serde_json::from_str(&ws_text(&mut ws).unwrap()).unwrap();
    assert_eq!(first["type"], "phase_started");
    assert_eq!(first["phase"], "opportunity");
    let upgrade = [("Upgrade", "websocket")];
    let r = server.request(
        "GET",
        &format!("/api/runs/{run}/live?ticket={t}"),
        &upgrade,
        b"",
    );
    assert_eq!(r.status, 401, "a ticket works once: {}", r.text());
    let t = ticket(&ann);
    let r = server.request(
        "GET",
        &format!("/api/runs/run_000000000000000000000000/live?ticket={t}"),
        &upgrade,
        b"",
    );
    assert_eq!(r.status, 401, "{}", r.text());

    // Logging out ends the cookie session.
    let r = server.request("POST", "/api/auth/logout", &[("Cookie", cookie)], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    let r = server.request("GET", "/api/me", &[("Cookie", cookie)], b"");
    assert_eq!(r.status, 401);
    assert!(
        r.text().contains("session expired or unknown"),
        "{}",
        r.text()
    );
}

#[test]
fn rate_limits_come_after_cors_and_before_turnstile_and_auth() {
    let Some(app) = prepare(
        "rate_limits_come_after_cors_and_before_turnstile_and_auth",
        &[],
        &[("RL_IP", 14), ("RL_TENANT", 6), ("RL_USER", 4)],
    ) else {
        return;
    };
    let server = start_with_test_clock(&app);
    // The limits count per fixed 60 s window: move the server's clock to
    // one second into the next window.
    let window_ms = 60_000;
    server.set_clock((server.clock_ms() / window_ms + 1) * window_ms + 1_000);
    let ann = signup(&server, "ann@acme.test", "Acme"); // ip 1
    for i in 0..4 {
        // ip 2..5, tenant 1..4, user 1..4
        let r = call(&server, &ann, "GET", "/api/me", None);
        assert_eq!(r.status, 200, "request {i}: {}", r.text());
    }
    for _ in 0..2 {
        // ip 6..7, tenant 5..6, user 5..6
        let r = call(&server, &ann, "GET", "/api/me", None);
        assert_eq!(r.status, 429, "{}", r.text());
        assert_eq!(r.json()["scope"], "user");
    }
    let r = call(&server, &ann, "GET", "/api/me", None); // ip 8, tenant 7
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(r.json()["scope"], "tenant");
    assert_eq!(r.header("retry-after"), Some("60"));
    assert!(r.header("x-correlation-id").is_some());
    // Another tenant is not limited by Acme's budget.
    let bob = signup(&server, "bob@beta.test", "Beta"); // ip 9
    assert_eq!(call(&server, &bob, "GET", "/api/me", None).status, 200); // ip 10
    for _ in 0..4 {
        // ip 11..14
        server.get("/api/me");
    }
    // Over the client-address limit: refused before Turnstile and auth run.
    let turnstile_before = app.double.state.lock().unwrap().turnstile_calls;
    let r = server.request(
        "POST",
        "/api/auth/login",
        &[],
        br#"{"email":"ann@acme.test","password":"x"}"#,
    );
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(r.json()["scope"], "ip");
    let r = server.request(
        "GET",
        "/api/me",
        &[("Authorization", "Bearer not-a-token")],
        b"",
    );
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(
        app.double.state.lock().unwrap().turnstile_calls,
        turnstile_before
    );
    // CORS preflights still answer: CORS runs before the limiter.
    let r = server.request(
        "OPTIONS",
        "/api/me",
        &[
            ("Origin", "https://app.example"),
            ("Access-Control-Request-Method", "GET"),
        ],
        b"",
    );
    assert_eq!(r.status, 204);
}

#[test]
fn audit_chain_verifies_then_names_an_altered_row_and_a_truncated_tail() {
    let Some(app) = prepare(
        "audit_chain_verifies_then_names_an_altered_row_and_a_truncated_tail",
        &[],
        &[],
    ) else {
        return;
    };
    let server = start(&app);
    let ann = signup(&server, "ann@acme.test", "Acme");
    let bob = signup(&server, "bob@beta.test", "Beta");
    let hook = format!("http://{}/hook-audit", app.double.addr);
    for i in 0..5 {
        let r = call(
            &server,
            &ann,
            "POST",
            "/api/webhooks",
            Some(json!({"url": hook, "name": format!("hook {i}")})),
        );
        assert_eq!(r.status, 201, "{}", r.text());
    }
    // Refusals are not audited; reads are not audited.
    let r = call(
        &server,
        &ann,
        "POST",
        "/api/webhooks",
        Some(json!({"url": "ftp://x"})),
    );
    assert_eq!(r.status, 400);
    call(&server, &ann, "GET", "/api/webhooks", None);

    let verify = |s: &Session| call(&server, s, "GET", "/api/audit/verify", None).json();
    let ok = eventually("six audit entries", Duration::from_secs(30), || {
        let v = verify(&ann);
        (v["entries"] == 6).then_some(v)
    });
    assert_eq!(ok["ok"], true, "{ok}");
    assert_eq!(ok["signatures_checked"], true);
    assert_eq!(ok["last_checkpoint"], 6, "{ok}");

    // Verification while entries are being appended never mistakes the
    // moving head for a truncated tail (it reads chain and checkpoints in
    // one snapshot).
    for i in 0..20 {
        let r = call(
            &server,
            &ann,
            "POST",
            "/api/webhooks",
            Some(json!({"url": hook, "name": format!("more {i}")})),
        );
        assert_eq!(r.status, 201, "{}", r.text());
        let v = verify(&ann);
        assert_eq!(v["ok"], true, "{v}");
    }
    eventually("26 audit entries", Duration::from_secs(30), || {
        let v = verify(&ann);
        assert_eq!(v["ok"], true, "{v}");
        (v["entries"] == 26).then_some(())
    });

    // The chain as stored is what the documented rule gives: each hash is
    // SHA-256 over the previous hash and the event's canonical JSON.
    let rows = d1(
        &app,
        &format!(
            "SELECT seq, tenant_id, event_id, event_type, payload, previous_hash, hash, created_at FROM audit_chain WHERE tenant_id = '{}' ORDER BY seq",
            ann.tenant
        ),
    );
    let mut previous = "0".repeat(64);
    for row in &rows {
        assert_eq!(row["previous_hash"].as_str().unwrap(), previous);
        let event = json!({
            "seq": row["seq"], "tenant_id": row["tenant_id"], "event_id": row["event_id"],
            "event_type": row["event_type"],
            "payload": serde_json::from_str::<Value>(row["payload"].as_str().unwrap()).unwrap(),
            "created_at": row["created_at"],
        });
        let hash = hex::encode(Sha256::digest(
            format!("{previous}{}", canonical(&event)).as_bytes(),
        ));
        assert_eq!(row["hash"].as_str().unwrap(), hash, "{row}");
        previous = hash;
    }
    assert_eq!(rows[0]["event_type"], "tenant.created");
    assert_eq!(rows[1]["event_type"], "POST /api/webhooks");

    // Altering one row's content breaks the chain at that row.
    let original = rows[2]["payload"].as_str().unwrap().to_string();
    let tampered = original.replace("201", "202");
    assert_ne!(tampered, original);
    d1(
        &app,
        &format!(
            "UPDATE audit_chain SET payload = '{tampered}' WHERE tenant_id = '{}' AND seq = 3",
            ann.tenant
        ),
    );
    let v = verify(&ann);
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["first_broken"]["seq"], 3, "{v}");
    assert!(
        v["first_broken"]["reason"]
            .as_str()
            .unwrap()
            .contains("hash does not match"),
        "{v}"
    );
    // Another tenant's chain is unaffected.
    assert_eq!(verify(&bob)["ok"], true);
    d1(
        &app,
        &format!(
            "UPDATE audit_chain SET payload = '{original}' WHERE tenant_id = '{}' AND seq = 3",
            ann.tenant
        ),
    );
    assert_eq!(verify(&ann)["ok"], true);

    // Rewriting a row and its hash consistently breaks the next link.
    d1(
        &app,
        &format!(
            "UPDATE audit_chain SET hash = '{}' WHERE tenant_id = '{}' AND seq = 4",
            "f".repeat(64),
            ann.tenant
        ),
    );
    let v = verify(&ann);
    assert_eq!(v["first_broken"]["seq"], 4, "{v}");
    let hash4 = rows[3]["hash"].as_str().unwrap();
    d1(
        &app,
        &format!(
            "UPDATE audit_chain SET hash = '{hash4}' WHERE tenant_id = '{}' AND seq = 4",
            ann.tenant
        ),
    );
    assert_eq!(verify(&ann)["ok"], true);

    // Cutting off the tail leaves a consistent chain, but the signed
    // checkpoint of the old head names the truncation.
    d1(
        &app,
        &format!(
            "DELETE FROM audit_chain WHERE tenant_id = '{}' AND seq > 4",
            ann.tenant
        ),
    );
    let v = verify(&ann);
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["head"]["seq"], 4);
    assert_eq!(v["first_broken"]["checkpoint"], true, "{v}");
    assert!(
        v["first_broken"]["reason"]
            .as_str()
            .unwrap()
            .contains("the tail was truncated"),
        "{v}"
    );
    // A forged checkpoint (not signed by the audit key) is caught as well.
    d1(
        &app,
        &format!(
            "DELETE FROM audit_checkpoints WHERE tenant_id = '{}'; INSERT INTO audit_checkpoints VALUES ('{}', 4, '{hash4}', '{}', 0)",
            ann.tenant,
            ann.tenant,
            STANDARD.encode([7u8; 64])
        ),
    );
    let v = verify(&ann);
    assert_eq!(v["ok"], false, "{v}");
    assert!(
        v["first_broken"]["reason"]
            .as_str()
            .unwrap()
            .contains("signature does not verify"),
        "{v}"
    );
}

#[test]
fn a_go_run_walks_every_phase_with_a_review_loop_to_a_package_in_r2() {
    let Some(app) = prepare(
        "a_go_run_walks_every_phase_with_a_review_loop_to_a_package_in_r2",
        &[],
        &[],
    ) else {
        return;
    };
    let server = start(&app);
    let ann = signup(&server, "ann@acme.test", "Acme");
    let hook = format!("http://{}/hook-go", app.double.addr);
    let r = call(
        &server,
        &ann,
        "POST",
        "/api/webhooks",
        Some(json!({"url": hook, "events": ["phase_completed", "run_completed"]})),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let secret = r.json()["secret"].as_str().unwrap().to_string();

    // Bad input is refused with the reason.
    let r = call(
        &server,
        &ann,
        "POST",
        "/api/planning/runs",
        Some(json!({"idea": "A planner", "review_phases": ["strategy", "astrology"]})),
    );
    assert_eq!(r.status, 400);
    assert!(r.text().contains("astrology"), "{}", r.text());

    app.double.script(
        "strategy",
        &["Strategy draft one.", "Strategy draft two, narrower."],
    );
    let run = create_run(&server, &ann, "Scheduling for dog groomers", &["strategy"]);
    let mut ws = ws_connect(
        &server.addr,
        &format!("/api/runs/{run}/live"),
        &format!("Authorization: Bearer {}\r\n", ann.token),
    );

    // The review loop: the workflow waits, a revise sends the phase back
    // with feedback, an approve lets the run go on.
    let v = wait_review(&server, &ann, &run, "strategy", 1);
    assert_eq!(v["status"], "awaiting_review");
    assert_eq!(phase_status(&v, "kill-test"), "completed");
    assert_eq!(phase_status(&v, "business-model"), "pending");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        phase_status(&run_state(&server, &ann, &run), "business-model"),
        "pending",
        "the run must wait for the review"
    );
    let r = call(
        &server,
        &ann,
        "POST",
        &format!("/api/planning/runs/{run}/phases/business-model/review"),
        Some(json!({"verdict": "approve"})),
    );
    assert_eq!(r.status, 409, "{}", r.text());
    let r = call(
        &server,
        &ann,
        "POST",
        &format!("/api/planning/runs/{run}/phases/strategy/review"),
        Some(json!({"verdict": "revise"})),
    );
    assert_eq!(r.status, 400, "feedback is required: {}", r.text());
    let r = call(
        &server,
        &ann,
        "POST",
        &format!("/api/planning/runs/{run}/phases/strategy/review"),
        Some(json!({"verdict": "revise", "feedback": "Focus on mobile groomers."})),
    );
    assert_eq!(r.status, 202, "{}", r.text());
    wait_review(&server, &ann, &run, "strategy", 2);
    let strategy = app.double.calls("strategy");
    assert_eq!(strategy.len(), 2);
    assert!(
        strategy[1].contains("Focus on mobile groomers."),
        "{}",
        strategy[1]
    );
    let r = call(
        &server,
        &ann,
        "POST",
        &format!("/api/planning/runs/{run}/phases/strategy/review"),
        Some(json!({"verdict": "approve"})),
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let done = wait_status(&server, &ann, &run, "completed");

    for phase in PHASES {
        assert_eq!(phase_status(&done, phase), "completed", "{phase}");
        let n = if phase == "strategy" { 2 } else { 1 };
        assert_eq!(app.double.calls(phase).len(), n, "{phase}");
    }
    assert_eq!(done["kill_verdict"]["verdict"], "GO");
    assert_eq!(done["artifacts"].as_array().unwrap().len(), 15);
    // Later phases see earlier work: the run's own phases and, through
    // Vectorize, related artifacts.
    let synthesis = &app.double.calls("synthesis")[0];
    assert!(
        synthesis.contains("Earlier phases of this run"),
        "{synthesis}"
    );
    assert!(synthesis.contains("Related earlier work"), "{synthesis}");
    assert!(app.double.calls("opportunity")[0].starts_with("Idea: Scheduling for dog groomers"));
    let r = call(
        &server,
        &ann,
        "GET",
        &format!("/api/planning/runs/{run}/artifacts/strategy"),
        None,
    );
    assert_eq!(r.json()["content"], "Strategy draft two, narrower.");
    assert_eq!(r.json()["review_verdict"], "approved");

    // The package in R2, all artifacts in PHASE_ORDER.
    let r = call(
        &server,
        &ann,
        "GET",
        &format!("/api/planning/runs/{run}/package"),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.header("content-disposition")
            .unwrap()
            .contains(&format!("{run}.json"))
    );
    let pkg = r.json();
    let phases: Vec<&str> = pkg["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["phase"].as_str().unwrap())
        .collect();
    assert_eq!(phases, PHASES.to_vec());
    let out = run_cli(
        &app,
        &[
            "r2",
            "object",
            "get",
            &format!("foundation-files/packages/{}/{run}.json", ann.tenant),
            "--pipe",
        ],
        "planning-machine",
    );
    let stored: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(stored["run_id"], run.as_str());

    // Live progress over the WebSocket, ending with run_completed.
    let mut seen = Vec::new();
    while let Some(text) = ws_text(&mut ws) {
        let e: Value = serde_json::from_str(&text).unwrap();
        let kind = e["type"].as_str().unwrap().to_string();
        seen.push(kind.clone());
        if kind == "run_completed" {
            break;
        }
    }
    assert_eq!(seen.iter().filter(|k| *k == "phase_completed").count(), 15);
    assert_eq!(seen.iter().filter(|k| *k == "review_requested").count(), 2);
    assert_eq!(seen.last().map(String::as_str), Some("run_completed"));

    // Webhooks: 15 phase_completed + run_completed, filtered (no
    // review_requested), each signed per Standard Webhooks.
    let hooks = eventually("16 webhook deliveries", Duration::from_secs(30), || {
        let h = app.double.hooks_to("/hook-go");
        (h.len() >= 16).then_some(h)
    });
    assert_eq!(hooks.len(), 16);
    let key = STANDARD
        .decode(secret.trim_start_matches("whsec_"))
        .unwrap();
    let mut types = Vec::new();
    for (headers, body) in &hooks {
        let id = &headers["webhook-id"];
        let ts = &headers["webhook-timestamp"];
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
        mac.update(format!("{id}.{ts}.").as_bytes());
        mac.update(body);
        let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
        assert_eq!(headers["webhook-signature"], expected);
        assert!(ts.parse::<u64>().unwrap().abs_diff(now()) < 120);
        let v: Value = serde_json::from_slice(body).unwrap();
        types.push(v["type"].as_str().unwrap().to_string());
    }
    assert_eq!(types.iter().filter(|t| *t == "phase_completed").count(), 15);
    assert_eq!(types.iter().filter(|t| *t == "run_completed").count(), 1);

    // Notifications, usage per tenant from Analytics Engine, and the audit
    // chain covering the run.
    let notes = eventually("notifications", Duration::from_secs(20), || {
        let v = call(&server, &ann, "GET", "/api/notifications", None).json();
        let kinds: Vec<String> = v["notifications"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["kind"].as_str().unwrap().to_string())
            .collect();
        kinds
            .contains(&"run_completed".to_string())
            .then_some(kinds)
    });
    assert_eq!(notes.iter().filter(|k| *k == "review_requested").count(), 2);
    let usage = eventually("usage metrics", Duration::from_secs(20), || {
        let r = call(&server, &ann, "GET", "/api/admin/usage", None);
        assert_eq!(r.status, 200, "{}", r.text());
        let rows = r.json()["usage"].as_array().unwrap().clone();
        let phases = rows
            .iter()
            .filter(|u| u["kind"] == "planning")
            .map(|u| u["count"].as_f64().unwrap())
            .sum::<f64>();
        (phases == 15.0).then_some(rows)
    });
    let strategy_tokens = usage
        .iter()
        .find(|u| u["name"] == "phase:strategy")
        .unwrap();
    assert_eq!(strategy_tokens["total"].as_f64(), Some(30.0));
    assert!(
        usage
            .iter()
            .any(|u| u["kind"] == "request" && u["name"] == "POST /api/planning/*"),
        "{usage:?}"
    );
    // Every model call went through AI Gateway, logged with the tenant.
    let logs = eventually("AI Gateway logs", Duration::from_secs(20), || {
        let out = hearth()
            .args(["ai-gateway", "logs", "foundation", "--data-dir"])
            .arg(&app.data)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let calls = app.double.state.lock().unwrap().calls.len();
        let embeddings = app.double.state.lock().unwrap().embeddings;
        (out.status.success() && text.lines().count() == calls + embeddings).then_some(text)
    });
    assert_eq!(logs.lines().count(), 16 + 30, "{logs}");
    assert!(logs.contains(&ann.tenant), "{logs}");
    let audit = eventually("audit of the run", Duration::from_secs(20), || {
        let v = call(&server, &ann, "GET", "/api/audit/verify", None).json();
        // signup, webhook, run create, 2 reviews posted, 2 review_requested,
        // 15 phase_completed, run_completed
        (v["entries"] == 23).then_some(v)
    });
    assert_eq!(audit["ok"], true, "{audit}");
}

#[test]
fn kill_test_verdicts_pivot_with_history_and_kill_parks_the_idea() {
    let Some(app) = prepare(
        "kill_test_verdicts_pivot_with_history_and_kill_parks_the_idea",
        &[],
        &[],
    ) else {
        return;
    };
    let server = start(&app);
    let ann = signup(&server, "ann@acme.test", "Acme");

    // PIVOT restarts from phase 1 with the new idea; the second kill-test says GO.
    app.double.script(
        "kill-test",
        &[
            r#"{"verdict":"PIVOT","reason":"crowded market","pivot_idea":"Route planning for mobile vets"}"#,
            r#"Verdict: {"verdict":"GO","reason":"underserved"}"#,
        ],
    );
    let run = create_run(&server, &ann, "Booking app for vets", &[]);
    let done = wait_status(&server, &ann, &run, "completed");
    assert_eq!(done["pivot_count"], 1);
    assert_eq!(done["refined_idea"], "Route planning for mobile vets");
    let history = done["pivot_history"].as_array().unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["from"], "Booking app for vets");
    assert_eq!(history[0]["to"], "Route planning for mobile vets");
    assert_eq!(history[0]["reason"], "crowded market");
    let opportunity = app.double.calls("opportunity");
    assert_eq!(opportunity.len(), 2);
    assert!(opportunity[0].starts_with("Idea: Booking app for vets"));
    assert!(opportunity[1].starts_with("Idea: Route planning for mobile vets"));
    // Phases after the first kill-test never ran in generation 0.
    assert_eq!(app.double.calls("strategy").len(), 1);
    let gen0: Vec<&Value> = done["phase_history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["generation"] == 0)
        .collect();
    assert_eq!(gen0.len(), 5);
    for phase in PHASES {
        assert_eq!(phase_status(&done, phase), "completed", "{phase}");
    }
    let pkg = call(
        &server,
        &ann,
        "GET",
        &format!("/api/planning/runs/{run}/package"),
        None,
    )
    .json();
    assert_eq!(pkg["final_idea"], "Route planning for mobile vets");
    assert_eq!(pkg["pivot_history"].as_array().unwrap().len(), 1);
    assert_eq!(pkg["artifacts"].as_array().unwrap().len(), 15);
    assert!(
        pkg["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["version"] == 2)
    );

    // KILL terminates the run and parks the idea.
    app.double.script(
        "kill-test",
        &[r#"{"verdict":"KILL","reason":"no willingness to pay","revisit_months":12}"#],
    );
    let before = app.double.calls("revenue-expansion").len();
    let killed = create_run(&server, &ann, "NFTs for houseplants", &[]);
    let v = wait_status(&server, &ann, &killed, "killed");
    assert_eq!(v["kill_verdict"]["verdict"], "KILL");
    assert_eq!(phase_status(&v, "kill-test"), "killed");
    assert_eq!(phase_status(&v, "revenue-expansion"), "pending");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(app.double.calls("revenue-expansion").len(), before);
    let parked = call(&server, &ann, "GET", "/api/planning/parked", None).json();
    let parked = parked["parked"].as_array().unwrap();
    assert_eq!(parked.len(), 1);
    assert_eq!(parked[0]["run_id"], killed.as_str());
    assert_eq!(parked[0]["idea"], "NFTs for houseplants");
    assert_eq!(parked[0]["reason"], "no willingness to pay");
    assert_eq!(parked[0]["revisit_estimate_months"], 12);
    let r = call(
        &server,
        &ann,
        "GET",
        &format!("/api/planning/runs/{killed}/package"),
        None,
    );
    assert_eq!(r.status, 409, "{}", r.text());

    // Past MAX_PIVOTS (2) a PIVOT parks the idea instead of looping.
    let pivot = r#"{"verdict":"PIVOT","reason":"still unclear","pivot_idea":"Another angle"}"#;
    app.double.script("kill-test", &[pivot, pivot, pivot]);
    let looping = create_run(&server, &ann, "Drone delivery of socks", &[]);
    let v = wait_status(&server, &ann, &looping, "killed");
    assert_eq!(v["pivot_count"], 2);
    assert_eq!(v["pivot_history"].as_array().unwrap().len(), 2);
    let parked = call(&server, &ann, "GET", "/api/planning/parked", None).json();
    let reason = parked["parked"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["run_id"] == looping.as_str())
        .map(|p| p["reason"].as_str().unwrap().to_string())
        .unwrap();
    assert!(reason.starts_with("pivot limit (2) reached"), "{reason}");
}

#[test]
fn kill9_mid_phase_and_while_awaiting_review_runs_no_finished_phase_twice() {
    let Some(app) = prepare(
        "kill9_mid_phase_and_while_awaiting_review_runs_no_finished_phase_twice",
        &[],
        &[],
    ) else {
        return;
    };
    let server = start(&app);
    let ann = signup(&server, "ann@acme.test", "Acme");

    // Hold the model call of the third phase, then kill -9 the server.
    {
        let mut s = app.double.state.lock().unwrap();
        s.hold_phase = Some("market-research".into());
    }
    app.double.hold.store(true, Ordering::SeqCst);
    let run = create_run(&server, &ann, "Bookkeeping for food trucks", &[]);
    eventually("the held call", Duration::from_secs(60), || {
        (app.double.state.lock().unwrap().held == 1).then_some(())
    });
    server.kill9();
    app.double.hold.store(false, Ordering::SeqCst);
    let server = start(&app);
    let done = wait_status(&server, &ann, &run, "completed");
    for phase in PHASES {
        assert_eq!(phase_status(&done, phase), "completed", "{phase}");
        // Answered model calls: the interrupted one never was, so every
        // phase's agent ran to an answer exactly once.
        assert_eq!(app.double.calls(phase).len(), 1, "{phase}");
    }
    let rows = d1(
        &app,
        &format!(
            "SELECT phase, COUNT(*) AS n FROM planning_artifacts WHERE run_id = '{run}' GROUP BY phase"
        ),
    );
    assert_eq!(rows.len(), 15);
    assert!(rows.iter().all(|r| r["n"] == 1), "{rows:?}");

    // Killed while waiting for a review: the wait survives and resumes.
    let second = create_run(&server, &ann, "Payroll for choirs", &["customer-intel"]);
    wait_review(&server, &ann, &second, "customer-intel", 1);
    // Killed once the instance hibernates in its waitForEvent.
    eventually("the instance to wait", Duration::from_secs(30), || {
        (run_state(&server, &ann, &second)["workflow_status"] == "waiting").then_some(())
    });
    server.kill9();
    let server = start(&app);
    let r = call(
        &server,
        &ann,
        "POST",
        &format!("/api/planning/runs/{second}/phases/customer-intel/review"),
        Some(json!({"verdict": "approve"})),
    );
    assert_eq!(r.status, 202, "{}", r.text());
    wait_status(&server, &ann, &second, "completed");
    assert_eq!(app.double.calls("opportunity").len(), 2);
    assert_eq!(app.double.calls("customer-intel").len(), 2);
    assert_eq!(app.double.calls("synthesis").len(), 2);
    // The audit chain stayed whole across both crashes.
    let v = call(&server, &ann, "GET", "/api/audit/verify", None).json();
    assert_eq!(v["ok"], true, "{v}");
}

#[test]
fn webhooks_retry_dead_letter_and_refuse_private_targets() {
    let Some(app) = prepare(
        "webhooks_retry_dead_letter_and_refuse_private_targets",
        &[],
        &[],
    ) else {
        return;
    };
    let server = start(&app);
    let ann = signup(&server, "ann@acme.test", "Acme");

    // SSRF: private, loopback, link-local and internal names are refused
    // when a destination is saved ...
    for url in [
        "https://169.254.169.254/latest/meta-data",
        "https://127.0.0.1/x",
        "https://10.0.0.8/x",
        "https://[::1]/x",
        "https://[::ffff:127.0.0.1]/x",
        "https://localhost./x",
        "https://metadata.google.internal/x",
        "https://user:pw@hooks.example.com/x",
        "http://hooks.example.com/x",
        "file:///etc/passwd",
    ] {
        let r = call(
            &server,
            &ann,
            "POST",
            "/api/webhooks",
            Some(json!({"url": url})),
        );
        assert_eq!(r.status, 400, "{url}: {}", r.text());
        assert!(r.text().contains("webhook url refused"), "{}", r.text());
    }
    let mk = |path: &str| {
        let r = call(
            &server,
            &ann,
            "POST",
            "/api/webhooks",
            Some(
                json!({"url": format!("http://{}{path}", app.double.addr), "events": ["run_completed"]}),
            ),
        );
        assert_eq!(r.status, 201, "{}", r.text());
        r.json()["id"].as_str().unwrap().to_string()
    };
    let flaky = mk("/hook-flaky");
    let dead = mk("/hook-dead");
    {
        let mut s = app.double.state.lock().unwrap();
        s.hook_statuses
            .insert("/hook-flaky".into(), VecDeque::from([500, 503]));
        s.hook_statuses
            .insert("/hook-dead".into(), VecDeque::from([500, 500, 500, 500]));
    }
    // ... and again at delivery time: a destination row pointing at a
    // private address (written before a rule changed, or by hand) is
    // refused before any connection.
    d1(
        &app,
        &format!(
            "INSERT INTO webhook_destinations (id, tenant_id, hostname, url, secret, events, created_at, updated_at) VALUES ('whd_private', '{}', '10.1.2.3', 'https://10.1.2.3/hook', 'whsec_AAAA', 'run_completed', 0, 0)",
            ann.tenant
        ),
    );

    let run = create_run(&server, &ann, "Tutoring marketplace", &[]);
    wait_status(&server, &ann, &run, "completed");
    let deliveries = eventually("final delivery states", Duration::from_secs(60), || {
        let v = call(&server, &ann, "GET", "/api/webhooks/deliveries", None).json();
        let list = v["deliveries"].as_array().unwrap().clone();
        let settled = list.len() == 3 && list.iter().all(|d| d["status"] != "pending");
        settled.then_some(list)
    });
    let by = |id: &str| {
        deliveries
            .iter()
            .find(|d| d["destination_id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(by(&flaky)["status"], "delivered");
    assert_eq!(by(&flaky)["attempts"], 3);
    assert_eq!(by(&dead)["status"], "dead");
    assert_eq!(by(&dead)["attempts"], 3);
    assert_eq!(by(&dead)["last_status"], 500);
    assert_eq!(by("whd_private")["status"], "refused");
    assert!(
        by("whd_private")["last_error"]
            .as_str()
            .unwrap()
            .contains("10.1.2.3 is private"),
        "{deliveries:?}"
    );
    assert_eq!(app.double.hooks_to("/hook-flaky").len(), 3);
    assert_eq!(app.double.hooks_to("/hook-dead").len(), 3);
    // Every attempt carries the same webhook-id; the dead one is recorded.
    let ids: Vec<String> = app
        .double
        .hooks_to("/hook-flaky")
        .iter()
        .map(|(h, _)| h["webhook-id"].clone())
        .collect();
    assert!(ids.iter().all(|i| *i == ids[0]));
    let letters = eventually("the dead letter", Duration::from_secs(20), || {
        let rows = d1(
            &app,
            &format!(
                "SELECT id FROM webhook_dead_letters WHERE tenant_id = '{}'",
                ann.tenant
            ),
        );
        (!rows.is_empty()).then_some(rows)
    });
    assert_eq!(letters.len(), 1);
    assert!(letters[0]["id"].as_str().unwrap().ends_with(&dead));
}

fn chromium() -> Option<PathBuf> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

#[test]
fn ui_walkthrough_in_headless_chromium() {
    let test = "ui_walkthrough_in_headless_chromium";
    let Some(browser) = chromium() else {
        // CI (.ci/run) installs Chromium and sets this: there it must run.
        assert!(
            std::env::var_os("HEARTH_TEST_REQUIRE_BROWSER").is_none(),
            "{test}: Chromium is not installed and HEARTH_TEST_REQUIRE_BROWSER is set"
        );
        eprintln!("SKIPPED {test}: Chromium is not installed (apt-get install chromium)");
        return;
    };
    let Some(app) = prepare(test, &[], &[]) else {
        return;
    };
    // Build the SvelteKit UI with npm and vite, as for a deployment.
    let ui = app.root.join("ui");
    web_support::npm(&ui, &["ci"]);
    web_support::npm(&ui, &["run", "build"]);
    let server = start(&app);
    let base = format!("http://{}", server.addr);
    // The UI's server-side render, then the API through its service binding.
    let page = server.get("/");
    assert_eq!(page.status, 200);
    assert!(
        page.text().contains("<h1>Foundation</h1>"),
        "{}",
        page.text()
    );
    assert_eq!(server.get("/api/me").status, 401);

    let out = Command::new("node")
        .arg("tests/walkthrough.mjs")
        .arg(&base)
        .arg(&browser)
        .current_dir(&ui)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "walkthrough: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        summary["seen"],
        json!([
            "opportunity completed",
            "strategy awaiting review",
            "run completed"
        ])
    );
    assert_eq!(summary["pendingWhileReview"], "pending");
    assert_eq!(summary["completedPhases"], 15);
    // The phases were pushed over the run's WebSocket, past the review too.
    assert!(summary["liveEvents"].as_u64().unwrap() >= 15, "{summary}");
    let run = summary["runId"].as_str().unwrap();
    assert_eq!(summary["filename"], format!("{run}.json"));
    assert_eq!(summary["packagePhases"], json!(PHASES));
    // The review really held the run: the strategy agent ran once, and the
    // run and its package are in storage.
    assert_eq!(app.double.calls("strategy").len(), 1);
    let rows = d1(
        &app,
        &format!("SELECT status, package_key FROM planning_runs WHERE id = '{run}'"),
    );
    assert_eq!(rows[0]["status"], "completed");
    assert!(
        rows[0]["package_key"]
            .as_str()
            .unwrap()
            .ends_with(&format!("{run}.json"))
    );
}

#[test]
fn services_refuse_calls_without_a_valid_context_token() {
    let Some(app) = prepare(
        "services_refuse_calls_without_a_valid_context_token",
        &[("agents", "MCP_CALLS_PER_MINUTE=3\n")],
        &[],
    ) else {
        return;
    };
    // A worker of the test's own with service bindings to the planning
    // machine and the agents, sending whatever context token it is given.
    let probe = app.root.join("probe");
    std::fs::create_dir_all(&probe).unwrap();
    std::fs::write(
        probe.join("index.js"),
        r#"export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const token = request.headers.get("x-probe-token");
    const target = url.searchParams.get("to") === "agents" ? env.AGENTS : env.PLANNING;
    return target.fetch("https://service.internal" + url.pathname, {
      method: request.method,
      headers: token ? { "x-context-token": token, "content-type": "application/json" } : { "content-type": "application/json" },
      body: request.method === "POST" ? await request.text() : undefined,
    });
  },
};
"#,
    )
    .unwrap();
    std::fs::write(
        probe.join("wrangler.toml"),
        "name = \"probe\"\nmain = \"index.js\"\ncompatibility_date = \"2025-09-01\"\n\n[[services]]\nbinding = \"PLANNING\"\nservice = \"foundation-planning-machine\"\n\n[[services]]\nbinding = \"AGENTS\"\nservice = \"foundation-agents\"\n",
    )
    .unwrap();
    // First, through the gateway: a tenant with one run.
    let ann = {
        let gateway_first = start(&app);
        let ann = signup(&gateway_first, "ann@acme.test", "Acme");
        let run = create_run(&gateway_first, &ann, "Dog walking rota", &[]);
        wait_status(&gateway_first, &ann, &run, "completed");
        gateway_first.terminate();
        ann
    };
    let server = start_with(&app, &[probe.join("wrangler.toml")]);
    let claims = |exp: u64, aud: &str| json!({"sub": "usr_probe", "tid": "ten_probe", "role": "admin", "iat": now() - 100, "exp": exp, "aud": aud});
    let probe_get = |path: &str, token: Option<&str>| {
        let mut headers = vec![];
        if let Some(t) = token {
            headers.push(("x-probe-token", t));
        }
        server.request("GET", path, &headers, b"")
    };
    let cases = [
        (None, "missing context token"),
        (
            Some(jwt(
                &claims(now() + 60, "foundation-services"),
                "HS256",
                JWT_SECRET,
            )),
            "invalid token signature",
        ),
        (
            Some(jwt(
                &claims(now() + 60, "foundation-api"),
                "HS256",
                CONTEXT_SECRET,
            )),
            "token audience is not foundation-services",
        ),
        (
            Some(jwt(
                &claims(now() - 1, "foundation-services"),
                "HS256",
                CONTEXT_SECRET,
            )),
            "token expired",
        ),
    ];
    for (token, reason) in &cases {
        for path in ["/runs", "/mcp?to=agents"] {
            let r = if path.starts_with("/mcp") {
                let mut headers = vec![];
                if let Some(t) = token {
                    headers.push(("x-probe-token", t.as_str()));
                }
                server.request(
                    "POST",
                    path,
                    &headers,
                    br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
                )
            } else {
                probe_get(path, token.as_deref())
            };
            assert_eq!(r.status, 401, "{path} {reason}: {}", r.text());
            assert!(r.text().contains(reason), "{path} {reason}: {}", r.text());
        }
    }
    // A valid context token is scoped to its tenant: nothing of anyone else.
    let good = jwt(
        &claims(now() + 60, "foundation-services"),
        "HS256",
        CONTEXT_SECRET,
    );
    let r = probe_get("/runs", Some(&good));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["runs"], json!([]));
    let own = jwt(
        &json!({"sub": ann.user, "tid": ann.tenant, "role": "admin", "iat": now(), "exp": now() + 60, "aud": "foundation-services"}),
        "HS256",
        CONTEXT_SECRET,
    );
    let r = probe_get("/runs", Some(&own));
    assert_eq!(
        r.json()["runs"].as_array().unwrap().len(),
        1,
        "{}",
        r.text()
    );

    // MCP tool calls are limited per tenant by the agents' TenantLimiter
    // (3 a minute here): the fourth is refused, another tenant still passes.
    let tool_call = |token: &str| {
        server
            .request(
                "POST",
                "/mcp?to=agents",
                &[("x-probe-token", token)],
                br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"list_runs","arguments":{}}}"#,
            )
            .json()
    };
    for _ in 0..3 {
        let v = tool_call(&own);
        assert_eq!(v["result"]["isError"], false, "{v}");
    }
    let v = tool_call(&own);
    assert_eq!(v["error"]["code"], -32000, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("rate limit"),
        "{v}"
    );
    assert_eq!(tool_call(&good)["result"]["isError"], false);
}
