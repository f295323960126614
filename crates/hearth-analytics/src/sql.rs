//! The SQL API's dialect, carried onto SQLite.
//!
//! A query is one `SELECT` (or `WITH ... SELECT`). Before SQLite sees it:
//! a trailing `FORMAT <name>` is taken off and picks the output; each
//! `FROM <dataset>` becomes that dataset's rows; `INTERVAL 'n' UNIT` (or
//! `INTERVAL n UNIT`) becomes a number of seconds, since `timestamp` is
//! held as Unix seconds. Functions: `NOW()` (from the injected clock),
//! `toStartOfInterval(t, INTERVAL ...)`, `intDiv(a, b)`,
//! `toUnixTimestamp(t)`, `toDateTime(t)`, with SQLite's own (`sum`,
//! `count`, `avg`, `min`, `max`, ...). The query runs read-only, under an
//! authorizer that allows reading the points and nothing else, with a time
//! limit and a cap on the answer's size.
//!
//! Not carried: ClickHouse's parametric aggregates (`quantileWeighted(q)`),
//! its type functions beyond those above, and string timestamps compared
//! with `timestamp` (compare with `NOW() - INTERVAL ...` or Unix seconds).

use std::time::{Duration, Instant};

use hearth_core::SharedClock;
use rusqlite::Connection;
use rusqlite::functions::FunctionFlags;
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::types::ValueRef;
use serde_json::{Map, Value, json};

use crate::AnalyticsError;

/// Longest a query may run.
pub const QUERY_TIME_LIMIT: Duration = Duration::from_secs(10);
/// Most rows an answer holds.
pub const MAX_ROWS: usize = 100_000;
/// Longest query text.
pub const MAX_QUERY_BYTES: usize = 64 * 1024;

/// An answer, ready to send.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryOutput {
    pub content_type: &'static str,
    pub body: String,
}

fn bad(message: impl Into<String>) -> AnalyticsError {
    AnalyticsError::Query(message.into())
}

/// Registers the dialect's functions on the query connection.
pub(crate) fn install_functions(
    conn: &Connection,
    clock: SharedClock,
) -> Result<(), AnalyticsError> {
    let flags = FunctionFlags::SQLITE_UTF8;
    conn.create_scalar_function("now", 0, flags, move |_| Ok((clock.now_ms() / 1000) as i64))?;
    let pure = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    conn.create_scalar_function("toStartOfInterval", 2, pure, |ctx| {
        let t: i64 = ctx.get(0)?;
        let every: i64 = ctx.get(1)?;
        if every <= 0 {
            return Err(rusqlite::Error::UserFunctionError(
                "toStartOfInterval: the interval must be positive".into(),
            ));
        }
        Ok(t - t.rem_euclid(every))
    })?;
    conn.create_scalar_function("intDiv", 2, pure, |ctx| {
        let a: i64 = ctx.get(0)?;
        let b: i64 = ctx.get(1)?;
        if b == 0 {
            return Err(rusqlite::Error::UserFunctionError(
                "intDiv: division by zero".into(),
            ));
        }
        Ok(a.div_euclid(b))
    })?;
    for name in ["toUnixTimestamp", "toDateTime"] {
        conn.create_scalar_function(name, 1, pure, |ctx| ctx.get::<i64>(0))?;
    }
    Ok(())
}

/// A token of the query text.
#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    /// A `'...'` literal, with its quotes, as written.
    Text(String),
    /// A `"..."` or `` `...` `` identifier, unquoted.
    Quoted(String),
    Other(String),
    Space,
}

fn tokenize(text: &str) -> Result<Vec<Token>, AnalyticsError> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            while i < chars.len() && chars[i].is_whitespace() {
                i += 1;
            }
            out.push(Token::Space);
        } else if c == '\'' {
            let start = i;
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err(bad("unterminated string literal")),
                    Some('\'') if chars.get(i + 1) == Some(&'\'') => i += 2,
                    Some('\'') => break,
                    Some(_) => i += 1,
                }
            }
            i += 1;
            out.push(Token::Text(chars[start..i].iter().collect()));
        } else if c == '"' || c == '`' {
            let end = chars[i + 1..]
                .iter()
                .position(|&d| d == c)
                .ok_or_else(|| bad("unterminated quoted identifier"))?;
            out.push(Token::Quoted(chars[i + 1..i + 1 + end].iter().collect()));
            i += end + 2;
        } else if c.is_alphanumeric() || c == '_' || c == '.' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '.')
            {
                i += 1;
            }
            out.push(Token::Word(chars[start..i].iter().collect()));
        } else if c == '-' && chars.get(i + 1) == Some(&'-') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            out.push(Token::Space);
        } else {
            out.push(Token::Other(c.to_string()));
            i += 1;
        }
    }
    Ok(out)
}

