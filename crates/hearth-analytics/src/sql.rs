//! The SQL API's dialect, carried onto SQLite.
//!
//! A query is one `SELECT` (or `WITH ... SELECT`). Before SQLite sees it:
//! a trailing `FORMAT <name>` is taken off and picks the output; each
//! `FROM <dataset>` becomes that dataset's rows; `INTERVAL 'n' UNIT` (or
//! `INTERVAL n UNIT`) becomes a number of seconds, since `timestamp` is
//! held as Unix seconds; a `'YYYY-MM-DD[ hh:mm:ss]'` literal compared with
//! `timestamp` (`=`, `<`, `>=`, ..., `BETWEEN`) becomes Unix seconds too.
//! Every function call is checked against the dialect's list and refused
//! by name otherwise; `countIf`/`sumIf`/`avgIf` become `CASE` inside
//! SQLite's aggregates, ClickHouse's parametric form `f(p)(args)` becomes
//! `f(p, args)`, and `argMax`/`argMin`/`topK`/`topKWeighted`/
//! `quantileWeighted` run as aggregates of our own (`functions.rs`), as do
//! `NOW()`, `today()` (from the injected clock), `toStartOfInterval`, the
//! `toStartOf*` family, `toDateTime`, `toYear`..`toSecond`, `toYYYYMM`,
//! `intDiv`. Columns whose select item starts with a time function are
//! shown as `DateTime` / `Date`. SQLite-only syntax (`JOIN`, `UNION`,
//! window functions, `GLOB`, ...) is refused by name. The query runs
//! read-only, under an authorizer that allows reading the points and
//! nothing else, with a time limit and a cap on the answer's size.

use std::cell::Cell;
use std::time::{Duration, Instant};

use hearth_core::SharedClock;
use rusqlite::Connection;
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
    crate::functions::install(conn, clock)
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

/// A query carried onto SQLite: the statement, its output format, and
/// which answer columns hold times (by position).
#[derive(Debug, Clone, PartialEq)]
pub struct Translated {
    pub sql: String,
    pub format: Format,
    pub columns: Vec<ColumnKind>,
}

/// How an answer column is shown when SQLite gives a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    Plain,
    /// Unix seconds shown as `YYYY-MM-DD hh:mm:ss`.
    DateTime,
    /// Unix seconds shown as `YYYY-MM-DD`.
    Date,
}

/// Keywords that may stand before `(` without being a function call.
const KEYWORDS_BEFORE_PAREN: &[&str] = &[
    "IN", "AND", "OR", "NOT", "AS", "WHERE", "SELECT", "BY", "HAVING", "ON", "WHEN", "THEN",
    "ELSE", "CASE", "IS", "LIKE", "BETWEEN", "WITH", "DISTINCT", "ALL", "CAST", "EXISTS", "LIMIT",
    "OFFSET", "END", "ASC", "DESC",
];

/// Words that may follow `FROM <dataset>` and are not an alias.
const CLAUSES_AFTER_FROM: &[&str] = &[
    "WHERE",
    "GROUP",
    "ORDER",
    "LIMIT",
    "HAVING",
    "OFFSET",
    "JOIN",
    "UNION",
    "INTERSECT",
    "EXCEPT",
    "WINDOW",
    "INNER",
    "LEFT",
    "RIGHT",
    "FULL",
    "CROSS",
    "NATURAL",
    "ON",
    "USING",
];

/// SQL that SQLite has and the SQL API does not: refused by name.
const REFUSED: &[&str] = &[
    "JOIN",
    "UNION",
    "INTERSECT",
    "EXCEPT",
    "OVER",
    "WINDOW",
    "GLOB",
    "REGEXP",
    "MATCH",
    "COLLATE",
    "RECURSIVE",
    "VALUES",
    "INDEXED",
    "PRAGMA",
    "ATTACH",
    "INSERT",
    "UPDATE",
    "DELETE",
    "CREATE",
    "DROP",
    "ALTER",
    "REPLACE",
];

