//! The Coinswarm seed app (apps/coinswarm/) end to end through `hearth
//! serve`: this test runs a Coinbase-shaped market double and ML agent
//! doubles on 127.0.0.1 (both count their calls), points the app at them
//! through `.dev.vars`, and drives the MCP server (raw JSON-RPC and the
//! official TypeScript SDK client), the market data cache, accounts, orders,
//! the Analytics Engine P&L, Vectorize patterns, live sessions over
//! WebSockets, the circuit breaker, the committee and queued backtests
//! across a `kill -9`. Time windows (cache, breaker cool-down, committee
//! deadline) are vars set small here; the MCP idle expiry, the prediction
//! cache and the breaker's cool-down are crossed by moving the server's
//! test clock (`hearth serve --test-clock`), not by sleeping. The SDK
//! client part is skipped with a notice when npm is missing, unless
//! `HEARTH_REQUIRE_CORPUS` is set (`.ci/run` sets it).

mod web_support;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use web_support::{Double, DoubleRequest, Reply, Server, copy_tree, ws_connect, ws_text};

const TOKEN: &str = "coinswarm-test-token-0123456789";
const AE_TOKEN: &str = "coinswarm-analytics-token";

// ------------------------------------------------------------------ doubles

/// Coinbase's `GET /products/{pair}/ticker`: every call a new trade id and
/// price (100 + n for the pair's n-th call); `fail` answers 503.
struct Market {
    double: Double,
    fail: Arc<AtomicBool>,
}

