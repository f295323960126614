//! Cron triggers through `hearth serve` on examples/queues: on-demand runs
//! over HTTP, and a run missed while the server was down firing once on
//! start. Scheduling by a moving clock is tested at the runtime level
//! (crates/hearth-runtime/tests/events.rs) with a manual clock.

mod events_common;
mod web_support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use events_common::Server;
use hearth_core::ManualClock;
use hearth_cron::CronScheduler;
use serde_json::{Value, json};

fn parse(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{e}: {s}"))
}

#[test]
fn scheduled_runs_on_demand_over_http() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let r = server.request("GET", "/__hearth/scheduled?cron=*+*+*+*+*&time=60000", b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        parse(&r.text()),
        json!({"outcome": "ok", "cron": "* * * * *", "scheduledTime": 60000, "noRetry": false})
    );
    // Keyed by run: the scheduler's own `* * * * *` runs have other times.
    assert_eq!(
        parse(&server.kv("cron:run:*%20*%20*%20*%20*:60000").unwrap()),
        json!({"cron": "* * * * *", "scheduledTime": 60000})
    );

    // A cron the config does not list is refused, naming the field.
    for unlisted in ["*/5+*+*+*+*", "fail", ""] {
        let r = server.request(
            "GET",
            &format!("/__hearth/scheduled?cron={unlisted}&time=1"),
            b"",
        );
        assert_eq!(r.status, 400, "{unlisted}: {}", r.text());
        assert!(r.text().contains("triggers.crons"), "{}", r.text());
    }

    // wrangler's route answers in wrangler's words.
    let r = server.request("GET", "/cdn-cgi/handler/scheduled?cron=0+*+*+*+*", b"");
    assert_eq!((r.status, r.text()), (200, "ok".to_string()));
    let r = server.request("GET", "/cdn-cgi/handler/scheduled?cron=fail", b"");
    assert_eq!((r.status, r.text()), (500, "exception".to_string()));
    let r = server.request("GET", "/__hearth/scheduled?cron=*+*+*+*+*&time=soon", b"");
    assert_eq!(r.status, 400);
    // Three on-demand runs (the configured `* * * * *` may add one if a
    // minute turned meanwhile); the refused ones never ran.
    let count: u64 = server.kv("cron:count").unwrap().parse().unwrap();
    assert!((3..=4).contains(&count), "{count}");
}

#[test]
fn a_run_missed_while_down_fires_once_on_start() {
    let data = tempfile::tempdir().unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    // As if a server had last run the cron ten minutes ago.
    let earlier = ManualClock::new(now - 600_000);
    let scheduler = CronScheduler::open(
        &data.path().join("cron.sqlite"),
        "queues-example",
        &["* * * * *"],
        earlier.shared(),
    )
    .unwrap();
    drop(scheduler);
    let server = Server::start(data.path());
    let first = parse(&server.wait_kv("cron:first", Duration::from_secs(20)));
    let slot = first["scheduledTime"].as_u64().unwrap();
    assert_eq!(first["cron"], "* * * * *");
    assert_eq!(slot % 60_000, 0);
    assert!(
        slot <= now + 60_000 && slot + 60_000 > now,
        "the most recent slot, not one per missed minute: {slot} vs {now}"
    );
    std::thread::sleep(Duration::from_millis(1500));
    let count: u64 = server.kv("cron:count").unwrap().parse().unwrap();
    assert!(
        count <= 2,
        "ten missed minutes cost one run (two if a minute turned): {count}"
    );
}
