//! `next_after`, `prev_at_or_before` and `matches` against hand-checked UTC
//! dates (weekdays checked against a calendar).

mod common;

use common::{at, cron, next_n, show};

#[test]
fn steps_and_strictly_after() {
    assert_eq!(
        next_n("*/15 * * * *", "2024-03-10 10:07:30", 3),
        [
            "2024-03-10 10:15 Sun",
            "2024-03-10 10:30 Sun",
            "2024-03-10 10:45 Sun"
        ]
    );
    // Exactly on a slot: the next one, never the same.
    assert_eq!(
        next_n("0 * * * *", "2024-03-10 10:00", 1),
        ["2024-03-10 11:00 Sun"]
    );
    // A millisecond into a slot's minute: that slot has passed.
    let c = cron("* * * * *");
    assert_eq!(
        show(c.next_after(at("2024-03-10 10:00") + 1).unwrap()),
        "2024-03-10 10:01 Sun"
    );
    assert_eq!(
        show(c.next_after(at("2024-03-10 10:00") - 1).unwrap()),
        "2024-03-10 10:00 Sun"
    );
    assert_eq!(
        next_n("1-30/5 * * * *", "2024-03-10 10:26", 2),
        ["2024-03-10 11:01 Sun", "2024-03-10 11:06 Sun"]
    );
    assert_eq!(
        next_n("0 9-17/4 * * *", "2024-03-10 00:00", 4),
        [
            "2024-03-10 09:00 Sun",
            "2024-03-10 13:00 Sun",
            "2024-03-10 17:00 Sun",
            "2024-03-11 09:00 Mon"
        ]
    );
    assert_eq!(
        next_n("0 0 1 */3 *", "2024-01-01 00:00", 4),
        [
            "2024-04-01 00:00 Mon",
            "2024-07-01 00:00 Mon",
            "2024-10-01 00:00 Tue",
            "2025-01-01 00:00 Wed"
        ]
    );
}

#[test]
fn wrapping_ranges() {
    assert_eq!(
        next_n("50-10/10 * * * *", "2024-03-10 10:45", 4),
        [
            "2024-03-10 10:50 Sun",
            "2024-03-10 11:00 Sun",
            "2024-03-10 11:10 Sun",
            "2024-03-10 11:50 Sun"
        ]
    );
    assert_eq!(
        next_n("0 22-1 * * *", "2024-03-10 12:00", 5),
        [
            "2024-03-10 22:00 Sun",
            "2024-03-10 23:00 Sun",
            "2024-03-11 00:00 Mon",
            "2024-03-11 01:00 Mon",
            "2024-03-11 22:00 Mon"
        ]
    );
    assert_eq!(
        next_n("0 0 * * FRI-SUN", "2024-01-01 00:00", 4),
        [
            "2024-01-05 00:00 Fri",
            "2024-01-06 00:00 Sat",
            "2024-01-07 00:00 Sun",
            "2024-01-12 00:00 Fri"
        ]
    );
}

#[test]
fn year_boundaries() {
    assert_eq!(
        next_n("0 0 1 1 *", "2024-12-31 23:59:59", 2),
        ["2025-01-01 00:00 Wed", "2026-01-01 00:00 Thu"]
    );
    assert_eq!(
        next_n("59 23 31 12 *", "2024-12-31 23:59", 1),
        ["2025-12-31 23:59 Wed"]
    );
    assert_eq!(
        next_n("* * * * *", "2024-12-31 23:58", 2),
        ["2024-12-31 23:59 Tue", "2025-01-01 00:00 Wed"]
    );
}

