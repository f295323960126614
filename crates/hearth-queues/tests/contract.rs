//! The Queues contract, each rule run on the embedded SQLite backend and on
//! NATS JetStream (each JetStream run under a stream prefix of its own,
//! whose streams it deletes at the end). Without a reachable NATS the
//! JetStream runs are skipped with a reason, unless
//! `HEARTH_TEST_REQUIRE_CLUSTER=1` (CI sets it).
//!
//! JetStream hands out work asynchronously (a delayed message is looked at
//! again after `delay_recheck_ms` of real time), so reads that follow a
//! clock move poll with a bounded real deadline through [`Env::eventually`].

use std::sync::Mutex;
use std::time::{Duration, Instant};

use hearth_cluster::Nats;
use hearth_core::ManualClock;
use hearth_queues::{
    BatchOutcome, ConsumerConfig, JetStreamOptions, LeasedBatch, MessageSendRequest, PullOptions,
    PullRetry, QueueBroker, QueueContentType, QueueLimits, QueueRetryOptions,
    QueueSendBatchOptions, QueueSendOptions,
};

/// 2026-01-01T00:00:00Z, in milliseconds.
const START_MS: u64 = 1_767_225_600_000;
/// How long a JetStream test waits for work that is due.
const PATIENCE: Duration = Duration::from_secs(15);

