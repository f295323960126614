//! R2's limits and input checks, answered with R2's own messages.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::error::{Op, R2Error};
use crate::{R2ObjectRange, R2Range};

/// Longest object key, in UTF-8 bytes.
pub const MAX_KEY_BYTES: usize = 1024;
/// Largest custom metadata, measured as R2 does (see [`custom_metadata_size`]).
pub const MAX_CUSTOM_METADATA_BYTES: usize = 2048;
/// Largest body of one request: a single `put` or one multipart part
/// (5 GiB less 5 MiB).
pub const MAX_UPLOAD_BYTES: u64 = 5 * 1024 * 1024 * 1024 - 5 * 1024 * 1024;
/// Largest object, reachable only through multipart (5 TiB less 5 GiB).
pub const MAX_OBJECT_BYTES: u64 = 5 * 1024 * 1024 * 1024 * 1024 - 5 * 1024 * 1024 * 1024;
/// Smallest multipart part other than the last.
pub const MIN_PART_BYTES: u64 = 5 * 1024 * 1024;
/// Highest multipart part number (part numbers start at 1).
pub const MAX_PART_NUMBER: u32 = 10_000;
/// Most entries (objects plus delimited prefixes) one `list` returns.
pub const MAX_LIST_KEYS: usize = 1000;
/// Most keys one `delete` accepts.
pub const MAX_DELETE_KEYS: usize = 1000;
/// Age at which an unfinished multipart upload is aborted and its parts
/// removed (R2's default lifecycle rule: 7 days).
pub const ABORT_MULTIPART_UPLOADS_AFTER: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// Every limit the bucket enforces. `Default` is Cloudflare's values; raise
/// a field to lift a limit for a self-hosted deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct R2Limits {
    pub max_key_bytes: usize,
    pub max_custom_metadata_bytes: usize,
    pub max_upload_bytes: u64,
    pub max_object_bytes: u64,
    pub min_part_bytes: u64,
    pub max_part_number: u32,
    pub max_list_keys: usize,
    pub max_delete_keys: usize,
    /// Unfinished multipart uploads older than this are aborted, their
    /// parts' files removed (see `R2Bucket::abort_expired_uploads`).
    pub abort_multipart_uploads_after: Duration,
}

impl Default for R2Limits {
    fn default() -> Self {
        Self {
            max_key_bytes: MAX_KEY_BYTES,
            max_custom_metadata_bytes: MAX_CUSTOM_METADATA_BYTES,
            max_upload_bytes: MAX_UPLOAD_BYTES,
            max_object_bytes: MAX_OBJECT_BYTES,
            min_part_bytes: MIN_PART_BYTES,
            max_part_number: MAX_PART_NUMBER,
            max_list_keys: MAX_LIST_KEYS,
            max_delete_keys: MAX_DELETE_KEYS,
            abort_multipart_uploads_after: ABORT_MULTIPART_UPLOADS_AFTER,
        }
    }
}

impl R2Limits {
    pub(crate) fn key(&self, op: Op, key: &str) -> Result<(), R2Error> {
        if key.len() > self.max_key_bytes {
            return Err(R2Error::InvalidObjectName { op });
        }
        Ok(())
    }

    pub(crate) fn custom_metadata(
        &self,
        op: Op,
        metadata: Option<&BTreeMap<String, String>>,
    ) -> Result<(), R2Error> {
        if let Some(m) = metadata
            && custom_metadata_size(m) > self.max_custom_metadata_bytes
        {
            return Err(R2Error::MetadataTooLarge { op });
        }
        Ok(())
    }

    pub(crate) fn list_limit(&self, limit: Option<usize>) -> Result<usize, R2Error> {
        match limit {
            None => Ok(self.max_list_keys),
            Some(n) if n >= 1 && n <= self.max_list_keys => Ok(n),
            Some(_) => Err(R2Error::InvalidMaxKeys {
                op: "list",
                max: self.max_list_keys,
            }),
        }
    }

