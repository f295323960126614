//! `CronScheduler` under a `ManualClock`: slots fire once each, downtime
//! costs one run, state survives reopening, config changes are honoured.

mod common;

use std::path::{Path, PathBuf};

use common::{at, show};
use hearth_core::{DataDir, ManualClock};
use hearth_cron::{CronError, CronLimits, CronScheduler, DueRun};

fn open(path: &Path, clock: &ManualClock, crons: &[&str]) -> CronScheduler {
    CronScheduler::open(path, "worker", crons, clock.shared()).unwrap()
}

fn state_file() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = DataDir::new(dir.path()).cron();
    (dir, path)
}

/// Due runs at the clock's now, as `"cron @ time"`.
fn due(s: &CronScheduler) -> Vec<String> {
    s.due_now()
        .iter()
        .map(|r| format!("{} @ {}", r.cron, show(r.scheduled_time_ms)))
        .collect()
}

fn run_all(s: &CronScheduler) -> Vec<String> {
    let shown = due(s);
    for run in s.due_now() {
        s.mark_done(&run).unwrap();
    }
    shown
}

#[test]
fn fires_once_at_each_slot() {
    let (_dir, path) = state_file();
    let clock = ManualClock::new(at("2024-01-01 10:00:30"));
    let s = open(&path, &clock, &["*/15 * * * *"]);
    assert!(due(&s).is_empty());
    for slot in ["10:15", "10:30", "10:45", "11:00"] {
        let wake = s.next_wake_now().unwrap();
        assert_eq!(show(wake), format!("2024-01-01 {slot} Mon"));
        // A millisecond early: nothing yet.
        clock.set_ms(wake - 1);
        assert!(due(&s).is_empty());
        clock.set_ms(wake);
        assert_eq!(
            run_all(&s),
            [format!("*/15 * * * * @ 2024-01-01 {slot} Mon")]
        );
        assert!(due(&s).is_empty(), "a slot runs once");
    }
}

#[test]
fn a_run_stays_due_until_marked_done() {
    let (_dir, path) = state_file();
    let clock = ManualClock::new(at("2024-01-01 10:00:30"));
    let s = open(&path, &clock, &["* * * * *"]);
    clock.set_ms(at("2024-01-01 10:01:05"));
    let first = s.due_now();
    assert_eq!(
        first,
        [DueRun {
            cron: "* * * * *".to_owned(),
            scheduled_time_ms: at("2024-01-01 10:01"),
        }]
    );
    assert_eq!(s.due_now(), first);
    assert_eq!(s.next_wake_now(), Some(clock.shared().now_ms()), "due now");
    s.mark_done(&first[0]).unwrap();
    assert!(s.due_now().is_empty());
    assert_eq!(show(s.next_wake_now().unwrap()), "2024-01-01 10:02 Mon");
    // Marking an older slot again moves nothing back.
    s.mark_done(&DueRun {
        cron: "* * * * *".to_owned(),
        scheduled_time_ms: at("2024-01-01 09:00"),
    })
    .unwrap();
    assert!(s.due_now().is_empty());
    assert_eq!(
        s.last_fired("* * * * *").unwrap(),
        Some(at("2024-01-01 10:01"))
    );
}

#[test]
fn downtime_costs_one_run_for_the_latest_missed_slot() {
    let (_dir, path) = state_file();
    let clock = ManualClock::new(at("2024-01-01 10:00:30"));
    let s = open(&path, &clock, &["0 * * * *", "*/5 * * * *"]);
    clock.set_ms(at("2024-01-01 11:00"));
    assert_eq!(
        run_all(&s),
        [
            "0 * * * * @ 2024-01-01 11:00 Mon",
            "*/5 * * * * @ 2024-01-01 11:00 Mon"
        ]
    );
    drop(s);

    // Down from 11:00 to 15:32: four hourly and 54 five-minute slots missed.
    clock.set_ms(at("2024-01-01 15:32"));
    let s = open(&path, &clock, &["0 * * * *", "*/5 * * * *"]);
    assert_eq!(
        run_all(&s),
        [
            "0 * * * * @ 2024-01-01 15:00 Mon",
            "*/5 * * * * @ 2024-01-01 15:30 Mon"
        ]
    );
    assert!(due(&s).is_empty());
    assert_eq!(show(s.next_wake_now().unwrap()), "2024-01-01 15:35 Mon");
    clock.set_ms(at("2024-01-01 16:00"));
    assert_eq!(
        run_all(&s),
        [
            "0 * * * * @ 2024-01-01 16:00 Mon",
            "*/5 * * * * @ 2024-01-01 16:00 Mon"
        ]
    );
}

#[test]
fn a_slow_host_also_collapses_missed_slots() {
    let (_dir, path) = state_file();
    let clock = ManualClock::new(at("2024-01-01 10:00:30"));
    let s = open(&path, &clock, &["* * * * *"]);
    clock.set_ms(at("2024-01-01 10:07:10"));
    assert_eq!(run_all(&s), ["* * * * * @ 2024-01-01 10:07 Mon"]);
    assert!(due(&s).is_empty());
}

