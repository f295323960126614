//! Request bodies streamed through a worker: a 1 GiB upload into R2 with the
//! server's memory bounded, a body passed on to `fetch()` with backpressure,
//! the body limit enforced while streaming, a client that goes away
//! mid-upload, and bodies left unread.
//!
//! Memory is the server process's, read from /proc/<pid>/status over real
//! sockets; the uploads are generated as they are sent, never held whole by
//! the client either.

mod web_support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use web_support::Server;

/// The server's RSS must stay under this while 1 GiB passes through it.
const MAX_RSS_KIB: u64 = 64 * 1024;

const WORKER: &str = r#"
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const key = url.searchParams.get("key") ?? "upload";
    switch (url.pathname) {
      case "/put":
        try {
          const o = await env.BUCKET.put(key, request.body);
          return Response.json({ size: o.size, etag: o.etag });
        } catch (e) {
          // Recorded where the test can look, since the client may be gone.
          await env.BUCKET.put("error/" + key, String(e.message));
          return new Response("put failed: " + e.message, { status: 500 });
        }
      case "/put-if": {
        const o = await env.BUCKET.put(key, request.body, { onlyIf: { etagMatches: "0123456789abcdef0123456789abcdef" } });
        return new Response(o === null ? "precondition failed" : "stored");
      }
      case "/get": {
        const o = await env.BUCKET.get(key);
        if (o === null) return new Response("no such object", { status: 404 });
        return new Response(o.body, { headers: { "content-length": String(o.size) } });
      }
      case "/text": {
        const o = await env.BUCKET.get(key);
        return new Response(o === null ? "absent" : await o.text());
      }
      case "/proxy": {
        const r = await fetch(url.searchParams.get("to"), {
          method: "PUT",
          body: request.body,
          headers: { "content-length": request.headers.get("content-length") },
        });
        return new Response(await r.text(), { status: r.status });
      }
      case "/ignore":
        return new Response("ignored");
      default:
        return new Response("not found", { status: 404 });
    }
  },
};
"#;

/// A project with one R2 bucket, served with `extra` arguments.
fn serve(dir: &Path, extra: &[&str]) -> Server {
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(dir.join("src/index.js"), WORKER).unwrap();
    std::fs::write(
        dir.join("wrangler.toml"),
        "name = \"uploads\"\nmain = \"src/index.js\"\ncompatibility_date = \"2024-09-23\"\n\
         [limits]\ncpu_ms = 300000\n\
         [[r2_buckets]]\nbinding = \"BUCKET\"\nbucket_name = \"uploads\"\n",
    )
    .unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_hearth"));
    cmd.arg("serve")
        .arg(dir.join("wrangler.toml"))
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args(extra);
    Server::spawn(cmd, Duration::from_secs(60))
}

/// (VmRSS, VmHWM) of a process, in KiB.
fn rss_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// Deterministic bytes, generated a block at a time (xorshift64 from the
/// block's offset), so neither side needs the whole body.
fn fill(offset: u64, buf: &mut [u8]) {
    let mut x = offset.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for word in buf.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let bytes = x.to_le_bytes();
        word.copy_from_slice(&bytes[..word.len()]);
    }
}

/// A position-dependent checksum: every 8-byte word weighted by its index,
/// so a changed, lost or moved byte changes it.
#[derive(Default)]
struct Sum {
    at: u64,
    value: u64,
    tail: Vec<u8>,
}

impl Sum {
    fn update(&mut self, mut b: &[u8]) {
        if !self.tail.is_empty() {
            let need = 8 - self.tail.len();
            let take = need.min(b.len());
            self.tail.extend_from_slice(&b[..take]);
            b = &b[take..];
            if self.tail.len() < 8 {
                return;
            }
            let word = std::mem::take(&mut self.tail);
            self.word(&word);
        }
        let mut words = b.chunks_exact(8);
        for w in &mut words {
            self.word(w);
        }
        self.tail.extend_from_slice(words.remainder());
    }

    fn word(&mut self, w: &[u8]) {
        let mut a = [0u8; 8];
        a[..w.len()].copy_from_slice(w);
        self.at += 1;
        self.value = self
            .value
            .rotate_left(5)
            .wrapping_add(u64::from_le_bytes(a).wrapping_mul(self.at | 1));
    }

    fn finish(mut self) -> u64 {
        if !self.tail.is_empty() {
            let w = std::mem::take(&mut self.tail);
            self.word(&w);
        }
        self.value ^ self.at
    }
}

