//! A provider double for tests and benchmarks: an OpenAI-compatible
//! (`/v1/chat/completions`) and an Anthropic-shaped (`/v1/messages`) server
//! on loopback, answering at once unless scripted otherwise (failures,
//! latencies, streamed answers paced per event). It counts the requests it
//! saw and the answers whose client went away before the end.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::{Body, Frame, Incoming};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// How the double answers its next request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Script {
    /// This status with an error body.
    Status(u16),
    /// Wait this many ms, then answer normally.
    Delay(u64),
    /// A streamed answer (when the request asks for one) with this many ms
    /// between events.
    Pace(u64),
}

#[derive(Debug, Default)]
pub struct DoubleState {
    script: Mutex<VecDeque<Script>>,
    /// Requests seen.
    pub requests: AtomicU64,
    /// Answers whose client closed the connection before their end.
    pub cancelled: AtomicU64,
    /// Streamed answers sent to the end.
    pub streams_completed: AtomicU64,
    seen: Mutex<VecDeque<(String, HeaderMap, Bytes)>>,
}

#[derive(Debug, Clone)]
pub struct ProviderDouble {
    pub addr: SocketAddr,
    pub state: Arc<DoubleState>,
}

/// Events of a streamed answer: three content pieces then usage.
pub const STREAM_WORDS: [&str; 3] = ["Hello", ", ", "world"];

impl ProviderDouble {
    /// Starts the double on 127.0.0.1 on the current Tokio runtime.
    pub async fn start() -> std::io::Result<Self> {
        Self::start_on("127.0.0.1:0".parse().map_err(std::io::Error::other)?).await
    }

