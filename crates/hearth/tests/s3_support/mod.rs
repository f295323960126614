//! Shared by the S3 endpoint tests: a served worker with `--s3-listen`, its
//! access keys, a Python with boto3 and awscli, and a small SigV4 client.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hearth_s3::sigv4::{self, CanonicalRequest, Credential, SigningKey};

use crate::web_support;
pub use crate::web_support::Server;

pub fn hearth() -> &'static str {
    env!("CARGO_BIN_EXE_hearth")
}

/// A copy of examples/bindings (a worker with the R2 bucket `files`) in a
/// temporary directory, with its data directory beside it.
pub struct Site {
    pub dir: tempfile::TempDir,
}

impl Site {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        web_support::copy_tree(&web_support::example("bindings"), &dir.path().join("app"));
        Self { dir }
    }

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("app/wrangler.toml")
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// `hearth r2 <args> --config .. --data-dir ..`, which must succeed.
    pub fn r2(&self, args: &[&str]) -> String {
        let out = Command::new(hearth())
            .arg("r2")
            .args(args)
            .arg("--config")
            .arg(self.config())
            .arg("--data-dir")
            .arg(self.data())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "hearth r2 {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// A new read-write key for every bucket: (id, secret).
    pub fn key(&self) -> (String, String) {
        let out = self.r2(&["credentials", "create", "--name", "test"]);
        let mut lines = out.lines();
        let id = lines.next().unwrap().split(':').nth(1).unwrap().trim();
        let secret = lines.next().unwrap().split(':').nth(1).unwrap().trim();
        (id.to_string(), secret.to_string())
    }

    /// `hearth serve` with the S3 endpoint on an ephemeral port.
    pub fn serve(&self) -> (Server, String) {
        let config = self.config();
        let data = self.data();
        let server = Server::launch_in(
            self.dir.path(),
            "serve",
            &[
                config.to_str().unwrap(),
                "--data-dir",
                data.to_str().unwrap(),
                "--s3-listen",
                "127.0.0.1:0",
                "--s3-any-bucket",
            ],
            Duration::from_secs(60),
        );
        let s3 = server
            .log
            .lock()
            .unwrap()
            .iter()
            .find_map(|l| {
                l.split("S3 endpoint listening at http://")
                    .nth(1)
                    .map(|r| r.split_whitespace().next().unwrap_or("").to_string())
            })
            .expect("the S3 endpoint's address in the log");
        (server, s3)
    }
}