fn market() -> Market {
    let fail = Arc::new(AtomicBool::new(false));
    let counts = Arc::new(std::sync::Mutex::new(std::collections::HashMap::<
        String,
        u64,
    >::new()));
    let f = fail.clone();
    let double = Double::start(Arc::new(move |r: &DoubleRequest| {
        if f.load(Ordering::SeqCst) {
            return (503, r#"{"message":"service unavailable"}"#.into());
        }
        let Some(pair) = r
            .path
            .strip_prefix("/products/")
            .and_then(|p| p.strip_suffix("/ticker"))
        else {
            return (404, r#"{"message":"NotFound"}"#.into());
        };
        let n = {
            let mut c = counts.lock().unwrap();
            let n = c.entry(pair.to_string()).or_default();
            *n += 1;
            *n
        };
        let price = 100.0 + n as f64;
        (
            200,
            json!({"ask": format!("{:.2}", price + 0.5), "bid": format!("{:.2}", price - 0.5),
                   "volume": "1234.5", "trade_id": n, "price": format!("{price:.2}"),
                   "size": "0.01", "time": "2026-01-01T00:00:00.000Z"})
            .to_string(),
        )
    }));
    Market { double, fail }
}

impl Market {
    fn calls(&self, pair: &str) -> usize {
        self.double
            .requests(&format!("/products/{pair}/ticker"))
            .len()
    }
}

const OK: u8 = 0;
const FAIL: u8 = 1;
const HANG: u8 = 2;

/// A Python ML agent: `/predict`, `/vote`, `/backtest`. `mode`: OK, FAIL
/// (500) or HANG (answers after 1.5 s); `vote_delay_ms` delays votes;
/// `hold` keeps `/backtest` waiting until it is cleared.
struct Agent {
    double: Double,
    mode: Arc<AtomicU8>,
    vote_delay_ms: Arc<AtomicU64>,
    hold: Arc<AtomicBool>,
}

fn agent(vote: &'static str) -> Agent {
    let mode = Arc::new(AtomicU8::new(OK));
    let vote_delay_ms = Arc::new(AtomicU64::new(0));
    let hold = Arc::new(AtomicBool::new(false));
    let (m, d, h) = (mode.clone(), vote_delay_ms.clone(), hold.clone());
    let double = Double::start(Arc::new(move |r: &DoubleRequest| {
        let body: Value = serde_json::from_str(&r.body).unwrap_or(Value::Null);
        match r.path.as_str() {
            "/vote" => {
                std::thread::sleep(Duration::from_millis(d.load(Ordering::SeqCst)));
                if m.load(Ordering::SeqCst) == FAIL {
                    return (500, r#"{"error":"model crashed"}"#.into());
                }
                (200, json!({"vote": vote, "confidence": 0.8}).to_string())
            }
            "/predict" => match m.load(Ordering::SeqCst) {
                FAIL => (500, r#"{"error":"model crashed"}"#.into()),
                HANG => {
                    std::thread::sleep(Duration::from_millis(1500));
                    (200, r#"{"direction":"down","confidence":0.1}"#.into())
                }
                _ => (
                    200,
                    json!({"direction": "up", "confidence": 0.73, "model": "lstm-v2", "symbol": body["symbol"]})
                        .to_string(),
                ),
            },
            "/backtest" => {
                if m.load(Ordering::SeqCst) == FAIL {
                    return (500, r#"{"error":"out of memory"}"#.into());
                }
                let start = Instant::now();
                while h.load(Ordering::SeqCst) && start.elapsed() < Duration::from_secs(60) {
                    std::thread::sleep(Duration::from_millis(20));
                }
                (
                    200,
                    json!({"id": body["id"], "strategy": body["strategy"], "sharpe": 1.42, "trades": 37})
                        .to_string(),
                )
            }
            _ => (404, "{}".into()),
        }
    }));
    Agent {
        double,
        mode,
        vote_delay_ms,
        hold,
    }
}

// ------------------------------------------------------------------ app

struct App {
    _dir: tempfile::TempDir,
    root: PathBuf,
    data: PathBuf,
}

fn hearth() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hearth"))
}

fn run(app: &App, args: &[&str]) -> String {
    let out = hearth()
        .args(args)
        .arg("--config")
        .arg(app.root.join("app/wrangler.toml"))
        .arg("--data-dir")
        .arg(&app.data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "hearth {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A copy of the app with `vars` in `app/.dev.vars` (plus the tokens), D1
/// migrations applied and the Vectorize index with its metadata indexes
/// created, as `wrangler` would before a deploy.
fn prepare(vars: &[(&str, String)]) -> App {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("coinswarm");
    copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../apps/coinswarm"),
        &root,
    );
    let mut text =
        format!("API_TOKEN={TOKEN}\nANALYTICS_API_TOKEN={AE_TOKEN}\nANALYTICS_API_BASE=\n");
    for (k, v) in vars {
        text.push_str(&format!("{k}={v}\n"));
    }
    std::fs::write(root.join("app/.dev.vars"), text).unwrap();
    let data = dir.path().join("data");
    let app = App {
        _dir: dir,
        root,
        data,
    };
    run(&app, &["d1", "migrations", "apply", "coinswarm"]);
    run(
        &app,
        &[
            "vectorize",
            "create",
            "coinswarm-patterns",
            "--dimensions",
            "16",
            "--metric",
            "cosine",
        ],
    );
    for prop in ["symbol", "regime", "outcome"] {
        run(
            &app,
            &[
                "vectorize",
                "create-metadata-index",
                "coinswarm-patterns",
                "--property-name",
                prop,
                "--type",
                "string",
            ],
        );
    }
    app
}

fn start(app: &App) -> Server {
    let mut cmd = hearth();
    cmd.arg("serve")
        .arg(app.root.join("app/wrangler.toml"))
        .arg("--data-dir")
        .arg(&app.data)
        .arg("--test-clock")
        .current_dir(&app.root)
        .env_remove("HEARTH_DATA_DIR")
        .env("HEARTH_ANALYTICS_TOKEN", AE_TOKEN);
    Server::spawn(cmd, Duration::from_secs(180))
}

fn call(server: &Server, method: &str, path: &str, body: Option<&Value>) -> Reply {
    let auth = format!("Bearer {TOKEN}");
    let mut headers = vec![
        ("Authorization", auth.as_str()),
        ("Host", server.addr.as_str()),
    ];
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    if !body.is_empty() {
        headers.push(("Content-Type", "application/json"));
    }
    server.request(method, path, &headers, body.as_bytes())
}

fn get(server: &Server, path: &str) -> Reply {
    call(server, "GET", path, None)
}

fn post(server: &Server, path: &str, body: Value) -> Reply {
    call(server, "POST", path, Some(&body))
}

fn ok(r: Reply, status: u16) -> Value {
    assert_eq!(r.status, status, "{}", r.text());
    r.json()
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

fn approx(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6 * (1.0 + b.abs())
}

// ------------------------------------------------------------------ MCP

fn mcp(server: &Server, session: Option<&str>, body: &Value) -> Reply {
    let auth = format!("Bearer {TOKEN}");
    let mut headers = vec![
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
        ("Accept", "application/json, text/event-stream"),
    ];
    if let Some(s) = session {
        headers.push(("Mcp-Session-Id", s));
    }
    server.request("POST", "/mcp", &headers, body.to_string().as_bytes())
}

#[test]
fn mcp_server_over_streamable_http_with_the_sdk_client() {
    let market = market();
    let agents = [agent("buy"), agent("buy"), agent("sell")];
    let committee = agents
        .iter()
        .map(|a| a.double.url(""))
        .collect::<Vec<_>>()
        .join(",");
    let app = prepare(&[
        ("MARKET_URL", market.double.url("")),
        ("ML_AGENT_URL", agents[0].double.url("")),
        ("COMMITTEE_AGENTS", committee),
        ("MCP_SESSION_IDLE_MS", "2000".into()),
    ]);
    let server = start(&app);
    ok(
        post(
            &server,
            "/api/accounts",
            json!({"id": "alice", "balance": 50000}),
        ),
        201,
    );

    // Bearer auth on /mcp.
    let r = server.request(
        "POST",
        "/mcp",
        &[("Content-Type", "application/json")],
        b"{}",
    );
    assert_eq!(r.status, 401, "{}", r.text());

    // initialize makes a session; everything else needs it.
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-03-26", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}});
    let r = mcp(&server, None, &init);
    assert_eq!(r.status, 200, "{}", r.text());
    let session = r
        .header("mcp-session-id")
        .expect("a session id")
        .to_string();
    let v = r.json();
    assert_eq!(v["result"]["protocolVersion"], "2025-03-26");
    assert_eq!(v["result"]["serverInfo"]["name"], "coinswarm");
    assert!(v["result"]["capabilities"]["tools"].is_object());
    let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    assert_eq!(mcp(&server, Some(&session), &note).status, 202);

    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    let r = mcp(&server, None, &list);
    assert_eq!(r.status, 400, "{}", r.text());
    let r = mcp(&server, Some("no-such-session"), &list);
    assert_eq!(r.status, 404, "{}", r.text());
    let v = ok(mcp(&server, Some(&session), &list), 200);
    let names: Vec<&str> = v["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "get_accounts",
            "get_market_data",
            "get_recent_trades",
            "find_similar_patterns",
            "place_order",
            "ask_committee"
        ]
    );

    // JSON-RPC errors: unknown method, bad params, parse error, bad tool input.
    let v = ok(
        mcp(
            &server,
            Some(&session),
            &json!({"jsonrpc": "2.0", "id": 3, "method": "nope"}),
        ),
        200,
    );
    assert_eq!(v["error"]["code"], -32601);
    let v = ok(
        mcp(
            &server,
            Some(&session),
            &json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "missing"}}),
        ),
        200,
    );
    assert_eq!(v["error"]["code"], -32602);
    // Arguments are checked against the tool's input schema.
    for (args, says) in [
        (json!({}), "arguments.account_id is required"),
        (
            json!({"account_id": "a", "symbol": "BTC-USD", "side": "hold", "quantity": 1}),
            "arguments.side must be one of buy, sell",
        ),
        (
            json!({"account_id": "a", "symbol": "BTC-USD", "side": "buy", "quantity": 0}),
            "arguments.quantity must be greater than 0",
        ),
        (
            json!({"account_id": "a", "symbol": "BTC-USD", "side": "buy", "quantity": 1, "leverage": 10}),
            "arguments.leverage is not an argument",
        ),
    ] {
        let v = ok(
            mcp(
                &server,
                Some(&session),
                &json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call",
                    "params": {"name": "place_order", "arguments": args}}),
            ),
            200,
        );
        assert_eq!(v["error"]["code"], -32602, "{v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(says),
            "{v}"
        );
    }
    let v = ok(
        mcp(
            &server,
            Some(&session),
            &json!({"jsonrpc": "2.0", "id": 10, "method": "resources/read", "params": {"uri": "coinswarm://nothing"}}),
        ),
        200,
    );
    assert_eq!(v["error"]["code"], -32002);
    // A batch is answered with one response per request, in order.
    let v = ok(
        mcp(
            &server,
            Some(&session),
            &json!([{"jsonrpc": "2.0", "id": "a", "method": "ping"},
                    {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1}},
                    {"jsonrpc": "2.0", "id": "b", "method": "resources/list"}]),
        ),
        200,
    );
    let batch = v.as_array().unwrap();
    assert_eq!(
        (batch.len(), &batch[0]["id"], &batch[1]["id"]),
        (2, &json!("a"), &json!("b"))
    );
    assert_eq!(
        batch[1]["result"]["resources"][0]["uri"],
        "coinswarm://accounts"
    );
    let auth = format!("Bearer {TOKEN}");
    let r = server.request(
        "POST",
        "/mcp",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
            ("Mcp-Session-Id", &session),
        ],
        b"{not json",
    );
    assert_eq!(
        (r.status, r.json()["error"]["code"].as_i64()),
        (400, Some(-32700))
    );
    let v = ok(
        mcp(
            &server,
            Some(&session),
            &json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call",
            "params": {"name": "get_market_data", "arguments": {"pair": "DOGE-EUR"}}}),
        ),
        200,
    );
    assert_eq!(v["result"]["isError"], true, "{v}");
    assert!(
        v["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("DOGE-EUR")
    );

    // A call with a progress token, from a client that takes SSE, streams
    // the progress notifications before the result.
    let r = mcp(
        &server,
        Some(&session),
        &json!({"jsonrpc": "2.0", "id": 6, "method": "tools/call",
            "params": {"name": "get_accounts", "arguments": {}, "_meta": {"progressToken": "p1"}}}),
    );
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("text/event-stream")
    );
    let events: Vec<Value> = r
        .text()
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(events.len(), 3, "{}", r.text());
    assert_eq!(events[0]["method"], "notifications/progress");
    assert_eq!(events[0]["params"]["progressToken"], "p1");
    assert_eq!(events[2]["id"], 6);
    assert_eq!(
        events[2]["result"]["structuredContent"]["accounts"][0]["id"],
        "alice"
    );

    // DELETE ends the session.
    let r = server.request(
        "DELETE",
        "/mcp",
        &[("Authorization", &auth), ("Mcp-Session-Id", &session)],
        b"",
    );
    assert_eq!(r.status, 204);
    assert_eq!(mcp(&server, Some(&session), &list).status, 404);

    // A session idle for longer than MCP_SESSION_IDLE_MS is gone.
    let idle = mcp(&server, None, &init);
    let idle = idle.header("mcp-session-id").unwrap().to_string();
    assert_eq!(mcp(&server, Some(&idle), &list).status, 200);
    server.advance_clock(2100);
    let r = mcp(&server, Some(&idle), &list);
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], -32001);

    // The official TypeScript SDK client lists and calls every tool.
    if !web_support::npm_or_skip("the MCP SDK client part") {
        return;
    }
    post(
        &server,
        "/api/patterns",
        json!({"patterns": [
        {"id": "rise", "symbol": "BTC-USD", "regime": "trending_up", "outcome": "up", "prices": [1, 2, 3, 4, 5, 6, 7, 8]},
        {"id": "fall", "symbol": "BTC-USD", "regime": "trending_down", "outcome": "down", "prices": [8, 7, 6, 5, 4, 3, 2, 1]}]}),
    );
    let client = app.root.join("mcp-client");
    copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/coinswarm-mcp"),
        &client,
    );
    web_support::npm(&client, &["ci"]);
    let calls = json!([
        {"name": "get_market_data", "arguments": {"pair": "ETH-USD"}},
        {"name": "get_accounts", "arguments": {}},
        {"name": "place_order", "arguments": {"account_id": "alice", "symbol": "BTC-USD", "side": "buy", "quantity": 2}},
        {"name": "get_recent_trades", "arguments": {"symbol": "BTC-USD", "limit": 5}},
        {"name": "find_similar_patterns", "arguments": {"prices": [10, 11, 12, 13, 15], "top_k": 2}},
        {"name": "ask_committee", "arguments": {"symbol": "SOL-USD"}},
        {"name": "place_order", "arguments": {"account_id": "alice", "symbol": "BTC-USD", "side": "sell", "quantity": 99}}
    ]);
    std::fs::write(client.join("calls.json"), calls.to_string()).unwrap();
    let out = Command::new("node")
        .arg("client.mjs")
        .arg(format!("http://{}", server.addr))
        .arg(TOKEN)
        .arg("calls.json")
        .current_dir(&client)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "MCP client failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["server"]["name"], "coinswarm");
    assert_eq!(v["protocolVersion"], "2025-06-18");
    assert_eq!(v["tools"].as_array().unwrap().len(), 6);
    let results = v["calls"].as_array().unwrap();
    assert_eq!(results[0]["result"]["pair"], "ETH-USD");
    assert!(results[0]["result"]["price"].as_f64().unwrap() > 100.0);
    assert_eq!(results[1]["result"]["accounts"][0]["balance"], 50000.0);
    let order = &results[2]["result"];
    assert_eq!(order["trade"]["side"], "buy");
    assert_eq!(order["position"]["quantity"], 2.0);
    let trades = results[3]["result"]["trades"].as_array().unwrap();
    assert_eq!(trades.len(), 1);
    assert_eq!(trades[0]["id"], order["trade"]["id"]);
    let matches = results[4]["result"]["matches"].as_array().unwrap();
    assert_eq!(
        (matches[0]["id"].as_str(), matches[1]["id"].as_str()),
        (Some("rise"), Some("fall"))
    );
    let votes = &results[5]["result"];
    assert_eq!(
        (
            votes["decision"].as_str(),
            votes["votes"].as_array().unwrap().len()
        ),
        (Some("buy"), 3)
    );
    assert_eq!(results[6]["isError"], true);
    assert!(
        results[6]["result"][0]["text"]
            .as_str()
            .unwrap()
            .contains("insufficient position")
    );
    assert!(results.iter().take(6).all(|r| r["isError"] == false), "{v}");
    let resources: Vec<&str> = v["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert_eq!(
        resources,
        [
            "coinswarm://accounts",
            "coinswarm://market/BTC-USD",
            "coinswarm://market/ETH-USD",
            "coinswarm://market/SOL-USD"
        ]
    );
    assert_eq!(
        v["read"]["accounts"][0]["positions"][0]["symbol"],
        "BTC-USD"
    );
    let progress = v["progress"].as_array().unwrap();
    assert_eq!(progress.len(), 2, "{v}");
    assert_eq!(progress[1]["progress"], 1);
    assert_eq!(v["streamed"]["pair"], "ETH-USD");
}

