//! Cloudflare's Queues limits and the input checks that enforce them. Numbers
//! that come from JavaScript or JSON arrive as `f64`, so every rule about NaN,
//! negatives and fractions lives here, once.

use crate::ConsumerConfig;
use crate::error::{QueueError, Result, SendOp};

/// Largest message body, in bytes (128 KB; Cloudflare's KB is 1000 bytes).
pub const MAX_MESSAGE_BYTES: usize = 128_000;
/// Most messages in one `sendBatch()`.
pub const MAX_BATCH_MESSAGES: usize = 100;
/// Largest total body size of one `sendBatch()` (256 KB).
pub const MAX_BATCH_BYTES: usize = 256_000;
/// Longest `delaySeconds` on send or retry, and longest `delivery_delay` /
/// `retry_delay`: 24 hours, as Cloudflare's current limits page states
/// (older pages said 12 hours) and as the config accepts.
pub const MAX_DELAY_SECS: u64 = 86_400;
/// Largest consumer `max_batch_size`, and largest pull `batch_size`.
pub const MAX_BATCH_SIZE: u32 = 100;
/// Longest consumer `max_batch_timeout`, in seconds.
pub const MAX_BATCH_TIMEOUT_SECS: u32 = 60;
/// Highest consumer `max_retries`.
pub const MAX_RETRIES: u32 = 100;
/// Most batches of one push consumer in flight at once.
pub const MAX_CONCURRENCY: u32 = 250;
/// Longest pull `visibility_timeout_ms` (12 hours).
pub const MAX_VISIBILITY_TIMEOUT_MS: u64 = 43_200_000;
/// How long a push batch stays leased to its handler: a consumer
/// invocation's wall-clock limit (15 minutes). A handler that never settles
/// gets its messages redelivered after this.
pub const PUSH_LEASE_MS: u64 = 15 * 60 * 1000;
/// How long an unacknowledged message is kept (4 days, Cloudflare's default).
pub const MESSAGE_RETENTION_SECS: u64 = 4 * 24 * 3600;

/// Consumer defaults Cloudflare applies to unset fields.
pub const DEFAULT_MAX_BATCH_SIZE: u32 = 10;
pub const DEFAULT_MAX_BATCH_TIMEOUT_SECS: u32 = 5;
pub const DEFAULT_MAX_RETRIES: u32 = 3;
/// Pull defaults: `batch_size` 5, `visibility_timeout` 30 s.
pub const DEFAULT_PULL_BATCH_SIZE: u32 = 5;
pub const DEFAULT_VISIBILITY_TIMEOUT_MS: u64 = 30_000;

/// Every Queues limit, Cloudflare's values by default; raise any of them to
/// run workloads Cloudflare would refuse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueLimits {
    pub max_message_bytes: usize,
    pub max_batch_messages: usize,
    pub max_batch_bytes: usize,
    pub max_delay_secs: u64,
    pub max_batch_size: u32,
    pub max_batch_timeout_secs: u32,
    pub max_retries: u32,
    pub max_concurrency: u32,
    pub max_visibility_timeout_ms: u64,
    pub push_lease_ms: u64,
    pub message_retention_secs: u64,
}

impl Default for QueueLimits {
    fn default() -> Self {
        Self {
            max_message_bytes: MAX_MESSAGE_BYTES,
            max_batch_messages: MAX_BATCH_MESSAGES,
            max_batch_bytes: MAX_BATCH_BYTES,
            max_delay_secs: MAX_DELAY_SECS,
            max_batch_size: MAX_BATCH_SIZE,
            max_batch_timeout_secs: MAX_BATCH_TIMEOUT_SECS,
            max_retries: MAX_RETRIES,
            max_concurrency: MAX_CONCURRENCY,
            max_visibility_timeout_ms: MAX_VISIBILITY_TIMEOUT_MS,
            push_lease_ms: PUSH_LEASE_MS,
            message_retention_secs: MESSAGE_RETENTION_SECS,
        }
    }
}

/// A number as JavaScript prints it, for messages that echo the caller's input.
pub(crate) fn js_number(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v.is_infinite() {
        if v > 0.0 { "Infinity" } else { "-Infinity" }.to_owned()
    } else if v.fract() == 0.0 && v.abs() < 1e21 {
        format!("{}", v as i128)
    } else {
        format!("{v}")
    }
}

/// A whole number in `0..=max`, or `None`.
fn whole_in(v: f64, min: f64, max: f64) -> Option<u64> {
    (v.is_finite() && v.fract() == 0.0 && v >= min && v <= max).then_some(v as u64)
}

pub(crate) fn queue_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(QueueError::EmptyQueueName);
    }
    Ok(())
}

pub(crate) fn send_delay(op: SendOp, v: f64, limits: &QueueLimits) -> Result<u64> {
    whole_in(v, 0.0, limits.max_delay_secs as f64).ok_or_else(|| QueueError::InvalidDelay {
        op,
        value: js_number(v),
        max: limits.max_delay_secs,
    })
}

