//! The host's built-in scripts (Web APIs, prelude, Cache API, events,
//! Durable Object and binding glue) are compiled by the first isolate of a
//! process and loaded from bytecode by the next: the later isolate behaves
//! the same, and errors passing through built-in code keep their file and
//! line. Its own test binary, so the first pool here is the process's first.

use hearth_runtime::{IsolatePool, WorkerConfig, WorkerRequest};

const WORKER: &str = r#"
export default {
  async fetch(request, env, ctx) {
    const out = {};
    try {
      await new Response(new ReadableStream({ pull() { throw new Error('in pull'); } })).text();
    } catch (e) {
      out.stream = e.stack;
    }
    try {
      await new Response('not json').json();
    } catch (e) {
      out.json = e.name;
    }
    out.url = new URL('/a?b=1', request.url).searchParams.get('b');
    out.cache = typeof caches.default.match;
    out.waitUntil = typeof ctx.waitUntil;
    out.headers = [...new Headers({ 'X-A': '1' })];
    return Response.json(out);
  },
};
"#;

fn ask(dir: &std::path::Path) -> serde_json::Value {
    let mut config = WorkerConfig::new(dir.join("index.js"));
    config.isolates = 1;
    let pool = IsolatePool::start(config).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let r = rt
        .block_on(pool.dispatch(WorkerRequest::new(
            "t",
            "GET",
            "http://localhost/".to_string(),
        )))
        .unwrap();
    pool.shutdown();
    pool.join();
    assert_eq!(r.status, 200);
    serde_json::from_slice(&r.body).unwrap()
}

#[test]
fn a_later_isolate_runs_the_built_ins_from_bytecode_alike() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("index.js"), WORKER).unwrap();
    let (scripts_before, _) = hearth_webapi::builtin::stats();
    let first = ask(dir.path());
    let (scripts, bytes) = hearth_webapi::builtin::stats();
    assert!(
        scripts >= scripts_before + 4,
        "the Web APIs, prelude, Cache API and events are kept: {scripts}"
    );
    assert!(bytes > 0);

    let second = ask(dir.path());
    assert_eq!(
        hearth_webapi::builtin::stats().0,
        scripts,
        "nothing compiled again"
    );
    assert_eq!(first, second);
    assert_eq!(first["json"], "SyntaxError");
    assert_eq!(first["url"], "1");
    assert_eq!(first["cache"], "function");
    assert_eq!(first["waitUntil"], "function");
    assert_eq!(first["headers"], serde_json::json!([["x-a", "1"]]));
    // The stack still names the user's line and the built-in's file:line.
    let stack = second["stream"].as_str().unwrap_or_default();
    assert!(stack.contains("at pull (index.js:6:"), "{second}");
    assert!(
        stack.lines().any(|l| l.contains("(eval_script:")),
        "a built-in frame with its location: {stack}"
    );
}