fn is_word(t: Option<&Token>, word: &str) -> bool {
    matches!(t, Some(Token::Word(w)) if w.eq_ignore_ascii_case(word))
}

/// The next token that is not a space, from `i`, and its position.
fn next_solid(tokens: &[Token], mut i: usize) -> Option<(usize, &Token)> {
    while let Some(t) = tokens.get(i) {
        if *t != Token::Space {
            return Some((i, t));
        }
        i += 1;
    }
    None
}

fn unit_seconds(unit: &str) -> Option<i64> {
    let unit = unit.to_ascii_uppercase();
    let unit = unit.trim_end_matches('S');
    Some(match unit {
        "SECOND" => 1,
        "MINUTE" => 60,
        "HOUR" => 3600,
        "DAY" => 86_400,
        "WEEK" => 7 * 86_400,
        "MONTH" => 30 * 86_400,
        "YEAR" => 365 * 86_400,
        _ => return None,
    })
}

fn sql_string(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The query with datasets and intervals rewritten, and its output format.
pub fn translate(text: &str) -> Result<(String, Format), AnalyticsError> {
    if text.len() > MAX_QUERY_BYTES {
        return Err(bad(format!(
            "the query is {} bytes, above the {MAX_QUERY_BYTES}-byte limit",
            text.len()
        )));
    }
    let mut tokens = tokenize(text.trim())?;
    while matches!(tokens.last(), Some(Token::Space))
        || tokens.last() == Some(&Token::Other(";".into()))
    {
        tokens.pop();
    }
    if tokens.iter().any(|t| *t == Token::Other(";".into())) {
        return Err(bad("only one statement per query"));
    }
    let mut format = Format::Json;
    let solid: Vec<usize> = (0..tokens.len())
        .filter(|&i| tokens[i] != Token::Space)
        .collect();
    if solid.len() >= 2 && is_word(tokens.get(solid[solid.len() - 2]), "FORMAT") {
        let Token::Word(name) = &tokens[solid[solid.len() - 1]] else {
            return Err(bad("FORMAT needs a format name"));
        };
        format = Format::parse(name)?;
        tokens.truncate(solid[solid.len() - 2]);
    }
    match next_solid(&tokens, 0) {
        Some((_, Token::Word(w)))
            if w.eq_ignore_ascii_case("SELECT") || w.eq_ignore_ascii_case("WITH") => {}
        _ => return Err(bad("only SELECT queries are supported")),
    }
    let mut out = String::new();
    let mut i = 0;
    while i < tokens.len() {
        let t = &tokens[i];
        if is_word(Some(t), "INTERVAL") {
            let (ni, n) =
                next_solid(&tokens, i + 1).ok_or_else(|| bad("INTERVAL needs a number"))?;
            let amount: i64 = match n {
                Token::Text(s) => s.trim_matches('\'').trim().parse(),
                Token::Word(s) => s.parse(),
                _ => "x".parse(),
            }
            .map_err(|_| bad("INTERVAL needs a whole number, as in INTERVAL '1' DAY"))?;
            let (ui, unit) =
                next_solid(&tokens, ni + 1).ok_or_else(|| bad("INTERVAL needs a unit"))?;
            let Token::Word(unit) = unit else {
                return Err(bad("INTERVAL needs a unit such as DAY"));
            };
            let secs =
                unit_seconds(unit).ok_or_else(|| bad(format!("unknown INTERVAL unit {unit}")))?;
            out.push_str(&format!("({})", amount * secs));
            i = ui + 1;
            continue;
        }
        if is_word(Some(t), "FROM") {
            out.push_str("FROM ");
            if let Some((di, name)) = next_solid(&tokens, i + 1) {
                let dataset = match name {
                    Token::Word(w) => Some(w.clone()),
                    Token::Quoted(q) => Some(q.clone()),
                    _ => None,
                };
                if let Some(dataset) = dataset {
                    out.push_str(&format!(
                        "(SELECT * FROM points WHERE dataset = {}) AS \"{}\"",
                        sql_string(&dataset),
                        dataset.replace('"', "\"\"")
                    ));
                    i = di + 1;
                    continue;
                }
            }
            i += 1;
            continue;
        }
        match t {
            Token::Word(w) | Token::Other(w) | Token::Text(w) => out.push_str(w),
            Token::Quoted(q) => out.push_str(&format!("\"{}\"", q.replace('"', "\"\""))),
            Token::Space => out.push(' '),
        }
        i += 1;
    }
    Ok((out, format))
}

/// The answer's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `{meta, data, rows, rows_before_limit_at_least}`.
    Json,
    /// One JSON object per line.
    JsonEachRow,
    /// Tab-separated values, no header.
    TabSeparated,
}