/// Sends `len` generated bytes as a PUT with a declared length, sampling
/// the server's RSS as it goes; returns the response, the checksum of what
/// was sent, the highest RSS seen and the seconds the upload took.
fn upload(addr: &str, path: &str, len: u64, pid: u32) -> (String, u64, u64, f64) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    write!(
        s,
        "PUT {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: {len}\r\n\r\n"
    )
    .unwrap();
    let mut sum = Sum::default();
    let mut buf = vec![0u8; 1024 * 1024];
    let mut sent = 0u64;
    let mut peak = 0u64;
    let started = Instant::now();
    while sent < len {
        let n = buf.len().min((len - sent) as usize);
        fill(sent, &mut buf[..n]);
        sum.update(&buf[..n]);
        s.write_all(&buf[..n]).unwrap();
        sent += n as u64;
        if let Some((rss, _)) = rss_kib(pid) {
            peak = peak.max(rss);
        }
    }
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    (
        response,
        sum.finish(),
        peak,
        started.elapsed().as_secs_f64(),
    )
}

/// The body of a `Connection: close` response, checksummed as it is read;
/// (status line, byte count, checksum).
fn download(addr: &str, path: &str) -> (String, u64, u64) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut b).unwrap(), 1, "the response head ended early");
        head.push(b[0]);
    }
    let status = String::from_utf8_lossy(&head)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    let mut sum = Sum::default();
    let mut total = 0u64;
    let mut buf = vec![0u8; 1024 * 1024];
    loop {
        let n = s.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        sum.update(&buf[..n]);
        total += n as u64;
    }
    (status, total, sum.finish())
}

