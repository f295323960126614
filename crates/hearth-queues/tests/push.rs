//! Push consumers: batching by size and by timeout, implicit and explicit
//! acknowledgement, retries with delays and attempt counting, dead-letter
//! queues, max_concurrency and lease lapses.

mod common;

use common::*;
use hearth_queues::{ConsumerConfig, MessageDecision, QueueError, QueueRetryOptions, SettleReport};

fn retry_in(secs: f64) -> QueueRetryOptions {
    QueueRetryOptions {
        delay_seconds: Some(secs),
    }
}

#[test]
fn a_full_batch_is_delivered_at_once() {
    let f = fixture();
    f.broker
        .set_consumer(ConsumerConfig {
            max_batch_size: 3,
            ..ConsumerConfig::worker("q")
        })
        .unwrap();
    f.send_text("q", "a");
    f.send_text("q", "b");
    assert!(f.broker.next_push_batch("q").unwrap().is_none());
    f.send_text("q", "c");
    f.send_text("q", "d");
    assert_eq!(f.broker.next_due().unwrap(), Some(START_MS));
    let batch = f.broker.next_push_batch("q").unwrap().unwrap();
    assert_eq!(bodies(&batch), ["a", "b", "c"]);
    assert!(batch.messages.iter().all(|m| m.attempts == 1));
    assert_eq!(f.broker.stats("q").unwrap().in_flight, 3);
}

#[test]
fn a_partial_batch_waits_for_max_batch_timeout() {
    let f = fixture();
    f.broker.set_consumer(ConsumerConfig::worker("q")).unwrap();
    assert_eq!(f.broker.next_due().unwrap(), None, "nothing pending");
    f.send_text("q", "a");
    f.clock.advance_ms(1_000);
    f.send_text("q", "b");
    // Default max_batch_timeout is 5 s, counted from the oldest message.
    assert_eq!(f.broker.next_due().unwrap(), Some(START_MS + 5_000));
    f.clock.advance_ms(3_999);
    assert!(f.broker.next_push_batch("q").unwrap().is_none());
    f.clock.advance_ms(1);
    let batch = f.broker.next_push_batch("q").unwrap().unwrap();
    assert_eq!(bodies(&batch), ["a", "b"]);
}

#[test]
fn returning_without_calls_acknowledges_the_whole_batch() {
    let f = fixture();
    f.broker.set_consumer(eager("q")).unwrap();
    f.send_text("q", "a");
    f.send_text("q", "b");
    let report = f.broker.tick(ok).unwrap();
    assert_eq!(report.batches, 1);
    assert_eq!(report.settled.acked, 2);
    assert_eq!(f.stored_rows(), 0);
    f.clock.advance_secs(3600);
    assert_eq!(
        f.broker.tick(ok).unwrap().batches,
        0,
        "acked: never redelivered"
    );
}

#[test]
fn a_throwing_handler_retries_the_whole_batch_with_attempts_counted() {
    let f = fixture();
    f.broker
        .set_consumer(ConsumerConfig {
            retry_delay_secs: Some(30),
            ..eager("q")
        })
        .unwrap();
    f.send_text("q", "a");
    f.send_text("q", "b");
    let report = f.broker.tick(throw).unwrap();
    assert_eq!(report.settled.retried, 2);
    assert_eq!(
        f.broker.stats("q").unwrap().delayed,
        2,
        "retry_delay applies"
    );
    f.clock.advance_secs(29);
    assert!(f.broker.next_push_batch("q").unwrap().is_none());
    f.clock.advance_secs(1);
    let batch = f.broker.next_push_batch("q").unwrap().unwrap();
    assert_eq!(bodies(&batch), ["a", "b"]);
    assert!(batch.messages.iter().all(|m| m.attempts == 2));
}

#[test]
fn retry_with_delay_redelivers_that_message_later() {
    let f = fixture();
    f.broker.set_consumer(eager("q")).unwrap();
    f.send_text("q", "a");
    f.send_text("q", "b");
    let batch = f.broker.next_push_batch("q").unwrap().unwrap();
    let mut outcome = batch.outcome();
    assert!(
        outcome
            .retry(&batch.messages[0].id, &retry_in(10.0))
            .unwrap()
    );
    let report = f.broker.settle(&batch, &outcome).unwrap();
    assert_eq!((report.acked, report.retried), (1, 1));
    f.clock.advance_ms(9_999);
    assert!(f.broker.next_push_batch("q").unwrap().is_none());
    f.clock.advance_ms(1);
    let again = f.broker.next_push_batch("q").unwrap().unwrap();
    assert_eq!(bodies(&again), ["a"]);
    assert_eq!(again.messages[0].attempts, 2);
    assert_eq!(again.messages[0].id, batch.messages[0].id);
}

