//! Text generation through a provider named in the AI config: Workers AI's
//! inputs (`prompt` or `messages`, `max_tokens`, sampling settings) become
//! an OpenAI-compatible `chat/completions` or an Anthropic `messages`
//! request, and the answer becomes Workers AI's `{ response, usage }`, or,
//! with `stream: true`, its server-sent events (`data: {"response":...}`
//! per piece, then `data: [DONE]`).

use std::io::{BufRead, BufReader, Read};
use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::config::{ProviderConfig, ProviderKind};
use crate::error::AiError;

/// Workers AI's default `max_tokens` for text generation.
pub const DEFAULT_MAX_TOKENS: u64 = 256;
/// Longest provider answer read whole, and longest line of a stream.
const MAX_ANSWER_BYTES: u64 = 8 << 20;
const MAX_LINE_BYTES: u64 = 1 << 20;

/// The inputs text-generation models take, checked.
#[derive(Debug, Clone)]
pub struct ChatRequest {
    pub messages: Vec<(String, String)>,
    pub max_tokens: u64,
    pub stream: bool,
    /// Sampling settings passed on as given.
    pub settings: Map<String, Value>,
}

const SETTINGS: [&str; 7] = [
    "temperature",
    "top_p",
    "top_k",
    "seed",
    "frequency_penalty",
    "presence_penalty",
    "repetition_penalty",
];
const ACCEPTED: [&str; 6] = ["prompt", "messages", "max_tokens", "stream", "raw", "lora"];

/// Checks `inputs` against the text-generation schema, with Workers AI's
/// schema messages.
pub fn parse_chat(inputs: &Value) -> Result<ChatRequest, AiError> {
    let obj = inputs.as_object().ok_or_else(|| {
        AiError::BadInput(format!(
            "Type mismatch of '/', '{}' not in 'object'",
            json_type(inputs)
        ))
    })?;
    for k in obj.keys() {
        if !SETTINGS.contains(&k.as_str()) && !ACCEPTED.contains(&k.as_str()) {
            return Err(AiError::BadInput(format!(
                "Additional or unevaluated properties '/{k}' at '/' not allowed"
            )));
        }
    }
    let messages = match (obj.get("prompt"), obj.get("messages")) {
        (Some(_), Some(_)) => {
            return Err(AiError::BadInput(
                "oneOf at '/' not met, both 'prompt' and 'messages' given".into(),
            ));
        }
        (Some(Value::String(p)), None) => {
            if p.is_empty() {
                return Err(AiError::BadInput(
                    "String is too short (0 < 1) at '/prompt'".into(),
                ));
            }
            vec![("user".to_owned(), p.clone())]
        }
        (Some(v), None) => {
            return Err(AiError::BadInput(format!(
                "Type mismatch of '/prompt', '{}' not in 'string'",
                json_type(v)
            )));
        }
        (None, Some(Value::Array(list))) => {
            let mut out = Vec::with_capacity(list.len());
            for (i, m) in list.iter().enumerate() {
                let role = m.get("role").and_then(Value::as_str);
                let content = m.get("content");
                match (role, content) {
                    (Some(r), Some(Value::String(c))) => out.push((r.to_owned(), c.clone())),
                    (None, _) => {
                        return Err(AiError::BadInput(format!(
                            "required properties at '/messages/{i}' are 'role,content'"
                        )));
                    }
                    (_, other) => {
                        return Err(AiError::BadInput(format!(
                            "Type mismatch of '/messages/{i}/content', '{}' not in 'string'",
                            other.map(json_type).unwrap_or("undefined")
                        )));
                    }
                }
            }
            out
        }
        (None, Some(v)) => {
            return Err(AiError::BadInput(format!(
                "Type mismatch of '/messages', '{}' not in 'array'",
                json_type(v)
            )));
        }
        (None, None) => {
            return Err(AiError::BadInput(
                "oneOf at '/' not met, required properties at '/' are 'prompt' or 'messages'"
                    .into(),
            ));
        }
    };
    let max_tokens = match obj.get("max_tokens") {
        None => DEFAULT_MAX_TOKENS,
        Some(v) => match v.as_u64() {
            Some(0) => {
                return Err(AiError::BadInput(
                    "Number must be >= 1 at '/max_tokens'".into(),
                ));
            }
            Some(n) => n,
            None => {
                return Err(AiError::BadInput(format!(
                    "Type mismatch of '/max_tokens', '{}' not in 'integer'",
                    json_type(v)
                )));
            }
        },
    };
    let stream = match obj.get("stream") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(v) => {
            return Err(AiError::BadInput(format!(
                "Type mismatch of '/stream', '{}' not in 'boolean'",
                json_type(v)
            )));
        }
    };
    let mut settings = Map::new();
    for k in SETTINGS {
        if let Some(v) = obj.get(k) {
            if !v.is_number() {
                return Err(AiError::BadInput(format!(
                    "Type mismatch of '/{k}', '{}' not in 'number'",
                    json_type(v)
                )));
            }
            settings.insert(k.to_owned(), v.clone());
        }
    }
    Ok(ChatRequest {
        messages,
        max_tokens,
        stream,
        settings,
    })
}