fn body_of(response: &str) -> &str {
    response.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

/// `GET /text?key=...` until it stops answering "absent", for results a
/// worker records after its client went away.
fn wait_for_text(server: &Server, key: &str, within: Duration) -> Option<String> {
    let end = Instant::now() + within;
    while Instant::now() < end {
        let text = server.get(&format!("/text?key={key}")).text();
        if text != "absent" {
            return Some(text);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

#[test]
fn a_1_gib_upload_streams_through_a_worker_into_r2_in_under_64_mib() {
    let size: u64 = std::env::var("HEARTH_STREAM_UPLOAD_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024 * 1024 * 1024);
    let dir = tempfile::tempdir().unwrap();
    let limit = (size + 1).to_string();
    let server = serve(dir.path(), &["--max-request-body", &limit]);
    let pid = server.child.id();
    if rss_kib(pid).is_none() {
        eprintln!("skipping: /proc/<pid>/status is not readable here (not Linux?)");
        return;
    }
    let (response, sent_sum, peak_during, secs) =
        upload(&server.addr, "/put?key=big.bin", size, pid);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let stored: serde_json::Value = serde_json::from_str(body_of(&response)).unwrap();
    assert_eq!(stored["size"].as_u64(), Some(size), "{response}");
    let (_, hwm_after_upload) = rss_kib(pid).unwrap();

    let (status, got, got_sum) = download(&server.addr, "/get?key=big.bin");
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    assert_eq!(got, size);
    assert_eq!(
        got_sum, sent_sum,
        "the stored object differs from the upload"
    );
    let (_, hwm) = rss_kib(pid).unwrap();
    eprintln!(
        "{} MiB upload through a worker into R2: {:.1} s ({:.0} MB/s); server RSS peak {:.1} MiB \
         during the upload (VmHWM {:.1} MiB after it, {:.1} MiB after reading it back)",
        size >> 20,
        secs,
        size as f64 / secs / 1e6,
        peak_during as f64 / 1024.0,
        hwm_after_upload as f64 / 1024.0,
        hwm as f64 / 1024.0
    );
    assert!(
        hwm < MAX_RSS_KIB,
        "server peak RSS {hwm} KiB; the upload was held in memory"
    );
    // Written once, to the bucket's blobs, not kept elsewhere in the data dir.
    let blobs: u64 = walk_sizes(&dir.path().join("data"));
    assert!(
        blobs >= size && blobs < size + 64 * 1024 * 1024,
        "data dir holds {blobs} bytes"
    );
}

/// Total size of the files under `dir`.
fn walk_sizes(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).unwrap().map_while(Result::ok) {
        let meta = entry.metadata().unwrap();
        if meta.is_dir() {
            total += walk_sizes(&entry.path());
        } else {
            total += meta.len();
        }
    }
    total
}

#[test]
fn a_body_of_unknown_length_streams_and_the_limit_holds_while_it_does() {
    let dir = tempfile::tempdir().unwrap();
    let limit: u64 = 4 * 1024 * 1024;
    let server = serve(dir.path(), &["--max-request-body", &limit.to_string()]);
    let chunked = |path: &str, len: u64| -> (String, u64) {
        let mut s = TcpStream::connect(&server.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        write!(
            s,
            "PUT {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\ntransfer-encoding: chunked\r\n\r\n"
        )
        .unwrap();
        let mut writer = s.try_clone().unwrap();
        let sender = std::thread::spawn(move || {
            let mut sum = Sum::default();
            let mut buf = vec![0u8; 256 * 1024];
            let mut sent = 0u64;
            while sent < len {
                let n = buf.len().min((len - sent) as usize);
                fill(sent, &mut buf[..n]);
                sum.update(&buf[..n]);
                // The server may answer and close before the whole body.
                if write!(writer, "{n:x}\r\n").is_err()
                    || writer.write_all(&buf[..n]).is_err()
                    || writer.write_all(b"\r\n").is_err()
                {
                    return sum.finish();
                }
                sent += n as u64;
            }
            let _ = writer.write_all(b"0\r\n\r\n");
            sum.finish()
        });
        let mut response = Vec::new();
        let _ = s.read_to_end(&mut response);
        let sum = sender.join().unwrap();
        (String::from_utf8_lossy(&response).into_owned(), sum)
    };

    // Over the buffer, under the limit: streamed, stored whole.
    let len = 3 * 1024 * 1024 + 5;
    let (response, sent_sum) = chunked("/put?key=three", len);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let (_, got, got_sum) = download(&server.addr, "/get?key=three");
    assert_eq!((got, got_sum), (len, sent_sum));

    // A failed condition ends the streamed put early; the object stays.
    let (response, _) = chunked("/put-if?key=three", 2 * len);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert_eq!(body_of(&response), "precondition failed");
    let (_, got, got_sum) = download(&server.addr, "/get?key=three");
    assert_eq!((got, got_sum), (len, sent_sum));

    // Past the limit: the worker's read fails naming it, nothing is stored.
    let (response, _) = chunked("/put?key=over", 8 * 1024 * 1024);
    assert!(response.starts_with("HTTP/1.1 500"), "{response}");
    let expected = format!("exceeds {limit} bytes (limits.max_request_body_bytes)");
    assert!(body_of(&response).contains(&expected), "{response}");
    assert_eq!(server.get("/text?key=over").text(), "absent");

    // Declared past it: refused before the worker runs.
    let mut s = TcpStream::connect(&server.addr).unwrap();
    write!(
        s,
        "PUT /put?key=declared HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
        limit + 1
    )
    .unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    assert!(
        response.contains("limits.max_request_body_bytes"),
        "{response}"
    );
    assert_eq!(server.get("/text?key=declared").text(), "absent");
}

#[test]
fn a_client_leaving_mid_upload_fails_the_workers_read_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), &[]);
    server
        .request("PUT", "/put?key=kept", &[], b"the old value")
        .text();
    let mut s = TcpStream::connect(&server.addr).unwrap();
    write!(
        s,
        "PUT /put?key=kept HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n\r\n",
        16 * 1024 * 1024
    )
    .unwrap();
    let mut buf = vec![0u8; 1024 * 1024];
    for i in 0..3u64 {
        fill(i << 20, &mut buf);
        s.write_all(&buf).unwrap();
    }
    s.shutdown(std::net::Shutdown::Both).unwrap();
    drop(s);
    let error = wait_for_text(&server, "error/kept", Duration::from_secs(20))
        .expect("the worker's read of the body never failed");
    assert!(error.contains("request body"), "{error}");
    // The half-sent value never replaced the old one.
    assert_eq!(server.get("/text?key=kept").text(), "the old value");
    assert_eq!(server.get("/ignore").text(), "ignored");
}

#[test]
fn bodies_left_unread_are_dropped_with_their_requests() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), &[]);
    let pid = server.child.id();
    if rss_kib(pid).is_none() {
        eprintln!("skipping: /proc/<pid>/status is not readable here (not Linux?)");
        return;
    }
    assert_eq!(server.get("/ignore").text(), "ignored");
    let (before, _) = rss_kib(pid).unwrap();
    let mut buf = vec![7u8; 1024 * 1024];
    // 24 requests each sending 4 MiB of a declared 64 MiB that the worker
    // never reads: kept, they would hold 96 MiB.
    for round in 0..24u64 {
        let mut s = TcpStream::connect(&server.addr).unwrap();
        s.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        write!(
            s,
            "PUT /ignore HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n\r\n",
            64 * 1024 * 1024
        )
        .unwrap();
        for i in 0..4u64 {
            fill((round << 32) + (i << 20), &mut buf);
            // The server stops reading once its few chunks are queued.
            if s.write_all(&buf).is_err() {
                break;
            }
        }
        let mut head = [0u8; 12];
        s.read_exact(&mut head).unwrap();
        assert_eq!(&head, b"HTTP/1.1 200", "round {round}");
    }
    assert_eq!(server.get("/ignore").text(), "ignored");
    let (after, hwm) = rss_kib(pid).unwrap();
    eprintln!(
        "24 unread 64 MiB bodies: RSS {:.1} MiB -> {:.1} MiB, peak {:.1} MiB",
        before as f64 / 1024.0,
        after as f64 / 1024.0,
        hwm as f64 / 1024.0
    );
    assert!(hwm < MAX_RSS_KIB, "server peak RSS {hwm} KiB");
    assert!(
        after < before + 16 * 1024,
        "RSS grew from {before} KiB to {after} KiB"
    );
}