#[test]
fn month_ends_and_leap_years() {
    assert_eq!(
        next_n("0 0 31 * *", "2024-04-01 00:00", 3),
        [
            "2024-05-31 00:00 Fri",
            "2024-07-31 00:00 Wed",
            "2024-08-31 00:00 Sat"
        ]
    );
    assert_eq!(
        next_n("0 0 29 2 *", "2023-03-01 00:00", 2),
        ["2024-02-29 00:00 Thu", "2028-02-29 00:00 Tue"]
    );
    // 2100 is not a leap year, 2000 was.
    assert_eq!(
        next_n("0 0 29 2 *", "2096-03-01 00:00", 1),
        ["2104-02-29 00:00 Fri"]
    );
    assert_eq!(
        next_n("0 0 29 2 *", "1999-03-01 00:00", 1),
        ["2000-02-29 00:00 Tue"]
    );
    assert_eq!(
        next_n("0 12 L * *", "2023-02-01 00:00", 4),
        [
            "2023-02-28 12:00 Tue",
            "2023-03-31 12:00 Fri",
            "2023-04-30 12:00 Sun",
            "2023-05-31 12:00 Wed"
        ]
    );
    assert_eq!(
        next_n("0 12 L 2 *", "2024-01-01 00:00", 2),
        ["2024-02-29 12:00 Thu", "2025-02-28 12:00 Fri"]
    );
    assert_eq!(
        next_n("0 0 L-2 * *", "2024-01-01 00:00", 2),
        ["2024-01-29 00:00 Mon", "2024-02-27 00:00 Tue"]
    );
}

#[test]
fn impossible_expressions_end_in_none() {
    for text in [
        "0 0 31 2 *",
        "0 0 30 2 *",
        "* * 31 4,6,9,11 *",
        "0 0 L-29 2 *",
    ] {
        let c = cron(text);
        assert_eq!(c.next_after(at("2024-01-01 00:00")), None, "{text}");
        assert_eq!(c.prev_at_or_before(at("2024-01-01 00:00")), None, "{text}");
    }
    // L-28 in February exists only in leap years, as the 1st.
    assert_eq!(
        next_n("0 0 L-28 2 *", "2023-01-01 00:00", 2),
        ["2024-02-01 00:00 Thu", "2028-02-01 00:00 Tue"]
    );
}

#[test]
fn last_weekday_of_month() {
    // March 2024 ends on a Sunday, August and November on a Saturday.
    assert_eq!(
        next_n("59 23 LW * *", "2024-03-01 00:00", 6),
        [
            "2024-03-29 23:59 Fri",
            "2024-04-30 23:59 Tue",
            "2024-05-31 23:59 Fri",
            "2024-06-28 23:59 Fri",
            "2024-07-31 23:59 Wed",
            "2024-08-30 23:59 Fri"
        ]
    );
    assert_eq!(
        next_n("0 0 LW 11 *", "2024-01-01 00:00", 1),
        ["2024-11-29 00:00 Fri"]
    );
    // L-1W: nearest weekday to the day before the last. 2024-03-30 is a
    // Saturday -> Friday 29th; 2024-06-29 is a Saturday -> Friday 28th.
    assert_eq!(
        next_n("0 0 L-1W 3 *", "2024-01-01 00:00", 1),
        ["2024-03-29 00:00 Fri"]
    );
    assert_eq!(
        next_n("0 0 L-1W 6 *", "2024-01-01 00:00", 1),
        ["2024-06-28 00:00 Fri"]
    );
}

#[test]
fn nearest_weekday() {
    // 2024-06-15 is a Saturday, 2024-09-15 a Sunday.
    assert_eq!(
        next_n("0 0 15W 6 *", "2024-01-01 00:00", 1),
        ["2024-06-14 00:00 Fri"]
    );
    assert_eq!(
        next_n("0 0 15W 9 *", "2024-01-01 00:00", 1),
        ["2024-09-16 00:00 Mon"]
    );
    assert_eq!(
        next_n("0 0 15W 1 *", "2024-01-01 00:00", 1),
        ["2024-01-15 00:00 Mon"]
    );
    // 1W never moves back into the previous month: Saturday the 1st -> Monday the 3rd.
    assert_eq!(
        next_n("0 0 1W 6 *", "2024-01-01 00:00", 1),
        ["2024-06-03 00:00 Mon"]
    );
    // 31W on a Sunday 31st never moves forward into the next month -> Friday 29th.
    assert_eq!(
        next_n("0 0 31W 3 *", "2024-01-01 00:00", 1),
        ["2024-03-29 00:00 Fri"]
    );
    // 31W in a 30-day month never fires.
    assert_eq!(next_n("0 0 31W 4 *", "2024-01-01 00:00", 1), ["none"]);
}

