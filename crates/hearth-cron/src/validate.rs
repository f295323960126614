//! Cloudflare's cron syntax and the limits on a worker's list of triggers.
//!
//! What Cloudflare accepts (its docs, and the parser behind its Cron
//! Triggers):
//!
//! | field        | values                            | characters    |
//! |--------------|-----------------------------------|---------------|
//! | minute       | 0-59                              | `* , - /`     |
//! | hour         | 0-23                              | `* , - /`     |
//! | day-of-month | 1-31                              | `* , - / L W` |
//! | month        | 1-12, JAN-DEC                     | `* , - /`     |
//! | day-of-week  | 1-7 (1 = SUN .. 7 = SAT), SUN-SAT | `* , - / L #` |
//!
//! - Day-of-week counts from 1 = Sunday to 7 = Saturday, as in Quartz;
//!   `0` is refused (Cloudflare answers `0 0 * * 0` with "invalid cron
//!   string"). Names are three letters, any case.
//! - A range may wrap (`FRI-MON`, `50-10`). A step's largest value is the
//!   field's span: 59 for minutes, 23 hours, 30 days, 11 months, 6 weekdays.
//!   `a/n` means `a-max/n`.
//! - `L`, `LW`, `L-n`, `L-nW` and `nW` (day-of-month) and `L`, `nL`, `n#k`
//!   (day-of-week) stand alone: they cannot be part of a list. `L` alone in
//!   day-of-week means Saturday. The letters `L`, `W` and `#` are upper case.
//! - `?` is not supported (use `*`).
//! - When day-of-month and day-of-week are both restricted, a day matches if
//!   either does. Only a bare `*` leaves a field unrestricted: `*/1` counts
//!   as a restriction, as in Cloudflare's parser.
//! - Fields are separated by runs of spaces or tabs. Leading and trailing
//!   whitespace is ignored here; whether Cloudflare's API trims it is not
//!   documented.

use crate::error::{CronError, CronField, Result};
use crate::schedule::{DayOfMonth, DayOfWeek, Schedule};

/// Most cron triggers one worker may have. Cloudflare allows 5 per account on
/// the Free plan and 250 on the Paid plan; the Paid figure is the default.
pub const MAX_TRIGGERS: usize = 250;

/// Every cron limit, Cloudflare's values by default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronLimits {
    pub max_triggers: usize,
}

impl Default for CronLimits {
    fn default() -> Self {
        Self {
            max_triggers: MAX_TRIGGERS,
        }
    }
}

/// The numeric range and names of one field.
struct Spec {
    min: u8,
    max: u8,
    /// Names of `min`, `min + 1`, ...
    names: &'static [&'static str],
    /// Says what a token should have been.
    expected: &'static str,
    /// Appended to an out-of-range message.
    range_hint: &'static str,
}

const MINUTE: Spec = Spec {
    min: 0,
    max: 59,
    names: &[],
    expected: "a number",
    range_hint: "",
};
const HOUR: Spec = Spec {
    min: 0,
    max: 23,
    names: &[],
    expected: "a number",
    range_hint: "",
};
const DAY_OF_MONTH: Spec = Spec {
    min: 1,
    max: 31,
    names: &[],
    expected: "a number",
    range_hint: "",
};
const MONTH: Spec = Spec {
    min: 1,
    max: 12,
    names: &[
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
    ],
    expected: "a number or a month name (JAN-DEC)",
    range_hint: "",
};
const DAY_OF_WEEK: Spec = Spec {
    min: 1,
    max: 7,
    names: &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"],
    expected: "a number or a day name (SUN-SAT)",
    range_hint: " (1 = SUN .. 7 = SAT)",
};

