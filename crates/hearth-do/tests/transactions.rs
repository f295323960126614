mod common;

use common::*;
use hearth_core::ManualClock;
use hearth_do::{DoError, DurableObjectStorage, ListOptions, SqlValue};

fn object(dir: &std::path::Path) -> DurableObjectStorage {
    let ns = sqlite_ns(dir, &ManualClock::new(T0));
    let s = ns.storage(&ns.id_from_name("o")).unwrap();
    s.sql_exec("CREATE TABLE t (id INTEGER PRIMARY KEY)", &[])
        .unwrap();
    s
}

fn count(s: &DurableObjectStorage) -> i64 {
    match s
        .sql_exec("SELECT count(*) FROM t", &[])
        .unwrap()
        .raw()
        .next()
    {
        Some(v) => match v[0] {
            SqlValue::Integer(n) => n,
            _ => panic!("not an integer"),
        },
        None => panic!("no row"),
    }
}

#[derive(Debug)]
#[allow(dead_code)]
enum AppError {
    Storage(DoError),
    Thrown,
}

impl From<DoError> for AppError {
    fn from(e: DoError) -> Self {
        AppError::Storage(e)
    }
}

#[test]
fn a_committed_transaction_keeps_every_write() {
    let dir = tempfile::tempdir().unwrap();
    let s = object(dir.path());
    let out = s
        .transaction_sync(|s| -> Result<i32, AppError> {
            s.put("k", b"v")?;
            s.sql_exec("INSERT INTO t VALUES (1)", &[])?;
            Ok(7)
        })
        .unwrap();
    assert_eq!(out, 7);
    assert_eq!(s.get("k").unwrap(), Some(b"v".to_vec()));
    assert_eq!(count(&s), 1);
}

#[test]
fn an_error_rolls_back_kv_sql_and_alarm_writes() {
    let dir = tempfile::tempdir().unwrap();
    let s = object(dir.path());
    s.put("kept", b"1").unwrap();
    let r = s.transaction_sync(|s| -> Result<(), AppError> {
        s.put("k", b"v")?;
        s.delete("kept")?;
        s.sql_exec("INSERT INTO t VALUES (1)", &[])?;
        s.set_alarm((T0 + 1000) as i64)?;
        Err(AppError::Thrown)
    });
    assert!(matches!(r, Err(AppError::Thrown)));
    assert_eq!(s.get("k").unwrap(), None);
    assert_eq!(s.get("kept").unwrap(), Some(b"1".to_vec()));
    assert_eq!(count(&s), 0);
    assert_eq!(s.get_alarm().unwrap(), None);
    // Writes before the transaction are still there to be flushed.
    s.flush().unwrap();
}

#[test]
fn a_failing_storage_call_inside_rolls_back_too() {
    let dir = tempfile::tempdir().unwrap();
    let s = object(dir.path());
    let r = s.transaction_sync(|s| -> Result<(), DoError> {
        s.sql_exec("INSERT INTO t VALUES (1)", &[])?;
        s.sql_exec("INSERT INTO t VALUES (1)", &[])?;
        Ok(())
    });
    assert_eq!(
        r.unwrap_err().to_string(),
        "UNIQUE constraint failed: t.id: SQLITE_CONSTRAINT"
    );
    assert_eq!(count(&s), 0);
}

#[test]
fn nested_transactions_roll_back_independently() {
    let dir = tempfile::tempdir().unwrap();
    let s = object(dir.path());
    s.transaction_sync(|s| -> Result<(), AppError> {
        s.put("outer", b"1")?;
        let inner = s.transaction_sync(|s| -> Result<(), AppError> {
            s.put("inner", b"2")?;
            Err(AppError::Thrown)
        });
        assert!(inner.is_err());
        s.transaction_sync(|s| -> Result<(), AppError> {
            s.put("inner2", b"3")?;
            Ok(())
        })?;
        Ok(())
    })
    .unwrap();
    let keys: Vec<String> = s
        .list(&ListOptions::new())
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(keys, ["inner2", "outer"]);
}

#[test]
fn delete_all_is_refused_inside_a_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let s = object(dir.path());
    let r = s.transaction(|s| -> Result<(), DoError> { s.delete_all(true) });
    assert_eq!(
        r.unwrap_err().to_string(),
        "Cannot call deleteAll() within a transaction"
    );
}

#[test]
fn transaction_sync_needs_a_sqlite_backed_object() {
    let dir = tempfile::tempdir().unwrap();
    let ns = kv_ns(dir.path(), &ManualClock::new(T0));
    let s = ns.storage(&ns.id_from_name("o")).unwrap();
    let r = s.transaction_sync(|_| -> Result<(), DoError> { Ok(()) });
    assert_eq!(
        r.unwrap_err().to_string(),
        "Durable Object is not backed by SQL."
    );
    // The asynchronous-style transaction works on either backend.
    let r = s.transaction(|s| -> Result<(), AppError> {
        s.put("k", b"v")?;
        Err(AppError::Thrown)
    });
    assert!(r.is_err());
    assert_eq!(s.get("k").unwrap(), None);
}

#[test]
fn flush_inside_a_transaction_waits_for_its_end() {
    let dir = tempfile::tempdir().unwrap();
    let s = object(dir.path());
    s.transaction(|s| -> Result<(), DoError> {
        s.put("k", b"v")?;
        s.flush()?;
        assert!(s.has_unflushed_writes());
        Ok(())
    })
    .unwrap();
    assert!(!s.has_unflushed_writes());
}
