//! A path-tracking walk over the parsed document: every accessor knows where it
//! is (`env.staging.kv_namespaces[0].id`), records what is wrong there and carries on,
//! so that one load reports every problem in the file.

use serde_json::{Map, Value};

use crate::error::Problem;

/// Which syntax the document came from; only changes how values are described.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Syntax {
    Toml,
    Json,
}

/// Errors and warnings collected for one file.
#[derive(Debug)]
pub(crate) struct Diag {
    pub file: String,
    pub syntax: Syntax,
    pub errors: Vec<Problem>,
    pub warnings: Vec<String>,
}

impl Diag {
    pub fn new(file: impl Into<String>, syntax: Syntax) -> Self {
        Diag {
            file: file.into(),
            syntax,
            errors: Vec::new(),
            warnings: Vec::new(),
        }
    }

    pub fn error(&mut self, path: &str, message: impl Into<String>) {
        let problem = Problem {
            file: self.file.clone(),
            path: path.to_string(),
            message: message.into(),
        };
        // The top level is checked on its own and again under an environment; say it once.
        if !self.errors.contains(&problem) {
            self.errors.push(problem);
        }
    }

    pub fn warn(&mut self, path: &str, message: impl AsRef<str>) {
        let line = if path.is_empty() {
            format!("{}: {}", self.file, message.as_ref())
        } else {
            format!("{}: {}: {}", self.file, path, message.as_ref())
        };
        if !self.warnings.contains(&line) {
            self.warnings.push(line);
        }
    }

    /// "found ..." text for a value of the wrong type.
    pub fn describe(&self, value: &Value) -> String {
        match value {
            Value::Null => "null".to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => n.to_string(),
            Value::String(s) => {
                let shown: String = s.chars().take(60).collect();
                let quoted = Value::String(shown).to_string();
                if s.chars().count() > 60 {
                    format!("{}...", quoted.trim_end_matches('"'))
                } else {
                    quoted
                }
            }
            Value::Array(_) => "an array".to_string(),
            Value::Object(_) => match self.syntax {
                Syntax::Toml => "a table".to_string(),
                Syntax::Json => "an object".to_string(),
            },
        }
    }

    pub fn an_object(&self) -> &'static str {
        match self.syntax {
            Syntax::Toml => "a table",
            Syntax::Json => "an object",
        }
    }

    pub fn wrong_type(&mut self, path: &str, expected: &str, found: &Value) {
        let message = format!("expected {expected}, found {}", self.describe(found));
        self.error(path, message);
    }
}

/// `parent.key`, or `key` at the top.
pub(crate) fn child(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

/// `parent[index]`.
pub(crate) fn item(parent: &str, index: usize) -> String {
    format!("{parent}[{index}]")
}

pub(crate) fn as_str(d: &mut Diag, path: &str, value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        other => {
            d.wrong_type(path, "a string", other);
            None
        }
    }
}

/// A string that must not be empty (names, ids).
pub(crate) fn as_name(d: &mut Diag, path: &str, value: &Value) -> Option<String> {
    let s = as_str(d, path, value)?;
    if s.is_empty() {
        d.error(path, "must not be empty");
        return None;
    }
    Some(s)
}

pub(crate) fn as_bool(d: &mut Diag, path: &str, value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        other => {
            d.wrong_type(path, "a boolean", other);
            None
        }
    }
}

/// A whole, non-negative number.
pub(crate) fn as_uint(d: &mut Diag, path: &str, value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                Some(u)
            } else if n.as_i64().is_some() {
                d.error(path, format!("must not be negative, found {n}"));
                None
            } else {
                // A float: accept 10.0, refuse 10.5.
                match n.as_f64() {
                    Some(f) if f >= 0.0 && f.fract() == 0.0 && f <= u64::MAX as f64 => {
                        Some(f as u64)
                    }
                    _ => {
                        d.wrong_type(path, "an integer", value);
                        None
                    }
                }
            }
        }
        other => {
            d.wrong_type(path, "an integer", other);
            None
        }
    }
}

pub(crate) fn as_f64(d: &mut Diag, path: &str, value: &Value) -> Option<f64> {
    match value.as_f64() {
        Some(f) => Some(f),
        None => {
            d.wrong_type(path, "a number", value);
            None
        }
    }
}

pub(crate) fn as_array<'a>(d: &mut Diag, path: &str, value: &'a Value) -> Option<&'a Vec<Value>> {
    match value {
        Value::Array(items) => Some(items),
        other => {
            d.wrong_type(path, "an array", other);
            None
        }
    }
}

pub(crate) fn as_object<'a>(
    d: &mut Diag,
    path: &str,
    value: &'a Value,
) -> Option<&'a Map<String, Value>> {
    match value {
        Value::Object(map) => Some(map),
        other => {
            let expected = d.an_object();
            d.wrong_type(path, expected, other);
            None
        }
    }
}

