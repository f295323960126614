//! The Workers AI binding's way through AI Gateway, as an in-process
//! service ([`crate::local`]) its glue calls: each call is a task on the
//! loop, so the isolate goes on with other requests while a provider
//! answers.
//!
//! Paths (the glue's own, never a worker's):
//! - `POST run` `{ model, inputs, gateway }`: `env.AI.run(model, inputs, {
//!   gateway })`. A provider model becomes the provider request the AI
//!   config describes, sent through the gateway with the options as
//!   `cf-aig-*` headers; the answer becomes Workers AI's (`{ response,
//!   usage }` or its server-sent events). A local model runs here, off the
//!   isolate thread.
//! - `POST gateway/<id>/run`: `env.AI.gateway(id).run(request)`, the
//!   universal endpoint; the gateway's answer is the worker's `Response`.
//! - `GET|PATCH gateway/<id>/log/<log id>`: `getLog`, `patchLog`.
//! - `GET gateway/<id>/url[/<provider>]`: `getUrl(provider)`.
//!
//! Failures answer a status >= 400 with `{ name, message }`, which the
//! glue throws as an `Error` of that name.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use futures::StreamExt;
use hearth_ai::{Ai, AiError, AiOutput, ProviderRequest, SseTranslator};
use hearth_ai_gateway::logs::{LogError, LogPatch};
use hearth_ai_gateway::{Gateway, GatewayRequest, GatewayResponse, Gateways};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use http_body_util::{BodyExt, Full, Limited, StreamBody};
use hyper::body::Frame;
use serde_json::{Value, json};

use crate::local::{LocalBody, LocalFuture, LocalRequest, LocalResponse, LocalService};

/// The service's name in [`crate::WorkerConfig::local_services`].
pub(crate) fn service_name(binding: &str) -> String {
    format!("ai:{binding}")
}

/// Marks the service's own failures (thrown), apart from a gateway answer
/// with an error status (`gateway.run()` resolves to it).
const FAILURE_HEADER: &str = "x-hearth-ai-failure";

/// Largest provider answer turned into `{ response, usage }` whole.
const MAX_ANSWER_BYTES: usize = 8 << 20;
/// Most of an error answer read for its message.
const MAX_ERROR_BYTES: usize = 64 << 10;

pub(crate) struct AiGatewayService {
    pub(crate) ai: Arc<Ai>,
    pub(crate) gateways: Option<Gateways>,
    pub(crate) base_url: Arc<OnceLock<String>>,
}

impl LocalService for AiGatewayService {
    fn call(&self, req: LocalRequest) -> LocalFuture {
        let ai = self.ai.clone();
        let gateways = self.gateways.clone();
        let base = self
            .base_url
            .get()
            .cloned()
            .unwrap_or_else(|| "/__hearth/ai-gateway".to_owned());
        Box::pin(async move {
            match route(ai, gateways, base, req).await {
                Ok(r) => r,
                Err(f) => f.into_response(),
            }
        })
    }
}

/// A failure, thrown to the worker as `Error` named `name`.
struct Failure {
    status: u16,
    name: &'static str,
    message: String,
    headers: Vec<(String, String)>,
}

impl Failure {
    fn ai(status: u16, e: AiError) -> Self {
        Self {
            status,
            name: "AiError",
            message: e.to_string(),
            headers: Vec::new(),
        }
    }

    fn gateway(status: u16, message: impl Into<String>) -> Self {
        Self {
            status,
            name: "AiGatewayError",
            message: message.into(),
            headers: Vec::new(),
        }
    }

    fn into_response(self) -> LocalResponse {
        let mut headers = vec![
            ("content-type".to_owned(), "application/json".to_owned()),
            (FAILURE_HEADER.to_owned(), "1".to_owned()),
        ];
        headers.extend(self.headers);
        LocalResponse {
            status: self.status,
            headers,
            body: full(json!({ "name": self.name, "message": self.message }).to_string()),
        }
    }
}

fn full(b: impl Into<Bytes>) -> LocalBody {
    Full::new(b.into()).map_err(|never| match never {}).boxed()
}

fn json_response(v: &Value, extra: Vec<(String, String)>) -> LocalResponse {
    let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
    headers.extend(extra);
    LocalResponse {
        status: 200,
        headers,
        body: full(v.to_string()),
    }
}

