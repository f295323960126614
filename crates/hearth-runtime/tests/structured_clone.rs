//! The structured-clone format at its call sites: values stored before the
//! version marker (fixtures written by the old encoders) read back through a
//! Durable Object's `storage.get()` and a queue consumer, and what those
//! paths write now carries the marker.

mod durable_common;

use std::sync::Arc;

use durable_common::Setup;
use hearth_core::{DataDir, ManualClock, SystemClock};
use hearth_do::{DoLimits, DurableObjectHost, StorageBackend};
use hearth_queues::{
    ConsumerConfig, ProducerConfig, QueueBroker, QueueContentType, QueueLimits, QueueSendOptions,
};
use hearth_runtime::bindings::QueueAdapter;
use hearth_runtime::{BindingAdapter, IsolatePool, WorkerConfig, WorkerRequest};

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../hearth-webapi/tests/fixtures"
);

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{FIXTURES}/{name}")).unwrap()
}

/// `values.js` as `V` and `same.js`, ahead of a worker's module code.
fn prelude() -> String {
    format!(
        "{}\nconst V = {};\n",
        fixture("same.js"),
        fixture("values.js").trim_end().trim_end_matches(';')
    )
}

fn cases(file: &str) -> Vec<(String, String)> {
    let v: serde_json::Value = serde_json::from_str(&fixture(file)).unwrap();
    v.as_object()
        .unwrap()
        .iter()
        .map(|(k, x)| (k.clone(), x.as_str().unwrap().to_string()))
        .collect()
}

#[test]
fn durable_object_storage_reads_values_stored_before_the_marker() {
    let dir = tempfile::tempdir().unwrap();
    let stored = cases("legacy-durable-storage.json");
    {
        let host = DurableObjectHost::open(
            &DataDir::new(dir.path().join("data")),
            SystemClock::shared(),
            DoLimits::default(),
        )
        .unwrap();
        let ns = host.namespace("Counter", StorageBackend::Sqlite).unwrap();
        let storage = ns.storage(&ns.id_from_name("legacy")).unwrap();
        for (k, text) in &stored {
            storage.put(k, text.as_bytes()).unwrap();
        }
        storage.flush().unwrap();
    }
    let script = format!(
        r#"{}
import {{ DurableObject }} from "cloudflare:workers";
export class Counter extends DurableObject {{
  async fetch(request) {{
    const s = this.ctx.storage;
    if (new URL(request.url).pathname === "/write") {{
      await s.put("fresh", {{ m: new Map([[1, 2n]]) }});
      return new Response("ok");
    }}
    const bad = [];
    for (const k of Object.keys(V)) {{
      const d = same(legacyExpected("durable", k, V), await s.get(k), k, new Map(), true);
      if (d) bad.push(d);
    }}
    return Response.json(bad);
  }}
}}
export default {{
  fetch(request, env) {{
    return env.COUNTER.get(env.COUNTER.idFromName("legacy")).fetch(request);
  }},
}};
"#,
        prelude()
    );
    let w = Setup::new(dir.path(), &script).start();
    assert_eq!(w.json("/"), serde_json::json!([]));
    assert_eq!(w.get("/write"), "ok");
    w.stop();

    let host = DurableObjectHost::open(
        &DataDir::new(dir.path().join("data")),
        SystemClock::shared(),
        DoLimits::default(),
    )
    .unwrap();
    let ns = host.namespace("Counter", StorageBackend::Sqlite).unwrap();
    let storage = ns.storage(&ns.id_from_name("legacy")).unwrap();
    let fresh = String::from_utf8(storage.get("fresh").unwrap().unwrap()).unwrap();
    assert_eq!(
        fresh,
        r#"{"$sc":1,"v":{"$":"o","v":{"m":{"$":"m","v":[[1,{"$":"bi","v":"2"}]]}}}}"#
    );
}

#[test]
fn queue_consumer_reads_v8_messages_sent_before_the_marker() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(1_700_000_000_000);
    let broker = QueueBroker::open(
        &dir.path().join("queues.sqlite"),
        clock.shared(),
        QueueLimits::default(),
    )
    .unwrap();
    let producer = broker.producer("jobs", ProducerConfig::default()).unwrap();
    let v8 = QueueSendOptions {
        content_type: QueueContentType::V8,
        delay_seconds: None,
    };
    let stored = cases("legacy-structured-v8.json");
    for (_, text) in &stored {
        producer.send(text.as_bytes().to_vec(), &v8).unwrap();
    }
    let script = format!(
        r#"{}
const keys = Object.keys(V);
let result = null;
export default {{
  async fetch(request, env) {{
    if (new URL(request.url).pathname === "/send") {{
      await env.JOBS.send({{ when: new Date(0) }}, {{ contentType: "v8" }});
      return new Response("ok");
    }}
    return Response.json(result);
  }},
  async queue(batch) {{
    const bad = [];
    if (batch.messages.length !== keys.length) bad.push("got " + batch.messages.length + " messages");
    batch.messages.forEach((m, i) => {{
      const d = same(legacyExpected("v8", keys[i], V), m.body, keys[i], new Map(), false);
      if (d) bad.push(d);
    }});
    result = bad;
  }},
}};
"#,
        prelude()
    );
    std::fs::write(dir.path().join("index.js"), script).unwrap();
    let mut config = WorkerConfig::new(dir.path().join("index.js"));
    config.isolates = 1;
    config.bindings =
        vec![Arc::new(QueueAdapter::new("JOBS", producer)) as Arc<dyn BindingAdapter>];
    let pool = IsolatePool::start(config).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let get = |path: &str| {
        let resp = rt
            .block_on(pool.dispatch(WorkerRequest::new(
                "t",
                "GET",
                format!("http://localhost{path}"),
            )))
            .unwrap();
        String::from_utf8(resp.body.to_vec()).unwrap()
    };

    let mut consumer = ConsumerConfig::worker("jobs");
    consumer.max_batch_size = stored.len() as u32;
    broker.set_consumer(consumer).unwrap();
    clock.advance_secs(5);
    let batch = broker.next_push_batch("jobs").unwrap().unwrap();
    assert_eq!(batch.messages.len(), stored.len());
    let outcome = rt.block_on(pool.queue("b1", &batch));
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    assert_eq!(get("/"), "[]");

    // What the producer writes now carries the version marker.
    assert_eq!(get("/send"), "ok");
    clock.advance_secs(5);
    let batch = broker.next_push_batch("jobs").unwrap().unwrap();
    assert_eq!(
        String::from_utf8(batch.messages[0].body.clone()).unwrap(),
        r#"{"$sc":1,"v":{"$":"o","v":{"when":{"$":"d","v":0}}}}"#
    );
    pool.shutdown();
    pool.join();
}

