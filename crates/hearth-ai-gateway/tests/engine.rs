//! The engine against the provider double on loopback: caching, retries,
//! fallback, the breaker, limits, budgets, logs, streaming, DLP and
//! cancellation. Time is a ManualClock; retry waits are recorded, not slept.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use hearth_ai_gateway::breaker::BreakerState;
use hearth_ai_gateway::double::{ProviderDouble, Script};
use hearth_ai_gateway::semantic::PromptEmbedder;
use hearth_ai_gateway::{
    GatewayFile, GatewayOptions, GatewayRequest, GatewayResponse, Gateways, Sleeper,
};
use hearth_core::ManualClock;
use http::{HeaderMap, HeaderValue, Method};
use http_body_util::BodyExt;
use serde_json::{Value, json};

#[derive(Debug, Default)]
struct Recorder(Mutex<Vec<u64>>);

impl Sleeper for Recorder {
    fn sleep(&self, ms: u64) -> Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        self.0.lock().unwrap().push(ms);
        Box::pin(async {})
    }
}

struct Env {
    double: ProviderDouble,
    gateways: Gateways,
    clock: ManualClock,
    sleeps: Arc<Recorder>,
    dir: tempfile::TempDir,
    file: GatewayFile,
}

fn open(
    file: &GatewayFile,
    dir: &std::path::Path,
    clock: &ManualClock,
    sleeps: &Arc<Recorder>,
) -> Gateways {
    Gateways::open(
        file.clone(),
        GatewayOptions {
            clock: clock.shared(),
            sleeper: sleeps.clone(),
            logs_path: Some(dir.join("logs.sqlite")),
            state_dir: Some(dir.to_path_buf()),
            embedder: Some(Arc::new(Words)),
        },
    )
    .unwrap()
}

/// A stand-in embedding model: words hashed into 256 dimensions, so
/// prompts sharing most words are close and the test knows how close
/// (cosine of two word sets = shared / sqrt(|a| * |b|)).
#[derive(Debug)]
struct Words;

impl PromptEmbedder for Words {
    fn dimensions(&self) -> usize {
        256
    }

    fn embed(&self, text: &str) -> Result<Vec<f32>, String> {
        let mut v = vec![0f32; 256];
        // Only the user's words: the role labels are the same everywhere.
        let text = text.to_lowercase();
        for w in text
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty() && *w != "user")
        {
            let h = w
                .bytes()
                .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
            v[(h % 256) as usize] = 1.0;
        }
        Ok(v)
    }
}

/// The gateways closed and opened again on the same files, as a restart.
fn restart(e: &mut Env) {
    e.gateways.flush_state().unwrap();
    e.gateways = open(&e.file, e.dir.path(), &e.clock, &e.sleeps);
}

const START_MS: u64 = 1_800_000_000_000;

async fn env(gateway_toml: &str) -> Env {
    let double = ProviderDouble::start().await.unwrap();
    let text = format!(
        r#"
{gateway_toml}

[providers.openai]
base_url = "{}"

[providers.anthropic]
base_url = "{}"

[providers.broken]
base_url = "http://127.0.0.1:1"

[[prices]]
model = "gpt-test"
input = 0.0
output = 1000000.0
"#,
        double.openai_url(),
        double.anthropic_url()
    );
    let file = GatewayFile::parse(&text, "gateways.toml").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(START_MS);
    let sleeps = Arc::new(Recorder::default());
    let gateways = open(&file, dir.path(), &clock, &sleeps);
    Env {
        double,
        gateways,
        clock,
        sleeps,
        dir,
        file,
    }
}

fn chat(model: &str, stream: bool, headers: &[(&str, &str)]) -> GatewayRequest {
    let mut h = HeaderMap::new();
    h.insert(
        "authorization",
        HeaderValue::from_static("Bearer sk-tenant-a-SECRET"),
    );
    h.insert("content-type", HeaderValue::from_static("application/json"));
    for (k, v) in headers {
        h.insert(
            http::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    GatewayRequest {
        provider: "openai".into(),
        path: "chat/completions".into(),
        method: Method::POST,
        headers: h,
        body: Bytes::from(
            json!({ "model": model, "stream": stream,
                "messages": [{ "role": "user", "content": "hi" }] })
            .to_string(),
        ),
    }
}

async fn run(e: &Env, gw: &str, req: GatewayRequest) -> (GatewayResponse, Bytes) {
    let mut r = e.gateways.get(gw).unwrap().run(req).await;
    let body = std::mem::replace(
        &mut r.body,
        http_body_util::Empty::new().map_err(|n| match n {}).boxed(),
    );
    let bytes = body.collect().await.unwrap().to_bytes();
    (r, bytes)
}

fn h<'r>(r: &'r GatewayResponse, name: &str) -> Option<&'r str> {
    r.headers.get(name).and_then(|v| v.to_str().ok())
}

