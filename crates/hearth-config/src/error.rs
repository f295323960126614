//! Errors of loading a config: every problem found, each naming its file and field.

use std::fmt;

/// One thing wrong with a config file.
///
/// Displays as `<file>: <path>: <message>`, e.g.
/// `wrangler.toml: d1_databases[1].binding: missing`. The path is empty for
/// problems with the file as a whole (it cannot be read, or its syntax is broken,
/// in which case the path slot holds `line L, column C`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// File name the problem is in (`wrangler.toml`, `.dev.vars`, ...).
    pub file: String,
    /// Field path inside the file, in the file's own key names.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}: {}: {}", self.file, self.path, self.message)
        }
    }
}

/// Loading failed. Holds every error found (not just the first), and the
/// warnings gathered on the way, so one run shows the user all there is to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", display_lines(.errors))]
pub struct ConfigError {
    /// At least one problem.
    pub errors: Vec<Problem>,
    /// Warnings found before or beside the errors.
    pub warnings: Vec<String>,
}

impl ConfigError {
    pub(crate) fn single(
        file: impl Into<String>,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        ConfigError {
            errors: vec![Problem {
                file: file.into(),
                path: path.into(),
                message: message.into(),
            }],
            warnings: Vec::new(),
        }
    }

    /// Every error as its display line, in the order found.
    pub fn lines(&self) -> Vec<String> {
        self.errors.iter().map(ToString::to_string).collect()
    }
}

fn display_lines(errors: &[Problem]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}
