//! The dialect's functions on SQLite: scalar time functions over Unix
//! seconds, and the ClickHouse aggregates SQLite lacks (`argMax`,
//! `argMin`, `topK`, `topKWeighted`, `quantileWeighted`). The translator
//! calls the aggregates by their `hearth_*` names, so a query cannot reach
//! them under another spelling.

use std::collections::HashMap;

use hearth_core::SharedClock;
use rusqlite::Connection;
use rusqlite::functions::{Aggregate, Context, FunctionFlags};
use rusqlite::types::{Value, ValueRef};

use crate::AnalyticsError;

fn user_error(message: impl Into<String>) -> rusqlite::Error {
    rusqlite::Error::UserFunctionError(message.into().into())
}

/// Days since 1970-01-01 of a date, through `hearth_core::calendar`.
pub(crate) fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    hearth_core::calendar::days_from_civil(year, month as u32, day as u32)
}

/// The date `days` after 1970-01-01, through `hearth_core::calendar`.
pub(crate) fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let (y, m, d) = hearth_core::calendar::civil_from_days(days);
    (y, m.into(), d.into())
}

/// `YYYY-MM-DD hh:mm:ss` or `YYYY-MM-DD` (UTC) as Unix seconds.
pub fn parse_datetime(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let s = text.get(r)?;
        if s.bytes().all(|c| c.is_ascii_digit()) {
            s.parse().ok()
        } else {
            None
        }
    };
    if !(b.len() == 10 || b.len() == 19) || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let mut secs = days_from_civil(y, m, d) * 86_400;
    if b.len() == 19 {
        if b[10] != b' ' || b[13] != b':' || b[16] != b':' {
            return None;
        }
        let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
        if h > 23 || mi > 59 || s > 59 {
            return None;
        }
        secs += h * 3600 + mi * 60 + s;
    }
    Some(secs)
}

/// A time argument: Unix seconds, or a date-time string.
fn seconds(ctx: &Context<'_>, i: usize) -> rusqlite::Result<Option<i64>> {
    Ok(match ctx.get_raw(i) {
        ValueRef::Null => None,
        ValueRef::Integer(n) => Some(n),
        ValueRef::Real(f) => Some(f as i64),
        ValueRef::Text(t) => {
            let t = String::from_utf8_lossy(t);
            Some(parse_datetime(&t).ok_or_else(|| {
                user_error(format!(
                    "cannot read '{t}' as a DateTime; write 'YYYY-MM-DD hh:mm:ss'"
                ))
            })?)
        }
        ValueRef::Blob(_) => return Err(user_error("a DateTime cannot be an array")),
    })
}

type TimeFn = fn(i64) -> i64;

fn start_of_week(t: i64, monday: bool) -> i64 {
    let days = t.div_euclid(86_400);
    // 1970-01-01 was a Thursday.
    let since = (days + if monday { 3 } else { 4 }).rem_euclid(7);
    (days - since) * 86_400
}

fn start_of_month(t: i64, months_per_step: i64) -> i64 {
    let (y, m, _) = civil_from_days(t.div_euclid(86_400));
    let m = (m - 1) / months_per_step * months_per_step + 1;
    days_from_civil(y, m, 1) * 86_400
}

const TIME_FUNCTIONS: &[(&str, TimeFn)] = &[
    ("toStartOfMinute", |t| t - t.rem_euclid(60)),
    ("toStartOfFiveMinutes", |t| t - t.rem_euclid(300)),
    ("toStartOfTenMinutes", |t| t - t.rem_euclid(600)),
    ("toStartOfFifteenMinutes", |t| t - t.rem_euclid(900)),
    ("toStartOfHour", |t| t - t.rem_euclid(3600)),
    ("toStartOfDay", |t| t - t.rem_euclid(86_400)),
    ("toStartOfMonth", |t| start_of_month(t, 1)),
    ("toStartOfQuarter", |t| start_of_month(t, 3)),
    ("toStartOfYear", |t| start_of_month(t, 12)),
    ("toDateTime", |t| t),
    ("toUnixTimestamp", |t| t),
    ("toYear", |t| civil_from_days(t.div_euclid(86_400)).0),
    ("toMonth", |t| civil_from_days(t.div_euclid(86_400)).1),
    ("toDayOfMonth", |t| civil_from_days(t.div_euclid(86_400)).2),
    // Monday is 1, Sunday 7.
    ("toDayOfWeek", |t| {
        (t.div_euclid(86_400) + 3).rem_euclid(7) + 1
    }),
    ("toHour", |t| t.rem_euclid(86_400) / 3600),
    ("toMinute", |t| t.rem_euclid(3600) / 60),
    ("toSecond", |t| t.rem_euclid(60)),
    ("toYYYYMM", |t| {
        let (y, m, _) = civil_from_days(t.div_euclid(86_400));
        y * 100 + m
    }),
];