fn logs(e: &Env, gw: &str, filters: &[&str]) -> Vec<Value> {
    e.gateways.flush_logs().unwrap();
    let conn = hearth_ai_gateway::logs::open_file(&e.dir.path().join("logs.sqlite")).unwrap();
    let filters: Vec<String> = filters.iter().map(|s| s.to_string()).collect();
    hearth_ai_gateway::logs::query(&conn, gw, &filters, 1000).unwrap()
}

#[tokio::test]
async fn cache_hit_miss_and_ttl_by_the_clock() {
    let e = env("[[gateways]]\nid = \"g\"\ncache_ttl = 60\n").await;
    let (r, first) = run(&e, "g", chat("gpt-test", false, &[])).await;
    assert_eq!(r.status, 200);
    assert_eq!(h(&r, "cf-aig-cache-status"), Some("MISS"));
    let (r, again) = run(&e, "g", chat("gpt-test", false, &[])).await;
    assert_eq!(h(&r, "cf-aig-cache-status"), Some("HIT"));
    assert_eq!(first, again);
    assert_eq!(e.double.requests(), 1);
    // A per-request TTL shorter than the default: stored for 5 s.
    let (r, _) = run(&e, "g", chat("other", false, &[("cf-aig-cache-ttl", "5")])).await;
    assert_eq!(h(&r, "cf-aig-cache-status"), Some("MISS"));
    e.clock.advance_secs(4);
    let (r, _) = run(&e, "g", chat("other", false, &[])).await;
    assert_eq!(h(&r, "cf-aig-cache-status"), Some("HIT"));
    e.clock.advance_secs(1);
    let (r, _) = run(&e, "g", chat("other", false, &[])).await;
    assert_eq!(h(&r, "cf-aig-cache-status"), Some("MISS"));
    // The default TTL ends after 60 s.
    e.clock.advance_secs(55);
    let (r, _) = run(&e, "g", chat("gpt-test", false, &[])).await;
    assert_eq!(h(&r, "cf-aig-cache-status"), Some("MISS"));
    let cached = logs(&e, "g", &["cached=true"]);
    assert_eq!(cached.len(), 2);
    assert_eq!(cached[0]["cost"], 0.0, "a cache hit costs nothing");
}

#[tokio::test]
async fn skip_custom_key_and_credentials_in_the_key() {
    let e = env("[[gateways]]\nid = \"g\"\ncache_ttl = 60\n").await;
    run(&e, "g", chat("gpt-test", false, &[])).await;
    let (r, _) = run(
        &e,
        "g",
        chat("gpt-test", false, &[("cf-aig-skip-cache", "true")]),
    )
    .await;
    assert_eq!(h(&r, "cf-aig-cache-status"), Some("BYPASS"));
    assert_eq!(e.double.requests(), 2);
    // Another tenant's credentials never read tenant A's answer.
    let (r, _) = run(
        &e,
        "g",
        chat(
            "gpt-test",
            false,
            &[("authorization", "Bearer sk-tenant-b")],
        ),
    )
    .await;
    assert_eq!(h(&r, "cf-aig-cache-status"), Some("MISS"));
    assert_eq!(e.double.requests(), 3);
    // A custom key answers different bodies alike.
    let (r, _) = run(&e, "g", chat("m1", false, &[("cf-aig-cache-key", "k1")])).await;
    assert_eq!(h(&r, "cf-aig-cache-status"), Some("MISS"));
    let (r, body) = run(&e, "g", chat("m2", false, &[("cf-aig-cache-key", "k1")])).await;
    assert_eq!(h(&r, "cf-aig-cache-status"), Some("HIT"));
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["model"], "m1");
    // Bad control headers are refused by name.
    let (r, body) = run(&e, "g", chat("m", false, &[("cf-aig-cache-ttl", "soon")])).await;
    assert_eq!(r.status, 400);
    assert!(String::from_utf8_lossy(&body).contains("cf-aig-cache-ttl"));
}

