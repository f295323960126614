//! WebSocketPair and `new Response(null, { status: 101, webSocket })`.

mod common;

use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const WORKER: &str = r#"
const closes = [];
export default {
  fetch(req) {
    if (req.url.endsWith("/closes")) return Response.json(closes);
    if (req.headers.get("upgrade") !== "websocket") {
      if (req.url.endsWith("/wrong")) {
        const [client, server] = Object.values(new WebSocketPair());
        server.accept();
        return new Response(null, { status: 101, webSocket: client });
      }
      return new Response("expected a websocket", { status: 426 });
    }
    const pair = new WebSocketPair();
    const [client, server] = Object.values(pair);
    server.accept();
    server.send("welcome");
    server.addEventListener("message", (e) => {
      if (e.data === "close") { server.close(1000, "bye"); return; }
      if (typeof e.data === "string") server.send("echo:" + e.data);
      else server.send(new Uint8Array(e.data).reverse());
    });
    server.addEventListener("close", (e) => closes.push([e.code, e.reason, server.readyState]));
    return new Response(null, { status: 101, webSocket: client });
  },
};
"#;

async fn handshake(addr: std::net::SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(
        b"GET /chat HTTP/1.1\r\nhost: x\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\
          sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n",
    )
    .await
    .unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        s.read_exact(&mut b).await.unwrap();
        head.push(b[0]);
    }
    let head = String::from_utf8(head).unwrap().to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    // RFC 6455's worked example of the accept key.
    assert!(
        head.contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
        "{head}"
    );
    s
}

async fn send_frame(s: &mut TcpStream, opcode: u8, payload: &[u8]) {
    let mask = [1u8, 2, 3, 4];
    let mut f = vec![0x80 | opcode];
    assert!(payload.len() < 126);
    f.push(0x80 | payload.len() as u8);
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    s.write_all(&f).await.unwrap();
}

async fn read_frame(s: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut h = [0u8; 2];
    tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut h))
        .await
        .expect("frame in time")
        .unwrap();
    assert_eq!(h[1] & 0x80, 0, "server frames are unmasked");
    let len = match h[1] & 0x7f {
        126 => {
            let mut b = [0u8; 2];
            s.read_exact(&mut b).await.unwrap();
            u16::from_be_bytes(b) as usize
        }
        n => n as usize,
    };
    let mut p = vec![0u8; len];
    s.read_exact(&mut p).await.unwrap();
    (h[0] & 0x0f, p)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_text_and_binary_then_close_from_the_worker() {
    let srv = start(&[("index.js", WORKER)]).await;
    let mut s = handshake(srv.addr).await;
    assert_eq!(read_frame(&mut s).await, (1, b"welcome".to_vec()));
    send_frame(&mut s, 1, b"hi").await;
    assert_eq!(read_frame(&mut s).await, (1, b"echo:hi".to_vec()));
    send_frame(&mut s, 2, &[1, 2, 3]).await;
    assert_eq!(read_frame(&mut s).await, (2, vec![3, 2, 1]));
    send_frame(&mut s, 9, b"p").await;
    assert_eq!(read_frame(&mut s).await, (10, b"p".to_vec()));
    send_frame(&mut s, 1, b"close").await;
    let (op, payload) = read_frame(&mut s).await;
    assert_eq!(op, 8);
    assert_eq!(&payload[..2], &1000u16.to_be_bytes());
    assert_eq!(&payload[2..], b"bye");
    // The client's answering close reaches the worker as its close event.
    assert_eq!(get(srv.addr, "/closes").await.body, "[]");
    send_frame(&mut s, 8, &1000u16.to_be_bytes()).await;
    let mut closes = String::new();
    for _ in 0..100 {
        closes = get(srv.addr, "/closes").await.body;
        if closes != "[]" {
            break;
        }
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(closes, r#"[[1000,"",3]]"#);
    // The server keeps serving plain requests.
    assert_eq!(get(srv.addr, "/").await.status, 426);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_close_reaches_the_worker_and_is_answered() {
    let srv = start(&[("index.js", WORKER)]).await;
    let mut s = handshake(srv.addr).await;
    assert_eq!(read_frame(&mut s).await.0, 1);
    let mut payload = 4000u16.to_be_bytes().to_vec();
    payload.extend_from_slice(b"done");
    send_frame(&mut s, 8, &payload).await;
    let (op, _) = read_frame(&mut s).await;
    assert_eq!(op, 8);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_response_to_a_plain_request_is_an_error() {
    let srv = start(&[("index.js", WORKER)]).await;
    let r = get(srv.addr, "/wrong").await;
    assert_eq!(r.status, 500);
    assert!(
        r.body
            .contains("did not contain the header \"Upgrade: websocket\""),
        "{}",
        r.body
    );
    srv.stop().await;
}
