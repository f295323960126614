//! The connection layer's defences against numerous or slow clients: the
//! connection cap, the request-body minimum data rate and rate-limited
//! logging of accept errors.

use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use std::future::Future as _;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};

/// Connection-level limits. The defaults suit a server facing the internet;
/// every one is named in the error or log line it causes.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// Open client connections at once (WebSockets included). A connection
    /// past the cap is answered 503 and closed at once; open ones are
    /// unaffected.
    pub max_connections: usize,
    /// How long a client may take to send a request's head (request line
    /// and headers), and how long an idle keep-alive connection is kept.
    pub header_read_timeout: Duration,
    /// A request body must arrive at least this fast on average, counting
    /// only the time the server waits for it (0: no minimum).
    pub min_request_body_bytes_per_sec: u64,
    /// Waiting time every request body gets before the minimum rate counts.
    pub request_body_grace: Duration,
    /// Largest read buffer of one connection. It bounds a request's head:
    /// a longer head is answered 431.
    pub max_buf_bytes: usize,
}

/// Default of [`ConnectionLimits::max_connections`].
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_read_timeout: Duration::from_secs(15),
            // The minimum ASP.NET Core's Kestrel applies by default.
            min_request_body_bytes_per_sec: 240,
            request_body_grace: Duration::from_secs(5),
            max_buf_bytes: 64 * 1024,
        }
    }
}

/// Connections the admin listener holds at once, apart from the main cap.
pub const ADMIN_MAX_CONNECTIONS: usize = 64;

/// The smallest read buffer hyper accepts.
pub(crate) const MIN_BUF_BYTES: usize = 8192;

/// The answer to a connection past the cap, written without waiting.
pub(crate) const OVER_CAPACITY_RESPONSE: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: text/plain;charset=UTF-8\r\n\
retry-after: 1\r\n\
connection: close\r\n\
content-length: 82\r\n\
\r\n\
503 Service Unavailable: the server is at its connection limit (max_connections).\n";

/// A request body that arrived more slowly than
/// [`ConnectionLimits::min_request_body_bytes_per_sec`].
#[derive(Debug, thiserror::Error)]
#[error(
    "the request body arrived too slowly: {received} bytes in {waited_ms} ms of waiting, under the minimum of {rate} bytes/s after a {grace_ms} ms grace period (min_request_body_bytes_per_sec)"
)]
pub struct BodyTooSlow {
    pub received: u64,
    pub waited_ms: u128,
    pub rate: u64,
    pub grace_ms: u128,
}

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A request body held to a minimum data rate. Only the time spent waiting
/// for the client counts: while nobody reads the body (the worker has not
/// asked for it yet), the clock does not run against the client.
pub(crate) struct MinRate<B> {
    inner: B,
    rate: u64,
    grace: Duration,
    received: u64,
    waited: Duration,
    waiting_since: Option<Instant>,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<B> MinRate<B> {
    pub(crate) fn new(inner: B, limits: &ConnectionLimits) -> Self {
        Self {
            inner,
            rate: limits.min_request_body_bytes_per_sec,
            grace: limits.request_body_grace,
            received: 0,
            waited: Duration::ZERO,
            waiting_since: None,
            deadline: None,
        }
    }

    /// Waiting time the body may still use.
    fn allowance(&self) -> Duration {
        let earned = Duration::from_secs_f64(self.received as f64 / self.rate as f64);
        (self.grace + earned).saturating_sub(self.waited)
    }

    fn too_slow(&self) -> BodyTooSlow {
        BodyTooSlow {
            received: self.received,
            waited_ms: self.waited.as_millis(),
            rate: self.rate,
            grace_ms: self.grace.as_millis(),
        }
    }
}

impl<B> Body for MinRate<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.rate == 0 {
            return Pin::new(&mut this.inner)
                .poll_frame(cx)
                .map(|f| f.map(|r| r.map_err(Into::into)));
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                if let Some(since) = this.waiting_since.take() {
                    this.waited += since.elapsed();
                }
                this.deadline = None;
                if let Some(Ok(f)) = &frame
                    && let Some(data) = f.data_ref()
                {
                    this.received += data.len() as u64;
                }
                Poll::Ready(frame.map(|r| r.map_err(Into::into)))
            }
            Poll::Pending => {
                let now = Instant::now();
                if this.waiting_since.is_none() {
                    this.waiting_since = Some(now);
                    let until = tokio::time::Instant::from_std(now + this.allowance());
                    this.deadline = Some(Box::pin(tokio::time::sleep_until(until)));
                }
                if let Some(deadline) = &mut this.deadline
                    && deadline.as_mut().poll(cx).is_ready()
                {
                    if let Some(since) = this.waiting_since.take() {
                        this.waited += since.elapsed();
                    }
                    this.deadline = None;
                    return Poll::Ready(Some(Err(Box::new(this.too_slow()))));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Lets a repeated warning through at most once per interval; the lines
/// held back are counted into the next one, so a descriptor shortage or a
/// flood cannot flood the log.
pub(crate) struct LogLimiter {
    every: Duration,
    state: Mutex<(Option<Instant>, u64)>,
}

impl LogLimiter {
    pub(crate) fn new(every: Duration) -> Self {
        Self {
            every,
            state: Mutex::new((None, 0)),
        }
    }

    /// `Some(held back since the last line)` when a line may be logged now.
    pub(crate) fn check(&self) -> Option<u64> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        match s.0 {
            Some(last) if now.duration_since(last) < self.every => {
                s.1 += 1;
                None
            }
            _ => {
                s.0 = Some(now);
                Some(std::mem::take(&mut s.1))
            }
        }
    }
}

/// The tail of a rate-limited line: how many like it were held back.
pub(crate) fn folded(n: u64, what: &str) -> String {
    if n == 0 {
        String::new()
    } else {
        format!(" ({n} more {what} since the last report)")
    }
}

/// Connections past the cap answered at once; the rest are closed without
/// an answer.
pub(crate) const REFUSING_AT_ONCE: usize = 64;

/// How long a refused connection is kept to let the 503 reach the client.
const REFUSE_LINGER: Duration = Duration::from_millis(500);

/// Writes the canned 503 without waiting on the client, then reads (and
/// drops) what the client sent for a moment before closing, so the close
/// does not reset the connection under the 503.
pub(crate) async fn refuse(
    mut stream: tokio::net::TcpStream,
    _slot: tokio::sync::OwnedSemaphorePermit,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    if stream.try_write(OVER_CAPACITY_RESPONSE).is_err() {
        return;
    }
    let _ = stream.shutdown().await;
    let mut sink = [0u8; 1024];
    let _ = tokio::time::timeout(REFUSE_LINGER, async {
        while let Ok(n) = stream.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_warnings_are_folded_within_the_interval() {
        let log = LogLimiter::new(Duration::from_secs(3600));
        assert_eq!(log.check(), Some(0));
        for _ in 0..1000 {
            assert!(log.check().is_none());
        }
        assert_eq!(
            folded(1000, "accept failures"),
            " (1000 more accept failures since the last report)"
        );
    }

    #[test]
    fn the_canned_503_declares_its_true_length() {
        let text = std::str::from_utf8(OVER_CAPACITY_RESPONSE).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("content-length: {}", body.len())));
    }
}