#[test]
fn nth_and_last_weekday_of_month() {
    assert_eq!(
        next_n("0 10 * * MON#2", "2024-01-01 00:00", 3),
        [
            "2024-01-08 10:00 Mon",
            "2024-02-12 10:00 Mon",
            "2024-03-11 10:00 Mon"
        ]
    );
    // A fifth Monday exists in January and April 2024, not in February or March.
    assert_eq!(
        next_n("0 10 * * 2#5", "2024-01-01 00:00", 2),
        ["2024-01-29 10:00 Mon", "2024-04-29 10:00 Mon"]
    );
    assert_eq!(
        next_n("0 18 * * 6L", "2024-01-01 00:00", 3),
        [
            "2024-01-26 18:00 Fri",
            "2024-02-23 18:00 Fri",
            "2024-03-29 18:00 Fri"
        ]
    );
    assert_eq!(
        next_n("0 18 * * friL", "2024-01-01 00:00", 1),
        ["2024-01-26 18:00 Fri"]
    );
}

#[test]
fn day_of_week_counts_from_sunday() {
    assert_eq!(
        next_n("0 17 * * 1", "2024-01-01 00:00", 1),
        ["2024-01-07 17:00 Sun"]
    );
    assert_eq!(
        next_n("0 17 * * sun", "2024-01-01 00:00", 1),
        ["2024-01-07 17:00 Sun"]
    );
    assert_eq!(
        next_n("0 17 * * 7", "2024-01-01 00:00", 1),
        ["2024-01-06 17:00 Sat"]
    );
    assert_eq!(
        next_n("0 0 * * L", "2024-01-01 00:00", 1),
        ["2024-01-06 00:00 Sat"]
    );
    assert_eq!(
        next_n("10 7 * * mon-fri", "2024-01-05 08:00", 2),
        ["2024-01-08 07:10 Mon", "2024-01-09 07:10 Tue"]
    );
    assert_eq!(
        next_n("10 7 * * 2-6", "2024-01-05 08:00", 2),
        ["2024-01-08 07:10 Mon", "2024-01-09 07:10 Tue"]
    );
}

#[test]
fn day_of_month_or_day_of_week_when_both_are_restricted() {
    // Fridays, plus the 13th whatever weekday it is.
    assert_eq!(
        next_n("0 0 13 * FRI", "2024-01-01 00:00", 4),
        [
            "2024-01-05 00:00 Fri",
            "2024-01-12 00:00 Fri",
            "2024-01-13 00:00 Sat",
            "2024-01-19 00:00 Fri"
        ]
    );
    // A bare * on one side leaves the other in charge.
    assert_eq!(
        next_n("0 0 13 * *", "2024-01-01 00:00", 1),
        ["2024-01-13 00:00 Sat"]
    );
    assert_eq!(
        next_n("0 0 * * FRI", "2024-01-01 00:00", 1),
        ["2024-01-05 00:00 Fri"]
    );
    // ... but */1 is a restriction: every day ORs with Fridays.
    assert_eq!(
        next_n("0 0 */1 * FRI", "2024-01-01 00:00", 1),
        ["2024-01-02 00:00 Tue"]
    );
    // Impossible day-of-month, rescued by day-of-week.
    assert_eq!(
        next_n("0 0 31 2 MON", "2024-01-01 00:00", 1),
        ["2024-02-05 00:00 Mon"]
    );
    // The month field still applies to both.
    assert_eq!(
        next_n("0 0 L 3 MON#1", "2024-01-01 00:00", 2),
        ["2024-03-04 00:00 Mon", "2024-03-31 00:00 Sun"]
    );
}

