//! Write coalescing: flushed writes survive a crash, unflushed ones vanish.
//! Crashes are simulated by dropping storage without a flush and by a real
//! child process killed with SIGKILL.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use common::*;
use hearth_core::{ManualClock, SystemClock};
use hearth_do::{DoLimits, DurableObjectHost, ListOptions, SqlValue, StorageBackend};

#[test]
fn unflushed_writes_vanish_when_storage_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let ns = sqlite_ns(dir.path(), &clock);
    let id = ns.id_from_name("o");
    {
        let s = ns.storage(&id).unwrap();
        s.put("flushed", b"1").unwrap();
        s.sql_exec("CREATE TABLE t (x); INSERT INTO t VALUES (1)", &[])
            .unwrap();
        s.flush().unwrap();
        s.put("lost", b"2").unwrap();
        s.sql_exec("INSERT INTO t VALUES (2)", &[]).unwrap();
        s.set_alarm((T0 + 5_000) as i64).unwrap();
        // Reads see the open batch.
        assert_eq!(s.get("lost").unwrap(), Some(b"2".to_vec()));
        assert!(s.has_unflushed_writes());
    }
    let s = sqlite_ns(dir.path(), &clock).storage(&id).unwrap();
    assert_eq!(s.get("flushed").unwrap(), Some(b"1".to_vec()));
    assert_eq!(s.get("lost").unwrap(), None);
    let n = s
        .sql_exec("SELECT count(*) AS n FROM t", &[])
        .unwrap()
        .one()
        .unwrap();
    assert_eq!(n.get("n"), Some(&SqlValue::Integer(1)));
    assert_eq!(s.get_alarm().unwrap(), None);
    // The alarm index ran ahead of the lost batch; opening the object healed it.
    let scheduler = host(dir.path(), &clock).alarm_scheduler();
    assert_eq!(scheduler.next_wake().unwrap(), None);
}

#[test]
fn flush_without_writes_is_a_no_op() {
    let dir = tempfile::tempdir().unwrap();
    let ns = kv_ns(dir.path(), &ManualClock::new(T0));
    let s = ns.storage(&ns.id_from_name("o")).unwrap();
    s.flush().unwrap();
    assert_eq!(s.get("k").unwrap(), None);
    assert!(!s.has_unflushed_writes());
}

#[test]
fn a_large_unit_is_never_committed_in_part() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let ns = kv_ns(dir.path(), &clock);
    let id = ns.id_from_name("o");
    {
        let s = ns.storage(&id).unwrap();
        // Past the old early-commit threshold of 10,000: still one unit.
        for i in 0..25_000 {
            s.put(&format!("k{i:05}"), b"v").unwrap();
        }
        assert!(s.has_unflushed_writes());
        // Dropped without a flush, as a crash would: nothing survives.
    }
    {
        let s = ns.storage(&id).unwrap();
        assert_eq!(s.list(&ListOptions::new()).unwrap().len(), 0);
        for i in 0..25_000 {
            s.put(&format!("k{i:05}"), b"v").unwrap();
        }
        s.put("done", b"1").unwrap();
        s.flush().unwrap();
    }
    let s = ns.storage(&id).unwrap();
    assert_eq!(s.list(&ListOptions::new()).unwrap().len(), 25_001);
}

#[test]
fn a_unit_past_the_write_limit_is_discarded_whole() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let limits = DoLimits {
        max_unflushed_writes: 10,
        ..DoLimits::default()
    };
    let ns = host_with(dir.path(), &clock, limits)
        .namespace("Counter", StorageBackend::KeyValue)
        .unwrap();
    let id = ns.id_from_name("o");
    let s = ns.storage(&id).unwrap();
    s.put("before", b"v").unwrap();
    s.flush().unwrap();
    for i in 0..10 {
        s.put(&format!("k{i:02}"), b"v").unwrap();
    }
    let message = "Durable Object storage: 11 writes written since the last commit passed the limit of 10 (limits.max_unflushed_writes); every write since the last commit is discarded. Await writes so that they commit in smaller units.";
    assert_eq!(s.put("k10", b"v").unwrap_err().to_string(), message);
    // Every later write of the unit fails the same way, and so does its flush.
    assert_eq!(s.put("done", b"1").unwrap_err().to_string(), message);
    assert_eq!(s.flush().unwrap_err().to_string(), message);
    let keys: Vec<String> = s
        .list(&ListOptions::new())
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(keys, vec!["before".to_string()]);
    // The next unit starts afresh.
    s.put("after", b"v").unwrap();
    s.flush().unwrap();
    assert_eq!(s.list(&ListOptions::new()).unwrap().len(), 2);
}

