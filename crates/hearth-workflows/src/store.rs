//! The journal's storage, apart from the engine's rules: a transaction that
//! runs SQL with `?N` parameters and answers rows of plain values.
//!
//! The engine ([`crate::WorkflowEngine`]) writes one SQL text that both
//! backends accept; the few spots where SQLite and PostgreSQL differ ask
//! [`Dialect`]. [`JournalStore::write`] runs one transaction at a time
//! across every process sharing the journal (SQLite's `BEGIN IMMEDIATE`, a
//! PostgreSQL advisory lock), so a check and the write it guards never
//! interleave with another runner's.

use crate::error::{Result, WorkflowError};

/// One SQL value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Null,
    Int(i64),
    Text(String),
    Blob(Vec<u8>),
}

impl Value {
    fn kind(&self) -> &'static str {
        match self {
            Value::Null => "NULL",
            Value::Int(_) => "an integer",
            Value::Text(_) => "text",
            Value::Blob(_) => "bytes",
        }
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}
impl From<u32> for Value {
    fn from(v: u32) -> Self {
        Value::Int(i64::from(v))
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Int(i64::from(v))
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_owned())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}
impl From<&String> for Value {
    fn from(v: &String) -> Self {
        Value::Text(v.clone())
    }
}
impl From<&[u8]> for Value {
    fn from(v: &[u8]) -> Self {
        Value::Blob(v.to_vec())
    }
}
impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Self {
        Value::Blob(v)
    }
}
impl From<&Vec<u8>> for Value {
    fn from(v: &Vec<u8>) -> Self {
        Value::Blob(v.clone())
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// Parameters for [`Tx::execute`] and [`Tx::query`], bound `?1`, `?2`, ...
#[macro_export]
#[doc(hidden)]
macro_rules! vals {
    ($($v:expr),* $(,)?) => { &[$($crate::store::Value::from($v)),*][..] };
}

/// One result row.
#[derive(Debug, Clone, Default)]
pub struct Row(pub Vec<Value>);

impl Row {
    fn at(&self, i: usize) -> &Value {
        self.0.get(i).unwrap_or(&Value::Null)
    }

    fn bad(&self, i: usize, expected: &'static str) -> WorkflowError {
        WorkflowError::BadColumn {
            column: i,
            found: self.at(i).kind(),
            expected,
        }
    }

    pub fn opt_int(&self, i: usize) -> Result<Option<i64>> {
        match self.at(i) {
            Value::Null => Ok(None),
            Value::Int(v) => Ok(Some(*v)),
            _ => Err(self.bad(i, "an integer")),
        }
    }

    pub fn int(&self, i: usize) -> Result<i64> {
        self.opt_int(i)?.ok_or_else(|| self.bad(i, "an integer"))
    }

    pub fn opt_u32(&self, i: usize) -> Result<Option<u32>> {
        Ok(self.opt_int(i)?.map(|v| u32::try_from(v).unwrap_or(0)))
    }

    pub fn u32(&self, i: usize) -> Result<u32> {
        Ok(u32::try_from(self.int(i)?).unwrap_or(0))
    }

    pub fn opt_text(&self, i: usize) -> Result<Option<String>> {
        match self.at(i) {
            Value::Null => Ok(None),
            Value::Text(v) => Ok(Some(v.clone())),
            _ => Err(self.bad(i, "text")),
        }
    }

    pub fn text(&self, i: usize) -> Result<String> {
        self.opt_text(i)?.ok_or_else(|| self.bad(i, "text"))
    }

    pub fn opt_blob(&self, i: usize) -> Result<Option<Vec<u8>>> {
        match self.at(i) {
            Value::Null => Ok(None),
            Value::Blob(v) => Ok(Some(v.clone())),
            // SQLite keeps an empty blob bound from Rust as a blob, but a
            // value written by hand may come back as text.
            Value::Text(v) => Ok(Some(v.as_bytes().to_vec())),
            Value::Int(_) => Err(self.bad(i, "bytes")),
        }
    }

    pub fn blob(&self, i: usize) -> Result<Vec<u8>> {
        self.opt_blob(i)?.ok_or_else(|| self.bad(i, "bytes"))
    }

    pub fn opt_bool(&self, i: usize) -> Result<Option<bool>> {
        Ok(self.opt_int(i)?.map(|v| v != 0))
    }
}

/// Where the two SQL dialects differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// Whether `workflow` is in the newline-delimited name set `param`.
    pub fn name_in_set(self, param: &str) -> String {
        match self {
            Dialect::Sqlite => format!("instr({param}, char(10) || workflow || char(10)) > 0"),
            Dialect::Postgres => format!("strpos({param}, chr(10) || workflow || chr(10)) > 0"),
        }
    }

    /// The column giving `wf_steps` rows in the order they were inserted.
    pub fn step_order(self) -> &'static str {
        match self {
            Dialect::Sqlite => "rowid",
            Dialect::Postgres => "seq",
        }
    }
}

/// One open transaction.
pub trait Tx {
    /// Runs a statement; answers how many rows it changed.
    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<usize>;
    /// Runs a query; answers every row.
    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>>;

    /// The first row, if any.
    fn query_opt(&mut self, sql: &str, params: &[Value]) -> Result<Option<Row>> {
        Ok(self.query(sql, params)?.into_iter().next())
    }

    /// Exactly one row (an aggregate, or a row known to exist).
    fn query_one(&mut self, sql: &str, params: &[Value]) -> Result<Row> {
        self.query_opt(sql, params)?
            .ok_or_else(|| WorkflowError::BadColumn {
                column: 0,
                found: "no row",
                expected: "a row",
            })
    }
}

/// The journal's backend: SQLite ([`crate::sqlite::SqliteJournal`]) or, in
/// cluster mode, PostgreSQL ([`crate::postgres::PgJournal`]).
pub trait JournalStore: Send + Sync + std::fmt::Debug {
    /// Runs `f` in one write transaction, exclusive across every process
    /// sharing the journal, committed (durably) when `f` answers `Ok` and
    /// rolled back otherwise.
    fn write(&self, f: &mut dyn FnMut(&mut dyn Tx) -> Result<()>) -> Result<()>;
    /// Runs `f` over one consistent snapshot, writing nothing.
    fn read(&self, f: &mut dyn FnMut(&mut dyn Tx) -> Result<()>) -> Result<()>;
    fn dialect(&self) -> Dialect;
    /// Names where the journal lives, for health output and logs.
    fn describe(&self) -> String;
}
