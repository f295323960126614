//! Cloudflare's documented limits, each at its bound, and raising them.

mod common;

use common::{errors_toml, ok_toml, toml_with};
use hearth_config::validate::*;
use hearth_config::*;

fn consumer(field: &str, value: u64) -> String {
    format!("[[queues.consumers]]\nqueue = \"q\"\n{field} = {value}\n")
}

#[test]
fn defaults_are_cloudflares() {
    let l = Limits::default();
    assert_eq!(l.max_batch_size, 100);
    assert_eq!(l.max_batch_timeout_secs, 60);
    assert_eq!(l.max_retries, 100);
    assert_eq!(l.max_concurrency, 250);
    assert_eq!(l.max_delay_secs, 86_400);
    assert_eq!(l.max_visibility_timeout_ms, 43_200_000);
    assert_eq!(l.max_cpu_ms, 300_000);
}

#[test]
fn queue_consumer_values_at_and_past_their_bounds() {
    let cases: [(&str, u64, u64, Option<u64>); 6] = [
        ("max_batch_size", 1, 100, Some(0)),
        ("max_batch_timeout", 0, 60, None),
        ("max_retries", 0, 100, None),
        ("max_concurrency", 1, 250, Some(0)),
        ("retry_delay", 0, 86_400, None),
        ("visibility_timeout_ms", 0, 43_200_000, None),
    ];
    for (field, min, max, below) in cases {
        ok_toml(&consumer(field, min));
        ok_toml(&consumer(field, max));
        assert_eq!(
            errors_toml(&consumer(field, max + 1)),
            vec![format!(
                "wrangler.toml: queues.consumers[0].{field}: must be at most {max}, found {}",
                max + 1
            )]
        );
        if let Some(low) = below {
            assert_eq!(
                errors_toml(&consumer(field, low)),
                vec![format!(
                    "wrangler.toml: queues.consumers[0].{field}: must be at least {min}, found {low}"
                )]
            );
        }
    }
}

#[test]
fn producer_delivery_delay_is_bounded() {
    let producer = |d: u64| {
        format!("[[queues.producers]]\nbinding = \"Q\"\nqueue = \"q\"\ndelivery_delay = {d}\n")
    };
    assert_eq!(
        ok_toml(&producer(86_400)).config.queues.producers[0].delivery_delay,
        Some(86_400)
    );
    assert_eq!(
        errors_toml(&producer(86_401)),
        vec![
            "wrangler.toml: queues.producers[0].delivery_delay: must be at most 86400, found 86401"
        ]
    );
}

#[test]
fn consumer_type_is_worker_or_http_pull() {
    assert_eq!(
        errors_toml("[[queues.consumers]]\nqueue = \"q\"\ntype = \"push\"\n"),
        vec![
            "wrangler.toml: queues.consumers[0].type: expected one of \"worker\", \"http_pull\", found \"push\""
        ]
    );
    let c = ok_toml("[[queues.consumers]]\nqueue = \"q\"\ntype = \"worker\"\n").config;
    assert_eq!(
        c.queues.consumers[0].consumer_type,
        QueueConsumerType::Worker
    );
}

#[test]
fn a_queue_has_one_consumer_and_cannot_dead_letter_to_itself() {
    assert_eq!(
        errors_toml(
            "[[queues.consumers]]\nqueue = \"q\"\n[[queues.consumers]]\nqueue = \"q\"\ndead_letter_queue = \"q\"\n"
        ),
        vec![
            "wrangler.toml: queues.consumers[1].dead_letter_queue: must not be the queue it consumes",
            "wrangler.toml: queues.consumers[1].queue: queue \"q\" already has a consumer at queues.consumers[0].queue",
        ]
    );
}