/// Functions passed to SQLite under their own name (lower case).
const PLAIN_FUNCTIONS: &[&str] = &[
    "count",
    "sum",
    "avg",
    "min",
    "max",
    "abs",
    "round",
    "lower",
    "upper",
    "length",
    "coalesce",
    "substring",
    "now",
    "today",
    "intdiv",
    "tostartofinterval",
    "tostartofweek",
    "tostartofminute",
    "tostartoffiveminutes",
    "tostartoftenminutes",
    "tostartoffifteenminutes",
    "tostartofhour",
    "tostartofday",
    "tostartofmonth",
    "tostartofquarter",
    "tostartofyear",
    "todatetime",
    "tounixtimestamp",
    "toyear",
    "tomonth",
    "todayofmonth",
    "todayofweek",
    "tohour",
    "tominute",
    "tosecond",
    "toyyyymm",
    "bitand",
    "bitor",
    "bitxor",
    "bitnot",
    "bitcount",
    "bithammingdistance",
    "bitshiftleft",
    "bitshiftright",
    "bitrotateleft",
    "bitrotateright",
    "bittest",
    "startswith",
    "endswith",
    "position",
    "concat",
];

/// Functions whose value is a DateTime / a Date.
const DATETIME_FUNCTIONS: &[&str] = &[
    "now",
    "todatetime",
    "tostartofinterval",
    "tostartofminute",
    "tostartoffiveminutes",
    "tostartoftenminutes",
    "tostartoffifteenminutes",
    "tostartofhour",
    "tostartofday",
];
const DATE_FUNCTIONS: &[&str] = &[
    "today",
    "tostartofweek",
    "tostartofmonth",
    "tostartofquarter",
    "tostartofyear",
];

fn dialect_list() -> String {
    "count, sum, avg, min, max, countIf, sumIf, avgIf, argMax, argMin, topK, topKWeighted, \
     quantileWeighted, quantileExactWeighted, toStartOfInterval and the toStartOf* family, \
     toDateTime, toUnixTimestamp, now, today, toYear..toSecond, toYYYYMM, intDiv, abs, round, \
     lower, upper, length, coalesce, substring, if, concat, position, startsWith, endsWith, \
     bitAnd, bitOr, bitXor, bitNot, bitCount, bitHammingDistance, bitShiftLeft, bitShiftRight, \
     bitRotateLeft, bitRotateRight, bitTest"
        .into()
}

/// The query with datasets, intervals and the dialect's functions
/// rewritten, and its output format.
pub fn translate(text: &str) -> Result<Translated, AnalyticsError> {
    translate_inner(text, false).map(|(t, _)| t)
}

/// The query carried onto the per-second rollup (see `SCHEMA_V2` in the
/// crate root) when it reads only `timestamp`, `blob1` and `dataset` and
/// aggregates with what the rollup keeps exactly: `count()`, `countIf`,
/// `SUM(_sample_interval)`, `sumIf(_sample_interval, ...)`, `min`, `max`,
/// `count(DISTINCT ...)`. `None` when it does not; it then reads the
/// points. The answer is the same either way.
pub fn translate_rollup(text: &str) -> Result<Option<String>, AnalyticsError> {
    let (t, eligible) = translate_inner(text, true)?;
    Ok(eligible.then_some(t.sql))
}

fn translate_inner(text: &str, rollup: bool) -> Result<(Translated, bool), AnalyticsError> {
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
    // Names defined by `WITH name AS (...)` are not datasets.
    let ctes: Vec<String> = (0..tokens.len())
        .filter_map(|i| match &tokens[i] {
            Token::Word(w) | Token::Quoted(w) => {
                let (a, _) = next_solid(&tokens, i + 1)?;
                let (p, paren) = next_solid(&tokens, a + 1)?;
                (is_word(tokens.get(a), "AS") && *paren == Token::Other("(".into()) && p > a)
                    .then(|| w.to_ascii_lowercase())
            }
            _ => None,
        })
        .collect();
    let rewriter = Rewriter {
        ctes: &ctes,
        rollup,
        eligible: Cell::new(rollup),
        aggregated: Cell::new(false),
    };
    let sql = rewriter.emit(&tokens)?;
    let selects = tokens.iter().filter(|t| is_word(Some(t), "SELECT")).count();
    let grouped = (0..tokens.len()).any(|i| {
        is_word(tokens.get(i), "GROUP")
            && next_solid(&tokens, i + 1).is_some_and(|(_, t)| is_word(Some(t), "BY"))
    });
    let eligible = rewriter.eligible.get()
        && selects == 1
        && ctes.is_empty()
        && (grouped || rewriter.aggregated.get());
    Ok((
        Translated {
            sql,
            format,
            columns: column_kinds(&tokens),
        },
        eligible,
    ))
}

