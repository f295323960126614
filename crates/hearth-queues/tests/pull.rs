//! Pull consumers: leases, visibility timeouts, acks and retries by lease id,
//! and how unknown or lapsed leases are answered.

mod common;

use common::*;
use hearth_queues::{ConsumerConfig, PullOptions, PullRetry, QueueError};

fn pull_fixture() -> Fixture {
    let f = fixture();
    f.broker
        .set_consumer(ConsumerConfig::http_pull("q"))
        .unwrap();
    f
}

fn opts(batch_size: f64, visibility_timeout_ms: f64) -> PullOptions {
    PullOptions {
        batch_size: Some(batch_size),
        visibility_timeout_ms: Some(visibility_timeout_ms),
    }
}

#[test]
fn pull_defaults_to_five_messages_leased_for_30_seconds() {
    let f = pull_fixture();
    for i in 0..7 {
        f.send_text("q", &format!("m{i}"));
    }
    let got = f.broker.pull("q", &PullOptions::default()).unwrap();
    assert_eq!(got.messages.len(), 5);
    assert_eq!(got.message_backlog_count, 2);
    assert!(got.messages.iter().all(|m| m.attempts == 1));
    let mut leases: Vec<&str> = got.messages.iter().map(|m| m.lease_id.as_str()).collect();
    leases.dedup();
    assert_eq!(leases.len(), 5);
    assert_eq!(f.broker.stats("q").unwrap().in_flight, 5);
    f.clock.advance_ms(29_999);
    assert_eq!(
        f.broker
            .pull("q", &opts(100.0, 1000.0))
            .unwrap()
            .messages
            .len(),
        2
    );
    f.clock.advance_ms(1);
    let again = f.broker.pull("q", &opts(100.0, 1000.0)).unwrap();
    assert_eq!(again.messages.len(), 5, "lapsed leases come back");
    assert!(again.messages.iter().all(|m| m.attempts == 2));
}

#[test]
fn consumer_visibility_timeout_is_the_default() {
    let f = fixture();
    f.broker
        .set_consumer(ConsumerConfig {
            visibility_timeout_ms: Some(2_000),
            ..ConsumerConfig::http_pull("q")
        })
        .unwrap();
    f.send_text("q", "a");
    f.broker.pull("q", &PullOptions::default()).unwrap();
    f.clock.advance_ms(2_000);
    assert_eq!(
        f.broker
            .pull("q", &PullOptions::default())
            .unwrap()
            .messages
            .len(),
        1
    );
}

#[test]
fn pull_options_are_checked() {
    let f = pull_fixture();
    assert_eq!(
        err(f.broker.pull("q", &opts(101.0, 1000.0))),
        "batch_size 101 is invalid: it must be an integer from 1 to 100"
    );
    assert_eq!(
        err(f.broker.pull("q", &opts(0.0, 1000.0))),
        "batch_size 0 is invalid: it must be an integer from 1 to 100"
    );
    assert_eq!(
        err(f.broker.pull("q", &opts(2.5, 1000.0))),
        "batch_size 2.5 is invalid: it must be an integer from 1 to 100"
    );
    assert_eq!(
        err(f.broker.pull("q", &opts(1.0, 43_200_001.0))),
        "visibility_timeout_ms 43200001 is invalid: it must be an integer from 0 to 43200000"
    );
}

#[test]
fn pull_needs_an_http_pull_consumer() {
    let f = fixture();
    assert_eq!(
        err(f.broker.pull("q", &PullOptions::default())),
        "queue \"q\" has no HTTP pull consumer"
    );
    f.broker.set_consumer(eager("q")).unwrap();
    assert!(matches!(
        f.broker.pull("q", &PullOptions::default()).unwrap_err(),
        QueueError::NotPullConsumer { .. }
    ));
}

#[test]
fn acked_messages_are_deleted_and_never_redelivered() {
    let f = pull_fixture();
    f.send_text("q", "a");
    f.send_text("q", "b");
    let got = f.broker.pull("q", &opts(10.0, 1000.0)).unwrap();
    let r = f
        .broker
        .ack("q", &[got.messages[0].lease_id.clone()], &[])
        .unwrap();
    assert_eq!((r.ack_count, r.retry_count), (1, 0));
    assert!(r.warnings.is_empty());
    f.clock.advance_secs(3600);
    let again = f.broker.pull("q", &opts(10.0, 1000.0)).unwrap();
    assert_eq!(again.messages.len(), 1);
    assert_eq!(again.messages[0].id, got.messages[1].id);
    assert_eq!(f.stored_rows(), 1);
}

