//! Limits and input checks, with Cloudflare's values and messages.

use std::time::Duration;

use crate::error::{DoError, Result};
use crate::{ListOptions, StorageBackend};

/// Longest key of a key-value-backed object, in UTF-8 bytes.
pub const MAX_KEY_SIZE: usize = 2048;
/// Largest value of a key-value-backed object, as Cloudflare advertises it.
pub const MAX_VALUE_SIZE: usize = 128 * 1024;
/// Bytes a serialized value may exceed [`MAX_VALUE_SIZE`] by: the
/// serialization header, so a full 128 KiB byte array still fits (workerd).
pub const VALUE_SIZE_ALLOWANCE: usize = 34;
/// Key and value together, for SQLite-backed objects ("2 MB").
pub const MAX_SQLITE_ENTRY_SIZE: usize = 2 * 1024 * 1024;
/// Keys in one `get`, `put` or `delete` of several keys.
pub const MAX_BATCH_KEYS: usize = 128;
/// Largest string, BLOB or row the SQL API stores ("2 MB").
pub const MAX_SQL_VALUE_SIZE: usize = 2 * 1024 * 1024;
/// Longest SQL statement text ("100 KB").
pub const MAX_SQL_STATEMENT_LENGTH: usize = 100_000;
pub const MAX_SQL_COLUMNS: usize = 100;
pub const MAX_SQL_BOUND_PARAMETERS: usize = 100;
pub const MAX_SQL_FUNCTION_ARGS: usize = 32;
pub const MAX_SQL_LIKE_PATTERN: usize = 50;
/// Storage per object ("10 GB").
pub const MAX_DATABASE_SIZE: u64 = 10 * 1024 * 1024 * 1024;
/// Writes an object may make between two commits (output gates). The
/// writes between two gates commit as one unit, as on Cloudflare, so past
/// this the whole unit is discarded rather than committed in part.
pub const MAX_UNFLUSHED_WRITES: u64 = 1_000_000;
/// Bytes (keys + values + SQL text) likewise. Memory does not grow with
/// the unit: SQLite spills its dirty pages to the WAL file past its page
/// cache, so this bounds the disk the uncommitted unit takes.
pub const MAX_UNFLUSHED_BYTES: u64 = 64 * 1024 * 1024;
/// First alarm retry delay; each further retry doubles it.
pub const ALARM_RETRY_START: Duration = Duration::from_secs(2);
/// Retries after the first failed run; then the alarm is given up.
pub const ALARM_MAX_RETRIES: u32 = 6;
/// The backoff stops doubling after this many doublings (workerd).
pub const ALARM_MAX_BACKOFF_DOUBLINGS: u32 = 9;

/// Every limit of Durable Objects, Cloudflare's values by default. Raise a
/// field to allow more than Cloudflare does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoLimits {
    pub max_key_size: usize,
    pub max_value_size: usize,
    pub value_size_allowance: usize,
    pub max_sqlite_entry_size: usize,
    pub max_batch_keys: usize,
    pub max_sql_value_size: usize,
    pub max_sql_statement_length: usize,
    pub max_sql_columns: usize,
    pub max_sql_bound_parameters: usize,
    pub max_sql_function_args: usize,
    pub max_sql_like_pattern: usize,
    pub max_database_size: u64,
    pub max_unflushed_writes: u64,
    pub max_unflushed_bytes: u64,
    pub alarm_retry_start: Duration,
    pub alarm_max_retries: u32,
    pub alarm_max_backoff_doublings: u32,
}

impl Default for DoLimits {
    fn default() -> Self {
        Self {
            max_key_size: MAX_KEY_SIZE,
            max_value_size: MAX_VALUE_SIZE,
            value_size_allowance: VALUE_SIZE_ALLOWANCE,
            max_sqlite_entry_size: MAX_SQLITE_ENTRY_SIZE,
            max_batch_keys: MAX_BATCH_KEYS,
            max_sql_value_size: MAX_SQL_VALUE_SIZE,
            max_sql_statement_length: MAX_SQL_STATEMENT_LENGTH,
            max_sql_columns: MAX_SQL_COLUMNS,
            max_sql_bound_parameters: MAX_SQL_BOUND_PARAMETERS,
            max_sql_function_args: MAX_SQL_FUNCTION_ARGS,
            max_sql_like_pattern: MAX_SQL_LIKE_PATTERN,
            max_database_size: MAX_DATABASE_SIZE,
            max_unflushed_writes: MAX_UNFLUSHED_WRITES,
            max_unflushed_bytes: MAX_UNFLUSHED_BYTES,
            alarm_retry_start: ALARM_RETRY_START,
            alarm_max_retries: ALARM_MAX_RETRIES,
            alarm_max_backoff_doublings: ALARM_MAX_BACKOFF_DOUBLINGS,
        }
    }
}