/// Whether `name` (a column, maybe qualified) is one the rollup does not
/// hold row by row.
fn outside_rollup(name: &str) -> bool {
    let column = name.rsplit('.').next().unwrap_or(name).to_ascii_lowercase();
    let numbered = |prefix: &str| {
        column
            .strip_prefix(prefix)
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    };
    column == "index1"
        || column == "_sample_interval"
        || column.starts_with("_hearth")
        || (numbered("blob") && column != "blob1")
        || numbered("double")
}

/// Whether `tokens` is just the column `_sample_interval`.
fn is_sample_interval(tokens: &[Token]) -> bool {
    let mut solid = tokens.iter().filter(|t| **t != Token::Space);
    matches!(
        (solid.next(), solid.next()),
        (Some(Token::Word(w) | Token::Quoted(w)), None) if w.eq_ignore_ascii_case("_sample_interval")
    )
}

/// Index of the `)` matching the `(` at `open`.
fn matching(tokens: &[Token], open: usize) -> Result<usize, AnalyticsError> {
    let mut depth = 0usize;
    for (i, t) in tokens.iter().enumerate().skip(open) {
        match t {
            Token::Other(p) if p == "(" => depth += 1,
            Token::Other(p) if p == ")" => {
                depth -= 1;
                if depth == 0 {
                    return Ok(i);
                }
            }
            _ => {}
        }
    }
    Err(bad("unbalanced parentheses"))
}