/// Registers the dialect's functions on the query connection.
pub(crate) fn install(conn: &Connection, clock: SharedClock) -> Result<(), AnalyticsError> {
    let flags = FunctionFlags::SQLITE_UTF8;
    let now_clock = clock.clone();
    conn.create_scalar_function("now", 0, flags, move |_| {
        Ok((now_clock.now_ms() / 1000) as i64)
    })?;
    conn.create_scalar_function("today", 0, flags, move |_| {
        let secs = (clock.now_ms() / 1000) as i64;
        Ok(secs - secs.rem_euclid(86_400))
    })?;
    let pure = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    conn.create_scalar_function("toStartOfInterval", 2, pure, |ctx| {
        let Some(t) = seconds(ctx, 0)? else {
            return Ok(None);
        };
        let every: i64 = ctx.get(1)?;
        if every <= 0 {
            return Err(user_error(
                "toStartOfInterval: the interval must be positive",
            ));
        }
        Ok(Some(t - t.rem_euclid(every)))
    })?;
    conn.create_scalar_function("toStartOfWeek", -1, pure, |ctx| {
        if !(1..=2).contains(&ctx.len()) {
            return Err(user_error("toStartOfWeek takes (time) or (time, mode)"));
        }
        let mode: i64 = if ctx.len() == 2 { ctx.get(1)? } else { 0 };
        Ok(seconds(ctx, 0)?.map(|t| start_of_week(t, mode % 2 == 1)))
    })?;
    conn.create_scalar_function("intDiv", 2, pure, |ctx| {
        let a: i64 = ctx.get(0)?;
        let b: i64 = ctx.get(1)?;
        if b == 0 {
            return Err(user_error("intDiv: division by zero"));
        }
        Ok(a.div_euclid(b))
    })?;
    for &(name, f) in TIME_FUNCTIONS {
        conn.create_scalar_function(name, 1, pure, move |ctx| Ok(seconds(ctx, 0)?.map(f)))?;
    }
    install_bits(conn)?;
    install_strings(conn)?;
    conn.create_aggregate_function("hearth_argmax", 2, pure, ArgExtreme { max: true })?;
    conn.create_aggregate_function("hearth_argmin", 2, pure, ArgExtreme { max: false })?;
    conn.create_aggregate_function("hearth_topk", 3, pure, TopK)?;
    conn.create_aggregate_function("hearth_quantile_weighted", 3, pure, QuantileWeighted)?;
    Ok(())
}

/// An integer argument of a bit function: a double is cast to Int64, as
/// ClickHouse does; text is refused.
fn int_arg(ctx: &Context<'_>, i: usize, name: &str) -> rusqlite::Result<Option<i64>> {
    Ok(match ctx.get_raw(i) {
        ValueRef::Null => None,
        ValueRef::Integer(n) => Some(n),
        ValueRef::Real(f) => Some(f as i64),
        _ => return Err(user_error(format!("{name}: the arguments must be numbers"))),
    })
}

/// A bit position or shift: 0 to 63.
fn bit_count_arg(ctx: &Context<'_>, i: usize, name: &str) -> rusqlite::Result<Option<u32>> {
    match int_arg(ctx, i, name)? {
        None => Ok(None),
        Some(n @ 0..=63) => Ok(Some(n as u32)),
        Some(n) => Err(user_error(format!(
            "{name}: the bit count must be between 0 and 63, got {n}"
        ))),
    }
}

type BitFn = fn(i64, i64) -> i64;

/// The dialect's bit functions over Int64.
fn install_bits(conn: &Connection) -> Result<(), AnalyticsError> {
    let pure = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    const TWO: &[(&str, BitFn)] = &[
        ("bitAnd", |a, b| a & b),
        ("bitOr", |a, b| a | b),
        ("bitXor", |a, b| a ^ b),
        ("bitHammingDistance", |a, b| i64::from((a ^ b).count_ones())),
    ];
    for &(name, f) in TWO {
        conn.create_scalar_function(name, 2, pure, move |ctx| {
            Ok(match (int_arg(ctx, 0, name)?, int_arg(ctx, 1, name)?) {
                (Some(a), Some(b)) => Some(f(a, b)),
                _ => None,
            })
        })?;
    }
    type ShiftFn = fn(i64, u32) -> i64;
    const SHIFTS: &[(&str, ShiftFn)] = &[
        ("bitShiftLeft", |a, n| a.wrapping_shl(n)),
        ("bitShiftRight", |a, n| a >> n),
        ("bitRotateLeft", |a, n| a.rotate_left(n)),
        ("bitRotateRight", |a, n| a.rotate_right(n)),
        ("bitTest", |a, n| (a >> n) & 1),
    ];
    for &(name, f) in SHIFTS {
        conn.create_scalar_function(name, 2, pure, move |ctx| {
            Ok(
                match (int_arg(ctx, 0, name)?, bit_count_arg(ctx, 1, name)?) {
                    (Some(a), Some(n)) => Some(f(a, n)),
                    _ => None,
                },
            )
        })?;
    }
    conn.create_scalar_function("bitNot", 1, pure, |ctx| {
        Ok(int_arg(ctx, 0, "bitNot")?.map(|a| !a))
    })?;
    conn.create_scalar_function("bitCount", 1, pure, |ctx| {
        Ok(int_arg(ctx, 0, "bitCount")?.map(|a| i64::from(a.count_ones())))
    })?;
    Ok(())
}