impl DoLimits {
    /// Delay before retry number `retry` (1-based): 2 s, 4 s, 8 s, ...
    pub fn alarm_retry_delay(&self, retry: u32) -> Duration {
        let doublings = retry
            .saturating_sub(1)
            .min(self.alarm_max_backoff_doublings)
            .min(31);
        self.alarm_retry_start.saturating_mul(1u32 << doublings)
    }
}

pub(crate) fn check_batch(limits: &DoLimits, count: usize) -> Result<()> {
    if count > limits.max_batch_keys {
        return Err(DoError::TooManyKeys {
            count,
            limit: limits.max_batch_keys,
        });
    }
    Ok(())
}

/// A key that is read or deleted.
pub(crate) fn check_key(limits: &DoLimits, backend: StorageBackend, key: &str) -> Result<()> {
    match backend {
        StorageBackend::KeyValue if key.len() > limits.max_key_size => Err(DoError::KeyTooLarge {
            size: key.len(),
            limit: limits.max_key_size,
        }),
        StorageBackend::Sqlite if key.len() > limits.max_sqlite_entry_size => {
            Err(DoError::EntryTooLarge {
                size: key.len(),
                limit: limits.max_sqlite_entry_size,
            })
        }
        _ => Ok(()),
    }
}

/// A key and value that are written; `value_len` is the value's size in
/// the platform's serialization.
pub(crate) fn check_entry(
    limits: &DoLimits,
    backend: StorageBackend,
    key: &str,
    value_len: usize,
) -> Result<()> {
    check_key(limits, backend, key)?;
    match backend {
        StorageBackend::KeyValue => {
            if value_len > limits.max_value_size + limits.value_size_allowance {
                return Err(DoError::ValueTooLarge {
                    size: value_len,
                    limit: limits.max_value_size,
                });
            }
        }
        StorageBackend::Sqlite => {
            let size = key.len() + value_len;
            if size > limits.max_sqlite_entry_size {
                return Err(DoError::EntryTooLarge {
                    size,
                    limit: limits.max_sqlite_entry_size,
                });
            }
        }
    }
    Ok(())
}

/// A `list()` call's options compiled into one key range. `None` means the
/// range is empty, so nothing needs reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyRange {
    /// Inclusive lower bound, as bytes.
    pub start: Vec<u8>,
    /// Exclusive upper bound, as bytes; `None` is unbounded.
    pub end: Option<Vec<u8>>,
    pub reverse: bool,
    pub limit: Option<u64>,
}

pub(crate) fn compile_list(options: &ListOptions) -> Result<Option<KeyRange>> {
    if options.start.is_some() && options.start_after.is_some() {
        return Err(DoError::StartAndStartAfter);
    }
    if options.limit == Some(0) {
        return Err(DoError::ListLimitNotPositive);
    }
    let mut start: Vec<u8> = Vec::new();
    if let Some(s) = &options.start {
        start = s.as_bytes().to_vec();
    }
    if let Some(s) = &options.start_after {
        // The first key after `s` in byte order is `s` followed by NUL.
        start = s.as_bytes().to_vec();
        start.push(0);
    }
    let mut end: Option<Vec<u8>> = options.end.as_ref().map(|e| e.as_bytes().to_vec());
    if let Some(prefix) = options.prefix.as_deref().filter(|p| !p.is_empty()) {
        let prefix = prefix.as_bytes();
        if start.as_slice() < prefix {
            start = prefix.to_vec();
        } else if !start.starts_with(prefix) {
            // `start` is past every key with the prefix.
            return Ok(None);
        }
        if let Some(after) = key_after_prefix(prefix) {
            match &end {
                Some(e) if e.as_slice() <= prefix => return Ok(None),
                Some(e) if e.starts_with(prefix) => {}
                _ => end = Some(after),
            }
        }
    }
    if let Some(e) = &end
        && e.as_slice() <= start.as_slice()
    {
        return Ok(None);
    }
    Ok(Some(KeyRange {
        start,
        end,
        reverse: options.reverse,
        limit: options.limit,
    }))
}

/// The smallest byte string greater than every string starting with
/// `prefix`; `None` when the prefix is all 0xFF (no such bound).
fn key_after_prefix(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut out = prefix.to_vec();
    while let Some(&last) = out.last() {
        if last == 0xFF {
            out.pop();
        } else {
            let n = out.len();
            out[n - 1] = last + 1;
            return Some(out);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_two_seconds() {
        let l = DoLimits::default();
        let secs: Vec<u64> = (1..=7).map(|r| l.alarm_retry_delay(r).as_secs()).collect();
        assert_eq!(secs, [2, 4, 8, 16, 32, 64, 128]);
        assert_eq!(l.alarm_retry_delay(40).as_secs(), 2 << 9);
    }

    #[test]
    fn prefix_bound() {
        assert_eq!(key_after_prefix(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(key_after_prefix(&[b'a', 0xFF]), Some(b"b".to_vec()));
        assert_eq!(key_after_prefix(&[0xFF, 0xFF]), None);
    }
}
