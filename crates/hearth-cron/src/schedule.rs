//! The compiled form of a cron expression and the search for matching times.
//!
//! All times are UTC minutes. The search walks months, then days, then hours
//! and minutes as bit masks, so it skips whole months and days at a time
//! instead of testing minute after minute.
//!
//! The Gregorian calendar repeats exactly every 400 years (146 097 days, a
//! whole number of weeks), so a search that covers 400 years and one month
//! from any starting point has seen every combination of day, month and
//! weekday there is: if it finds nothing, nothing will ever match, and the
//! bound is exact rather than a guess.

const MINUTES_PER_DAY: i64 = 24 * 60;
const MS_PER_MINUTE: i64 = 60_000;
/// One full Gregorian cycle plus the partial month the search starts in.
const SEARCH_MONTHS: u32 = 400 * 12 + 1;

/// Which days of the month match; `Any` is a bare `*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DayOfMonth {
    Any,
    /// Bit `d` set for day `d` (1..=31).
    Days(u32),
    /// `L` (offset 0) or `L-n`: the last day of the month, minus `offset`.
    Last {
        offset: u8,
    },
    /// `LW` (offset 0) or `L-nW`: the weekday nearest to `L` / `L-n`.
    LastWeekday {
        offset: u8,
    },
    /// `nW`: the weekday nearest to day `n`, never leaving the month.
    NearestWeekday(u8),
}

