//! Cron slots across nodes against PostgreSQL: three schedulers, each with
//! its own cursor file, on one manual clock, claiming every slot in
//! `cron_cursors`. Each test uses a schema of its own. Skipped without a
//! reachable PostgreSQL unless `HEARTH_TEST_REQUIRE_CLUSTER=1`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hearth_cluster::{Pg, PgCronClaims, Placement};
use hearth_core::ManualClock;
use hearth_cron::{Claim, CronScheduler, DueRun, SlotClaims};

mod pg_support;
use pg_support::run;

/// 2026-01-01T00:00:00Z.
const START_MS: u64 = 1_767_225_600_000;
const MINUTE: u64 = 60_000;
const CRONS: [&str; 2] = ["* * * * *", "*/5 * * * *"];

fn schema(test: &str) -> Option<Pg> {
    pg_support::schema("hearth_tc", test)
}

struct Node {
    name: String,
    claims: PgCronClaims,
    scheduler: CronScheduler,
    _placement: Arc<Placement>,
}

fn node(pg: &Pg, name: &str, port: u16, dir: &std::path::Path, clock: &ManualClock) -> Node {
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let lease = Duration::from_secs(30);
    let placement = Placement::open(pg.clone(), name, addr, lease).unwrap();
    Node {
        name: name.to_owned(),
        claims: PgCronClaims::open(pg.clone(), name, lease).unwrap(),
        scheduler: CronScheduler::open(
            &dir.join(format!("{name}-cron.sqlite")),
            "worker",
            &CRONS,
            clock.shared(),
        )
        .unwrap(),
        _placement: placement,
    }
}

/// What the runtime's cron loop does with the due runs at `now`.
fn tick(n: &Node, now: u64, fired: &Mutex<Vec<(String, String, u64)>>) {
    for due in n.scheduler.due(now) {
        match n.claims.claim("worker", &due).unwrap() {
            Claim::Mine => {
                fired.lock().unwrap().push((
                    n.name.clone(),
                    due.cron.clone(),
                    due.scheduled_time_ms,
                ));
                n.claims.done("worker", &due).unwrap();
                n.scheduler.mark_done(&due).unwrap();
            }
            Claim::Taken => n.scheduler.mark_done(&due).unwrap(),
            Claim::Busy => {}
        }
    }
}

#[test]
fn each_slot_fires_on_exactly_one_of_three_nodes() {
    let Some(pg) = schema("once") else { return };
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(START_MS);
    let nodes: Vec<Node> = ["a", "b", "c"]
        .iter()
        .enumerate()
        .map(|(i, n)| node(&pg, n, 7300 + i as u16, dir.path(), &clock))
        .collect();
    let fired = Mutex::new(Vec::new());
    for minute in 1..=30u64 {
        clock.advance_ms(MINUTE);
        let now = START_MS + minute * MINUTE;
        std::thread::scope(|s| {
            for (i, n) in nodes.iter().enumerate() {
                // Node c is down for minutes 10 to 19; it comes back with
                // its cursor ten minutes behind.
                if i == 2 && (10..20).contains(&minute) {
                    continue;
                }
                let fired = &fired;
                s.spawn(move || tick(n, now, fired));
            }
        });
    }
    let fired = fired.into_inner().unwrap();
    let mut per_slot: HashMap<(String, u64), Vec<String>> = HashMap::new();
    for (node, cron, slot) in &fired {
        per_slot
            .entry((cron.clone(), *slot))
            .or_default()
            .push(node.clone());
    }
    for (slot, nodes) in &per_slot {
        assert_eq!(nodes.len(), 1, "{slot:?} fired on {nodes:?}");
    }
    let every_minute = (1..=30).map(|m| ("* * * * *".to_owned(), START_MS + m * MINUTE));
    let every_five = (1..=6).map(|m| ("*/5 * * * *".to_owned(), START_MS + m * 5 * MINUTE));
    for slot in every_minute.chain(every_five) {
        assert!(per_slot.contains_key(&slot), "{slot:?} never fired");
    }
    assert_eq!(fired.len(), 36);
}

#[test]
fn an_unfinished_slot_moves_only_when_its_holder_falls_silent() {
    let Some(pg) = schema("holder") else { return };
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(START_MS);
    let a = node(&pg, "a", 7311, dir.path(), &clock);
    let b = node(&pg, "b", 7312, dir.path(), &clock);
    let slot = |m: u64| DueRun {
        cron: CRONS[0].to_owned(),
        scheduled_time_ms: START_MS + m * MINUTE,
    };
    assert_eq!(a.claims.claim("worker", &slot(1)).unwrap(), Claim::Mine);
    assert_eq!(
        b.claims.claim("worker", &slot(1)).unwrap(),
        Claim::Busy,
        "held by a live node, not finished"
    );
    assert_eq!(
        a.claims.claim("worker", &slot(1)).unwrap(),
        Claim::Mine,
        "its holder may try again (a retry, a restart)"
    );
    run(
        &pg,
        "UPDATE cluster_nodes SET heartbeat_at = now() - interval '1 hour' WHERE node_id = 'a'"
            .into(),
    );
    assert_eq!(
        b.claims.claim("worker", &slot(1)).unwrap(),
        Claim::Mine,
        "a silent holder's slot is taken over"
    );
    b.claims.done("worker", &slot(1)).unwrap();
    // a, back, reports its old attempt done: b's claim stands.
    a.claims.done("worker", &slot(1)).unwrap();
    assert_eq!(a.claims.claim("worker", &slot(1)).unwrap(), Claim::Taken);
    assert_eq!(b.claims.claim("worker", &slot(1)).unwrap(), Claim::Taken);
    assert_eq!(
        a.claims.claim("worker", &slot(3)).unwrap(),
        Claim::Mine,
        "a newer slot is free"
    );
    assert_eq!(
        b.claims.claim("worker", &slot(2)).unwrap(),
        Claim::Taken,
        "an older slot never fires after a newer one"
    );
    let other_worker = b.claims.claim("other", &slot(3)).unwrap();
    assert_eq!(other_worker, Claim::Mine, "each worker's crons apart");
}
