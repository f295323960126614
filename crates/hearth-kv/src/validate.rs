//! Cloudflare's KV limits and the input checks that enforce them, in the order
//! Cloudflare applies them. Numbers arrive as JavaScript numbers (`f64`) so the
//! runtime adapter can pass them through untouched and every rule about NaN,
//! negatives and fractions lives here, once.

use serde_json::Value;

use crate::error::{KvError, KvOp, Result};

/// Longest key, in UTF-8 bytes.
pub const MAX_KEY_SIZE: usize = 512;
/// Largest value, in bytes (25 MiB).
pub const MAX_VALUE_SIZE: usize = 25 * 1024 * 1024;
/// Largest metadata, in bytes of its JSON serialization.
pub const MAX_METADATA_SIZE: usize = 1024;
/// Shortest `expirationTtl`, and how far in the future an `expiration` must be.
pub const MIN_EXPIRATION_TTL: u64 = 60;
/// Smallest `cacheTtl` (lowered from 60 to 30 seconds by Cloudflare in 2026).
pub const MIN_CACHE_TTL: u64 = 30;
/// Most keys one `list()` returns, and its default `limit`.
pub const MAX_LIST_KEYS: u32 = 1000;
/// Most keys one bulk `get()` may ask for.
pub const MAX_BULK_GET_KEYS: usize = 100;
/// Largest total size of the values one bulk `get()` returns (25 MiB).
pub const MAX_BULK_GET_SIZE: usize = 25 * 1024 * 1024;

/// Every KV limit, Cloudflare's values by default; raise any of them to run
/// workloads Cloudflare would refuse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvLimits {
    pub max_key_size: usize,
    pub max_value_size: usize,
    pub max_metadata_size: usize,
    pub min_expiration_ttl: u64,
    pub min_cache_ttl: u64,
    pub max_list_keys: u32,
    pub max_bulk_get_keys: usize,
    pub max_bulk_get_size: usize,
}

impl Default for KvLimits {
    fn default() -> Self {
        Self {
            max_key_size: MAX_KEY_SIZE,
            max_value_size: MAX_VALUE_SIZE,
            max_metadata_size: MAX_METADATA_SIZE,
            min_expiration_ttl: MIN_EXPIRATION_TTL,
            min_cache_ttl: MIN_CACHE_TTL,
            max_list_keys: MAX_LIST_KEYS,
            max_bulk_get_keys: MAX_BULK_GET_KEYS,
            max_bulk_get_size: MAX_BULK_GET_SIZE,
        }
    }
}

/// Key checks for single-key calls, as the runtime makes them.
pub(crate) fn key(op: KvOp, key: &str, limits: &KvLimits) -> Result<()> {
    if key.is_empty() {
        return Err(KvError::EmptyKey);
    }
    if key == "." || key == ".." {
        return Err(KvError::IllegalKey {
            key: key.to_owned(),
        });
    }
    key_length(op, key, limits)
}

/// Key checks for bulk reads, which the service makes with its own wording.
pub(crate) fn bulk_key(key: &str, limits: &KvLimits) -> Result<()> {
    if key.is_empty() {
        return Err(KvError::BulkEmptyKey);
    }
    if key == "." || key == ".." {
        return Err(KvError::BulkIllegalKey {
            key: key.to_owned(),
        });
    }
    key_length(KvOp::GetBulk, key, limits)
}

/// Also applied to a `list()` prefix.
pub(crate) fn key_length(op: KvOp, key: &str, limits: &KvLimits) -> Result<()> {
    if key.len() > limits.max_key_size {
        return Err(KvError::KeyTooLong {
            op,
            length: key.len(),
            limit: limits.max_key_size,
        });
    }
    Ok(())
}

/// `cacheTtl` only tunes edge caching, which a single node does not have, so
/// it is checked and then ignored. Fractions are accepted, as the runtime
/// truncates them before the service sees them.
pub(crate) fn cache_ttl(op: KvOp, cache_ttl: Option<f64>, limits: &KvLimits) -> Result<()> {
    match cache_ttl {
        Some(v) if v.is_nan() || v < limits.min_cache_ttl as f64 => Err(KvError::InvalidCacheTtl {
            op,
            value: js_number(v),
            min: limits.min_cache_ttl,
        }),
        _ => Ok(()),
    }
}