pub fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A provider, ready to call.
pub struct Provider {
    name: String,
    config: ProviderConfig,
    agent: ureq::Agent,
}

impl Provider {
    pub fn new(name: &str, config: ProviderConfig) -> Self {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_millis(config.timeout_ms)))
            .http_status_as_error(false)
            .build()
            .into();
        Self {
            name: name.to_owned(),
            config,
            agent,
        }
    }

    fn body(&self, model: &str, req: &ChatRequest) -> (&'static str, Value) {
        match self.config.kind {
            ProviderKind::OpenAi => {
                let messages: Vec<Value> = req
                    .messages
                    .iter()
                    .map(|(r, c)| json!({ "role": r, "content": c }))
                    .collect();
                let mut body = json!({
                    "model": model,
                    "messages": messages,
                    "max_tokens": req.max_tokens,
                });
                for (k, v) in &req.settings {
                    if matches!(
                        k.as_str(),
                        "temperature" | "top_p" | "seed" | "frequency_penalty" | "presence_penalty"
                    ) {
                        body[k] = v.clone();
                    }
                }
                if req.stream {
                    body["stream"] = json!(true);
                    body["stream_options"] = json!({ "include_usage": true });
                }
                ("chat/completions", body)
            }
            ProviderKind::Anthropic => {
                let system: Vec<&str> = req
                    .messages
                    .iter()
                    .filter(|(r, _)| r == "system")
                    .map(|(_, c)| c.as_str())
                    .collect();
                let messages: Vec<Value> = req
                    .messages
                    .iter()
                    .filter(|(r, _)| r != "system")
                    .map(|(r, c)| json!({ "role": r, "content": c }))
                    .collect();
                let mut body = json!({
                    "model": model,
                    "messages": messages,
                    "max_tokens": req.max_tokens,
                });
                if !system.is_empty() {
                    body["system"] = json!(system.join("\n"));
                }
                for (k, v) in &req.settings {
                    if matches!(k.as_str(), "temperature" | "top_p" | "top_k") {
                        body[k] = v.clone();
                    }
                }
                if req.stream {
                    body["stream"] = json!(true);
                }
                ("messages", body)
            }
        }
    }

    fn send(
        &self,
        model: &str,
        req: &ChatRequest,
    ) -> Result<ureq::http::Response<ureq::Body>, AiError> {
        let (path, body) = self.body(model, req);
        let url = format!("{}/{path}", self.config.url);
        let mut r = self.agent.post(&url);
        for (name, value) in self.headers() {
            r = r.header(name, &value);
        }
        let resp = r
            .send(body.to_string().as_bytes())
            .map_err(|e| self.failed(e))?;
        let status = resp.status().as_u16();
        if status >= 400 {
            let text = resp
                .into_body()
                .with_config()
                .limit(64 * 1024)
                .read_to_string()
                .unwrap_or_default();
            return Err(AiError::Internal(format!(
                "provider {} answered {status}: {}",
                self.name,
                text.trim()
            )));
        }
        Ok(resp)
    }

    fn failed(&self, e: ureq::Error) -> AiError {
        match e {
            ureq::Error::Timeout(_) => AiError::Timeout,
            e => AiError::Internal(format!("provider {}: {e}", self.name)),
        }
    }

    /// The whole answer as Workers AI's `{ response, usage }`.
    pub fn generate(&self, model: &str, req: &ChatRequest) -> Result<Value, AiError> {
        let resp = self.send(model, req)?;
        let text = resp
            .into_body()
            .with_config()
            .limit(MAX_ANSWER_BYTES)
            .read_to_string()
            .map_err(|e| self.failed(e))?;
        answer(self.config.kind, &self.name, text.as_bytes())
    }

    /// The request this provider is sent for `model`: its path under the
    /// provider's URL, its headers (credentials included) and JSON body.
    pub fn request(&self, model: &str, req: &ChatRequest) -> ProviderRequest {
        let (path, body) = self.body(model, req);
        ProviderRequest {
            provider: self.name.clone(),
            kind: self.config.kind,
            base_url: self.config.url.clone(),
            path,
            headers: self.headers(),
            body: body.to_string().into_bytes(),
            stream: req.stream,
        }
    }

    fn headers(&self) -> Vec<(&'static str, String)> {
        let mut h = vec![("content-type", "application/json".to_owned())];
        if let Some(key) = &self.config.api_key {
            h.push(match self.config.kind {
                ProviderKind::OpenAi => ("authorization", format!("Bearer {key}")),
                ProviderKind::Anthropic => ("x-api-key", key.clone()),
            });
        }
        if self.config.kind == ProviderKind::Anthropic {
            h.push(("anthropic-version", "2023-06-01".to_owned()));
        }
        h
    }

    /// The answer as Workers AI's server-sent events, read from the
    /// provider as the caller pulls.
    pub fn stream(&self, model: &str, req: &ChatRequest) -> Result<EventStream, AiError> {
        let resp = self.send(model, req)?;
        let reader: Box<dyn Read + Send> = Box::new(resp.into_body().into_reader());
        Ok(EventStream {
            lines: BufReader::new(reader),
            provider: self.name.clone(),
            events: SseTranslator::new(self.config.kind, &self.name),
        })
    }
}

