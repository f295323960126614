//! `scheduled()` and `queue()` dispatch, the Queue producer binding, and the
//! push-consumer and cron tasks driven by a manual clock.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hearth_core::ManualClock;
use hearth_cron::{Claim, CronScheduler, DueRun, SlotClaims};
use hearth_queues::{
    ConsumerConfig, ProducerConfig, QueueBroker, QueueContentType, QueueLimits, QueueSendOptions,
};
use hearth_runtime::bindings::QueueAdapter;
use hearth_runtime::bindings::cron::{CronOptions, spawn_cron};
use hearth_runtime::bindings::queue::consumer::{QueueConsumerOptions, spawn_queue_consumer};
use hearth_runtime::{BindingAdapter, IsolatePool, WorkerConfig, WorkerRequest};
use serde_json::{Value, json};

const START_MS: u64 = 1_700_000_000_000;

/// A worker that records every event in `seen` (read back with GET /seen)
/// and runs the statements of `fetch_body` for other requests.
fn worker_source(handlers: &str, fetch_body: &str) -> String {
    format!(
        r#"
const seen = [];
const attempt = async (out, label, f) => {{
  try {{ out[label] = {{ ok: await f() }}; }}
  catch (e) {{ out[label] = {{ error: e && e.constructor ? e.constructor.name : String(e), message: e && e.message }}; }}
}};
export default {{
  async fetch(request, env) {{
    if (new URL(request.url).pathname === "/seen") return Response.json(seen);
    const out = {{}};
{fetch_body}
    return Response.json(out);
  }},
{handlers}
}};
"#
    )
}

struct Fixture {
    _dir: tempfile::TempDir,
    pool: IsolatePool,
    broker: QueueBroker,
    clock: ManualClock,
    rt: tokio::runtime::Runtime,
}

impl Fixture {
    fn new(handlers: &str, fetch_body: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(START_MS);
        let broker = QueueBroker::open(
            &dir.path().join("queues.sqlite"),
            clock.shared(),
            QueueLimits::default(),
        )
        .unwrap();
        let producer = broker.producer("jobs", ProducerConfig::default()).unwrap();
        let bindings: Vec<Arc<dyn BindingAdapter>> =
            vec![Arc::new(QueueAdapter::new("JOBS", producer))];
        let pool = start(dir.path(), &worker_source(handlers, fetch_body), bindings);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        Fixture {
            _dir: dir,
            pool,
            broker,
            clock,
            rt,
        }
    }

    fn get(&self, path: &str) -> Value {
        let resp = self
            .rt
            .block_on(self.pool.dispatch(WorkerRequest::new(
                "t",
                "GET",
                format!("http://localhost{path}"),
            )))
            .unwrap();
        let text = String::from_utf8(resp.body.to_vec()).unwrap();
        assert_eq!(resp.status, 200, "{text}");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
    }

    fn seen(&self) -> Vec<Value> {
        self.get("/seen").as_array().unwrap().clone()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.pool.shutdown();
        self.pool.join();
    }
}

fn start(dir: &Path, source: &str, bindings: Vec<Arc<dyn BindingAdapter>>) -> IsolatePool {
    std::fs::write(dir.join("index.js"), source).unwrap();
    let mut config = WorkerConfig::new(dir.join("index.js"));
    config.isolates = 1;
    config.bindings = bindings;
    IsolatePool::start(config).unwrap()
}

