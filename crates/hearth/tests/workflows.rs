//! Workflows through `hearth serve` on examples/workflows: an order runs its
//! steps (a retried charge, a sleep, an approval event), the binding's
//! instance methods over HTTP, the `hearth workflows` commands on the same
//! data directory, and a server killed with SIGKILL in the middle of a step:
//! after a restart the instance resumes and no completed step runs again.
//!
//! The server reads the system clock, so retry delays and sleeps here are
//! short real ones (set through the order's params); the timing rules
//! themselves are tested with a manual clock in
//! crates/hearth-runtime/tests/workflows.rs.

mod events_common;
mod web_support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use events_common::cli;
use serde_json::{Value, json};
use web_support::Reply;

const WAIT: Duration = Duration::from_secs(30);

fn config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/workflows/wrangler.toml")
}

struct Server(web_support::Server);

impl Server {
    fn start(data: &Path) -> Server {
        Server(web_support::Server::launch(
            "serve",
            &config(),
            data,
            // A killed server's run is taken over this long after its last
            // step call (plus the step's 5 s timeout), not two minutes.
            &[("HEARTH_WORKFLOW_LEASE_MS", "300")],
            Duration::from_secs(60),
        ))
    }

    fn request(&self, method: &str, path: &str, body: &Value) -> Reply {
        let body = if body.is_null() {
            Vec::new()
        } else {
            body.to_string().into_bytes()
        };
        self.0.request(method, path, &[], &body)
    }

    fn json(&self, method: &str, path: &str, body: &Value) -> Value {
        let r = self.request(method, path, body);
        serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.text()))
    }

    fn status(&self, id: &str) -> Value {
        self.json("GET", &format!("/orders/{id}"), &Value::Null)
    }

    fn kv(&self, key: &str) -> Option<String> {
        let r = self.request("GET", &format!("/kv/{key}"), &Value::Null);
        (r.status == 200).then(|| r.text())
    }

    /// Polls until `check` holds.
    fn wait(&self, what: &str, mut check: impl FnMut(&Server) -> bool) {
        let until = Instant::now() + WAIT;
        while !check(self) {
            assert!(Instant::now() < until, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_status(&self, id: &str, want: &str) -> Value {
        let mut last = Value::Null;
        self.wait(&format!("{id} to be {want}"), |s| {
            last = s.status(id);
            last["status"] == want
        });
        last
    }

    fn kill9(self) {
        self.0.kill9();
    }
}

fn hearth(data: &Path, args: &[&str]) -> (bool, String, String) {
    let config = config();
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--config", config.to_str().unwrap(), "--data-dir"]);
    all.push(data.to_str().unwrap());
    cli(&all)
}

fn describe(data: &Path, id: &str) -> Value {
    let (ok, out, err) = hearth(data, &["workflows", "instances", "describe", "orders", id]);
    assert!(ok, "{err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// The step of `describe` named `name`.
fn step<'a>(d: &'a Value, name: &str) -> &'a Value {
    d["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no step {name} in {d}"))
}

#[test]
fn an_order_retries_sleeps_waits_for_approval_and_completes() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let r = server.json(
        "POST",
        "/orders",
        &json!({"id": "o1", "items": ["tea", "cups"], "failCharges": 2, "retryDelay": 0, "coolOff": "1 second"}),
    );
    assert_eq!(r, json!({"id": "o1"}));
    // Two declined attempts, then the charge goes through; after the
    // cool-off the instance waits for its approval.
    server.wait("the approval wait", |s| {
        s.status("o1")["status"] == "waiting"
            && describe(data.path(), "o1")["steps"]
                .as_array()
                .unwrap()
                .iter()
                .any(|st| st["name"] == "approval")
    });
    let r = server.json("POST", "/orders/o1/approve", &json!({"by": "ann"}));
    assert!(r["status"].is_string(), "{r}");
    let s = server.wait_status("o1", "complete");
    assert_eq!(
        s,
        json!({"status": "complete", "output": {
            "orderId": "o1", "charged": 200, "approvedBy": "ann", "tracking": "TRK-o1"
        }})
    );
    assert_eq!(server.kv("reserve:o1").as_deref(), Some("1"));
    assert_eq!(server.kv("charge:o1").as_deref(), Some("3"));
    assert_eq!(server.kv("ship:o1").as_deref(), Some("1"));

    // The CLI reads the same data directory while the server runs.
    let d = describe(data.path(), "o1");
    assert_eq!(d["status"], "complete");
    assert_eq!(d["output"]["tracking"], "TRK-o1");
    assert_eq!(d["params"]["items"], json!(["tea", "cups"]));
    let charge = step(&d, "charge card");
    assert_eq!(charge["state"], "succeeded");
    assert_eq!(charge["config"]["retries"]["limit"], 3);
    assert_eq!(charge["config"]["timeout_ms"], 5000);
    let attempts = charge["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 3);
    assert_eq!(
        attempts[0]["error"],
        json!({"name": "Error", "message": "card declined (attempt 1)"})
    );
    assert_eq!(attempts[2]["success"], true);
    assert!(attempts[2]["duration_ms"].is_u64());
    assert_eq!(charge["output"], json!({"amount": 200, "attempt": 3}));
    let reserve = step(&d, "reserve stock");
    assert!(
        reserve["output"]["at"].as_str().unwrap().ends_with('Z'),
        "Dates read as ISO strings: {reserve}"
    );
    assert_eq!(step(&d, "cool off")["state"], "elapsed");
    assert_eq!(step(&d, "approval")["output"], json!({"by": "ann"}));

    let (ok, out, err) = hearth(data.path(), &["workflows", "list"]);
    assert!(ok, "{err}");
    let list: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        list,
        json!([{"name": "orders", "binding": "ORDERS", "class_name": "OrderWorkflow",
                "instances": {"complete": 1}}])
    );
    let (ok, out, err) = hearth(data.path(), &["workflows", "instances", "list", "ORDERS"]);
    assert!(ok, "{err}");
    let list: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list["instances"][0]["id"], "o1");
    assert_eq!(list["instances"][0]["status"], "complete");
    assert_eq!(list["cursor"], Value::Null);
}

