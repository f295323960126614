//! Test helpers: UTC timestamps written and shown as text, computed by plain
//! day counting (deliberately not the crate's own calendar code).

#![allow(dead_code)]

use hearth_cron::CronExpr;

const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];

fn leap(y: u64) -> bool {
    y.is_multiple_of(4) && (!y.is_multiple_of(100) || y.is_multiple_of(400))
}

fn month_len(y: u64, m: u64) -> u64 {
    [
        31,
        if leap(y) { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ][(m - 1) as usize]
}

/// `"2024-02-29 12:00"` or `"2024-02-29 12:00:30"` (UTC) as ms since the epoch.
pub fn at(text: &str) -> u64 {
    let n: Vec<u64> = text
        .split(['-', ' ', ':'])
        .map(|p| p.parse().unwrap())
        .collect();
    let (y, mo, d, h, mi) = (n[0], n[1], n[2], n[3], n[4]);
    let s = n.get(5).copied().unwrap_or(0);
    let mut days = 0;
    for year in 1970..y {
        days += if leap(year) { 366 } else { 365 };
    }
    for month in 1..mo {
        days += month_len(y, month);
    }
    days += d - 1;
    ((days * 24 + h) * 60 + mi) * 60_000 + s * 1000
}

/// `ms` as `"2024-02-29 12:00 Thu"`; seconds must be zero.
pub fn show(ms: u64) -> String {
    assert_eq!(ms % 60_000, 0, "slots are whole minutes");
    let minutes = ms / 60_000;
    let mut days = minutes / 1440;
    let weekday = WEEKDAYS[(days % 7) as usize];
    let (h, mi) = ((minutes % 1440) / 60, minutes % 60);
    let mut y = 1970;
    loop {
        let len = if leap(y) { 366 } else { 365 };
        if days < len {
            break;
        }
        days -= len;
        y += 1;
    }
    let mut mo = 1;
    while days >= month_len(y, mo) {
        days -= month_len(y, mo);
        mo += 1;
    }
    format!("{y:04}-{mo:02}-{:02} {h:02}:{mi:02} {weekday}", days + 1)
}

pub fn cron(text: &str) -> CronExpr {
    CronExpr::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

/// The next `n` slots of `expr` strictly after `from`, shown.
pub fn next_n(expr: &str, from: &str, n: usize) -> Vec<String> {
    let c = cron(expr);
    let mut t = at(from);
    let mut out = Vec::new();
    for _ in 0..n {
        match c.next_after(t) {
            Some(next) => {
                assert!(next > t, "{expr}: next_after must move forward");
                assert!(c.matches(next), "{expr}: next_after gave a non-match");
                out.push(show(next));
                t = next;
            }
            None => {
                out.push("none".to_owned());
                break;
            }
        }
    }
    out
}

pub fn parse_err(text: &str) -> String {
    match CronExpr::parse(text) {
        Ok(_) => panic!("{text:?} parsed but should not"),
        Err(e) => e.to_string(),
    }
}
