//! The one rule for which JavaScript exception a contract error becomes.
//! Each binding's error type declares its class; the runtime raises it.

/// The JavaScript exception a contract error is thrown as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    Error,
    TypeError,
    RangeError,
    SyntaxError,
    /// A plain `Error` whose `name` is set, as Workflows does for
    /// `WorkflowError` and `WorkflowFatalError`.
    Named(&'static str),
}

impl ErrorClass {
    /// The `name` the thrown exception carries.
    pub fn name(self) -> &'static str {
        match self {
            ErrorClass::Error => "Error",
            ErrorClass::TypeError => "TypeError",
            ErrorClass::RangeError => "RangeError",
            ErrorClass::SyntaxError => "SyntaxError",
            ErrorClass::Named(name) => name,
        }
    }
}

/// An error a binding contract hands to a worker. Its `Display` is the
/// message the worker sees.
pub trait ContractError: std::error::Error {
    fn class(&self) -> ErrorClass;
}

impl<E: ContractError + ?Sized> ContractError for &E {
    fn class(&self) -> ErrorClass {
        (**self).class()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(ErrorClass::RangeError.name(), "RangeError");
        assert_eq!(ErrorClass::Named("WorkflowError").name(), "WorkflowError");
    }
}
