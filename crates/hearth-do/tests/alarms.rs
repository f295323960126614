//! Alarms: storage API, the durable index, and the scheduler's due / retry /
//! complete rules, all on the manual clock.

mod common;

use common::*;
use hearth_core::{Clock, ManualClock};
use hearth_core::{ContractError, ErrorClass};
use hearth_do::{AlarmRetry, DurableObjectNamespace, DurableObjectStorage};

fn object(ns: &DurableObjectNamespace, name: &str) -> DurableObjectStorage {
    ns.storage(&ns.id_from_name(name)).unwrap()
}

#[test]
fn set_get_delete_alarm() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let s = object(&kv_ns(dir.path(), &clock), "o");
    assert_eq!(s.get_alarm().unwrap(), None);
    s.set_alarm((T0 + 60_000) as i64).unwrap();
    assert_eq!(s.get_alarm().unwrap(), Some(T0 + 60_000));
    s.set_alarm((T0 + 30_000) as i64).unwrap();
    assert_eq!(s.get_alarm().unwrap(), Some(T0 + 30_000));
    s.delete_alarm().unwrap();
    assert_eq!(s.get_alarm().unwrap(), None);
}

#[test]
fn alarm_times_must_be_positive_and_past_times_mean_now() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let s = object(&kv_ns(dir.path(), &clock), "o");
    for bad in [0, -5] {
        let e = s.set_alarm(bad).unwrap_err();
        assert_eq!(
            e.to_string(),
            "setAlarm() cannot be called with an alarm time <= 0"
        );
        assert_eq!(e.class(), ErrorClass::TypeError);
    }
    s.set_alarm(1).unwrap();
    assert_eq!(s.get_alarm().unwrap(), Some(T0));
}

#[test]
fn an_alarm_is_due_once_its_time_passes() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let ns = sqlite_ns(dir.path(), &clock);
    let s = object(&ns, "o");
    s.set_alarm((T0 + 10_000) as i64).unwrap();
    s.flush().unwrap();
    let scheduler = host(dir.path(), &clock).alarm_scheduler();
    assert_eq!(scheduler.next_wake().unwrap(), Some(T0 + 10_000));
    assert!(scheduler.due().unwrap().is_empty());
    clock.advance_ms(9_999);
    assert!(scheduler.due().unwrap().is_empty());
    clock.advance_ms(1);
    let due = scheduler.due().unwrap();
    assert_eq!(due.len(), 1);
    let a = &due[0];
    assert_eq!(a.namespace, "Room");
    assert_eq!(a.id, ns.id_from_name("o").to_string());
    assert_eq!(a.scheduled_ms, T0 + 10_000);
    assert_eq!(a.retry_count, 0);
    assert!(!a.is_retry());
    // Leased while it runs: not handed out twice, not a reason to wake.
    assert!(scheduler.due().unwrap().is_empty());
    assert_eq!(scheduler.next_wake().unwrap(), None);
    // The handler ran: the object clears its alarm, the index drops it.
    assert!(s.complete_alarm(a.scheduled_ms).unwrap());
    assert!(
        !scheduler.complete(a).unwrap(),
        "already gone with the flush"
    );
    assert_eq!(s.get_alarm().unwrap(), None);
    clock.advance_secs(3600);
    assert!(scheduler.due().unwrap().is_empty());
}

#[test]
fn alarms_are_indexed_only_when_flushed() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let s = object(&kv_ns(dir.path(), &clock), "o");
    let scheduler = host(dir.path(), &clock).alarm_scheduler();
    s.set_alarm((T0 + 1_000) as i64).unwrap();
    assert_eq!(scheduler.next_wake().unwrap(), None);
    s.flush().unwrap();
    assert_eq!(scheduler.next_wake().unwrap(), Some(T0 + 1_000));
    s.delete_alarm().unwrap();
    s.flush().unwrap();
    assert_eq!(scheduler.next_wake().unwrap(), None);
}