fn wait_for(mut check: impl FnMut() -> bool, what: &str) {
    for _ in 0..400 {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("timed out waiting for {what}");
}

const RECORD_QUEUE: &str = r#"
  async queue(batch, env, ctx) {
    seen.push({ queue: batch.queue, messages: batch.messages.map((m) => ({
      id: m.id, attempts: m.attempts, isDate: m.timestamp instanceof Date, ts: m.timestamp.getTime(),
      body: m.body instanceof ArrayBuffer ? { bytes: [...new Uint8Array(m.body)] } : m.body,
    })) });
  },
"#;

#[test]
fn producer_content_types_round_trip_to_the_consumer() {
    let f = Fixture::new(
        RECORD_QUEUE,
        r#"
    await env.JOBS.send("plain", { contentType: "text" });
    await env.JOBS.send({ a: [1, 2] }, { contentType: "json" });
    await env.JOBS.send(new Uint8Array([1, 2, 255]), { contentType: "bytes" });
    await env.JOBS.send({ n: 1 });
    out.done = true;
"#,
    );
    f.get("/");
    f.broker
        .set_consumer(ConsumerConfig {
            max_batch_size: 4,
            ..ConsumerConfig::worker("jobs")
        })
        .unwrap();
    let batch = f.broker.next_push_batch("jobs").unwrap().unwrap();
    let types: Vec<QueueContentType> = batch.messages.iter().map(|m| m.content_type).collect();
    assert_eq!(
        types,
        [
            QueueContentType::Text,
            QueueContentType::Json,
            QueueContentType::Bytes,
            QueueContentType::V8
        ]
    );
    let result = f.rt.block_on(f.pool.queue("b1", &batch));
    assert!(result.error.is_none(), "{:?}", result.error);
    let report = f.broker.settle(&batch, &result.outcome).unwrap();
    assert_eq!(report.acked, 4, "a handler that returns acks everything");
    let seen = f.seen();
    assert_eq!(seen[0]["queue"], "jobs");
    let msgs = seen[0]["messages"].as_array().unwrap();
    let bodies: Vec<&Value> = msgs.iter().map(|m| &m["body"]).collect();
    assert_eq!(
        bodies,
        [
            &json!("plain"),
            &json!({"a": [1, 2]}),
            &json!({"bytes": [1, 2, 255]}),
            &json!({"n": 1})
        ]
    );
    assert_eq!(msgs[0]["attempts"], 1);
    assert_eq!(msgs[0]["isDate"], true);
    assert_eq!(msgs[0]["ts"], START_MS);
    assert_eq!(msgs[0]["id"], batch.messages[0].id.as_str());
}

#[test]
fn v8_content_type_round_trips_what_structured_clone_copies() {
    let f = Fixture::new(
        r#"
  async queue(batch) {
    const v = batch.messages[0].body;
    seen.push({
      date: v.date instanceof Date && v.date.getTime() === 86400000,
      map: v.map instanceof Map && v.map.get("k") === 1,
      set: v.set instanceof Set && v.set.has("x"),
      big: v.big === 12345678901234567890n,
      undef: "u" in v && v.u === undefined,
      nums: Number.isNaN(v.nan) && v.inf === Infinity && Object.is(v.negz, -0),
      re: v.re instanceof RegExp && v.re.source === "a+b" && v.re.flags === "gi",
      bytes: v.bytes instanceof Uint16Array && v.bytes[1] === 513,
      err: v.err instanceof RangeError && v.err.message === "boom",
      cycle: v.self === v,
      shared: v.pair[0] === v.pair[1],
      sparse: v.sparse.length === 3 && !(1 in v.sparse),
      dollar: v.tricky.$ === "o",
    });
  },
"#,
        r#"
    const v = {
      date: new Date(86400000), map: new Map([["k", 1]]), set: new Set(["x"]), big: 12345678901234567890n,
      u: undefined, nan: NaN, inf: Infinity, negz: -0, re: /a+b/gi, bytes: new Uint16Array([1, 513]),
      err: new RangeError("boom"), sparse: [1, , 3], tricky: { $: "o" },
    };
    v.self = v;
    const shared = { s: 1 };
    v.pair = [shared, shared];
    await env.JOBS.send(v);
    await attempt(out, "fn", () => env.JOBS.send({ f() {} }));
    await attempt(out, "sym", () => env.JOBS.send(Symbol("s")));
"#,
    );
    let t = f.get("/");
    assert_eq!(t["fn"]["error"], "DOMException", "{t}");
    assert!(
        t["fn"]["message"]
            .as_str()
            .unwrap()
            .ends_with("could not be cloned."),
        "{t}"
    );
    assert_eq!(t["sym"]["message"], "Symbol(s) could not be cloned.");
    f.broker
        .set_consumer(ConsumerConfig::worker("jobs"))
        .unwrap();
    f.clock.advance_secs(5);
    let batch = f.broker.next_push_batch("jobs").unwrap().unwrap();
    assert_eq!(batch.messages.len(), 1, "refused sends store nothing");
    let result = f.rt.block_on(f.pool.queue("b1", &batch));
    assert!(result.error.is_none(), "{:?}", result.error);
    let seen = f.seen();
    for (k, v) in seen[0].as_object().unwrap() {
        assert_eq!(v, &json!(true), "{k}");
    }
}

#[test]
fn producer_errors_use_workers_messages() {
    let f = Fixture::new(
        "",
        r#"
    await attempt(out, "undef", () => env.JOBS.send(undefined));
    await attempt(out, "text", () => env.JOBS.send(42, { contentType: "text" }));
    await attempt(out, "bytes", () => env.JOBS.send("x", { contentType: "bytes" }));
    await attempt(out, "type", () => env.JOBS.send("x", { contentType: "xml" }));
    await attempt(out, "big", () => env.JOBS.send("x".repeat(128001), { contentType: "text" }));
    await attempt(out, "delay", () => env.JOBS.send("x", { contentType: "text", delaySeconds: 86401 }));
    await attempt(out, "empty", () => env.JOBS.sendBatch([]));
    await attempt(out, "many", () => env.JOBS.sendBatch(Array.from({ length: 101 }, () => ({ body: 1 }))));
    await attempt(out, "batchDelay", () => env.JOBS.sendBatch([{ body: 1 }], { delaySeconds: 1.5 }));
    await attempt(out, "noArgs", () => env.JOBS.send());
    await attempt(out, "nullType", () => env.JOBS.send("x", { contentType: null }));
    await attempt(out, "stringOptions", () => env.JOBS.send("x", "text"));
    await attempt(out, "int32", () => env.JOBS.send("x", { contentType: "text", delaySeconds: 2 ** 31 }));
    await attempt(out, "negative", () => env.JOBS.send("x", { contentType: "text", delaySeconds: -1 }));
    await attempt(out, "stringBatch", () => env.JOBS.sendBatch("ab"));
    await attempt(out, "nullEntry", () => env.JOBS.sendBatch([null]));
    await attempt(out, "stringEntry", () => env.JOBS.sendBatch(["x"]));
    await attempt(out, "ok", () => env.JOBS.sendBatch([{ body: "a", contentType: "text" }, { body: 2, delaySeconds: 60 }]));
"#,
    );
    let t = f.get("/");
    let e = |k: &str| (t[k]["error"].clone(), t[k]["message"].clone());
    assert_eq!(
        e("undef"),
        (
            json!("TypeError"),
            json!("Message body cannot be undefined")
        )
    );
    assert_eq!(
        e("text"),
        (
            json!("TypeError"),
            json!("Content Type \"text\" requires a value of type string, but received: number")
        )
    );
    assert_eq!(
        e("bytes"),
        (
            json!("TypeError"),
            json!(
                "Content Type \"bytes\" requires a value of type ArrayBufferView, but received: string"
            )
        )
    );
    assert_eq!(
        e("type"),
        (
            json!("TypeError"),
            json!("Unsupported queue message content type: xml")
        )
    );
    assert_eq!(
        e("big"),
        (
            json!("Error"),
            json!("Queue send failed: message length of 128001 bytes exceeds limit of 128000")
        )
    );
    assert_eq!(
        e("delay").1,
        json!(
            "Queue send failed: message delay 86401 is invalid: delaySeconds must be an integer from 0 to 86400"
        )
    );
    assert_eq!(
        e("empty"),
        (
            json!("TypeError"),
            json!("sendBatch() requires at least one message")
        )
    );
    assert_eq!(
        e("many").1,
        json!("Queue sendBatch failed: batch message count of 101 exceeds limit of 100")
    );
    assert!(
        t["batchDelay"].get("error").is_none(),
        "a fractional delay is truncated, as workerd converts it to an integer: {t}"
    );
    let not_of_type = |method: &str, n: u8, ty: &str| {
        format!(
            "Failed to execute '{method}' on 'WorkerQueue': parameter {n} is not of type '{ty}'."
        )
    };
    assert_eq!(
        e("noArgs"),
        (json!("TypeError"), json!(not_of_type("send", 1, "JsValue")))
    );
    assert_eq!(
        e("nullType"),
        (
            json!("TypeError"),
            json!("Unsupported queue message content type: null")
        )
    );
    assert_eq!(
        e("stringOptions"),
        (
            json!("TypeError"),
            json!(not_of_type("send", 2, "SendOptions"))
        )
    );
    assert_eq!(
        e("int32"),
        (
            json!("TypeError"),
            json!("Value out of range. Must be between -2147483648 and 2147483647 (inclusive).")
        )
    );
    assert_eq!(
        e("negative").1,
        json!(
            "Queue send failed: message delay -1 is invalid: delaySeconds must be an integer from 0 to 86400"
        )
    );
    assert_eq!(
        e("stringBatch"),
        (
            json!("TypeError"),
            json!(not_of_type("sendBatch", 1, "Sequence"))
        )
    );
    assert_eq!(
        e("nullEntry").1,
        json!(
            "Cannot initialize N7workerd3api11WorkerQueue18MessageSendRequestE with required members from an undefined or null value."
        )
    );
    assert_eq!(
        e("stringEntry"),
        (
            json!("TypeError"),
            json!("Incorrect type: the provided value is not of type 'MessageSendRequest'.")
        )
    );
    assert!(t["ok"].get("error").is_none(), "{t}");
    let stats = f.broker.stats("jobs").unwrap();
    assert_eq!((stats.visible, stats.delayed), (1, 2));
}

#[test]
fn explicit_calls_and_throwing_handlers_settle_by_cloudflares_rules() {
    let f = Fixture::new(
        r#"
  async queue(batch) {
    const [a, b, c] = batch.messages;
    if (a.body === "throw-after-ack") { a.ack(); throw new Error("handler failed"); }
    a.ack();
    b.retry({ delaySeconds: 30 });
    a.retry();
    try { c.retry({ delaySeconds: -1 }); } catch (e) { seen.push(e.message); }
    try { c.retry({ delaySeconds: 2 ** 31 }); } catch (e) { seen.push(e.message); }
  },
"#,
        "",
    );
    f.broker
        .set_consumer(ConsumerConfig {
            max_batch_size: 3,
            ..ConsumerConfig::worker("jobs")
        })
        .unwrap();
    for body in ["a", "b", "c"] {
        f.broker
            .send("jobs", body.as_bytes().to_vec(), &text())
            .unwrap();
    }
    let batch = f.broker.next_push_batch("jobs").unwrap().unwrap();
    let result = f.rt.block_on(f.pool.queue("b1", &batch));
    let report = f.broker.settle(&batch, &result.outcome).unwrap();
    assert_eq!(
        (report.acked, report.retried),
        (1, 2),
        "a acked (its later retry ignored), b retried, c retried at once (a negative delay is held to 0)"
    );
    assert_eq!(
        f.seen(),
        [json!(
            "Value out of range. Must be between -2147483648 and 2147483647 (inclusive)."
        )],
        "only a delay outside int32 throws, as in workerd"
    );
    let stats = f.broker.stats("jobs").unwrap();
    assert_eq!(
        (stats.visible, stats.delayed),
        (1, 1),
        "b waits its 30 s, c is due now"
    );
    f.clock.advance_secs(5);
    let again = f.broker.next_push_batch("jobs").unwrap().unwrap();
    assert_eq!(again.messages.len(), 1);
    assert_eq!(again.messages[0].attempts, 2);
    f.broker.settle(&again, &again.outcome()).unwrap();

    for body in ["throw-after-ack", "x", "y"] {
        f.broker
            .send("jobs", body.as_bytes().to_vec(), &text())
            .unwrap();
    }
    let batch = f.broker.next_push_batch("jobs").unwrap().unwrap();
    let result = f.rt.block_on(f.pool.queue("b2", &batch));
    assert!(
        result.error.as_deref().unwrap().contains("handler failed"),
        "{:?}",
        result.error
    );
    let report = f.broker.settle(&batch, &result.outcome).unwrap();
    assert_eq!(
        (report.acked, report.retried),
        (1, 2),
        "a throwing handler retries what it did not ack"
    );
}

fn text() -> QueueSendOptions {
    QueueSendOptions {
        content_type: QueueContentType::Text,
        delay_seconds: None,
    }
}

#[test]
fn missing_queue_handler_retries_the_batch() {
    let f = Fixture::new("", "");
    f.broker
        .set_consumer(ConsumerConfig::worker("jobs"))
        .unwrap();
    f.broker.send("jobs", b"a".to_vec(), &text()).unwrap();
    f.clock.advance_secs(5);
    let batch = f.broker.next_push_batch("jobs").unwrap().unwrap();
    let result = f.rt.block_on(f.pool.queue("b", &batch));
    assert_eq!(
        result.error.as_deref(),
        Some("Error: Handler does not export a queue() function.")
    );
    let report = f.broker.settle(&batch, &result.outcome).unwrap();
    assert_eq!(report.retried, 1);
}

#[test]
fn scheduled_gets_its_controller_and_reports_failures_and_no_retry() {
    let f = Fixture::new(
        r#"
  async scheduled(controller, env, ctx) {
    seen.push({ cron: controller.cron, time: controller.scheduledTime, type: typeof controller.type, keys: Object.keys(controller) });
    try { controller.cron = "changed"; } catch (e) {}
    if (controller.cron === "fail") throw new TypeError("cron broke");
    if (controller.cron === "norety") { controller.noRetry(); throw new Error("once only"); }
    if (controller.cron === "wait") ctx.waitUntil(Promise.reject(new Error("late failure")));
  },
"#,
        "",
    );
    let ok = f.rt.block_on(f.pool.scheduled("s1", "*/5 * * * *", 1234));
    assert!(ok.ok() && !ok.no_retry, "{ok:?}");
    let failed = f.rt.block_on(f.pool.scheduled("s2", "fail", 1));
    assert_eq!(
        failed
            .error
            .as_deref()
            .map(|e| e.lines().next().unwrap_or("")),
        Some("TypeError: cron broke")
    );
    assert!(!failed.no_retry);
    let once = f.rt.block_on(f.pool.scheduled("s3", "norety", 1));
    assert!(once.no_retry && !once.ok());
    let wait = f.rt.block_on(f.pool.scheduled("s4", "wait", 1));
    assert!(
        wait.error.as_deref().unwrap().contains("late failure"),
        "the first failing waitUntil fails the run: {wait:?}"
    );
    assert_eq!(
        f.seen()[0],
        json!({"cron": "*/5 * * * *", "time": 1234, "type": "undefined", "keys": ["cron", "scheduledTime"]}),
        "cron and scheduledTime are own read-only properties and there is no type, as in workerd"
    );
}

#[test]
fn class_entrypoint_and_missing_scheduled_handler() {
    let dir = tempfile::tempdir().unwrap();
    let pool = start(
        dir.path(),
        r#"
import { WorkerEntrypoint } from "cloudflare:workers";
export default class extends WorkerEntrypoint {
  async fetch() { return new Response("x"); }
  async scheduled(controller) { if (!this.env || !this.ctx) throw new Error("no env"); }
}
"#,
        vec![],
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let out = rt.block_on(pool.scheduled("s", "* * * * *", 1));
    assert!(out.ok(), "{out:?}");
    pool.shutdown();
    pool.join();

    let dir = tempfile::tempdir().unwrap();
    let pool = start(
        dir.path(),
        "export default { fetch() { return new Response('x'); } };",
        vec![],
    );
    let out = rt.block_on(pool.scheduled("s", "* * * * *", 1));
    assert_eq!(
        out.error.as_deref(),
        Some("Error: Handler does not export a scheduled() function.")
    );
    pool.shutdown();
    pool.join();
}

#[test]
fn cpu_limit_in_a_handler_fails_the_event() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("index.js"),
        "export default { scheduled() { for (;;) {} } };",
    )
    .unwrap();
    let mut config = WorkerConfig::new(dir.path().join("index.js"));
    config.isolates = 1;
    config.limits.cpu_ms = 50;
    let pool = IsolatePool::start(config).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let out = rt.block_on(pool.scheduled("s", "* * * * *", 1));
    assert_eq!(
        out.error.as_deref(),
        Some(
            "Error 1102: Worker exceeded resource limits: CPU time limit exceeded (limits.cpu_ms = 50)."
        )
    );
    pool.shutdown();
    pool.join();
}