impl Format {
    fn parse(name: &str) -> Result<Self, AnalyticsError> {
        match name.to_ascii_lowercase().as_str() {
            "json" => Ok(Format::Json),
            "jsoneachrow" => Ok(Format::JsonEachRow),
            "tabseparated" | "tsv" => Ok(Format::TabSeparated),
            _ => Err(bad(format!(
                "unsupported FORMAT {name}; use JSON, JSONEachRow or TabSeparated"
            ))),
        }
    }
}

/// Allows reading the points table and calling functions; nothing else.
fn authorize(ctx: AuthContext<'_>) -> Authorization {
    match ctx.action {
        AuthAction::Select | AuthAction::Function { .. } | AuthAction::Recursive => {
            Authorization::Allow
        }
        AuthAction::Read {
            table_name: "points",
            ..
        } => Authorization::Allow,
        _ => Authorization::Deny,
    }
}

/// Runs `text` on `conn` and renders the answer.
pub(crate) fn run(conn: &mut Connection, text: &str) -> Result<QueryOutput, AnalyticsError> {
    let (sql, format) = translate(text)?;
    conn.authorizer(Some(authorize))?;
    let started = Instant::now();
    conn.progress_handler(10_000, Some(move || started.elapsed() > QUERY_TIME_LIMIT))?;
    let result = collect(conn, &sql);
    // The hooks are set again before the next query; clearing them is tidiness.
    let _ = conn.progress_handler(0, None::<fn() -> bool>);
    let _ = conn.authorizer(None::<fn(AuthContext<'_>) -> Authorization>);
    let (names, types, rows) = result.map_err(|e| match e {
        rusqlite::Error::SqliteFailure(f, _)
            if f.code == rusqlite::ErrorCode::OperationInterrupted =>
        {
            bad(format!(
                "the query ran longer than {} s",
                QUERY_TIME_LIMIT.as_secs()
            ))
        }
        rusqlite::Error::SqliteFailure(_, Some(m)) => bad(m),
        other => bad(other.to_string()),
    })?;
    Ok(render(format, &names, &types, rows))
}

type Rows = Vec<Vec<Value>>;

fn collect(conn: &Connection, sql: &str) -> rusqlite::Result<(Vec<String>, Vec<String>, Rows)> {
    let mut stmt = conn.prepare(sql)?;
    let names: Vec<String> = stmt.column_names().map(str::to_owned).collect();
    let datetime: Vec<bool> = stmt
        .columns()
        .map(|c| {
            c.decl_type()
                .is_some_and(|t| t.eq_ignore_ascii_case("DATETIME"))
        })
        .collect();
    let mut types: Vec<Option<&'static str>> = vec![None; names.len()];
    let mut out = Vec::new();
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        if out.len() >= MAX_ROWS {
            return Err(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_TOOBIG),
                Some(format!(
                    "the answer has more than {MAX_ROWS} rows; add a LIMIT or aggregate"
                )),
            ));
        }
        let mut values = Vec::with_capacity(names.len());
        for (i, is_time) in datetime.iter().enumerate() {
            let (value, ty) = match row.get_ref(i)? {
                ValueRef::Null => (Value::Null, None),
                ValueRef::Integer(n) if *is_time => (json!(format_datetime(n)), Some("DateTime")),
                ValueRef::Integer(n) => (json!(n), Some("Int64")),
                ValueRef::Real(f) => (json!(f), Some("Float64")),
                ValueRef::Text(t) => (json!(String::from_utf8_lossy(t)), Some("String")),
                ValueRef::Blob(b) => (json!(String::from_utf8_lossy(b)), Some("String")),
            };
            if types[i].is_none() {
                types[i] = ty;
            }
            values.push(value);
        }
        out.push(values);
    }
    let types = types
        .into_iter()
        .map(|t| t.unwrap_or("String").to_owned())
        .collect();
    Ok((names, types, out))
}

