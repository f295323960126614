//! At-least-once across restarts: what was sent survives reopening, what was
//! acknowledged never comes back, leases keep (pull) or lose (push) their
//! holders as documented; and the same across a real SIGKILL of a child
//! process mid-stream.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use common::*;
use hearth_core::{Clock, ManualClock, SystemClock};
use hearth_queues::{ConsumerConfig, PullOptions, QueueBroker, QueueLimits};

#[test]
fn sent_messages_and_acks_survive_reopening() {
    let f = fixture();
    f.broker.set_consumer(eager("q")).unwrap();
    for s in ["a", "b", "c"] {
        f.send_text("q", s);
    }
    let batch = f.broker.next_push_batch("q").unwrap().unwrap();
    let mut o = batch.outcome();
    o.ack(&batch.messages[0].id);
    o.set_threw();
    f.broker.settle(&batch, &o).unwrap();

    let broker = f.reopen();
    broker.set_consumer(eager("q")).unwrap();
    let again = broker.next_push_batch("q").unwrap().unwrap();
    assert_eq!(bodies(&again), ["b", "c"]);
    assert!(again.messages.iter().all(|m| m.attempts == 2));
}

#[test]
fn push_leases_of_a_previous_process_are_released_on_recovery() {
    let f = fixture();
    f.broker.set_consumer(eager("q")).unwrap();
    f.send_text("q", "a");
    let _lost = f.broker.next_push_batch("q").unwrap().unwrap();

    let broker = f.reopen();
    broker.set_consumer(eager("q")).unwrap();
    assert!(
        broker.next_push_batch("q").unwrap().is_none(),
        "still leased"
    );
    assert_eq!(broker.recover_push_leases().unwrap(), 1);
    let again = broker.next_push_batch("q").unwrap().unwrap();
    assert_eq!(bodies(&again), ["a"]);
    assert_eq!(again.messages[0].attempts, 2);
    // Its own leases are left alone.
    assert_eq!(broker.recover_push_leases().unwrap(), 0);
}

#[test]
fn pull_leases_outlive_a_restart() {
    let f = fixture();
    f.broker
        .set_consumer(ConsumerConfig::http_pull("q"))
        .unwrap();
    f.send_text("q", "a");
    let got = f.broker.pull("q", &PullOptions::default()).unwrap();

    let broker = f.reopen();
    broker.set_consumer(ConsumerConfig::http_pull("q")).unwrap();
    broker.recover_push_leases().unwrap();
    assert!(
        broker
            .pull("q", &PullOptions::default())
            .unwrap()
            .messages
            .is_empty()
    );
    let r = broker
        .ack("q", &[got.messages[0].lease_id.clone()], &[])
        .unwrap();
    assert_eq!(r.ack_count, 1);
    assert_eq!(f.stored_rows(), 0);
}

#[test]
fn unacknowledged_messages_expire_after_the_retention_period() {
    let f = fixture();
    f.send_text("q", "old");
    f.clock.advance_secs(4 * 24 * 3600 - 1);
    f.send_text("q", "new");
    assert_eq!(f.broker.stats("q").unwrap().depth, 2);
    f.clock.advance_secs(1);
    let stats = f.broker.stats("q").unwrap();
    assert_eq!(stats.depth, 1);
    assert_eq!(stats.oldest_age_ms, Some(1_000));
}

#[test]
fn stats_and_list_queues() {
    let f = fixture();
    f.broker.declare_queue("configured").unwrap();
    f.broker
        .set_consumer(ConsumerConfig {
            dead_letter_queue: Some("dlq".into()),
            ..eager("q")
        })
        .unwrap();
    f.send_text("q", "a");
    f.clock.advance_secs(2);
    f.send_text("q", "b");
    f.broker
        .send(
            "q",
            b"c".to_vec(),
            &hearth_queues::QueueSendOptions {
                delay_seconds: Some(60.0),
                ..text_options()
            },
        )
        .unwrap();
    f.send_text("stray", "x");
    let batch = f.broker.next_push_batch("q").unwrap().unwrap();
    assert_eq!(batch.messages.len(), 2);
    let stats = f.broker.stats("q").unwrap();
    assert_eq!(
        (stats.depth, stats.visible, stats.delayed, stats.in_flight),
        (1, 0, 1, 2)
    );
    assert_eq!(stats.oldest_age_ms, Some(2_000));
    assert_eq!(stats.dlq_depth, Some(0));
    assert_eq!(f.broker.stats("stray").unwrap().dlq_depth, None);
    assert_eq!(
        f.broker.list_queues().unwrap(),
        ["configured", "dlq", "q", "stray"]
    );
}

// --- SIGKILL ---------------------------------------------------------------

const CHILD_DIR: &str = "HEARTH_QUEUES_KILL9_DIR";
const CHILD_ROLE: &str = "HEARTH_QUEUES_KILL9_ROLE";