fn nats_url() -> String {
    std::env::var("HEARTH_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

enum Kind {
    Sqlite(tempfile::TempDir),
    JetStream { prefix: String },
}

/// One backend shared by every node a test opens, on one manual clock.
struct Env {
    kind: Kind,
    clock: ManualClock,
    nodes: Mutex<Vec<QueueBroker>>,
}

impl Env {
    /// Another broker over the same messages: a second node, or the same
    /// node after a restart.
    fn node(&self) -> QueueBroker {
        let broker = match &self.kind {
            Kind::Sqlite(dir) => QueueBroker::open(
                &dir.path().join("queues.sqlite"),
                self.clock.shared(),
                QueueLimits::default(),
            )
            .unwrap(),
            Kind::JetStream { prefix } => {
                let nats = Nats::connect(&nats_url(), prefix).unwrap();
                QueueBroker::open_jetstream(
                    nats,
                    JetStreamOptions {
                        ack_wait_ms: 2_000,
                        delay_recheck_ms: 100,
                        replicas: 1,
                    },
                    self.clock.shared(),
                    QueueLimits::default(),
                )
                .unwrap()
            }
        };
        self.nodes.lock().unwrap().push(broker.clone());
        broker
    }

    fn is_jetstream(&self) -> bool {
        matches!(self.kind, Kind::JetStream { .. })
    }

    /// Polls `f` until it gives `Some`, for at most [`PATIENCE`].
    fn eventually<T>(&self, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
        let start = Instant::now();
        loop {
            if let Some(v) = f() {
                return v;
            }
            assert!(start.elapsed() < PATIENCE, "gave up waiting for {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Checks `f` gives `None` now and for a while (long enough for a
    /// JetStream recheck to have happened).
    fn never<T: std::fmt::Debug>(&self, what: &str, mut f: impl FnMut() -> Option<T>) {
        let rounds = if self.is_jetstream() { 6 } else { 1 };
        for _ in 0..rounds {
            if let Some(v) = f() {
                panic!("{what}: got {v:?}");
            }
            if self.is_jetstream() {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }

    fn batch(&self, broker: &QueueBroker, queue: &str) -> LeasedBatch {
        self.eventually(&format!("a batch of {queue}"), || {
            broker.next_push_batch(queue).unwrap()
        })
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Kind::JetStream { .. } = self.kind {
            let nodes = self.nodes.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(b) = nodes.first() {
                if let Ok(queues) = b.list_queues() {
                    for q in queues {
                        let _ = b.declare_queue(&q);
                    }
                }
                let _ = b.delete_streams();
            }
        }
    }
}

fn run_on_sqlite(test: fn(&Env)) {
    let env = Env {
        kind: Kind::Sqlite(tempfile::tempdir().unwrap()),
        clock: ManualClock::new(START_MS),
        nodes: Mutex::new(Vec::new()),
    };
    test(&env);
}

fn run_on_jetstream(test: fn(&Env)) {
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes).unwrap();
    let prefix = format!("t{}", hex::encode(bytes));
    if let Err(e) = Nats::connect(&nats_url(), &prefix) {
        if std::env::var("HEARTH_TEST_REQUIRE_CLUSTER").as_deref() == Ok("1") {
            panic!("NATS JetStream is required (HEARTH_TEST_REQUIRE_CLUSTER=1): {e}");
        }
        eprintln!("skipped: {e}; set HEARTH_TEST_REQUIRE_CLUSTER=1 to fail instead");
        return;
    }
    let env = Env {
        kind: Kind::JetStream { prefix },
        clock: ManualClock::new(START_MS),
        nodes: Mutex::new(Vec::new()),
    };
    test(&env);
}

macro_rules! on_both {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(#[test] fn $test() { super::run_on_sqlite(super::$test); })*
        }
        mod jetstream {
            $(#[test] fn $test() { super::run_on_jetstream(super::$test); })*
        }
    };
}

on_both!(
    a_full_batch_is_delivered_and_acked_messages_are_gone,
    a_partial_batch_waits_for_max_batch_timeout,
    batches_hold_at_most_max_batch_size,
    a_throw_retries_and_attempts_count_deliveries,
    a_retry_delay_follows_the_clock,
    retries_used_up_move_to_the_dead_letter_queue,
    retries_used_up_without_a_dead_letter_queue_drop_the_message,
    a_delayed_send_is_delivered_once_its_time_comes,
    limits_are_enforced_with_cloudflares_messages,
    pull_consumers_ack_and_retry_by_lease_id,
    an_acknowledged_send_is_seen_by_another_node,
    a_batch_goes_to_exactly_one_node,
    a_dead_nodes_batch_is_redelivered_as_a_failed_attempt,
    explicit_acks_and_retries_settle_each_message,
);

fn text(body: &str) -> (Vec<u8>, QueueSendOptions) {
    (
        body.as_bytes().to_vec(),
        QueueSendOptions {
            content_type: QueueContentType::Text,
            delay_seconds: None,
        },
    )
}

fn send(b: &QueueBroker, queue: &str, body: &str) -> String {
    let (body, options) = text(body);
    b.send(queue, body, &options).unwrap()
}

fn bodies(batch: &LeasedBatch) -> Vec<String> {
    batch
        .messages
        .iter()
        .map(|m| String::from_utf8(m.body.clone()).unwrap())
        .collect()
}

fn eager(queue: &str, size: u32) -> ConsumerConfig {
    ConsumerConfig {
        max_batch_size: size,
        max_batch_timeout_secs: 0,
        ..ConsumerConfig::worker(queue)
    }
}

fn threw(batch: &LeasedBatch) -> BatchOutcome {
    let mut o = batch.outcome();
    o.set_threw();
    o
}

fn a_full_batch_is_delivered_and_acked_messages_are_gone(env: &Env) {
    let b = env.node();
    b.set_consumer(ConsumerConfig {
        max_batch_size: 3,
        ..ConsumerConfig::worker("q")
    })
    .unwrap();
    let ids: Vec<String> = ["a", "b", "c"].iter().map(|s| send(&b, "q", s)).collect();
    let batch = env.batch(&b, "q");
    assert_eq!(bodies(&batch), ["a", "b", "c"]);
    assert_eq!(
        batch
            .messages
            .iter()
            .map(|m| m.id.clone())
            .collect::<Vec<_>>(),
        ids
    );
    assert!(batch.messages.iter().all(|m| m.attempts == 1));
    assert!(batch.messages.iter().all(|m| m.timestamp_ms == START_MS));
    assert!(
        batch
            .messages
            .iter()
            .all(|m| m.content_type == QueueContentType::Text)
    );
    assert_eq!(b.stats("q").unwrap().in_flight, 3);
    let report = b.settle(&batch, &batch.outcome()).unwrap();
    assert_eq!(report.acked, 3);
    env.clock.advance_secs(3600);
    env.never("a batch after every message was acked", || {
        b.next_push_batch("q").unwrap()
    });
    let stats = b.stats("q").unwrap();
    assert_eq!((stats.depth, stats.in_flight), (0, 0));
}

fn a_partial_batch_waits_for_max_batch_timeout(env: &Env) {
    let b = env.node();
    b.set_consumer(ConsumerConfig::worker("q")).unwrap();
    send(&b, "q", "a");
    send(&b, "q", "b");
    // Default max_batch_timeout is 5 s, counted from the oldest message.
    env.clock.advance_ms(4_999);
    env.never("a batch before max_batch_timeout", || {
        b.next_push_batch("q").unwrap()
    });
    env.clock.advance_ms(1);
    let batch = env.batch(&b, "q");
    assert_eq!(bodies(&batch), ["a", "b"]);
}

fn batches_hold_at_most_max_batch_size(env: &Env) {
    let b = env.node();
    b.set_consumer(eager("q", 2)).unwrap();
    for s in ["a", "b", "c", "d", "e"] {
        send(&b, "q", s);
    }
    let mut seen = Vec::new();
    while seen.len() < 5 {
        let batch = env.batch(&b, "q");
        assert!(
            batch.messages.len() <= 2,
            "batch of {}",
            batch.messages.len()
        );
        seen.extend(bodies(&batch));
        b.settle(&batch, &batch.outcome()).unwrap();
    }
    assert_eq!(seen, ["a", "b", "c", "d", "e"]);
}

fn a_throw_retries_and_attempts_count_deliveries(env: &Env) {
    let b = env.node();
    b.set_consumer(eager("q", 10)).unwrap();
    let id = send(&b, "q", "x");
    for attempt in 1..=3 {
        let batch = env.batch(&b, "q");
        assert_eq!(batch.messages.len(), 1);
        assert_eq!(batch.messages[0].id, id);
        assert_eq!(batch.messages[0].attempts, attempt);
        let report = b.settle(&batch, &threw(&batch)).unwrap();
        assert_eq!(report.retried, 1);
    }
}

fn a_retry_delay_follows_the_clock(env: &Env) {
    let b = env.node();
    b.set_consumer(eager("q", 10)).unwrap();
    send(&b, "q", "x");
    let batch = env.batch(&b, "q");
    let mut outcome = batch.outcome();
    outcome
        .retry(
            &batch.messages[0].id,
            &QueueRetryOptions {
                delay_seconds: Some(30.0),
            },
        )
        .unwrap();
    assert_eq!(b.settle(&batch, &outcome).unwrap().retried, 1);
    env.clock.advance_secs(29);
    env.never("a retried message before its delay", || {
        b.next_push_batch("q").unwrap()
    });
    assert_eq!(b.stats("q").unwrap().delayed, 1);
    env.clock.advance_secs(1);
    let again = env.batch(&b, "q");
    assert_eq!(bodies(&again), ["x"]);
    assert_eq!(again.messages[0].attempts, 2);
    assert_eq!(again.messages[0].id, batch.messages[0].id);
}

fn retries_used_up_move_to_the_dead_letter_queue(env: &Env) {
    let b = env.node();
    b.set_consumer(ConsumerConfig {
        max_retries: 1,
        dead_letter_queue: Some("dlq".into()),
        ..eager("q", 10)
    })
    .unwrap();
    b.set_consumer(eager("dlq", 10)).unwrap();
    let id = send(&b, "q", "poison");
    let first = env.batch(&b, "q");
    assert_eq!(b.settle(&first, &threw(&first)).unwrap().retried, 1);
    let second = env.batch(&b, "q");
    assert_eq!(second.messages[0].attempts, 2);
    let report = b.settle(&second, &threw(&second)).unwrap();
    assert_eq!((report.retried, report.dead_lettered), (0, 1));
    let dead = env.batch(&b, "dlq");
    assert_eq!(bodies(&dead), ["poison"]);
    assert_eq!(dead.messages[0].id, id, "the id is kept");
    assert_eq!(dead.messages[0].attempts, 1, "attempts start again");
    b.settle(&dead, &dead.outcome()).unwrap();
    env.never("the message back in its queue", || {
        b.next_push_batch("q").unwrap()
    });
}

fn retries_used_up_without_a_dead_letter_queue_drop_the_message(env: &Env) {
    let b = env.node();
    b.set_consumer(ConsumerConfig {
        max_retries: 0,
        ..eager("q", 10)
    })
    .unwrap();
    send(&b, "q", "x");
    let batch = env.batch(&b, "q");
    let report = b.settle(&batch, &threw(&batch)).unwrap();
    assert_eq!(report.dropped, 1);
    env.never("a dropped message", || b.next_push_batch("q").unwrap());
    assert_eq!(b.stats("q").unwrap().depth, 0);
}

fn a_delayed_send_is_delivered_once_its_time_comes(env: &Env) {
    let b = env.node();
    b.set_consumer(eager("q", 10)).unwrap();
    let (body, mut options) = text("later");
    options.delay_seconds = Some(10.0);
    b.send("q", body, &options).unwrap();
    b.send_batch(
        "q",
        vec![MessageSendRequest::new("batch", QueueContentType::Text)],
        &QueueSendBatchOptions {
            delay_seconds: Some(20.0),
        },
    )
    .unwrap();
    assert_eq!(b.stats("q").unwrap().delayed, 2);
    env.clock.advance_secs(9);
    env.never("a delayed message before its time", || {
        b.next_push_batch("q").unwrap()
    });
    env.clock.advance_secs(1);
    let first = env.batch(&b, "q");
    assert_eq!(bodies(&first), ["later"]);
    assert_eq!(
        first.messages[0].timestamp_ms, START_MS,
        "sent at, not visible at"
    );
    b.settle(&first, &first.outcome()).unwrap();
    env.clock.advance_secs(10);
    let second = env.batch(&b, "q");
    assert_eq!(bodies(&second), ["batch"]);
}

fn limits_are_enforced_with_cloudflares_messages(env: &Env) {
    let b = env.node();
    let (_, options) = text("");
    let err = b.send("q", vec![b'x'; 128_001], &options).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Queue send failed: message length of 128001 bytes exceeds limit of 128000"
    );
    let many = (0..101)
        .map(|_| MessageSendRequest::new("x", QueueContentType::Text))
        .collect();
    let err = b
        .send_batch("q", many, &QueueSendBatchOptions::default())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Queue sendBatch failed: batch message count of 101 exceeds limit of 100"
    );
    let (body, mut options) = text("x");
    options.delay_seconds = Some(86_401.0);
    assert!(b.send("q", body, &options).is_err());
    assert_eq!(b.stats("q").unwrap().depth, 0, "nothing refused was stored");
}

fn pull_consumers_ack_and_retry_by_lease_id(env: &Env) {
    let b = env.node();
    b.set_consumer(ConsumerConfig::http_pull("q")).unwrap();
    for s in ["a", "b", "c"] {
        send(&b, "q", s);
    }
    let options = PullOptions {
        batch_size: Some(2.0),
        visibility_timeout_ms: None,
    };
    let first = env.eventually("a pull", || {
        let r = b.pull("q", &options).unwrap();
        (!r.messages.is_empty()).then_some(r)
    });
    assert_eq!(first.messages.len(), 2);
    assert!(first.messages.iter().all(|m| m.attempts == 1));
    let acked = b
        .ack(
            "q",
            &[first.messages[0].lease_id.clone()],
            &[PullRetry {
                lease_id: first.messages[1].lease_id.clone(),
                delay_seconds: None,
            }],
        )
        .unwrap();
    assert_eq!((acked.ack_count, acked.retry_count), (1, 1));
    assert!(acked.warnings.is_empty(), "{:?}", acked.warnings);
    let bogus = b.ack("q", &["not-a-lease".into()], &[]).unwrap();
    assert_eq!(bogus.ack_count, 0);
    assert_eq!(bogus.warnings.len(), 1);
    let mut rest = Vec::new();
    env.eventually("the retried and the third message", || {
        let r = b
            .pull(
                "q",
                &PullOptions {
                    batch_size: Some(10.0),
                    visibility_timeout_ms: None,
                },
            )
            .unwrap();
        rest.extend(r.messages);
        (rest.len() >= 2).then_some(())
    });
    rest.sort_by(|x, y| x.body.cmp(&y.body));
    let got: Vec<(Vec<u8>, u32)> = rest.iter().map(|m| (m.body.clone(), m.attempts)).collect();
    assert_eq!(got, [(b"b".to_vec(), 2), (b"c".to_vec(), 1)]);
    let lease: Vec<String> = rest.iter().map(|m| m.lease_id.clone()).collect();
    assert_eq!(b.ack("q", &lease, &[]).unwrap().ack_count, 2);
    assert_eq!(b.stats("q").unwrap().depth, 0);
    let again = b.ack("q", &lease[..1], &[]).unwrap();
    assert_eq!(again.ack_count, 0, "an acked message is acked once");
    assert!(
        again.warnings[0].ends_with("its message is no longer in the queue; ignored"),
        "{:?}",
        again.warnings
    );
}

fn an_acknowledged_send_is_seen_by_another_node(env: &Env) {
    let producer = env.node();
    let id = send(&producer, "q", "durable");
    drop(producer);
    let consumer = env.node();
    consumer.set_consumer(eager("q", 10)).unwrap();
    let batch = env.batch(&consumer, "q");
    assert_eq!(batch.messages[0].id, id);
    assert_eq!(bodies(&batch), ["durable"]);
}

fn a_batch_goes_to_exactly_one_node(env: &Env) {
    let a = env.node();
    let b = env.node();
    for n in [&a, &b] {
        n.set_consumer(eager("q", 100)).unwrap();
    }
    for i in 0..20 {
        send(if i % 2 == 0 { &a } else { &b }, "q", &format!("m{i}"));
    }
    let mut seen = Vec::new();
    let mut batches = Vec::new();
    env.eventually("all 20 messages", || {
        for n in [&a, &b] {
            if let Some(batch) = n.next_push_batch("q").unwrap() {
                seen.extend(bodies(&batch));
                batches.push((n.clone(), batch));
            }
        }
        (seen.len() >= 20).then_some(())
    });
    seen.sort();
    let mut want: Vec<String> = (0..20).map(|i| format!("m{i}")).collect();
    want.sort();
    assert_eq!(seen, want, "each message delivered once");
    for (n, batch) in &batches {
        n.settle(batch, &batch.outcome()).unwrap();
    }
}

fn a_dead_nodes_batch_is_redelivered_as_a_failed_attempt(env: &Env) {
    let doomed = env.node();
    doomed.set_consumer(eager("q", 10)).unwrap();
    let id = send(&doomed, "q", "x");
    let batch = env.batch(&doomed, "q");
    assert_eq!(batch.messages[0].attempts, 1);
    // The node goes away without settling: nothing of it runs any more.
    env.nodes.lock().unwrap().clear();
    drop(doomed);
    let survivor = env.node();
    survivor.set_consumer(eager("q", 10)).unwrap();
    survivor.recover_push_leases().unwrap();
    let again = env.eventually("the dead node's message", || {
        env.clock.advance_ms(1_000);
        survivor.next_push_batch("q").unwrap()
    });
    assert_eq!(again.messages[0].id, id);
    assert_eq!(again.messages[0].attempts, 2, "the lost delivery counted");
    survivor.settle(&again, &again.outcome()).unwrap();
}

fn explicit_acks_and_retries_settle_each_message(env: &Env) {
    let b = env.node();
    b.set_consumer(eager("q", 10)).unwrap();
    for s in ["keep", "again", "implicit"] {
        send(&b, "q", s);
    }
    let batch = env.eventually("three messages", || {
        let batch = b.next_push_batch("q").unwrap()?;
        if batch.messages.len() == 3 {
            Some(batch)
        } else {
            b.settle(&batch, &threw(&batch)).unwrap();
            None
        }
    });
    let mut outcome = batch.outcome();
    let id = |body: &str| {
        batch
            .messages
            .iter()
            .find(|m| m.body == body.as_bytes())
            .unwrap()
            .id
            .clone()
    };
    assert!(outcome.ack(&id("keep")));
    outcome
        .retry(&id("again"), &QueueRetryOptions::default())
        .unwrap();
    let report = b.settle(&batch, &outcome).unwrap();
    assert_eq!((report.acked, report.retried), (2, 1));
    let again = env.batch(&b, "q");
    assert_eq!(bodies(&again), ["again"]);
    b.settle(&again, &again.outcome()).unwrap();
}
