//! `env.AI` as a worker sees it: `run()` returns a promise, failures are
//! `Error`s named `AiError` with Workers AI's `"<code>: <description>"`,
//! `returnRawResponse` gives a `Response`, and `stream: true` a
//! `ReadableStream` of server-sent events.

mod bindings_common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;

use bindings_common::{err, ok};
use hearth_ai::{Ai, AiConfig};
use hearth_runtime::BindingAdapter;
use hearth_runtime::bindings::AiAdapter;
use serde_json::json;

/// An OpenAI-compatible endpoint answering every request with "hi" (whole,
/// or as two streamed pieces), for `count` connections.
fn provider(count: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for conn in listener.incoming().take(count) {
            let conn = conn.unwrap();
            let mut r = BufReader::new(conn.try_clone().unwrap());
            let mut len = 0;
            loop {
                let mut line = String::new();
                r.read_line(&mut line).unwrap();
                if line.trim().is_empty() {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; len];
            r.read_exact(&mut body).unwrap();
            let req: serde_json::Value = serde_json::from_slice(&body).unwrap();
            let mut w = conn;
            if req["stream"] == true {
                let _ = write!(w, "HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n");
                for p in ["h", "i"] {
                    let _ = write!(
                        w,
                        "data: {}\n\n",
                        json!({ "choices": [{ "delta": { "content": p } }] })
                    );
                }
                let _ = write!(w, "data: [DONE]\n\n");
            } else {
                let text = json!({ "choices": [{ "message": { "content": "hi" } }] }).to_string();
                let _ = write!(
                    w,
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
                    text.len()
                );
            }
        }
    });
    addr
}

fn transcript(body: &str) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let addr = provider(4);
    let config = AiConfig::parse(
        &format!(
            "[providers.p]\ntype = \"openai\"\nurl = \"http://{addr}/v1\"\n\n[models.\"@cf/chat\"]\nprovider = \"p\"\n"
        ),
        Path::new("."),
    )
    .unwrap();
    let ai: Arc<dyn BindingAdapter> = Arc::new(AiAdapter::new("AI", Arc::new(Ai::new(config))));
    bindings_common::transcript(
        dir.path(),
        vec![ai],
        &format!("    const {{ AI }} = env;\n{body}"),
    )
}

#[test]
fn run_answers_streams_and_fails_as_workers_ai_does() {
    let t = transcript(
        r#"
    await attempt(out, "isPromise", () => { const p = AI.run("@cf/nope", {}); p.catch(() => {}); return p instanceof Promise; });
    await attempt(out, "unknown", () => AI.run("@cf/nope", { prompt: "x" }));
    await attempt(out, "unknownName", async () => { try { await AI.run("@cf/nope", {}); } catch (e) { return [e.name, e instanceof Error]; } });
    await attempt(out, "badInput", () => AI.run("@cf/chat", { prompt: "x", extra: 1 }));
    await attempt(out, "noInputs", () => AI.run("@cf/chat"));
    await attempt(out, "whole", () => AI.run("@cf/chat", { prompt: "x" }));
    await attempt(out, "raw", async () => { const r = await AI.run("@cf/chat", { prompt: "x" }, { returnRawResponse: true }); return [r instanceof Response, r.headers.get("content-type"), await r.json()]; });
    await attempt(out, "stream", async () => { const s = await AI.run("@cf/chat", { prompt: "x", stream: true }); return [s instanceof ReadableStream, await new Response(s).text()]; });
    await attempt(out, "websocket", () => AI.run("@cf/chat", { prompt: "x" }, { websocket: true }));
    "#,
    );
    assert_eq!(ok(&t, "isPromise"), json!(true));
    assert_eq!(
        err(&t, "unknown"),
        (
            "Error".into(),
            "5007: No such model @cf/nope or task".into()
        )
    );
    assert_eq!(ok(&t, "unknownName"), json!(["AiError", true]));
    assert_eq!(
        err(&t, "badInput").1,
        "5006: Error: Additional or unevaluated properties '/extra' at '/' not allowed"
    );
    assert_eq!(
        err(&t, "noInputs").1,
        "5006: Error: Type mismatch of '/', 'null' not in 'object'"
    );
    assert_eq!(
        ok(&t, "whole"),
        json!({ "response": "hi", "usage": { "prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0 } })
    );
    assert_eq!(
        ok(&t, "raw"),
        json!([true, "application/json", { "response": "hi", "usage": { "prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0 } }])
    );
    assert_eq!(
        ok(&t, "stream"),
        json!([
            true,
            "data: {\"response\":\"h\"}\n\ndata: {\"response\":\"i\"}\n\ndata: {\"response\":\"\",\"usage\":{\"prompt_tokens\":0,\"completion_tokens\":0,\"total_tokens\":0}}\n\ndata: [DONE]\n\n"
        ])
    );
    assert_eq!(
        err(&t, "websocket"),
        (
            "AiInternalError".into(),
            "WebSocket inference is not supported by this binding".into()
        )
    );
}