#[test]
fn consumer_task_delivers_sends_and_dead_letters_after_retries() {
    let f = Fixture::new(
        r#"
  async queue(batch) {
    for (const m of batch.messages) {
      seen.push([batch.queue, m.body, m.attempts]);
      if (m.body === "poison") m.retry(); else m.ack();
    }
  },
"#,
        r#"
    await env.JOBS.send("good", { contentType: "text" });
    await env.JOBS.send("poison", { contentType: "text" });
"#,
    );
    f.broker
        .set_consumer(ConsumerConfig {
            max_batch_size: 1,
            max_retries: 2,
            dead_letter_queue: Some("dlq".into()),
            ..ConsumerConfig::worker("jobs")
        })
        .unwrap();
    f.broker
        .set_consumer(ConsumerConfig::worker("dlq"))
        .unwrap();
    let mut options = QueueConsumerOptions::new(vec!["jobs".into(), "dlq".into()]);
    options.poll_interval = Duration::from_millis(20);
    let handle =
        f.rt.block_on(async {
            spawn_queue_consumer(f.pool.clone(), f.broker.clone(), f.clock.shared(), options)
        })
        .unwrap();
    f.get("/");
    handle.wake();
    wait_for(
        || f.seen().len() >= 4,
        "three poison deliveries and one good",
    );
    // The third delivery is seen before it is settled: wait for the move to
    // the dead-letter queue, which then batches by timeout: move the clock past it.
    wait_for(
        || f.broker.stats("dlq").map(|s| s.depth > 0).unwrap_or(false),
        "the poison message in the dead-letter queue",
    );
    f.clock.advance_secs(5);
    handle.wake();
    wait_for(|| f.seen().len() >= 5, "the dead-letter delivery");
    let seen = f.seen();
    assert!(seen.contains(&json!(["jobs", "good", 1])));
    for attempt in 1..=3 {
        assert!(
            seen.contains(&json!(["jobs", "poison", attempt])),
            "{seen:?}"
        );
    }
    assert!(
        seen.contains(&json!(["dlq", "poison", 1])),
        "after max_retries the message moves to the DLQ: {seen:?}"
    );
    f.rt.block_on(handle.stop());
    assert_eq!(f.broker.stats("jobs").unwrap().depth, 0);
}

