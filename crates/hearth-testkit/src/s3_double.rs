//! The S3 double: moto's server (PyPI `moto[server]`), started once per
//! test binary on a free loopback port, in the virtualenv `.ci/run`
//! installs under the target directory (or `HEARTH_TEST_S3_DOUBLE`, the
//! path of its `moto_server`). It stops when the test binary exits.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use hearth_r2::{S3Config, S3Store};

pub const BUCKET: &str = "hearth-test";

/// `moto_server` of the double, if installed.
fn moto_server() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("HEARTH_TEST_S3_DOUBLE") {
        return Some(PathBuf::from(p));
    }
    // target/<profile>/deps/<test> → target/s3-double-venv
    let exe = std::env::current_exe().ok()?;
    let target = exe.parent()?.parent()?.parent()?;
    let p = target.join("s3-double-venv/bin/moto_server");
    p.exists().then_some(p)
}

/// The endpoint of the running double (`http://127.0.0.1:PORT`), started on
/// first use; `None` (with the reason printed) when it cannot be started
/// and `HEARTH_TEST_REQUIRE_S3_BACKEND` is not `1`.
pub fn endpoint() -> Option<String> {
    static ENDPOINT: OnceLock<Result<String, String>> = OnceLock::new();
    match ENDPOINT.get_or_init(start) {
        Ok(e) => Some(e.clone()),
        Err(reason) => {
            if std::env::var("HEARTH_TEST_REQUIRE_S3_BACKEND").as_deref() == Ok("1") {
                panic!("the S3 double is required (HEARTH_TEST_REQUIRE_S3_BACKEND=1): {reason}");
            }
            eprintln!(
                "skipped: {reason}; run .ci/run's install of moto[server] or set HEARTH_TEST_REQUIRE_S3_BACKEND=1 to fail instead"
            );
            None
        }
    }
}

fn start() -> Result<String, String> {
    let server = moto_server().ok_or("the S3 double (moto_server) is not installed")?;
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("no free port: {e}"))?
        .port();
    // The shell outlives neither this process nor the server: it stops
    // the server once this process is gone.
    let script = format!(
        "{server} -H 127.0.0.1 -p {port} >/dev/null 2>&1 & s=$!; \
         while kill -0 {parent} 2>/dev/null; do sleep 1; done; kill $s",
        server = server.display(),
        parent = std::process::id(),
    );
    Command::new("sh")
        .args(["-c", &script])
        // R2's part-size rules are checked by Hearth itself; the tests use
        // parts of a few bytes, which moto would otherwise refuse.
        .env("S3_UPLOAD_PART_MIN_SIZE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", server.display()))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(status) = http_put(port, &format!("/{BUCKET}")) {
            if status == 200 {
                return Ok(format!("http://127.0.0.1:{port}"));
            }
            return Err(format!("creating the test bucket answered {status}"));
        }
        if Instant::now() > deadline {
            return Err(format!("{} did not answer within 60 s", server.display()));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A bare `PUT path` (moto does not check signatures); the status code.
fn http_put(port: u16, path: &str) -> std::io::Result<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "PUT {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head)?;
    let text = String::from_utf8_lossy(&head);
    text[9..12]
        .parse()
        .map_err(|_| std::io::Error::other(format!("not an HTTP answer: {text:?}")))
}

pub fn config(prefix: &str) -> Option<S3Config> {
    Some(S3Config {
        endpoint: Some(endpoint()?),
        bucket: BUCKET.into(),
        region: "us-east-1".into(),
        access_key_id: "testing".into(),
        secret_access_key: "testing".into(),
        prefix: prefix.into(),
    })
}

/// One client for the whole test binary.
pub fn store() -> Option<Arc<S3Store>> {
    static STORE: OnceLock<Option<Arc<S3Store>>> = OnceLock::new();
    STORE
        .get_or_init(|| Some(S3Store::connect(&config("contract/")?).unwrap()))
        .clone()
}

/// An R2 bucket name no other test uses.
pub fn fresh_name() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "t{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}