#[test]
fn a_new_cron_starts_from_now() {
    let (_dir, path) = state_file();
    // Configured at 15:30: the 15:00 slot (and all history) is not owed.
    let clock = ManualClock::new(at("2024-01-01 15:30"));
    let s = open(&path, &clock, &["0 * * * *"]);
    assert!(due(&s).is_empty());
    assert_eq!(show(s.next_wake_now().unwrap()), "2024-01-01 16:00 Mon");
    clock.set_ms(at("2024-01-01 16:00"));
    assert_eq!(run_all(&s), ["0 * * * * @ 2024-01-01 16:00 Mon"]);
    drop(s);

    // A cron added later joins from its own "now"; the old one catches up.
    clock.set_ms(at("2024-01-01 18:30"));
    let s = open(&path, &clock, &["0 * * * *", "15 * * * *"]);
    assert_eq!(run_all(&s), ["0 * * * * @ 2024-01-01 18:00 Mon"]);
    assert_eq!(show(s.next_wake_now().unwrap()), "2024-01-01 19:00 Mon");
    clock.set_ms(at("2024-01-01 19:15"));
    assert_eq!(
        run_all(&s),
        [
            "0 * * * * @ 2024-01-01 19:00 Mon",
            "15 * * * * @ 2024-01-01 19:15 Mon"
        ]
    );
}

#[test]
fn removing_a_cron_forgets_it() {
    let (_dir, path) = state_file();
    let clock = ManualClock::new(at("2024-01-01 10:00:30"));
    let s = open(&path, &clock, &["0 * * * *", "30 * * * *"]);
    clock.set_ms(at("2024-01-01 11:00"));
    assert_eq!(
        run_all(&s),
        [
            "0 * * * * @ 2024-01-01 11:00 Mon",
            "30 * * * * @ 2024-01-01 10:30 Mon"
        ]
    );
    drop(s);

    clock.set_ms(at("2024-01-01 12:10"));
    let s = open(&path, &clock, &["30 * * * *"]);
    assert_eq!(run_all(&s), ["30 * * * * @ 2024-01-01 11:30 Mon"]);
    assert_eq!(s.last_fired("0 * * * *").unwrap(), None, "row deleted");
    let err = s
        .mark_done(&DueRun {
            cron: "0 * * * *".to_owned(),
            scheduled_time_ms: at("2024-01-01 12:00"),
        })
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "no cron trigger \"0 * * * *\" is configured for worker \"worker\""
    );
    drop(s);

    // Back in the config: a fresh start, not a catch-up of 12:00..14:00.
    clock.set_ms(at("2024-01-01 14:45"));
    let s = open(&path, &clock, &["0 * * * *", "30 * * * *"]);
    assert_eq!(run_all(&s), ["30 * * * * @ 2024-01-01 14:30 Mon"]);
    assert_eq!(show(s.next_wake_now().unwrap()), "2024-01-01 15:00 Mon");
}

#[test]
fn state_survives_reopening() {
    let (_dir, path) = state_file();
    let clock = ManualClock::new(at("2024-01-01 10:00:30"));
    let s = open(&path, &clock, &["0 * * * *"]);
    clock.set_ms(at("2024-01-01 11:00:02"));
    assert_eq!(run_all(&s), ["0 * * * * @ 2024-01-01 11:00 Mon"]);
    drop(s);

    // Restarted within the same hour: 11:00 has run and is not repeated.
    clock.set_ms(at("2024-01-01 11:20"));
    let s = open(&path, &clock, &["0 * * * *"]);
    assert!(due(&s).is_empty());
    assert_eq!(
        s.last_fired("0 * * * *").unwrap(),
        Some(at("2024-01-01 11:00"))
    );
    // Due but not marked done when the process dies: owed once on restart.
    clock.set_ms(at("2024-01-01 12:00"));
    assert_eq!(due(&s), ["0 * * * * @ 2024-01-01 12:00 Mon"]);
    drop(s);
    clock.set_ms(at("2024-01-01 12:01"));
    let s = open(&path, &clock, &["0 * * * *"]);
    assert_eq!(run_all(&s), ["0 * * * * @ 2024-01-01 12:00 Mon"]);
}

