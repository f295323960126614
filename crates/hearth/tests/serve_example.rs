//! `hearth serve` on the KV + D1 + R2 example, through real HTTP: every
//! route, SIGKILL of the server with acknowledged writes surviving the
//! restart, and a SIGTERM that finishes cleanly.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start(config: &Path, data_dir: &Path) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hearth"))
            .arg("serve")
            .arg(config)
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .env("HEARTH_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The start-up line names the bound address; keep draining stderr
        // afterwards so the server never blocks on a full pipe.
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split(" on http://").nth(1)
                    && let Some(t) = tx.take()
                {
                    let addr = rest.split_whitespace().next().unwrap_or("").to_string();
                    let _ = t.send(addr);
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("server did not report its address");
        Server { child, addr }
    }

    fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
        http(&self.addr, method, path, headers, body)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A minimal HTTP/1.1 client: one request per connection, `Connection: close`.
fn http(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (n, v) in headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("no header end");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    Reply {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n").unwrap();
        let size =
            usize::from_str_radix(std::str::from_utf8(&data[..line_end]).unwrap().trim(), 16)
                .unwrap();
        data = &data[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

fn example_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/bindings/wrangler.toml")
}

#[test]
fn example_worker_serves_kv_d1_and_r2() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(&example_config(), data.path());

    let r = server.request("GET", "/", &[], b"");
    assert_eq!((r.status, r.text()), (200, "Hello from Hearth\n".into()));

    // KV
    assert_eq!(
        server
            .request("PUT", "/kv/greeting", &[], b"hi there")
            .status,
        204
    );
    let r = server.request("GET", "/kv/greeting", &[], b"");
    assert_eq!((r.status, r.text()), (200, "hi there".into()));
    assert_eq!(
        server.request("GET", "/kv", &[], b"").text(),
        r#"["greeting"]"#
    );
    assert_eq!(server.request("GET", "/kv/missing", &[], b"").status, 404);

    // D1
    let r = server.request("POST", "/notes", &[], br#"{"text":"first"}"#);
    assert_eq!((r.status, r.text()), (201, r#"{"id":1}"#.into()));
    let r = server.request("POST", "/notes", &[], br#"{"text":""}"#);
    assert_eq!(r.status, 400);
    let r = server.request("GET", "/notes", &[], b"");
    assert_eq!(r.text(), r#"[{"id":1,"text":"first"}]"#);

    // R2, with the conditional GET answered from the object's etag.
    let body: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let r = server.request(
        "PUT",
        "/files/data.bin",
        &[("content-type", "application/x-test")],
        &body,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let r = server.request("GET", "/files/data.bin", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/x-test"));
    assert!(r.body == body, "R2 body differs");
    let etag = r.header("etag").unwrap().to_string();
    let r = server.request("GET", "/files/data.bin", &[("if-none-match", &etag)], b"");
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty());

    // Health names each binding with its backend.
    let health = server.request("GET", "/__hearth/health", &[], b"").text();
    for needle in [
        "\"CACHE\"",
        "\"kv_namespace\"",
        "\"DB\"",
        "\"d1\"",
        "\"FILES\"",
        "\"r2_bucket\"",
    ] {
        assert!(health.contains(needle), "{needle} missing from {health}");
    }
}

#[test]
fn acknowledged_writes_survive_sigkill_of_the_server() {
    let data = tempfile::tempdir().unwrap();
    let mut server = Server::start(&example_config(), data.path());
    for i in 0..20 {
        let key = format!("/kv/k{i}");
        assert_eq!(
            server
                .request("PUT", &key, &[], format!("v{i}").as_bytes())
                .status,
            204
        );
        let note = format!(r#"{{"text":"note {i}"}}"#);
        assert_eq!(
            server
                .request("POST", "/notes", &[], note.as_bytes())
                .status,
            201
        );
        let file = format!("/files/f{i}");
        assert_eq!(
            server
                .request("PUT", &file, &[], &vec![i as u8; 70_000])
                .status,
            201
        );
    }
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    drop(server);

    let server = Server::start(&example_config(), data.path());
    for i in 0..20 {
        let r = server.request("GET", &format!("/kv/k{i}"), &[], b"");
        assert_eq!((r.status, r.text()), (200, format!("v{i}")));
        let r = server.request("GET", &format!("/files/f{i}"), &[], b"");
        assert_eq!(r.status, 200);
        assert!(r.body == vec![i as u8; 70_000], "f{i} differs");
    }
    let notes = server.request("GET", "/notes", &[], b"").text();
    assert_eq!(notes.matches("\"text\":\"note ").count(), 20, "{notes}");
}

#[test]
fn sigterm_stops_the_server_cleanly() {
    let data = tempfile::tempdir().unwrap();
    let mut server = Server::start(&example_config(), data.path());
    assert_eq!(server.request("GET", "/", &[], b"").status, 200);
    let pid = server.child.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let status = server.child.wait().unwrap();
    assert!(status.success(), "exit after SIGTERM: {status:?}");
}

#[test]
fn missing_main_is_a_clear_start_up_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("wrangler.toml"),
        "name = \"w\"\nmain = \"src/nope.js\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .arg("serve")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("main: the file"), "{stderr}");
    assert!(stderr.contains("nope.js"), "{stderr}");
}

#[test]
fn syntax_error_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("wrangler.toml"),
        "name = \"w\"\nmain = \"index.js\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("index.js"),
        "export default {\n  fetch() {\n    return new Response(;\n  }\n};\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .arg("serve")
        .arg(dir.path())
        .args(["--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("index.js:3"), "{stderr}");
}