/// A Workflow instance whose params, journaled step output and pending event
/// were written before the marker replays with those values, and what it
/// writes now (its output) carries the marker.
#[test]
fn workflow_reads_params_step_outputs_and_events_written_before_the_marker() {
    use hearth_runtime::bindings::workflow::runner::{
        WorkflowRunnerOptions, Workflows, spawn_workflow_runner,
    };
    use hearth_workflows::{
        CreateOptions, StepConfig, StepDecision, WorkflowEngine, WorkflowLimits,
    };

    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(1_700_000_000_000);
    let limits = WorkflowLimits::default();
    let lease_ms = limits.lease_ms;
    let engine = Arc::new(
        WorkflowEngine::open(dir.path().join("workflows.sqlite"), clock.shared(), limits).unwrap(),
    );
    let stored: std::collections::HashMap<String, String> =
        cases("legacy-structured-v8.json").into_iter().collect();
    // The old runtime's first run: params stored, one step journaled, then
    // the process died with the run's lease held; an event came meanwhile.
    engine
        .create(
            "legacy",
            CreateOptions::new()
                .id("w1")
                .params(stored["object"].as_bytes().to_vec()),
        )
        .unwrap();
    let mut ticket = engine.claim_due().unwrap().pop().unwrap();
    let StepDecision::Run { occurrence, .. } = engine
        .step_begin(&mut ticket, "journaled", &StepConfig::default())
        .unwrap()
    else {
        panic!("the step should run");
    };
    engine
        .step_success(
            &ticket,
            "journaled",
            occurrence,
            stored["cyclicMap"].as_bytes(),
        )
        .unwrap();
    engine
        .send_event("legacy", "w1", "go", stored["sharedRefs"].as_bytes())
        .unwrap();
    clock.advance_ms(lease_ms + 1);

    let script = format!(
        r#"{}
import {{ WorkflowEntrypoint }} from "cloudflare:workers";
export class Legacy extends WorkflowEntrypoint {{
  async run(event, step) {{
    const bad = [];
    const check = (key, got) => {{ const d = same(legacyExpected("v8", key, V), got, key, new Map(), false); if (d) bad.push(d); }};
    check("object", event.payload);
    check("cyclicMap", await step.do("journaled", async () => {{ bad.push("journaled step ran again"); return null; }}));
    check("sharedRefs", (await step.waitForEvent("go", {{ type: "go", timeout: "1 hour" }})).payload);
    return {{ bad, at: new Date(0) }};
  }}
}}
export default {{
  async fetch(request, env) {{
    return Response.json(await (await env.LEGACY.get("w1")).status());
  }},
}};
"#,
        prelude()
    );
    std::fs::write(dir.path().join("index.js"), script).unwrap();
    let workflows = Workflows::new(
        engine.clone(),
        [("legacy".to_string(), "Legacy".to_string())],
    );
    let mut config = WorkerConfig::new(dir.path().join("index.js"));
    config.isolates = 1;
    config.bindings =
        vec![Arc::new(workflows.adapter("LEGACY", "legacy").unwrap()) as Arc<dyn BindingAdapter>];
    config.workflows = Some(workflows.clone());
    let pool = IsolatePool::start(config).unwrap();
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
                poll_interval: std::time::Duration::from_secs(3600),
            },
        )
    };
    runner.wake();
    let mut status = serde_json::Value::Null;
    for _ in 0..500 {
        let resp = rt
            .block_on(pool.dispatch(WorkerRequest::new("t", "GET", "http://localhost/")))
            .unwrap();
        status = serde_json::from_slice(&resp.body).unwrap();
        if status["status"] == "complete" || status["status"] == "errored" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(
        status,
        serde_json::json!({"status": "complete", "output": {"bad": [], "at": "1970-01-01T00:00:00.000Z"}})
    );
    let output = engine.status("legacy", "w1").unwrap().output.unwrap();
    assert_eq!(
        String::from_utf8(output).unwrap(),
        r#"{"$sc":1,"v":{"$":"o","v":{"bad":{"$":"a","v":[]},"at":{"$":"d","v":0}}}}"#
    );
    rt.block_on(runner.stop());
    pool.shutdown();
    pool.join();
}
