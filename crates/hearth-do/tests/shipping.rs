//! Cluster mode with a data directory per node: commits are shipped to a
//! change log under the node's lease before they are acknowledged, and a
//! node opening an object rebuilds it from the log. The log here is an
//! in-memory double with the contract's fencing (PostgreSQL's is tested
//! in hearth-cluster).

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};

use common::*;
use hearth_core::{DataDir, ManualClock};
use hearth_do::{
    ChangeLog, DoError, DoLimits, DurableObjectHost, DurableObjectNamespace, FenceBook, Lease,
    LogError, SnapshotHead, SqlValue, StorageBackend,
};

type Key = (String, String);

#[derive(Debug, Default)]
struct MemLog {
    /// The lease placement handed out: (node, token).
    leases: Mutex<HashMap<Key, (String, i64)>>,
    changes: Mutex<BTreeMap<(Key, i64), Vec<u8>>>,
    heads: Mutex<HashMap<Key, SnapshotHead>>,
    chunks: Mutex<HashMap<(Key, i64, u32), Vec<u8>>>,
    snapshot_after: u64,
    /// Appends fail as a lost connection would.
    down: Mutex<bool>,
    appends: Mutex<u64>,
    snapshots: Mutex<u64>,
}

impl MemLog {
    fn new(snapshot_after: u64) -> Arc<Self> {
        Arc::new(Self {
            snapshot_after,
            ..Default::default()
        })
    }
    fn lease(&self, ns: &str, id: &str, node: &str, token: i64) {
        self.leases
            .lock()
            .unwrap()
            .insert((ns.into(), id.into()), (node.into(), token));
    }
    fn holds(&self, l: &Lease<'_>) -> bool {
        self.leases
            .lock()
            .unwrap()
            .get(&(l.namespace.to_owned(), l.id.to_owned()))
            .is_some_and(|(n, t)| n == l.node && *t == l.token)
    }
    fn backlog(&self) -> usize {
        self.changes.lock().unwrap().len()
    }
}

