//! node:http / node:https clients over fetch, and node:http servers served
//! through cloudflare:node's httpServerHandler.

use std::path::Path;

use hearth_runtime::{IsolatePool, WorkerConfig, WorkerRequest};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn project(main: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("index.js"), main).unwrap();
    dir
}

fn config(root: &Path) -> WorkerConfig {
    let mut config = WorkerConfig::new(root.join("index.js"));
    config.module_root = Some(root.to_path_buf());
    config.isolates = 1;
    config.compatibility_date = Some("2025-09-01".to_string());
    config.compatibility_flags = vec!["nodejs_compat".to_string()];
    config
}

/// The whole body, read from the stream when the worker streamed it.
async fn body_of(r: &mut hearth_runtime::WorkerResponse) -> String {
    let mut out = r.body.to_vec();
    if let Some(rx) = r.stream.as_mut() {
        while let Some(chunk) = rx.recv().await {
            out.extend_from_slice(&chunk.unwrap());
        }
    }
    String::from_utf8(out).unwrap()
}

fn stop(pool: IsolatePool) {
    pool.shutdown();
    pool.join();
}

/// An HTTP/1.1 origin answering each request with its method, path and
/// body in the body, two Set-Cookie headers and a 201.
async fn origin() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let Ok(n) = conn.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    let Some(end) = text.find("\r\n\r\n") else {
                        continue;
                    };
                    let head = &text[..end];
                    let len = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if buf.len() < end + 4 + len {
                        continue;
                    }
                    let body = &text[end + 4..end + 4 + len];
                    let first = head.lines().next().unwrap_or("");
                    let auth = head
                        .lines()
                        .any(|l| l.eq_ignore_ascii_case("authorization: basic dxnlcjpwdw=="));
                    let reply = format!("{first} | {body} | auth={auth}");
                    let resp = format!(
                        "HTTP/1.1 201 Created\r\ncontent-type: text/plain\r\nset-cookie: a=1\r\nset-cookie: b=2\r\nx-custom: yes\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{reply}",
                        reply.len()
                    );
                    let _ = conn.write_all(resp.as_bytes()).await;
                    return;
                }
            });
        }
    });
    port
}

const CLIENT: &str = r#"
import http from 'node:http';
import https from 'node:https';

function call(fn) {
  return new Promise((resolve, reject) => {
    const req = fn((res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode, message: res.statusMessage, cookies: res.headers['set-cookie'], custom: res.headers['x-custom'], body }));
    });
    req.on('error', reject);
  });
}

export default {
  async fetch(req) {
    const port = new URL(req.url).searchParams.get('port');
    const get = await call((cb) => http.get('http://127.0.0.1:' + port + '/path?q=1', cb));
    const post = await call((cb) => {
      const r = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/submit', auth: 'user:pw', headers: { 'content-type': 'text/plain' } }, cb);
      r.write('part one, ');
      r.end('part two');
      return r;
    });
    const refused = await new Promise((resolve) => {
      const r = http.get('http://127.0.0.1:1/', () => resolve('answered'));
      r.on('error', (e) => resolve('error'));
    });
    let badProtocol;
    try {
      http.request('ftp://example.com/');
    } catch (e) {
      badProtocol = e.code;
    }
    return new Response(JSON.stringify({ get, post, refused, badProtocol, https: typeof https.request, codes: http.STATUS_CODES[418] }));
  },
};
"#;

#[tokio::test]
async fn http_client_requests_go_out_through_fetch() {
    let port = origin().await;
    let dir = project(CLIENT);
    let pool = IsolatePool::start(config(dir.path())).unwrap();
    let r = pool
        .dispatch(WorkerRequest::new(
            "t",
            "GET",
            format!("http://example.com/?port={port}"),
        ))
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        v["get"],
        serde_json::json!({"status": 201, "message": "Created", "cookies": ["a=1", "b=2"], "custom": "yes", "body": "GET /path?q=1 HTTP/1.1 |  | auth=false"})
    );
    assert_eq!(
        v["post"]["body"],
        "POST /submit HTTP/1.1 | part one, part two | auth=true"
    );
    assert_eq!(v["refused"], "error");
    assert_eq!(v["badProtocol"], "ERR_INVALID_PROTOCOL");
    assert_eq!(v["https"], "function");
    assert_eq!(v["codes"], "I'm a Teapot");
    stop(pool);
}

const SERVER: &str = r#"
import { createServer } from 'node:http';
import { httpServerHandler } from 'cloudflare:node';

const server = createServer(async (req, res) => {
  if (req.url === '/stream') {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('one ');
    await new Promise((r) => setTimeout(r, 1));
    res.end('two');
    return;
  }
  if (req.url === '/none') {
    res.statusCode = 204;
    res.end();
    return;
  }
  let body = '';
  for await (const chunk of req) body += chunk;
  res.setHeader('x-method', req.method);
  res.setHeader('set-cookie', ['a=1', 'b=2']);
  res.statusCode = 201;
  res.statusMessage = 'Made';
  res.end(JSON.stringify({ url: req.url, host: req.headers.host, type: req.headers['content-type'], body }));
});
server.listen(8080);

export default httpServerHandler({ port: 8080 });
"#;

#[tokio::test]
async fn http_server_handler_serves_a_node_http_server() {
    let dir = project(SERVER);
    let pool = IsolatePool::start(config(dir.path())).unwrap();
    let mut req = WorkerRequest::new("t", "POST", "http://example.com/items?x=1");
    req.headers
        .push(("content-type".into(), "application/json".into()));
    req.body = bytes::Bytes::from_static(b"{\"n\":1}");
    let mut r = pool.dispatch(req).await.unwrap();
    assert_eq!(r.status, 201);
    let find = |name: &str| {
        r.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(find("x-method"), ["POST"]);
    assert_eq!(find("set-cookie"), ["a=1", "b=2"]);
    assert_eq!(
        body_of(&mut r).await,
        r#"{"url":"/items?x=1","host":"example.com","type":"application/json","body":"{\"n\":1}"}"#
    );
    let mut r = pool
        .dispatch(WorkerRequest::new("t", "GET", "http://example.com/stream"))
        .await
        .unwrap();
    assert_eq!(body_of(&mut r).await, "one two");
    let r = pool
        .dispatch(WorkerRequest::new("t", "GET", "http://example.com/none"))
        .await
        .unwrap();
    assert_eq!((r.status, r.body.len()), (204, 0));
    stop(pool);
}