#[test]
fn cpu_ms_is_bounded() {
    assert_eq!(
        ok_toml("limits = { cpu_ms = 300000 }\n")
            .config
            .limits
            .cpu_ms,
        Some(300_000)
    );
    assert_eq!(
        errors_toml("limits = { cpu_ms = 300001 }\n"),
        vec!["wrangler.toml: limits.cpu_ms: must be at most 300000, found 300001"]
    );
    assert_eq!(
        errors_toml("limits = { cpu_ms = 0 }\n"),
        vec!["wrangler.toml: limits.cpu_ms: must be at least 1, found 0"]
    );
}

#[test]
fn ratelimit_period_is_10_or_60() {
    let rl = |p: u64| {
        format!(
            "[[ratelimits]]\nname = \"RL\"\nnamespace_id = \"1\"\nsimple = {{ limit = 5, period = {p} }}\n"
        )
    };
    assert_eq!(ok_toml(&rl(10)).config.ratelimits[0].simple.period, 10);
    assert_eq!(ok_toml(&rl(60)).config.ratelimits[0].simple.period, 60);
    assert_eq!(
        errors_toml(&rl(30)),
        vec!["wrangler.toml: ratelimits[0].simple.period: must be either 10 or 60, found 30"]
    );
    assert_eq!(
        errors_toml(
            "[[ratelimits]]\nname = \"RL\"\nnamespace_id = \"1\"\nsimple = { period = 60 }\n"
        ),
        vec!["wrangler.toml: ratelimits[0].simple.limit: missing"]
    );
    // The unsafe spelling is held to the same rule.
    assert_eq!(
        errors_toml(
            "[[unsafe.bindings]]\nname = \"RL\"\ntype = \"ratelimit\"\nnamespace_id = \"1\"\nsimple = { limit = 1, period = 1 }\n"
        ),
        vec!["wrangler.toml: unsafe.bindings[0].simple.period: must be either 10 or 60, found 1"]
    );
}

#[test]
fn cron_strings_have_five_fields() {
    assert_eq!(
        ok_toml("[triggers]\ncrons = [\"0 0 * * *\", \"*/10  9-17 * * MON-FRI\"]\n")
            .config
            .triggers
            .crons,
        vec!["0 0 * * *", "*/10  9-17 * * MON-FRI"]
    );
    assert_eq!(
        errors_toml("[triggers]\ncrons = [\"* * * *\", \"\", 5]\n"),
        vec![
            "wrangler.toml: triggers.crons[2]: expected a string, found 5",
            "wrangler.toml: triggers.crons[0]: expected 5 fields (minute hour day-of-month month day-of-week), found 4",
            "wrangler.toml: triggers.crons[1]: expected 5 fields (minute hour day-of-month month day-of-week), found 0",
        ]
    );
}

#[test]
fn raised_limits_admit_bigger_values() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wrangler.toml");
    std::fs::write(
        &path,
        toml_with("limits = { cpu_ms = 900000 }\n[[queues.consumers]]\nqueue = \"q\"\nmax_batch_size = 1000\n"),
    )
    .unwrap();
    assert!(load(&path, &LoadOptions::default()).is_err());
    let opts = LoadOptions {
        limits: Limits {
            max_batch_size: 1000,
            max_cpu_ms: 900_000,
            ..Limits::default()
        },
        ..Default::default()
    };
    let c = load(&path, &opts).unwrap().config;
    assert_eq!(c.queues.consumers[0].max_batch_size, 1000);
    assert_eq!(c.limits.cpu_ms, Some(900_000));
}

#[test]
fn oversized_config_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wrangler.toml");
    std::fs::write(&path, toml_with(&format!("# {}\n", "x".repeat(200)))).unwrap();
    let opts = LoadOptions {
        limits: Limits {
            max_file_bytes: 100,
            ..Limits::default()
        },
        ..Default::default()
    };
    let err = load(&path, &opts).unwrap_err();
    let size = std::fs::metadata(&path).unwrap().len();
    assert_eq!(
        err.lines(),
        vec![format!(
            "wrangler.toml: file is {size} bytes, more than the limit of 100 bytes"
        )]
    );
}
