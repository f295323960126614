//! The AI config file's checks and the input schemas' rules, with Workers
//! AI's messages; no model is loaded.

use std::path::Path;

use hearth_ai::provider::parse_chat;
use hearth_ai::{Ai, AiConfig, AiError, ModelEntry, Pooling, ProviderKind, parse_embedding};
use serde_json::json;

fn config(text: &str) -> Result<AiConfig, String> {
    AiConfig::parse(text, Path::new("/srv/ai")).map_err(|e| e.0)
}

#[test]
fn a_config_maps_names_to_local_folders_and_providers() {
    let c = config(
        r#"
default_provider = "claude"
[models."@cf/baai/bge-small-en-v1.5"]
path = "models/bge"
[models."@cf/meta/llama"]
provider = "claude"
[models."@cf/other"]
provider = "claude"
model = "claude-haiku"
[providers.claude]
type = "anthropic"
url = "https://api.example.test/v1/"
api_key_env = "KEY"
"#,
    )
    .unwrap();
    assert_eq!(
        c.models["@cf/baai/bge-small-en-v1.5"],
        ModelEntry::Local {
            path: Path::new("/srv/ai/models/bge").to_path_buf()
        }
    );
    assert_eq!(
        c.models["@cf/meta/llama"],
        ModelEntry::Provider {
            provider: "claude".into(),
            model: "@cf/meta/llama".into()
        }
    );
    assert_eq!(
        c.models["@cf/other"],
        ModelEntry::Provider {
            provider: "claude".into(),
            model: "claude-haiku".into()
        }
    );
    let p = &c.providers["claude"];
    assert_eq!(p.kind, ProviderKind::Anthropic);
    assert_eq!(
        p.url, "https://api.example.test/v1",
        "a trailing slash is dropped"
    );
    assert_eq!(p.api_key_env.as_deref(), Some("KEY"));
    assert_eq!(p.timeout_ms, 120_000);
    assert_eq!(c.default_provider.as_deref(), Some("claude"));
}

#[test]
fn a_bad_config_names_the_field() {
    let e = |t: &str| config(t).unwrap_err();
    assert!(
        e("[models.\"x\"]\npath = \"a\"\nprovider = \"p\"\n")
            .contains("models.\"x\": needs exactly one of `path`")
    );
    assert!(e("[models.\"x\"]\n").contains("models.\"x\": needs exactly one of"));
    assert!(
        e("[models.\"x\"]\nprovider = \"p\"\n").contains("models.\"x\".provider: no [providers.p]")
    );
    assert!(
        e("[models.\"x\"]\npath = \"a\"\nmodel = \"m\"\n")
            .contains("only a provider's model has one")
    );
    assert!(
        e("[providers.p]\ntype = \"cohere\"\nurl = \"http://x\"\n")
            .contains("providers.p.type: \"cohere\" is not")
    );
    assert!(
        e("[providers.p]\ntype = \"openai\"\nurl = \"ftp://x\"\n")
            .contains("providers.p.url: \"ftp://x\" is not an http(s) URL")
    );
    assert!(e("default_provider = \"p\"\n").contains("default_provider: no [providers.p]"));
    assert!(
        e("[models.\"x\"]\npath = \"a\"\nweights = \"b\"\n").contains("weights"),
        "unknown fields are refused"
    );
}

#[test]
fn unknown_names_are_5007_and_a_default_provider_takes_them() {
    let ai = Ai::new(config("").unwrap());
    let e = ai.run("@cf/x", &json!({ "prompt": "hi" })).err().unwrap();
    assert_eq!(e.to_string(), "5007: No such model @cf/x or task");
    assert_eq!(e.code(), 5007);
    // With a default provider the inputs are checked before any call.
    let ai = Ai::new(
        config("default_provider = \"p\"\n[providers.p]\ntype = \"openai\"\nurl = \"http://127.0.0.1:9\"\n").unwrap(),
    );
    let e = ai.run("@cf/x", &json!({ "text": "hi" })).err().unwrap();
    assert_eq!(
        e.to_string(),
        "5006: Error: Additional or unevaluated properties '/text' at '/' not allowed"
    );
}

