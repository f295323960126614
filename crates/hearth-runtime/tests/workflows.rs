//! Workflows in the runtime: `WorkflowEntrypoint` classes run by the runner
//! task over the engine, driven by a manual clock. A module-level counter in
//! the single isolate records every step callback, so a test sees exactly
//! how often each callback ran across replays.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hearth_core::ManualClock;
use hearth_runtime::bindings::workflow::runner::{
    WorkflowRunnerOptions, Workflows, spawn_workflow_runner,
};
use hearth_runtime::{BindingAdapter, IsolatePool, WorkerConfig, WorkerRequest};
use hearth_workflows::{StepState, WorkflowEngine, WorkflowLimits};
use serde_json::{Value, json};

const START_MS: u64 = 1_700_000_000_000;

const WORKER: &str = r#"
import { WorkflowEntrypoint } from "cloudflare:workers";
import { NonRetryableError } from "cloudflare:workflows";

const calls = {};
const bump = (k) => (calls[k] = (calls[k] || 0) + 1);

export class Pipeline extends WorkflowEntrypoint {
  async run(event, step) {
    const id = event.instanceId;
    bump(id + ":replay");
    const first = await step.do("first", async () => {
      bump(id + ":first");
      return { n: event.payload.n * 2, at: new Date(0) };
    });
    await step.sleep("nap", "1 minute");
    const flaky = await step.do("flaky", { retries: { limit: 3, delay: "10 seconds", backoff: "linear" } }, async () => {
      const c = bump(id + ":flaky");
      if (c < 3) throw new Error("flaky attempt " + c);
      return c;
    });
    const ev = await step.waitForEvent("approval", { type: "approve", timeout: "1 hour" });
    return {
      doubled: first.n, isDate: first.at instanceof Date, flaky,
      approved: ev.payload, eventType: ev.type, eventIsDate: ev.timestamp instanceof Date,
      env: this.env.GREETING, ctx: typeof this.ctx.waitUntil,
      eventTs: event.timestamp instanceof Date ? event.timestamp.getTime() : null,
    };
  }
}

export class Fragile extends WorkflowEntrypoint {
  async run(event, step) {
    const id = event.instanceId;
    let caught = null;
    try {
      await step.do("limited", { retries: { limit: 0, delay: 0 } }, async () => {
        bump(id + ":limited");
        throw new TypeError("always fails");
      });
    } catch (e) {
      caught = e.name + ": " + e.message;
    }
    let timedOut = null;
    try {
      await step.do("slow", { retries: { limit: 0, delay: 0 }, timeout: 30 }, () => new Promise(() => {}));
    } catch (e) {
      timedOut = e.name + ": " + e.message;
    }
    let refused = null;
    try {
      await step.do("refused", async () => {
        bump(id + ":refused");
        throw new NonRetryableError("caught by run");
      });
    } catch (e) {
      refused = { name: e.name, message: e.message };
    }
    let custom = null;
    try {
      await step.do("custom", { retries: { limit: 0, delay: 0 } }, async () => {
        const e = new Error("mine");
        e.name = "MyError";
        throw e;
      });
    } catch (e) {
      custom = { name: e.name, message: e.message };
    }
    let badName = null;
    try {
      await step.do("x".repeat(257), async () => 1);
    } catch (e) {
      badName = e.name + ": " + e.message.slice(0, 40);
    }
    if (event.payload.fatal) {
      await step.do("fatal", async () => {
        bump(id + ":fatal");
        throw new NonRetryableError("no point retrying");
      });
    }
    return { caught, timedOut, refused, custom, badName };
  }
}

export class Sleeper extends WorkflowEntrypoint {
  async run(event, step) {
    const id = event.instanceId;
    await step.do("before", async () => bump(id + ":before"));
    try {
      if (event.payload.until) await step.sleepUntil("until", new Date(event.payload.until));
      else await step.sleep("long", event.payload.ms);
    } catch (e) {
      // A suspension is not an exception: this never runs.
      bump(id + ":swallowed");
    }
    let waited = null;
    if (event.payload.wait) {
      try {
        await step.waitForEvent("w", { type: "go", timeout: "1 minute" });
        waited = "received";
      } catch (e) {
        // The timeout reaches run as an exception it may catch.
        waited = e.name + ": " + e.message;
      }
    }
    return { woke: true, waited };
  }
}