/// The tokens between parentheses split at top-level commas.
fn split_args(tokens: &[Token]) -> Vec<&[Token]> {
    if tokens.iter().all(|t| *t == Token::Space) {
        return Vec::new();
    }
    let mut out = Vec::new();
    let (mut depth, mut start) = (0usize, 0);
    for (i, t) in tokens.iter().enumerate() {
        match t {
            Token::Other(p) if p == "(" => depth += 1,
            Token::Other(p) if p == ")" => depth = depth.saturating_sub(1),
            Token::Other(p) if p == "," && depth == 0 => {
                out.push(&tokens[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&tokens[start..]);
    out
}

fn is_timestamp(t: Option<&Token>) -> bool {
    match t {
        Some(Token::Word(w)) => {
            let w = w.to_ascii_lowercase();
            w == "timestamp" || w.ends_with(".timestamp")
        }
        Some(Token::Quoted(q)) => q.eq_ignore_ascii_case("timestamp"),
        _ => false,
    }
}

fn is_comparison(t: &Token) -> bool {
    matches!(t, Token::Other(o) if matches!(o.as_str(), "<" | ">" | "=" | "!"))
}

/// Whether the string literal at `i` is compared with `timestamp`:
/// `timestamp >= '...'`, `'...' < timestamp`, `timestamp BETWEEN '...'
/// AND '...'`, `timestamp IN ('...', ...)` is not covered.
fn compared_with_timestamp(tokens: &[Token], i: usize) -> bool {
    let solid_before: Vec<&Token> = tokens[..i]
        .iter()
        .rev()
        .filter(|t| **t != Token::Space)
        .take(5)
        .collect();
    let solid_after: Vec<&Token> = tokens[i + 1..]
        .iter()
        .filter(|t| **t != Token::Space)
        .take(3)
        .collect();
    let ops_before = solid_before.iter().take_while(|t| is_comparison(t)).count();
    if ops_before > 0 && is_timestamp(solid_before.get(ops_before).copied()) {
        return true;
    }
    let ops_after = solid_after.iter().take_while(|t| is_comparison(t)).count();
    if ops_after > 0 && is_timestamp(solid_after.get(ops_after).copied()) {
        return true;
    }
    if is_word(solid_before.first().copied(), "BETWEEN") {
        return is_timestamp(solid_before.get(1).copied());
    }
    is_word(solid_before.first().copied(), "AND")
        && matches!(solid_before.get(1), Some(Token::Text(_)))
        && is_word(solid_before.get(2).copied(), "BETWEEN")
        && is_timestamp(solid_before.get(3).copied())
}

struct Rewriter<'a> {
    ctes: &'a [String],
    /// Datasets read from the rollup instead of the points.
    rollup: bool,
    /// Still answerable from the rollup.
    eligible: Cell<bool>,
    /// An aggregate was seen.
    aggregated: Cell<bool>,
}

impl Rewriter<'_> {
    fn emit(&self, tokens: &[Token]) -> Result<String, AnalyticsError> {
        let mut out = String::new();
        let mut i = 0;
        while i < tokens.len() {
            let t = &tokens[i];
            match t {
                Token::Word(w) if w.eq_ignore_ascii_case("INTERVAL") => {
                    let (secs, end) = interval(tokens, i)?;
                    out.push_str(&format!("({secs})"));
                    i = end + 1;
                    continue;
                }
                Token::Word(w) if w.eq_ignore_ascii_case("FROM") => {
                    out.push_str("FROM ");
                    if let Some((di, name)) = next_solid(tokens, i + 1) {
                        let dataset = match name {
                            Token::Word(w) | Token::Quoted(w) => Some(w.clone()),
                            _ => None,
                        };
                        if let Some(dataset) = dataset
                            && !self.ctes.contains(&dataset.to_ascii_lowercase())
                        {
                            let table = if self.rollup {
                                "points_by_second"
                            } else {
                                "points"
                            };
                            out.push_str(&format!(
                                "(SELECT * FROM {table} WHERE dataset = {})",
                                sql_string(&dataset)
                            ));
                            // The dataset's name is the rows' alias unless
                            // the query gives one.
                            let aliased = match next_solid(tokens, di + 1) {
                                Some((_, Token::Quoted(_))) => true,
                                Some((_, Token::Word(w))) => {
                                    !CLAUSES_AFTER_FROM.iter().any(|c| w.eq_ignore_ascii_case(c))
                                }
                                _ => false,
                            };
                            if !aliased {
                                out.push_str(&format!(" AS \"{}\"", dataset.replace('"', "\"\"")));
                            }
                            i = di + 1;
                            continue;
                        }
                    }
                    i += 1;
                    continue;
                }
                Token::Word(w) if REFUSED.iter().any(|r| w.eq_ignore_ascii_case(r)) => {
                    return Err(bad(format!(
                        "{} is not part of the Analytics Engine SQL dialect (one SELECT over one dataset, with WHERE, GROUP BY, HAVING, ORDER BY, LIMIT)",
                        w.to_ascii_uppercase()
                    )));
                }
                Token::Word(w)
                    if matches!(next_solid(tokens, i + 1), Some((_, Token::Other(p))) if p == "(")
                        && !KEYWORDS_BEFORE_PAREN
                            .iter()
                            .any(|k| w.eq_ignore_ascii_case(k)) =>
                {
                    let (call, end) = self.call(tokens, i, w)?;
                    out.push_str(&call);
                    i = end + 1;
                    continue;
                }
                Token::Text(s) if compared_with_timestamp(tokens, i) => {
                    let inner = s[1..s.len() - 1].replace("''", "'");
                    let secs = crate::functions::parse_datetime(&inner).ok_or_else(|| {
                        bad(format!(
                            "timestamp is compared with {s}, which is not 'YYYY-MM-DD hh:mm:ss' or 'YYYY-MM-DD'"
                        ))
                    })?;
                    out.push_str(&secs.to_string());
                }
                Token::Word(w) | Token::Other(w) | Token::Text(w) => {
                    if self.rollup {
                        let star_item = w == "*"
                            && match tokens[..i].iter().rev().find(|t| **t != Token::Space) {
                                None => true,
                                Some(Token::Word(p)) => {
                                    p.ends_with('.')
                                        || p.eq_ignore_ascii_case("SELECT")
                                        || p.eq_ignore_ascii_case("DISTINCT")
                                }
                                Some(Token::Other(p)) => p == ",",
                                _ => false,
                            };
                        if star_item || (matches!(t, Token::Word(_)) && outside_rollup(w)) {
                            self.eligible.set(false);
                        }
                    }
                    out.push_str(w)
                }
                Token::Quoted(q) => {
                    if self.rollup && outside_rollup(q) {
                        self.eligible.set(false);
                    }
                    out.push_str(&format!("\"{}\"", q.replace('"', "\"\"")))
                }
                Token::Space => out.push(' '),
            }
            i += 1;
        }
        Ok(out)
    }

    /// The function call whose name is at `at`: its SQLite form and the
    /// index of its last `)`.
    fn call(
        &self,
        tokens: &[Token],
        at: usize,
        name: &str,
    ) -> Result<(String, usize), AnalyticsError> {
        let lower = name.to_ascii_lowercase();
        let parametric = matches!(
            lower.as_str(),
            "topk" | "topkweighted" | "quantileweighted" | "quantileexactweighted"
        );
        let (open, _) = next_solid(tokens, at + 1).ok_or_else(|| bad("unbalanced parentheses"))?;
        let close = matching(tokens, open)?;
        let mut params: Vec<&[Token]> = Vec::new();
        let mut args = split_args(&tokens[open + 1..close]);
        let mut end = close;
        if let Some((open2, Token::Other(p))) = next_solid(tokens, close + 1)
            && p == "("
        {
            if !parametric {
                return Err(bad(format!(
                    "{name}(...)(...) : {name} takes no parameters"
                )));
            }
            end = matching(tokens, open2)?;
            params = args;
            args = split_args(&tokens[open2 + 1..end]);
        }
        if self.rollup
            && let Some(sql) = self.rollup_aggregate(&lower, &args)?
        {
            return Ok((sql, end));
        }
        let p: Vec<String> = params
            .iter()
            .map(|a| self.emit(a))
            .collect::<Result<_, _>>()?;
        let a: Vec<String> = args
            .iter()
            .map(|a| self.emit(a))
            .collect::<Result<_, _>>()?;
        let arity = |n: usize, usage: &str| {
            if a.len() == n {
                Ok(())
            } else {
                Err(bad(format!(
                    "{name} takes {n} argument(s): {usage}, got {}",
                    a.len()
                )))
            }
        };
        let sql = match lower.as_str() {
            "countif" => {
                arity(1, "countIf(condition)")?;
                format!("COUNT(CASE WHEN ({}) THEN 1 END)", a[0])
            }
            "sumif" => {
                arity(2, "sumIf(expression, condition)")?;
                format!("SUM(CASE WHEN ({}) THEN ({}) ELSE 0 END)", a[1], a[0])
            }
            "avgif" => {
                arity(2, "avgIf(expression, condition)")?;
                format!("AVG(CASE WHEN ({}) THEN ({}) END)", a[1], a[0])
            }
            "if" => {
                arity(3, "if(condition, then, else)")?;
                format!("(CASE WHEN ({}) THEN ({}) ELSE ({}) END)", a[0], a[1], a[2])
            }
            "argmax" | "argmin" => {
                arity(2, &format!("{name}(value, expression)"))?;
                format!("hearth_{lower}({}, {})", a[0], a[1])
            }
            "topk" | "topkweighted" => {
                let weighted = lower == "topkweighted";
                arity(
                    if weighted { 2 } else { 1 },
                    if weighted {
                        "topKWeighted(k)(expression, weight)"
                    } else {
                        "topK(k)(expression)"
                    },
                )?;
                let k = match p.as_slice() {
                    [] => "10".to_owned(),
                    [k] => k.clone(),
                    _ => return Err(bad(format!("{name} takes one parameter, the count"))),
                };
                let weight = if weighted { a[1].as_str() } else { "1" };
                format!("hearth_topk({}, {weight}, {k})", a[0])
            }
            "quantileweighted" | "quantileexactweighted" => {
                let (level, x, w) = match (p.as_slice(), a.as_slice()) {
                    ([level], [x, w]) => (level.clone(), x, w),
                    ([], [level, x, w]) => (level.clone(), x, w),
                    ([], [x, w]) => ("0.5".to_owned(), x, w),
                    _ => {
                        return Err(bad(format!(
                            "{name} is written {name}(level)(expression, weight) or {name}(level, expression, weight)"
                        )));
                    }
                };
                format!("hearth_quantile_weighted({level}, {x}, {w})")
            }
            _ if PLAIN_FUNCTIONS.contains(&lower.as_str()) => {
                format!("{name}({})", a.join(", "))
            }
            _ => {
                return Err(bad(format!(
                    "function {name} is not part of the Analytics Engine SQL dialect (supported: {})",
                    dialect_list()
                )));
            }
        };
        Ok((sql, end))
    }
}

impl Rewriter<'_> {
    /// An aggregate in its rollup form, where the rollup's `_hearth_rows`
    /// (points per row) and summed `_sample_interval` stand for the points.
    /// `None` lets the call be written as usual (a scalar function, or
    /// `min`/`max`/`count(DISTINCT ...)`, which read the same on the
    /// rollup); an aggregate the rollup cannot answer marks the query as
    /// not eligible.
    fn rollup_aggregate(
        &self,
        lower: &str,
        args: &[&[Token]],
    ) -> Result<Option<String>, AnalyticsError> {
        let is_star = |a: &[Token]| {
            let mut solid = a.iter().filter(|t| **t != Token::Space);
            matches!((solid.next(), solid.next()), (Some(Token::Other(s)), None) if s == "*")
        };
        let starts_distinct =
            |a: &[Token]| is_word(a.iter().find(|t| **t != Token::Space), "DISTINCT");
        let sql = match (lower, args) {
            ("count", []) => "COALESCE(SUM(_hearth_rows), 0)".to_owned(),
            ("count", [a]) if is_star(a) => "COALESCE(SUM(_hearth_rows), 0)".to_owned(),
            ("count", [a]) if starts_distinct(a) => {
                self.aggregated.set(true);
                return Ok(None);
            }
            ("sum", [a]) if is_sample_interval(a) => "SUM(_sample_interval)".to_owned(),
            ("countif", [c]) => format!(
                "COALESCE(SUM(CASE WHEN ({}) THEN _hearth_rows END), 0)",
                self.emit(c)?
            ),
            ("sumif", [a, c]) if is_sample_interval(a) => format!(
                "SUM(CASE WHEN ({}) THEN _sample_interval ELSE 0 END)",
                self.emit(c)?
            ),
            ("min" | "max", [_]) => {
                self.aggregated.set(true);
                return Ok(None);
            }
            (
                "count"
                | "sum"
                | "sumif"
                | "avg"
                | "avgif"
                | "argmax"
                | "argmin"
                | "topk"
                | "topkweighted"
                | "quantileweighted"
                | "quantileexactweighted",
                _,
            ) => {
                self.eligible.set(false);
                return Ok(None);
            }
            _ => return Ok(None),
        };
        self.aggregated.set(true);
        Ok(Some(sql))
    }
}

/// `INTERVAL 'n' UNIT` at `at`: seconds, and the index of the unit.
fn interval(tokens: &[Token], at: usize) -> Result<(i64, usize), AnalyticsError> {
    let (ni, n) = next_solid(tokens, at + 1).ok_or_else(|| bad("INTERVAL needs a number"))?;
    let amount: i64 = match n {
        Token::Text(s) => s.trim_matches('\'').trim().parse(),
        Token::Word(s) => s.parse(),
        _ => "x".parse(),
    }
    .map_err(|_| bad("INTERVAL needs a whole number, as in INTERVAL '1' DAY"))?;
    let (ui, unit) = next_solid(tokens, ni + 1).ok_or_else(|| bad("INTERVAL needs a unit"))?;
    let Token::Word(unit) = unit else {
        return Err(bad("INTERVAL needs a unit such as DAY"));
    };
    let secs = unit_seconds(unit).ok_or_else(|| bad(format!("unknown INTERVAL unit {unit}")))?;
    let total = amount
        .checked_mul(secs)
        .ok_or_else(|| bad("INTERVAL is too large"))?;
    Ok((total, ui))
}

/// Which items of the outer select list are times, judged by the
/// function they start with (a plain `timestamp` column is known from its
/// declared type instead). Empty when the list holds `*`.
fn column_kinds(tokens: &[Token]) -> Vec<ColumnKind> {
    let mut depth = 0usize;
    let mut start = None;
    let mut end = tokens.len();
    for (i, t) in tokens.iter().enumerate() {
        match t {
            Token::Other(p) if p == "(" => depth += 1,
            Token::Other(p) if p == ")" => depth = depth.saturating_sub(1),
            Token::Word(w) if depth == 0 && start.is_none() && w.eq_ignore_ascii_case("SELECT") => {
                start = Some(i + 1);
            }
            Token::Word(w) if depth == 0 && start.is_some() && w.eq_ignore_ascii_case("FROM") => {
                end = i;
                break;
            }
            _ => {}
        }
    }
    let Some(start) = start else {
        return Vec::new();
    };
    let items = split_args(&tokens[start..end.max(start)]);
    let mut kinds = Vec::with_capacity(items.len());
    for item in items {
        if item.iter().any(|t| *t == Token::Other("*".into()))
            && !item.iter().any(|t| *t == Token::Other("(".into()))
        {
            return Vec::new();
        }
        let first = item
            .iter()
            .find(|t| **t != Token::Space && !is_word(Some(t), "DISTINCT"));
        let kind = match first {
            Some(Token::Word(w)) => {
                let w = w.to_ascii_lowercase();
                if DATETIME_FUNCTIONS.contains(&w.as_str()) {
                    ColumnKind::DateTime
                } else if DATE_FUNCTIONS.contains(&w.as_str()) {
                    ColumnKind::Date
                } else {
                    ColumnKind::Plain
                }
            }
            _ => ColumnKind::Plain,
        };
        kinds.push(kind);
    }
    kinds
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
            table_name: "points" | "points_by_second",
            ..
        } => Authorization::Allow,
        _ => Authorization::Deny,
    }
}