/// An upstream for one PUT: waits for `go` before reading the body, then
/// answers with the byte count and checksum of what it read.
fn counting_upstream(go: std::sync::mpsc::Receiver<()>) -> (String, std::thread::JoinHandle<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let thread = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if s.read(&mut b).unwrap() == 0 {
                return;
            }
            head.push(b[0]);
        }
        let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
        let len: u64 = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .expect("the passed-on request declares its length");
        let _ = go.recv();
        let mut sum = Sum::default();
        let mut left = len;
        let mut buf = vec![0u8; 256 * 1024];
        while left > 0 {
            let want = buf.len().min(left as usize);
            let n = s.read(&mut buf[..want]).unwrap();
            assert!(n > 0, "the passed-on body ended {left} bytes short");
            sum.update(&buf[..n]);
            left -= n as u64;
        }
        let body = format!("{len} {}", sum.finish());
        write!(
            s,
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
    });
    (addr, thread)
}

#[test]
fn a_request_body_passed_to_fetch_streams_with_backpressure() {
    let size: u64 = 256 * 1024 * 1024;
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), &["--max-request-body", &size.to_string()]);
    let pid = server.child.id();
    let (go, wait) = std::sync::mpsc::channel();
    let (upstream, upstream_thread) = counting_upstream(wait);
    let mut s = TcpStream::connect(&server.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    write!(
        s,
        "PUT /proxy?to=http://{upstream}/sink HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: {size}\r\n\r\n"
    )
    .unwrap();
    // While the upstream reads nothing, the client's upload stalls after a
    // bounded amount: socket buffers and a few chunks per hop.
    s.set_write_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    let mut sum = Sum::default();
    let mut buf = vec![0u8; 1024 * 1024];
    let mut sent = 0u64;
    let mut pending: &[u8] = &[];
    let stalled_at = loop {
        if pending.is_empty() {
            fill(sent, &mut buf);
            sum.update(&buf);
            pending = &buf[..];
        }
        match s.write(pending) {
            Ok(n) => {
                pending = &pending[n..];
                sent += n as u64;
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                break sent;
            }
            Err(e) => panic!("upload failed: {e}"),
        }
        assert!(sent < size, "the whole body went in while nothing read it");
    };
    assert!(
        stalled_at < 48 * 1024 * 1024,
        "{stalled_at} bytes taken while the upstream read nothing"
    );
    // Now the upstream reads: the rest flows through.
    s.set_write_timeout(None).unwrap();
    go.send(()).unwrap();
    let mut buffered = pending.to_vec();
    while sent < size {
        if buffered.is_empty() {
            fill(sent, &mut buf);
            sum.update(&buf);
            buffered = buf.clone();
        }
        s.write_all(&buffered).unwrap();
        sent += buffered.len() as u64;
        buffered.clear();
    }
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    upstream_thread.join().unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert_eq!(body_of(&response), format!("{size} {}", sum.finish()));
    let (_, hwm) = rss_kib(pid).unwrap_or_default();
    eprintln!(
        "{} MiB passed through fetch(): stalled after {:.1} MiB while unread; server peak RSS {:.1} MiB",
        size >> 20,
        stalled_at as f64 / 1048576.0,
        hwm as f64 / 1024.0
    );
    assert!(hwm < MAX_RSS_KIB, "server peak RSS {hwm} KiB");
}
