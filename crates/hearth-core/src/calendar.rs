//! UTC calendar arithmetic on the proleptic Gregorian calendar, for the
//! timestamps bindings print (HTTP dates, SQL and ISO strings) and the cron
//! schedule, so no crate needs a date library for it.

/// Days since 1970-01-01 of a date (month 1..=12, day 1..=31), by Howard
/// Hinnant's era arithmetic.
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date `days` after 1970-01-01, as (year, month 1..=12, day 1..=31).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// An instant in UTC, split into calendar fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UtcDateTime {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub millis: u32,
}

impl UtcDateTime {
    /// From milliseconds since the Unix epoch (negative: before it).
    pub fn from_unix_ms(ms: i64) -> Self {
        let secs = ms.div_euclid(1000);
        let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
        let rem = secs.rem_euclid(86_400) as u32;
        Self {
            year,
            month,
            day,
            hour: rem / 3600,
            minute: rem % 3600 / 60,
            second: rem % 60,
            millis: ms.rem_euclid(1000) as u32,
        }
    }

    /// `YYYY-MM-DD hh:mm:ss`, as SQL prints it.
    pub fn sql(&self) -> String {
        format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }

    /// `YYYY-MM-DDThh:mm:ss.mmmZ`, as JavaScript's `toISOString` prints it.
    pub fn iso(&self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second, self.millis
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_across_eras() {
        for days in (-800_000..800_000).step_by(37) {
            let (y, m, d) = civil_from_days(days);
            assert!((1..=12).contains(&m) && (1..=31).contains(&d));
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn formats() {
        let t = UtcDateTime::from_unix_ms(1_700_000_000_123);
        assert_eq!(t.sql(), "2023-11-14 22:13:20");
        assert_eq!(t.iso(), "2023-11-14T22:13:20.123Z");
        assert_eq!(
            UtcDateTime::from_unix_ms(951_782_400_000).sql(),
            "2000-02-29 00:00:00"
        );
        assert_eq!(
            UtcDateTime::from_unix_ms(-1).iso(),
            "1969-12-31T23:59:59.999Z"
        );
    }
}