/// A text argument; numbers are shown as SQLite shows them.
fn text_arg(ctx: &Context<'_>, i: usize) -> rusqlite::Result<Option<String>> {
    Ok(match ctx.get_raw(i) {
        ValueRef::Null => None,
        ValueRef::Integer(n) => Some(n.to_string()),
        ValueRef::Real(f) => Some(f.to_string()),
        ValueRef::Text(t) | ValueRef::Blob(t) => Some(String::from_utf8_lossy(t).into_owned()),
    })
}

/// The dialect's string functions SQLite lacks under these names.
fn install_strings(conn: &Connection) -> Result<(), AnalyticsError> {
    let pure = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    conn.create_scalar_function("startsWith", 2, pure, |ctx| {
        Ok(match (text_arg(ctx, 0)?, text_arg(ctx, 1)?) {
            (Some(s), Some(p)) => Some(i64::from(s.starts_with(&p))),
            _ => None,
        })
    })?;
    conn.create_scalar_function("endsWith", 2, pure, |ctx| {
        Ok(match (text_arg(ctx, 0)?, text_arg(ctx, 1)?) {
            (Some(s), Some(p)) => Some(i64::from(s.ends_with(&p))),
            _ => None,
        })
    })?;
    // 1-based byte offset of the first match, 0 when there is none.
    conn.create_scalar_function("position", 2, pure, |ctx| {
        Ok(match (text_arg(ctx, 0)?, text_arg(ctx, 1)?) {
            (Some(s), Some(n)) => Some(s.find(&n).map_or(0, |at| at as i64 + 1)),
            _ => None,
        })
    })?;
    conn.create_scalar_function("concat", -1, pure, |ctx| {
        if ctx.len() < 2 {
            return Err(user_error("concat takes two or more arguments"));
        }
        let mut out = String::new();
        for i in 0..ctx.len() {
            match text_arg(ctx, i)? {
                Some(t) => out.push_str(&t),
                None => return Ok(None),
            }
        }
        Ok(Some(out))
    })?;
    Ok(())
}

/// Orders numbers numerically and anything else as text.
fn compare(a: &Value, b: &Value) -> std::cmp::Ordering {
    fn number(v: &Value) -> Option<f64> {
        match v {
            Value::Integer(n) => Some(*n as f64),
            Value::Real(f) => Some(*f),
            _ => None,
        }
    }
    match (number(a), number(b)) {
        (Some(x), Some(y)) => x.total_cmp(&y),
        _ => format!("{a:?}").cmp(&format!("{b:?}")),
    }
}

/// `argMax(arg, val)` / `argMin(arg, val)`: `arg` of the row with the
/// largest (smallest) `val`; the first such row on a tie.
struct ArgExtreme {
    max: bool,
}

impl Aggregate<Option<(Value, Value)>, Value> for ArgExtreme {
    fn init(&self, _: &mut Context<'_>) -> rusqlite::Result<Option<(Value, Value)>> {
        Ok(None)
    }

    fn step(
        &self,
        ctx: &mut Context<'_>,
        acc: &mut Option<(Value, Value)>,
    ) -> rusqlite::Result<()> {
        let val: Value = ctx.get(1)?;
        if val == Value::Null {
            return Ok(());
        }
        let better = match acc {
            None => true,
            Some((_, best)) => {
                let order = compare(&val, best);
                if self.max {
                    order.is_gt()
                } else {
                    order.is_lt()
                }
            }
        };
        if better {
            *acc = Some((ctx.get(0)?, val));
        }
        Ok(())
    }

    fn finalize(
        &self,
        _: &mut Context<'_>,
        acc: Option<Option<(Value, Value)>>,
    ) -> rusqlite::Result<Value> {
        Ok(acc.flatten().map_or(Value::Null, |(arg, _)| arg))
    }
}