/// A provider call made by someone else (through an AI Gateway): where it
/// goes and what it carries.
#[derive(Debug, Clone)]
pub struct ProviderRequest {
    /// The provider's name in the AI config.
    pub provider: String,
    pub kind: ProviderKind,
    /// The provider's URL from the AI config (no trailing slash).
    pub base_url: String,
    /// `chat/completions` or `messages`, under `base_url`.
    pub path: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
    pub stream: bool,
}

/// A provider's whole answer (`kind`'s JSON) as Workers AI's `{ response,
/// usage }`.
pub fn answer(kind: ProviderKind, provider: &str, text: &[u8]) -> Result<Value, AiError> {
    let v: Value = serde_json::from_slice(text)
        .map_err(|e| AiError::Internal(format!("provider {provider}: answer is not JSON: {e}")))?;
    let (response, prompt, completion) = match kind {
        ProviderKind::OpenAi => (
            v.pointer("/choices/0/message/content")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
            v.pointer("/usage/prompt_tokens").and_then(Value::as_u64),
            v.pointer("/usage/completion_tokens")
                .and_then(Value::as_u64),
        ),
        ProviderKind::Anthropic => (
            v.get("content")
                .and_then(Value::as_array)
                .map(|parts| {
                    parts
                        .iter()
                        .filter_map(|p| p.get("text").and_then(Value::as_str))
                        .collect::<String>()
                })
                .unwrap_or_default(),
            v.pointer("/usage/input_tokens").and_then(Value::as_u64),
            v.pointer("/usage/output_tokens").and_then(Value::as_u64),
        ),
    };
    Ok(json!({ "response": response, "usage": usage(prompt, completion) }))
}

