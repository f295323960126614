//! The pull consumer endpoints, in the shape of Cloudflare's Queues REST API
//! under a local path: `POST /__hearth/queues/<queue>/messages/pull` with
//! `{batch_size, visibility_timeout_ms}` and
//! `POST /__hearth/queues/<queue>/messages/ack` with
//! `{acks: [{lease_id}], retries: [{lease_id, delay_seconds}]}`, answered
//! in Cloudflare's envelope `{success, errors, messages, result}`. As on
//! Cloudflare, `text` bodies are sent as strings and every other content
//! type base64-encoded. With several workers, the worker whose config
//! declares the queue's consumer answers.

use base64::Engine;
use hearth_queues::{PullOptions, PullRetry, QueueBroker, QueueContentType, QueueError};
use serde_json::{Value, json};

use crate::bindings::registry::{InternalFuture, InternalRequest, InternalResponse, InternalRoute};

#[derive(Debug)]
pub(crate) struct PullEndpoints {
    broker: QueueBroker,
}

impl PullEndpoints {
    pub(crate) fn new(broker: QueueBroker) -> Self {
        Self { broker }
    }
}

/// `<queue>/messages/<action>` → (queue, action).
fn split(rest: &str) -> Option<(&str, &str)> {
    match rest.split_once("/messages/") {
        Some((q, a)) if !q.is_empty() && !q.contains('/') => Some((q, a)),
        _ => None,
    }
}

impl InternalRoute for PullEndpoints {
    fn prefix(&self) -> &'static str {
        "queues"
    }

    fn claims(&self, rest: &str) -> bool {
        split(rest).is_some_and(|(queue, _)| self.broker.consumer(queue).is_some())
    }

    fn handle(&self, req: InternalRequest) -> InternalFuture {
        let broker = self.broker.clone();
        Box::pin(async move { answer(broker, req).await })
    }
}

/// Cloudflare's API envelope for a failure.
fn api_error(status: u16, message: &str) -> InternalResponse {
    InternalResponse::json(
        status,
        &json!({
            "success": false,
            "errors": [{ "code": status, "message": message }],
            "messages": [],
            "result": null,
        }),
    )
}

fn api_ok(result: Value) -> InternalResponse {
    InternalResponse::json(
        200,
        &json!({ "success": true, "errors": [], "messages": [], "result": result }),
    )
}

fn queue_error(e: &QueueError) -> InternalResponse {
    let status = match e.status() {
        Some(s) => s,
        None if e.is_user_error() => 400,
        None => 500,
    };
    if status >= 500 {
        tracing::error!(target: "hearth::queues", "pull consumer request failed: {e}");
    }
    api_error(status, &e.to_string())
}

fn read_json(body: &[u8]) -> Result<Value, InternalResponse> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(v) if v.is_object() => Ok(v),
        Ok(_) => Err(api_error(400, "the request body must be a JSON object")),
        Err(e) => Err(api_error(
            400,
            &format!("the request body is not valid JSON: {e}"),
        )),
    }
}

/// A JSON number field, or an error naming it.
fn number(v: &Value, field: &str) -> Result<Option<f64>, InternalResponse> {
    match v.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(other) => Err(api_error(
            400,
            &format!("{field} must be a number, got {other}"),
        )),
    }
}

async fn answer(broker: QueueBroker, req: InternalRequest) -> InternalResponse {
    let Some((queue, action)) = split(&req.rest) else {
        return api_error(404, "no such endpoint");
    };
    if req.method != "POST" {
        return api_error(405, "use POST");
    }
    let body = match read_json(&req.body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let queue = queue.to_owned();
    let result = match action {
        "pull" => pull(broker, queue, &body).await,
        "ack" => ack(broker, queue, &body).await,
        _ => return api_error(404, "no such endpoint"),
    };
    result.unwrap_or_else(|r| r)
}

async fn pull(
    broker: QueueBroker,
    queue: String,
    body: &Value,
) -> Result<InternalResponse, InternalResponse> {
    let batch_size = number(body, "batch_size")?;
    // Cloudflare's API names it `visibility_timeout_ms`; its guide also
    // shows `visibility_timeout` (milliseconds too).
    let visibility = number(body, "visibility_timeout_ms")?;
    let visibility = visibility.or(number(body, "visibility_timeout")?);
    let options = PullOptions {
        batch_size,
        visibility_timeout_ms: visibility,
    };
    let pulled = tokio::task::spawn_blocking(move || broker.pull(&queue, &options))
        .await
        .map_err(|e| api_error(500, &e.to_string()))?
        .map_err(|e| queue_error(&e))?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let messages: Vec<Value> = pulled
        .messages
        .into_iter()
        .map(|m| {
            let body = match m.content_type {
                QueueContentType::Text => String::from_utf8_lossy(&m.body).into_owned(),
                _ => b64.encode(&m.body),
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
    Ok(api_ok(json!({
        "message_backlog_count": pulled.message_backlog_count,
        "messages": messages,
    })))
}

async fn ack(
    broker: QueueBroker,
    queue: String,
    body: &Value,
) -> Result<InternalResponse, InternalResponse> {
    let mut acks = Vec::new();
    let mut retries = Vec::new();
    for (field, is_retry) in [("acks", false), ("retries", true)] {
        let list = match body.get(field) {
            None | Some(Value::Null) => continue,
            Some(Value::Array(a)) => a,
            Some(_) => {
                return Err(api_error(
                    400,
                    &format!("{field} must be an array of {{lease_id}} objects"),
                ));
            }
        };
        for entry in list {
            let Some(lease) = entry.get("lease_id").and_then(Value::as_str) else {
                return Err(api_error(
                    400,
                    &format!("every entry of {field} needs a lease_id string"),
                ));
            };
            if is_retry {
                retries.push(PullRetry {
                    lease_id: lease.to_owned(),
                    delay_seconds: number(entry, "delay_seconds")?,
                });
            } else {
                acks.push(lease.to_owned());
            }
        }
    }
    let r = tokio::task::spawn_blocking(move || broker.ack(&queue, &acks, &retries))
        .await
        .map_err(|e| api_error(500, &e.to_string()))?
        .map_err(|e| queue_error(&e))?;
    Ok(api_ok(json!({
        "ackCount": r.ack_count,
        "retryCount": r.retry_count,
        "warnings": r.warnings,
    })))
}
