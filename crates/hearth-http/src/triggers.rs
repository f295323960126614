//! HTTP entry points for non-`fetch` events:
//!
//! - Pull consumers, in the shape of Cloudflare's Queues REST API under a
//!   local path: `POST /__hearth/queues/<queue>/messages/pull` with
//!   `{batch_size, visibility_timeout_ms}` and
//!   `POST /__hearth/queues/<queue>/messages/ack` with
//!   `{acks: [{lease_id}], retries: [{lease_id, delay_seconds}]}`, answered
//!   in Cloudflare's envelope `{success, errors, messages, result}`. As on
//!   Cloudflare, `text` bodies are sent as strings and every other content
//!   type base64-encoded.
//! - `GET /__hearth/scheduled?cron=<expr>&time=<ms>` runs `scheduled()` on
//!   demand and answers the outcome as JSON. `/cdn-cgi/handler/scheduled`
//!   (and `/__scheduled` in dev mode, like `wrangler dev --test-scheduled`)
//!   answer as wrangler does: `ok`, or 500 `exception`.
//!
//! All of them follow the internal endpoints' access rule.
//!
//! With several workers, a pull endpoint answers for the worker whose config
//! declares the queue's consumer (a queue has one consumer). The scheduled
//! endpoints run the worker named by `?worker=<name>` when given, else the
//! worker the request routes to by its `Host` and path, as a normal request
//! would (the first worker when no `routes` match).
//!
//! `/__hearth/scheduled` runs only a cron of the worker's `triggers.crons`.
//! wrangler's test route runs any cron it is given, as Miniflare does (the
//! conformance suite records that), so it keeps doing so; it is reachable
//! only where every internal endpoint is.

use base64::Engine;
use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde_json::{Value, json};

use hearth_queues::{PullOptions, PullRetry, QueueContentType, QueueError};

use crate::{Body, INTERNAL_PREFIX, State, full, text};

/// Largest pull/ack request body read.
const MAX_REQUEST_BYTES: usize = 1024 * 1024;
const QUEUES_PREFIX: &str = "/__hearth/queues/";

/// Whether this module answers `path`.
pub(crate) fn handles(state: &State, path: &str) -> bool {
    path.starts_with(QUEUES_PREFIX)
        || path == "/__hearth/scheduled"
        || path == "/cdn-cgi/handler/scheduled"
        || (state.options.dev && path == "/__scheduled")
}

pub(crate) async fn handle(state: &State, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_owned();
    if let Some(rest) = path.strip_prefix(QUEUES_PREFIX) {
        return queues(state, req, rest).await;
    }
    scheduled(state, &req, path.starts_with(INTERNAL_PREFIX)).await
}