/// Parses a whole expression.
pub(crate) fn parse(cron: &str) -> Result<Schedule> {
    let fields: Vec<&str> = cron.split_ascii_whitespace().collect();
    if fields.len() != CronField::ALL.len() {
        return Err(CronError::FieldCount {
            cron: cron.to_owned(),
            found: fields.len(),
        });
    }
    let invalid = |field: CronField| {
        move |problem: String| CronError::InvalidField {
            cron: cron.to_owned(),
            field,
            problem,
        }
    };
    let minutes = list(&MINUTE, fields[0]).map_err(invalid(CronField::Minute))?;
    let hours = list(&HOUR, fields[1]).map_err(invalid(CronField::Hour))?;
    let days = day_of_month(fields[2]).map_err(invalid(CronField::DayOfMonth))?;
    let months = list(&MONTH, fields[3]).map_err(invalid(CronField::Month))?;
    let weekdays = day_of_week(fields[4]).map_err(invalid(CronField::DayOfWeek))?;
    Ok(Schedule {
        minutes,
        // Masks of fields whose max is below 32 / 16 fit by construction.
        hours: hours as u32,
        months: months as u16,
        days,
        weekdays,
    })
}

/// Checks a worker's whole list: each expression parses, there are no more
/// than the limit, and no two describe the same schedule.
pub(crate) fn trigger_list<S: AsRef<str>>(
    crons: &[S],
    limits: &CronLimits,
) -> Result<Vec<crate::CronExpr>> {
    if crons.len() > limits.max_triggers {
        return Err(CronError::TooManyTriggers {
            count: crons.len(),
            limit: limits.max_triggers,
        });
    }
    let mut parsed: Vec<crate::CronExpr> = Vec::with_capacity(crons.len());
    for cron in crons {
        let expr = crate::CronExpr::parse(cron.as_ref())?;
        if let Some(existing) = parsed.iter().find(|p| p.same_schedule(&expr)) {
            return Err(CronError::DuplicateTrigger {
                cron: expr.as_str().to_owned(),
                existing: existing.as_str().to_owned(),
            });
        }
        parsed.push(expr);
    }
    Ok(parsed)
}

fn unsupported_question_mark(text: &str) -> Result<(), String> {
    if text.contains('?') {
        return Err(format!("\"?\" is not supported; use \"*\" (in \"{text}\")"));
    }
    Ok(())
}

fn day_of_month(text: &str) -> Result<DayOfMonth, String> {
    if text == "*" {
        return Ok(DayOfMonth::Any);
    }
    unsupported_question_mark(text)?;
    if text.contains(',') && text.contains(['L', 'W']) {
        return Err(format!(
            "\"L\" and \"W\" cannot be part of a list (in \"{text}\")"
        ));
    }
    if let Some(rest) = text.strip_prefix('L') {
        let (offset_text, weekday) = match rest.strip_suffix('W') {
            Some(inner) => (inner, true),
            None => (rest, false),
        };
        let offset = if offset_text.is_empty() {
            0
        } else {
            let digits = offset_text.strip_prefix('-').ok_or_else(|| {
                format!("\"{text}\" is not a valid \"L\" expression (L, LW, L-n or L-nW)")
            })?;
            match number(digits) {
                Some(n @ 1..=30) => n as u8,
                _ => {
                    return Err(format!("offset after \"L-\" must be 1-30 (in \"{text}\")"));
                }
            }
        };
        return Ok(if weekday {
            DayOfMonth::LastWeekday { offset }
        } else {
            DayOfMonth::Last { offset }
        });
    }
    if let Some(day) = text.strip_suffix('W') {
        if day.is_empty() {
            return Err(format!(
                "\"W\" needs a day before it, as in \"15W\" (in \"{text}\")"
            ));
        }
        return value(&DAY_OF_MONTH, day).map(DayOfMonth::NearestWeekday);
    }
    list(&DAY_OF_MONTH, text).map(|mask| DayOfMonth::Days(mask as u32))
}