fn open_real(dir: &Path) -> QueueBroker {
    let b = QueueBroker::open(
        &dir.join("queues.sqlite"),
        SystemClock::shared(),
        QueueLimits::default(),
    )
    .unwrap();
    b.set_consumer(ConsumerConfig::http_pull("crash")).unwrap();
    b
}

/// Runs only when re-executed by `sigkill_loses_no_acknowledged_work`:
/// as a producer it reports each id after `send` returned; as a consumer,
/// each id after its `ack` returned.
#[test]
fn kill9_child() {
    let (Ok(dir), Ok(role)) = (std::env::var(CHILD_DIR), std::env::var(CHILD_ROLE)) else {
        return;
    };
    let broker = open_real(Path::new(&dir));
    match role.as_str() {
        "produce" => {
            for i in 0u64.. {
                let id = broker
                    .send(
                        "crash",
                        vec![b'x'; 512 + (i as usize % 2048)],
                        &text_options(),
                    )
                    .unwrap();
                println!("sent {id}");
            }
        }
        _ => loop {
            let got = broker
                .pull(
                    "crash",
                    &PullOptions {
                        batch_size: Some(10.0),
                        visibility_timeout_ms: Some(60_000.0),
                    },
                )
                .unwrap();
            if got.messages.is_empty() {
                println!("empty");
                return;
            }
            for m in got.messages {
                println!("acking {}", m.id);
                broker.ack("crash", &[m.lease_id], &[]).unwrap();
                println!("acked {}", m.id);
            }
        },
    }
}

/// Runs a child until it has printed `stop_after` lines starting with
/// `count_prefix`, SIGKILLs it, and returns every line it printed (lines
/// already in the pipe are read after the kill: they were printed, so the
/// call before them returned).
fn run_child(dir: &Path, role: &str, count_prefix: &str, stop_after: usize) -> Vec<String> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "kill9_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR, dir)
        .env(CHILD_ROLE, role)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut out = Vec::new();
    let mut counted = 0;
    for line in lines.by_ref() {
        let line = line.unwrap();
        counted += usize::from(line.starts_with(count_prefix));
        out.push(line);
        if counted >= stop_after {
            break;
        }
    }
    // SIGKILL on Unix: no destructors, no flush.
    child.kill().unwrap();
    child.wait().unwrap();
    out.extend(lines.map_while(|l| l.ok()));
    assert!(counted >= stop_after, "child stopped early after {counted}");
    out
}

fn ids(lines: &[String], prefix: &str) -> BTreeSet<String> {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix(prefix))
        .map(str::to_owned)
        .collect()
}

/// Every message in the queue, seen by a reader whose clock is past every
/// visibility timeout the child could have set.
fn everything_in_queue(dir: &Path) -> Vec<String> {
    let clock = ManualClock::new(SystemClock.now_ms() + 3_600_000);
    let b = QueueBroker::open(
        &dir.join("queues.sqlite"),
        clock.shared(),
        QueueLimits::default(),
    )
    .unwrap();
    b.set_consumer(ConsumerConfig {
        max_retries: 100,
        ..ConsumerConfig::http_pull("crash")
    })
    .unwrap();
    let mut ids = Vec::new();
    loop {
        let got = b
            .pull(
                "crash",
                &PullOptions {
                    batch_size: Some(100.0),
                    visibility_timeout_ms: Some(43_200_000.0),
                },
            )
            .unwrap();
        if got.messages.is_empty() {
            return ids;
        }
        ids.extend(got.messages.into_iter().map(|m| m.id));
    }
}

#[test]
fn sigkill_loses_no_acknowledged_work() {
    if std::env::var(CHILD_DIR).is_ok() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();

    // A producer killed mid-stream: every send that returned is stored.
    let mut sent: BTreeSet<String> = BTreeSet::new();
    for _ in 0..2 {
        sent.extend(ids(&run_child(dir, "produce", "sent ", 150), "sent "));
    }
    // A consumer killed mid-stream: every ack that returned is final. An ack
    // cut short by the kill may or may not have committed.
    let consumed = run_child(dir, "consume", "acked ", 100);
    let acked = ids(&consumed, "acked ");
    let uncertain: BTreeSet<String> = ids(&consumed, "acking ")
        .difference(&acked)
        .cloned()
        .collect();
    // (A send cut short by a kill may have committed unreported, so the
    // consumer may ack ids the producer never reported.)
    assert!(acked.len() >= 100);

    let remaining: BTreeSet<String> = everything_in_queue(dir).into_iter().collect();
    let redelivered: Vec<_> = remaining.intersection(&acked).collect();
    assert!(
        redelivered.is_empty(),
        "acked but redelivered: {redelivered:?}"
    );
    let lost: Vec<_> = sent
        .iter()
        .filter(|id| !acked.contains(*id) && !uncertain.contains(*id) && !remaining.contains(*id))
        .collect();
    assert!(lost.is_empty(), "sent, never acked, and lost: {lost:?}");
}
