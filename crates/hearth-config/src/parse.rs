//! Turns the text of a wrangler file into one JSON-shaped document, whatever its
//! syntax, so a single walk validates TOML and JSON alike.

use std::path::Path;

use serde_json::{Map, Number, Value};

use crate::error::{ConfigError, Problem};
use crate::reader::Syntax;

/// Reads a whole file, refusing anything larger than `max_bytes`.
pub(crate) fn read_limited(path: &Path, file: &str, max_bytes: u64) -> Result<String, ConfigError> {
    let meta = std::fs::metadata(path).map_err(|e| {
        ConfigError::single(file, "", format!("cannot read {}: {e}", path.display()))
    })?;
    if meta.len() > max_bytes {
        return Err(ConfigError::single(
            file,
            "",
            format!(
                "file is {} bytes, more than the limit of {max_bytes} bytes",
                meta.len()
            ),
        ));
    }
    std::fs::read_to_string(path)
        .map_err(|e| ConfigError::single(file, "", format!("cannot read {}: {e}", path.display())))
}

/// Parses `text` as `syntax`; syntax errors carry line and column.
pub(crate) fn parse_document(
    text: &str,
    syntax: Syntax,
    file: &str,
) -> Result<Map<String, Value>, ConfigError> {
    let value = match syntax {
        Syntax::Toml => parse_toml(text, file)?,
        Syntax::Json => parse_jsonc(text, file)?,
    };
    match value {
        Value::Object(map) => Ok(map),
        other => {
            let found = match other {
                Value::Null => "nothing".to_string(),
                Value::Array(_) => "an array".to_string(),
                v => v.to_string(),
            };
            Err(ConfigError::single(
                file,
                "",
                format!("expected an object at the top level, found {found}"),
            ))
        }
    }
}

fn syntax_error(file: &str, line: usize, column: usize, message: &str) -> ConfigError {
    // Parser messages can span lines; keep one problem to one line.
    let message = message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    ConfigError {
        errors: vec![Problem {
            file: file.to_string(),
            path: format!("line {line}, column {column}"),
            message: format!("syntax error: {message}"),
        }],
        warnings: Vec::new(),
    }
}

fn parse_toml(text: &str, file: &str) -> Result<Value, ConfigError> {
    match toml::from_str::<toml::Table>(text) {
        Ok(table) => Ok(toml_table_to_json(table)),
        Err(e) => {
            let (line, column) = e
                .span()
                .map(|s| line_column(text, s.start))
                .unwrap_or((1, 1));
            Err(syntax_error(file, line, column, e.message()))
        }
    }
}

fn parse_jsonc(text: &str, file: &str) -> Result<Value, ConfigError> {
    // Wrangler reads both .json and .jsonc as JSONC: comments and trailing commas,
    // nothing looser.
    let options = jsonc_parser::ParseOptions {
        allow_comments: true,
        allow_trailing_commas: true,
        allow_loose_object_property_names: false,
        allow_missing_commas: false,
        allow_single_quoted_strings: false,
        allow_hexadecimal_numbers: false,
        allow_unary_plus_numbers: false,
        allow_bare_decimal_point_numbers: false,
        allow_non_finite_numbers: false,
        allow_extended_string_escapes: false,
    };
    jsonc_parser::parse_to_serde_value::<Value>(text, &options).map_err(|e| {
        syntax_error(
            file,
            e.line_display(),
            e.column_display(),
            &e.kind().to_string(),
        )
    })
}

/// 1-based line and column (in characters) of a byte offset.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let column = before
        .get(line_start..)
        .map(|s| s.chars().count())
        .unwrap_or(0)
        + 1;
    (line, column)
}

fn toml_table_to_json(table: toml::Table) -> Value {
    Value::Object(
        table
            .into_iter()
            .map(|(k, v)| (k, toml_to_json(v)))
            .collect(),
    )
}

fn toml_to_json(value: toml::Value) -> Value {
    match value {
        toml::Value::String(s) => Value::String(s),
        toml::Value::Integer(i) => Value::Number(i.into()),
        // JSON has no NaN or infinity; such a value is reported as a wrong type later.
        toml::Value::Float(f) => Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        toml::Value::Boolean(b) => Value::Bool(b),
        // An unquoted `compatibility_date = 2024-09-23` is a TOML date; treat it as its text.
        toml::Value::Datetime(dt) => Value::String(dt.to_string()),
        toml::Value::Array(items) => Value::Array(items.into_iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => toml_table_to_json(t),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column() {
        let text = "a\nbc\ndéf";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 3), (2, 2));
        assert_eq!(line_column(text, text.len()), (3, 4));
    }
}