impl ChangeLog for MemLog {
    fn snapshot_head(&self, ns: &str, id: &str) -> Result<Option<SnapshotHead>, LogError> {
        if *self.down.lock().unwrap() {
            return Err(LogError::Backend("connection refused".into()));
        }
        Ok(self
            .heads
            .lock()
            .unwrap()
            .get(&(ns.into(), id.into()))
            .copied())
    }
    fn snapshot_chunk(&self, ns: &str, id: &str, seq: i64, c: u32) -> Result<Vec<u8>, LogError> {
        self.chunks
            .lock()
            .unwrap()
            .get(&((ns.into(), id.into()), seq, c))
            .cloned()
            .ok_or_else(|| LogError::Backend("missing chunk".into()))
    }
    fn changes(
        &self,
        ns: &str,
        id: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<(i64, Vec<u8>)>, LogError> {
        let key: Key = (ns.into(), id.into());
        Ok(self
            .changes
            .lock()
            .unwrap()
            .range((key.clone(), after + 1)..=(key, i64::MAX))
            .take(limit as usize)
            .map(|((_, s), v)| (*s, v.clone()))
            .collect())
    }
    fn append(
        &self,
        lease: &Lease<'_>,
        seq: i64,
        change: Vec<u8>,
        _alarm: Option<Option<i64>>,
    ) -> Result<(), LogError> {
        if *self.down.lock().unwrap() {
            return Err(LogError::Backend("connection refused".into()));
        }
        if !self.holds(lease) {
            return Err(LogError::Fenced);
        }
        let key = ((lease.namespace.to_owned(), lease.id.to_owned()), seq);
        let mut changes = self.changes.lock().unwrap();
        if changes.contains_key(&key) {
            return Err(LogError::Fenced);
        }
        changes.insert(key, change);
        *self.appends.lock().unwrap() += 1;
        Ok(())
    }
    fn put_snapshot_chunk(
        &self,
        ns: &str,
        id: &str,
        seq: i64,
        c: u32,
        data: Vec<u8>,
    ) -> Result<(), LogError> {
        self.chunks
            .lock()
            .unwrap()
            .insert(((ns.into(), id.into()), seq, c), data);
        Ok(())
    }
    fn finish_snapshot(&self, lease: &Lease<'_>, seq: i64, chunks: u32) -> Result<(), LogError> {
        if !self.holds(lease) {
            return Err(LogError::Fenced);
        }
        let key: Key = (lease.namespace.into(), lease.id.into());
        self.heads
            .lock()
            .unwrap()
            .insert(key.clone(), SnapshotHead { seq, chunks });
        self.changes
            .lock()
            .unwrap()
            .retain(|(k, s), _| *k != key || *s > seq);
        *self.snapshots.lock().unwrap() += 1;
        Ok(())
    }
    fn snapshot_after_bytes(&self) -> u64 {
        self.snapshot_after
    }
}

/// A node: its own data directory, the cluster's id secret, the shared log.
fn node(
    dir: &Path,
    clock: &ManualClock,
    book: &Arc<FenceBook>,
    log: &Arc<MemLog>,
) -> DurableObjectNamespace {
    DurableObjectHost::open_with_secret(
        &DataDir::new(dir),
        clock.shared(),
        DoLimits::default(),
        [7u8; 32],
    )
    .unwrap()
    .with_fences(book.clone())
    .with_change_log(log.clone())
    .namespace("Room", StorageBackend::Sqlite)
    .unwrap()
}

fn count(s: &hearth_do::DurableObjectStorage) -> i64 {
    match s
        .sql_exec("SELECT count(*) AS n FROM hits", &[])
        .unwrap()
        .one()
        .unwrap()
        .get("n")
    {
        Some(SqlValue::Integer(n)) => *n,
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_new_owner_with_its_own_directory_sees_every_acknowledged_write() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let clock = ManualClock::new(T0);
    // Small enough that snapshots are taken along the way.
    let log = MemLog::new(16 * 1024);
    let (a, b) = (Arc::new(FenceBook::new("a")), Arc::new(FenceBook::new("b")));
    let ns_a = node(da.path(), &clock, &a, &log);
    let id = ns_a.id_from_name("room");
    let hex = id.to_string();
    log.lease("Room", &hex, "a", 1);
    a.grant("Room", &hex, 1);
    let on_a = ns_a.storage(&id).unwrap();
    on_a.sql_exec("CREATE TABLE hits (n INTEGER PRIMARY KEY, body TEXT)", &[])
        .unwrap();
    on_a.flush().unwrap();
    for i in 0..200i64 {
        on_a.sql_exec(
            "INSERT INTO hits (n, body) VALUES (?, ?)",
            &[SqlValue::Integer(i), SqlValue::Text("x".repeat(300))],
        )
        .unwrap();
        on_a.put("last", i.to_string().as_bytes()).unwrap();
        on_a.flush().unwrap();
    }
    // Written but never flushed: not acknowledged, so not owed to anyone.
    on_a.put("unacknowledged", b"1").unwrap();
    assert!(*log.snapshots.lock().unwrap() >= 2, "snapshots were taken");
    assert!(
        log.backlog() < 200,
        "a snapshot dropped the changes it holds"
    );

    // a stops answering; placement moves the lease to b, whose directory
    // has never seen the object.
    log.lease("Room", &hex, "b", 2);
    b.grant("Room", &hex, 2);
    let ns_b = node(db.path(), &clock, &b, &log);
    let on_b = ns_b.storage(&ns_b.id_from_string(&hex).unwrap()).unwrap();
    assert_eq!(count(&on_b), 200);
    assert_eq!(on_b.get("last").unwrap().as_deref(), Some(&b"199"[..]));
    assert_eq!(on_b.get("unacknowledged").unwrap(), None);

    // a wakes up and commits: the log refuses it under the old lease.
    on_a.put("stale", b"1").unwrap();
    let e = on_a.flush().unwrap_err();
    assert!(matches!(e, DoError::FencedInLog { token: 1 }), "{e}");
    assert!(a.take_revoked("Room", &hex));

    on_b.put("last", b"200").unwrap();
    on_b.flush().unwrap();
    drop(on_b);
    // Reopened on b: rebuilt from the log again, with b's write.
    let again = ns_b.storage(&ns_b.id_from_string(&hex).unwrap()).unwrap();
    assert_eq!(again.get("last").unwrap().as_deref(), Some(&b"200"[..]));
    assert_eq!(again.get("stale").unwrap(), None);
    assert_eq!(count(&again), 200);
}

#[test]
fn a_commit_the_log_did_not_take_is_not_acknowledged_and_not_kept() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let log = MemLog::new(1 << 20);
    let a = Arc::new(FenceBook::new("a"));
    let ns = node(dir.path(), &clock, &a, &log);
    let id = ns.id_from_name("room");
    log.lease("Room", &id.to_string(), "a", 1);
    a.grant("Room", &id.to_string(), 1);
    let s = ns.storage(&id).unwrap();
    s.put("n", b"1").unwrap();
    s.flush().unwrap();

    *log.down.lock().unwrap() = true;
    s.put("n", b"2").unwrap();
    let e = s.flush().unwrap_err();
    assert!(matches!(e, DoError::Shipping { .. }), "{e}");
    // While the log is down the object cannot be rebuilt: it refuses
    // rather than serve the write nobody acknowledged.
    let e = s.get("n").unwrap_err();
    assert!(matches!(e, DoError::Restore { .. }), "{e}");
    // Once the log answers, it serves what the log holds.
    *log.down.lock().unwrap() = false;
    assert_eq!(s.get("n").unwrap().as_deref(), Some(&b"1"[..]));
    s.put("n", b"3").unwrap();
    s.flush().unwrap();
    assert_eq!(s.get("n").unwrap().as_deref(), Some(&b"3"[..]));
}

#[test]
fn an_object_that_moves_away_and_back_is_rebuilt_not_served_stale() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let clock = ManualClock::new(T0);
    let log = MemLog::new(1 << 20);
    let (a, b) = (Arc::new(FenceBook::new("a")), Arc::new(FenceBook::new("b")));
    let ns_a = node(da.path(), &clock, &a, &log);
    let id = ns_a.id_from_name("room");
    let hex = id.to_string();
    log.lease("Room", &hex, "a", 1);
    a.grant("Room", &hex, 1);
    let on_a = ns_a.storage(&id).unwrap();
    on_a.put("n", b"1").unwrap();
    on_a.flush().unwrap();
    // A write pending on a when the object leaves.
    on_a.put("pending", b"x").unwrap();

