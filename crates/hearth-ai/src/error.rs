//! Workers AI's errors: an internal code and a description, thrown to the
//! worker as `AiError` with the message `"<code>: <description>"`, as the
//! binding does on Cloudflare (Workers AI's error table).

use hearth_core::{ContractError, ErrorClass};

#[derive(Debug, thiserror::Error)]
pub enum AiError {
    /// 5007: the model is neither local nor routed to a provider.
    #[error("5007: No such model {0} or task")]
    NoSuchModel(String),
    /// 5006: the inputs do not match the model's schema.
    #[error("5006: Error: {0}")]
    BadInput(String),
    /// 3010: the inputs fit the schema but the model cannot take them.
    #[error("3010: Invalid or incomplete input for the model: {0}")]
    InvalidInput(String),
    /// 3006: more than the model takes in one call.
    #[error("3006: Request is too large: {0}")]
    TooLarge(String),
    /// 3039: a configured local model lacks the files it loads from.
    #[error("3039: Model {model} is missing required files ({files})")]
    MissingFiles { model: String, files: String },
    /// 3007: the provider did not answer in time.
    #[error("3007: Request timeout")]
    Timeout,
    /// 3001: the model failed (weights unreadable, provider error).
    #[error("3001: Internal server error: {0}")]
    Internal(String),
}

impl AiError {
    /// Workers AI's internal code.
    pub fn code(&self) -> u32 {
        match self {
            AiError::NoSuchModel(_) => 5007,
            AiError::BadInput(_) => 5006,
            AiError::InvalidInput(_) => 3010,
            AiError::TooLarge(_) => 3006,
            AiError::MissingFiles { .. } => 3039,
            AiError::Timeout => 3007,
            AiError::Internal(_) => 3001,
        }
    }
}

impl ContractError for AiError {
    fn class(&self) -> ErrorClass {
        ErrorClass::Named("AiError")
    }
}

/// A problem in the AI config file, as `<file>: <field>: <what is wrong>`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);
