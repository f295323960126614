//! Every way parsing a cron string or running the scheduler can fail.
//!
//! Cloudflare's API answers any bad expression with `invalid cron string`
//! (code 10100) and nothing more; every parse error here starts with those
//! words, then says which field and which token broke which rule.

use std::fmt;

/// The five fields of a cron expression, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CronField {
    Minute,
    Hour,
    DayOfMonth,
    Month,
    DayOfWeek,
}

impl CronField {
    pub const ALL: [CronField; 5] = [
        CronField::Minute,
        CronField::Hour,
        CronField::DayOfMonth,
        CronField::Month,
        CronField::DayOfWeek,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CronField::Minute => "minute",
            CronField::Hour => "hour",
            CronField::DayOfMonth => "day-of-month",
            CronField::Month => "month",
            CronField::DayOfWeek => "day-of-week",
        }
    }
}

impl fmt::Display for CronField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CronError {
    #[error(
        "invalid cron string \"{cron}\": expected 5 fields (minute hour day-of-month month day-of-week), found {found}"
    )]
    FieldCount { cron: String, found: usize },

    /// One field broke a rule; `problem` names the offending token.
    #[error("invalid cron string \"{cron}\": {field}: {problem}")]
    InvalidField {
        cron: String,
        field: CronField,
        problem: String,
    },

    #[error(
        "too many cron triggers: {count} configured, the limit is {limit} (CronLimits::max_triggers)"
    )]
    TooManyTriggers { count: usize, limit: usize },

    /// Two strings in one worker's list describe the same schedule; the
    /// wording is Cloudflare's validator's.
    #[error("Expression '{cron}' already exists in the form of '{existing}'")]
    DuplicateTrigger { cron: String, existing: String },

    #[error("no cron trigger \"{cron}\" is configured for worker \"{worker}\"")]
    UnknownTrigger { cron: String, worker: String },

    #[error(transparent)]
    Open(#[from] hearth_core::sqlite::OpenError),

    #[error("cron state storage failed: {0}")]
    Storage(#[from] rusqlite::Error),

    #[error("cron state database {path}: {source}")]
    StateFile {
        path: String,
        #[source]
        source: rusqlite::Error,
    },

    /// The store that decides which node fires a slot did not answer.
    #[error("claiming the cron slot: {0}")]
    Claim(String),
}

impl CronError {
    /// The field a parse error is about, if it is one.
    pub fn field(&self) -> Option<CronField> {
        match self {
            CronError::InvalidField { field, .. } => Some(*field),
            _ => None,
        }
    }

    /// Whether the cron state file failed (as opposed to the config's
    /// cron strings).
    pub fn is_storage(&self) -> bool {
        matches!(
            self,
            CronError::Open(_)
                | CronError::Storage(_)
                | CronError::StateFile { .. }
                | CronError::Claim(_)
        )
    }
}

pub type Result<T, E = CronError> = std::result::Result<T, E>;
