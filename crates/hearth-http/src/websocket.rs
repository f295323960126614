//! The server side of RFC 6455 WebSockets: the handshake answer and a
//! frame codec over the upgraded connection, bridging to the worker's
//! [`WebSocketChannel`].

use base64::Engine;
use bytes::Bytes;
use hearth_runtime::{WebSocketChannel, WsMessage};
use hyper_util::rt::TokioIo;
use sha1::{Digest, Sha1};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

/// Largest message accepted from a client: Workers' WebSocket message
/// limit, 32 MiB. A bigger one closes the connection with 1009.
pub const MAX_WEBSOCKET_MESSAGE_BYTES: usize = 32 * 1024 * 1024;

/// Largest control frame payload (ping, pong, close), per RFC 6455 5.5.
pub const MAX_CONTROL_FRAME_BYTES: u64 = 125;

/// Frames (pongs, a protocol close) the connection may owe the client. A
/// client that pings without reading the pongs stops being read past it,
/// rather than pongs queueing without bound.
const CONTROL_QUEUE_FRAMES: usize = 8;

const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// `Sec-WebSocket-Accept` for a client's `Sec-WebSocket-Key`.
pub fn accept_key(key: &str) -> String {
    let mut h = Sha1::new();
    h.update(key.trim().as_bytes());
    h.update(GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(h.finalize())
}

/// Whether the request asks for a WebSocket upgrade; returns its key.
pub fn upgrade_key(headers: &http::HeaderMap) -> Option<String> {
    let has_token = |name: http::header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .map(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
                .unwrap_or(false)
        })
    };
    if !has_token(http::header::UPGRADE, "websocket")
        || !has_token(http::header::CONNECTION, "upgrade")
    {
        return None;
    }
    headers
        .get("sec-websocket-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

enum Frame {
    Message(WsMessage),
    Ping(Bytes),
    Pong,
}

#[derive(Debug)]
enum ReadError {
    Io,
    Protocol(u16, &'static str),
}

impl From<std::io::Error> for ReadError {
    fn from(_: std::io::Error) -> Self {
        ReadError::Io
    }
}

async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    partial: &mut Option<(u8, Vec<u8>)>,
) -> Result<Frame, ReadError> {
    loop {
        let mut head = [0u8; 2];
        r.read_exact(&mut head).await?;
        let fin = head[0] & 0x80 != 0;
        if head[0] & 0x70 != 0 {
            return Err(ReadError::Protocol(1002, "reserved bits set"));
        }
        let opcode = head[0] & 0x0f;
        if head[1] & 0x80 == 0 {
            return Err(ReadError::Protocol(1002, "client frames must be masked"));
        }
        let len = match head[1] & 0x7f {
            126 => {
                let mut b = [0u8; 2];
                r.read_exact(&mut b).await?;
                u16::from_be_bytes(b) as u64
            }
            127 => {
                let mut b = [0u8; 8];
                r.read_exact(&mut b).await?;
                u64::from_be_bytes(b)
            }
            n => n as u64,
        };
        if opcode & 0x8 != 0 && (len > MAX_CONTROL_FRAME_BYTES || !fin) {
            return Err(ReadError::Protocol(
                1002,
                "control frames must be unfragmented and at most 125 bytes",
            ));
        }
        let buffered = partial.as_ref().map(|(_, d)| d.len()).unwrap_or(0) as u64;
        if len + buffered > MAX_WEBSOCKET_MESSAGE_BYTES as u64 {
            return Err(ReadError::Protocol(1009, "message too big"));
        }
        let mut mask = [0u8; 4];
        r.read_exact(&mut mask).await?;
        // Grown as bytes arrive, so a declared length costs nothing until
        // the client has sent that much.
        let mut data = Vec::new();
        let got = (&mut *r).take(len).read_to_end(&mut data).await?;
        if (got as u64) < len {
            return Err(ReadError::Io);
        }
        for (i, b) in data.iter_mut().enumerate() {
            *b ^= mask[i % 4];
        }
        match opcode {
            0x8 => {
                let (code, reason) = if data.len() >= 2 {
                    (
                        u16::from_be_bytes([data[0], data[1]]),
                        String::from_utf8_lossy(&data[2..]).into_owned(),
                    )
                } else {
                    (1005, String::new())
                };
                return Ok(Frame::Message(WsMessage::Close { code, reason }));
            }
            0x9 => return Ok(Frame::Ping(Bytes::from(data))),
            0xA => return Ok(Frame::Pong),
            0x0 => {
                let Some((_, buf)) = partial.as_mut() else {
                    return Err(ReadError::Protocol(1002, "continuation without a message"));
                };
                buf.extend_from_slice(&data);
            }
            0x1 | 0x2 => {
                if partial.is_some() {
                    return Err(ReadError::Protocol(
                        1002,
                        "new message inside a fragmented one",
                    ));
                }
                *partial = Some((opcode, data));
            }
            _ => return Err(ReadError::Protocol(1002, "unknown opcode")),
        }
        if fin {
            let Some((op, data)) = partial.take() else {
                continue;
            };
            return Ok(Frame::Message(if op == 0x1 {
                match String::from_utf8(data) {
                    Ok(t) => WsMessage::Text(t),
                    Err(_) => {
                        return Err(ReadError::Protocol(1007, "invalid UTF-8 in a text message"));
                    }
                }
            } else {
                WsMessage::Binary(Bytes::from(data))
            }));
        }
    }
}

fn encode_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 10);
    out.push(0x80 | opcode);
    match payload.len() {
        n if n < 126 => out.push(n as u8),
        n if n <= u16::MAX as usize => {
            out.push(126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
    out
}

fn close_frame(code: u16, reason: &str) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(&reason.as_bytes()[..reason.len().min(123)]);
    encode_frame(0x8, &p)
}

/// How long a worker's close waits for the client's answering close frame.
const CLOSE_ANSWER_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Carries messages between the upgraded connection and the worker until
/// either side closes.
pub async fn bridge(upgraded: hyper::upgrade::Upgraded, channel: WebSocketChannel) {
    let io = TokioIo::new(upgraded);
    let (mut rd, mut wr) = tokio::io::split(io);
    let WebSocketChannel {
        mut outgoing,
        incoming,
    } = channel;
    let overflow = outgoing.overflow();
    let (pong_tx, mut pong_rx) = tokio::sync::mpsc::channel::<Vec<u8>>(CONTROL_QUEUE_FRAMES);
    let reader_sink = incoming.clone();
    let mut reader = tokio::spawn(async move {
        let mut partial = None;
        loop {
            match read_frame(&mut rd, &mut partial).await {
                Ok(Frame::Message(m)) => {
                    let close = matches!(m, WsMessage::Close { .. });
                    let delivered = if close {
                        reader_sink.send(m)
                    } else {
                        // Waits while the worker has too much unread.
                        reader_sink.deliver(m).await
                    };
                    if !delivered || close {
                        return;
                    }
                }
                Ok(Frame::Ping(p)) => {
                    if pong_tx.send(encode_frame(0xA, &p)).await.is_err() {
                        return;
                    }
                }
                Ok(Frame::Pong) => {}
                Err(ReadError::Io) => {
                    reader_sink.send(WsMessage::Close {
                        code: 1006,
                        reason: String::new(),
                    });
                    return;
                }
                Err(ReadError::Protocol(code, why)) => {
                    let _ = pong_tx.send(close_frame(code, why)).await;
                    reader_sink.send(WsMessage::Close {
                        code,
                        reason: why.to_string(),
                    });
                    return;
                }
            }
        }
    });
    loop {
        tokio::select! {
            // The worker sent more than the client takes: drop the
            // connection (a close frame cannot get past the backlog) and
            // free the queue.
            _ = overflow.wait() => {
                tracing::warn!(target: "hearth::http", "WebSocket closed with 1009: the client did not read what the worker sent");
                break;
            }
            msg = outgoing.recv() => {
                let frame = match msg {
                    Some(WsMessage::Text(t)) => encode_frame(0x1, t.as_bytes()),
                    Some(WsMessage::Binary(b)) => encode_frame(0x2, &b),
                    Some(WsMessage::Close { code, reason }) => {
                        // The reader hands the client's answering close to
                        // the worker; a client that never answers counts as
                        // an abnormal closure.
                        let sent = tokio::time::timeout(
                            CLOSE_ANSWER_WAIT,
                            wr.write_all(&close_frame(code, &reason)),
                        )
                        .await;
                        if matches!(sent, Ok(Ok(())))
                            && tokio::time::timeout(CLOSE_ANSWER_WAIT, &mut reader)
                                .await
                                .is_ok()
                        {
                            break;
                        }
                        reader.abort();
                        incoming.send(WsMessage::Close {
                            code: 1006,
                            reason: String::new(),
                        });
                        break;
                    }
                    None => {
                        let _ = wr.write_all(&close_frame(1011, "worker went away")).await;
                        break;
                    }
                };
                let written = tokio::select! {
                    r = wr.write_all(&frame) => r.is_ok(),
                    _ = overflow.wait() => false,
                };
                if !written {
                    break;
                }
            }
            Some(raw) = pong_rx.recv() => {
                let is_close = raw.first() == Some(&0x88);
                if wr.write_all(&raw).await.is_err() || is_close {
                    break;
                }
            }
            _ = &mut reader => {
                // The client closed or vanished: answer its close, then stop.
                while let Ok(raw) = pong_rx.try_recv() {
                    let _ = wr.write_all(&raw).await;
                }
                let _ = wr.write_all(&close_frame(1000, "")).await;
                break;
            }
        }
    }
    let _ = tokio::time::timeout(CLOSE_ANSWER_WAIT, wr.shutdown()).await;
    reader.abort();
}