#[test]
fn mark_done_is_committed_when_it_returns() {
    let (_dir, path) = state_file();
    let clock = ManualClock::new(at("2024-01-01 10:00:30"));
    let s = open(&path, &clock, &["0 * * * *"]);
    clock.set_ms(at("2024-01-01 11:00"));
    run_all(&s);
    // Another connection (as another process would) sees the commit while
    // the scheduler is still open.
    let other = rusqlite::Connection::open(&path).unwrap();
    let (cursor, fired): (i64, i64) = other
        .query_row(
            "SELECT cursor_ms, last_fired_ms FROM cron_triggers WHERE worker = 'worker'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(cursor as u64, at("2024-01-01 11:00"));
    assert_eq!(fired as u64, at("2024-01-01 11:00"));
}

#[test]
fn workers_share_the_file_but_not_their_state() {
    let (_dir, path) = state_file();
    let clock = ManualClock::new(at("2024-01-01 10:00:30"));
    let a = CronScheduler::open(&path, "a", &["0 * * * *"], clock.shared()).unwrap();
    let b = CronScheduler::open(&path, "b", &["0 * * * *"], clock.shared()).unwrap();
    clock.set_ms(at("2024-01-01 11:00"));
    for run in a.due_now() {
        a.mark_done(&run).unwrap();
    }
    assert!(a.due_now().is_empty());
    assert_eq!(b.due_now().len(), 1);
    // Reopening "a" with no crons forgets only "a".
    drop(a);
    let a = CronScheduler::open(&path, "a", &[] as &[&str], clock.shared()).unwrap();
    assert!(a.due_now().is_empty());
    assert_eq!(a.next_wake_now(), None);
    assert_eq!(b.due_now().len(), 1);
    assert_eq!(a.worker(), "a");
}

#[test]
fn impossible_crons_never_wake() {
    let (_dir, path) = state_file();
    let clock = ManualClock::new(at("2024-01-01 10:00:30"));
    let s = open(&path, &clock, &["0 0 31 2 *"]);
    assert_eq!(s.next_wake_now(), None);
    clock.set_ms(at("2030-01-01 00:00"));
    assert!(due(&s).is_empty());
    drop(s);
    let s = open(&path, &clock, &["0 0 31 2 *", "0 12 * * *"]);
    assert_eq!(show(s.next_wake_now().unwrap()), "2030-01-01 12:00 Tue");
}

#[test]
fn next_wake_is_the_earliest_cron() {
    let (_dir, path) = state_file();
    let clock = ManualClock::new(at("2024-01-01 10:00:30"));
    let s = open(&path, &clock, &["0 12 * * *", "45 10 * * *", "0 0 1 * *"]);
    assert_eq!(
        show(s.next_wake(at("2024-01-01 10:00:30")).unwrap()),
        "2024-01-01 10:45 Mon"
    );
    assert_eq!(s.triggers().len(), 3);
    assert_eq!(s.triggers()[1].as_str(), "45 10 * * *");
}

#[test]
fn clock_moving_backwards_fires_nothing_twice() {
    let (_dir, path) = state_file();
    let clock = ManualClock::new(at("2024-01-01 10:00:30"));
    let s = open(&path, &clock, &["0 * * * *"]);
    clock.set_ms(at("2024-01-01 12:00"));
    assert_eq!(run_all(&s), ["0 * * * * @ 2024-01-01 12:00 Mon"]);
    clock.set_ms(at("2024-01-01 11:00"));
    assert!(due(&s).is_empty());
    assert_eq!(show(s.next_wake_now().unwrap()), "2024-01-01 13:00 Mon");
}

#[test]
fn the_list_is_checked_before_anything_is_written() {
    let (_dir, path) = state_file();
    let clock = ManualClock::new(at("2024-01-01 10:00"));
    let err =
        CronScheduler::open(&path, "w", &["0 * * * *", "0 0 * * 0"], clock.shared()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid cron string \"0 0 * * 0\": day-of-week: \"0\" is out of range 1-7 (1 = SUN .. 7 = SAT)"
    );
    assert!(!path.exists());

    let err = CronScheduler::open(&path, "w", &["0 17 * * sun", "0 17 * * 1"], clock.shared())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Expression '0 17 * * 1' already exists in the form of '0 17 * * sun'"
    );
    assert!(matches!(err, CronError::DuplicateTrigger { .. }));
    let err =
        CronScheduler::open(&path, "w", &["0 * * * *", "0 * * * *"], clock.shared()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Expression '0 * * * *' already exists in the form of '0 * * * *'"
    );
    assert!(!path.exists());
}

#[test]
fn the_number_of_triggers_is_limited() {
    let (_dir, path) = state_file();
    let clock = ManualClock::new(at("2024-01-01 10:00"));
    assert_eq!(CronLimits::default().max_triggers, 250);
    let many: Vec<String> = (0..251)
        .map(|i| format!("{} {} * * *", i % 60, i / 60))
        .collect();
    let err = CronScheduler::open(&path, "w", &many, clock.shared()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "too many cron triggers: 251 configured, the limit is 250 (CronLimits::max_triggers)"
    );
    CronScheduler::open(&path, "w", &many[..250], clock.shared()).unwrap();
    // A raised limit lets more through.
    let raised = CronLimits { max_triggers: 300 };
    CronScheduler::open_with_limits(&path, "w", &many, clock.shared(), raised).unwrap();
    let low = CronLimits { max_triggers: 1 };
    let err =
        CronScheduler::open_with_limits(&path, "w", &many[..2], clock.shared(), low).unwrap_err();
    assert!(matches!(
        err,
        CronError::TooManyTriggers { count: 2, limit: 1 }
    ));
}