#[test]
fn cron_task_fires_due_runs_by_the_injected_clock_and_retries_failures() {
    // Minute boundary + 30 s.
    let start = (START_MS / 60_000) * 60_000 + 30_000;
    let f = Fixture::new(
        r#"
  async scheduled(controller) {
    seen.push([controller.cron, controller.scheduledTime]);
    if (seen.length === 2) throw new Error("transient");
  },
"#,
        "",
    );
    f.clock.set_ms(start);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cron.sqlite");
    let scheduler =
        Arc::new(CronScheduler::open(&path, "w", &["* * * * *"], f.clock.shared()).unwrap());
    let options = CronOptions {
        max_retries: 3,
        retry_base: Duration::from_secs(10),
        poll_interval: Duration::from_millis(20),
        claims: None,
    };
    let handle = f.rt.block_on(async {
        spawn_cron(
            f.pool.clone(),
            scheduler.clone(),
            f.clock.shared(),
            options.clone(),
        )
    });
    std::thread::sleep(Duration::from_millis(100));
    assert!(f.seen().is_empty(), "nothing is owed before the first slot");
    let slot1 = start + 30_000;
    f.clock.set_ms(slot1 + 1);
    handle.wake();
    wait_for(|| f.seen().len() == 1, "the first slot");
    assert_eq!(f.seen()[0], json!(["* * * * *", slot1]));

    let slot2 = slot1 + 60_000;
    f.clock.set_ms(slot2 + 1);
    handle.wake();
    wait_for(|| f.seen().len() == 2, "the second slot, which fails");
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(f.seen().len(), 2, "the retry waits for its backoff");
    f.clock.advance_secs(10);
    handle.wake();
    wait_for(|| f.seen().len() == 3, "the retry");
    assert_eq!(
        f.seen()[2],
        json!(["* * * * *", slot2]),
        "same slot retried"
    );
    f.rt.block_on(handle.stop());
    assert_eq!(scheduler.last_fired("* * * * *").unwrap(), Some(slot2));
    drop(scheduler);

    // Down for an hour: the missed runs fire once, on start.
    f.clock.set_ms(slot2 + 3_600_000 + 5_000);
    let scheduler =
        Arc::new(CronScheduler::open(&path, "w", &["* * * * *"], f.clock.shared()).unwrap());
    let handle = f.rt.block_on(async {
        spawn_cron(f.pool.clone(), scheduler.clone(), f.clock.shared(), options)
    });
    wait_for(|| f.seen().len() == 4, "the missed run");
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(f.seen().len(), 4, "only once");
    assert_eq!(f.seen()[3], json!(["* * * * *", slot2 + 3_600_000]));
    f.rt.block_on(handle.stop());
}