/// An array of strings; each bad element is reported at its own index.
pub(crate) fn as_str_list(d: &mut Diag, path: &str, value: &Value) -> Option<Vec<String>> {
    let items = as_array(d, path, value)?;
    let mut out = Vec::with_capacity(items.len());
    for (i, v) in items.iter().enumerate() {
        if let Some(s) = as_str(d, &item(path, i), v) {
            out.push(s);
        }
    }
    Some(out)
}

/// A table being read: remembers which keys were consumed so the rest can be
/// reported as unknown.
pub(crate) struct Table<'a> {
    pub map: &'a Map<String, Value>,
    pub path: String,
    used: Vec<String>,
}

impl<'a> Table<'a> {
    pub fn new(map: &'a Map<String, Value>, path: impl Into<String>) -> Self {
        Table {
            map,
            path: path.into(),
            used: Vec::new(),
        }
    }

    /// Reads `value` as a table at `path`; reports and returns None otherwise.
    pub fn from_value(d: &mut Diag, path: &str, value: &'a Value) -> Option<Self> {
        as_object(d, path, value).map(|m| Table::new(m, path))
    }

    pub fn has(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    pub fn path_of(&self, key: &str) -> String {
        child(&self.path, key)
    }

    /// The value at `key` and its path; marks the key as known.
    pub fn get(&mut self, key: &str) -> Option<(String, &'a Value)> {
        self.mark(key);
        self.map.get(key).map(|v| (child(&self.path, key), v))
    }

    pub fn mark(&mut self, key: &str) {
        if !self.used.iter().any(|k| k == key) {
            self.used.push(key.to_string());
        }
    }

    /// Keys Cloudflare defines that Hearth reads no meaning from: known, so no warning.
    pub fn ignore(&mut self, keys: &[&str]) {
        for k in keys {
            self.mark(k);
        }
    }

    pub fn req_name(&mut self, d: &mut Diag, key: &str) -> Option<String> {
        match self.get(key) {
            Some((p, v)) => as_name(d, &p, v),
            None => {
                d.error(&self.path_of(key), "missing");
                None
            }
        }
    }

    pub fn opt_str(&mut self, d: &mut Diag, key: &str) -> Option<String> {
        let (p, v) = self.get(key)?;
        as_str(d, &p, v)
    }

    pub fn opt_name(&mut self, d: &mut Diag, key: &str) -> Option<String> {
        let (p, v) = self.get(key)?;
        as_name(d, &p, v)
    }

    pub fn opt_bool(&mut self, d: &mut Diag, key: &str) -> Option<bool> {
        let (p, v) = self.get(key)?;
        as_bool(d, &p, v)
    }

    pub fn opt_uint(&mut self, d: &mut Diag, key: &str) -> Option<u64> {
        let (p, v) = self.get(key)?;
        as_uint(d, &p, v)
    }

    /// An optional integer within `min..=max`; out of range is reported with the bound broken.
    pub fn opt_uint_in(&mut self, d: &mut Diag, key: &str, min: u64, max: u64) -> Option<u64> {
        let (p, v) = self.get(key)?;
        let n = as_uint(d, &p, v)?;
        check_range(d, &p, n, min, max)
    }

    pub fn opt_f64(&mut self, d: &mut Diag, key: &str) -> Option<f64> {
        let (p, v) = self.get(key)?;
        as_f64(d, &p, v)
    }

    pub fn opt_str_list(&mut self, d: &mut Diag, key: &str) -> Vec<String> {
        match self.get(key) {
            Some((p, v)) => as_str_list(d, &p, v).unwrap_or_default(),
            None => Vec::new(),
        }
    }

    /// Items of an optional array of tables, each with its path.
    pub fn opt_tables(&mut self, d: &mut Diag, key: &str) -> Vec<Table<'a>> {
        let Some((p, v)) = self.get(key) else {
            return Vec::new();
        };
        tables_of(d, &p, v)
    }

    /// Warns about every key no accessor asked for.
    pub fn finish(self, d: &mut Diag) {
        for key in self.map.keys() {
            if !self.used.iter().any(|k| k == key) {
                d.warn(&child(&self.path, key), "unknown field");
            }
        }
    }
}

/// Each element of an array of tables, wrong elements reported at their index.
pub(crate) fn tables_of<'a>(d: &mut Diag, path: &str, value: &'a Value) -> Vec<Table<'a>> {
    let Some(items) = as_array(d, path, value) else {
        return Vec::new();
    };
    items
        .iter()
        .enumerate()
        .filter_map(|(i, v)| Table::from_value(d, &item(path, i), v))
        .collect()
}

pub(crate) fn check_range(d: &mut Diag, path: &str, n: u64, min: u64, max: u64) -> Option<u64> {
    if n < min {
        d.error(path, format!("must be at least {min}, found {n}"));
        None
    } else if n > max {
        d.error(path, format!("must be at most {max}, found {n}"));
        None
    } else {
        Some(n)
    }
}