/// A Python that has boto3 and awscli: `HEARTH_TEST_PYTHON` (as `.ci/run`
/// sets it), else `python3` if it has them, else a virtualenv made under
/// the target directory with `pip install boto3 awscli`. `None` (the test
/// then skips, saying why) only when there is no python3 or no pip; with
/// `HEARTH_TEST_REQUIRE_S3_CLIENTS=1` (CI) that is a failure instead.
pub fn python() -> Option<PathBuf> {
    let required = std::env::var("HEARTH_TEST_REQUIRE_S3_CLIENTS").is_ok_and(|v| v == "1");
    let has_clients = |py: &Path| {
        Command::new(py)
            .args(["-c", "import boto3, awscli"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if let Ok(p) = std::env::var("HEARTH_TEST_PYTHON") {
        let p = PathBuf::from(p);
        assert!(
            has_clients(&p),
            "HEARTH_TEST_PYTHON={} cannot import boto3 and awscli",
            p.display()
        );
        return Some(p);
    }
    let system = PathBuf::from("python3");
    if has_clients(&system) {
        return Some(system);
    }
    let pip_ok = Command::new("python3")
        .args(["-m", "pip", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    let venv_ok = Command::new("python3")
        .args(["-m", "venv", "--help"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !pip_ok || !venv_ok {
        let why =
            "python3 with pip and venv is not available, so boto3 and awscli cannot be installed";
        assert!(!required, "{why} (HEARTH_TEST_REQUIRE_S3_CLIENTS=1)");
        eprintln!("skipping: {why}");
        return None;
    }
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("s3-clients-venv");
    let py = venv.join("bin/python");
    // Several tests may get here at once: one installs under a lock file.
    let lock =
        std::fs::File::create(Path::new(env!("CARGO_TARGET_TMPDIR")).join("s3-clients.lock"))
            .unwrap();
    lock.lock().unwrap();
    if !has_clients(&py) {
        let made = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .unwrap();
        assert!(made.success(), "python3 -m venv {}", venv.display());
        let installed = Command::new(&py)
            .args(["-m", "pip", "install", "--quiet", "boto3", "awscli"])
            .status()
            .unwrap();
        assert!(
            installed.success(),
            "pip install boto3 awscli failed (is PyPI reachable?)"
        );
    }
    lock.unlock().unwrap();
    Some(py)
}

/// The `aws` command of that Python's environment, with a key.
pub fn aws(python: &Path, endpoint: &str, key: &(String, String), home: &Path) -> Command {
    let mut c = Command::new(python);
    c.args([
        "-m",
        "awscli",
        "--endpoint-url",
        &format!("http://{endpoint}"),
    ])
    .env("AWS_ACCESS_KEY_ID", &key.0)
    .env("AWS_SECRET_ACCESS_KEY", &key.1)
    .env("AWS_DEFAULT_REGION", "auto")
    .env("AWS_CONFIG_FILE", home.join("aws-config"))
    .env("AWS_SHARED_CREDENTIALS_FILE", home.join("aws-credentials"))
    .env("HOME", home);
    c
}

/// A minimal SigV4 client over one TCP connection per request, streaming
/// request bodies from a reader and response bodies into a writer.
pub struct Signer {
    pub endpoint: String,
    pub key: (String, String),
}

pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl Signer {
    fn now_ms() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
    }

    /// Opens a connection and sends the signed head of a request whose body
    /// (`len` bytes, unsigned payload) the caller then writes.
    pub fn start(&self, method: &str, path: &str, query: &str, len: u64) -> TcpStream {
        let amz_date = hearth_s3::time::amz_date(Self::now_ms());
        let cred = Credential {
            access_key_id: self.key.0.clone(),
            date: amz_date[..8].to_string(),
            region: "auto".into(),
            service: "s3".into(),
        };
        let signed: Vec<String> = ["host", "x-amz-content-sha256", "x-amz-date"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let headers = [
            ("host", self.endpoint.as_str()),
            ("x-amz-content-sha256", sigv4::UNSIGNED_PAYLOAD),
            ("x-amz-date", amz_date.as_str()),
        ];
        let ch = sigv4::canonical_headers(&signed, |n| {
            headers
                .iter()
                .filter(|(k, _)| *k == n)
                .map(|(_, v)| *v)
                .collect()
        })
        .unwrap();
        let q = sigv4::parse_query(query).unwrap();
        let cr = CanonicalRequest {
            method,
            raw_path: path,
            canonical_query: sigv4::canonical_query(&q),
            canonical_headers: ch,
            signed_headers: &signed,
            payload_hash: sigv4::UNSIGNED_PAYLOAD,
        };
        let sts = sigv4::string_to_sign(&amz_date, &cred.scope(), &cr.render());
        let sig = SigningKey::derive(&self.key.1, &cred).sign(&sts);
        let mut s = TcpStream::connect(&self.endpoint).unwrap();
        let target = if query.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{query}")
        };
        write!(
            s,
            "{method} {target} HTTP/1.1\r\nhost: {}\r\nx-amz-content-sha256: {}\r\nx-amz-date: {amz_date}\r\nauthorization: AWS4-HMAC-SHA256 Credential={}/{},SignedHeaders=host;x-amz-content-sha256;x-amz-date,Signature={sig}\r\ncontent-length: {len}\r\nconnection: close\r\n\r\n",
            self.endpoint,
            sigv4::UNSIGNED_PAYLOAD,
            self.key.0,
            cred.scope()
        )
        .unwrap();
        s
    }

    /// Reads the response; the body goes to `sink` (returned empty then).
    pub fn finish(mut s: TcpStream, sink: Option<&mut dyn Write>) -> Answer {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            let n = s.read(&mut byte).unwrap();
            assert!(n > 0, "connection closed before the response head");
            head.push(byte[0]);
        }
        let head = String::from_utf8(head).unwrap();
        let mut lines = head.lines();
        let status: u16 = lines
            .next()
            .unwrap()
            .split_whitespace()
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let mut body = Vec::new();
        match sink {
            Some(w) => {
                std::io::copy(&mut s, w).unwrap();
            }
            None => {
                s.read_to_end(&mut body).unwrap();
            }
        }
        Answer {
            status,
            headers,
            body,
        }
    }

    pub fn send(&self, method: &str, path: &str, query: &str, body: &[u8]) -> Answer {
        let mut s = self.start(method, path, query, body.len() as u64);
        s.write_all(body).unwrap();
        Self::finish(s, None)
    }
}

/// `<Tag>value</Tag>` out of a response.
pub fn xml_value(xml: &str, tag: &str) -> Option<String> {
    let start = xml.find(&format!("<{tag}>"))? + tag.len() + 2;
    let end = xml[start..].find(&format!("</{tag}>"))? + start;
    Some(xml[start..end].to_string())
}

/// The complete body for these (part number, etag) pairs.
pub fn complete_body(parts: &[(u32, String)]) -> String {
    let mut s = String::from("<CompleteMultipartUpload>");
    for (n, e) in parts {
        s.push_str(&format!(
            "<Part><PartNumber>{n}</PartNumber><ETag>{e}</ETag></Part>"
        ));
    }
    s.push_str("</CompleteMultipartUpload>");
    s
}

/// The `rclone` on the PATH, or `None` (the test then skips, saying why);
/// with `HEARTH_TEST_REQUIRE_RCLONE=1` (CI, whose `.ci/run` installs it
/// from Debian's packages) a missing rclone is a failure instead.
pub fn rclone() -> Option<PathBuf> {
    let found = Command::new("rclone")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        return Some(PathBuf::from("rclone"));
    }
    let required = std::env::var("HEARTH_TEST_REQUIRE_RCLONE").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "rclone is not installed (HEARTH_TEST_REQUIRE_RCLONE=1)"
    );
    eprintln!("skipping: rclone is not installed (apt-get install rclone)");
    None
}

/// `rclone` with a remote named `hearth` (R2's provider profile) at the
/// endpoint, configured through the environment only.
pub fn rclone_cmd(rclone: &Path, endpoint: &str, key: &(String, String), home: &Path) -> Command {
    let mut c = Command::new(rclone);
    c.args(["--config", "/dev/null"])
        .env("RCLONE_CONFIG_HEARTH_TYPE", "s3")
        .env("RCLONE_CONFIG_HEARTH_PROVIDER", "Cloudflare")
        .env("RCLONE_CONFIG_HEARTH_ACCESS_KEY_ID", &key.0)
        .env("RCLONE_CONFIG_HEARTH_SECRET_ACCESS_KEY", &key.1)
        .env(
            "RCLONE_CONFIG_HEARTH_ENDPOINT",
            format!("http://{endpoint}"),
        )
        .env("RCLONE_CONFIG_HEARTH_REGION", "auto")
        // rclone's S3 backend refuses to start when AWS_CA_BUNDLE is set
        // (it cannot apply it to its own transport); the endpoint is plain
        // http, so no bundle is needed.
        .env_remove("AWS_CA_BUNDLE")
        .env("HOME", home);
    c
}