#[test]
fn an_alarm_that_passed_while_down_is_found_on_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let id = {
        let ns = sqlite_ns(dir.path(), &clock);
        let s = object(&ns, "o");
        s.set_alarm((T0 + 5_000) as i64).unwrap();
        s.flush().unwrap();
        ns.id_from_name("o").to_string()
    };
    // "Restart" an hour later without opening the object.
    clock.advance_secs(3600);
    let scheduler = host(dir.path(), &clock).alarm_scheduler();
    assert_eq!(scheduler.next_wake().unwrap(), Some(T0 + 5_000));
    let due = scheduler.due().unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].id, id);
    assert_eq!(due[0].scheduled_ms, T0 + 5_000);
}

#[test]
fn failed_runs_retry_with_backoff_then_give_up_after_six() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let s = object(&sqlite_ns(dir.path(), &clock), "o");
    s.set_alarm(T0 as i64).unwrap();
    s.flush().unwrap();
    let scheduler = host(dir.path(), &clock).alarm_scheduler();
    let mut delays = Vec::new();
    let mut retry_counts = Vec::new();
    loop {
        let due = scheduler.due().unwrap();
        assert_eq!(due.len(), 1);
        let a = due[0].clone();
        retry_counts.push(a.retry_count);
        assert_eq!(
            a.scheduled_ms, T0,
            "the handler always sees the original time"
        );
        match scheduler.failed(&a).unwrap() {
            AlarmRetry::RetryAt(at) => {
                let delay = at - clock.now_ms();
                delays.push(delay / 1000);
                assert_eq!(scheduler.next_wake().unwrap(), Some(at));
                clock.advance_ms(delay - 1);
                assert!(
                    scheduler.due().unwrap().is_empty(),
                    "not before the backoff"
                );
                clock.advance_ms(1);
            }
            AlarmRetry::GaveUp => break,
            AlarmRetry::Superseded => panic!("nothing re-set it"),
        }
    }
    assert_eq!(delays, [2, 4, 8, 16, 32, 64]);
    assert_eq!(retry_counts, [0, 1, 2, 3, 4, 5, 6]);
    assert_eq!(scheduler.next_wake().unwrap(), None);
    // The runtime clears the object's alarm when the scheduler gives up.
    assert!(s.complete_alarm(T0).unwrap());
    assert_eq!(s.get_alarm().unwrap(), None);
}

#[test]
fn retries_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let s = object(&sqlite_ns(dir.path(), &clock), "o");
    s.set_alarm(T0 as i64).unwrap();
    s.flush().unwrap();
    let scheduler = host(dir.path(), &clock).alarm_scheduler();
    let a = scheduler.due().unwrap().remove(0);
    assert_eq!(
        scheduler.failed(&a).unwrap(),
        AlarmRetry::RetryAt(T0 + 2_000)
    );
    drop(scheduler);
    // Reopening the object must not reset the retry state.
    drop(s);
    let s = object(&sqlite_ns(dir.path(), &clock), "o");
    clock.advance_ms(2_000);
    let scheduler = host(dir.path(), &clock).alarm_scheduler();
    let a = scheduler.due().unwrap().remove(0);
    assert_eq!(a.retry_count, 1);
    assert!(a.is_retry());
    assert!(s.complete_alarm(a.scheduled_ms).unwrap());
    scheduler.complete(&a).unwrap();
    assert_eq!(scheduler.next_wake().unwrap(), None);
}

#[test]
fn an_alarm_re_set_during_its_run_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let s = object(&sqlite_ns(dir.path(), &clock), "o");
    s.set_alarm(T0 as i64).unwrap();
    s.flush().unwrap();
    let scheduler = host(dir.path(), &clock).alarm_scheduler();
    let a = scheduler.due().unwrap().remove(0);
    // The handler schedules the next run, and its writes are flushed.
    s.set_alarm((T0 + 60_000) as i64).unwrap();
    s.flush().unwrap();
    assert!(!scheduler.is_current(&a).unwrap());
    assert!(!s.complete_alarm(a.scheduled_ms).unwrap());
    assert!(!scheduler.complete(&a).unwrap());
    assert_eq!(s.get_alarm().unwrap(), Some(T0 + 60_000));
    assert_eq!(scheduler.next_wake().unwrap(), Some(T0 + 60_000));
    // A failure of the old run does not retry it either.
    clock.advance_secs(60);
    let b = scheduler.due().unwrap().remove(0);
    assert_eq!(b.scheduled_ms, T0 + 60_000);
    assert_eq!(b.retry_count, 0);
    s.delete_alarm().unwrap();
    s.flush().unwrap();
    assert_eq!(scheduler.failed(&b).unwrap(), AlarmRetry::Superseded);
    assert_eq!(scheduler.next_wake().unwrap(), None);
}