// ------------------------------------------------------------------ market data

#[test]
fn market_data_is_fetched_upstream_once_per_second_under_load() {
    let market = market();
    let app = prepare(&[
        ("MARKET_URL", market.double.url("")),
        ("MARKET_CACHE_MS", "1000".into()),
    ]);
    let server = start(&app);

    let v = ok(get(&server, "/api/market-data/btc-usd"), 200);
    assert_eq!(
        (v["pair"].as_str(), v["source"].as_str()),
        (Some("BTC-USD"), Some("upstream"))
    );
    assert_eq!(v["price"], 101.0);
    assert_eq!(
        (v["bid"].as_f64(), v["ask"].as_f64()),
        (Some(100.5), Some(101.5))
    );
    let r = get(&server, "/api/market-data/BTC-USD");
    assert_eq!(r.header("x-coinswarm-source"), Some("cache"));
    assert_eq!(r.json()["trade_id"], 1);
    assert_eq!(market.calls("BTC-USD"), 1);

    // Six clients hammer the pair for 2.5 s.
    let run_for = Duration::from_millis(2500);
    let started = Instant::now();
    let barrier = Arc::new(Barrier::new(6));
    let handles: Vec<_> = (0..6)
        .map(|_| {
            let addr = server.addr.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                let t0 = Instant::now();
                let auth = format!("Bearer {TOKEN}");
                let mut n = 0;
                let mut ids = Vec::new();
                while t0.elapsed() < run_for {
                    let r = web_support::http(
                        &addr,
                        "GET",
                        "/api/market-data/BTC-USD",
                        &[("Authorization", &auth)],
                        b"",
                    );
                    assert_eq!(r.status, 200, "{}", r.text());
                    ids.push(r.json()["trade_id"].as_u64().unwrap());
                    n += 1;
                }
                (n, ids)
            })
        })
        .collect();
    let mut total = 0;
    let mut ids = Vec::new();
    for h in handles {
        let (n, i) = h.join().unwrap();
        total += n;
        ids.extend(i);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let calls = market.calls("BTC-USD");
    // One call before the load, then one per second of it (a boundary may add one).
    let most = 2 + elapsed.ceil() as usize;
    assert!(total > 30, "only {total} requests answered");
    assert!(
        (3..=most).contains(&calls),
        "{calls} upstream calls for {total} requests in {elapsed:.2} s"
    );
    ids.sort();
    ids.dedup();
    assert_eq!(
        ids.len(),
        calls,
        "every quote served came from one of the upstream calls"
    );

    // Each pair has its own cache entry; unknown pairs and upstream failures are errors.
    let v = ok(get(&server, "/api/market-data/ETH-USD"), 200);
    assert_eq!(v["trade_id"], 1);
    let r = get(&server, "/api/market-data/DOGE-EUR");
    assert_eq!(r.status, 404);
    assert!(
        r.text().contains("DOGE-EUR is not traded here"),
        "{}",
        r.text()
    );
    assert_eq!(get(&server, "/api/market-data/BTC_USD").status, 400);
    let r = get(&server, "/api/market-data/%E0%A4%A");
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("percent-encoded"), "{}", r.text());
    market.fail.store(true, Ordering::SeqCst);
    let r = get(&server, "/api/market-data/SOL-USD");
    assert_eq!(r.status, 502);
    assert!(r.text().contains("503"), "{}", r.text());
    let r = server.request("GET", "/api/market-data/BTC-USD", &[], b"");
    assert_eq!(r.status, 401);
}