#[test]
fn a_unit_past_the_byte_limit_is_discarded_whole() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let limits = DoLimits {
        max_unflushed_bytes: 1000,
        ..DoLimits::default()
    };
    let ns = host_with(dir.path(), &clock, limits)
        .namespace("Counter", StorageBackend::KeyValue)
        .unwrap();
    let s = ns.storage(&ns.id_from_name("o")).unwrap();
    s.put("a", &[0u8; 600]).unwrap();
    assert!(s.has_unflushed_writes());
    let err = s.put("b", &[0u8; 600]).unwrap_err().to_string();
    assert!(err.contains("(limits.max_unflushed_bytes)"), "{err}");
    assert!(s.has_unflushed_writes());
    assert!(s.flush().is_err());
    assert_eq!(s.get("a").unwrap(), None);
}

/// Group commit: the writes of held answers and of the next event share one
/// flush, but a segment that passes a limit is discarded alone.
#[test]
fn a_segment_past_the_write_limit_is_discarded_alone() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let limits = DoLimits {
        max_unflushed_writes: 10,
        ..DoLimits::default()
    };
    let ns = host_with(dir.path(), &clock, limits)
        .namespace("Counter", StorageBackend::KeyValue)
        .unwrap();
    let s = ns.storage(&ns.id_from_name("o")).unwrap();
    // Nothing open yet: no segment is needed.
    assert!(s.begin_segment().unwrap());
    assert!(!s.has_unflushed_writes());
    s.put("held-1", b"v").unwrap();
    s.put("held-2", b"v").unwrap();
    assert!(s.begin_segment().unwrap());
    // The limit counts this segment's writes: ten pass, the eleventh fails.
    for i in 0..10 {
        s.put(&format!("k{i:02}"), b"v").unwrap();
    }
    let err = s.put("k10", b"v").unwrap_err().to_string();
    assert!(err.contains("11 writes"), "{err}");
    assert!(s.flush().unwrap_err().to_string().contains("11 writes"));
    let keys: Vec<String> = s
        .list(&ListOptions::new())
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(keys, vec!["held-1".to_string(), "held-2".to_string()]);
    // They were committed, not merely visible: a fresh handle sees them.
    drop(s);
    let s = ns.storage(&ns.id_from_name("o")).unwrap();
    assert_eq!(s.list(&ListOptions::new()).unwrap().len(), 2);
}

#[test]
fn segments_of_one_unit_commit_together() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let ns = sqlite_ns(dir.path(), &clock);
    let id = ns.id_from_name("o");
    {
        let s = ns.storage(&id).unwrap();
        s.put("a", b"1").unwrap();
        assert!(s.begin_segment().unwrap());
        s.put("b", b"2").unwrap();
        assert!(s.begin_segment().unwrap());
        s.sql_exec("CREATE TABLE t (x); INSERT INTO t VALUES (1)", &[])
            .unwrap();
        s.flush().unwrap();
        // Unflushed segments vanish together.
        s.put("c", b"3").unwrap();
        assert!(s.begin_segment().unwrap());
        s.put("d", b"4").unwrap();
    }
    let s = ns.storage(&id).unwrap();
    let keys: Vec<String> = s
        .list(&ListOptions::new())
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(keys, vec!["a".to_string(), "b".to_string()]);
    let n = s
        .sql_exec("SELECT count(*) AS n FROM t", &[])
        .unwrap()
        .one()
        .unwrap();
    assert_eq!(n.get("n"), Some(&SqlValue::Integer(1)));
}

#[test]
fn past_half_a_limit_the_held_writes_commit_first() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let limits = DoLimits {
        max_unflushed_writes: 10,
        ..DoLimits::default()
    };
    let ns = host_with(dir.path(), &clock, limits)
        .namespace("Counter", StorageBackend::KeyValue)
        .unwrap();
    let s = ns.storage(&ns.id_from_name("o")).unwrap();
    for i in 0..5 {
        s.put(&format!("k{i}"), b"v").unwrap();
    }
    assert!(s.begin_segment().unwrap());
    s.put("k5", b"v").unwrap();
    assert!(!s.begin_segment().unwrap());
    s.flush().unwrap();
    assert!(s.begin_segment().unwrap());
}

const CHILD_DIR: &str = "HEARTH_DO_TEST_CHILD_DIR";
const CHILD_MODE: &str = "HEARTH_DO_TEST_CHILD_MODE";