#[test]
fn explicitly_acked_messages_survive_a_throw() {
    let f = fixture();
    f.broker
        .set_consumer(ConsumerConfig {
            max_batch_size: 4,
            ..eager("q")
        })
        .unwrap();
    for s in ["a", "b", "c", "d"] {
        f.send_text("q", s);
    }
    let batch = f.broker.next_push_batch("q").unwrap().unwrap();
    let ids: Vec<&str> = batch.messages.iter().map(|m| m.id.as_str()).collect();
    let mut outcome = batch.outcome();
    outcome.ack(ids[0]);
    outcome
        .retry(ids[1], &QueueRetryOptions::default())
        .unwrap();
    outcome.set_threw();
    let report = f.broker.settle(&batch, &outcome).unwrap();
    assert_eq!((report.acked, report.retried), (1, 3));
    let again = f.broker.next_push_batch("q").unwrap().unwrap();
    assert_eq!(bodies(&again), ["b", "c", "d"]);
}

#[test]
fn explicit_retries_with_a_returning_handler_ack_the_rest() {
    let f = fixture();
    f.broker.set_consumer(eager("q")).unwrap();
    for s in ["a", "b", "c"] {
        f.send_text("q", s);
    }
    let batch = f.broker.next_push_batch("q").unwrap().unwrap();
    let mut outcome = batch.outcome();
    outcome
        .retry(&batch.messages[1].id, &QueueRetryOptions::default())
        .unwrap();
    let report = f.broker.settle(&batch, &outcome).unwrap();
    assert_eq!((report.acked, report.retried), (2, 1));
    assert_eq!(
        bodies(&f.broker.next_push_batch("q").unwrap().unwrap()),
        ["b"]
    );
}

#[test]
fn first_call_wins_and_message_calls_beat_later_batch_calls() {
    let f = fixture();
    f.broker.set_consumer(eager("q")).unwrap();
    for s in ["a", "b", "c"] {
        f.send_text("q", s);
    }
    let batch = f.broker.next_push_batch("q").unwrap().unwrap();
    let (a, b, c) = (
        batch.messages[0].id.as_str(),
        batch.messages[1].id.as_str(),
        batch.messages[2].id.as_str(),
    );
    let mut o = batch.outcome();
    assert!(o.ack(a));
    assert!(
        !o.retry(a, &retry_in(5.0)).unwrap(),
        "ack then retry: acked"
    );
    assert!(o.retry(b, &retry_in(7.0)).unwrap());
    assert!(!o.ack(b), "retry then ack: retried");
    assert!(o.retry_all(&retry_in(60.0)).unwrap());
    assert!(!o.ack_all(), "retryAll then ackAll: retryAll wins");
    assert!(!o.ack(c), "a message call after retryAll has no effect");
    assert_eq!(o.decision(a), MessageDecision::Ack);
    assert_eq!(
        o.decision(b),
        MessageDecision::Retry {
            delay_seconds: Some(7)
        }
    );
    assert_eq!(
        o.decision(c),
        MessageDecision::Retry {
            delay_seconds: Some(60)
        }
    );
    f.broker.settle(&batch, &o).unwrap();
    f.clock.advance_secs(7);
    assert_eq!(
        bodies(&f.broker.next_push_batch("q").unwrap().unwrap()),
        ["b"]
    );
    f.clock.advance_secs(53);
    assert_eq!(
        bodies(&f.broker.next_push_batch("q").unwrap().unwrap()),
        ["c"]
    );
}

#[test]
fn ack_all_holds_even_if_the_handler_throws_afterwards() {
    let f = fixture();
    f.broker.set_consumer(eager("q")).unwrap();
    f.send_text("q", "a");
    f.send_text("q", "b");
    let batch = f.broker.next_push_batch("q").unwrap().unwrap();
    let mut o = batch.outcome();
    assert!(
        o.retry(&batch.messages[0].id, &QueueRetryOptions::default())
            .unwrap()
    );
    assert!(o.ack_all());
    assert!(!o.retry_all(&QueueRetryOptions::default()).unwrap());
    assert!(
        !o.retry(&batch.messages[1].id, &QueueRetryOptions::default())
            .unwrap()
    );
    o.set_threw();
    let report = f.broker.settle(&batch, &o).unwrap();
    assert_eq!((report.acked, report.retried), (1, 1));
}

#[test]
fn retry_delay_is_checked() {
    let f = fixture();
    f.broker.set_consumer(eager("q")).unwrap();
    f.send_text("q", "a");
    let batch = f.broker.next_push_batch("q").unwrap().unwrap();
    let mut o = batch.outcome();
    assert_eq!(
        o.retry(&batch.messages[0].id, &retry_in(86_401.0))
            .unwrap_err()
            .to_string(),
        "retry delay 86401 is invalid: delaySeconds must be an integer from 0 to 86400"
    );
    assert_eq!(
        o.retry_all(&retry_in(-3.0)).unwrap_err().to_string(),
        "retry delay -3 is invalid: delaySeconds must be an integer from 0 to 86400"
    );
    // Nothing was recorded: the message is still undecided.
    assert_eq!(o.decision(&batch.messages[0].id), MessageDecision::Ack);
}

