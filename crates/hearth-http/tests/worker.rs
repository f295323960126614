//! The worker contract: env, modules, start-up errors, timers, ctx.

mod common;

use common::*;
use hearth_http::{ServeOptions, Server, StartError};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_carries_vars_json_vars_and_secrets() {
    let s = start_with(
        &[(
            "index.js",
            r#"export default { fetch(req, env) {
                return Response.json({ greeting: env.GREETING, cfg: env.CONFIG, secret: env.API_KEY,
                  keys: Object.keys(env).sort() });
            } };"#,
        )],
        |o| {
            o.worker_mut().vars.insert("GREETING".into(), "hi".into());
            o.worker_mut()
                .vars
                .insert("CONFIG".into(), serde_json::json!({"n": 3, "list": [1, 2]}));
            o.worker_mut()
                .secrets
                .insert("API_KEY".into(), "s3cret".into());
        },
    )
    .await;
    let r = get(s.addr, "/").await;
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["greeting"], "hi");
    assert_eq!(v["cfg"]["n"], 3);
    assert_eq!(v["cfg"]["list"][1], 2);
    assert_eq!(v["secret"], "s3cret");
    assert_eq!(
        v["keys"],
        serde_json::json!(["API_KEY", "CONFIG", "GREETING"])
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relative_imports_and_cloudflare_workers_module() {
    let s = start(&[
        (
            "index.js",
            r#"import { greet } from "./lib/greet.js";
               import data from "./data.json";
               import { WorkerEntrypoint, DurableObject, env } from "cloudflare:workers";
               export class Counter extends DurableObject {}
               export default class extends WorkerEntrypoint {
                 fetch(req) {
                   return new Response(greet(data.name) + " " + (this.env === env) + " " + typeof Counter);
                 }
               };"#,
        ),
        ("lib/greet.js", r#"import { suffix } from "../suffix.js"; export const greet = (n) => "hello " + n + suffix;"#),
        ("suffix.js", r#"export const suffix = "!";"#),
        ("data.json", r#"{"name": "hearth"}"#),
    ])
    .await;
    let r = get(s.addr, "/").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body, "hello hearth! true function");
    s.stop().await;
}

async fn start_error(files: &[(&str, &str)]) -> StartError {
    let dir = tempfile::tempdir().unwrap();
    write_files(dir.path(), files);
    let mut opts = ServeOptions::new(small_config(dir.path()));
    opts.listen = "127.0.0.1:0".parse().unwrap();
    match Server::bind(opts).await {
        Ok(_) => panic!("expected a start-up error"),
        Err(hearth_http::ServeError::Start(e)) => e,
        Err(e) => panic!("unexpected error {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syntax_error_at_start_up_names_file_and_line() {
    let e = start_error(&[(
        "index.js",
        "export default {\n  fetch() {\n    return new Response(\"x\"\n  }\n};\n",
    )])
    .await;
    let text = e.to_string();
    assert!(matches!(e, StartError::Script { .. }), "{text}");
    assert!(text.starts_with("index.js:4"), "{text}");
    assert!(text.contains("SyntaxError"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syntax_error_in_imported_module_names_that_file() {
    let e = start_error(&[
        (
            "index.js",
            "import './lib/bad.js';\nexport default { fetch() { return new Response('x'); } };\n",
        ),
        ("lib/bad.js", "let x = 1;\nlet = = 2;\n"),
    ])
    .await;
    let text = e.to_string();
    assert!(text.starts_with("lib/bad.js:2"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_main_is_a_start_up_error() {
    let e = start_error(&[("other.js", "")]).await;
    assert!(matches!(e, StartError::MainNotFound { .. }), "{e}");
    assert!(e.to_string().contains("index.js"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn top_level_throw_is_a_start_up_error() {
    let e = start_error(&[(
        "index.js",
        "\n\nthrow new Error('boom at load');\nexport default {};\n",
    )])
    .await;
    let text = e.to_string();
    assert!(text.starts_with("index.js:3"), "{text}");
    assert!(text.contains("boom at load"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_outside_the_module_root_is_refused() {
    let e = start_error(&[(
        "index.js",
        "import '../../etc/passwd.js';\nexport default {};\n",
    )])
    .await;
    assert!(
        e.to_string().contains("leaves the worker's module root"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timers_microtasks_and_globals() {
    let s = start(&[(
        "index.js",
        r#"export default { async fetch() {
            const order = [];
            queueMicrotask(() => order.push("micro"));
            await new Promise((r) => setTimeout(() => { order.push("timeout"); r(); }, 5));
            const cleared = setTimeout(() => order.push("never"), 1);
            clearTimeout(cleared);
            let n = 0;
            await new Promise((r) => { const id = setInterval(() => { n++; if (n === 3) { clearInterval(id); r(); } }, 1); });
            await new Promise((r) => setTimeout(r, 5));
            const t = performance.now();
            return Response.json({ order, n, ua: navigator.userAgent, perf: typeof t,
              noProcess: typeof process, noRequire: typeof require });
        } };"#,
    )])
    .await;
    let r = get(s.addr, "/").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["order"], serde_json::json!(["micro", "timeout"]));
    assert_eq!(v["n"], 3);
    assert_eq!(v["ua"], "Cloudflare-Workers");
    assert_eq!(v["perf"], "number");
    assert_eq!(v["noProcess"], "undefined");
    assert_eq!(v["noRequire"], "undefined");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_until_runs_after_the_response() {
    let s = start(&[(
        "index.js",
        r#"let log = [];
        export default { async fetch(req, env, ctx) {
            if (req.url.endsWith("/log")) return Response.json(log);
            ctx.waitUntil(new Promise((r) => setTimeout(() => { log.push("later"); r(); }, 10)));
            return new Response("now");
        } };"#,
    )])
    .await;
    assert_eq!(get(s.addr, "/").await.body, "now");
    // Poll: the waitUntil work finishes shortly after the response.
    let mut seen = String::new();
    for _ in 0..100 {
        seen = get(s.addr, "/log").await.body;
        if seen.contains("later") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert_eq!(seen, r#"["later"]"#);
    s.stop().await;
}
