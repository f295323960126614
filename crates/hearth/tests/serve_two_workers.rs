//! `hearth serve alpha beta` (tests/fixtures/two-workers): every config on
//! the command line is a full worker. Each one's queue consumer, cron,
//! Workflow and assets work, against its own isolates and KV, with one
//! shared --data-dir; `hearth dev` reloads the worker whose file changed.

mod web_support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use web_support::{INTERNAL_TOKEN, Reply, copy_tree, http};

struct Served {
    child: Child,
    addr: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Served {
    fn get(&self, host: &str, path: &str) -> Reply {
        http(&self.addr, "GET", path, &[("host", host)], b"")
    }

    /// Polls until `host` `path` answers `want`, for at most 20 s.
    fn wait_for(&self, host: &str, path: &str, want: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let r = self.get(host, path);
            if r.text() == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{host}{path}: still {:?} ({}), wanted {want:?}",
                r.text(),
                r.status
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The fixture's two projects, copied so `hearth dev` tests can edit them.
fn fixture(root: &Path) -> (PathBuf, PathBuf) {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/two-workers");
    copy_tree(&from, root);
    (
        root.join("alpha/wrangler.toml"),
        root.join("beta/wrangler.toml"),
    )
}

fn command(verb: &str, configs: &[&Path], data: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hearth"));
    cmd.arg(verb)
        .args(configs)
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .env("HEARTH_LOG", "info")
        .env("HEARTH_INTERNAL_TOKEN", INTERNAL_TOKEN);
    cmd
}

fn serve(verb: &str, configs: &[&Path], data: &Path) -> Served {
    let mut child = command(verb, configs, data)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split(" on http://").nth(1)
                && let Some(t) = tx.take()
            {
                let _ = t.send(rest.split_whitespace().next().unwrap_or("").to_string());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("server did not report its address");
    Served { child, addr }
}

#[test]
fn each_worker_has_its_own_consumer_cron_workflow_and_assets() {
    let dir = tempfile::tempdir().unwrap();
    let (alpha, beta) = fixture(dir.path());
    let s = serve("serve", &[&alpha, &beta], &dir.path().join("data"));

    // Assets, by route; the first worker also answers unrouted requests.
    assert_eq!(s.get("alpha.test", "/hello.txt").text(), "alpha asset\n");
    assert_eq!(s.get("beta.test", "/hello.txt").text(), "beta asset\n");
    assert_eq!(s.get("other.test", "/hello.txt").text(), "alpha asset\n");
    assert_eq!(s.get("beta.test", "/binding").text(), "beta asset\n");
    assert_eq!(s.get("alpha.test", "/binding").text(), "alpha asset\n");
    assert_eq!(s.get("beta.test", "/").text(), "beta worker at /");
    assert_eq!(s.get("other.test", "/").text(), "alpha worker at /");

    // Queues: each consumer takes its own queue's messages, in its own KV.
    assert_eq!(s.get("alpha.test", "/send?m=a1").text(), "sent");
    assert_eq!(s.get("beta.test", "/send?m=b1").text(), "sent");
    s.wait_for("alpha.test", "/kv?k=msg:a1", "alpha from alpha-jobs");
    s.wait_for("beta.test", "/kv?k=msg:b1", "beta from beta-jobs");
    assert_eq!(s.get("alpha.test", "/kv?k=msg:b1").text(), "null");
    assert_eq!(s.get("beta.test", "/kv?k=msg:a1").text(), "null");

    // The pull endpoint finds the worker that declares the queue's consumer
    // (beta, not the first config).
    assert_eq!(s.get("beta.test", "/export?m=e1").text(), "sent");
    let r = http(
        &s.addr,
        "POST",
        "/__hearth/queues/beta-exports/messages/pull",
        &[("content-type", "application/json")],
        br#"{"batch_size": 5}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let pulled = r.json();
    assert_eq!(pulled["result"]["messages"][0]["body"], "e1", "{pulled}");

    // Crons: routed by Host, or named with ?worker=.
    let r = s.get("beta.test", "/__hearth/scheduled?cron=0+*+*+*+*&time=60000");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["outcome"], "ok");
    assert_eq!(
        s.get("beta.test", "/kv?k=cron").text(),
        "beta ran 0 * * * *"
    );
    let r = s.get(
        "other.test",
        "/__hearth/scheduled?worker=alpha&cron=*%2F5+*+*+*+*&time=60000",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        s.get("alpha.test", "/kv?k=cron").text(),
        "alpha ran */5 * * * *"
    );
    // Each worker runs only its own crons; an unknown worker is named.
    let r = s.get("alpha.test", "/__hearth/scheduled?cron=0+*+*+*+*");
    assert_eq!(r.status, 400, "{}", r.text());
    let r = s.get(
        "alpha.test",
        "/__hearth/scheduled?worker=gamma&cron=0+*+*+*+*",
    );
    assert_eq!(r.status, 404, "{}", r.text());
    assert!(r.text().contains("gamma"), "{}", r.text());
    let r = s.get("beta.test", "/cdn-cgi/handler/scheduled?cron=custom");
    assert_eq!(r.text(), "ok");
    assert_eq!(s.get("beta.test", "/kv?k=cron").text(), "beta ran custom");

    // Workflows: each runs to completion in its own worker.
    assert_eq!(s.get("alpha.test", "/flow?id=w1").text(), "w1");
    assert_eq!(s.get("beta.test", "/flow?id=w2").text(), "w2");
    for (host, id, name) in [("alpha.test", "w1", "alpha"), ("beta.test", "w2", "beta")] {
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            let status = s.get(host, &format!("/flow/{id}")).json();
            if status["status"] == "complete" || Instant::now() > deadline {
                break status;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        assert_eq!(status["status"], "complete", "{status}");
        assert_eq!(status["output"]["by"], name, "{status}");
        assert_eq!(s.get(host, &format!("/kv?k=flow:{id}")).text(), name);
    }

    // Health lists both workers.
    let health = s.get("alpha.test", "/__hearth/health").json();
    let names: Vec<&str> = health["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alpha", "beta"]);
}

#[test]
fn dev_reloads_only_the_worker_whose_module_changed() {
    let dir = tempfile::tempdir().unwrap();
    let (alpha, beta) = fixture(dir.path());
    let s = serve("dev", &[&alpha, &beta], &dir.path().join("data"));
    assert_eq!(s.get("beta.test", "/").text(), "beta worker at /");
    assert_eq!(s.get("beta.test", "/send?m=kept").text(), "sent");
    s.wait_for("beta.test", "/kv?k=msg:kept", "beta from beta-jobs");

    let module = dir.path().join("beta/src/index.js");
    let text = std::fs::read_to_string(&module).unwrap();
    std::fs::write(&module, text.replace("worker at", "reloaded at")).unwrap();
    s.wait_for("beta.test", "/", "beta reloaded at /");
    assert_eq!(s.get("alpha.test", "/").text(), "alpha worker at /");
    // Storage is untouched by the reload.
    assert_eq!(
        s.get("beta.test", "/kv?k=msg:kept").text(),
        "beta from beta-jobs"
    );
    // Its consumer, cron and Workflow run on the reloaded isolates.
    assert_eq!(s.get("beta.test", "/send?m=after").text(), "sent");
    s.wait_for("beta.test", "/kv?k=msg:after", "beta from beta-jobs");
    let r = s.get("beta.test", "/__hearth/scheduled?cron=0+*+*+*+*");
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn two_consumers_of_one_queue_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (alpha, beta) = fixture(dir.path());
    let toml = std::fs::read_to_string(&beta).unwrap();
    std::fs::write(
        &beta,
        toml.replace("queue = \"beta-jobs\"", "queue = \"alpha-jobs\""),
    )
    .unwrap();
    let mut child = command("serve", &[&alpha, &beta], &dir.path().join("data"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // It must stop by itself; a server that starts anyway is killed.
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(status.is_some_and(|s| !s.success()), "{status:?}: {err}");
    assert!(
        err.contains("queue \"alpha-jobs\" already has a consumer"),
        "{err}"
    );
}