#[test]
fn after_max_retries_a_message_moves_to_the_dead_letter_queue() {
    let f = fixture();
    f.broker
        .set_consumer(ConsumerConfig {
            max_retries: 2,
            dead_letter_queue: Some("dead".into()),
            ..eager("q")
        })
        .unwrap();
    let id = f.send_text("q", "poison");
    f.clock.advance_secs(1);
    let mut attempts = Vec::new();
    let mut last = SettleReport::default();
    for _ in 0..3 {
        let batch = f.broker.next_push_batch("q").unwrap().unwrap();
        attempts.push(batch.messages[0].attempts);
        last = f.broker.settle(&batch, &throw(&batch)).unwrap();
    }
    assert_eq!(attempts, [1, 2, 3], "max_retries 2: three deliveries");
    assert_eq!(last.dead_lettered, 1);
    assert!(f.broker.next_push_batch("q").unwrap().is_none());
    let stats = f.broker.stats("q").unwrap();
    assert_eq!((stats.depth, stats.dlq_depth), (0, Some(1)));
    assert_eq!(f.broker.stats("dead").unwrap().visible, 1);
    assert!(
        f.broker
            .list_queues()
            .unwrap()
            .contains(&"dead".to_string())
    );
    // The dead-letter queue is an ordinary queue: same id and timestamp,
    // attempts start again.
    f.broker.set_consumer(eager("dead")).unwrap();
    let dead = f.broker.next_push_batch("dead").unwrap().unwrap();
    assert_eq!(dead.messages[0].id, id);
    assert_eq!(dead.messages[0].timestamp_ms, START_MS);
    assert_eq!(dead.messages[0].attempts, 1);
    assert_eq!(bodies(&dead), ["poison"]);
}

#[test]
fn after_max_retries_without_dead_letter_queue_a_message_is_dropped() {
    let f = fixture();
    f.broker.set_consumer(eager("q")).unwrap();
    f.send_text("q", "poison");
    let mut deliveries = 0;
    loop {
        let report = f.broker.tick(throw).unwrap();
        if report.batches == 0 {
            break;
        }
        deliveries += 1;
        if report.settled.dropped == 1 {
            break;
        }
    }
    assert_eq!(deliveries, 4, "default max_retries 3: four deliveries");
    assert_eq!(f.stored_rows(), 0);
    assert_eq!(f.broker.tick(throw).unwrap().batches, 0);
}

#[test]
fn max_retries_zero_gives_up_after_the_first_failure() {
    let f = fixture();
    f.broker
        .set_consumer(ConsumerConfig {
            max_retries: 0,
            dead_letter_queue: Some("dead".into()),
            ..eager("q")
        })
        .unwrap();
    f.send_text("q", "x");
    let report = f.broker.tick(throw).unwrap();
    assert_eq!(report.settled.dead_lettered, 1);
    assert_eq!(f.broker.stats("dead").unwrap().depth, 1);
}

#[test]
fn max_concurrency_bounds_batches_in_flight() {
    let f = fixture();
    f.broker
        .set_consumer(ConsumerConfig {
            max_batch_size: 1,
            max_concurrency: Some(2),
            ..eager("q")
        })
        .unwrap();
    for s in ["a", "b", "c"] {
        f.send_text("q", s);
    }
    let first = f.broker.next_push_batch("q").unwrap().unwrap();
    let second = f.broker.next_push_batch("q").unwrap().unwrap();
    assert!(f.broker.next_push_batch("q").unwrap().is_none());
    // Saturated: the next thing due is a lease lapsing, not the ready message.
    assert_eq!(
        f.broker.next_due().unwrap(),
        Some(START_MS + f.broker.limits().push_lease_ms)
    );
    f.broker.settle(&second, &second.outcome()).unwrap();
    let third = f.broker.next_push_batch("q").unwrap().unwrap();
    assert_eq!(bodies(&first), ["a"]);
    assert_eq!(bodies(&third), ["c"]);
}

#[test]
fn a_lapsed_push_lease_redelivers_and_counts_an_attempt() {
    let f = fixture();
    f.broker.set_consumer(eager("q")).unwrap();
    f.send_text("q", "a");
    let lost = f.broker.next_push_batch("q").unwrap().unwrap();
    f.clock.advance_ms(f.broker.limits().push_lease_ms - 1);
    assert!(f.broker.next_push_batch("q").unwrap().is_none());
    f.clock.advance_ms(1);
    let again = f.broker.next_push_batch("q").unwrap().unwrap();
    assert_eq!(again.messages[0].attempts, 2);
    // The late handler's retry is stale: the lapse already counted.
    let report = f.broker.settle(&lost, &throw(&lost)).unwrap();
    assert_eq!((report.retried, report.stale), (0, 1));
    f.broker.settle(&again, &again.outcome()).unwrap();
    assert_eq!(f.stored_rows(), 0);
}