/// Which days of the week match (0 = Sunday .. 6 = Saturday); `Any` is a bare `*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DayOfWeek {
    Any,
    /// Bit `w` set for weekday `w`.
    Days(u8),
    /// `nL`: the last such weekday of the month.
    Last(u8),
    /// `n#k`: the `nth` (1..=5) such weekday of the month.
    Nth {
        weekday: u8,
        nth: u8,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Schedule {
    /// Bit `m` set for minute `m` (0..=59); never empty.
    pub minutes: u64,
    /// Bit `h` set for hour `h` (0..=23); never empty.
    pub hours: u32,
    /// Bit `m` set for month `m` (1..=12); never empty.
    pub months: u16,
    pub days: DayOfMonth,
    pub weekdays: DayOfWeek,
}

/// One calendar day with what the day rules need to know about it.
#[derive(Debug, Clone, Copy)]
struct Day {
    day: u32,
    /// 0 = Sunday.
    weekday: u32,
    days_in_month: u32,
}

impl Schedule {
    /// Whether the minute containing `ms` is a slot.
    pub fn matches(&self, ms: u64) -> bool {
        let minute = ms_to_minute(ms);
        let (days, time) = (
            minute.div_euclid(MINUTES_PER_DAY),
            minute.rem_euclid(MINUTES_PER_DAY),
        );
        let (hour, min) = ((time / 60) as u32, (time % 60) as u32);
        let (year, month, day) = civil_from_days(days);
        has_bit(self.minutes, min)
            && has_bit(u64::from(self.hours), hour)
            && has_bit(u64::from(self.months), month)
            && self.day_matches(year, month, day)
    }

    /// The first slot strictly after `ms`.
    pub fn next_after(&self, ms: u64) -> Option<u64> {
        // The slot of the minute containing `ms` starts at or before `ms`.
        let start = ms_to_minute(ms) + 1;
        let days = start.div_euclid(MINUTES_PER_DAY);
        let time = start.rem_euclid(MINUTES_PER_DAY);
        let (mut year, mut month, mut day) = civil_from_days(days);
        let (mut hour, mut minute) = ((time / 60) as u32, (time % 60) as u32);
        for _ in 0..SEARCH_MONTHS {
            if has_bit(u64::from(self.months), month) {
                let dim = days_in_month(year, month);
                for d in day..=dim {
                    if self.day_matches(year, month, d)
                        && let Some((h, m)) = self.first_time_from(hour, minute)
                    {
                        return slot_ms(year, month, d, h, m);
                    }
                    (hour, minute) = (0, 0);
                }
            }
            (day, hour, minute) = (1, 0, 0);
            (year, month) = if month == 12 {
                (year + 1, 1)
            } else {
                (year, month + 1)
            };
        }
        None
    }

    /// The last slot at or before `ms`; `None` if there is none since 1970.
    pub fn prev_at_or_before(&self, ms: u64) -> Option<u64> {
        let start = ms_to_minute(ms);
        let days = start.div_euclid(MINUTES_PER_DAY);
        let time = start.rem_euclid(MINUTES_PER_DAY);
        let (mut year, mut month, mut day) = civil_from_days(days);
        let (mut hour, mut minute) = ((time / 60) as u32, (time % 60) as u32);
        for _ in 0..SEARCH_MONTHS {
            if year < 1970 {
                return None;
            }
            if has_bit(u64::from(self.months), month) {
                for d in (1..=day).rev() {
                    if self.day_matches(year, month, d)
                        && let Some((h, m)) = self.last_time_until(hour, minute)
                    {
                        return slot_ms(year, month, d, h, m);
                    }
                    (hour, minute) = (23, 59);
                }
            }
            (year, month) = if month == 1 {
                (year - 1, 12)
            } else {
                (year, month - 1)
            };
            (day, hour, minute) = (days_in_month(year, month), 23, 59);
        }
        None
    }

    /// The first (hour, minute) of a matching day at or after `hour:minute`.
    fn first_time_from(&self, hour: u32, minute: u32) -> Option<(u32, u32)> {
        let hours = u64::from(self.hours);
        let h = next_bit(hours, hour)?;
        if h == hour
            && let Some(m) = next_bit(self.minutes, minute)
        {
            return Some((h, m));
        }
        let h = next_bit(hours, hour + 1)?;
        next_bit(self.minutes, 0).map(|m| (h, m))
    }

    /// The last (hour, minute) of a matching day at or before `hour:minute`.
    fn last_time_until(&self, hour: u32, minute: u32) -> Option<(u32, u32)> {
        let hours = u64::from(self.hours);
        let h = prev_bit(hours, hour)?;
        if h == hour
            && let Some(m) = prev_bit(self.minutes, minute)
        {
            return Some((h, m));
        }
        let h = prev_bit(hours, hour.checked_sub(1)?)?;
        prev_bit(self.minutes, 59).map(|m| (h, m))
    }

    /// The day-of-month / day-of-week rule: when both fields are restricted
    /// (neither is a bare `*`) a day matches if EITHER does, as in classic
    /// cron and as Cloudflare's scheduler does; otherwise the restricted one
    /// decides.
    fn day_matches(&self, year: i64, month: u32, day: u32) -> bool {
        let d = Day {
            day,
            weekday: weekday(days_from_civil(year, month, day)),
            days_in_month: days_in_month(year, month),
        };
        match (self.days, self.weekdays) {
            (DayOfMonth::Any, DayOfWeek::Any) => true,
            (DayOfMonth::Any, w) => weekday_matches(w, d),
            (m, DayOfWeek::Any) => month_day_matches(m, d),
            (m, w) => month_day_matches(m, d) || weekday_matches(w, d),
        }
    }
}

fn month_day_matches(rule: DayOfMonth, d: Day) -> bool {
    match rule {
        DayOfMonth::Any => true,
        DayOfMonth::Days(mask) => has_bit(u64::from(mask), d.day),
        DayOfMonth::Last { offset } => {
            d.days_in_month > u32::from(offset) && d.day == d.days_in_month - u32::from(offset)
        }
        DayOfMonth::LastWeekday { offset } => {
            d.days_in_month > u32::from(offset)
                && nearest_weekday(d.days_in_month - u32::from(offset), d) == Some(d.day)
        }
        DayOfMonth::NearestWeekday(target) => nearest_weekday(u32::from(target), d) == Some(d.day),
    }
}

/// The weekday (Mon-Fri) nearest to day `target` of `d`'s month: Saturday
/// moves back to Friday and Sunday forward to Monday, except that the result
/// never leaves the month (a Saturday 1st gives Monday the 3rd, a Sunday last
/// day gives the Friday before). `None` if the month has no such day.
fn nearest_weekday(target: u32, d: Day) -> Option<u32> {
    if target == 0 || target > d.days_in_month {
        return None;
    }
    // Weekday of `target`, from `d`'s weekday, kept non-negative.
    let wd = (d.weekday + 7 * 5 + target - d.day) % 7;
    Some(match wd {
        6 if target == 1 => 3,
        6 => target - 1,
        0 if target == d.days_in_month => target - 2,
        0 => target + 1,
        _ => target,
    })
}

fn weekday_matches(rule: DayOfWeek, d: Day) -> bool {
    match rule {
        DayOfWeek::Any => true,
        DayOfWeek::Days(mask) => has_bit(u64::from(mask), d.weekday),
        DayOfWeek::Last(w) => d.weekday == u32::from(w) && d.day + 7 > d.days_in_month,
        DayOfWeek::Nth { weekday, nth } => {
            d.weekday == u32::from(weekday) && (d.day - 1) / 7 + 1 == u32::from(nth)
        }
    }
}

fn has_bit(mask: u64, bit: u32) -> bool {
    bit < 64 && mask & (1 << bit) != 0
}

/// Lowest set bit at or above `from`.
fn next_bit(mask: u64, from: u32) -> Option<u32> {
    if from >= 64 {
        return None;
    }
    let rest = mask >> from;
    (rest != 0).then(|| from + rest.trailing_zeros())
}

/// Highest set bit at or below `upto`.
fn prev_bit(mask: u64, upto: u32) -> Option<u32> {
    let kept = if upto >= 63 {
        mask
    } else {
        mask & ((1u64 << (upto + 1)) - 1)
    };
    (kept != 0).then(|| 63 - kept.leading_zeros())
}

fn ms_to_minute(ms: u64) -> i64 {
    // u64 milliseconds / 60 000 always fits an i64.
    (ms / MS_PER_MINUTE as u64) as i64
}

fn slot_ms(year: i64, month: u32, day: u32, hour: u32, minute: u32) -> Option<u64> {
    let minutes = i128::from(days_from_civil(year, month, day)) * i128::from(MINUTES_PER_DAY)
        + i128::from(hour * 60 + minute);
    u64::try_from(minutes * i128::from(MS_PER_MINUTE)).ok()
}

pub(crate) fn is_leap_year(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

pub(crate) fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// 0 = Sunday; 1970-01-01 was a Thursday.
fn weekday(days: i64) -> u32 {
    (days + 4).rem_euclid(7) as u32
}

pub(crate) use hearth_core::calendar::{civil_from_days, days_from_civil};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trips_across_eras() {
        for days in (-800_000..800_000).step_by(37) {
            let (y, m, d) = civil_from_days(days);
            assert!((1..=12).contains(&m) && d >= 1 && d <= days_in_month(y, m));
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(weekday(0), 4);
    }

    #[test]
    fn bit_scans() {
        assert_eq!(next_bit(0b1010, 0), Some(1));
        assert_eq!(next_bit(0b1010, 2), Some(3));
        assert_eq!(next_bit(0b1010, 4), None);
        assert_eq!(next_bit(u64::MAX, 63), Some(63));
        assert_eq!(next_bit(u64::MAX, 64), None);
        assert_eq!(prev_bit(0b1010, 2), Some(1));
        assert_eq!(prev_bit(0b1010, 0), None);
        assert_eq!(prev_bit(1 << 63, 63), Some(63));
    }
}
