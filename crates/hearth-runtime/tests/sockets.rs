//! `cloudflare:sockets` `connect()` and `node:net` over it, against a TCP
//! server in the test: data both ways, half-close, errors for refused and
//! forbidden connections, and the per-request bounds.

use std::path::Path;

use hearth_runtime::{IsolatePool, WorkerConfig, WorkerRequest};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn project(main: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("index.js"), main).unwrap();
    dir
}

fn config(root: &Path, flags: &[&str]) -> WorkerConfig {
    let mut config = WorkerConfig::new(root.join("index.js"));
    config.module_root = Some(root.to_path_buf());
    config.isolates = 1;
    config.compatibility_date = Some("2025-09-01".to_string());
    config.compatibility_flags = flags.iter().map(|f| f.to_string()).collect();
    config
}

async fn get(pool: &IsolatePool, path: &str) -> String {
    let r = pool
        .dispatch(WorkerRequest::new(
            "test",
            "GET",
            format!("http://example.com{path}"),
        ))
        .await
        .unwrap();
    String::from_utf8(r.body.to_vec()).unwrap()
}

/// A server answering each connection's bytes upper-cased, closing its
/// side when the client closes its own.
async fn upper_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                loop {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            let up = buf[..n].to_ascii_uppercase();
                            if conn.write_all(&up).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    port
}

/// A port nothing listens on.
async fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

const WORKER: &str = r#"
import { connect } from 'cloudflare:sockets';
import net from 'node:net';

async function readN(reader, n) {
  let text = '';
  const dec = new TextDecoder();
  while (text.length < n) {
    const { value, done } = await reader.read();
    if (done) break;
    text += dec.decode(value, { stream: true });
  }
  return text;
}

export default {
  async fetch(req) {
    const url = new URL(req.url);
    const port = Number(url.searchParams.get('port'));
    try {
      if (url.pathname === '/echo') {
        const socket = connect({ hostname: '127.0.0.1', port });
        const info = await socket.opened;
        const writer = socket.writable.getWriter();
        await writer.write(new TextEncoder().encode('hello '));
        await writer.write('sockets');
        const reader = socket.readable.getReader();
        const text = await readN(reader, 13);
        await socket.close();
        return new Response(JSON.stringify([text, info.remoteAddress === '127.0.0.1:' + port, typeof info.localAddress]));
      }
      if (url.pathname === '/string-address') {
        const socket = connect('127.0.0.1:' + port);
        const writer = socket.writable.getWriter();
        await writer.write(new TextEncoder().encode('abc'));
        await writer.close();
        const text = await readN(socket.readable.getReader(), 3);
        await socket.closed;
        return new Response(text);
      }
      if (url.pathname === '/refused') {
        const socket = connect({ hostname: '127.0.0.1', port });
        const err = await socket.opened.then(() => 'opened', (e) => e.message);
        const closed = await socket.closed.then(() => 'closed', (e) => e.message);
        return new Response(JSON.stringify([err.includes('connect to 127.0.0.1:' + port + ' failed'), err === closed]));
      }
      if (url.pathname === '/port25') {
        try {
          connect({ hostname: '127.0.0.1', port: 25 });
          return new Response('connected');
        } catch (e) {
          return new Response(e.message);
        }
      }
      if (url.pathname === '/too-many') {
        const open = [];
        try {
          for (let i = 0; i < 7; i++) open.push(connect({ hostname: '127.0.0.1', port }));
          return new Response('all opened');
        } catch (e) {
          return new Response(open.length + ' ' + e.message);
        } finally {
          for (const s of open) s.close();
        }
      }
      if (url.pathname === '/net') {
        const text = await new Promise((resolve, reject) => {
          const sock = net.connect({ host: '127.0.0.1', port }, () => sock.write('via node:net'));
          let got = '';
          sock.setEncoding('utf8');
          sock.on('data', (d) => {
            got += d;
            if (got.length >= 12) sock.end();
          });
          sock.on('close', () => resolve([got, sock.remotePort === port, sock.destroyed]));
          sock.on('error', reject);
        });
        return new Response(JSON.stringify(text));
      }
      if (url.pathname === '/net-refused') {
        const err = await new Promise((resolve) => {
          const sock = net.createConnection(port, '127.0.0.1');
          sock.on('error', (e) => resolve(e.message.includes('failed')));
        });
        return new Response(String(err));
      }
    } catch (e) {
      return new Response('threw: ' + e.stack, { status: 500 });
    }
    return new Response('no route', { status: 404 });
  },
};
"#;

