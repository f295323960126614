//! Limits and shape checks for a Worker's configuration, with Cloudflare's values.

/// Most messages one consumer invocation may receive (Cloudflare Queues limit).
pub const MAX_BATCH_SIZE: u64 = 100;
/// Longest a consumer waits to fill a batch, in seconds.
pub const MAX_BATCH_TIMEOUT_SECS: u64 = 60;
/// Most delivery attempts after the first before a message is dropped or dead-lettered.
pub const MAX_RETRIES: u64 = 100;
/// Most concurrent consumer invocations of a push-based consumer.
pub const MAX_CONCURRENCY: u64 = 250;
/// Longest delay for sending or retrying a message, in seconds (24 hours).
pub const MAX_DELAY_SECS: u64 = 86_400;
/// Longest visibility timeout of an HTTP pull consumer, in milliseconds (12 hours).
pub const MAX_VISIBILITY_TIMEOUT_MS: u64 = 43_200_000;
/// Highest `limits.cpu_ms` a Worker may ask for (5 minutes).
pub const MAX_CPU_MS: u64 = 300_000;
/// Largest config or `.dev.vars` file read; a guard against reading something that is not a config.
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// Defaults Cloudflare applies to an unset consumer field.
pub const DEFAULT_MAX_BATCH_SIZE: u32 = 10;
pub const DEFAULT_MAX_BATCH_TIMEOUT_SECS: u32 = 5;
pub const DEFAULT_MAX_RETRIES: u32 = 3;

/// Periods (seconds) the Rate Limiting binding accepts.
pub const RATELIMIT_PERIODS: [u64; 2] = [10, 60];
/// Fields in a cron expression: minute hour day-of-month month day-of-week.
pub const CRON_FIELDS: usize = 5;

/// Every limit the config is checked against. `Default` holds Cloudflare's values;
/// raise a field to allow more on your own machines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub max_batch_size: u64,
    pub max_batch_timeout_secs: u64,
    pub max_retries: u64,
    pub max_concurrency: u64,
    /// Bounds `retry_delay` and `delivery_delay`.
    pub max_delay_secs: u64,
    pub max_visibility_timeout_ms: u64,
    pub max_cpu_ms: u64,
    pub max_file_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_batch_size: MAX_BATCH_SIZE,
            max_batch_timeout_secs: MAX_BATCH_TIMEOUT_SECS,
            max_retries: MAX_RETRIES,
            max_concurrency: MAX_CONCURRENCY,
            max_delay_secs: MAX_DELAY_SECS,
            max_visibility_timeout_ms: MAX_VISIBILITY_TIMEOUT_MS,
            max_cpu_ms: MAX_CPU_MS,
            max_file_bytes: MAX_FILE_BYTES,
        }
    }
}

/// A binding name must be reachable as `env.NAME` without quoting.
pub fn is_js_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_alphabetic() || c == '_' || c == '$' => {}
        _ => return false,
    }
    chars.all(|c| c.is_alphanumeric() || c == '_' || c == '$')
}

/// Worker names: lowercase letters, digits, `-` and `_`, not starting with `-`
/// (the rule wrangler enforces, since the name becomes a hostname label).
pub fn is_valid_worker_name(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// `YYYY-MM-DD` with a plausible month and day.
pub fn is_valid_date(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    if !(digits(0..4) && digits(5..7) && digits(8..10)) {
        return false;
    }
    let month: u32 = s[5..7].parse().unwrap_or(0);
    let day: u32 = s[8..10].parse().unwrap_or(0);
    (1..=12).contains(&month) && (1..=31).contains(&day)
}

/// Checks only the shape of a cron expression (five fields); the meaning of
/// each field is checked by the scheduler.
pub fn cron_shape_error(cron: &str) -> Option<String> {
    let fields = cron.split_whitespace().count();
    if fields == CRON_FIELDS {
        None
    } else {
        Some(format!(
            "expected {CRON_FIELDS} fields (minute hour day-of-month month day-of-week), found {fields}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers() {
        assert!(is_js_identifier("MY_KV"));
        assert!(is_js_identifier("$kv1"));
        assert!(is_js_identifier("_x"));
        assert!(!is_js_identifier("1KV"));
        assert!(!is_js_identifier("MY-KV"));
        assert!(!is_js_identifier(""));
        assert!(!is_js_identifier("a b"));
    }

    #[test]
    fn worker_names() {
        assert!(is_valid_worker_name("my-worker_2"));
        assert!(!is_valid_worker_name("My-Worker"));
        assert!(!is_valid_worker_name("-x"));
        assert!(!is_valid_worker_name(""));
    }

    #[test]
    fn dates() {
        assert!(is_valid_date("2024-09-23"));
        assert!(!is_valid_date("2024-13-01"));
        assert!(!is_valid_date("2024-9-23"));
        assert!(!is_valid_date("yesterday"));
    }

    #[test]
    fn cron_shape() {
        assert_eq!(cron_shape_error("*/5 * * * *"), None);
        assert_eq!(
            cron_shape_error("0 0 * * * *").as_deref(),
            Some("expected 5 fields (minute hour day-of-month month day-of-week), found 6")
        );
    }
}