async fn route(
    ai: Arc<Ai>,
    gateways: Option<Gateways>,
    base: String,
    req: LocalRequest,
) -> Result<LocalResponse, Failure> {
    let path = req.path.trim_start_matches('/').to_owned();
    if path == "run" {
        return run(ai, gateways, req.body).await;
    }
    let Some(rest) = path.strip_prefix("gateway/") else {
        return Err(Failure::gateway(404, format!("unknown call {path:?}")));
    };
    let (id, what) = rest.split_once('/').unwrap_or((rest, ""));
    let gw = find_gateway(gateways.as_ref(), id)?;
    let method = req.method.to_ascii_uppercase();
    match (method.as_str(), what.split_once('/').unwrap_or((what, ""))) {
        ("GET", ("url", provider)) => {
            let provider = (!provider.is_empty()).then_some(provider);
            Ok(json_response(&json!(gw.url(&base, provider)), Vec::new()))
        }
        ("GET", ("log", log_id)) => {
            let (gw, log_id) = (gw.clone(), log_id.to_owned());
            let v = blocking(move || gw.get_log(&log_id)).await?;
            Ok(json_response(&v, Vec::new()))
        }
        ("PATCH", ("log", log_id)) => {
            let patch = parse_patch(&req.body)?;
            let (gw, log_id) = (gw.clone(), log_id.to_owned());
            blocking(move || gw.patch_log(&log_id, patch)).await?;
            Ok(json_response(&Value::Null, Vec::new()))
        }
        ("POST", ("run", "")) => {
            let headers = header_map(&req.headers)?;
            Ok(from_gateway(gw.universal(&headers, &req.body).await))
        }
        _ => Err(Failure::gateway(
            404,
            format!("unknown call {method} {path:?}"),
        )),
    }
}

fn find_gateway(gateways: Option<&Gateways>, id: &str) -> Result<Gateway, Failure> {
    let Some(gateways) = gateways else {
        return Err(Failure::gateway(
            400,
            format!(
                "AI Gateway {id:?}: no gateways are configured (serve with --ai-gateway gateways.toml)"
            ),
        ));
    };
    gateways.get(id).ok_or_else(|| {
        Failure::gateway(
            404,
            format!(
                "AI Gateway {id:?} is not configured (configured: {})",
                gateways.ids().join(", ")
            ),
        )
    })
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, LogError> + Send + 'static,
) -> Result<T, Failure> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(LogError::NotFound(id))) => Err(Failure::gateway(404, format!("no log {id:?}"))),
        Ok(Err(e)) => Err(Failure::gateway(500, e.to_string())),
        Err(e) => Err(Failure::gateway(500, format!("the log store failed: {e}"))),
    }
}

/// `patchLog(id, { score, feedback, metadata })` with Cloudflare's types:
/// `feedback` -1, 0 or 1, `score` a number, `metadata` an object of at most
/// five string, number or boolean values.
fn parse_patch(body: &[u8]) -> Result<LogPatch, Failure> {
    let bad = |m: String| Failure::gateway(400, format!("patchLog: {m}"));
    let v: Value =
        serde_json::from_slice(body).map_err(|e| bad(format!("data is not JSON: {e}")))?;
    let Some(obj) = v.as_object() else {
        return Err(bad(
            "data must be an object { score, feedback, metadata }".into()
        ));
    };
    let mut patch = LogPatch::default();
    for (k, v) in obj {
        match (k.as_str(), v) {
            (_, Value::Null) => {}
            ("feedback", v) => match v.as_i64() {
                Some(n @ -1..=1) => patch.feedback = Some(n),
                _ => return Err(bad(format!("feedback must be -1, 0 or 1, not {v}"))),
            },
            ("score", v) => match v.as_f64() {
                Some(n) => patch.score = Some(n),
                None => return Err(bad(format!("score must be a number, not {v}"))),
            },
            ("metadata", v) => patch.metadata = Some(metadata_json(v).map_err(bad)?),
            (k, _) => {
                return Err(bad(format!(
                    "unknown field {k:?} (score, feedback, metadata)"
                )));
            }
        }
    }
    Ok(patch)
}

/// A metadata object as `cf-aig-metadata` carries it: at most five
/// entries of strings, numbers or booleans.
fn metadata_json(v: &Value) -> Result<String, String> {
    let Some(obj) = v.as_object() else {
        return Err(format!("metadata must be an object, not {v}"));
    };
    if obj.len() > hearth_ai_gateway::engine::MAX_METADATA_ENTRIES {
        return Err(format!(
            "metadata has {} entries; at most {} are allowed",
            obj.len(),
            hearth_ai_gateway::engine::MAX_METADATA_ENTRIES
        ));
    }
    for (k, v) in obj {
        if !(v.is_string() || v.is_number() || v.is_boolean()) {
            return Err(format!(
                "metadata.{k} must be a string, number or boolean, not {v}"
            ));
        }
    }
    Ok(v.to_string())
}