/// Cluster mode's claims, scripted: each answer in turn, then `Mine`.
#[derive(Debug, Default)]
struct ScriptedClaims {
    answers: std::sync::Mutex<std::collections::VecDeque<Claim>>,
    asked: std::sync::Mutex<Vec<u64>>,
    done: std::sync::Mutex<Vec<u64>>,
}

impl SlotClaims for ScriptedClaims {
    fn claim(&self, _worker: &str, run: &DueRun) -> hearth_cron::Result<Claim> {
        self.asked.lock().unwrap().push(run.scheduled_time_ms);
        Ok(self
            .answers
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(Claim::Mine))
    }

    fn done(&self, _worker: &str, run: &DueRun) -> hearth_cron::Result<()> {
        self.done.lock().unwrap().push(run.scheduled_time_ms);
        Ok(())
    }
}

#[test]
fn with_claims_the_cron_task_runs_only_the_slots_it_claims() {
    let start = (START_MS / 60_000) * 60_000 + 30_000;
    let f = Fixture::new(
        r#"
  async scheduled(controller) {
    seen.push([controller.cron, controller.scheduledTime]);
  },
"#,
        "",
    );
    f.clock.set_ms(start);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cron.sqlite");
    let scheduler =
        Arc::new(CronScheduler::open(&path, "w", &["* * * * *"], f.clock.shared()).unwrap());
    let claims = Arc::new(ScriptedClaims::default());
    claims
        .answers
        .lock()
        .unwrap()
        .extend([Claim::Taken, Claim::Busy, Claim::Busy]);
    let options = CronOptions {
        max_retries: 3,
        retry_base: Duration::from_secs(10),
        poll_interval: Duration::from_millis(20),
        claims: Some(claims.clone()),
    };
    let handle = f.rt.block_on(async {
        spawn_cron(f.pool.clone(), scheduler.clone(), f.clock.shared(), options)
    });
    let asked = || claims.asked.lock().unwrap().clone();
    let slot1 = start + 30_000;
    f.clock.set_ms(slot1 + 1);
    handle.wake();
    wait_for(|| asked().len() == 1, "the first slot's claim");
    std::thread::sleep(Duration::from_millis(100));
    assert!(f.seen().is_empty(), "a slot another node took is not run");
    assert_eq!(asked(), vec![slot1], "nor asked about again");
    assert_eq!(scheduler.last_fired("* * * * *").unwrap(), Some(slot1));

    let slot2 = slot1 + 60_000;
    f.clock.set_ms(slot2 + 1);
    handle.wake();
    wait_for(|| asked().len() == 2, "the second slot's claim");
    std::thread::sleep(Duration::from_millis(100));
    assert!(f.seen().is_empty(), "a slot a live node holds is not run");
    // A busy slot is asked about again each poll interval.
    for n in [3, 4] {
        f.clock.advance_ms(20);
        handle.wake();
        wait_for(|| asked().len() == n, "the slot asked about again");
    }
    wait_for(|| f.seen().len() == 1, "the slot, once claimed");
    assert_eq!(f.seen()[0], json!(["* * * * *", slot2]));
    assert_eq!(asked(), vec![slot1, slot2, slot2, slot2]);
    wait_for(|| !claims.done.lock().unwrap().is_empty(), "the claim done");
    assert_eq!(*claims.done.lock().unwrap(), vec![slot2]);
    f.rt.block_on(handle.stop());
}