fn json_response(status: StatusCode, v: &Value) -> Response<Body> {
    let mut r = Response::new(full(Bytes::from(v.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// Cloudflare's API envelope for a failure.
fn api_error(status: StatusCode, message: &str) -> Response<Body> {
    json_response(
        status,
        &json!({
            "success": false,
            "errors": [{ "code": status.as_u16(), "message": message }],
            "messages": [],
            "result": null,
        }),
    )
}

fn api_ok(result: Value) -> Response<Body> {
    json_response(
        StatusCode::OK,
        &json!({ "success": true, "errors": [], "messages": [], "result": result }),
    )
}

fn queue_error(e: &QueueError) -> Response<Body> {
    let status = match e.status() {
        Some(s) => StatusCode::from_u16(s).unwrap_or(StatusCode::BAD_REQUEST),
        None if e.is_user_error() => StatusCode::BAD_REQUEST,
        None => StatusCode::INTERNAL_SERVER_ERROR,
    };
    if status.is_server_error() {
        tracing::error!(target: "hearth::queues", "pull consumer request failed: {e}");
    }
    api_error(status, &e.to_string())
}

async fn read_json(state: &State, req: Request<Incoming>) -> Result<Value, Response<Body>> {
    let body = crate::conn::MinRate::new(req.into_body(), &state.options.connections);
    let body = Limited::new(body, MAX_REQUEST_BYTES)
        .collect()
        .await
        .map_err(|e| {
            api_error(
                StatusCode::BAD_REQUEST,
                &format!("cannot read the body: {e}"),
            )
        })?
        .to_bytes();
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    match serde_json::from_slice::<Value>(&body) {
        Ok(v) if v.is_object() => Ok(v),
        Ok(_) => Err(api_error(
            StatusCode::BAD_REQUEST,
            "the request body must be a JSON object",
        )),
        Err(e) => Err(api_error(
            StatusCode::BAD_REQUEST,
            &format!("the request body is not valid JSON: {e}"),
        )),
    }
}

/// A JSON number field, or an error naming it.
fn number(v: &Value, field: &str) -> Result<Option<f64>, String> {
    match v.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(other) => Err(format!("{field} must be a number, got {other}")),
    }
}

async fn queues(state: &State, req: Request<Incoming>, rest: &str) -> Response<Body> {
    let (queue, action) = match rest.split_once("/messages/") {
        Some((q, a)) if !q.is_empty() && !q.contains('/') => (q.to_owned(), a.to_owned()),
        _ => return api_error(StatusCode::NOT_FOUND, "no such endpoint"),
    };
    let brokers = || {
        state
            .options
            .workers
            .iter()
            .filter_map(|w| w.queues.as_ref())
    };
    // The consumer's worker; else any broker, which names what is wrong
    // with the queue (not declared, not a pull consumer).
    let Some(broker) = brokers()
        .find(|b| b.consumer(&queue).is_some())
        .or_else(|| brokers().next())
    else {
        return api_error(
            StatusCode::NOT_FOUND,
            "no served worker configures queues (queues.consumers with type = \"http_pull\")",
        );
    };
    if req.method() != http::Method::POST {
        return api_error(StatusCode::METHOD_NOT_ALLOWED, "use POST");
    }
    let body = match read_json(state, req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let broker = broker.clone();
    match action.as_str() {
        "pull" => {
            let batch_size = match number(&body, "batch_size") {
                Ok(v) => v,
                Err(m) => return api_error(StatusCode::BAD_REQUEST, &m),
            };
            // Cloudflare's API names it `visibility_timeout_ms`; its guide
            // also shows `visibility_timeout` (milliseconds too).
            let visibility = match (
                number(&body, "visibility_timeout_ms"),
                number(&body, "visibility_timeout"),
            ) {
                (Ok(a), Ok(b)) => a.or(b),
                (Err(m), _) | (_, Err(m)) => return api_error(StatusCode::BAD_REQUEST, &m),
            };
            let options = PullOptions {
                batch_size,
                visibility_timeout_ms: visibility,
            };
            let pulled = tokio::task::spawn_blocking(move || broker.pull(&queue, &options)).await;
            let pulled = match pulled {
                Ok(Ok(p)) => p,
                Ok(Err(e)) => return queue_error(&e),
                Err(e) => return api_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
            };
            let b64 = base64::engine::general_purpose::STANDARD;
            let messages: Vec<Value> = pulled
                .messages
                .into_iter()
                .map(|m| {
                    let body = match m.content_type {
                        QueueContentType::Text => {
                            Value::String(String::from_utf8_lossy(&m.body).into_owned())
                        }
                        _ => Value::String(b64.encode(&m.body)),
                    };
                    json!({
                        "body": body,
                        "id": m.id,
                        "timestamp_ms": m.timestamp_ms,
                        "attempts": m.attempts,
                        "metadata": {
                            "CF-sourceMessageSource": "worker",
                            "CF-Content-Type": m.content_type.as_str(),
                        },
                        "lease_id": m.lease_id,
                    })
                })
                .collect();
            api_ok(json!({
                "message_backlog_count": pulled.message_backlog_count,
                "messages": messages,
            }))
        }
        "ack" => {
            let mut acks = Vec::new();
            let mut retries = Vec::new();
            for (field, is_retry) in [("acks", false), ("retries", true)] {
                let list = match body.get(field) {
                    None | Some(Value::Null) => continue,
                    Some(Value::Array(a)) => a,
                    Some(_) => {
                        return api_error(
                            StatusCode::BAD_REQUEST,
                            &format!("{field} must be an array of {{lease_id}} objects"),
                        );
                    }
                };
                for entry in list {
                    let Some(lease) = entry.get("lease_id").and_then(Value::as_str) else {
                        return api_error(
                            StatusCode::BAD_REQUEST,
                            &format!("every entry of {field} needs a lease_id string"),
                        );
                    };
                    if is_retry {
                        let delay = match number(entry, "delay_seconds") {
                            Ok(d) => d,
                            Err(m) => return api_error(StatusCode::BAD_REQUEST, &m),
                        };
                        retries.push(PullRetry {
                            lease_id: lease.to_owned(),
                            delay_seconds: delay,
                        });
                    } else {
                        acks.push(lease.to_owned());
                    }
                }
            }
            let done =
                tokio::task::spawn_blocking(move || broker.ack(&queue, &acks, &retries)).await;
            match done {
                Ok(Ok(r)) => api_ok(json!({
                    "ackCount": r.ack_count,
                    "retryCount": r.retry_count,
                    "warnings": r.warnings,
                })),
                Ok(Err(e)) => queue_error(&e),
                Err(e) => api_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
            }
        }
        _ => api_error(StatusCode::NOT_FOUND, "no such endpoint"),
    }
}

/// Whether `cron` is one of `crons`, spacing aside.
fn is_configured(crons: &[String], cron: &str) -> bool {
    let words = |s: &str| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
    let cron = words(cron);
    !cron.is_empty() && crons.iter().any(|c| words(c) == cron)
}

fn query_param(req: &Request<Incoming>, name: &str) -> Option<String> {
    let query = req.uri().query()?;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The worker a scheduled request runs on: `?worker=<name>`, else routing;
/// an unknown name is an error naming the served workers.
fn scheduled_worker(state: &State, req: &Request<Incoming>) -> Result<usize, String> {
    match query_param(req, "worker") {
        Some(name) => state.index_of(&name).ok_or_else(|| {
            let names: Vec<&str> = state
                .options
                .workers
                .iter()
                .filter_map(|w| w.name.as_deref())
                .collect();
            format!("worker={name:?} is not a served worker (serving: {names:?})\n")
        }),
        None => Ok(state.route(state.request_host(req), req.uri().path())),
    }
}

async fn scheduled(state: &State, req: &Request<Incoming>, json_answer: bool) -> Response<Body> {
    let worker = match scheduled_worker(state, req) {
        Ok(i) => i,
        Err(message) => return text(StatusCode::NOT_FOUND, message),
    };
    let crons = &state.options.workers[worker].crons;
    let cron = query_param(req, "cron").unwrap_or_default();
    if json_answer && !is_configured(crons, &cron) {
        let listed: Vec<&str> = crons.iter().map(String::as_str).collect();
        return text(
            StatusCode::BAD_REQUEST,
            format!(
                "cron={cron:?} is not one of the worker's triggers.crons {listed:?}; /__hearth/scheduled runs configured crons only (wrangler's /cdn-cgi/handler/scheduled runs any)\n"
            ),
        );
    }
    let time = match query_param(req, "time") {
        None => state.options.clock.now_ms(),
        Some(t) => match t.parse::<u64>() {
            Ok(ms) => ms,
            Err(_) => {
                return text(
                    StatusCode::BAD_REQUEST,
                    format!("time={t:?} is not a number of milliseconds since the Unix epoch\n"),
                );
            }
        },
    };
    let id = format!(
        "{:016x}",
        state
            .next_id
            .fetch_add(0x9E37_79B9_7F4A_7C15, std::sync::atomic::Ordering::Relaxed)
    );
    let outcome = state.pools[worker].scheduled(id, &cron, time).await;
    let status = if outcome.ok() {
        StatusCode::OK
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    };
    if json_answer {
        let mut v = json!({
            "outcome": if outcome.ok() { "ok" } else { "exception" },
            "cron": cron,
            "scheduledTime": time,
            "noRetry": outcome.no_retry,
        });
        if let Some(e) = &outcome.error {
            v["error"] = Value::String(e.clone());
        }
        return json_response(status, &v);
    }
    text(status, if outcome.ok() { "ok" } else { "exception" })
}
