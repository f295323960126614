//! Shared set-up: a broker in a temporary directory on a manual clock.

#![allow(dead_code)]

use std::path::PathBuf;

use hearth_core::ManualClock;
use hearth_queues::{
    BatchOutcome, ConsumerConfig, LeasedBatch, QueueBroker, QueueContentType, QueueLimits,
    QueueSendOptions,
};

/// 2026-01-01T00:00:00Z, in milliseconds.
pub const START_MS: u64 = 1_767_225_600_000;

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub clock: ManualClock,
    pub broker: QueueBroker,
}

impl Fixture {
    pub fn path(&self) -> PathBuf {
        self.dir.path().join("queues.sqlite")
    }

    /// Another broker over the same file, as after a restart.
    pub fn reopen(&self) -> QueueBroker {
        QueueBroker::open(&self.path(), self.clock.shared(), QueueLimits::default()).unwrap()
    }

    pub fn send_text(&self, queue: &str, text: &str) -> String {
        self.broker
            .send(queue, text.as_bytes().to_vec(), &text_options())
            .unwrap()
    }

    /// Rows physically present, in any queue or state.
    pub fn stored_rows(&self) -> i64 {
        let conn = rusqlite::Connection::open(self.path()).unwrap();
        conn.query_row("SELECT count(*) FROM queue_messages", [], |r| r.get(0))
            .unwrap()
    }
}

pub fn fixture() -> Fixture {
    fixture_with(QueueLimits::default())
}

pub fn fixture_with(limits: QueueLimits) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(START_MS);
    let broker =
        QueueBroker::open(&dir.path().join("queues.sqlite"), clock.shared(), limits).unwrap();
    Fixture { dir, clock, broker }
}

/// A push consumer that delivers as soon as one message is ready.
pub fn eager(queue: &str) -> ConsumerConfig {
    ConsumerConfig {
        max_batch_timeout_secs: 0,
        ..ConsumerConfig::worker(queue)
    }
}

pub fn text_options() -> QueueSendOptions {
    QueueSendOptions {
        content_type: QueueContentType::Text,
        delay_seconds: None,
    }
}

pub fn bodies(batch: &LeasedBatch) -> Vec<String> {
    batch
        .messages
        .iter()
        .map(|m| String::from_utf8(m.body.clone()).unwrap())
        .collect()
}

/// Ack everything: a handler that returned without calling anything.
pub fn ok(batch: &LeasedBatch) -> BatchOutcome {
    batch.outcome()
}

/// A handler that threw.
pub fn throw(batch: &LeasedBatch) -> BatchOutcome {
    let mut o = batch.outcome();
    o.set_threw();
    o
}

/// The `Display` of an error result, for exact-message assertions.
pub fn err<T: std::fmt::Debug>(r: hearth_queues::Result<T>) -> String {
    r.expect_err("expected an error").to_string()
}