#[test]
fn push_needs_a_worker_consumer() {
    let f = fixture();
    f.send_text("q", "a");
    assert_eq!(
        err(f.broker.next_push_batch("q")),
        "queue \"q\" has no Worker (push) consumer"
    );
    f.broker
        .set_consumer(ConsumerConfig::http_pull("q"))
        .unwrap();
    assert!(matches!(
        f.broker.next_push_batch("q").unwrap_err(),
        QueueError::NotPushConsumer { .. }
    ));
}

#[test]
fn consumer_settings_are_checked_against_the_limits() {
    let f = fixture();
    let cases = [
        (
            ConsumerConfig {
                max_batch_size: 101,
                ..ConsumerConfig::worker("q")
            },
            "invalid consumer for queue \"q\": max_batch_size must be an integer from 1 to 100, got 101",
        ),
        (
            ConsumerConfig {
                max_batch_size: 0,
                ..ConsumerConfig::worker("q")
            },
            "invalid consumer for queue \"q\": max_batch_size must be an integer from 1 to 100, got 0",
        ),
        (
            ConsumerConfig {
                max_batch_timeout_secs: 61,
                ..ConsumerConfig::worker("q")
            },
            "invalid consumer for queue \"q\": max_batch_timeout must be an integer from 0 to 60, got 61",
        ),
        (
            ConsumerConfig {
                max_retries: 101,
                ..ConsumerConfig::worker("q")
            },
            "invalid consumer for queue \"q\": max_retries must be an integer from 0 to 100, got 101",
        ),
        (
            ConsumerConfig {
                max_concurrency: Some(251),
                ..ConsumerConfig::worker("q")
            },
            "invalid consumer for queue \"q\": max_concurrency must be an integer from 1 to 250, got 251",
        ),
        (
            ConsumerConfig {
                retry_delay_secs: Some(86_401),
                ..ConsumerConfig::worker("q")
            },
            "invalid consumer for queue \"q\": retry_delay must be an integer from 0 to 86400, got 86401",
        ),
        (
            ConsumerConfig {
                visibility_timeout_ms: Some(43_200_001),
                ..ConsumerConfig::http_pull("q")
            },
            "invalid consumer for queue \"q\": visibility_timeout_ms must be an integer from 0 to 43200000, got 43200001",
        ),
        (
            ConsumerConfig {
                dead_letter_queue: Some("q".into()),
                ..ConsumerConfig::worker("q")
            },
            "invalid consumer for queue \"q\": dead_letter_queue must not be the queue it consumes",
        ),
    ];
    for (config, message) in cases {
        assert_eq!(err(f.broker.set_consumer(config)), message);
    }
    assert!(f.broker.consumer("q").is_none());
}

#[test]
fn defaults_are_cloudflares() {
    let c = ConsumerConfig::worker("q");
    assert_eq!(
        (c.max_batch_size, c.max_batch_timeout_secs, c.max_retries),
        (10, 5, 3)
    );
    assert_eq!(c.retry_delay_secs, None);
}

#[test]
fn a_repeated_retry_keeps_the_retry_and_takes_the_later_delay() {
    let f = fixture();
    f.broker.set_consumer(eager("q")).unwrap();
    f.send_text("q", "a");
    f.send_text("q", "b");
    let batch = f.broker.next_push_batch("q").unwrap().unwrap();
    let (a, b) = (batch.messages[0].id.as_str(), batch.messages[1].id.as_str());
    let mut o = batch.outcome();
    assert!(o.retry(a, &retry_in(30.0)).unwrap());
    assert!(o.retry(a, &QueueRetryOptions::default()).unwrap());
    assert_eq!(
        o.decision(a),
        MessageDecision::Retry {
            delay_seconds: Some(30)
        },
        "a retry without a delay keeps the earlier one"
    );
    assert!(o.retry(a, &retry_in(0.0)).unwrap());
    assert_eq!(
        o.decision(a),
        MessageDecision::Retry {
            delay_seconds: Some(0)
        }
    );
    assert!(o.retry_all(&retry_in(60.0)).unwrap());
    assert!(o.retry_all(&retry_in(5.0)).unwrap());
    assert_eq!(
        o.decision(b),
        MessageDecision::Retry {
            delay_seconds: Some(5)
        }
    );
    assert_eq!(
        o.decision(a),
        MessageDecision::Retry {
            delay_seconds: Some(0)
        },
        "the message's own retry still beats retryAll"
    );
}
