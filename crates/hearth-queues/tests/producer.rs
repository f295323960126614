//! send / sendBatch: limits with Cloudflare's messages, content types,
//! delays and their precedence, ids and timestamps.

mod common;

use common::*;
use hearth_core::{ContractError, ErrorClass};
use hearth_queues::{
    ConsumerConfig, MessageSendRequest, ProducerConfig, QueueContentType, QueueError, QueueLimits,
    QueueSendBatchOptions, QueueSendOptions,
};

fn msg(len: usize) -> MessageSendRequest {
    MessageSendRequest::new(vec![b'x'; len], QueueContentType::Bytes)
}

fn delayed(d: f64) -> QueueSendOptions {
    QueueSendOptions {
        content_type: QueueContentType::Text,
        delay_seconds: Some(d),
    }
}

#[test]
fn message_of_128_kb_is_accepted_one_byte_more_is_not() {
    let f = fixture();
    f.broker
        .send("q", vec![0; 128_000], &QueueSendOptions::default())
        .unwrap();
    let e = f
        .broker
        .send("q", vec![0; 128_001], &QueueSendOptions::default())
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "Queue send failed: message length of 128001 bytes exceeds limit of 128000"
    );
    assert_eq!(e.status(), Some(413));
    assert_eq!(f.stored_rows(), 1);
}

#[test]
fn batch_of_more_than_100_messages_is_refused() {
    let f = fixture();
    let batch: Vec<_> = (0..101).map(|_| msg(1)).collect();
    assert_eq!(
        err(f
            .broker
            .send_batch("q", batch, &QueueSendBatchOptions::default())),
        "Queue sendBatch failed: batch message count of 101 exceeds limit of 100"
    );
    let batch: Vec<_> = (0..100).map(|_| msg(1)).collect();
    assert_eq!(
        f.broker
            .send_batch("q", batch, &QueueSendBatchOptions::default())
            .unwrap()
            .len(),
        100
    );
}

#[test]
fn batch_with_an_oversized_message_is_refused_whole() {
    let f = fixture();
    let batch = vec![msg(10), msg(128_001)];
    assert_eq!(
        err(f
            .broker
            .send_batch("q", batch, &QueueSendBatchOptions::default())),
        "Queue sendBatch failed: message in batch has length 128001 bytes which exceeds single message size limit of 128000"
    );
    assert_eq!(f.stored_rows(), 0, "nothing of a refused batch is written");
}

#[test]
fn batch_over_256_kb_in_total_is_refused() {
    let f = fixture();
    let batch = vec![msg(100_000), msg(100_000), msg(56_001)];
    assert_eq!(
        err(f
            .broker
            .send_batch("q", batch, &QueueSendBatchOptions::default())),
        "Queue sendBatch failed: batch size of 256001 bytes exceeds limit of 256000"
    );
    let batch = vec![msg(100_000), msg(100_000), msg(56_000)];
    f.broker
        .send_batch("q", batch, &QueueSendBatchOptions::default())
        .unwrap();
    assert_eq!(f.stored_rows(), 3);
}

#[test]
fn empty_batch_is_a_type_error() {
    let f = fixture();
    let e = f
        .broker
        .send_batch("q", vec![], &QueueSendBatchOptions::default())
        .unwrap_err();
    assert_eq!(e.to_string(), "sendBatch() requires at least one message");
    assert_eq!(e.class(), ErrorClass::TypeError);
}

#[test]
fn limits_can_be_raised() {
    let f = fixture_with(QueueLimits {
        max_message_bytes: 1_000_000,
        max_batch_messages: 500,
        ..QueueLimits::default()
    });
    f.broker
        .send("q", vec![0; 500_000], &QueueSendOptions::default())
        .unwrap();
    let batch: Vec<_> = (0..500).map(|_| msg(1)).collect();
    f.broker
        .send_batch("q", batch, &QueueSendBatchOptions::default())
        .unwrap();
}

#[test]
fn content_types_parse_like_workers() {
    assert_eq!(
        QueueContentType::parse("JSON").unwrap(),
        QueueContentType::Json
    );
    assert_eq!(QueueContentType::parse("v8").unwrap(), QueueContentType::V8);
    assert_eq!(QueueContentType::default(), QueueContentType::V8);
    let e = QueueContentType::parse("xml").unwrap_err();
    assert_eq!(e.to_string(), "Unsupported queue message content type: xml");
    assert_eq!(e.class(), ErrorClass::TypeError);
}

#[test]
fn content_type_and_body_reach_the_consumer_unchanged() {
    let f = fixture();
    f.broker.set_consumer(eager("q")).unwrap();
    let body = vec![0u8, 159, 146, 150];
    f.broker
        .send(
            "q",
            body.clone(),
            &QueueSendOptions {
                content_type: QueueContentType::Bytes,
                delay_seconds: None,
            },
        )
        .unwrap();
    let batch = f.broker.next_push_batch("q").unwrap().unwrap();
    assert_eq!(batch.messages[0].body, body);
    assert_eq!(batch.messages[0].content_type, QueueContentType::Bytes);
}

