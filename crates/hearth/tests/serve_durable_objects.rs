//! `hearth serve` on the Durable Objects example, through real HTTP:
//! counters, RPC, SQL, an acknowledged write surviving SIGKILL (the output
//! gate), and an alarm set before a SIGKILL firing after the restart.

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
    body: Vec<u8>,
}

impl Reply {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
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
    Reply { status, body }
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
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/durable-objects/wrangler.toml")
}

fn json(r: &Reply) -> serde_json::Value {
    assert_eq!(r.status, 200, "{}", r.text());
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.text()))
}

fn wait_for<T>(secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(std::time::Instant::now() < deadline, "not within {secs} s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn counters_rpc_and_sql_through_http() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(&example_config(), data.path());
    for _ in 0..3 {
        server.request("POST", "/counter/a/inc", &[], b"");
    }
    server.request("POST", "/counter/b/inc", &[], b"");
    let r = server.request("POST", "/counter/a/add?n=10", &[], b"");
    assert_eq!(json(&r)["value"], 13);
    assert_eq!(
        json(&server.request("GET", "/counter/a", &[], b""))["value"],
        13
    );
    assert_eq!(
        json(&server.request("GET", "/counter/b", &[], b""))["value"],
        1
    );
    let log = json(&server.request("GET", "/counter/a/log", &[], b""));
    assert_eq!(
        log,
        serde_json::json!([{"change": "+1"}, {"change": "+1"}, {"change": "+1"}, {"change": "+10"}])
    );
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    let data = tempfile::tempdir().unwrap();
    let mut server = Server::start(&example_config(), data.path());
    for i in 1..=5 {
        let r = server.request("POST", "/counter/durable/inc", &[], b"");
        assert_eq!(json(&r)["value"], i);
    }
    // SIGKILL straight after the response: the write before it is on disk.
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let server = Server::start(&example_config(), data.path());
    assert_eq!(
        json(&server.request("GET", "/counter/durable", &[], b""))["value"],
        5
    );
}

#[test]
fn an_alarm_set_before_sigkill_fires_after_restart() {
    let data = tempfile::tempdir().unwrap();
    let mut server = Server::start(&example_config(), data.path());
    let r = server.request("POST", "/counter/ring/alarm?ms=400", &[], b"");
    let at = json(&r)["scheduled"].as_f64().unwrap() as u128;
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    // Restart only once the alarm's time has passed while the server was down.
    wait_for(10, || {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis();
        (now > at).then_some(())
    });
    let server = Server::start(&example_config(), data.path());
    let t = wait_for(15, || {
        let t = json(&server.request("GET", "/counter/ring", &[], b""));
        (t["alarms"] == 1).then_some(t)
    });
    assert_eq!(t["alarms"], 1);
}

#[test]
fn script_name_naming_a_worker_not_served_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("index.js"),
        "export default { fetch() { return new Response('x') } }; export class C {}",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("wrangler.toml"),
        "name = \"w\"\nmain = \"index.js\"\n\n[[durable_objects.bindings]]\nname = \"C\"\nclass_name = \"C\"\nscript_name = \"other\"\n\n[[migrations]]\ntag = \"v1\"\nnew_sqlite_classes = [\"C\"]\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .arg("serve")
        .arg(dir.path().join("wrangler.toml"))
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("script_name = \"other\" names another worker"),
        "{err}"
    );
}
