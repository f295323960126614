//! In-process services a binding's JS glue calls like `fetch()`, without a
//! socket: the call runs as a task on the loop and its answer comes back
//! to the isolate as a response head and body chunks, through the same
//! events (and read-ahead credits) as an outgoing fetch. The Workers AI
//! binding's AI Gateway calls go this way, so a slow provider holds a
//! task, never the isolate.

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;

/// A body answered from inside the process.
pub type LocalBody = BoxBody<Bytes, std::io::Error>;

/// What the glue sends: a method, a path of the service's own, headers and
/// a body.
#[derive(Debug, Clone)]
pub struct LocalRequest {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

/// The service's answer; its body is read as the worker reads it.
pub struct LocalResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: LocalBody,
}

pub type LocalFuture = Pin<Box<dyn Future<Output = LocalResponse> + Send>>;

/// A service the glue of one worker's bindings may call by name
/// (`globalThis[Symbol.for("hearth.localFetch")](name, method, path,
/// headers, body)`). Only the services a worker's own bindings registered
/// are reachable from it.
pub trait LocalService: Send + Sync {
    fn call(&self, req: LocalRequest) -> LocalFuture;
}