// ------------------------------------------------------------------ trades, analytics, patterns

#[test]
fn trades_analytics_and_patterns_round_trip() {
    let market = market();
    let app = prepare(&[
        ("MARKET_URL", market.double.url("")),
        ("MARKET_CACHE_MS", "50".into()),
    ]);
    let server = start(&app);

    ok(
        post(
            &server,
            "/api/accounts",
            json!({"id": "alice", "name": "Alice", "balance": 10000}),
        ),
        201,
    );
    ok(
        post(
            &server,
            "/api/accounts",
            json!({"id": "bob", "balance": 500}),
        ),
        201,
    );
    assert_eq!(
        post(&server, "/api/accounts", json!({"id": "alice"})).status,
        409
    );
    assert_eq!(
        post(&server, "/api/accounts", json!({"id": "a b"})).status,
        400
    );

    let buy = |account: &str, symbol: &str, side: &str, q: f64| {
        post(
            &server,
            "/api/orders",
            json!({"account_id": account, "symbol": symbol, "side": side, "quantity": q}),
        )
    };
    let mut d1_pnl = 0.0;
    let mut placed = Vec::new();
    for (account, symbol, side, q) in [
        ("alice", "BTC-USD", "buy", 10.0),
        ("alice", "BTC-USD", "sell", 4.0),
        ("alice", "ETH-USD", "buy", 3.0),
        ("bob", "BTC-USD", "buy", 1.0),
        ("alice", "BTC-USD", "sell", 6.0),
    ] {
        std::thread::sleep(Duration::from_millis(60)); // a new quote per order
        let v = ok(buy(account, symbol, side, q), 201);
        let t = &v["trade"];
        let price = t["price"].as_f64().unwrap();
        let fee = t["fee"].as_f64().unwrap();
        assert!(approx(fee, price * q * 0.001), "{v}");
        d1_pnl += t["pnl"].as_f64().unwrap();
        placed.push(v);
    }
    // Realised P&L of a sell is (price - average cost) * quantity - fee.
    let first_buy = placed[0]["trade"]["price"].as_f64().unwrap();
    let sell = &placed[1]["trade"];
    let expected =
        (sell["price"].as_f64().unwrap() - first_buy) * 4.0 - sell["fee"].as_f64().unwrap();
    assert!(approx(sell["pnl"].as_f64().unwrap(), expected), "{sell}");
    assert_eq!(placed[4]["position"]["quantity"], 0.0);

    // Refusals change nothing.
    let r = buy("bob", "BTC-USD", "buy", 100.0);
    assert_eq!(r.status, 422);
    assert!(r.text().contains("insufficient balance"), "{}", r.text());
    let r = buy("alice", "ETH-USD", "sell", 3.5);
    assert_eq!(r.status, 422);
    assert!(r.text().contains("insufficient position"), "{}", r.text());
    assert_eq!(buy("carol", "BTC-USD", "buy", 1.0).status, 404);
    assert_eq!(buy("alice", "BTC-USD", "short", 1.0).status, 400);
    assert_eq!(buy("alice", "BTC-USD", "buy", -1.0).status, 400);
    let r = call(&server, "POST", "/api/orders", None);
    assert_eq!(r.status, 400);

    // Concurrent buys cannot overdraw: carol can pay for two or three of six.
    ok(
        post(
            &server,
            "/api/accounts",
            json!({"id": "carol", "balance": 1000}),
        ),
        201,
    );
    let filled: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..6)
            .map(|_| s.spawn(|| buy("carol", "ETH-USD", "buy", 3.0).status))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let ok_count = filled.iter().filter(|s| **s == 201).count();
    assert!(filled.iter().all(|s| *s == 201 || *s == 422), "{filled:?}");
    assert!((2..=3).contains(&ok_count), "{filled:?}");
    let v = ok(get(&server, "/api/trades?account=carol"), 200);
    let carol_trades = v["trades"].as_array().unwrap();
    assert_eq!(carol_trades.len(), ok_count);
    let paid: f64 = carol_trades
        .iter()
        .map(|t| t["price"].as_f64().unwrap() * 3.0 + t["fee"].as_f64().unwrap())
        .sum();
    let v = ok(get(&server, "/api/accounts"), 200);
    let carol = v["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == "carol")
        .unwrap()
        .clone();
    assert!(carol["balance"].as_f64().unwrap() >= 0.0, "{carol}");
    assert!(
        approx(carol["balance"].as_f64().unwrap(), 1000.0 - paid),
        "{carol}"
    );
    assert_eq!(carol["positions"][0]["quantity"], 3.0 * ok_count as f64);
    d1_pnl += carol_trades
        .iter()
        .map(|t| t["pnl"].as_f64().unwrap())
        .sum::<f64>();

    // A retried order with the same client_order_id is filled once.
    let order = json!({"account_id": "bob", "symbol": "SOL-USD", "side": "buy", "quantity": 1, "client_order_id": "retry-1"});
    let first = ok(post(&server, "/api/orders", order.clone()), 201);
    let again = ok(post(&server, "/api/orders", order), 201);
    assert_eq!(again["replayed"], true);
    assert_eq!(first["trade"]["id"], again["trade"]["id"]);
    d1_pnl += first["trade"]["pnl"].as_f64().unwrap();

    let accounts = ok(get(&server, "/api/accounts"), 200);
    let alice = &accounts["accounts"][0];
    assert_eq!(alice["id"], "alice");
    let eth: Vec<&Value> = alice["positions"].as_array().unwrap().iter().collect();
    assert_eq!(eth.len(), 1, "{alice}");
    assert_eq!(eth[0]["symbol"], "ETH-USD");
    assert_eq!(eth[0]["quantity"], 3.0);
    let bob = &accounts["accounts"][1];
    let spent: f64 = [&placed[3], &first]
        .iter()
        .map(|v| {
            v["trade"]["price"].as_f64().unwrap() * v["trade"]["quantity"].as_f64().unwrap()
                + v["trade"]["fee"].as_f64().unwrap()
        })
        .sum();
    assert!(
        approx(bob["balance"].as_f64().unwrap(), 500.0 - spent),
        "{bob}"
    );

    // Recent trades, newest first, by symbol with a limit.
    let v = ok(get(&server, "/api/trades?symbol=BTC-USD&limit=2"), 200);
    let ids: Vec<&Value> = v["trades"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| &t["id"])
        .collect();
    assert_eq!(ids, [&placed[4]["trade"]["id"], &placed[3]["trade"]["id"]]);
    let v = ok(get(&server, "/api/trades?symbol=BTC-USD"), 200);
    assert_eq!(v["trades"].as_array().unwrap().len(), 4);
    let v = ok(get(&server, "/api/trades?account=bob"), 200);
    assert_eq!(v["trades"].as_array().unwrap().len(), 2);
    assert_eq!(get(&server, "/api/trades?limit=0").status, 400);
    assert_eq!(get(&server, "/api/trades?symbol=nope").status, 400);

    // The same trades through Analytics Engine's SQL API.
    let pnl = eventually(
        "trades in Analytics Engine",
        Duration::from_secs(10),
        || {
            let v = ok(get(&server, "/api/analytics/pnl?window=1h"), 200);
            (v["trades"] == (6 + ok_count) as f64).then_some(v)
        },
    );
    assert!(
        approx(pnl["total_pnl"].as_f64().unwrap(), d1_pnl),
        "{pnl} vs {d1_pnl}"
    );
    let by: Vec<&str> = pnl["by_symbol"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["symbol"].as_str().unwrap())
        .collect();
    assert_eq!(by, ["BTC-USD", "ETH-USD", "SOL-USD"]);
    let v = ok(
        get(&server, "/api/analytics/pnl?window=15m&account=bob"),
        200,
    );
    assert_eq!(v["trades"], 2.0);
    let r = get(&server, "/api/analytics/pnl?window=1y");
    assert_eq!(r.status, 400);
    assert!(r.text().contains("window must be like"), "{}", r.text());
    assert_eq!(get(&server, "/api/analytics/pnl?window=93d").status, 400);

    // Patterns: nearest first, metadata filters applied before topK.
    let up = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0];
    let patterns = json!({"patterns": [
        {"id": "btc-rise", "symbol": "BTC-USD", "regime": "trending_up", "outcome": "up", "prices": up},
        {"id": "btc-rise-bumpy", "symbol": "BTC-USD", "regime": "volatile", "outcome": "up", "prices": [1, 3, 2, 4, 3, 6, 5, 8]},
        {"id": "btc-fall", "symbol": "BTC-USD", "regime": "trending_down", "outcome": "down", "prices": [8, 7, 6, 5, 4, 3, 2, 1]},
        {"id": "eth-rise", "symbol": "ETH-USD", "regime": "trending_up", "outcome": "up", "prices": [10, 20, 30, 40, 50, 60, 70, 85]},
        {"id": "eth-range", "symbol": "ETH-USD", "regime": "ranging", "outcome": "flat", "prices": [5, 6, 5, 6, 5, 6, 5, 6]}
    ]});
    let v = ok(post(&server, "/api/patterns", patterns), 200);
    assert_eq!(v["upserted"], 5);
    let query = |extra: Value| {
        let mut body = json!({"prices": [100, 101, 102, 103, 104, 105, 106, 107.5], "top_k": 5});
        for (k, val) in extra.as_object().unwrap() {
            body[k] = val.clone();
        }
        let v = ok(post(&server, "/api/patterns/similar", body), 200);
        v["matches"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let all = query(json!({}));
    assert_eq!(all.len(), 5);
    assert_eq!(&all[..2], ["eth-rise", "btc-rise"]);
    assert_eq!(all[4], "btc-fall");
    assert_eq!(
        query(json!({"symbol": "BTC-USD"})),
        ["btc-rise", "btc-rise-bumpy", "btc-fall"]
    );
    assert_eq!(
        query(json!({"symbol": "BTC-USD", "outcome": "up", "top_k": 1})),
        ["btc-rise"]
    );
    assert_eq!(
        query(json!({"regime": ["ranging", "trending_down"]})),
        ["eth-range", "btc-fall"]
    );
    let v = ok(
        post(
            &server,
            "/api/patterns/similar",
            json!({"prices": up, "outcome": "down"}),
        ),
        200,
    );
    assert_eq!(v["matches"][0]["regime"], "trending_down");
    assert!(v["matches"][0]["score"].as_f64().unwrap() < -0.99);
    // Upsert replaces.
    ok(
        post(
            &server,
            "/api/patterns",
            json!({"id": "btc-fall", "symbol": "BTC-USD", "regime": "trending_up", "outcome": "up", "prices": up}),
        ),
        200,
    );
    assert_eq!(
        query(json!({"symbol": "BTC-USD", "outcome": "down"})),
        Vec::<String>::new()
    );
    for (body, says) in [
        (json!({"prices": [1, 1, 1, 1]}), "flat"),
        (json!({"prices": [1]}), "prices must be an array"),
        (json!({"prices": [1, "x"]}), "prices[1]"),
        (json!({"prices": [1, 2], "top_k": 51}), "top_k"),
        (
            json!({"prices": [1, 2], "regime": "sideways"}),
            "regime must be one of",
        ),
    ] {
        let r = post(&server, "/api/patterns/similar", body);
        assert_eq!(r.status, 400, "{}", r.text());
        assert!(r.text().contains(says), "{} lacks {says}", r.text());
    }
}

// ------------------------------------------------------------------ live sessions

fn events(ws: &mut TcpStream, n: usize) -> Vec<Value> {
    (0..n)
        .map(|_| serde_json::from_str(&ws_text(ws).expect("a message")).unwrap())
        .collect()
}

#[test]
fn live_session_streams_ticks_and_fills_and_resumes_without_gaps() {
    let market = market();
    let app = prepare(&[
        ("MARKET_URL", market.double.url("")),
        ("MARKET_CACHE_MS", "50".into()),
        ("TICK_INTERVAL_MS", "100".into()),
    ]);
    let server = start(&app);
    ok(
        post(
            &server,
            "/api/accounts",
            json!({"id": "alice", "balance": 100000}),
        ),
        201,
    );
    let auth = format!("Authorization: Bearer {TOKEN}\r\n");

    let r = get(&server, "/api/sessions/nobody/ws");
    assert_eq!(r.status, 404);
    let r = server.request("GET", "/api/sessions/alice/ws", &[], b"");
    assert_eq!(r.status, 401);

    // A watcher stays connected throughout, so the feed keeps running.
    let mut watcher = ws_connect(&server.addr, "/api/sessions/alice/ws?pairs=BTC-USD", &auth);
    let hello: Value = serde_json::from_str(&ws_text(&mut watcher).unwrap()).unwrap();
    assert_eq!(
        (hello["type"].as_str(), hello["last_seq"].as_u64()),
        (Some("hello"), Some(0))
    );

    let mut client = ws_connect(
        &server.addr,
        "/api/sessions/alice/ws?pairs=BTC-USD&since=0",
        &auth,
    );
    let hello: Value = serde_json::from_str(&ws_text(&mut client).unwrap()).unwrap();
    assert_eq!(hello["type"], "hello");
    let mut seen: Vec<Value> = Vec::new();
    let t0 = Instant::now();
    seen.extend(events(&mut client, 12));
    let took = t0.elapsed();
    assert!(
        seen.iter()
            .all(|e| e["type"] == "tick" && e["pair"] == "BTC-USD"),
        "{seen:?}"
    );
    // At most 10 updates a second.
    assert!(took >= Duration::from_millis(1000), "12 ticks in {took:?}");

    // An order's fill reaches the session's sockets.
    ok(
        post(
            &server,
            "/api/orders",
            json!({"account_id": "alice", "symbol": "BTC-USD", "side": "buy", "quantity": 1}),
        ),
        201,
    );
    let fill = eventually("the fill", Duration::from_secs(10), || {
        let e: Value = serde_json::from_str(&ws_text(&mut client).unwrap()).unwrap();
        seen.push(e.clone());
        (e["type"] == "fill").then_some(e)
    });
    assert_eq!(fill["trade"]["quantity"], 1.0);
    assert_eq!(fill["position"]["quantity"], 1.0);

    // Disconnect; ticks and another fill happen meanwhile.
    let last = seen.last().unwrap()["seq"].as_u64().unwrap();
    drop(client);
    std::thread::sleep(Duration::from_millis(400));
    ok(
        post(
            &server,
            "/api/orders",
            json!({"account_id": "alice", "symbol": "BTC-USD", "side": "sell", "quantity": 1}),
        ),
        201,
    );
    std::thread::sleep(Duration::from_millis(300));

    let mut client = ws_connect(
        &server.addr,
        &format!("/api/sessions/alice/ws?pairs=BTC-USD&since={last}"),
        &auth,
    );
    let mut resumed = Vec::new();
    loop {
        let e: Value = serde_json::from_str(&ws_text(&mut client).unwrap()).unwrap();
        if e["type"] == "hello" {
            assert_eq!(e["replayed"].as_u64().unwrap() as usize, resumed.len());
            break;
        }
        resumed.push(e);
    }
    assert!(resumed.len() >= 5, "{resumed:?}");
    resumed.extend(events(&mut client, 5));
    seen.extend(resumed.iter().cloned());
    let seqs: Vec<u64> = seen.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    let expected: Vec<u64> = (seqs[0]..seqs[0] + seqs.len() as u64).collect();
    assert_eq!(seqs, expected, "sequence numbers with a gap or a repeat");
    assert!(
        resumed
            .iter()
            .any(|e| e["type"] == "fill" && e["trade"]["side"] == "sell"),
        "{resumed:?}"
    );
    // Ticks carry the upstream's prices in order.
    let ids: Vec<f64> = seen
        .iter()
        .filter(|e| e["type"] == "tick")
        .map(|e| e["price"].as_f64().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");

    let r = get(
        &server,
        &format!(
            "/api/sessions/alice/ws?since={}",
            seqs.last().unwrap() + 1000
        ),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    drop(watcher);
}

// ------------------------------------------------------------------ ML path

fn predict(server: &Server, symbol: &str) -> Reply {
    post(server, "/api/predict", json!({"symbol": symbol}))
}

#[test]
fn breaker_opens_on_failures_probes_half_open_and_closes_on_recovery() {
    let market = market();
    let agents = [agent("buy"), agent("buy"), agent("sell")];
    let committee = agents
        .iter()
        .map(|a| a.double.url(""))
        .collect::<Vec<_>>()
        .join(",");
    let app = prepare(&[
        ("MARKET_URL", market.double.url("")),
        ("ML_AGENT_URL", agents[0].double.url("")),
        ("COMMITTEE_AGENTS", committee),
        ("PREDICT_CACHE_MS", "700".into()),
        ("AGENT_TIMEOUT_MS", "300".into()),
        ("BREAKER_FAILURES", "3".into()),
        ("BREAKER_COOLDOWN_MS", "1500".into()),
        ("COMMITTEE_QUORUM", "2".into()),
        ("COMMITTEE_DEADLINE_MS", "800".into()),
    ]);
    let server = start(&app);
    let a = &agents[0];
    let calls = || a.double.requests("/predict").len();

    let v = ok(predict(&server, "BTC-USD"), 200);
    assert_eq!(
        (
            v["direction"].as_str(),
            v["cached"].as_bool(),
            v["stale"].as_bool()
        ),
        (Some("up"), Some(false), Some(false))
    );
    let v = ok(predict(&server, "BTC-USD"), 200);
    assert_eq!(v["cached"], true);
    assert_eq!(calls(), 1);

    // Three failures (one a timeout) open the breaker; each answer is the
    // last prediction, marked stale.
    server.advance_clock(750);
    for (i, mode) in [FAIL, HANG, FAIL].into_iter().enumerate() {
        a.mode.store(mode, Ordering::SeqCst);
        let t = Instant::now();
        let r = predict(&server, "BTC-USD");
        assert!(
            t.elapsed() < Duration::from_millis(1200),
            "a hung agent held the request {:?}",
            t.elapsed()
        );
        let v = ok(r, 200);
        assert_eq!(
            (v["stale"].as_bool(), v["direction"].as_str()),
            (Some(true), Some("up")),
            "{v}"
        );
        assert_eq!(v["breaker"], if i < 2 { "closed" } else { "open" }, "{v}");
    }
    assert_eq!(calls(), 4);
    let v = ok(get(&server, "/api/ml/breaker"), 200);
    assert_eq!(
        (v["state"].as_str(), v["failures"].as_u64()),
        (Some("open"), Some(3))
    );

    // Open: no calls reach the agent; without a cached prediction, 503.
    let r = predict(&server, "BTC-USD");
    assert_eq!(r.header("x-coinswarm-breaker"), Some("open"));
    assert!(
        r.json()["reason"]
            .as_str()
            .unwrap()
            .contains("circuit open")
    );
    let r = predict(&server, "ETH-USD");
    assert_eq!(r.status, 503);
    assert!(r.text().contains("circuit open"), "{}", r.text());
    assert_eq!(calls(), 4);

    // After the cool-down one probe goes through; it fails, so open again.
    server.advance_clock(1600);
    assert_eq!(
        ok(get(&server, "/api/ml/breaker"), 200)["state"],
        "half_open"
    );
    let v = ok(predict(&server, "BTC-USD"), 200);
    assert_eq!(
        (v["stale"].as_bool(), v["breaker"].as_str()),
        (Some(true), Some("open"))
    );
    assert_eq!(calls(), 5);
    ok(predict(&server, "BTC-USD"), 200);
    assert_eq!(calls(), 5);

    // The agent recovers: the next probe closes the breaker.
    a.mode.store(OK, Ordering::SeqCst);
    server.advance_clock(1600);
    let v = ok(predict(&server, "ETH-USD"), 200);
    assert_eq!(
        (
            v["stale"].as_bool(),
            v["cached"].as_bool(),
            v["breaker"].as_str()
        ),
        (Some(false), Some(false), Some("closed"))
    );
    assert_eq!(calls(), 6);
    let v = ok(get(&server, "/api/ml/breaker"), 200);
    assert_eq!(
        (v["state"].as_str(), v["failures"].as_u64()),
        (Some("closed"), Some(0))
    );
    assert_eq!(ok(predict(&server, "BTC-USD"), 200)["stale"], false);
    let calls_before = calls();
    let v = ok(
        post(
            &server,
            "/api/predict",
            json!({"symbol": "BTC-USD", "max_age_ms": 0}),
        ),
        200,
    );
    assert_eq!(
        (v["cached"].as_bool(), calls()),
        (Some(false), calls_before + 1)
    );
    let r = post(
        &server,
        "/api/predict",
        json!({"symbol": "BTC-USD", "max_age_ms": -1}),
    );
    assert_eq!(r.status, 400);

    // Committee: votes within the deadline count; a late one does not.
    agents[2].vote_delay_ms.store(3000, Ordering::SeqCst);
    let t = Instant::now();
    let v = ok(
        post(&server, "/api/committee", json!({"symbol": "BTC-USD"})),
        200,
    );
    assert!(
        t.elapsed() < Duration::from_millis(2500),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(
        (v["decision"].as_str(), v["quorum_met"].as_bool()),
        (Some("buy"), Some(true))
    );
    assert_eq!(v["votes"].as_array().unwrap().len(), 2);
    assert_eq!(v["late"], json!([agents[2].double.url("")]));
    // One agent failing and one late: no quorum.
    agents[1].mode.store(FAIL, Ordering::SeqCst);
    let r = post(&server, "/api/committee", json!({"symbol": "BTC-USD"}));
    assert_eq!(r.status, 503, "{}", r.text());
    let v = r.json();
    assert_eq!(
        (v["quorum_met"].as_bool(), v["decision"].is_null()),
        (Some(false), true)
    );
    assert_eq!(v["failed"][0]["agent"], agents[1].double.url(""));
    assert_eq!(
        post(&server, "/api/committee", json!({"symbol": "XRP-USD"})).status,
        404
    );
}

#[test]
fn kill_9_during_a_backtest_loses_no_task_and_no_trade() {
    let market = market();
    let ml = agent("hold");
    let app = prepare(&[
        ("MARKET_URL", market.double.url("")),
        ("ML_AGENT_URL", ml.double.url("")),
    ]);
    let server = start(&app);
    ok(
        post(
            &server,
            "/api/accounts",
            json!({"id": "alice", "balance": 100000}),
        ),
        201,
    );
    let trade = ok(
        post(
            &server,
            "/api/orders",
            json!({"account_id": "alice", "symbol": "ETH-USD", "side": "buy", "quantity": 2}),
        ),
        201,
    );

    // A finished job first.
    let v = ok(
        post(
            &server,
            "/api/backtests",
            json!({"symbol": "BTC-USD", "strategy": "momentum", "params": {"lookback": 20}}),
        ),
        202,
    );
    let done_id = v["id"].as_str().unwrap().to_string();
    let v = eventually("the first backtest", Duration::from_secs(20), || {
        let v = ok(get(&server, &format!("/api/backtests/{done_id}")), 200);
        (v["status"] == "done").then_some(v)
    });
    assert_eq!(
        (
            v["result"]["sharpe"].as_f64(),
            v["params"]["lookback"].as_u64()
        ),
        (Some(1.42), Some(20))
    );
    assert_eq!(
        post(
            &server,
            "/api/backtests",
            json!({"symbol": "BTC-USD", "strategy": "Bad Name"})
        )
        .status,
        400
    );

    // A job the agent fails is retried (after the consumer's backoff) and then done.
    ml.mode.store(FAIL, Ordering::SeqCst);
    let v = ok(
        post(
            &server,
            "/api/backtests",
            json!({"symbol": "ETH-USD", "strategy": "breakout"}),
        ),
        202,
    );
    let retried = v["id"].as_str().unwrap().to_string();
    let v = eventually(
        "the failed attempt recorded",
        Duration::from_secs(20),
        || {
            let v = ok(get(&server, &format!("/api/backtests/{retried}")), 200);
            (v["error"].is_string()).then_some(v)
        },
    );
    assert_eq!(v["status"], "queued", "{v}");
    assert!(v["error"].as_str().unwrap().contains("500"), "{v}");
    ml.mode.store(OK, Ordering::SeqCst);
    let v = eventually("the retried job", Duration::from_secs(30), || {
        let v = ok(get(&server, &format!("/api/backtests/{retried}")), 200);
        (v["status"] == "done").then_some(v)
    });
    assert_eq!(
        (v["attempts"].as_u64(), v["error"].is_null()),
        (Some(2), true),
        "{v}"
    );

    // The agent holds the next job; the server is killed while it runs.
    ml.hold.store(true, Ordering::SeqCst);
    let v = ok(
        post(
            &server,
            "/api/backtests",
            json!({"symbol": "SOL-USD", "strategy": "mean_reversion"}),
        ),
        202,
    );
    let id = v["id"].as_str().unwrap().to_string();
    eventually(
        "the agent to receive the job",
        Duration::from_secs(20),
        || {
            ml.double
                .requests("/backtest")
                .iter()
                .any(|r| r.body.contains(&id))
                .then_some(())
        },
    );
    let v = ok(get(&server, &format!("/api/backtests/{id}")), 200);
    assert_eq!(v["status"], "running");
    server.kill9();
    ml.hold.store(false, Ordering::SeqCst);

    let server = start(&app);
    let v = eventually(
        "the job to run again and finish",
        Duration::from_secs(30),
        || {
            let v = ok(get(&server, &format!("/api/backtests/{id}")), 200);
            (v["status"] == "done").then_some(v)
        },
    );
    assert_eq!(v["result"]["id"], id.as_str());
    assert!(v["attempts"].as_u64().unwrap() >= 2, "{v}");
    let runs = ml
        .double
        .requests("/backtest")
        .iter()
        .filter(|r| r.body.contains(&id))
        .count();
    assert!(runs >= 2, "{runs}");
    // The first job is not run again, and the trade is still there.
    let first_runs = ml
        .double
        .requests("/backtest")
        .iter()
        .filter(|r| r.body.contains(&done_id))
        .count();
    assert_eq!(first_runs, 1);
    let v = ok(get(&server, "/api/trades?account=alice"), 200);
    assert_eq!(v["trades"][0]["id"], trade["trade"]["id"]);
    let v = ok(get(&server, "/api/accounts"), 200);
    assert_eq!(v["accounts"][0]["positions"][0]["quantity"], 2.0);
}