#[test]
fn retry_by_lease_returns_the_message_after_its_delay() {
    let f = pull_fixture();
    f.send_text("q", "a");
    let got = f.broker.pull("q", &opts(1.0, 60_000.0)).unwrap();
    let r = f
        .broker
        .ack(
            "q",
            &[],
            &[PullRetry {
                lease_id: got.messages[0].lease_id.clone(),
                delay_seconds: Some(10.0),
            }],
        )
        .unwrap();
    assert_eq!(r.retry_count, 1);
    assert_eq!(f.broker.stats("q").unwrap().delayed, 1);
    f.clock.advance_ms(9_999);
    assert!(
        f.broker
            .pull("q", &opts(1.0, 1000.0))
            .unwrap()
            .messages
            .is_empty()
    );
    f.clock.advance_ms(1);
    let again = f.broker.pull("q", &opts(1.0, 1000.0)).unwrap();
    assert_eq!(again.messages[0].attempts, 2);
    assert_ne!(again.messages[0].lease_id, got.messages[0].lease_id);
}

#[test]
fn retry_delay_of_an_ack_request_is_checked() {
    let f = pull_fixture();
    f.send_text("q", "a");
    let got = f.broker.pull("q", &PullOptions::default()).unwrap();
    let lease = got.messages[0].lease_id.clone();
    assert_eq!(
        err(f.broker.ack(
            "q",
            std::slice::from_ref(&lease),
            &[PullRetry {
                lease_id: lease.clone(),
                delay_seconds: Some(86_401.0)
            }]
        )),
        "retry delay 86401 is invalid: delaySeconds must be an integer from 0 to 86400"
    );
    assert_eq!(f.stored_rows(), 1, "a refused request changes nothing");
}

#[test]
fn an_ack_after_the_visibility_timeout_is_still_accepted() {
    let f = pull_fixture();
    f.send_text("q", "a");
    let first = f.broker.pull("q", &opts(1.0, 1000.0)).unwrap();
    f.clock.advance_secs(5);
    let second = f.broker.pull("q", &opts(1.0, 1000.0)).unwrap();
    assert_eq!(second.messages[0].attempts, 2);
    // The first consumer's lease lapsed, and it may still acknowledge.
    let r = f
        .broker
        .ack("q", &[first.messages[0].lease_id.clone()], &[])
        .unwrap();
    assert_eq!(r.ack_count, 1);
    assert_eq!(f.stored_rows(), 0);
    // The second consumer's ack finds nothing left: a warning, not an error.
    let r = f
        .broker
        .ack("q", &[second.messages[0].lease_id.clone()], &[])
        .unwrap();
    assert_eq!(r.ack_count, 0);
    assert_eq!(r.warnings.len(), 1);
    assert!(
        r.warnings[0].contains("no longer in the queue"),
        "{:?}",
        r.warnings
    );
}

#[test]
fn a_retry_on_a_lapsed_lease_is_ignored_with_a_warning() {
    let f = pull_fixture();
    f.send_text("q", "a");
    let first = f.broker.pull("q", &opts(1.0, 1000.0)).unwrap();
    f.clock.advance_secs(2);
    f.broker.stats("q").unwrap(); // the lapse is noticed and counted
    let r = f
        .broker
        .ack(
            "q",
            &[],
            &[PullRetry {
                lease_id: first.messages[0].lease_id.clone(),
                delay_seconds: None,
            }],
        )
        .unwrap();
    assert_eq!(r.retry_count, 0);
    assert!(r.warnings[0].contains("has lapsed"), "{:?}", r.warnings);
    let again = f.broker.pull("q", &opts(1.0, 1000.0)).unwrap();
    assert_eq!(again.messages[0].attempts, 2, "counted once, not twice");
}

#[test]
fn unknown_lease_ids_get_warnings() {
    let f = pull_fixture();
    let r = f
        .broker
        .ack("q", &["nope".to_string(), "0".repeat(48)], &[])
        .unwrap();
    assert_eq!(r.ack_count, 0);
    assert_eq!(
        r.warnings,
        [
            "lease nope is not a lease id of this queue; ignored".to_string(),
            format!(
                "lease {}: its message is no longer in the queue; ignored",
                "0".repeat(48)
            ),
        ]
    );
}

#[test]
fn a_lease_of_one_queue_does_not_ack_another() {
    let f = pull_fixture();
    f.broker
        .set_consumer(ConsumerConfig::http_pull("other"))
        .unwrap();
    f.send_text("q", "a");
    let got = f.broker.pull("q", &PullOptions::default()).unwrap();
    let r = f
        .broker
        .ack("other", &[got.messages[0].lease_id.clone()], &[])
        .unwrap();
    assert_eq!(r.ack_count, 0);
    assert_eq!(f.stored_rows(), 1);
}

#[test]
fn lapsed_pull_leases_count_toward_max_retries() {
    let f = fixture();
    f.broker
        .set_consumer(ConsumerConfig {
            max_retries: 1,
            dead_letter_queue: Some("dead".into()),
            ..ConsumerConfig::http_pull("q")
        })
        .unwrap();
    f.send_text("q", "a");
    for attempt in 1..=2 {
        let got = f.broker.pull("q", &opts(1.0, 1000.0)).unwrap();
        assert_eq!(got.messages[0].attempts, attempt);
        f.clock.advance_secs(1);
    }
    assert!(
        f.broker
            .pull("q", &opts(1.0, 1000.0))
            .unwrap()
            .messages
            .is_empty()
    );
    assert_eq!(f.broker.stats("q").unwrap().dlq_depth, Some(1));
}
