//! What a `queue()` handler decided about its batch: the calls it made
//! (`ack`, `retry`, `ackAll`, `retryAll`) and whether it threw, resolved into
//! one decision per message by Cloudflare's precedence rules:
//!
//! - the first call about a message wins (`ack` then `retry`: acked);
//! - a call on a single message beats a later `ackAll` / `retryAll`;
//! - a call on a single message after `ackAll` / `retryAll` has no effect,
//!   and of `ackAll` / `retryAll` the first wins;
//! - a repeated `retry` / `retryAll` keeps the retry and a delay it gives
//!   replaces the earlier one (Workers records the last delay);
//! - messages nobody decided about are acknowledged if the handler returned
//!   and retried if it threw. An explicit `ackAll()` counts as a decision, so
//!   it holds even if the handler throws afterwards.

use std::collections::HashMap;

use crate::QueueRetryOptions;
use crate::error::Result;
use crate::validate::{self, MAX_DELAY_SECS, QueueLimits};

/// The fate of one message of a settled batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageDecision {
    Ack,
    /// `delay_seconds: None` falls back to the consumer's `retry_delay`.
    Retry {
        delay_seconds: Option<u64>,
    },
}

/// The calls a handler made on its batch. Each call returns whether it took
/// effect; `false` means a precedence rule ignored it (the runtime may log
/// that, as Workers does).
#[derive(Debug, Clone)]
pub struct BatchOutcome {
    max_delay_secs: u64,
    threw: bool,
    ack_all: bool,
    retry_all: Option<Option<u64>>,
    explicit: HashMap<String, MessageDecision>,
}

impl Default for BatchOutcome {
    fn default() -> Self {
        Self::with_max_delay(MAX_DELAY_SECS)
    }
}

impl BatchOutcome {
    /// An outcome whose retry delays are checked against `max_delay_secs`
    /// (see [`crate::LeasedBatch::outcome`], which uses the broker's limit).
    pub fn with_max_delay(max_delay_secs: u64) -> Self {
        Self {
            max_delay_secs,
            threw: false,
            ack_all: false,
            retry_all: None,
            explicit: HashMap::new(),
        }
    }

    /// The longest retry delay this outcome accepts, in seconds.
    pub fn max_delay_secs(&self) -> u64 {
        self.max_delay_secs
    }

    /// The handler threw (or its promise rejected).
    pub fn set_threw(&mut self) {
        self.threw = true;
    }

    pub fn threw(&self) -> bool {
        self.threw
    }

    /// `message.ack()`.
    pub fn ack(&mut self, message_id: &str) -> bool {
        if self.ack_all || self.retry_all.is_some() || self.explicit.contains_key(message_id) {
            return false;
        }
        self.explicit
            .insert(message_id.to_owned(), MessageDecision::Ack);
        true
    }

    /// `message.retry({delaySeconds})`. An invalid delay is an error and
    /// records nothing. Retrying a message again keeps it retried; a delay
    /// given again replaces the earlier one, as Workers does.
    pub fn retry(&mut self, message_id: &str, options: &QueueRetryOptions) -> Result<bool> {
        let delay_seconds = self.delay(options)?;
        if self.ack_all {
            return Ok(false);
        }
        match self.explicit.get_mut(message_id) {
            Some(MessageDecision::Ack) => Ok(false),
            Some(MessageDecision::Retry { delay_seconds: d }) => {
                if delay_seconds.is_some() {
                    *d = delay_seconds;
                }
                Ok(true)
            }
            None if self.retry_all.is_some() => Ok(false),
            None => {
                self.explicit.insert(
                    message_id.to_owned(),
                    MessageDecision::Retry { delay_seconds },
                );
                Ok(true)
            }
        }
    }

    /// `batch.ackAll()`.
    pub fn ack_all(&mut self) -> bool {
        if self.ack_all || self.retry_all.is_some() {
            return false;
        }
        self.ack_all = true;
        true
    }

    /// `batch.retryAll({delaySeconds})`. A second call keeps the batch
    /// retried; a delay given again replaces the earlier one.
    pub fn retry_all(&mut self, options: &QueueRetryOptions) -> Result<bool> {
        let delay = self.delay(options)?;
        if self.ack_all {
            return Ok(false);
        }
        match &mut self.retry_all {
            Some(d) => {
                if delay.is_some() {
                    *d = delay;
                }
            }
            None => self.retry_all = Some(delay),
        }
        Ok(true)
    }

    /// What happens to the message with this id.
    pub fn decision(&self, message_id: &str) -> MessageDecision {
        if let Some(d) = self.explicit.get(message_id) {
            return *d;
        }
        if let Some(delay_seconds) = self.retry_all {
            return MessageDecision::Retry { delay_seconds };
        }
        if self.ack_all || !self.threw {
            return MessageDecision::Ack;
        }
        MessageDecision::Retry {
            delay_seconds: None,
        }
    }

    fn delay(&self, options: &QueueRetryOptions) -> Result<Option<u64>> {
        let limits = QueueLimits {
            max_delay_secs: self.max_delay_secs,
            ..QueueLimits::default()
        };
        options
            .delay_seconds
            .map(|d| validate::retry_delay(d, &limits))
            .transpose()
    }
}