#[test]
fn released_alarms_are_handed_out_again() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let s = object(&kv_ns(dir.path(), &clock), "o");
    s.set_alarm(T0 as i64).unwrap();
    s.flush().unwrap();
    let scheduler = host(dir.path(), &clock).alarm_scheduler();
    let a = scheduler.due().unwrap().remove(0);
    scheduler.release(&a);
    assert_eq!(scheduler.due().unwrap(), vec![a]);
}

#[test]
fn due_alarms_come_oldest_first_across_namespaces() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let a = object(&kv_ns(dir.path(), &clock), "a");
    let b = object(&sqlite_ns(dir.path(), &clock), "b");
    b.set_alarm((T0 + 2_000) as i64).unwrap();
    b.flush().unwrap();
    a.set_alarm((T0 + 3_000) as i64).unwrap();
    a.flush().unwrap();
    clock.advance_secs(10);
    let due = host(dir.path(), &clock).alarm_scheduler().due().unwrap();
    let order: Vec<(&str, u64)> = due
        .iter()
        .map(|d| (d.namespace.as_str(), d.scheduled_ms - T0))
        .collect();
    assert_eq!(order, [("Room", 2_000), ("Counter", 3_000)]);
}

#[test]
fn the_index_is_repaired_from_the_object_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let ns = sqlite_ns(dir.path(), &clock);
    let id = ns.id_from_name("o").to_string();
    {
        let s = object(&ns, "o");
        s.set_alarm((T0 + 5_000) as i64).unwrap();
        s.flush().unwrap();
        // A flush writes a new time to the index before committing the
        // object; a crash in between leaves the index ahead of the object.
        s.set_alarm((T0 + 9_000) as i64).unwrap();
        let index = rusqlite::Connection::open(dir.path().join("do/alarms.sqlite")).unwrap();
        index
            .execute(
                "UPDATE alarms SET scheduled_ms = ?1, due_ms = ?1 WHERE id = ?2",
                rusqlite::params![(T0 + 9_000) as i64, id],
            )
            .unwrap();
    }
    let scheduler = host(dir.path(), &clock).alarm_scheduler();
    assert_eq!(scheduler.next_wake().unwrap(), Some(T0 + 9_000));
    let s = object(&ns, "o");
    assert_eq!(s.get_alarm().unwrap(), Some(T0 + 5_000));
    assert_eq!(scheduler.next_wake().unwrap(), Some(T0 + 5_000));
}

#[test]
fn a_stale_due_alarm_is_recognised_after_the_object_is_opened() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let ns = kv_ns(dir.path(), &clock);
    let id = ns.id_from_name("o").to_string();
    drop(object(&ns, "o"));
    // An index row whose batch never committed: the object has no alarm.
    let index = rusqlite::Connection::open(dir.path().join("do/alarms.sqlite")).unwrap();
    index
        .execute(
            "INSERT INTO alarms (namespace, id, scheduled_ms, due_ms) VALUES ('Counter', ?1, ?2, ?2)",
            rusqlite::params![id, T0 as i64],
        )
        .unwrap();
    let scheduler = host(dir.path(), &clock).alarm_scheduler();
    let a = scheduler.due().unwrap().remove(0);
    // The runtime opens the object to deliver it; that reconciles the index.
    let s = ns.storage(&ns.id_from_string(&a.id).unwrap()).unwrap();
    assert!(!scheduler.is_current(&a).unwrap());
    assert_eq!(s.get_alarm().unwrap(), None);
    scheduler.release(&a);
    assert_eq!(scheduler.next_wake().unwrap(), None);
}
