//! `err.stack` read inside JS begins with V8's `Name: message` line, then
//! the frames, for every kind of error; the host's own description of an
//! uncaught error keeps a single head line.

use hearth_runtime::{DispatchError, IsolatePool, WorkerConfig, WorkerRequest};
use serde_json::Value;

const WORKER: &str = r#"
class MyError extends Error {
  constructor(message) { super(message); this.name = "MyError"; }
}
class Quiet extends RangeError {}
function thrower() { throw new TypeError("from a function"); }
// The shape many libraries use for their errors.
class HttpError extends Error {
  constructor(status) {
    super("status " + status);
    this.name = "HttpError";
    Error.captureStackTrace(this, HttpError);
  }
}
function makeHttpError() { return new HttpError(404); }

function caught(f) { try { f(); } catch (e) { return e; } return null; }

export default {
  async fetch(request) {
    const url = new URL(request.url);
    if (url.pathname === "/uncaught") thrower();
    if (url.pathname === "/import") {
      const out = [];
      for (const m of ["./bad.js", "./bad.ts"]) {
        try { await import(m); out.push(m + " imported"); } catch (e) { out.push(e.stack); }
      }
      return Response.json(out);
    }
    const errors = {
      plain: new Error("plain message"),
      empty: new Error(),
      type: new TypeError("bad type"),
      range: caught(() => new Array(-1)),
      native: caught(() => null.x),
      json: caught(() => JSON.parse("{")),
      user: new MyError("custom name"),
      inherited: new Quiet("subclass without a name"),
      fn: caught(thrower),
      multiline: new Error("line one\nline two"),
      captured: makeHttpError(),
      aggregate: new AggregateError([new Error("inner")], "many"),
    };
    const out = {};
    for (const [k, e] of Object.entries(errors)) {
      const s = e.stack;
      out[k] = { name: e.name, message: e.message, stack: s, again: e.stack === s };
    }
    // Once read, the text is fixed, as on V8.
    const later = new Error("before");
    const first = later.stack;
    later.message = "after";
    out.fixed = later.stack === first;
    // Read first after a change: formatted then.
    const renamed = new Error("m");
    renamed.name = "Renamed";
    out.renamed = renamed.stack.split("\n")[0];
    // A stack the worker sets is kept as it is.
    const set = new Error("x");
    set.stack = "mine";
    out.set = set.stack;
    // A frozen error still reads with its head line.
    out.frozen = Object.freeze(new SyntaxError("cold")).stack.split("\n")[0];
    out.ownAfterRead = Object.getOwnPropertyNames(later).includes("stack");
    out.enumerable = Object.keys(later).includes("stack");
    // captureStackTrace on a plain object, and a stack set over a capture.
    const plainObj = { message: "on an object" };
    Error.captureStackTrace(plainObj);
    out.plainObj = plainObj.stack.split("\n")[0];
    const over = {};
    Error.captureStackTrace(over);
    over.stack = "replaced";
    out.over = over.stack;
    // Error.prepareStackTrace, as source-map tools and callsite readers use it.
    Error.prepareStackTrace = (e, sites) => "custom " + e.message + " " + Array.isArray(sites);
    out.prepared = new Error("p").stack;
    Error.prepareStackTrace = (e, sites) => sites;
    out.sites = typeof new Error("s").stack[0].getFunctionName;
    Error.prepareStackTrace = undefined;
    out.afterPrepare = new Error("q").stack.split("\n")[0];
    return Response.json(out);
  }
}
"#;

fn request(path: &str) -> WorkerRequest {
    WorkerRequest::new("t", "GET", format!("http://localhost{path}"))
}