pub(crate) fn retry_delay(v: f64, limits: &QueueLimits) -> Result<u64> {
    whole_in(v, 0.0, limits.max_delay_secs as f64).ok_or_else(|| QueueError::InvalidRetryDelay {
        value: js_number(v),
        max: limits.max_delay_secs,
    })
}

pub(crate) fn message_size(op: SendOp, size: usize, limits: &QueueLimits) -> Result<()> {
    if size <= limits.max_message_bytes {
        return Ok(());
    }
    Err(match op {
        SendOp::Send => QueueError::MessageTooLarge {
            size,
            limit: limits.max_message_bytes,
        },
        SendOp::SendBatch => QueueError::BatchMessageTooLarge {
            size,
            limit: limits.max_message_bytes,
        },
    })
}

/// The broker's batch checks, in its order: count, largest message, total.
pub(crate) fn batch_sizes(sizes: &[usize], limits: &QueueLimits) -> Result<()> {
    if sizes.is_empty() {
        return Err(QueueError::EmptyBatch);
    }
    if sizes.len() > limits.max_batch_messages {
        return Err(QueueError::BatchTooManyMessages {
            count: sizes.len(),
            limit: limits.max_batch_messages,
        });
    }
    let largest = sizes.iter().copied().max().unwrap_or(0);
    message_size(SendOp::SendBatch, largest, limits)?;
    let total: usize = sizes.iter().sum();
    if total > limits.max_batch_bytes {
        return Err(QueueError::BatchTooLarge {
            size: total,
            limit: limits.max_batch_bytes,
        });
    }
    Ok(())
}

pub(crate) fn pull_batch_size(v: Option<f64>, limits: &QueueLimits) -> Result<u32> {
    let Some(v) = v else {
        return Ok(DEFAULT_PULL_BATCH_SIZE.min(limits.max_batch_size));
    };
    whole_in(v, 1.0, f64::from(limits.max_batch_size))
        .map(|n| n as u32)
        .ok_or_else(|| QueueError::InvalidPullBatchSize {
            value: js_number(v),
            max: limits.max_batch_size,
        })
}

pub(crate) fn visibility_timeout(v: f64, limits: &QueueLimits) -> Result<u64> {
    whole_in(v, 0.0, limits.max_visibility_timeout_ms as f64).ok_or_else(|| {
        QueueError::InvalidVisibilityTimeout {
            value: js_number(v),
            max: limits.max_visibility_timeout_ms,
        }
    })
}

pub(crate) fn delivery_delay(queue: &str, delay: u64, limits: &QueueLimits) -> Result<()> {
    if delay > limits.max_delay_secs {
        return Err(QueueError::InvalidDeliveryDelay {
            queue: queue.to_owned(),
            value: delay,
            max: limits.max_delay_secs,
        });
    }
    Ok(())
}

pub(crate) fn consumer(c: &ConsumerConfig, limits: &QueueLimits) -> Result<()> {
    queue_name(&c.queue)?;
    let bad = |field: &'static str, lo: u64, hi: u64, value: u64| -> Result<()> {
        if value < lo || value > hi {
            return Err(QueueError::InvalidConsumer {
                queue: c.queue.clone(),
                field,
                rule: format!("an integer from {lo} to {hi}"),
                value: value.to_string(),
            });
        }
        Ok(())
    };
    bad(
        "max_batch_size",
        1,
        u64::from(limits.max_batch_size),
        u64::from(c.max_batch_size),
    )?;
    bad(
        "max_batch_timeout",
        0,
        u64::from(limits.max_batch_timeout_secs),
        u64::from(c.max_batch_timeout_secs),
    )?;
    bad(
        "max_retries",
        0,
        u64::from(limits.max_retries),
        u64::from(c.max_retries),
    )?;
    if let Some(n) = c.max_concurrency {
        bad(
            "max_concurrency",
            1,
            u64::from(limits.max_concurrency),
            u64::from(n),
        )?;
    }
    if let Some(d) = c.retry_delay_secs {
        bad("retry_delay", 0, limits.max_delay_secs, d)?;
    }
    if let Some(v) = c.visibility_timeout_ms {
        bad(
            "visibility_timeout_ms",
            0,
            limits.max_visibility_timeout_ms,
            v,
        )?;
    }
    if let Some(dlq) = &c.dead_letter_queue {
        queue_name(dlq)?;
        if *dlq == c.queue {
            return Err(QueueError::DeadLetterQueueIsSelf {
                queue: c.queue.clone(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_print_as_javascript_does() {
        assert_eq!(js_number(43_201.0), "43201");
        assert_eq!(js_number(1.5), "1.5");
        assert_eq!(js_number(-1.0), "-1");
        assert_eq!(js_number(f64::NAN), "NaN");
        assert_eq!(js_number(f64::INFINITY), "Infinity");
    }
}
