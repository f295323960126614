//! Response framing comes from the real body, never from a worker's
//! headers: a worker's `Content-Length`/`Transfer-Encoding` and the
//! hop-by-hop headers are not sent as given (as workerd does), so a worker
//! cannot desynchronise a keep-alive connection or leave a client waiting
//! for bytes that never come.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};

/// Headers that describe one connection rather than the message; the
/// server sets them itself.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
];

/// Whether the front drops a worker's response header `name` (lowercase).
pub(crate) fn is_framing_header(name: &str) -> bool {
    HOP_BY_HOP.contains(&name)
}

/// A worker's declared `Content-Length`, when it is one valid number.
pub(crate) fn declared_length(headers: &[(String, String)]) -> Option<u64> {
    let mut values = headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v.trim());
    let first = values.next()?;
    if values.any(|v| v != first) {
        return None;
    }
    if first.is_empty() || !first.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    first.parse().ok()
}

/// Why a streamed body broke the length it declared.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LengthMismatch {
    #[error(
        "the response body ended after {sent} of the {declared} bytes its Content-Length declared"
    )]
    Short { sent: u64, declared: u64 },
    #[error("the response body is longer than the {declared} bytes its Content-Length declared")]
    Long { declared: u64 },
}

/// A streamed body sent with the length the worker declared. A body that
/// ends short or runs long fails, which aborts the connection: the client
/// sees a truncated message, never a hang or a next response made of body
/// bytes.
pub(crate) struct ExactLength<B> {
    inner: B,
    declared: u64,
    sent: u64,
}

impl<B> ExactLength<B> {
    pub(crate) fn new(inner: B, declared: u64) -> Self {
        Self {
            inner,
            declared,
            sent: 0,
        }
    }
}

impl<B> Body for ExactLength<B>
where
    B: Body<Data = Bytes, Error = std::io::Error> + Unpin,
{
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.sent += data.len() as u64;
                    if this.sent > this.declared {
                        let e = LengthMismatch::Long {
                            declared: this.declared,
                        };
                        tracing::warn!(target: "hearth::http", "{e}; the connection is closed");
                        return Poll::Ready(Some(Err(std::io::Error::other(e))));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(None) if this.sent < this.declared => {
                let e = LengthMismatch::Short {
                    sent: this.sent,
                    declared: this.declared,
                };
                tracing::warn!(target: "hearth::http", "{e}; the connection is closed");
                Poll::Ready(Some(Err(std::io::Error::other(e))))
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.sent == self.declared && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.declared - self.sent.min(self.declared))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(v: &[&str]) -> Vec<(String, String)> {
        v.iter()
            .map(|v| ("Content-Length".to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn only_one_clean_number_is_a_declared_length() {
        assert_eq!(declared_length(&h(&["12"])), Some(12));
        assert_eq!(declared_length(&h(&["12", "12"])), Some(12));
        assert_eq!(declared_length(&h(&["12", "13"])), None);
        assert_eq!(declared_length(&h(&["-1"])), None);
        assert_eq!(declared_length(&h(&["+5"])), None);
        assert_eq!(declared_length(&h(&["1,1"])), None);
        assert_eq!(declared_length(&h(&[""])), None);
        assert_eq!(declared_length(&[]), None);
    }
}