fn day_of_week(text: &str) -> Result<DayOfWeek, String> {
    if text == "*" {
        return Ok(DayOfWeek::Any);
    }
    unsupported_question_mark(text)?;
    if text.contains(',') && text.contains(['L', '#']) {
        return Err(format!(
            "\"L\" and \"#\" cannot be part of a list (in \"{text}\")"
        ));
    }
    // Internally 0 = Sunday; the syntax counts from 1 = Sunday.
    if text == "L" {
        return Ok(DayOfWeek::Days(1 << 6));
    }
    if let Some(day) = text.strip_suffix('L') {
        return value(&DAY_OF_WEEK, day).map(|d| DayOfWeek::Last(d - 1));
    }
    if let Some((day, nth)) = text.split_once('#') {
        let weekday = value(&DAY_OF_WEEK, day)? - 1;
        return match number(nth) {
            Some(n @ 1..=5) => Ok(DayOfWeek::Nth {
                weekday,
                nth: n as u8,
            }),
            _ => Err(format!(
                "the number after \"#\" must be 1-5 (in \"{text}\")"
            )),
        };
    }
    list(&DAY_OF_WEEK, text).map(|mask| DayOfWeek::Days((mask >> 1) as u8))
}

/// A comma-separated list of values, ranges and steps, as a bit mask with bit
/// `v` set for each value `v`.
fn list(spec: &Spec, text: &str) -> Result<u64, String> {
    if text == "*" {
        return Ok(span(spec.min, spec.max));
    }
    unsupported_question_mark(text)?;
    let mut mask = 0;
    for item in text.split(',') {
        mask |= list_item(spec, item, text)?;
    }
    Ok(mask)
}

fn list_item(spec: &Spec, item: &str, whole: &str) -> Result<u64, String> {
    if item.is_empty() {
        return Err(format!("empty list item (in \"{whole}\")"));
    }
    if item == "*" {
        return Err(format!(
            "\"*\" cannot be combined with other values (in \"{whole}\")"
        ));
    }
    let (range, step) = match item.split_once('/') {
        Some((range, step)) => (range, Some(step_value(spec, step, item)?)),
        None => (item, None),
    };
    let (start, end) = if range == "*" && step.is_some() {
        (spec.min, spec.max)
    } else if let Some((a, b)) = range.split_once('-') {
        (value(spec, a)?, value(spec, b)?)
    } else {
        let v = value(spec, range)?;
        // `a/n` runs from `a` to the end of the field.
        (v, if step.is_some() { spec.max } else { v })
    };
    // A reversed range wraps past the end of the field: 22-2 is 22..23,0..2.
    let sequence: Vec<u8> = if start <= end {
        (start..=end).collect()
    } else {
        (start..=spec.max).chain(spec.min..=end).collect()
    };
    let mut mask = 0u64;
    for v in sequence.into_iter().step_by(step.unwrap_or(1)) {
        mask |= 1 << v;
    }
    Ok(mask)
}

fn step_value(spec: &Spec, text: &str, item: &str) -> Result<usize, String> {
    let largest = spec.max - spec.min;
    match number(text) {
        None => Err(format!("step \"{text}\" is not a number (in \"{item}\")")),
        Some(0) => Err(format!("step must be ≥ 1 (in \"{item}\")")),
        Some(n) if n > u32::from(largest) => {
            Err(format!("step must be at most {largest} (in \"{item}\")"))
        }
        Some(n) => Ok(n as usize),
    }
}

/// One value: digits in the field's range, or a three-letter name.
fn value(spec: &Spec, token: &str) -> Result<u8, String> {
    if !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit()) {
        return match number(token) {
            Some(n) if n >= u32::from(spec.min) && n <= u32::from(spec.max) => Ok(n as u8),
            _ => Err(format!(
                "\"{token}\" is out of range {}-{}{}",
                spec.min, spec.max, spec.range_hint
            )),
        };
    }
    if let Some(i) = spec
        .names
        .iter()
        .position(|name| name.eq_ignore_ascii_case(token))
    {
        return Ok(spec.min + i as u8);
    }
    if token.is_empty() {
        return Err(format!("a value is missing; expected {}", spec.expected));
    }
    Err(format!("\"{token}\" is not {}", spec.expected))
}

/// Decimal digits only; too many digits reads as "too large" (`u32::MAX`).
fn number(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(text.parse().unwrap_or(u32::MAX))
}

fn span(min: u8, max: u8) -> u64 {
    (min..=max).fold(0, |mask, v| mask | 1 << v)
}