    /// Starts the double on `addr`.
    pub async fn start_on(addr: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(DoubleState::default());
        let s = state.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                let s = s.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let s = s.clone();
                        async move { Ok::<_, Infallible>(answer(s, req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self { addr, state })
    }

    /// The OpenAI base URL (`http://127.0.0.1:<port>/v1`).
    pub fn openai_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The Anthropic base URL (`http://127.0.0.1:<port>`).
    pub fn anthropic_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Queues how the next requests are answered, in order.
    pub fn script(&self, steps: &[Script]) {
        self.state
            .script
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(steps.iter().copied());
    }

    pub fn requests(&self) -> u64 {
        self.state.requests.load(Ordering::SeqCst)
    }

    pub fn cancelled(&self) -> u64 {
        self.state.cancelled.load(Ordering::SeqCst)
    }

    /// Path, headers and body of the requests seen (the last 1,000).
    pub fn seen(&self) -> Vec<(String, HeaderMap, Bytes)> {
        self.state
            .seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect()
    }
}

type DoubleBody = BoxBody<Bytes, Infallible>;

/// Counts a cancelled answer when dropped before `done`.
struct Watch {
    state: Arc<DoubleState>,
    done: bool,
}

impl Drop for Watch {
    fn drop(&mut self) {
        if !self.done {
            self.state.cancelled.fetch_add(1, Ordering::SeqCst);
        }
    }
}

async fn answer(state: Arc<DoubleState>, req: Request<Incoming>) -> Response<DoubleBody> {
    state.requests.fetch_add(1, Ordering::SeqCst);
    let mut watch = Watch {
        state: state.clone(),
        done: false,
    };
    let path = req.uri().path().to_owned();
    let headers = req.headers().clone();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    {
        let mut seen = state.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() >= 1000 {
            seen.pop_front();
        }
        seen.push_back((path.clone(), headers, body.clone()));
    }
    let next = state
        .script
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .pop_front();
    let mut pace = 0;
    match next {
        Some(Script::Status(code)) => {
            watch.done = true;
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return json_response(
                status,
                &json!({ "error": { "message": format!("scripted {code}"), "type": "scripted" } }),
            );
        }
        Some(Script::Delay(ms)) => tokio::time::sleep(Duration::from_millis(ms)).await,
        Some(Script::Pace(ms)) => pace = ms,
        None => {}
    }
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let model = request["model"].as_str().unwrap_or("unknown").to_owned();
    let stream = request["stream"].as_bool().unwrap_or(false);
    let anthropic = path.ends_with("/messages");
    let prompt_tokens = (body.len() as u64 / 4).max(1);
    if !stream {
        watch.done = true;
        let text = STREAM_WORDS.concat();
        let v = if anthropic {
            json!({
                "id": "msg_double", "type": "message", "role": "assistant", "model": model,
                "content": [{ "type": "text", "text": text }],
                "stop_reason": "end_turn",
                "usage": { "input_tokens": prompt_tokens, "output_tokens": 3 },
            })
        } else {
            json!({
                "id": "chatcmpl-double", "object": "chat.completion", "model": model,
                "choices": [{ "index": 0, "finish_reason": "stop",
                    "message": { "role": "assistant", "content": text } }],
                "usage": { "prompt_tokens": prompt_tokens, "completion_tokens": 3,
                    "total_tokens": prompt_tokens + 3 },
            })
        };
        return json_response(StatusCode::OK, &v);
    }
    let mut events: Vec<String> = Vec::new();
    if anthropic {
        events.push(format!(
            "event: message_start\ndata: {}\n\n",
            json!({ "type": "message_start", "message": { "model": model,
                "usage": { "input_tokens": prompt_tokens, "output_tokens": 1 } } })
        ));
        for w in STREAM_WORDS {
            events.push(format!(
                "event: content_block_delta\ndata: {}\n\n",
                json!({ "type": "content_block_delta", "index": 0,
                    "delta": { "type": "text_delta", "text": w } })
            ));
        }
        events.push(format!(
            "event: message_delta\ndata: {}\n\n",
            json!({ "type": "message_delta", "usage": { "output_tokens": 3 } })
        ));
        events.push("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n".into());
    } else {
        for w in STREAM_WORDS {
            events.push(format!(
                "data: {}\n\n",
                json!({ "object": "chat.completion.chunk", "model": model,
                    "choices": [{ "index": 0, "delta": { "content": w } }] })
            ));
        }
        events.push(format!(
            "data: {}\n\n",
            json!({ "object": "chat.completion.chunk", "model": model, "choices": [],
                "usage": { "prompt_tokens": prompt_tokens, "completion_tokens": 3 } })
        ));
        events.push("data: [DONE]\n\n".into());
    }
    watch.done = true;
    let body = Paced {
        events: events.into_iter().map(Bytes::from).collect(),
        pace: Duration::from_millis(pace),
        sleep: None,
        state: state.clone(),
        finished: false,
    };
    let mut r = Response::new(body.boxed());
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/event-stream"),
    );
    r
}

/// A streamed answer sent event by event, `pace` apart.
struct Paced {
    events: VecDeque<Bytes>,
    pace: Duration,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    state: Arc<DoubleState>,
    finished: bool,
}

impl Body for Paced {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = &mut *self;
        if this.events.is_empty() {
            if !this.finished {
                this.finished = true;
                this.state.streams_completed.fetch_add(1, Ordering::SeqCst);
            }
            return Poll::Ready(None);
        }
        if !this.pace.is_zero() {
            let sleep = this
                .sleep
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(this.pace)));
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            this.sleep = None;
        }
        match this.events.pop_front() {
            Some(e) => Poll::Ready(Some(Ok(Frame::data(e)))),
            None => Poll::Ready(None),
        }
    }
}

impl Drop for Paced {
    fn drop(&mut self) {
        if !self.finished && !self.events.is_empty() {
            self.state.cancelled.fetch_add(1, Ordering::SeqCst);
        }
    }
}

fn json_response(status: StatusCode, v: &Value) -> Response<DoubleBody> {
    let mut r = Response::new(Full::new(Bytes::from(v.to_string())).boxed());
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r
}
