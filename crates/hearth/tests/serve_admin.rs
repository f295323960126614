//! `hearth serve --admin-listen`: the internal endpoints live on their own
//! listener, the main one refuses them without the token, and flags that
//! would open them too widely are refused at start.

mod web_support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use web_support::{example, http};

struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `hearth serve` on the queues example with `extra` flags and no
/// token; returns the main and admin addresses from its start-up lines.
fn start(data: &std::path::Path, extra: &[&str]) -> (Child, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .arg("serve")
        .arg(example("queues").join("wrangler.toml"))
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .args(extra)
        .env("HEARTH_LOG", "info")
        .env_remove("HEARTH_INTERNAL_TOKEN")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            for (tag, marker) in [("main", "serving "), ("admin", "internal endpoints on ")] {
                if line.contains(marker)
                    && let Some(rest) = line.split("http://").nth(1)
                {
                    let addr = rest.split(['/', ' ']).next().unwrap_or("").to_string();
                    let _ = tx.send((tag, addr));
                }
            }
        }
    });
    let (mut main, mut admin) = (String::new(), String::new());
    while main.is_empty() || admin.is_empty() {
        let (tag, addr) = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("server did not report its addresses");
        if tag == "main" {
            main = addr;
        } else {
            admin = addr;
        }
    }
    (Child(child), main, admin)
}

#[test]
fn internal_endpoints_live_on_the_admin_listener() {
    let data = tempfile::tempdir().unwrap();
    let (_child, main, admin) = start(data.path(), &["--admin-listen", "127.0.0.1:0"]);
    let health = http(&admin, "GET", "/__hearth/health", &[], b"");
    assert_eq!(health.status, 200, "{}", health.text());
    assert_eq!(health.json()["status"], "ok");
    // The main listener is loopback and still refuses them.
    assert_eq!(http(&main, "GET", "/__hearth/health", &[], b"").status, 403);
    let pull = "/__hearth/queues/exports/messages/pull";
    assert_eq!(http(&main, "POST", pull, &[], b"{}").status, 403);
    assert_eq!(http(&admin, "POST", pull, &[], b"{}").status, 200);
    // The admin listener serves nothing of the worker's.
    assert_eq!(http(&admin, "GET", "/", &[], b"").status, 404);
    // Only the worker's configured crons run on demand.
    let r = http(
        &admin,
        "GET",
        "/__hearth/scheduled?cron=1+2+3+4+5",
        &[],
        b"",
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("triggers.crons"), "{}", r.text());
}

#[test]
fn flags_that_would_open_the_internal_endpoints_widely_are_refused() {
    let data = tempfile::tempdir().unwrap();
    let config = example("queues").join("wrangler.toml");
    for (args, says) in [
        (
            vec!["--admin-listen", "0.0.0.0:0"],
            "is not a loopback address: an admin listener reachable from other machines needs --internal-token",
        ),
        (
            vec!["--internal-token", " "],
            "--internal-token (or HEARTH_INTERNAL_TOKEN) is empty",
        ),
        (vec!["--max-connections", "0"], "--max-connections 0"),
        (
            vec!["--admin-listen", "nowhere"],
            "--admin-listen \"nowhere\" is not an address",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
            .arg("serve")
            .arg(&config)
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data.path())
            .args(&args)
            .env_remove("HEARTH_INTERNAL_TOKEN")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} started");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}
