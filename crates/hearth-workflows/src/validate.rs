//! Cloudflare's Workflows limits and the input checks that enforce them.

use crate::StepConfig;
use crate::error::{Result, WorkflowError};

/// Longest instance id, in characters.
pub const MAX_INSTANCE_ID_LENGTH: usize = 100;
/// Longest Workflow name, in characters.
pub const MAX_WORKFLOW_NAME_LENGTH: usize = 64;
/// Longest step name, in characters.
pub const MAX_STEP_NAME_LENGTH: usize = 256;
/// Longest event type, in characters.
pub const MAX_EVENT_TYPE_LENGTH: usize = 100;
/// Most instances one `createBatch` may create.
pub const MAX_BATCH_SIZE: usize = 100;
/// Largest `params` of an instance (1 MiB).
pub const MAX_PARAMS_BYTES: usize = 1 << 20;
/// Largest payload of one event (1 MiB).
pub const MAX_EVENT_PAYLOAD_BYTES: usize = 1 << 20;
/// Largest state one step may persist (1 MiB).
pub const MAX_STEP_OUTPUT_BYTES: usize = 1 << 20;
/// Most `step.do` calls in one run (Workers Paid default; Free allows 1024).
pub const MAX_STEPS: u32 = 10_000;
/// Longest `step.sleep`, and longest `waitForEvent` timeout: 365 days.
pub const MAX_SLEEP_MS: u64 = 365 * 24 * 60 * 60 * 1000;
/// `waitForEvent` timeout when none is given: 24 hours.
pub const DEFAULT_EVENT_TIMEOUT_MS: u64 = 24 * 60 * 60 * 1000;
/// How long a claimed run may go without reporting before another runner may
/// claim it again. While a step attempt runs, its timeout is added.
pub const DEFAULT_LEASE_MS: u64 = 2 * 60 * 1000;
/// Most runs one `claim_due` hands out.
pub const DEFAULT_CLAIM_BATCH: usize = 100;

/// Every Workflows limit, Cloudflare's values by default; raise any of them to
/// run workloads Cloudflare would refuse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkflowLimits {
    pub max_instance_id_length: usize,
    pub max_workflow_name_length: usize,
    pub max_step_name_length: usize,
    pub max_event_type_length: usize,
    pub max_batch_size: usize,
    pub max_params_bytes: usize,
    pub max_event_payload_bytes: usize,
    pub max_step_output_bytes: usize,
    pub max_steps: u32,
    pub max_sleep_ms: u64,
    pub default_event_timeout_ms: u64,
    pub lease_ms: u64,
    pub claim_batch: usize,
}

impl Default for WorkflowLimits {
    fn default() -> Self {
        Self {
            max_instance_id_length: MAX_INSTANCE_ID_LENGTH,
            max_workflow_name_length: MAX_WORKFLOW_NAME_LENGTH,
            max_step_name_length: MAX_STEP_NAME_LENGTH,
            max_event_type_length: MAX_EVENT_TYPE_LENGTH,
            max_batch_size: MAX_BATCH_SIZE,
            max_params_bytes: MAX_PARAMS_BYTES,
            max_event_payload_bytes: MAX_EVENT_PAYLOAD_BYTES,
            max_step_output_bytes: MAX_STEP_OUTPUT_BYTES,
            max_steps: MAX_STEPS,
            max_sleep_ms: MAX_SLEEP_MS,
            default_event_timeout_ms: DEFAULT_EVENT_TIMEOUT_MS,
            lease_ms: DEFAULT_LEASE_MS,
            claim_batch: DEFAULT_CLAIM_BATCH,
        }
    }
}

/// `^[a-zA-Z0-9_][a-zA-Z0-9-_]*$` and at most `max` characters. Lengths are
/// counted in characters as JavaScript would; the pattern is ASCII-only, so
/// for any string that passes it characters and bytes agree.
pub fn is_valid_string_id(s: &str, max: usize) -> bool {
    let mut bytes = s.bytes();
    let Some(first) = bytes.next() else {
        return false;
    };
    s.len() <= max
        && (first.is_ascii_alphanumeric() || first == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

pub(crate) fn instance_id(id: &str, limits: &WorkflowLimits) -> Result<()> {
    if is_valid_string_id(id, limits.max_instance_id_length) {
        Ok(())
    } else {
        Err(WorkflowError::InvalidInstanceId { id: id.to_owned() })
    }
}

pub(crate) fn workflow_name(name: &str, limits: &WorkflowLimits) -> Result<()> {
    if is_valid_string_id(name, limits.max_workflow_name_length) {
        Ok(())
    } else {
        Err(WorkflowError::InvalidWorkflowName {
            name: name.to_owned(),
            max: limits.max_workflow_name_length,
        })
    }
}

pub(crate) fn event_type(event_type: &str, limits: &WorkflowLimits) -> Result<()> {
    if is_valid_string_id(event_type, limits.max_event_type_length) {
        Ok(())
    } else {
        Err(WorkflowError::InvalidEventType {
            event_type: event_type.to_owned(),
            max: limits.max_event_type_length,
        })
    }
}

/// Step names may hold any text but control characters (U+0000..U+001F), up
/// to the limit in UTF-16 code units, as JavaScript's `length` counts.
pub(crate) fn step_name(name: &str, limits: &WorkflowLimits) -> Result<()> {
    let too_long = name.encode_utf16().count() > limits.max_step_name_length;
    if too_long || name.chars().any(|c| (c as u32) < 0x20) {
        return Err(WorkflowError::InvalidStepName {
            name: name.to_owned(),
            max: limits.max_step_name_length,
        });
    }
    Ok(())
}

/// A timeout of zero can never be met, so Cloudflare refuses it.
pub(crate) fn step_config(name: &str, config: &StepConfig) -> Result<()> {
    if config.timeout_ms == 0 {
        return Err(WorkflowError::InvalidStepConfig {
            name: name.to_owned(),
        });
    }
    Ok(())
}

pub(crate) fn params(params: &[u8], limits: &WorkflowLimits) -> Result<()> {
    if params.len() > limits.max_params_bytes {
        return Err(WorkflowError::ParamsTooLarge {
            size: params.len(),
            max: limits.max_params_bytes,
        });
    }
    Ok(())
}

pub(crate) fn event_payload(payload: &[u8], limits: &WorkflowLimits) -> Result<()> {
    if payload.len() > limits.max_event_payload_bytes {
        return Err(WorkflowError::EventPayloadTooLarge {
            size: payload.len(),
            max: limits.max_event_payload_bytes,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_id_pattern() {
        assert!(is_valid_string_id("a", 100));
        assert!(is_valid_string_id("_a-b_9", 100));
        assert!(!is_valid_string_id("", 100));
        assert!(!is_valid_string_id("-a", 100));
        assert!(!is_valid_string_id("a.b", 100));
        assert!(!is_valid_string_id("a b", 100));
        assert!(!is_valid_string_id("é", 100));
        assert!(is_valid_string_id(&"x".repeat(100), 100));
        assert!(!is_valid_string_id(&"x".repeat(101), 100));
    }
}