#[test]
fn prev_at_or_before() {
    let c = cron("0 * * * *");
    assert_eq!(
        show(c.prev_at_or_before(at("2024-03-10 12:30")).unwrap()),
        "2024-03-10 12:00 Sun"
    );
    // "At or before": a slot is its own answer, seconds into it too.
    assert_eq!(
        show(c.prev_at_or_before(at("2024-03-10 12:00")).unwrap()),
        "2024-03-10 12:00 Sun"
    );
    assert_eq!(
        show(c.prev_at_or_before(at("2024-03-10 12:00:59")).unwrap()),
        "2024-03-10 12:00 Sun"
    );
    assert_eq!(
        show(c.prev_at_or_before(at("2024-03-10 11:59:59")).unwrap()),
        "2024-03-10 11:00 Sun"
    );
    let leap = cron("0 0 29 2 *");
    assert_eq!(
        show(leap.prev_at_or_before(at("2028-02-28 00:00")).unwrap()),
        "2024-02-29 00:00 Thu"
    );
    let lw = cron("59 23 LW * *");
    assert_eq!(
        show(lw.prev_at_or_before(at("2024-04-15 00:00")).unwrap()),
        "2024-03-29 23:59 Fri"
    );
    let new_year = cron("0 0 1 1 *");
    assert_eq!(
        show(new_year.prev_at_or_before(at("2024-12-31 23:59")).unwrap()),
        "2024-01-01 00:00 Mon"
    );
    // Nothing before the epoch.
    assert_eq!(
        cron("0 0 2 1 *").prev_at_or_before(at("1970-01-01 12:00")),
        None
    );
    assert_eq!(
        show(
            cron("0 0 1 1 *")
                .prev_at_or_before(at("1970-01-01 12:00"))
                .unwrap()
        ),
        "1970-01-01 00:00 Thu"
    );
}

#[test]
fn prev_and_next_agree_over_a_year() {
    // Every slot next_after finds is the prev_at_or_before of itself and of
    // the millisecond before the following slot.
    for text in [
        "17 */5 * * *",
        "59 23 LW * *",
        "0 6 15W * *",
        "0 0 13 * FRI",
        "30 4 * * 6L",
    ] {
        let c = cron(text);
        let mut t = at("2024-01-01 00:00");
        let end = at("2025-01-01 00:00");
        let mut slot = c.next_after(t).unwrap();
        while slot < end {
            let next = c.next_after(slot).unwrap();
            assert_eq!(c.prev_at_or_before(slot), Some(slot), "{text}");
            assert_eq!(c.prev_at_or_before(next - 1), Some(slot), "{text}");
            t = slot;
            slot = next;
        }
        assert!(t > at("2024-06-01 00:00"), "{text}");
    }
}

#[test]
fn matches_ignores_seconds() {
    let c = cron("30 14 * * MON");
    assert!(c.matches(at("2024-01-01 14:30")));
    assert!(c.matches(at("2024-01-01 14:30:59")));
    assert!(!c.matches(at("2024-01-01 14:31")));
    assert!(!c.matches(at("2024-01-02 14:30")));
    assert!(cron("0 0 29 2 *").matches(at("2024-02-29 00:00")));
    assert!(cron("0 0 L * *").matches(at("2024-02-29 00:00")));
    assert!(!cron("0 0 L * *").matches(at("2024-02-28 00:00")));
}

#[test]
fn brute_force_agrees_with_the_search() {
    // Minute by minute over three months: every minute matches() says yes to
    // is exactly what next_after walks through.
    for text in [
        "*/7 1-3 * * *",
        "0 0 LW * *",
        "15 12 1W * *",
        "0 */6 * * 2#1",
        "0 0 20-10 * 3-5",
    ] {
        let c = cron(text);
        let start = at("2024-01-20 00:00");
        let end = at("2024-04-20 00:00");
        let mut expected = Vec::new();
        let mut m = start + 60_000;
        while m < end {
            if c.matches(m) {
                expected.push(m);
            }
            m += 60_000;
        }
        let mut found = Vec::new();
        let mut t = start;
        while let Some(next) = c.next_after(t) {
            if next >= end {
                break;
            }
            found.push(next);
            t = next;
        }
        assert!(!expected.is_empty(), "{text}");
        assert_eq!(found, expected, "{text}");
    }
}

#[test]
fn far_future_and_extremes_do_not_panic() {
    let c = cron("0 0 1 1 *");
    assert_eq!(c.next_after(u64::MAX), None);
    assert!(c.next_after(at("9999-12-31 23:59")).is_some());
    assert!(!cron("0 0 31 2 *").matches(u64::MAX));
    assert_eq!(
        show(cron("* * * * *").next_after(0).unwrap()),
        "1970-01-01 00:01 Thu"
    );
}
