//! Shared by the integration tests: starts `hearth serve|dev` as a child
//! process and talks HTTP/1.1 to it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

pub struct Server {
    pub child: Child,
    pub addr: String,
    /// Every stderr line so far.
    pub log: Arc<Mutex<Vec<String>>>,
}

/// The `--internal-token` every test server gets; [`try_http`] sends it on
/// requests to the internal endpoints, as an operator's tooling would.
pub const INTERNAL_TOKEN: &str = "test-internal-token";

fn is_internal(path: &str) -> bool {
    path.starts_with("/__hearth/") || path.starts_with("/cdn-cgi/handler/scheduled")
}

impl Server {
    pub fn start(verb: &str, config: &Path, data_dir: &Path) -> Server {
        Server::launch(verb, config, data_dir, &[], Duration::from_secs(60))
    }

    /// Spawns `hearth <verb> <config> --listen 127.0.0.1:0`, with extra
    /// environment, and waits up to `wait` for the bound address.
    pub fn launch(
        verb: &str,
        config: &Path,
        data_dir: &Path,
        env: &[(&str, &str)],
        wait: Duration,
    ) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hearth"));
        cmd.arg(verb)
            .arg(config)
            .args(["--data-dir"])
            .arg(data_dir)
            .envs(env.iter().copied());
        Server::spawn(cmd, wait)
    }

    /// Spawns `hearth <verb> <config> --test-clock --listen 127.0.0.1:0`:
    /// the server's clock moves only forward, by [`Server::advance_clock`]
    /// and [`Server::set_clock`] (plus real time).
    pub fn with_test_clock(verb: &str, config: &Path, data_dir: &Path) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hearth"));
        cmd.arg(verb)
            .arg(config)
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--test-clock");
        Server::spawn(cmd, Duration::from_secs(60))
    }

    /// The test clock's time, ms since the epoch.
    pub fn clock_ms(&self) -> u64 {
        let r = self.get("/__hearth/clock");
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()["now_ms"].as_u64().unwrap()
    }

    /// Moves the test clock `ms` forward; returns its new time.
    pub fn advance_clock(&self, ms: u64) -> u64 {
        self.move_clock(&format!("{{\"advance_ms\": {ms}}}"))
    }

    /// Moves the test clock forward to `at_ms`; returns its new time.
    pub fn set_clock(&self, at_ms: u64) -> u64 {
        self.move_clock(&format!("{{\"set_ms\": {at_ms}}}"))
    }

    fn move_clock(&self, body: &str) -> u64 {
        let r = self.request("POST", "/__hearth/clock", &[], body.as_bytes());
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()["now_ms"].as_u64().unwrap()
    }

    /// Spawns `hearth <verb> <args...> --listen 127.0.0.1:0` in `cwd`,
    /// with no data dir given, and waits up to `wait` for the bound address.
    pub fn launch_in(cwd: &Path, verb: &str, args: &[&str], wait: Duration) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hearth"));
        cmd.arg(verb)
            .args(args)
            .current_dir(cwd)
            .env_remove("HEARTH_DATA_DIR");
        Server::spawn(cmd, wait)
    }

    /// Spawns `cmd` with `--listen 127.0.0.1:0` and waits up to `wait`
    /// for the bound address.
    pub fn spawn(cmd: Command, wait: Duration) -> Server {
        Server::spawn_listening(cmd, "127.0.0.1:0", wait)
    }

    /// Spawns `cmd` with `--listen <listen>` (an address known in advance,
    /// e.g. for a worker whose config names its own URL) and waits up to
    /// `wait` for the bound address.
    pub fn spawn_listening(mut cmd: Command, listen: &str, wait: Duration) -> Server {
        let mut child = cmd
            .args(["--listen", listen])
            .env("HEARTH_LOG", "info")
            .env("HEARTH_INTERNAL_TOKEN", INTERNAL_TOKEN)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The start-up line names the bound address; keep draining stderr
        // afterwards so the server never blocks on a full pipe.
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let log = Arc::new(Mutex::new(Vec::new()));
        let lines = log.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line.clone());
                if let Some(rest) = line.split(" on http://").nth(1)
                    && let Some(t) = tx.take()
                {
                    let addr = rest.split_whitespace().next().unwrap_or("").to_string();
                    let _ = t.send(addr);
                }
            }
        });
        let addr = match rx.recv_timeout(wait) {
            Ok(addr) => addr,
            Err(_) => panic!(
                "server did not report its address; stderr:\n{}",
                log.lock().unwrap().join("\n")
            ),
        };
        Server { child, addr, log }
    }

    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Reply {
        http(&self.addr, method, path, headers, body)
    }

    pub fn get(&self, path: &str) -> Reply {
        self.request("GET", path, &[], b"")
    }

    /// SIGKILL, and reap the process.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn terminate(mut self) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success());
        let status = self.child.wait().unwrap();
        assert!(status.success(), "server exited with {status}");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// One request per connection, `Connection: close`; panics on any I/O or