    pub(crate) fn delete_count(&self, count: usize) -> Result<(), R2Error> {
        if count == 0 || count > self.max_delete_keys {
            return Err(R2Error::InvalidDeleteKeyCount {
                max: self.max_delete_keys,
            });
        }
        Ok(())
    }

    pub(crate) fn part_number(&self, part_number: u32) -> Result<(), R2Error> {
        if part_number == 0 || part_number > self.max_part_number {
            return Err(R2Error::invalid(format!(
                "Part number must be between 1 and {} (inclusive). Actual value was: {part_number}",
                self.max_part_number
            )));
        }
        Ok(())
    }
}

/// Size of custom metadata as R2 counts it: the sum of every key's and
/// value's length in UTF-16 code units, doubled for a string holding any
/// character above U+00FF (R2 serialises those as two bytes per unit).
pub fn custom_metadata_size(metadata: &BTreeMap<String, String>) -> usize {
    metadata
        .iter()
        .map(|(k, v)| serialised_len(k) + serialised_len(v))
        .sum()
}

fn serialised_len(s: &str) -> usize {
    let units = s.encode_utf16().count();
    if s.chars().any(|c| c as u32 >= 256) {
        units * 2
    } else {
        units
    }
}

/// Turns a requested range into the bytes to return, following R2: a zero
/// suffix, an offset past the end or an empty result is unsatisfiable;
/// lengths running past the end are clamped.
pub(crate) fn resolve_range(range: &R2Range, size: u64) -> Result<R2ObjectRange, R2Error> {
    let unsatisfiable = || R2Error::InvalidRange { op: "get" };
    let (offset, length) = match *range {
        R2Range::Suffix { suffix } => {
            if suffix == 0 {
                return Err(unsatisfiable());
            }
            let suffix = suffix.min(size);
            (size - suffix, suffix)
        }
        R2Range::Offset { offset, length } => {
            if offset > size {
                return Err(unsatisfiable());
            }
            (offset, length.unwrap_or(size - offset))
        }
        R2Range::Length { length } => (0, length),
    };
    if length == 0 {
        return Err(unsatisfiable());
    }
    let length = length.min(size - offset);
    if length == 0 {
        return Err(unsatisfiable());
    }
    Ok(R2ObjectRange { offset, length })
}

/// R2's rules for the parts a multipart upload is completed with, given as
/// (part number, size) in the order the caller listed them: every part but
/// the last at least the minimum (in the order given, so that error comes
/// first); then, in part order, all but the last of one size and the last
/// no larger; the whole within the object limit. Returns the object's size.
pub(crate) fn completed_parts(
    given: &[(u32, u64)],
    limits: &R2Limits,
    op: Op,
) -> Result<u64, R2Error> {
    let min = limits.min_part_bytes;
    if let Some((_, init)) = given.split_last()
        && init.iter().any(|&(_, size)| size < min)
    {
        return Err(R2Error::EntityTooSmall { op });
    }
    let mut sizes = given.to_vec();
    sizes.sort_by_key(|&(number, _)| number);
    if let Some(((_, last), init)) = sizes.split_last()
        && let Some(&(_, first)) = init.first()
    {
        let uniform = init.iter().all(|&(_, size)| size >= min && size == first);
        if !uniform || *last > first {
            return Err(R2Error::BadUpload { op });
        }
    }
    let size: u64 = sizes.iter().map(|&(_, size)| size).sum();
    if size > limits.max_object_bytes {
        return Err(R2Error::EntityTooLarge { op });
    }
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_size_counts_utf16_and_doubles_wide_strings() {
        let mut m = BTreeMap::new();
        m.insert("ab".to_string(), "é".to_string()); // é is U+00E9: one unit
        assert_eq!(custom_metadata_size(&m), 3);
        m.insert("k".to_string(), "€".to_string()); // U+20AC: doubled
        assert_eq!(custom_metadata_size(&m), 3 + 1 + 2);
    }
}