async function op(env, o) {
  const wf = env[o.wf];
  switch (o.op) {
    case "create": return (await wf.create({ id: o.id, params: o.params })).id;
    case "createBatch": return (await wf.createBatch(o.batch)).map((i) => i.id);
    case "status": return await (await wf.get(o.id)).status();
    case "pause": case "resume": case "terminate": case "restart":
      await (await wf.get(o.id))[o.op](); return null;
    case "event": await (await wf.get(o.id)).sendEvent({ type: o.type, payload: o.payload }); return null;
    case "calls": return calls;
  }
  throw new Error("unknown op " + o.op);
}

export default {
  async fetch(request, env) {
    const o = await request.json();
    try {
      return Response.json({ ok: await op(env, o) });
    } catch (e) {
      return Response.json({ error: e.name, message: e.message });
    }
  },
};
"#;

struct Fixture {
    _dir: tempfile::TempDir,
    pool: IsolatePool,
    engine: Arc<WorkflowEngine>,
    clock: ManualClock,
    runner: Option<hearth_runtime::bindings::registry::TaskHandle>,
    rt: tokio::runtime::Runtime,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(START_MS);
        let engine = Arc::new(
            WorkflowEngine::open(
                dir.path().join("workflows.sqlite"),
                clock.shared(),
                WorkflowLimits::default(),
            )
            .unwrap(),
        );
        let workflows = Workflows::new(
            engine.clone(),
            [
                ("pipeline".to_string(), "Pipeline".to_string()),
                ("fragile".to_string(), "Fragile".to_string()),
                ("sleeper".to_string(), "Sleeper".to_string()),
            ],
        );
        let bindings: Vec<Arc<dyn BindingAdapter>> = vec![
            Arc::new(workflows.adapter("PIPELINE", "pipeline").unwrap()),
            Arc::new(workflows.adapter("FRAGILE", "fragile").unwrap()),
            Arc::new(workflows.adapter("SLEEPER", "sleeper").unwrap()),
        ];
        assert!(workflows.adapter("X", "undeclared").is_none());
        let pool = start(dir.path(), bindings, workflows.clone());
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let runner = {
            let _guard = rt.enter();
            spawn_workflow_runner(
                pool.clone(),
                workflows,
                clock.shared(),
                WorkflowRunnerOptions {
                    // Long, so only wake-ups and clock moves drive the tests.
                    poll_interval: Duration::from_secs(3600),
                },
            )
        };
        Fixture {
            _dir: dir,
            pool,
            engine,
            clock,
            runner: Some(runner),
            rt,
        }
    }

    fn call(&self, body: Value) -> Value {
        let resp = self
            .rt
            .block_on(self.pool.dispatch(WorkerRequest {
                id: "t".into(),
                method: "POST".into(),
                url: "http://localhost/".into(),
                headers: vec![],
                body: Bytes::from(body.to_string()),
                body_stream: None,
                cf: None,
            }))
            .unwrap();
        let text = String::from_utf8(resp.body.to_vec()).unwrap();
        assert_eq!(resp.status, 200, "{text}");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
    }

    fn ok(&self, body: Value) -> Value {
        let v = self.call(body.clone());
        assert!(v.get("error").is_none(), "{body} failed: {v}");
        v["ok"].clone()
    }

    fn status(&self, wf: &str, id: &str) -> Value {
        self.ok(json!({"op": "status", "wf": wf, "id": id}))
    }

    fn calls(&self, key: &str) -> u64 {
        self.ok(json!({"op": "calls"}))[key].as_u64().unwrap_or(0)
    }

    /// Moves the clock and lets the runner look at once.
    fn advance(&self, ms: u64) {
        self.clock.advance_ms(ms);
        self.runner.as_ref().unwrap().wake();
    }

    /// Polls until the instance reaches `want` (and the engine has nothing
    /// due, so a suspended run has really been recorded).
    fn wait_status(&self, wf: &str, id: &str, want: &str) -> Value {
        for _ in 0..500 {
            let s = self.status(wf, id);
            if s["status"] == want {
                return s;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("{wf}/{id} never became {want}: {}", self.status(wf, id));
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(r) = self.runner.take() {
            self.rt.block_on(r.stop());
        }
        self.pool.shutdown();
        self.pool.join();
    }
}

fn start(dir: &Path, bindings: Vec<Arc<dyn BindingAdapter>>, wf: Arc<Workflows>) -> IsolatePool {
    std::fs::write(dir.join("index.js"), WORKER).unwrap();
    let mut config = WorkerConfig::new(dir.join("index.js"));
    config.isolates = 1;
    config.bindings = bindings;
    config.vars.insert("GREETING".into(), json!("hi"));
    config.workflows = Some(wf);
    IsolatePool::start(config).unwrap()
}

#[test]
fn steps_are_cached_across_replays_sleeps_wake_retries_back_off_and_events_arrive() {
    let f = Fixture::new();
    let id = f.ok(json!({"op": "create", "wf": "PIPELINE", "id": "p1", "params": {"n": 21}}));
    assert_eq!(id, "p1");
    // Runs "first", then sleeps for a minute.
    f.wait_status("PIPELINE", "p1", "waiting");
    assert_eq!(f.calls("p1:first"), 1);
    let d = f.engine.describe("pipeline", "p1").unwrap();
    assert_eq!(d.wake_at_ms, Some(START_MS + 60_000));
    assert_eq!(d.steps[1].state, StepState::Sleeping);

    // Not yet: a wake-up before the sleep ends changes nothing.
    f.advance(59_000);
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(f.status("PIPELINE", "p1")["status"], "waiting");

    // The sleep ends: "first" is replayed from the journal, "flaky" fails
    // its first attempt and waits 10 s (linear backoff: 10 s, then 20 s).
    f.advance(1_000);
    wait_until(|| f.calls("p1:flaky") == 1, "flaky attempt 1");
    f.wait_status("PIPELINE", "p1", "waiting");
    let d = f.engine.describe("pipeline", "p1").unwrap();
    assert_eq!(d.wake_at_ms, Some(START_MS + 70_000));
    f.advance(10_000);
    wait_until(|| f.calls("p1:flaky") == 2, "flaky attempt 2");
    f.wait_status("PIPELINE", "p1", "waiting");
    assert_eq!(
        f.engine.describe("pipeline", "p1").unwrap().wake_at_ms,
        Some(START_MS + 90_000)
    );
    f.advance(20_000);
    wait_until(|| f.calls("p1:flaky") == 3, "flaky attempt 3");
    // Now waiting for the event (one hour at most).
    f.wait_status("PIPELINE", "p1", "waiting");
    assert_eq!(
        f.engine.describe("pipeline", "p1").unwrap().wake_at_ms,
        Some(START_MS + 90_000 + 3_600_000)
    );
    f.ok(json!({"op": "event", "wf": "PIPELINE", "id": "p1", "type": "approve", "payload": {"by": "ann"}}));
    let s = f.wait_status("PIPELINE", "p1", "complete");
    assert_eq!(
        s,
        json!({"status": "complete", "output": {
            "doubled": 42, "isDate": true, "flaky": 3,
            "approved": {"by": "ann"}, "eventType": "approve", "eventIsDate": true,
            "env": "hi", "ctx": "function", "eventTs": START_MS,
        }})
    );
    // Every callback ran exactly as often as it had to.
    assert_eq!(f.calls("p1:first"), 1);
    assert_eq!(f.calls("p1:flaky"), 3);
    // Code outside steps ran once per replay: start, after the sleep, after
    // each of two retries, after the event.
    assert_eq!(f.calls("p1:replay"), 5);
    let d = f.engine.describe("pipeline", "p1").unwrap();
    let flaky = d.steps.iter().find(|s| s.name == "flaky").unwrap();
    assert_eq!(flaky.attempts.len(), 3);
    assert_eq!(
        flaky.attempts[0].error.as_ref().unwrap().message,
        "flaky attempt 1"
    );
}

#[test]
fn failures_reach_run_as_exceptions_and_non_retryable_errors_fail_the_instance() {
    let f = Fixture::new();
    f.ok(json!({"op": "create", "wf": "FRAGILE", "id": "caught", "params": {}}));
    let s = f.wait_status("FRAGILE", "caught", "complete");
    assert_eq!(
        s["output"],
        json!({
            "caught": "TypeError: always fails",
            // Errors reach `run` as they cross Cloudflare's RPC: built-in
            // classes stay, others become an Error named in the message.
            "timedOut": "Error: WorkflowTimeoutError: Execution timed out after 30ms",
            "refused": {"name": "Error", "message": "NonRetryableError: caught by run"},
            "custom": {"name": "Error", "message": "MyError: mine"},
            "badName": "Error: WorkflowFatalError: Step name \"xxxxxxxxx",
        })
    );
    assert_eq!(f.calls("caught:limited"), 1, "limit 0 means one attempt");
    assert_eq!(
        f.calls("caught:refused"),
        1,
        "a NonRetryableError is not retried"
    );

    f.ok(json!({"op": "create", "wf": "FRAGILE", "id": "fatal", "params": {"fatal": true}}));
    let s = f.wait_status("FRAGILE", "fatal", "errored");
    assert_eq!(
        s,
        json!({"status": "errored", "error": {"name": "NonRetryableError", "message": "no point retrying"}})
    );
    // Default retries would allow 6 attempts; NonRetryableError stops at one.
    assert_eq!(f.calls("fatal:fatal"), 1);
}

#[test]
fn sleep_until_wakes_at_its_time_and_wait_for_event_times_out() {
    let f = Fixture::new();
    let until = START_MS + 5 * 60_000;
    f.ok(json!({"op": "create", "wf": "SLEEPER", "id": "s1", "params": {"until": until, "wait": true}}));
    f.wait_status("SLEEPER", "s1", "waiting");
    assert_eq!(
        f.engine.describe("sleeper", "s1").unwrap().wake_at_ms,
        Some(until)
    );
    f.advance(5 * 60_000);
    // Now in waitForEvent("w", {timeout: "1 minute"}).
    wait_until(
        || {
            f.engine
                .describe("sleeper", "s1")
                .unwrap()
                .steps
                .iter()
                .any(|s| s.name == "w")
        },
        "the event wait",
    );
    f.wait_status("SLEEPER", "s1", "waiting");
    f.advance(60_000);
    let s = f.wait_status("SLEEPER", "s1", "complete");
    assert_eq!(
        s["output"],
        json!({"woke": true, "waited": "Error: WorkflowTimeoutError: Execution timed out after 60000ms"})
    );
    assert_eq!(f.calls("s1:before"), 1);
    assert_eq!(f.calls("s1:swallowed"), 0);

    // An event sent before the wait is kept for it.
    f.ok(
        json!({"op": "create", "wf": "SLEEPER", "id": "s2", "params": {"ms": 1000, "wait": true}}),
    );
    f.wait_status("SLEEPER", "s2", "waiting");
    f.ok(json!({"op": "event", "wf": "SLEEPER", "id": "s2", "type": "go"}));
    f.advance(1_000);
    let s = f.wait_status("SLEEPER", "s2", "complete");
    assert_eq!(s["output"], json!({"woke": true, "waited": "received"}));
}

#[test]
fn pause_resume_terminate_and_restart() {
    let f = Fixture::new();
    f.ok(json!({"op": "create", "wf": "SLEEPER", "id": "x", "params": {"ms": 60_000}}));
    f.wait_status("SLEEPER", "x", "waiting");
    f.ok(json!({"op": "pause", "wf": "SLEEPER", "id": "x"}));
    assert_eq!(f.status("SLEEPER", "x"), json!({"status": "paused"}));
    // A paused instance does not wake when its sleep ends.
    f.advance(60_000);
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(f.status("SLEEPER", "x")["status"], "paused");
    // Time spent paused does not count: the sleep is pushed back by it.
    f.ok(json!({"op": "resume", "wf": "SLEEPER", "id": "x"}));
    assert_eq!(f.status("SLEEPER", "x")["status"], "waiting");
    assert_eq!(
        f.engine.describe("sleeper", "x").unwrap().wake_at_ms,
        Some(START_MS + 120_000)
    );
    f.advance(60_000);
    f.wait_status("SLEEPER", "x", "complete");
    assert_eq!(f.calls("x:before"), 1);

    // Restart: the journal is gone, so every step runs again.
    f.ok(json!({"op": "restart", "wf": "SLEEPER", "id": "x"}));
    wait_until(|| f.calls("x:before") == 2, "the restarted run");
    f.wait_status("SLEEPER", "x", "waiting");

    f.ok(json!({"op": "terminate", "wf": "SLEEPER", "id": "x"}));
    assert_eq!(f.status("SLEEPER", "x"), json!({"status": "terminated"}));
    f.advance(60_000);
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(f.status("SLEEPER", "x")["status"], "terminated");
    let again = f.call(json!({"op": "terminate", "wf": "SLEEPER", "id": "x"}));
    assert_eq!(
        again,
        json!({"error": "Error", "message": "WorkflowError: (instance.cannot_terminate) Cannot terminate instance since its on a finite state"})
    );
    let event = f.call(json!({"op": "event", "wf": "SLEEPER", "id": "x", "type": "go"}));
    assert_eq!(
        event["message"],
        "WorkflowError: (instance.cannot_send_event) Cannot send event to instance since its on a finite state"
    );
}

#[test]
fn binding_errors_carry_the_engine_messages() {
    let f = Fixture::new();
    let err = |body: Value| {
        let v = f.call(body);
        (
            v["error"].as_str().unwrap_or("").to_string(),
            v["message"].as_str().unwrap_or("").to_string(),
        )
    };
    f.ok(json!({"op": "create", "wf": "SLEEPER", "id": "dup", "params": {"ms": 1}}));
    assert_eq!(
        err(json!({"op": "create", "wf": "SLEEPER", "id": "dup"})),
        (
            "Error".into(),
            "WorkflowError: (instance.already_exists) Instance already exists".into()
        )
    );
    assert_eq!(
        err(json!({"op": "status", "wf": "SLEEPER", "id": "nope"})),
        ("Error".into(), "instance.not_found".into())
    );
    assert_eq!(
        err(json!({"op": "create", "wf": "SLEEPER", "id": "bad id!"})),
        (
            "Error".into(),
            "WorkflowError: Workflow instance has invalid id".into()
        )
    );
    assert_eq!(
        err(json!({"op": "createBatch", "wf": "SLEEPER", "batch": []})).1,
        "WorkflowError: batchCreate should have at least 1 instance"
    );
    let big: Vec<Value> = (0..101).map(|i| json!({"id": format!("b{i}")})).collect();
    assert_eq!(
        err(json!({"op": "createBatch", "wf": "SLEEPER", "batch": big})).1,
        "WorkflowError: batchCreate only supports 100 instances at a time"
    );
    // A batch skips ids that exist; a random id when none is given.
    let ids = f.ok(json!({"op": "createBatch", "wf": "SLEEPER", "batch": [
        {"id": "dup", "params": {"ms": 1}}, {"id": "b1", "params": {"ms": 1}}, {"params": {"ms": 1}}
    ]}));
    let ids = ids.as_array().unwrap();
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert_eq!(ids[0], "b1");
    assert_eq!(ids[1].as_str().unwrap().len(), 36, "a UUID");
}

fn wait_until(mut check: impl FnMut() -> bool, what: &str) {
    for _ in 0..500 {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("timed out waiting for {what}");
}