#[tokio::test]
async fn connect_sends_and_receives_over_tcp() {
    let port = upper_server().await;
    let dir = project(WORKER);
    let pool = IsolatePool::start(config(dir.path(), &["nodejs_compat"])).unwrap();
    assert_eq!(
        get(&pool, &format!("/echo?port={port}")).await,
        r#"["HELLO SOCKETS",true,"string"]"#
    );
    // Closing the writable half-closes; the server then closes, which
    // ends the readable and resolves `closed`.
    assert_eq!(
        get(&pool, &format!("/string-address?port={port}")).await,
        "ABC"
    );
    assert_eq!(
        get(&pool, &format!("/net?port={port}")).await,
        r#"["VIA NODE:NET",true,true]"#
    );
    pool.shutdown();
    pool.join();
}

#[tokio::test]
async fn refused_forbidden_and_too_many_connections_fail_clearly() {
    let port = upper_server().await;
    let closed = closed_port().await;
    let dir = project(WORKER);
    let pool = IsolatePool::start(config(dir.path(), &["nodejs_compat"])).unwrap();
    assert_eq!(
        get(&pool, &format!("/refused?port={closed}")).await,
        "[true,true]"
    );
    assert_eq!(
        get(&pool, "/port25").await,
        "Connections to port 25 are prohibited"
    );
    assert_eq!(
        get(&pool, &format!("/too-many?port={port}")).await,
        "6 Too many open sockets: a request may have 6 open at once"
    );
    assert_eq!(
        get(&pool, &format!("/net-refused?port={closed}")).await,
        "true"
    );
    pool.shutdown();
    pool.join();
}

/// A self-signed certificate for 127.0.0.1: (certificate DER, key DER).
fn self_signed() -> (Vec<u8>, Vec<u8>) {
    let key = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    (key.cert.der().to_vec(), key.signing_key.serialize_der())
}

/// A server that upper-cases over TLS; with `starttls` it first answers a
/// plain `STARTTLS\n` with `OK\n`, then does the handshake on the same
/// connection (as Postgres does after its SSLRequest).
async fn tls_server(cert: Vec<u8>, key: Vec<u8>, starttls: bool) -> u16 {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![rustls::pki_types::CertificateDer::from(cert)],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.into()),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if starttls {
                    let mut line = [0u8; 9];
                    if conn.read_exact(&mut line).await.is_err() || &line != b"STARTTLS\n" {
                        return;
                    }
                    if conn.write_all(b"OK\n").await.is_err() {
                        return;
                    }
                }
                let Ok(mut tls) = acceptor.accept(conn).await else {
                    return;
                };
                let mut buf = [0u8; 1024];
                while let Ok(n) = tls.read(&mut buf).await {
                    if n == 0 || tls.write_all(&buf[..n].to_ascii_uppercase()).await.is_err() {
                        return;
                    }
                    let _ = tls.flush().await;
                }
            });
        }
    });
    port
}

const TLS_WORKER: &str = r#"
import { connect } from 'cloudflare:sockets';