fn render(format: Format, names: &[String], types: &[String], rows: Rows) -> QueryOutput {
    let object = |row: Vec<Value>| -> Value {
        let mut m = Map::new();
        for (name, v) in names.iter().zip(row) {
            m.insert(name.clone(), v);
        }
        Value::Object(m)
    };
    match format {
        Format::Json => {
            let count = rows.len();
            let meta: Vec<Value> = names
                .iter()
                .zip(types)
                .map(|(n, t)| json!({ "name": n, "type": t }))
                .collect();
            let data: Vec<Value> = rows.into_iter().map(object).collect();
            QueryOutput {
                content_type: "application/json",
                body: json!({
                    "meta": meta,
                    "data": data,
                    "rows": count,
                    "rows_before_limit_at_least": count,
                })
                .to_string(),
            }
        }
        Format::JsonEachRow => QueryOutput {
            content_type: "application/x-ndjson",
            body: rows
                .into_iter()
                .map(|r| format!("{}\n", object(r)))
                .collect(),
        },
        Format::TabSeparated => QueryOutput {
            content_type: "text/tab-separated-values",
            body: rows
                .into_iter()
                .map(|r| {
                    let cells: Vec<String> = r
                        .into_iter()
                        .map(|v| match v {
                            Value::String(s) => s
                                .replace('\\', "\\\\")
                                .replace('\t', "\\t")
                                .replace('\n', "\\n"),
                            Value::Null => "\\N".into(),
                            other => other.to_string(),
                        })
                        .collect();
                    format!("{}\n", cells.join("\t"))
                })
                .collect(),
        },
    }
}

/// Unix seconds as `YYYY-MM-DD hh:mm:ss` (UTC), the SQL API's DateTime.
pub fn format_datetime(secs: i64) -> String {
    hearth_core::calendar::UtcDateTime::from_unix_ms(secs.saturating_mul(1000)).sql()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datasets_intervals_and_format_are_rewritten() {
        let (sql, format) = translate(
            "SELECT blob1, SUM(_sample_interval) AS n FROM my_events WHERE timestamp > NOW() - INTERVAL '1' DAY GROUP BY blob1 FORMAT JSONEachRow",
        )
        .unwrap();
        assert_eq!(format, Format::JsonEachRow);
        assert_eq!(
            sql,
            "SELECT blob1, SUM(_sample_interval) AS n FROM (SELECT * FROM points WHERE dataset = 'my_events') AS \"my_events\" WHERE timestamp > NOW() - (86400) GROUP BY blob1 "
        );
    }

    #[test]
    fn strings_keep_their_words() {
        let (sql, _) = translate("SELECT 'FROM x INTERVAL' AS s FROM \"odd-name\"").unwrap();
        assert!(sql.starts_with("SELECT 'FROM x INTERVAL' AS s FROM (SELECT * FROM points WHERE dataset = 'odd-name')"), "{sql}");
    }

    #[test]
    fn other_statements_are_refused() {
        for q in [
            "DELETE FROM points",
            "SELECT 1; DROP TABLE points",
            "SELECT 1 FORMAT Parquet",
            "SELECT 'open",
        ] {
            assert!(translate(q).is_err(), "{q}");
        }
    }

    #[test]
    fn datetimes() {
        assert_eq!(format_datetime(0), "1970-01-01 00:00:00");
        assert_eq!(format_datetime(1_700_000_000), "2023-11-14 22:13:20");
        assert_eq!(format_datetime(951_782_400), "2000-02-29 00:00:00");
    }
}
