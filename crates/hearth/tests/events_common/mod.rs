//! A `hearth serve` child process on the queues example, for the queue and
//! cron tests. Needs `mod web_support;` next to it in the test crate.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub use crate::web_support::Reply;
use crate::web_support::Server as Child;

pub fn example_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/queues/wrangler.toml")
}

pub struct Server(Child);

impl Server {
    pub fn start(data_dir: &Path) -> Server {
        Server(Child::start("serve", &example_config(), data_dir))
    }

    pub fn request(&self, method: &str, path: &str, body: &[u8]) -> Reply {
        self.0.request(method, path, &[], body)
    }

    pub fn post_json(&self, path: &str, body: &serde_json::Value) -> serde_json::Value {
        let r = self.request("POST", path, body.to_string().as_bytes());
        serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.text()))
    }

    /// A KV value the example worker wrote, or `None` (404).
    pub fn kv(&self, key: &str) -> Option<String> {
        let r = self.request("GET", &format!("/kv/{key}"), b"");
        match r.status {
            200 => Some(r.text()),
            404 => None,
            s => panic!("GET /kv/{key}: {s} {}", r.text()),
        }
    }

    /// Polls `kv(key)` until it is set.
    pub fn wait_kv(&self, key: &str, timeout: Duration) -> String {
        let until = Instant::now() + timeout;
        loop {
            if let Some(v) = self.kv(key) {
                return v;
            }
            assert!(Instant::now() < until, "timed out waiting for KV {key}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn kill9(self) {
        self.0.kill9();
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn terminate(self) {
        self.0.terminate();
    }
}

/// Runs the `hearth` binary with `args`; returns (success, stdout, stderr).
pub fn cli(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