/// framing failure.
pub fn http(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    try_http(addr, method, path, headers, body, Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

/// Like [`http`], but reports failures (connect, timeout, bad framing) as
/// errors, for callers that record them instead of failing at once.
pub fn try_http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    read_timeout: Duration,
) -> Result<Reply, String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(read_timeout))
        .map_err(|e| e.to_string())?;
    // A caller-given Host replaces the default one.
    let host = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("host"))
        .map(|(_, v)| *v)
        .unwrap_or("example.test");
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (n, v) in headers
        .iter()
        .filter(|(n, _)| !n.eq_ignore_ascii_case("host"))
    {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    let authorized = headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("authorization"));
    if is_internal(path) && !authorized {
        head.push_str(&format!("Authorization: Bearer {INTERNAL_TOKEN}\r\n"));
    }
    head.push_str("\r\n");
    stream
        .write_all(head.as_bytes())
        .and_then(|_| stream.write_all(body))
        .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).map_err(|e| e.to_string())?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no header end")?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or("no status")?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers.iter().any(|(n, v)| {
        n.eq_ignore_ascii_case("transfer-encoding") && v.to_ascii_lowercase().contains("chunked")
    });
    if chunked {
        body = dechunk(&body).ok_or("bad chunked body")?;
    }
    Ok(Reply {
        status,
        headers,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size =
            usize::from_str_radix(std::str::from_utf8(&data[..line_end]).ok()?.trim(), 16).ok()?;
        data = data.get(line_end + 2..)?;
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

/// A request a test double received: path, lower-cased headers, body.
pub struct Incoming {
    pub path: String,
    pub headers: std::collections::HashMap<String, String>,
    pub body: Vec<u8>,
}

/// Reads one HTTP/1.1 request (head and a `Content-Length` body) from a
/// connection a test double accepted; None when the client went away.
pub fn read_request(stream: &TcpStream) -> Option<Incoming> {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let path = line.split(' ').nth(1).unwrap_or("").to_string();
    let mut headers = std::collections::HashMap::new();
    loop {
        let mut l = String::new();
        if reader.read_line(&mut l).is_err() || l == "\r\n" || l.is_empty() {
            break;
        }
        if let Some((n, v)) = l.split_once(':') {
            headers.insert(n.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    Some(Incoming {
        path,
        headers,
        body,
    })
}

/// Opens a WebSocket to `path` (with `extra` header lines, each ending in
/// CRLF) and reads the 101 answer; panics on anything else.
pub fn ws_connect(addr: &str, path: &str, extra: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: example.test\r\n{extra}Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    s
}

/// The next text message from the server, skipping control frames; None
/// on close or a read error.
pub fn ws_text(s: &mut TcpStream) -> Option<String> {
    loop {
        let mut h = [0u8; 2];
        s.read_exact(&mut h).ok()?;
        let mut len = (h[1] & 0x7f) as usize;
        if len == 126 {
            let mut b = [0u8; 2];
            s.read_exact(&mut b).ok()?;
            len = u16::from_be_bytes(b) as usize;
        } else if len == 127 {
            let mut b = [0u8; 8];
            s.read_exact(&mut b).ok()?;
            len = u64::from_be_bytes(b) as usize;
        }
        let mut payload = vec![0; len];
        s.read_exact(&mut payload).ok()?;
        match h[0] & 0x0f {
            1 => return Some(String::from_utf8_lossy(&payload).into_owned()),
            8 => return None,
            _ => continue,
        }
    }
}

/// Sends one text message as a client does (masked, FIN set).
pub fn ws_send_text(s: &mut TcpStream, text: &str) {
    let payload = text.as_bytes();
    let mut frame = vec![0x81u8];
    match payload.len() {
        n if n < 126 => frame.push(0x80 | n as u8),
        n if n <= 0xffff => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    let mask = [0x12u8, 0x34, 0x56, 0x78];
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    s.write_all(&frame).unwrap();
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether npm is installed. When it is not, `what` is skipped with a
/// notice, or the test fails when `HEARTH_REQUIRE_CORPUS` is set (CI).
pub fn npm_or_skip(what: &str) -> bool {
    let found = Command::new("npm")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("HEARTH_REQUIRE_CORPUS").is_none(),
            "{what}: npm is not installed and HEARTH_REQUIRE_CORPUS is set"
        );
        eprintln!("SKIPPED {what}: npm is not installed");
    }
    found
}

/// Runs `npm <args>` in `dir` (quietly, offline when the cache allows);
/// it must succeed.
pub fn npm(dir: &Path, args: &[&str]) {
    let mut all = args.to_vec();
    if args.first() == Some(&"ci") {
        all.extend([
            "--no-audit",
            "--no-fund",
            "--prefer-offline",
            "--loglevel=error",
        ]);
    }
    let out = Command::new("npm")
        .args(&all)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "npm {args:?} in {} failed: {}\n{}",
        dir.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Copies a directory tree (no symlinks), skipping `node_modules` and `.hearth`.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "node_modules" || name == ".hearth" {
            continue;
        }
        let target = to.join(&name);
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

pub fn example(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(name)
}

/// A request an HTTP double answered: path, lower-cased headers, body.
#[derive(Clone, Debug)]
pub struct DoubleRequest {
    pub path: String,
    pub headers: std::collections::HashMap<String, String>,
    pub body: String,
}

/// What a double answers for a request: status and JSON body.
pub type DoubleHandler = dyn Fn(&DoubleRequest) -> (u16, String) + Send + Sync;

/// A small HTTP/1.1 server on 127.0.0.1 standing in for an external
/// service: one thread per connection (so a handler may block), one
/// request per connection, every request kept.
pub struct Double {
    pub port: u16,
    seen: Arc<Mutex<Vec<DoubleRequest>>>,
}

impl Double {
    pub fn start(handler: Arc<DoubleHandler>) -> Double {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let (log, handler) = (log.clone(), handler.clone());
                std::thread::spawn(move || {
                    let Some(Incoming {
                        path,
                        headers,
                        body,
                    }) = read_request(&stream)
                    else {
                        return;
                    };
                    let req = DoubleRequest {
                        path,
                        headers,
                        body: String::from_utf8_lossy(&body).into_owned(),
                    };
                    log.lock().unwrap().push(req.clone());
                    let (status, reply) = handler(&req);
                    let mut stream = stream;
                    let _ = stream.write_all(
                        format!(
                            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
                            reply.len()
                        )
                        .as_bytes(),
                    );
                });
            }
        });
        Double { port, seen }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Requests received so far whose path starts with `prefix`.
    pub fn requests(&self, prefix: &str) -> Vec<DoubleRequest> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path.starts_with(prefix))
            .cloned()
            .collect()
    }
}