fn header_map(pairs: &[(String, String)]) -> Result<HeaderMap, Failure> {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        let name = HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| Failure::gateway(400, format!("invalid header name {k:?}")))?;
        let value = HeaderValue::from_str(v)
            .map_err(|_| Failure::gateway(400, format!("invalid value for header {k:?}")))?;
        h.append(name, value);
    }
    Ok(h)
}

/// `options.gateway` as `cf-aig-*` headers: `skipCache`, `cacheTtl`,
/// `cacheKey`, `metadata`, `collectLog`, `requestTimeoutMs`.
fn gateway_headers(opts: &Value) -> Result<(String, Vec<(String, String)>), Failure> {
    let bad = |m: String| Failure::ai(400, AiError::BadInput(format!("options.gateway: {m}")));
    let Some(obj) = opts.as_object() else {
        return Err(bad(format!("must be an object with an id, not {opts}")));
    };
    let id = match obj.get("id") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => return Err(bad("id must be a non-empty string".into())),
    };
    let mut h = Vec::new();
    for (k, v) in obj {
        let header = |name: &str, value: String| (name.to_owned(), value);
        match (k.as_str(), v) {
            ("id", _) | (_, Value::Null) => {}
            ("skipCache", Value::Bool(true)) => {
                h.push(header("cf-aig-skip-cache", "true".into()));
            }
            ("skipCache", Value::Bool(false)) => {}
            ("collectLog", Value::Bool(b)) => {
                h.push(header("cf-aig-collect-log", b.to_string()));
            }
            ("cacheTtl", v) if v.as_u64().is_some() => {
                h.push(header("cf-aig-cache-ttl", v.to_string()));
            }
            ("requestTimeoutMs", v) if v.as_u64().is_some() => {
                h.push(header("cf-aig-request-timeout", v.to_string()));
            }
            ("cacheKey", Value::String(s)) => h.push(header("cf-aig-cache-key", s.clone())),
            ("metadata", v) => h.push(header("cf-aig-metadata", metadata_json(v).map_err(bad)?)),
            ("skipCache" | "collectLog", v) => {
                return Err(bad(format!("{k} must be a boolean, not {v}")));
            }
            ("cacheTtl" | "requestTimeoutMs", v) => {
                return Err(bad(format!("{k} must be a whole number, not {v}")));
            }
            ("cacheKey", v) => return Err(bad(format!("cacheKey must be a string, not {v}"))),
            // Cloudflare's other options (eventId, ...) have no effect here.
            _ => {}
        }
    }
    Ok((id, h))
}

/// `env.AI.run(model, inputs, { gateway })`.
async fn run(
    ai: Arc<Ai>,
    gateways: Option<Gateways>,
    body: Bytes,
) -> Result<LocalResponse, Failure> {
    let v: Value = serde_json::from_slice(&body)
        .map_err(|e| Failure::ai(400, AiError::BadInput(format!("inputs are not JSON: {e}"))))?;
    let model = v["model"].as_str().unwrap_or("").to_owned();
    let inputs = v.get("inputs").cloned().unwrap_or(Value::Null);
    let (id, cf_headers) = gateway_headers(&v["gateway"])?;
    let gw = find_gateway(gateways.as_ref(), &id)?;
    let pr = match ai.provider_request(&model, &inputs) {
        Ok(Some(pr)) => pr,
        // A local model runs on this machine; off the isolate thread.
        Ok(None) => return run_local(ai, model, inputs).await,
        Err(e) => return Err(Failure::ai(400, e)),
    };
    let mut headers = HeaderMap::new();
    for (k, val) in pr
        .headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .chain(cf_headers)
    {
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(&val),
        ) else {
            return Err(Failure::ai(
                400,
                AiError::BadInput(format!("options.gateway: {k} is not a valid header value")),
            ));
        };
        headers.append(name, value);
    }
    let resp = gw
        .run_at(
            &pr.base_url,
            GatewayRequest {
                provider: pr.provider.clone(),
                path: pr.path.to_owned(),
                method: Method::POST,
                headers,
                body: Bytes::from(pr.body.clone()),
            },
        )
        .await;
    to_workers_ai(&id, &pr, resp).await
}