/// Distinct values a `topK` group may track.
const TOPK_MAX_DISTINCT: usize = 1_000_000;

/// `topK(k)(x)` / `topKWeighted(k)(x, w)` as `hearth_topk(x, w, k)`: the
/// `k` most frequent values, most frequent first (ties by value), as a
/// JSON array in a BLOB, which the renderer shows as an array.
struct TopK;

#[derive(Default)]
struct TopKState {
    k: i64,
    counts: HashMap<String, (f64, Value)>,
}

impl Aggregate<TopKState, Value> for TopK {
    fn init(&self, ctx: &mut Context<'_>) -> rusqlite::Result<TopKState> {
        let k: i64 = ctx.get(2)?;
        if !(1..=10_000).contains(&k) {
            return Err(user_error("topK: the count must be between 1 and 10000"));
        }
        Ok(TopKState {
            k,
            counts: HashMap::new(),
        })
    }

    fn step(&self, ctx: &mut Context<'_>, acc: &mut TopKState) -> rusqlite::Result<()> {
        let value: Value = ctx.get(0)?;
        let weight: f64 = ctx.get::<Option<f64>>(1)?.unwrap_or(0.0);
        let key = format!("{value:?}");
        if let Some(entry) = acc.counts.get_mut(&key) {
            entry.0 += weight;
        } else if acc.counts.len() < TOPK_MAX_DISTINCT {
            acc.counts.insert(key, (weight, value));
        } else {
            return Err(user_error(format!(
                "topK: more than {TOPK_MAX_DISTINCT} distinct values in one group"
            )));
        }
        Ok(())
    }

    fn finalize(&self, _: &mut Context<'_>, acc: Option<TopKState>) -> rusqlite::Result<Value> {
        let Some(acc) = acc else {
            return Ok(Value::Blob(b"[]".to_vec()));
        };
        let mut entries: Vec<(f64, Value)> = acc.counts.into_values().collect();
        entries.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| compare(&a.1, &b.1)));
        let items: Vec<serde_json::Value> = entries
            .into_iter()
            .take(acc.k as usize)
            .map(|(_, v)| match v {
                Value::Integer(n) => serde_json::json!(n),
                Value::Real(f) => serde_json::json!(f),
                Value::Text(s) => serde_json::json!(s),
                Value::Null => serde_json::Value::Null,
                Value::Blob(b) => serde_json::json!(String::from_utf8_lossy(&b)),
            })
            .collect();
        Ok(Value::Blob(
            serde_json::Value::Array(items).to_string().into_bytes(),
        ))
    }
}

/// Values a `quantileWeighted` group may hold.
const QUANTILE_MAX_VALUES: usize = 10_000_000;

/// `quantileWeighted(level)(x, w)` as `hearth_quantile_weighted(level,
/// x, w)`: the smallest value whose cumulative weight reaches `level` of
/// the total (ClickHouse's exact weighted quantile).
struct QuantileWeighted;

impl Aggregate<(f64, Vec<(f64, f64)>), Option<f64>> for QuantileWeighted {
    fn init(&self, ctx: &mut Context<'_>) -> rusqlite::Result<(f64, Vec<(f64, f64)>)> {
        let level: f64 = ctx.get(0)?;
        if !(0.0..=1.0).contains(&level) {
            return Err(user_error(
                "quantileWeighted: the level must be between 0 and 1",
            ));
        }
        Ok((level, Vec::new()))
    }

    fn step(
        &self,
        ctx: &mut Context<'_>,
        acc: &mut (f64, Vec<(f64, f64)>),
    ) -> rusqlite::Result<()> {
        let (Some(x), Some(w)) = (ctx.get::<Option<f64>>(1)?, ctx.get::<Option<f64>>(2)?) else {
            return Ok(());
        };
        if w <= 0.0 {
            return Ok(());
        }
        if acc.1.len() >= QUANTILE_MAX_VALUES {
            return Err(user_error(format!(
                "quantileWeighted: more than {QUANTILE_MAX_VALUES} values in one group"
            )));
        }
        acc.1.push((x, w));
        Ok(())
    }

    fn finalize(
        &self,
        _: &mut Context<'_>,
        acc: Option<(f64, Vec<(f64, f64)>)>,
    ) -> rusqlite::Result<Option<f64>> {
        let Some((level, mut values)) = acc else {
            return Ok(None);
        };
        values.sort_by(|a, b| a.0.total_cmp(&b.0));
        let total: f64 = values.iter().map(|v| v.1).sum();
        let threshold = level * total;
        let mut sum = 0.0;
        for (x, w) in &values {
            sum += w;
            if sum >= threshold {
                return Ok(Some(*x));
            }
        }
        Ok(values.last().map(|v| v.0))
    }
}