#[test]
fn delay_above_24_hours_or_not_a_whole_number_is_refused() {
    let f = fixture();
    let body = || b"x".to_vec();
    for (d, shown) in [
        (86_401.0, "86401"),
        (-1.0, "-1"),
        (1.5, "1.5"),
        (f64::NAN, "NaN"),
    ] {
        assert_eq!(
            err(f.broker.send("q", body(), &delayed(d))),
            format!(
                "Queue send failed: message delay {shown} is invalid: delaySeconds must be an integer from 0 to 86400"
            )
        );
    }
    assert_eq!(
        err(f.broker.send_batch(
            "q",
            vec![msg(1)],
            &QueueSendBatchOptions {
                delay_seconds: Some(90_000.0)
            }
        )),
        "Queue sendBatch failed: message delay 90000 is invalid: delaySeconds must be an integer from 0 to 86400"
    );
    let mut late = msg(1);
    late.delay_seconds = Some(86_401.0);
    assert!(matches!(
        f.broker
            .send_batch("q", vec![msg(1), late], &QueueSendBatchOptions::default())
            .unwrap_err(),
        QueueError::InvalidDelay { .. }
    ));
    assert_eq!(f.stored_rows(), 0);
    f.broker.send("q", body(), &delayed(86_400.0)).unwrap();
}

#[test]
fn max_delay_defaults_to_24_hours_and_is_configurable() {
    assert_eq!(QueueLimits::default().max_delay_secs, 86_400);
    let f = fixture_with(QueueLimits {
        max_delay_secs: 43_200,
        ..QueueLimits::default()
    });
    f.broker
        .send("q", b"x".to_vec(), &delayed(43_200.0))
        .unwrap();
    assert_eq!(
        err(f.broker.send("q", b"x".to_vec(), &delayed(43_201.0))),
        "Queue send failed: message delay 43201 is invalid: delaySeconds must be an integer from 0 to 43200"
    );
}

#[test]
fn delayed_message_is_delivered_only_when_its_delay_is_over() {
    let f = fixture();
    f.broker.set_consumer(eager("q")).unwrap();
    f.broker
        .send("q", b"later".to_vec(), &delayed(30.0))
        .unwrap();
    let stats = f.broker.stats("q").unwrap();
    assert_eq!((stats.depth, stats.delayed, stats.visible), (1, 1, 0));
    assert_eq!(f.broker.next_due().unwrap(), Some(START_MS + 30_000));
    f.clock.advance_ms(29_999);
    assert!(f.broker.next_push_batch("q").unwrap().is_none());
    f.clock.advance_ms(1);
    let batch = f.broker.next_push_batch("q").unwrap().unwrap();
    assert_eq!(bodies(&batch), ["later"]);
}

#[test]
fn producer_delivery_delay_applies_unless_the_call_gives_one() {
    let f = fixture();
    f.broker.set_consumer(eager("q")).unwrap();
    let producer = f
        .broker
        .producer(
            "q",
            ProducerConfig {
                delivery_delay: Some(60),
            },
        )
        .unwrap();
    producer.send("default", &text_options()).unwrap();
    producer.send("now", &delayed(0.0)).unwrap();
    producer.send("soon", &delayed(10.0)).unwrap();
    let batch = f.broker.next_push_batch("q").unwrap().unwrap();
    assert_eq!(bodies(&batch), ["now"]);
    f.broker.settle(&batch, &batch.outcome()).unwrap();
    f.clock.advance_secs(10);
    assert_eq!(
        bodies(&f.broker.next_push_batch("q").unwrap().unwrap()),
        ["soon"]
    );
    f.clock.advance_secs(50);
    assert_eq!(
        bodies(&f.broker.next_push_batch("q").unwrap().unwrap()),
        ["default"]
    );
}

#[test]
fn per_message_delay_beats_batch_delay_beats_producer_delay() {
    let f = fixture();
    f.broker
        .set_consumer(ConsumerConfig {
            max_batch_size: 100,
            ..eager("q")
        })
        .unwrap();
    let producer = f
        .broker
        .producer(
            "q",
            ProducerConfig {
                delivery_delay: Some(300),
            },
        )
        .unwrap();
    let text = |s: &str, d: Option<f64>| MessageSendRequest {
        body: s.as_bytes().to_vec(),
        content_type: QueueContentType::Text,
        delay_seconds: d,
    };
    producer
        .send_batch(
            vec![text("batch", None), text("own", Some(5.0))],
            &QueueSendBatchOptions {
                delay_seconds: Some(20.0),
            },
        )
        .unwrap();
    producer
        .send_batch(vec![text("producer", None)], &Default::default())
        .unwrap();
    let mut seen = Vec::new();
    for secs in [5, 15, 280] {
        f.clock.advance_secs(secs);
        let batch = f.broker.next_push_batch("q").unwrap().unwrap();
        seen.extend(bodies(&batch));
        f.broker.settle(&batch, &batch.outcome()).unwrap();
    }
    assert_eq!(seen, ["own", "batch", "producer"]);
}

#[test]
fn producer_delivery_delay_is_checked() {
    let f = fixture();
    assert_eq!(
        err(f.broker.producer(
            "q",
            ProducerConfig {
                delivery_delay: Some(86_401)
            }
        )),
        "invalid producer for queue \"q\": delivery_delay must be an integer from 0 to 86400, got 86401"
    );
}

#[test]
fn ids_are_32_hex_chars_and_timestamps_come_from_the_clock() {
    let f = fixture();
    f.broker.set_consumer(eager("q")).unwrap();
    let a = f.send_text("q", "a");
    let b = f.send_text("q", "b");
    assert_ne!(a, b);
    for id in [&a, &b] {
        assert_eq!(id.len(), 32);
        assert!(
            id.bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
        );
    }
    let batch = f.broker.next_push_batch("q").unwrap().unwrap();
    assert_eq!(batch.messages[0].id, a);
    assert_eq!(batch.messages[0].timestamp_ms, START_MS);
    assert_eq!(batch.messages[0].attempts, 1);
}

#[test]
fn empty_queue_name_is_refused() {
    let f = fixture();
    assert_eq!(
        err(f.broker.send("", b"x".to_vec(), &text_options())),
        "Queue name must not be empty"
    );
}