fn usage(prompt: Option<u64>, completion: Option<u64>) -> Value {
    let p = prompt.unwrap_or(0);
    let c = completion.unwrap_or(0);
    json!({ "prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c })
}

/// Turns a provider's server-sent events (OpenAI's or Anthropic's) into
/// Workers AI's: `data: {"response":"..."}` per piece, a last event with
/// `usage`, then `data: [DONE]`. Fed lines ([`Self::line`]) or bytes in
/// any pieces ([`Self::push`]).
#[derive(Debug)]
pub struct SseTranslator {
    kind: ProviderKind,
    provider: String,
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    partial: Vec<u8>,
    done: bool,
}

impl SseTranslator {
    pub fn new(kind: ProviderKind, provider: &str) -> Self {
        Self {
            kind,
            provider: provider.to_owned(),
            prompt_tokens: None,
            completion_tokens: None,
            partial: Vec::new(),
            done: false,
        }
    }

    /// Whether the last event (usage, `[DONE]`) was given.
    pub fn is_done(&self) -> bool {
        self.done
    }

    fn finish(&mut self) -> String {
        self.done = true;
        format!(
            "data: {}\n\ndata: [DONE]\n\n",
            json!({ "response": "", "usage": usage(self.prompt_tokens, self.completion_tokens) })
        )
    }

    /// The provider's stream ended: the last events, unless given already.
    pub fn end(&mut self) -> Option<String> {
        if self.done {
            return None;
        }
        let rest = std::mem::take(&mut self.partial);
        let mut out = String::new();
        if !rest.is_empty()
            && let Some(e) = self.line(String::from_utf8_lossy(&rest).trim_end())
        {
            out.push_str(&e);
        }
        if !self.done {
            out.push_str(&self.finish());
        }
        Some(out)
    }

    /// Some bytes of the provider's stream: the events its complete lines
    /// make (possibly none).
    pub fn push(&mut self, bytes: &[u8]) -> Result<String, AiError> {
        let mut out = String::new();
        let mut rest = bytes;
        while !self.done {
            let Some(nl) = rest.iter().position(|b| *b == b'\n') else {
                self.partial.extend_from_slice(rest);
                if self.partial.len() as u64 > MAX_LINE_BYTES {
                    return Err(AiError::Internal(format!(
                        "provider {}: a stream line is longer than {MAX_LINE_BYTES} bytes",
                        self.provider
                    )));
                }
                break;
            };
            let line = if self.partial.is_empty() {
                String::from_utf8_lossy(&rest[..nl]).into_owned()
            } else {
                self.partial.extend_from_slice(&rest[..nl]);
                let l = String::from_utf8_lossy(&self.partial).into_owned();
                self.partial.clear();
                l
            };
            rest = &rest[nl + 1..];
            if let Some(e) = self.line(line.trim_end()) {
                out.push_str(&e);
            }
        }
        Ok(out)
    }

    /// One line of the provider's stream: the event it makes, if any.
    pub fn line(&mut self, line: &str) -> Option<String> {
        if self.done {
            return None;
        }
        let data = line.strip_prefix("data:").map(str::trim)?;
        if data == "[DONE]" {
            return Some(self.finish());
        }
        let v = serde_json::from_str::<Value>(data).ok()?;
        if self.kind == ProviderKind::Anthropic
            && v.get("type").and_then(Value::as_str) == Some("message_stop")
        {
            return Some(self.finish());
        }
        match self.piece(&v) {
            Some(text) if !text.is_empty() => {
                Some(format!("data: {}\n\n", json!({ "response": text })))
            }
            _ => None,
        }
    }

    /// The text piece in one provider event, noting usage on the way.
    fn piece(&mut self, data: &Value) -> Option<String> {
        match self.kind {
            ProviderKind::OpenAi => {
                if let Some(u) = data.get("usage").filter(|u| u.is_object()) {
                    self.prompt_tokens = u.get("prompt_tokens").and_then(Value::as_u64);
                    self.completion_tokens = u.get("completion_tokens").and_then(Value::as_u64);
                }
                data.pointer("/choices/0/delta/content")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            }
            ProviderKind::Anthropic => {
                if let Some(n) = data
                    .pointer("/message/usage/input_tokens")
                    .and_then(Value::as_u64)
                {
                    self.prompt_tokens = Some(n);
                }
                if let Some(n) = data.pointer("/usage/output_tokens").and_then(Value::as_u64) {
                    self.completion_tokens = Some(n);
                }
                (data.get("type").and_then(Value::as_str) == Some("content_block_delta"))
                    .then(|| data.pointer("/delta/text").and_then(Value::as_str))
                    .flatten()
                    .map(str::to_owned)
            }
        }
    }
}

/// Workers AI's events for one streamed answer; each item is one
/// `data: ...\n\n` event. Ends after `data: [DONE]`.
pub struct EventStream {
    lines: BufReader<Box<dyn Read + Send>>,
    provider: String,
    events: SseTranslator,
}

impl EventStream {
    fn next_line(&mut self) -> Result<Option<String>, AiError> {
        let mut buf = Vec::new();
        let n = (&mut self.lines)
            .take(MAX_LINE_BYTES)
            .read_until(b'\n', &mut buf)
            .map_err(|e| AiError::Internal(format!("provider {}: {e}", self.provider)))?;
        if n == 0 {
            return Ok(None);
        }
        if !buf.ends_with(b"\n") && n as u64 >= MAX_LINE_BYTES {
            return Err(AiError::Internal(format!(
                "provider {}: a stream line is longer than {MAX_LINE_BYTES} bytes",
                self.provider
            )));
        }
        Ok(Some(String::from_utf8_lossy(&buf).trim_end().to_owned()))
    }
}

impl Iterator for EventStream {
    type Item = Result<String, AiError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.events.is_done() {
            return None;
        }
        loop {
            match self.next_line() {
                Ok(Some(l)) => {
                    if let Some(e) = self.events.line(&l) {
                        return Some(Ok(e));
                    }
                }
                Ok(None) => return self.events.end().map(Ok),
                Err(e) => {
                    // Nothing follows an error.
                    self.events.done = true;
                    return Some(Err(e));
                }
            }
        }
    }
}
