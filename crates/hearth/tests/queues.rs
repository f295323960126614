//! Queues through `hearth serve` on examples/queues: produce in a fetch,
//! consume in queue() writing to KV, retries and the dead-letter queue, the
//! pull-consumer endpoints, at-least-once delivery across SIGKILL, no
//! redelivery after a clean restart, and the `hearth queues` commands.

mod events_common;
mod web_support;

use std::time::Duration;

use base64::Engine;
use events_common::{Server, cli, example_config};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);

fn parse(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{e}: {s}"))
}

#[test]
fn produced_in_fetch_consumed_in_queue_handler() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let r = server.request("POST", "/jobs", br#"{"id":"one"}"#);
    assert_eq!(r.status, 202, "{}", r.text());
    let r = server.request("POST", "/jobs/batch", br#"[{"id":"two"},{"id":"three"}]"#);
    assert_eq!(r.status, 202, "{}", r.text());
    for id in ["one", "two", "three"] {
        let v = parse(&server.wait_kv(&format!("job:{id}"), WAIT));
        assert_eq!(
            v,
            json!({"attempts": 1, "sentAtIsDate": true, "queue": "jobs"}),
            "the v8 body keeps its Date"
        );
    }
    // Producer errors reach the worker with Workers' messages.
    let r = server.request("POST", "/jobs?delay=86401", br#"{"id":"late"}"#);
    assert_eq!(r.status, 500);
}

#[test]
fn failing_message_is_retried_then_dead_lettered() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let r = server.request("POST", "/jobs", br#"{"id":"bad","fail":true}"#);
    assert_eq!(r.status, 202);
    let dead = parse(&server.wait_kv("dead:bad", WAIT));
    assert_eq!(dead, json!({"attempts": 1}), "attempts restart in the DLQ");
    // max_retries = 2: three deliveries on "jobs", one on "jobs-dlq".
    assert_eq!(server.kv("deliveries:bad").as_deref(), Some("4"));
    assert_eq!(server.kv("job:bad"), None);
}

#[test]
fn pull_consumer_pulls_acks_retries_and_leases_expire() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    for body in ["first", "second", "third"] {
        assert_eq!(
            server.request("POST", "/exports", body.as_bytes()).status,
            202
        );
    }
    let pull = "/__hearth/queues/exports/messages/pull";
    let ack = "/__hearth/queues/exports/messages/ack";
    let got = server.post_json(
        pull,
        &json!({"batch_size": 2, "visibility_timeout_ms": 60000}),
    );
    assert_eq!(got["success"], true);
    let msgs = got["result"]["messages"].as_array().unwrap().clone();
    assert_eq!(msgs.len(), 2);
    assert_eq!(got["result"]["message_backlog_count"], 1);
    assert_eq!(msgs[0]["body"], "first", "text bodies are plain strings");
    assert_eq!(msgs[0]["attempts"], 1);
    assert_eq!(msgs[0]["metadata"]["CF-Content-Type"], "text");
    assert!(msgs[0]["timestamp_ms"].as_u64().unwrap() > 0);
    assert_eq!(msgs[0]["id"].as_str().unwrap().len(), 32);

    let done = server.post_json(
        ack,
        &json!({
            "acks": [{"lease_id": msgs[0]["lease_id"]}],
            "retries": [{"lease_id": msgs[1]["lease_id"], "delay_seconds": 0}],
        }),
    );
    assert_eq!(
        done["result"],
        json!({"ackCount": 1, "retryCount": 1, "warnings": []})
    );

    // The retried one comes back with its attempt counted; a short
    // visibility timeout lets the next pull lapse.
    let got = server.post_json(
        pull,
        &json!({"batch_size": 10, "visibility_timeout_ms": 300}),
    );
    let msgs = got["result"]["messages"].as_array().unwrap().clone();
    let bodies: Vec<&str> = msgs.iter().map(|m| m["body"].as_str().unwrap()).collect();
    assert_eq!(bodies.len(), 2);
    assert!(bodies.contains(&"second") && bodies.contains(&"third"));
    let second = msgs.iter().find(|m| m["body"] == "second").unwrap();
    assert_eq!(second["attempts"], 2);
    std::thread::sleep(Duration::from_millis(600));
    let again = server.post_json(pull, &json!({"batch_size": 10}));
    let msgs = again["result"]["messages"].as_array().unwrap().clone();
    assert_eq!(
        msgs.len(),
        2,
        "lapsed leases make the messages visible again"
    );
    let leases: Vec<Value> = msgs
        .iter()
        .map(|m| json!({"lease_id": m["lease_id"]}))
        .collect();
    let done = server.post_json(ack, &json!({"acks": leases}));
    assert_eq!(done["result"]["ackCount"], 2);
    let empty = server.post_json(pull, &json!({}));
    assert_eq!(empty["result"]["messages"], json!([]));

    // Refusals use Cloudflare's envelope.
    let r = server.request("POST", pull, br#"{"batch_size": 101}"#);
    assert_eq!(r.status, 400);
    let v = parse(&r.text());
    assert_eq!(v["success"], false);
    assert_eq!(
        v["errors"][0]["message"],
        "batch_size 101 is invalid: it must be an integer from 1 to 100"
    );
    let r = server.request("POST", "/__hearth/queues/jobs/messages/pull", b"{}");
    assert_eq!(r.status, 400);
    assert_eq!(
        parse(&r.text())["errors"][0]["message"],
        "queue \"jobs\" has no HTTP pull consumer"
    );
}

#[test]
fn non_text_bodies_are_base64_for_pull_consumers() {
    let data = tempfile::tempdir().unwrap();
    let config = example_config();
    let config = config.to_str().unwrap();
    let dir = data.path().to_str().unwrap();
    let (ok, _, err) = cli(&[
        "queues",
        "send",
        "exports",
        r#"{"k":1}"#,
        "--content-type",
        "json",
        "-c",
        config,
        "--data-dir",
        dir,
    ]);
    assert!(ok, "{err}");
    let server = Server::start(data.path());
    let got = server.post_json("/__hearth/queues/exports/messages/pull", &json!({}));
    let m = &got["result"]["messages"][0];
    assert_eq!(m["metadata"]["CF-Content-Type"], "json");
    let raw = base64::engine::general_purpose::STANDARD
        .decode(m["body"].as_str().unwrap())
        .unwrap();
    assert_eq!(raw, br#"{"k":1}"#);
}

#[test]
fn acknowledged_sends_survive_sigkill_and_are_all_consumed() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    // Delayed, so nothing is consumed before the kill.
    let ids: Vec<String> = (0..20).map(|i| format!("k{i}")).collect();
    for id in &ids {
        let r = server.request(
            "POST",
            "/jobs?delay=2",
            format!(r#"{{"id":"{id}"}}"#).as_bytes(),
        );
        assert_eq!(r.status, 202);
    }
    server.kill9();
    let server = Server::start(data.path());
    for id in &ids {
        let v = parse(&server.wait_kv(&format!("job:{id}"), WAIT));
        assert_eq!(v["attempts"], 1);
    }
}

#[test]
fn acked_messages_are_not_redelivered_after_a_clean_restart() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    for id in ["a", "b", "c"] {
        server.request("POST", "/jobs", format!(r#"{{"id":"{id}"}}"#).as_bytes());
    }
    for id in ["a", "b", "c"] {
        server.wait_kv(&format!("job:{id}"), WAIT);
    }
    server.terminate();
    let server = Server::start(data.path());
    server.request("POST", "/jobs", br#"{"id":"marker"}"#);
    server.wait_kv("job:marker", WAIT);
    // The marker went through the same consumer after the restart, so any
    // redelivery of a, b or c would have happened by now.
    std::thread::sleep(Duration::from_millis(1500));
    for id in ["a", "b", "c"] {
        assert_eq!(server.kv(&format!("deliveries:{id}")).as_deref(), Some("1"));
    }
}

#[test]
fn cli_lists_sends_and_inspects_queues_in_the_serve_data_dir() {
    let data = tempfile::tempdir().unwrap();
    let config = example_config();
    let config = config.to_str().unwrap();
    let dir = data.path().to_str().unwrap();
    let project = ["-c", config, "--data-dir", dir];
    let run = |args: &[&str]| {
        let mut all: Vec<&str> = args.to_vec();
        all.extend_from_slice(&project);
        let (ok, out, err) = cli(&all);
        assert!(ok, "{args:?}: {err}");
        out
    };
    let id = run(&[
        "queues",
        "send",
        "jobs",
        r#"{"id":"from-cli"}"#,
        "--content-type",
        "v8",
    ]);
    assert_eq!(id.trim().len(), 32, "prints the message id: {id}");
    run(&["queues", "send", "jobs", "later", "--delay-seconds", "600"]);
    let list = run(&["queues", "list"]);
    assert!(
        list.starts_with("queue\tdepth\tin_flight\tconsumer\n"),
        "{list}"
    );
    assert!(list.contains("\njobs\t2\t0\tworker"), "{list}");
    assert!(list.contains("\njobs-dlq\t0\t0\tworker"), "{list}");
    assert!(list.contains("\nexports\t0\t0\thttp_pull"), "{list}");
    let inspect = run(&["queues", "inspect", "jobs"]);
    assert!(
        inspect.contains("depth: 2\nvisible: 1\ndelayed: 1\nin_flight: 0\n"),
        "{inspect}"
    );
    assert!(inspect.contains("dlq_depth: 0 (jobs-dlq)"), "{inspect}");

    let (ok, _, err) = cli(&[
        "queues",
        "send",
        "jobs",
        "x",
        "--content-type",
        "xml",
        "-c",
        config,
        "--data-dir",
        dir,
    ]);
    assert!(!ok);
    assert!(
        err.contains("Unsupported queue message content type: xml"),
        "{err}"
    );

    // A server on the same data dir consumes what the CLI sent.
    let server = Server::start(data.path());
    let v = parse(&server.wait_kv("job:from-cli", WAIT));
    assert_eq!(v["attempts"], 1);
    let inspect = run(&["queues", "inspect", "jobs"]);
    assert!(inspect.contains("depth: 1\n"), "{inspect}");
}