#[tokio::test]
async fn streamed_answers_pass_through_and_are_cached_and_replayed() {
    let e = env("[[gateways]]\nid = \"g\"\ncache_ttl = 60\n").await;
    e.double.script(&[Script::Pace(100)]);
    let mut r = e
        .gateways
        .get("g")
        .unwrap()
        .run(chat("gpt-test", true, &[]))
        .await;
    assert_eq!(h(&r, "content-type"), Some("text/event-stream"));
    // The first event arrives while the provider is still sending.
    let first = r.body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("Hello"));
    assert_eq!(
        e.double
            .state
            .streams_completed
            .load(std::sync::atomic::Ordering::SeqCst),
        0
    );
    let mut whole = first.to_vec();
    while let Some(f) = r.body.frame().await {
        whole.extend_from_slice(&f.unwrap().into_data().unwrap());
    }
    assert!(String::from_utf8_lossy(&whole).ends_with("data: [DONE]\n\n"));
    // Replayed from the cache as the same stream, event by event.
    let mut r = e
        .gateways
        .get("g")
        .unwrap()
        .run(chat("gpt-test", true, &[]))
        .await;
    assert_eq!(h(&r, "cf-aig-cache-status"), Some("HIT"));
    assert_eq!(h(&r, "content-type"), Some("text/event-stream"));
    let mut frames = 0;
    let mut replay = Vec::new();
    while let Some(f) = r.body.frame().await {
        frames += 1;
        replay.extend_from_slice(&f.unwrap().into_data().unwrap());
    }
    assert_eq!(replay, whole);
    assert_eq!(frames, 5);
    assert_eq!(e.double.requests(), 1);
    let log = &logs(&e, "g", &["cached=false"])[0];
    assert_eq!(
        (log["tokens_out"].as_i64(), log["cost"].as_f64()),
        (Some(3), Some(3.0))
    );
}