#[test]
fn a_local_model_without_its_files_is_3039() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), "{}").unwrap();
    let ai = Ai::new(
        AiConfig::parse(
            &format!("[models.\"m\"]\npath = {:?}\n", dir.path()),
            Path::new("."),
        )
        .unwrap(),
    );
    let e = ai.run("m", &json!({ "text": "hi" })).err().unwrap();
    assert!(matches!(e, AiError::MissingFiles { .. }));
    assert_eq!(
        e.to_string(),
        "3039: Model m is missing required files (model.safetensors, tokenizer.json)"
    );
    let listed = ai.models();
    assert_eq!(listed[0].source, "local");
    let present: Vec<bool> = listed[0].files.iter().map(|(_, p)| *p).collect();
    assert_eq!(present[..3], [true, false, false]);
}

#[test]
fn embedding_inputs_follow_the_bge_schema() {
    let r =
        parse_embedding(&json!({ "text": ["a", "b"], "pooling": "cls", "truncate_inputs": true }))
            .unwrap();
    assert_eq!(r.texts, ["a", "b"]);
    assert_eq!(r.pooling, Pooling::Cls);
    assert!(r.truncate);
    let r = parse_embedding(&json!({ "text": "a" })).unwrap();
    assert_eq!(
        (r.texts.len(), r.pooling, r.truncate),
        (1, Pooling::Mean, false)
    );
    let e = |v| parse_embedding(&v).unwrap_err().to_string();
    assert_eq!(
        e(json!({ "text": [] })),
        "5006: Error: Array is too short (0 < 1) at '/text'"
    );
    assert_eq!(
        e(json!({ "text": "a", "truncate_inputs": "yes" })),
        "5006: Error: Type mismatch of '/truncate_inputs', 'string' not in 'boolean'"
    );
    assert_eq!(
        e(json!("a")),
        "5006: Error: Type mismatch of '/', 'string' not in 'object'"
    );
    assert_eq!(
        e(json!({ "text": 1.5 })),
        "5006: Error: Type mismatch of '/text', 'number' not in 'string,array'"
    );
}

#[test]
fn chat_inputs_follow_the_text_generation_schema() {
    let r = parse_chat(&json!({ "messages": [{ "role": "system", "content": "s" }, { "role": "user", "content": "u" }], "max_tokens": 5, "temperature": 0.5, "stream": true })).unwrap();
    assert_eq!(
        r.messages,
        [
            ("system".to_owned(), "s".to_owned()),
            ("user".to_owned(), "u".to_owned())
        ]
    );
    assert_eq!(r.max_tokens, 5);
    assert!(r.stream);
    assert_eq!(r.settings["temperature"], 0.5);
    assert_eq!(
        parse_chat(&json!({ "prompt": "p" })).unwrap().max_tokens,
        256
    );
    let e = |v| parse_chat(&v).unwrap_err().to_string();
    assert_eq!(
        e(json!({ "prompt": "" })),
        "5006: Error: String is too short (0 < 1) at '/prompt'"
    );
    assert_eq!(
        e(json!({ "prompt": "p", "messages": [] })),
        "5006: Error: oneOf at '/' not met, both 'prompt' and 'messages' given"
    );
    assert_eq!(
        e(json!({ "messages": [{ "role": "user", "content": null }] })),
        "5006: Error: Type mismatch of '/messages/0/content', 'null' not in 'string'"
    );
    assert_eq!(
        e(json!({ "messages": [{ "content": "x" }] })),
        "5006: Error: required properties at '/messages/0' are 'role,content'"
    );
    assert_eq!(
        e(json!({ "messages": "x" })),
        "5006: Error: Type mismatch of '/messages', 'string' not in 'array'"
    );
    assert_eq!(
        e(json!({ "prompt": "p", "max_tokens": 0 })),
        "5006: Error: Number must be >= 1 at '/max_tokens'"
    );
    assert_eq!(
        e(json!({ "prompt": "p", "stream": 1 })),
        "5006: Error: Type mismatch of '/stream', 'integer' not in 'boolean'"
    );
    assert_eq!(
        e(json!({ "prompt": "p", "temperature": "hot" })),
        "5006: Error: Type mismatch of '/temperature', 'string' not in 'number'"
    );
}