/// Resolves `expiration` / `expirationTtl` to an absolute expiry in seconds
/// since the epoch. When both are given the TTL wins, as on Cloudflare.
pub(crate) fn expiration(
    now_secs: u64,
    expiration: Option<f64>,
    expiration_ttl: Option<f64>,
    limits: &KvLimits,
) -> Result<Option<u64>> {
    let min = limits.min_expiration_ttl;
    if let Some(ttl) = expiration_ttl {
        if !is_integer(ttl) || ttl <= 0.0 {
            return Err(KvError::InvalidExpirationTtl {
                value: js_number(ttl),
            });
        }
        if ttl < min as f64 {
            return Err(KvError::ExpirationTtlTooSmall {
                value: js_number(ttl),
                min,
            });
        }
        // `as` saturates, so absurd TTLs mean "never" rather than wrapping.
        return Ok(Some(now_secs.saturating_add(ttl as u64)));
    }
    if let Some(at) = expiration {
        if !is_integer(at) || at <= now_secs as f64 {
            return Err(KvError::InvalidExpiration {
                value: js_number(at),
            });
        }
        if at < now_secs.saturating_add(min) as f64 {
            return Err(KvError::ExpirationTooSoon {
                value: js_number(at),
                min,
            });
        }
        return Ok(Some(at as u64));
    }
    Ok(None)
}

/// Serializes metadata (JSON `null` counts as none, as on Cloudflare) and
/// checks its size.
pub(crate) fn metadata(metadata: Option<&Value>, limits: &KvLimits) -> Result<Option<String>> {
    let Some(value) = metadata.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let json = value.to_string();
    if json.len() > limits.max_metadata_size {
        return Err(KvError::MetadataTooLarge {
            length: json.len(),
            limit: limits.max_metadata_size,
        });
    }
    Ok(Some(json))
}

pub(crate) fn value_size(length: u64, limits: &KvLimits) -> Result<()> {
    if length > limits.max_value_size as u64 {
        return Err(KvError::ValueTooLarge {
            length,
            limit: limits.max_value_size,
        });
    }
    Ok(())
}

/// Resolves a `list()` limit, defaulting to the maximum.
pub(crate) fn list_limit(limit: Option<f64>, limits: &KvLimits) -> Result<u32> {
    let Some(v) = limit else {
        return Ok(limits.max_list_keys);
    };
    if !is_integer(v) || v < 1.0 {
        return Err(KvError::InvalidListLimit {
            value: js_number(v),
        });
    }
    if v > limits.max_list_keys as f64 {
        return Err(KvError::ListLimitTooLarge {
            value: js_number(v),
            max: limits.max_list_keys,
        });
    }
    Ok(v as u32)
}

pub(crate) fn bulk_key_count(count: usize, limits: &KvLimits) -> Result<()> {
    if count > limits.max_bulk_get_keys {
        return Err(KvError::BulkTooManyKeys {
            count,
            max: limits.max_bulk_get_keys,
        });
    }
    if count == 0 {
        return Err(KvError::BulkNoKeys);
    }
    Ok(())
}

pub(crate) fn bulk_size(size: usize, limits: &KvLimits) -> Result<()> {
    if size > limits.max_bulk_get_size {
        return Err(KvError::BulkTooLarge {
            size,
            limit: limits.max_bulk_get_size,
            limit_mb: js_number(limits.max_bulk_get_size as f64 / (1024.0 * 1024.0)),
        });
    }
    Ok(())
}

fn is_integer(v: f64) -> bool {
    v.is_finite() && v.trunc() == v
}

/// Formats a number the way JavaScript's `String(n)` does for the values that
/// show up in error messages, so messages read exactly as on Cloudflare.
pub(crate) fn js_number(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v.is_infinite() {
        if v > 0.0 { "Infinity" } else { "-Infinity" }.to_owned()
    } else if v.trunc() == v && v.abs() < 1e21 {
        // Also turns -0 into "0", as JavaScript does.
        format!("{}", v as i128)
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_print_like_javascript() {
        assert_eq!(js_number(f64::NAN), "NaN");
        assert_eq!(js_number(f64::INFINITY), "Infinity");
        assert_eq!(js_number(f64::NEG_INFINITY), "-Infinity");
        assert_eq!(js_number(60.0), "60");
        assert_eq!(js_number(-0.0), "0");
        assert_eq!(js_number(-5.0), "-5");
        assert_eq!(js_number(90.5), "90.5");
        assert_eq!(js_number(25.0), "25");
        assert_eq!(js_number(1.0 / 1024.0), "0.0009765625");
    }

    #[test]
    fn ttl_wins_over_expiration() {
        let l = KvLimits::default();
        let at = expiration(1_000, Some(5.0), Some(120.0), &l).unwrap();
        assert_eq!(at, Some(1_120));
    }
}