#[tokio::test]
async fn retries_back_off_as_asked() {
    let e = env("[[gateways]]\nid = \"g\"\n").await;
    e.double.script(&[
        Script::Status(500),
        Script::Status(503),
        Script::Status(429),
    ]);
    let (r, _) = run(
        &e,
        "g",
        chat(
            "gpt-test",
            false,
            &[
                ("cf-aig-max-attempts", "4"),
                ("cf-aig-retry-delay", "100"),
                ("cf-aig-backoff", "exponential"),
            ],
        ),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(e.double.requests(), 4);
    assert_eq!(*e.sleeps.0.lock().unwrap(), vec![100, 200, 400]);
    e.sleeps.0.lock().unwrap().clear();
    e.double.script(&[Script::Status(500), Script::Status(500)]);
    let (r, _) = run(
        &e,
        "g",
        chat(
            "gpt-test",
            false,
            &[
                ("cf-aig-max-attempts", "2"),
                ("cf-aig-retry-delay", "250"),
                ("cf-aig-backoff", "linear"),
            ],
        ),
    )
    .await;
    assert_eq!(r.status, 500, "the last failure is answered");
    assert_eq!(*e.sleeps.0.lock().unwrap(), vec![250]);
    assert_eq!(logs(&e, "g", &["status=500"])[0]["attempts"], 2);
    // A client error is the provider's answer, not retried.
    e.double.script(&[Script::Status(400)]);
    let before = e.double.requests();
    let (r, _) = run(
        &e,
        "g",
        chat("gpt-test", false, &[("cf-aig-max-attempts", "3")]),
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(e.double.requests(), before + 1);
    let (r, _) = run(
        &e,
        "g",
        chat("gpt-test", false, &[("cf-aig-max-attempts", "6")]),
    )
    .await;
    assert_eq!(r.status, 400, "Cloudflare allows at most 5 attempts");
}

fn universal(steps: Value, headers: &[(&str, &str)]) -> (HeaderMap, Vec<u8>) {
    let mut h = HeaderMap::new();
    for (k, v) in headers {
        h.insert(
            http::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    (h, steps.to_string().into_bytes())
}

#[tokio::test]
async fn fallback_tries_steps_in_order_and_names_the_step() {
    let e = env("[[gateways]]\nid = \"g\"\n").await;
    let steps = json!([
        { "provider": "broken", "endpoint": "chat/completions",
          "headers": { "authorization": "Bearer x" }, "query": { "model": "gpt-test" } },
        { "provider": "openai", "endpoint": "chat/completions",
          "headers": { "authorization": "Bearer y" }, "query": { "model": "gpt-test" } },
        { "provider": "anthropic", "endpoint": "v1/messages",
          "headers": { "x-api-key": "k" }, "query": { "model": "claude-test" } },
    ]);
    e.double.script(&[Script::Status(500)]);
    let (hd, body) = universal(steps.clone(), &[]);
    let r = e.gateways.get("g").unwrap().universal(&hd, &body).await;
    assert_eq!(r.status, 200);
    assert_eq!(h(&r, "cf-aig-step"), Some("2"));
    let seen: Vec<String> = e.double.seen().into_iter().map(|s| s.0).collect();
    assert_eq!(seen, ["/v1/chat/completions", "/v1/messages"]);
    let body = r.into_bytes().await.unwrap();
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["type"], "message");
    // When the second step answers, the third is never tried.
    let (hd, body) = universal(steps, &[]);
    let r = e.gateways.get("g").unwrap().universal(&hd, &body).await;
    assert_eq!(h(&r, "cf-aig-step"), Some("1"));
    assert_eq!(e.double.requests(), 3);
    // A step's timeout moves on to the next one.
    e.double.script(&[Script::Delay(2_000)]);
    let steps = json!([
        { "provider": "openai", "endpoint": "chat/completions",
          "headers": { "cf-aig-request-timeout": "100" }, "query": { "model": "slow" } },
        { "provider": "anthropic", "endpoint": "v1/messages", "query": { "model": "claude-test" } },
    ]);
    let (hd, body) = universal(steps, &[]);
    let r = e.gateways.get("g").unwrap().universal(&hd, &body).await;
    assert_eq!(h(&r, "cf-aig-step"), Some("1"));
    // Every step tried is logged, with its index.
    let timeouts = logs(&e, "g", &["status=504"]);
    assert_eq!((timeouts.len(), timeouts[0]["step"].as_i64()), (1, Some(0)));
    assert_eq!(logs(&e, "g", &["step=2"]).len(), 1);
    let (hd, body) = universal(json!([]), &[]);
    let r = e.gateways.get("g").unwrap().universal(&hd, &body).await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn breaker_opens_half_opens_and_closes() {
    let e = env("[[gateways]]\nid = \"g\"\nbreaker = { failures = 2, cooldown = 30 }\n").await;
    e.double.script(&[Script::Status(500), Script::Status(502)]);
    run(&e, "g", chat("gpt-test", false, &[])).await;
    run(&e, "g", chat("gpt-test", false, &[])).await;
    assert_eq!(e.gateways.breaker_state("g", "openai"), BreakerState::Open);
    let (r, body) = run(&e, "g", chat("gpt-test", false, &[])).await;
    assert_eq!(r.status, 503);
    assert!(String::from_utf8_lossy(&body).contains("Circuit open"));
    assert_eq!(e.double.requests(), 2, "an open circuit sends nothing");
    // The other provider is not affected; fallback goes around the open one.
    let steps = json!([
        { "provider": "openai", "endpoint": "chat/completions", "query": { "model": "gpt-test" } },
        { "provider": "anthropic", "endpoint": "v1/messages", "query": { "model": "c" } },
    ]);
    let (hd, b) = universal(steps, &[]);
    let r = e.gateways.get("g").unwrap().universal(&hd, &b).await;
    assert_eq!(h(&r, "cf-aig-step"), Some("1"));
    assert_eq!(e.double.requests(), 3);
    e.clock.advance_secs(30);
    assert_eq!(
        e.gateways.breaker_state("g", "openai"),
        BreakerState::HalfOpen
    );
    // A failed probe opens it again.
    e.double.script(&[Script::Status(500)]);
    run(&e, "g", chat("gpt-test", false, &[])).await;
    assert_eq!(e.gateways.breaker_state("g", "openai"), BreakerState::Open);
    e.clock.advance_secs(30);
    let (r, _) = run(&e, "g", chat("gpt-test", false, &[])).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        e.gateways.breaker_state("g", "openai"),
        BreakerState::Closed
    );
}

#[tokio::test]
async fn rate_limits_per_gateway_and_per_key() {
    let e = env(
        "[[gateways]]\nid = \"g\"\nrate_limit = { limit = 3, period = 60, technique = \"fixed\" }\n\
         [[gateways]]\nid = \"k\"\nkey_header = \"x-tenant\"\n\
         key_rate_limit = { limit = 2, period = 60, technique = \"sliding\" }\n",
    )
    .await;
    for _ in 0..3 {
        assert_eq!(run(&e, "g", chat("m", false, &[])).await.0.status, 200);
    }
    let (r, body) = run(&e, "g", chat("m", false, &[])).await;
    assert_eq!(r.status, 429);
    let wait: u64 = h(&r, "retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait));
    assert!(String::from_utf8_lossy(&body).contains("3 requests per 60 s"));
    e.clock.advance_secs(60);
    assert_eq!(run(&e, "g", chat("m", false, &[])).await.0.status, 200);

    for _ in 0..2 {
        assert_eq!(
            run(&e, "k", chat("m", false, &[("x-tenant", "a")]))
                .await
                .0
                .status,
            200
        );
    }
    let (r, body) = run(&e, "k", chat("m", false, &[("x-tenant", "a")])).await;
    assert_eq!(r.status, 429);
    assert!(String::from_utf8_lossy(&body).contains("key \\\"a\\\""));
    assert_eq!(
        run(&e, "k", chat("m", false, &[("x-tenant", "b")]))
            .await
            .0
            .status,
        200
    );
}

#[tokio::test]
async fn a_restart_keeps_the_cache_rate_windows_and_spend() {
    let mut e = env(
        "[[gateways]]\nid = \"g\"\ncache_ttl = 60\ncollect_logs = false\nkey_header = \"x-tenant\"\n\
         key_rate_limit = { limit = 3, period = 60, technique = \"fixed\" }\n\
         key_budget = { limit = 5.0, period = 3600 }\n",
    )
    .await;
    let a = [("x-tenant", "a")];
    let (r, plain) = run(&e, "g", chat("gpt-test", false, &a)).await;
    assert_eq!(h(&r, "cf-aig-cache-status"), Some("MISS"));
    let (r, streamed) = run(&e, "g", chat("gpt-stream", true, &[("x-tenant", "s")])).await;
    assert_eq!(h(&r, "cf-aig-cache-status"), Some("MISS"));
    let b = |n: &str| {
        chat(
            n,
            false,
            &[("x-tenant", "b"), ("cf-aig-skip-cache", "true")],
        )
    };
    assert_eq!(run(&e, "g", b("gpt-test")).await.0.status, 200);
    let asked = e.double.requests();
    restart(&mut e);

    // Both answers come back from the saved cache, the stream as a stream.
    let (r, again) = run(&e, "g", chat("gpt-test", false, &[("x-tenant", "c")])).await;
    assert_eq!(h(&r, "cf-aig-cache-status"), Some("HIT"));
    assert_eq!(again, plain);
    let (r, again) = run(&e, "g", chat("gpt-stream", true, &[("x-tenant", "c")])).await;
    assert_eq!(h(&r, "cf-aig-cache-status"), Some("HIT"));
    assert_eq!(h(&r, "content-type"), Some("text/event-stream"));
    assert_eq!(again, streamed);
    assert_eq!(e.double.requests(), asked);

    // "a" sent 1 of 3 before the restart: two more, then 429.
    let fresh = |n: &str| {
        chat(
            n,
            false,
            &[("x-tenant", "a"), ("cf-aig-skip-cache", "true")],
        )
    };
    assert_eq!(run(&e, "g", fresh("m")).await.0.status, 200);
    assert_eq!(run(&e, "g", fresh("m")).await.0.status, 200);
    let (r, body) = run(&e, "g", fresh("m")).await;
    assert_eq!(r.status, 429, "{body:?}");
    assert!(String::from_utf8_lossy(&body).contains("Rate limited"));

    // "b" spent 3 of 5 before the restart (logs are off, so this is the
    // saved spend): one more answer of 3 reaches 6, then it is refused.
    assert_eq!(run(&e, "g", b("gpt-test")).await.0.status, 200);
    restart(&mut e);
    let (r, body) = run(&e, "g", b("gpt-test")).await;
    assert_eq!(r.status, 429);
    assert!(
        String::from_utf8_lossy(&body).contains("spent 6.000000"),
        "{body:?}"
    );

    // Saved entries keep their expiry: past the TTL they are gone.
    e.clock.advance_secs(61);
    restart(&mut e);
    let (r, _) = run(&e, "g", chat("gpt-test", false, &[("x-tenant", "d")])).await;
    assert_eq!(h(&r, "cf-aig-cache-status"), Some("MISS"));
    // "a"'s rate window has passed.
    assert_eq!(run(&e, "g", fresh("m")).await.0.status, 200);
}

#[tokio::test]
async fn budgets_stop_a_key_that_spent_its_share() {
    let e = env(
        "[[gateways]]\nid = \"g\"\nkey_metadata = \"user\"\nkey_budget = { limit = 5.0, period = 3600 }\n",
    )
    .await;
    let alice = [("cf-aig-metadata", r#"{"user":"alice"}"#)];
    // Each answer has 3 output tokens at 1 per token: 3, then 6 >= 5.
    assert_eq!(
        run(&e, "g", chat("gpt-test", false, &alice)).await.0.status,
        200
    );
    assert_eq!(
        run(&e, "g", chat("gpt-test", false, &alice)).await.0.status,
        200
    );
    let (r, body) = run(&e, "g", chat("gpt-test", false, &alice)).await;
    assert_eq!(r.status, 429);
    assert!(
        String::from_utf8_lossy(&body).contains("Budget exceeded"),
        "{body:?}"
    );
    assert!(h(&r, "retry-after").is_some());
    // Bob is not held back; a custom cost replaces the price table.
    let bob = |cost: &'static str| {
        [
            ("cf-aig-metadata", r#"{"user":"bob"}"#),
            ("cf-aig-custom-cost", cost),
        ]
    };
    assert_eq!(
        run(
            &e,
            "g",
            chat("gpt-test", false, &bob(r#"{"total_cost":4.5}"#))
        )
        .await
        .0
        .status,
        200
    );
    assert_eq!(
        run(
            &e,
            "g",
            chat("gpt-test", false, &bob(r#"{"total_cost":0.6}"#))
        )
        .await
        .0
        .status,
        200
    );
    assert_eq!(
        run(
            &e,
            "g",
            chat("gpt-test", false, &bob(r#"{"total_cost":0}"#))
        )
        .await
        .0
        .status,
        429
    );
    let bob_logs = logs(&e, "g", &["key=bob"]);
    assert_eq!(bob_logs.len(), 2);
    assert_eq!(bob_logs[1]["cost"], 4.5);
    // The next window starts fresh.
    e.clock.advance_secs(3600);
    assert_eq!(
        run(&e, "g", chat("gpt-test", false, &alice)).await.0.status,
        200
    );
}

#[tokio::test]
async fn logs_hold_usage_and_never_secrets() {
    let e =
        env("[[gateways]]\nid = \"g\"\n[[gateways]]\nid = \"bodies\"\nlog_bodies = true\n").await;
    let (r, _) = run(
        &e,
        "g",
        chat(
            "gpt-test",
            false,
            &[("cf-aig-metadata", r#"{"team":"ml","run":7}"#)],
        ),
    )
    .await;
    let id = h(&r, "cf-aig-log-id").unwrap().to_owned();
    let log = e.gateways.get("g").unwrap().get_log(&id).unwrap();
    assert_eq!(log["provider"], "openai");
    assert_eq!(log["model"], "gpt-test");
    assert_eq!(log["status_code"], 200);
    assert_eq!(log["tokens_out"], 3);
    assert_eq!(log["cost"], 3.0);
    assert_eq!(log["metadata"], json!({"team":"ml","run":7}));
    assert_eq!(log["request"], Value::Null, "bodies only when configured");
    let mut req = chat("gpt-test", false, &[("x-api-key", "sk-ant-ANOTHER-SECRET")]);
    req.headers.insert(
        "cf-aig-authorization",
        HeaderValue::from_static("Bearer GW-SECRET"),
    );
    let (r, _) = run(&e, "bodies", req).await;
    let log = e
        .gateways
        .get("bodies")
        .unwrap()
        .get_log(h(&r, "cf-aig-log-id").unwrap())
        .unwrap();
    assert!(
        log["request"]
            .as_str()
            .unwrap()
            .contains("\"model\":\"gpt-test\"")
    );
    assert!(
        log["response"]
            .as_str()
            .unwrap()
            .contains("chat.completion")
    );
    // A log of another gateway is not this gateway's.
    assert!(
        e.gateways
            .get("g")
            .unwrap()
            .get_log(h(&r, "cf-aig-log-id").unwrap())
            .is_err()
    );
    e.gateways
        .get("g")
        .unwrap()
        .patch_log(
            &id,
            hearth_ai_gateway::logs::LogPatch {
                feedback: Some(-1),
                score: Some(10.0),
                metadata: None,
            },
        )
        .unwrap();
    assert_eq!(
        e.gateways.get("g").unwrap().get_log(&id).unwrap()["feedback"],
        -1
    );
    // No credential reaches the database file or its write-ahead log.
    e.gateways.flush_logs().unwrap();
    for entry in std::fs::read_dir(e.dir.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        for secret in ["sk-tenant-a-SECRET", "sk-ant-ANOTHER-SECRET", "GW-SECRET"] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{secret} found in the logs"
            );
        }
    }
}

#[tokio::test]
async fn dlp_blocks_or_flags_by_detector() {
    let e = env(
        "[[gateways]]\nid = \"block\"\ndlp = { action = \"block\", detectors = [\"credit_card\", \"api_key\"] }\n\
         [[gateways]]\nid = \"flag\"\ndlp = { action = \"flag\", on = \"request\", detectors = [\"email\"], patterns = [\"PROJECT-[0-9]{4}\"] }\n",
    )
    .await;
    let mut req = chat("gpt-test", false, &[]);
    req.body = Bytes::from(
        r#"{"model":"gpt-test","messages":[{"role":"user","content":"card 4111 1111 1111 1111"}]}"#,
    );
    let (r, body) = run(&e, "block", req.clone()).await;
    assert_eq!(r.status, 403);
    assert!(String::from_utf8_lossy(&body).contains("credit_card"));
    assert_eq!(e.double.requests(), 0, "a blocked request never leaves");
    // A number failing the Luhn check passes.
    req.body = Bytes::from(
        r#"{"model":"gpt-test","messages":[{"role":"user","content":"order 4111 1111 1111 1112"}]}"#,
    );
    assert_eq!(run(&e, "block", req.clone()).await.0.status, 200);
    req.body = Bytes::from(
        r#"{"model":"gpt-test","messages":[{"role":"user","content":"mail bo@example.org re PROJECT-1234"}]}"#,
    );
    let (r, _) = run(&e, "flag", req).await;
    assert_eq!(r.status, 200);
    let flagged = logs(&e, "flag", &["dlp=email"]);
    assert_eq!(flagged.len(), 1);
    assert_eq!(flagged[0]["dlp"], "email,pattern_0");
    assert_eq!(logs(&e, "block", &["status=403"]).len(), 1);
}

#[tokio::test]
async fn dlp_on_a_streamed_answer_blocks_with_an_error_event_or_flags() {
    // The pattern spans three events ("Hello", ", ", "world"): it is found
    // in the answer's text, not in any one event.
    let e = env(
        "[[gateways]]\nid = \"block\"\ncache_ttl = 60\n\
         dlp = { action = \"block\", on = \"response\", detectors = [], patterns = [\"Hello, wor\"] }\n\
         [[gateways]]\nid = \"flag\"\n\
         dlp = { action = \"flag\", on = \"response\", detectors = [], patterns = [\"Hello, wor\"] }\n",
    )
    .await;
    // Events 100 ms apart, so each reaches the gateway on its own.
    e.double.script(&[Script::Pace(100)]);
    let (r, body) = run(&e, "block", chat("gpt-test", true, &[])).await;
    assert_eq!(r.status, 200, "the head left before the match");
    let text = String::from_utf8_lossy(&body).to_string();
    assert!(text.contains("\"Hello\""), "{text}");
    assert!(!text.contains("world"), "the match leaked: {text}");
    assert!(!text.contains("[DONE]"), "{text}");
    assert!(
        text.ends_with("\n\n")
            && text.contains("event: error\ndata: ")
            && text.contains("Blocked by DLP: the response matches pattern_0"),
        "{text}"
    );
    let blocked = logs(&e, "block", &["status=403"]);
    assert_eq!(blocked.len(), 1);
    assert_eq!(blocked[0]["dlp"], "pattern_0");
    // Not cached: the next call goes to the provider again, and is blocked again.
    let before = e.double.requests();
    let (_, again) = run(&e, "block", chat("gpt-test", true, &[])).await;
    assert_eq!(e.double.requests(), before + 1);
    assert!(!String::from_utf8_lossy(&again).contains("world"));
    // Flag: the stream passes whole and the log names the detector.
    let (r, body) = run(&e, "flag", chat("gpt-test", true, &[])).await;
    assert_eq!(r.status, 200);
    let text = String::from_utf8_lossy(&body).to_string();
    assert!(text.contains("world") && text.contains("[DONE]"), "{text}");
    let flagged = logs(&e, "flag", &["dlp=pattern_0"]);
    assert_eq!(flagged.len(), 1);
    assert_eq!(flagged[0]["status_code"], 200);
}

#[tokio::test]
async fn dropping_an_answer_cancels_the_provider_call() {
    let e = env("[[gateways]]\nid = \"g\"\n").await;
    // A streamed answer dropped after its first event.
    e.double.script(&[Script::Pace(200)]);
    let mut r = e
        .gateways
        .get("g")
        .unwrap()
        .run(chat("gpt-test", true, &[]))
        .await;
    r.body.frame().await.unwrap().unwrap();
    drop(r);
    // A call still waiting for its answer, dropped.
    e.double.script(&[Script::Delay(5_000)]);
    let gw = e.gateways.get("g").unwrap();
    let call = tokio::spawn(async move { gw.run(chat("gpt-test", false, &[])).await });
    while e.double.requests() < 2 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    call.abort();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while e.double.cancelled() < 2 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(e.double.cancelled(), 2);
    let cancelled = logs(&e, "g", &["status=499"]);
    assert_eq!(
        cancelled.len(),
        1,
        "the abandoned stream is logged as cancelled"
    );
}

#[tokio::test]
async fn authenticated_gateway_and_unknown_provider() {
    let e = env("[[gateways]]\nid = \"g\"\ntoken = \"gw-token\"\n").await;
    let (r, _) = run(&e, "g", chat("m", false, &[])).await;
    assert_eq!(r.status, 401);
    let (r, _) = run(
        &e,
        "g",
        chat("m", false, &[("cf-aig-authorization", "Bearer gw-token")]),
    )
    .await;
    assert_eq!(r.status, 200);
    let mut req = chat("m", false, &[("cf-aig-authorization", "Bearer gw-token")]);
    req.provider = "nowhere".into();
    let (r, body) = run(&e, "g", req).await;
    assert_eq!(r.status, 400);
    assert!(String::from_utf8_lossy(&body).contains("unknown provider \\\"nowhere\\\""));
}

fn ask(content: &str, headers: &[(&str, &str)]) -> GatewayRequest {
    let mut req = chat("gpt-test", false, headers);
    req.body = Bytes::from(
        json!({ "model": "gpt-test", "temperature": 0,
            "messages": [{ "role": "user", "content": content }] })
        .to_string(),
    );
    req
}

/// Waits until the gateway's semantic cache has stored `n` prompts since
/// it opened (vectors are stored on a blocking thread after the answer),
/// then answers how many its index holds.
async fn semantic_stored(e: &Env, n: u64) -> usize {
    for _ in 0..500 {
        if let Some((held, stored)) = e.gateways.get("g").unwrap().semantic_counts()
            && stored >= n
        {
            assert_eq!(stored, n, "more prompts stored than asked");
            return held;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "the semantic cache stored {:?} (held, stored) prompts, not {n}",
        e.gateways.get("g").unwrap().semantic_counts()
    );
}

#[tokio::test]
async fn semantic_cache_answers_close_prompts_within_one_tenant_only() {
    let mut e = env(
        "[[gateways]]\nid = \"g\"\ncache_ttl = 60\nkey_header = \"x-tenant\"\n\
         semantic_cache = { threshold = 0.9, max_entries = 3 }\n",
    )
    .await;
    let a = [("x-tenant", "a")];
    // 6 words; with "please", 6 of 7 shared: 6 / sqrt(42) = 0.926.
    let (r, first) = run(&e, "g", ask("what is the capital of france", &a)).await;
    assert_eq!(h(&r, "cf-aig-cache-status"), Some("MISS"));
    assert_eq!(semantic_stored(&e, 1).await, 1);
    let asked = e.double.requests();
    let (r, again) = run(&e, "g", ask("What is the capital of France, please?", &a)).await;
    assert_eq!(r.status, 200);
    assert_eq!(h(&r, "cf-aig-cache-status"), Some("HIT"));
    assert_eq!(h(&r, "cf-aig-cache-match"), Some("semantic"));
    let similarity: f64 = h(&r, "cf-aig-cache-similarity").unwrap().parse().unwrap();
    assert!(
        (similarity - 6.0 / 42f64.sqrt()).abs() < 0.001,
        "{similarity}"
    );
    assert_eq!(again, first);
    assert_eq!(
        e.double.requests(),
        asked,
        "a hit must not reach the provider"
    );
    let hit_log = &logs(&e, "g", &["cached=true"])[0];
    assert_eq!(hit_log["cost"], 0.0);

    // 5 of 6 shared = 0.833, under the threshold: asked, and stored.
    let (r, _) = run(&e, "g", ask("what is the capital of spain", &a)).await;
    assert_eq!(h(&r, "cf-aig-cache-status"), Some("MISS"));
    assert_eq!(semantic_stored(&e, 2).await, 2);
    // The same close prompt from another tenant, other credentials or
    // another temperature is never answered from "a"'s entry.
    let close = "what is the capital of france please";
    let (r, _) = run(&e, "g", ask(close, &[("x-tenant", "b")])).await;
    assert_eq!(h(&r, "cf-aig-cache-status"), Some("MISS"));
    let (r, _) = run(
        &e,
        "g",
        ask(
            close,
            &[("x-tenant", "a"), ("authorization", "Bearer sk-tenant-b")],
        ),
    )
    .await;
    assert_eq!(h(&r, "cf-aig-cache-status"), Some("MISS"));
    let mut hot = ask(close, &a);
    hot.body = Bytes::from(
        json!({ "model": "gpt-test", "temperature": 1,
            "messages": [{ "role": "user", "content": close }] })
        .to_string(),
    );
    let (r, _) = run(&e, "g", hot).await;
    assert_eq!(h(&r, "cf-aig-cache-status"), Some("MISS"));
    // Skipping the cache skips it by meaning too.
    let (r, _) = run(
        &e,
        "g",
        ask(close, &[("x-tenant", "a"), ("cf-aig-skip-cache", "true")]),
    )
    .await;
    assert_eq!(h(&r, "cf-aig-cache-status"), Some("BYPASS"));
    // Five prompts were stored, three are kept (max_entries = 3): "a"'s
    // two are out, so a prompt as close to the first is asked.
    assert_eq!(semantic_stored(&e, 5).await, 3);
    let (r, _) = run(&e, "g", ask("so what is the capital of france", &a)).await;
    assert_eq!(
        h(&r, "cf-aig-cache-status"),
        Some("MISS"),
        "its vector was dropped"
    );
    assert_eq!(semantic_stored(&e, 6).await, 3);

    // The index is kept across a restart: 7 of 8 words, 0.935.
    restart(&mut e);
    let (r, _) = run(&e, "g", ask("so what is the capital of france please", &a)).await;
    assert_eq!(h(&r, "cf-aig-cache-status"), Some("HIT"));
    assert_eq!(h(&r, "cf-aig-cache-match"), Some("semantic"));
}