async function roundTrip(socket, text, want = text.length) {
  const writer = socket.writable.getWriter();
  await writer.write(new TextEncoder().encode(text));
  writer.releaseLock();
  const reader = socket.readable.getReader();
  let got = '';
  while (got.length < want) {
    const { value, done } = await reader.read();
    if (done) break;
    got += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  return got;
}

export default {
  async fetch(req) {
    const url = new URL(req.url);
    const port = Number(url.searchParams.get('port'));
    try {
      if (url.pathname === '/tls') {
        const socket = connect({ hostname: '127.0.0.1', port }, { secureTransport: 'on' });
        await socket.opened;
        const got = await roundTrip(socket, 'secret');
        await socket.close();
        return new Response(got);
      }
      if (url.pathname === '/starttls') {
        const plain = connect({ hostname: '127.0.0.1', port }, { secureTransport: 'starttls' });
        const ok = await roundTrip(plain, 'STARTTLS\n', 3);
        const secure = plain.startTls();
        await secure.opened;
        const got = await roundTrip(secure, 'upgraded');
        await secure.close();
        return new Response(JSON.stringify([ok, got, secure.upgraded]));
      }
      if (url.pathname === '/untrusted') {
        const socket = connect({ hostname: '127.0.0.1', port }, { secureTransport: 'on' });
        return new Response(await socket.opened.then(() => 'opened', (e) => e.message));
      }
    } catch (e) {
      return new Response('threw: ' + e.stack, { status: 500 });
    }
    return new Response('no route', { status: 404 });
  },
};
"#;

#[tokio::test]
async fn tls_and_starttls_with_a_trusted_certificate() {
    let (cert, key) = self_signed();
    let tls_port = tls_server(cert.clone(), key.clone(), false).await;
    let starttls_port = tls_server(cert.clone(), key, true).await;
    let dir = project(TLS_WORKER);
    let mut trusted = config(dir.path(), &[]);
    trusted.extra_root_certs.push(cert);
    let pool = IsolatePool::start(trusted).unwrap();
    assert_eq!(get(&pool, &format!("/tls?port={tls_port}")).await, "SECRET");
    assert_eq!(
        get(&pool, &format!("/starttls?port={starttls_port}")).await,
        r#"["OK\n","UPGRADED",true]"#
    );
    pool.shutdown();
    pool.join();
    // Without the certificate among the roots the handshake fails.
    let pool = IsolatePool::start(config(dir.path(), &[])).unwrap();
    let body = get(&pool, &format!("/untrusted?port={tls_port}")).await;
    assert!(
        body.starts_with("TLS handshake with 127.0.0.1 failed"),
        "{body}"
    );
    pool.shutdown();
    pool.join();
}

const NODE_TLS_WORKER: &str = r#"
import tls from 'node:tls';

export default {
  async fetch(req) {
    const port = Number(new URL(req.url).searchParams.get('port'));
    const events = [];
    const result = await new Promise((resolve) => {
      const socket = tls.connect({ host: '127.0.0.1', port, servername: '127.0.0.1' }, () => {
        events.push('secureConnect:' + socket.authorized + ':' + socket.encrypted);
        socket.write('over node:tls');
      });
      let got = '';
      socket.on('data', (d) => {
        got += d.toString();
        if (got.length >= 13) {
          resolve({ got });
          socket.destroy();
        }
      });
      socket.on('error', (e) => resolve({ error: e.message }));
    });
    let upgrade;
    try {
      tls.connect({ socket: {} });
    } catch (e) {
      upgrade = e.code;
    }
    let server;
    try {
      tls.createServer();
    } catch (e) {
      server = e.code;
    }
    return new Response(JSON.stringify({ ...result, events, upgrade, server }));
  },
};
"#;

#[tokio::test]
async fn node_tls_connects_over_verified_tls() {
    let (cert, key) = self_signed();
    let tls_port = tls_server(cert.clone(), key, false).await;
    let dir = project(NODE_TLS_WORKER);
    let mut trusted = config(dir.path(), &["nodejs_compat"]);
    trusted.extra_root_certs.push(cert);
    let pool = IsolatePool::start(trusted).unwrap();
    assert_eq!(
        get(&pool, &format!("/?port={tls_port}")).await,
        r#"{"got":"OVER NODE:TLS","events":["secureConnect:true:true"],"upgrade":"ERR_METHOD_NOT_IMPLEMENTED","server":"ERR_METHOD_NOT_IMPLEMENTED"}"#
    );
    pool.shutdown();
    pool.join();
    // An untrusted certificate fails the connection with an 'error'.
    let pool = IsolatePool::start(config(dir.path(), &["nodejs_compat"])).unwrap();
    let body = get(&pool, &format!("/?port={tls_port}")).await;
    assert!(
        body.contains(r#""error":"TLS handshake with 127.0.0.1 failed"#)
            && body.contains(r#""events":[]"#),
        "{body}"
    );
    pool.shutdown();
    pool.join();
}