/// A body sent without `contentType` is JSON from compatibility date
/// 2024-03-18 (or with `queues_json_messages`), V8-serialized before it or
/// with `no_queues_json_messages`, as in workerd.
#[test]
fn the_default_content_type_follows_the_compatibility_date() {
    let cases: [(Option<&str>, &[&str], QueueContentType); 5] = [
        (Some("2025-09-01"), &[], QueueContentType::Json),
        (Some("2024-03-18"), &[], QueueContentType::Json),
        (Some("2024-03-17"), &[], QueueContentType::V8),
        (
            Some("2023-01-01"),
            &["queues_json_messages"],
            QueueContentType::Json,
        ),
        (
            Some("2025-09-01"),
            &["no_queues_json_messages"],
            QueueContentType::V8,
        ),
    ];
    for (date, flags, want) in cases {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(START_MS);
        let broker = QueueBroker::open(
            &dir.path().join("queues.sqlite"),
            clock.shared(),
            QueueLimits::default(),
        )
        .unwrap();
        broker.set_consumer(ConsumerConfig::worker("jobs")).unwrap();
        let producer = broker.producer("jobs", ProducerConfig::default()).unwrap();
        let flags: Vec<String> = flags.iter().map(|f| f.to_string()).collect();
        let adapter = QueueAdapter::new("JOBS", producer).with_compatibility(date, &flags);
        let source = worker_source(
            "",
            r#"    await env.JOBS.send({ when: new Date(0) });
    await env.JOBS.sendBatch([{ body: { n: 1 } }]);"#,
        );
        let pool = start(dir.path(), &source, vec![Arc::new(adapter)]);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let resp = rt
            .block_on(pool.dispatch(WorkerRequest::new("t", "GET", "http://localhost/")))
            .unwrap();
        assert_eq!(resp.status, 200);
        clock.advance_secs(5);
        let batch = broker.next_push_batch("jobs").unwrap().unwrap();
        let types: Vec<QueueContentType> = batch.messages.iter().map(|m| m.content_type).collect();
        assert_eq!(types, [want, want], "{date:?} {flags:?}");
        if want == QueueContentType::Json {
            assert_eq!(
                batch.messages[0].body,
                br#"{"when":"1970-01-01T00:00:00.000Z"}"#
            );
        }
        pool.shutdown();
        pool.join();
    }
}