fn child_storage(dir: &Path) -> hearth_do::DurableObjectStorage {
    let host = DurableObjectHost::open(
        &hearth_core::DataDir::new(dir),
        SystemClock::shared(),
        DoLimits::default(),
    )
    .unwrap();
    let ns = host.namespace("Room", StorageBackend::Sqlite).unwrap();
    ns.storage(&ns.id_from_name("crash")).unwrap()
}

/// Not a test of its own: when the parent sets the variables, writes
/// keys, flushing each before reporting it acked (the output gate); the
/// 81st is written, reported unflushed, and never flushed.
#[test]
fn child_writer() {
    let (Ok(dir), Ok(mode)) = (std::env::var(CHILD_DIR), std::env::var(CHILD_MODE)) else {
        return;
    };
    let s = child_storage(Path::new(&dir));
    match mode.as_str() {
        "writes" => {
            for i in 0u64.. {
                let key = format!("k{i:08}");
                s.put(&key, key.as_bytes()).unwrap();
                s.sql_exec("INSERT INTO log (k) VALUES (?)", &[key.clone().into()])
                    .unwrap();
                if i == 80 {
                    // Written, never flushed: the response it would gate is
                    // never released. Wait here to be killed.
                    println!("unflushed {key}");
                    loop {
                        std::thread::park();
                    }
                }
                s.flush().unwrap();
                println!("acked {key}");
            }
        }
        "id" => {
            let host = DurableObjectHost::open(
                &hearth_core::DataDir::new(Path::new(&dir)),
                SystemClock::shared(),
                DoLimits::default(),
            )
            .unwrap();
            let ns = host.namespace("Room", StorageBackend::Sqlite).unwrap();
            println!("id {}", ns.id_from_name("shared-name"));
        }
        _ => {}
    }
}

fn spawn_child(dir: &Path, mode: &str) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_writer", "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR, dir)
        .env(CHILD_MODE, mode)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn flushed_writes_survive_sigkill_and_unflushed_ones_do_not() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = child_storage(dir.path());
        s.sql_exec("CREATE TABLE log (k TEXT)", &[]).unwrap();
        s.flush().unwrap();
    }
    let mut child = spawn_child(dir.path(), "writes");
    let stdout = child.stdout.take().unwrap();
    let mut acked = Vec::new();
    let mut last_unflushed = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        // libtest may print "test child_writer ... " ahead of the first line.
        if let Some((_, k)) = line.split_once("acked ") {
            acked.push(k.to_owned());
        } else if let Some((_, k)) = line.split_once("unflushed ") {
            last_unflushed = Some(k.to_owned());
            child.kill().unwrap();
            break;
        }
    }
    child.wait().unwrap();
    let s = child_storage(dir.path());
    for k in &acked {
        assert_eq!(s.get(k).unwrap(), Some(k.as_bytes().to_vec()), "{k}");
        let n = s
            .sql_exec(
                "SELECT count(*) AS n FROM log WHERE k = ?",
                &[k.clone().into()],
            )
            .unwrap()
            .one()
            .unwrap();
        assert_eq!(n.get("n"), Some(&SqlValue::Integer(1)), "{k}");
    }
    assert_eq!(acked.len(), 80);
    let lost = last_unflushed.unwrap();
    assert_eq!(s.get(&lost).unwrap(), None, "{lost} was never flushed");
    let n = s
        .sql_exec("SELECT count(*) AS n FROM log WHERE k = ?", &[lost.into()])
        .unwrap()
        .one()
        .unwrap();
    assert_eq!(n.get("n"), Some(&SqlValue::Integer(0)));
}

#[test]
fn id_from_name_is_the_same_in_another_process() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let here = sqlite_ns(dir.path(), &clock).id_from_name("shared-name");
    let out = spawn_child(dir.path(), "id").wait_with_output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let line = text
        .lines()
        .find_map(|l| l.split_once("id ").map(|(_, id)| id))
        .unwrap();
    assert_eq!(line, here.to_string());
}

#[test]
fn reads_leave_nothing_to_flush() {
    let dir = tempfile::tempdir().unwrap();
    let ns = sqlite_ns(dir.path(), &ManualClock::new(T0));
    let s = ns.storage(&ns.id_from_name("o")).unwrap();
    s.sql_exec("SELECT 1", &[]).unwrap();
    s.get("k").unwrap();
    assert!(!s.has_unflushed_writes());
    s.sql_exec("CREATE TABLE t (x)", &[]).unwrap();
    assert!(s.has_unflushed_writes());
}