    log.lease("Room", &hex, "b", 2);
    b.grant("Room", &hex, 2);
    let ns_b = node(db.path(), &clock, &b, &log);
    let on_b = ns_b.storage(&ns_b.id_from_string(&hex).unwrap()).unwrap();
    on_b.put("n", b"2").unwrap();
    on_b.flush().unwrap();

    // Back on a with a newer token: its open instance is rebuilt from the
    // log, and the unit pending across the move is discarded.
    log.lease("Room", &hex, "a", 3);
    a.grant("Room", &hex, 3);
    let e = on_a.get("n").unwrap_err();
    assert!(matches!(e, DoError::LeaseMoved), "{e}");
    assert_eq!(on_a.get("n").unwrap().as_deref(), Some(&b"2"[..]));
    assert_eq!(on_a.get("pending").unwrap(), None);
    on_a.put("n", b"3").unwrap();
    on_a.flush().unwrap();
    let appended = *log.appends.lock().unwrap();
    assert!(appended >= 3, "{appended}");
}

#[test]
fn an_object_is_not_opened_without_a_lease() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let log = MemLog::new(1 << 20);
    let a = Arc::new(FenceBook::new("a"));
    let ns = node(dir.path(), &clock, &a, &log);
    let id = ns.id_from_name("room");
    let e = ns.storage(&id).unwrap_err();
    assert!(matches!(e, DoError::NotLeased), "{e}");
    // Granted locally but not the log's lease: the first durable write
    // (the new object's snapshot) is refused.
    a.grant("Room", &id.to_string(), 5);
    let e = ns.storage(&id).unwrap_err();
    assert!(matches!(e, DoError::FencedInLog { token: 5 }), "{e}");
}

#[test]
fn a_checkpoint_by_another_connection_does_not_hide_a_change() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let clock = ManualClock::new(T0);
    let log = MemLog::new(1 << 30);
    let (a, b) = (Arc::new(FenceBook::new("a")), Arc::new(FenceBook::new("b")));
    let ns_a = node(da.path(), &clock, &a, &log);
    let id = ns_a.id_from_name("room");
    let hex = id.to_string();
    log.lease("Room", &hex, "a", 1);
    a.grant("Room", &hex, 1);
    let on_a = ns_a.storage(&id).unwrap();
    for i in 0..5 {
        on_a.put("n", i.to_string().as_bytes()).unwrap();
        on_a.flush().unwrap();
    }
    // An operator's tool checkpoints the file: SQLite then starts the WAL
    // over at the next write, with fewer frames than were shipped.
    let other = rusqlite::Connection::open(on_a.path()).unwrap();
    other
        .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
        .unwrap();
    on_a.put("n", b"after").unwrap();
    on_a.flush().unwrap();

    log.lease("Room", &hex, "b", 2);
    b.grant("Room", &hex, 2);
    let ns_b = node(db.path(), &clock, &b, &log);
    let on_b = ns_b.storage(&ns_b.id_from_string(&hex).unwrap()).unwrap();
    assert_eq!(on_b.get("n").unwrap().as_deref(), Some(&b"after"[..]));
}

#[test]
fn a_lingering_older_copy_cannot_acknowledge_a_write() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let log = MemLog::new(1 << 30);
    let a = Arc::new(FenceBook::new("a"));
    let ns = node(dir.path(), &clock, &a, &log);
    let id = ns.id_from_name("room");
    log.lease("Room", &id.to_string(), "a", 1);
    a.grant("Room", &id.to_string(), 1);
    let old = ns.storage(&id).unwrap();
    old.put("n", b"1").unwrap();
    old.flush().unwrap();
    // The instance is replaced while the old one is still being dropped.
    let new = ns.storage(&id).unwrap();
    assert_ne!(old.path(), new.path(), "each copy has files of its own");
    old.put("n", b"stale").unwrap();
    let e = old.flush().unwrap_err();
    assert!(matches!(e, DoError::Shipping { .. }), "{e}");
    new.put("n", b"2").unwrap();
    new.flush().unwrap();
    drop(old);
    drop(new);
    let again = ns.storage(&id).unwrap();
    assert_eq!(again.get("n").unwrap().as_deref(), Some(&b"2"[..]));
}