/// Runs `text` on `conn` and renders the answer.
/// With `use_rollup`, a query the per-second rollup can answer reads it.
pub(crate) fn run(
    conn: &mut Connection,
    text: &str,
    use_rollup: bool,
) -> Result<QueryOutput, AnalyticsError> {
    let Translated {
        sql,
        format,
        columns,
    } = translate(text)?;
    conn.authorizer(Some(authorize))?;
    let started = Instant::now();
    conn.progress_handler(10_000, Some(move || started.elapsed() > QUERY_TIME_LIMIT))?;
    let rollup = if use_rollup {
        translate_rollup(text)?
    } else {
        None
    };
    let result = collect(conn, &sql, rollup.as_deref(), &columns);
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

/// Runs `rollup` if given, else `sql`; names and column kinds come from
/// `sql` either way, so the two answer alike.
fn collect(
    conn: &Connection,
    sql: &str,
    rollup: Option<&str>,
    kinds: &[ColumnKind],
) -> rusqlite::Result<(Vec<String>, Vec<String>, Rows)> {
    let stmt = conn.prepare(sql)?;
    let names: Vec<String> = stmt.column_names().map(str::to_owned).collect();
    let kinds: Vec<ColumnKind> = stmt
        .columns()
        .enumerate()
        .map(|(i, c)| {
            if c.decl_type()
                .is_some_and(|t| t.eq_ignore_ascii_case("DATETIME"))
            {
                ColumnKind::DateTime
            } else {
                kinds.get(i).copied().unwrap_or(ColumnKind::Plain)
            }
        })
        .collect();
    let mut stmt = match rollup {
        Some(rollup) => {
            let stmt = conn.prepare(rollup)?;
            if stmt.column_count() != names.len() {
                return Err(rusqlite::Error::InvalidColumnIndex(stmt.column_count()));
            }
            stmt
        }
        None => stmt,
    };
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
        for (i, kind) in kinds.iter().enumerate() {
            let (value, ty) = match (row.get_ref(i)?, kind) {
                (ValueRef::Null, _) => (Value::Null, None),
                (ValueRef::Integer(n), ColumnKind::DateTime) => {
                    (json!(format_datetime(n)), Some("DateTime"))
                }
                (ValueRef::Integer(n), ColumnKind::Date) => {
                    (json!(format_datetime(n)[..10].to_owned()), Some("Date"))
                }
                (ValueRef::Integer(n), _) => (json!(n), Some("Int64")),
                (ValueRef::Real(f), _) => (json!(f), Some("Float64")),
                (ValueRef::Text(t), _) => (json!(String::from_utf8_lossy(t)), Some("String")),
                // Stored points hold no BLOBs; only topK's arrays are.
                (ValueRef::Blob(b), _) => (
                    serde_json::from_slice(b).unwrap_or(Value::Null),
                    Some("Array(String)"),
                ),
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
        let Translated { sql, format, .. } = translate(
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
        let sql = translate("SELECT 'FROM x INTERVAL' AS s FROM \"odd-name\"")
            .unwrap()
            .sql;
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