#[test]
fn stack_begins_with_name_and_message() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("index.js"), WORKER).unwrap();
    std::fs::write(
        dir.path().join("bad.js"),
        "export const a = 1;\nexport const b = (a +;\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("bad.ts"),
        "export const a: number = 1;\nexport const b: number = (a +;\n",
    )
    .unwrap();
    let mut config = WorkerConfig::new(dir.path().join("index.js"));
    config.module_root = Some(dir.path().to_path_buf());
    let pool = IsolatePool::start(config).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let r = rt.block_on(pool.dispatch(request("/"))).unwrap();
    let text = String::from_utf8(r.body.to_vec()).unwrap();
    assert_eq!(r.status, 200, "{text}");
    let out: Value = serde_json::from_str(&text).unwrap();

    let heads = [
        ("plain", "Error: plain message"),
        ("empty", "Error"),
        ("type", "TypeError: bad type"),
        ("user", "MyError: custom name"),
        ("inherited", "RangeError: subclass without a name"),
        ("fn", "TypeError: from a function"),
        ("multiline", "Error: line one\nline two"),
        ("aggregate", "AggregateError: many"),
        ("captured", "HttpError: status 404"),
    ];
    for (k, head) in heads {
        let stack = out[k]["stack"]
            .as_str()
            .unwrap_or_else(|| panic!("{k}: {out}"));
        assert!(
            stack.starts_with(&format!("{head}\n    at ")),
            "{k}: {stack:?}"
        );
        assert!(!stack.ends_with('\n'), "{k}: {stack:?}");
        assert_eq!(out[k]["again"], true, "{k}");
    }
    // Errors thrown by the engine itself: head from their own name/message.
    for k in ["range", "native", "json"] {
        let e = &out[k];
        let head = format!(
            "{}: {}\n",
            e["name"].as_str().unwrap(),
            e["message"].as_str().unwrap()
        );
        let stack = e["stack"].as_str().unwrap();
        assert!(stack.starts_with(&head), "{k}: {stack:?}");
        assert!(stack[head.len()..].starts_with("    at "), "{k}: {stack:?}");
    }
    // The frame of the function that threw is named.
    assert!(
        out["fn"]["stack"].as_str().unwrap().contains("at thrower"),
        "{}",
        out["fn"]["stack"]
    );
    // captureStackTrace(this, HttpError) leaves out the constructor's frame.
    let captured = out["captured"]["stack"].as_str().unwrap();
    assert!(
        captured.starts_with("HttpError: status 404\n    at makeHttpError"),
        "{captured:?}"
    );
    assert_eq!(out["fixed"], true);
    assert_eq!(out["renamed"], "Renamed: m");
    assert_eq!(out["set"], "mine");
    assert_eq!(out["frozen"], "SyntaxError: cold");
    assert_eq!(out["ownAfterRead"], true);
    assert_eq!(out["enumerable"], false);
    assert_eq!(out["plainObj"], "Error: on an object");
    assert_eq!(out["over"], "replaced");
    assert_eq!(out["prepared"], "custom p true");
    assert_eq!(out["sites"], "function");
    assert_eq!(out["afterPrepare"], "Error: q");

    // A syntax error in an imported module (JS, and TypeScript compiled
    // first), caught by the worker.
    let r = rt.block_on(pool.dispatch(request("/import"))).unwrap();
    let text = String::from_utf8(r.body.to_vec()).unwrap();
    assert_eq!(r.status, 200, "{text}");
    let stacks: Vec<String> = serde_json::from_str(&text).unwrap();
    for (stack, file) in stacks.iter().zip(["bad.js", "bad.ts"]) {
        assert!(stack.starts_with("SyntaxError: "), "{stack:?}");
        assert!(stack.contains(&format!("\n    at {file}:2:")), "{stack:?}");
    }

    // The host describes an uncaught error with one head line, not two.
    match rt.block_on(pool.dispatch(request("/uncaught"))) {
        Err(DispatchError::Exception { stack, message, .. }) => {
            assert_eq!(message, "from a function");
            assert!(
                stack.starts_with("TypeError: from a function\n    at thrower"),
                "{stack:?}"
            );
            assert_eq!(
                stack.matches("TypeError: from a function").count(),
                1,
                "{stack:?}"
            );
        }
        other => panic!("expected an exception, got {other:?}"),
    }
    pool.shutdown();
    pool.join();
}
