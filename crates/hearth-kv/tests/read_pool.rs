//! Reads run on their own connections: they must still see every write
//! that returned, on any thread, and must not wait for a write in progress.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use hearth_kv::{GetOptions, KvValue, ListOptions, PutOptions};

fn text(kv: &hearth_kv::KvNamespace, key: &str) -> Option<String> {
    match kv.get(key, &GetOptions::text()).unwrap() {
        Some(KvValue::Text(s)) => Some(s),
        None => None,
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_get_on_the_same_thread_sees_the_put_that_just_returned() {
    let f = common::fixture();
    for i in 0..200 {
        let value = format!("v{i}");
        f.kv.put("k", &value, &PutOptions::new()).unwrap();
        assert_eq!(text(&f.kv, "k").as_deref(), Some(value.as_str()));
        f.kv.delete("k").unwrap();
        assert_eq!(text(&f.kv, "k"), None, "after delete {i}");
    }
}

#[test]
fn a_get_on_another_thread_sees_a_put_acknowledged_before_it_asked() {
    let f = common::fixture();
    let kv = Arc::new(f.kv);
    let (tx, rx) = mpsc::channel::<(String, String)>();
    // One writer, four readers: each acknowledged put is handed to a reader,
    // which must find exactly that value.
    let rx = Arc::new(std::sync::Mutex::new(rx));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let kv = kv.clone();
            let rx = rx.clone();
            thread::spawn(move || {
                let mut checked = 0;
                loop {
                    let next = rx.lock().unwrap().recv();
                    let Ok((key, value)) = next else {
                        return checked;
                    };
                    assert_eq!(text(&kv, &key).as_deref(), Some(value.as_str()), "{key}");
                    let listed = kv.list(&ListOptions::new().prefix(key.clone())).unwrap();
                    let names: Vec<_> = listed.keys.iter().map(|k| k.name.as_str()).collect();
                    assert_eq!(names, [key.as_str()]);
                    checked += 1;
                }
            })
        })
        .collect();
    for i in 0..400 {
        let key = format!("key-{:02}", i % 37);
        let value = format!("value-{i}");
        kv.put(&key, &value, &PutOptions::new()).unwrap();
        tx.send((key, value)).unwrap();
    }
    drop(tx);
    let checked: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(checked, 400);
}

#[test]
fn threads_writing_and_reading_their_own_keys_always_read_their_last_write() {
    let f = common::fixture();
    let kv = Arc::new(f.kv);
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let kv = kv.clone();
            thread::spawn(move || {
                for i in 0..100 {
                    let key = format!("t{t}");
                    let value = format!("{t}:{i}");
                    kv.put(&key, &value, &PutOptions::new()).unwrap();
                    assert_eq!(text(&kv, &key).as_deref(), Some(value.as_str()));
                    let bulk = kv.get_bulk(&[key.as_str()], &GetOptions::text()).unwrap();
                    assert_eq!(
                        bulk.get(&key),
                        Some(&Some(KvValue::Text(value.clone()))),
                        "bulk"
                    );
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn gets_do_not_wait_for_a_write_in_progress() {
    let f = common::fixture();
    f.kv.put("old", "committed", &PutOptions::new()).unwrap();
    let kv = Arc::new(f.reopen());

    // Another process holds the write lock, so this namespace's put waits
    // inside SQLite's busy timeout while holding the namespace's writer.
    let blocker = rusqlite::Connection::open(f.path()).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    blocker
        .execute(
            "INSERT INTO kv_entries (key, value) VALUES ('pending', x'00')",
            [],
        )
        .unwrap();

    let put_done = Arc::new(AtomicBool::new(false));
    let writer = {
        let kv = kv.clone();
        let put_done = put_done.clone();
        thread::spawn(move || {
            kv.put("new", "from writer", &PutOptions::new()).unwrap();
            put_done.store(true, Ordering::SeqCst);
        })
    };
    // Scheduling only: give the put time to take the writer and start
    // waiting. If it has not, the gets below prove less but cannot fail.
    thread::sleep(Duration::from_millis(200));

    for _ in 0..50 {
        assert_eq!(text(&kv, "old").as_deref(), Some("committed"));
        assert_eq!(text(&kv, "pending"), None, "uncommitted rows stay unseen");
    }
    assert_eq!(kv.list(&ListOptions::new()).unwrap().keys.len(), 1);
    assert!(
        !put_done.load(Ordering::SeqCst),
        "the put finished while the other process held the lock"
    );

    blocker.execute_batch("COMMIT").unwrap();
    writer.join().unwrap();
    assert_eq!(text(&kv, "new").as_deref(), Some("from writer"));
    assert!(text(&kv, "pending").is_some());
}
