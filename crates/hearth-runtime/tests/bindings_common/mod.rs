//! Runs a module worker whose fetch handler fills a transcript object, and
//! reads the transcript back as JSON.

#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;

use hearth_runtime::{BindingAdapter, IsolatePool, WorkerConfig, WorkerRequest};
use serde_json::Value;

/// Runs `body` (statements inside `async fetch(request, env)`, writing to
/// `out`; `attempt(out, label, f)` records `{ok}` or `{error, message}`) in
/// a worker with `bindings`, and returns `out`.
pub fn transcript(dir: &Path, bindings: Vec<Arc<dyn BindingAdapter>>, body: &str) -> Value {
    let script = format!(
        r#"
const attempt = async (out, label, f) => {{
  try {{ out[label] = {{ ok: await f() }}; }}
  catch (e) {{ out[label] = {{ error: e && e.constructor ? e.constructor.name : String(e), message: e && e.message, cause: e && e.cause ? e.cause.message : undefined }}; }}
}};
export default {{
  async fetch(request, env) {{
    const out = {{}};
{body}
    return Response.json(out);
  }}
}};
"#
    );
    std::fs::write(dir.join("index.js"), script).unwrap();
    let mut config = WorkerConfig::new(dir.join("index.js"));
    config.isolates = 1;
    config.bindings = bindings;
    let pool = IsolatePool::start(config).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let resp = rt.block_on(pool.dispatch(WorkerRequest::new("t", "GET", "http://localhost/")));
    pool.shutdown();
    pool.join();
    let resp = resp.unwrap();
    let text = String::from_utf8(resp.body.to_vec()).unwrap();
    assert_eq!(resp.status, 200, "{text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// The value a step resolved to (`undefined` reads as null).
pub fn ok(t: &Value, label: &str) -> Value {
    match t.get(label) {
        Some(v) if v.is_object() && v.get("error").is_none() => {
            v.get("ok").cloned().unwrap_or(Value::Null)
        }
        _ => panic!("{label}: {}", t[label]),
    }
}

/// `(class name, message)` of the error a step failed with.
pub fn err(t: &Value, label: &str) -> (String, String) {
    let v = &t[label];
    match (v["error"].as_str(), v["message"].as_str()) {
        (Some(c), Some(m)) => (c.to_string(), m.to_string()),
        _ => panic!("{label} did not fail: {v}"),
    }
}

/// The message of the `cause` of the error a step failed with.
pub fn cause(t: &Value, label: &str) -> Option<String> {
    t[label]["cause"].as_str().map(str::to_string)
}