async fn run_local(ai: Arc<Ai>, model: String, inputs: Value) -> Result<LocalResponse, Failure> {
    match tokio::task::spawn_blocking(move || ai.run(&model, &inputs)).await {
        Ok(Ok(AiOutput::Json(v))) => Ok(json_response(&v, Vec::new())),
        // Local models only embed; a stream never comes from one.
        Ok(Ok(AiOutput::Stream(_))) => Err(Failure::ai(
            500,
            AiError::Internal("a local model answered a stream".into()),
        )),
        Ok(Err(e)) => Err(Failure::ai(500, e)),
        Err(e) => Err(Failure::ai(500, AiError::Internal(e.to_string()))),
    }
}

/// The gateway's answer as it is (`gateway.run()` resolves to it).
fn from_gateway(r: GatewayResponse) -> LocalResponse {
    LocalResponse {
        status: r.status.as_u16(),
        headers: r
            .headers
            .iter()
            .filter(|(n, _)| n.as_str() != FAILURE_HEADER)
            .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect(),
        body: r.body,
    }
}

/// The `cf-aig-*` headers of a gateway answer, kept for the glue
/// (`aiGatewayLogId`).
fn aig_headers(h: &HeaderMap) -> Vec<(String, String)> {
    h.iter()
        .filter(|(n, _)| n.as_str().starts_with("cf-aig-"))
        .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect()
}

/// The gateway's answer as Workers AI's: JSON, or its events.
async fn to_workers_ai(
    id: &str,
    pr: &ProviderRequest,
    resp: GatewayResponse,
) -> Result<LocalResponse, Failure> {
    let aig = aig_headers(&resp.headers);
    let status = resp.status;
    if !status.is_success() {
        let text = Limited::new(resp.body, MAX_ERROR_BYTES)
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let parsed: Option<Value> = serde_json::from_slice(&text).ok();
        let message = parsed
            .as_ref()
            .and_then(|v| {
                v.pointer("/error/0/message")
                    .or_else(|| v.pointer("/error/message"))
            })
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| String::from_utf8_lossy(&text).trim().to_owned());
        let e = if status == http::StatusCode::GATEWAY_TIMEOUT {
            AiError::Timeout
        } else {
            AiError::Internal(format!("AI Gateway {id:?} answered {status}: {message}"))
        };
        let mut f = Failure::ai(status.as_u16(), e);
        f.headers = aig;
        return Err(f);
    }
    let streamed = resp
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    if pr.stream && streamed {
        let mut headers = vec![("content-type".to_owned(), "text/event-stream".to_owned())];
        headers.extend(aig);
        return Ok(LocalResponse {
            status: 200,
            headers,
            body: translate_stream(resp, SseTranslator::new(pr.kind, &pr.provider)),
        });
    }
    let bytes = Limited::new(resp.body, MAX_ANSWER_BYTES)
        .collect()
        .await
        .map_err(|e| {
            Failure::ai(
                502,
                AiError::Internal(format!("reading the answer through AI Gateway {id:?}: {e}")),
            )
        })?
        .to_bytes();
    let v = hearth_ai::provider::answer(pr.kind, &pr.provider, &bytes)
        .map_err(|e| Failure::ai(502, e))?;
    Ok(json_response(&v, aig))
}

/// A provider's event stream, read from the gateway as the worker pulls,
/// as Workers AI's events. An error mid-stream ends the body with it.
fn translate_stream(resp: GatewayResponse, t: SseTranslator) -> LocalBody {
    let frames = resp.body.into_data_stream();
    let s = futures::stream::unfold(
        (frames, t, false),
        |(mut frames, mut t, ended)| async move {
            if ended {
                return None;
            }
            loop {
                match frames.next().await {
                    Some(Ok(chunk)) => match t.push(&chunk) {
                        Ok(text) if text.is_empty() => continue,
                        // Read on to the provider's end even after the last
                        // event, so the gateway sees the answer whole (and
                        // caches it).
                        Ok(text) => {
                            return Some((Ok(Frame::data(Bytes::from(text))), (frames, t, false)));
                        }
                        Err(e) => {
                            return Some((
                                Err(std::io::Error::other(e.to_string())),
                                (frames, t, true),
                            ));
                        }
                    },
                    Some(Err(e)) => return Some((Err(e), (frames, t, true))),
                    None => {
                        let text = t.end()?;
                        return Some((Ok(Frame::data(Bytes::from(text))), (frames, t, true)));
                    }
                }
            }
        },
    );
    BodyExt::boxed(StreamBody::new(s))
}