#[test]
fn non_retryable_errors_fail_the_order_and_binding_errors_reach_the_worker() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    server.json("POST", "/orders", &json!({"id": "bad", "badCard": "4242"}));
    let s = server.wait_status("bad", "errored");
    assert_eq!(
        s,
        json!({"status": "errored", "error": {"name": "NonRetryableError", "message": "card 4242 is blocked"}})
    );
    assert_eq!(server.kv("charge:bad").as_deref(), Some("1"));
    let r = server.json("POST", "/orders", &json!({"id": "bad"}));
    assert_eq!(
        r,
        json!({"error": "Error", "message": "WorkflowError: (instance.already_exists) Instance already exists"})
    );
    let r = server.json("GET", "/orders/missing", &Value::Null);
    assert_eq!(r["message"], "instance.not_found");
}

#[test]
fn pause_resume_terminate_and_restart_over_http_and_the_cli() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    server.json(
        "POST",
        "/orders",
        &json!({"id": "p1", "items": ["tea"], "coolOff": "1 hour"}),
    );
    server.wait("the cool-off", |s| {
        s.kv("charge:p1").is_some() && s.status("p1")["status"] == "waiting"
    });

    let (ok, out, err) = hearth(data.path(), &["workflows", "pause", "orders", "p1"]);
    assert!(ok, "{err}");
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap(),
        json!({"id": "p1", "action": "paused", "status": "paused"})
    );
    assert_eq!(server.status("p1"), json!({"status": "paused"}));
    let r = server.json("POST", "/orders/p1/resume", &Value::Null);
    assert_eq!(r, json!({"status": "waiting"}));
    let (ok, _, err) = hearth(
        data.path(),
        &["workflows", "instances", "terminate", "orders", "p1"],
    );
    assert!(ok, "{err}");
    assert_eq!(server.status("p1"), json!({"status": "terminated"}));
    let (ok, _, err) = hearth(data.path(), &["workflows", "terminate", "orders", "p1"]);
    assert!(!ok);
    assert!(
        err.contains(
            "(instance.cannot_terminate) Cannot terminate instance since its on a finite state"
        ),
        "{err}"
    );

    // Restart forgets the journal: the order runs from its first step.
    server.json("POST", "/orders/p1/restart", &Value::Null);
    server.wait("the restarted run", |s| {
        s.kv("reserve:p1").as_deref() == Some("2")
    });
    server.wait_status("p1", "waiting");
    let (ok, _, err) = hearth(
        data.path(),
        &["workflows", "instances", "describe", "orders", "nope"],
    );
    assert!(!ok);
    assert!(
        err.contains("(instance.not_found) Instance not found"),
        "{err}"
    );
    let (ok, _, err) = hearth(data.path(), &["workflows", "instances", "list", "shipping"]);
    assert!(!ok);
    assert!(err.contains("No workflow \"shipping\""), "{err}");
}

#[test]
fn sigkill_mid_step_resumes_after_restart_without_rerunning_completed_steps() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    server.json(
        "POST",
        "/orders",
        &json!({"id": "k1", "items": ["tea"], "hold": true, "retryDelay": 0, "coolOff": "1 second"}),
    );
    // "reserve stock" is done; "charge card" is in its first attempt, held.
    server.wait("the held charge", |s| s.kv("charge:k1").is_some());
    assert_eq!(server.kv("reserve:k1").as_deref(), Some("1"));
    server.kill9();

    let server = Server::start(data.path());
    server.json("POST", "/go/k1", &Value::Null);
    // Once the dead run's lease lapses the instance replays: the completed
    // step comes from the journal, the interrupted attempt is retried.
    server.wait("the approval wait after the crash", |s| {
        s.status("k1")["status"] == "waiting"
            && describe(data.path(), "k1")["steps"]
                .as_array()
                .unwrap()
                .iter()
                .any(|st| st["name"] == "approval")
    });
    server.json("POST", "/orders/k1/approve", &json!({"by": "bob"}));
    let s = server.wait_status("k1", "complete");
    assert_eq!(s["output"]["approvedBy"], "bob");
    assert_eq!(
        server.kv("reserve:k1").as_deref(),
        Some("1"),
        "never re-run"
    );
    assert_eq!(server.kv("charge:k1").as_deref(), Some("2"));
    let d = describe(data.path(), "k1");
    let attempts = step(&d, "charge card")["attempts"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(attempts.len(), 2);
    assert_eq!(
        attempts[0]["error"],
        json!({"name": "WorkflowInternalError", "message": "Attempt failed due to internal workflows error"})
    );
    assert_eq!(attempts[1]["success"], true);
}
