//! Real separate processes: the test binary re-runs itself as a child that
//! writes to the same namespace file, as the CLI would beside a server.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use hearth_core::SystemClock;
use hearth_kv::{KvLimits, KvNamespace, ListOptions, PutOptions};

const CHILD_PATH: &str = "HEARTH_KV_TEST_CHILD_PATH";
const CHILD_PREFIX: &str = "HEARTH_KV_TEST_CHILD_PREFIX";
const CHILD_COUNT: &str = "HEARTH_KV_TEST_CHILD_COUNT";

fn open(path: &Path) -> KvNamespace {
    KvNamespace::open(path, SystemClock::shared(), KvLimits::default()).unwrap()
}

/// Not a test of its own: when the parent sets the variables, writes
/// `count` keys and reports each one on stdout after `put` returned.
#[test]
fn child_writer() {
    let (Ok(path), Ok(prefix), Ok(count)) = (
        std::env::var(CHILD_PATH),
        std::env::var(CHILD_PREFIX),
        std::env::var(CHILD_COUNT),
    ) else {
        return;
    };
    let kv = open(Path::new(&path));
    for i in 0..count.parse::<usize>().unwrap() {
        let key = format!("{prefix}{i:05}");
        kv.put(&key, key.as_bytes(), &PutOptions::new()).unwrap();
        println!("acked {key}");
    }
}

fn spawn_child(path: &Path, prefix: &str, count: usize) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_writer", "--nocapture", "--test-threads=1"])
        .env(CHILD_PATH, path)
        .env(CHILD_PREFIX, prefix)
        .env(CHILD_COUNT, count.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn another_process_writes_while_this_one_does() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ns.sqlite");
    let kv = open(&path);
    let mut child = spawn_child(&path, "child-", 200);
    for i in 0..200 {
        kv.put(&format!("parent-{i:05}"), "v", &PutOptions::new())
            .unwrap();
    }
    assert!(child.wait().unwrap().success());
    let mut total = 0;
    let mut opts = ListOptions::new();
    loop {
        let page = kv.list(&opts).unwrap();
        total += page.keys.len();
        match page.cursor {
            Some(c) => opts.cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(total, 400);
}

#[test]
fn every_acknowledged_put_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ns.sqlite");
    // Create the schema first so the child starts writing at once.
    drop(open(&path));
    let mut child = spawn_child(&path, "k", 100_000);
    let stdout = child.stdout.take().unwrap();
    let mut acked = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(key) = line.strip_prefix("acked ") {
            acked.push(key.to_owned());
            if acked.len() == 50 {
                child.kill().unwrap();
                break;
            }
        }
    }
    child.wait().unwrap();
    assert_eq!(acked.len(), 50);
    let kv = open(&path);
    for key in &acked {
        let e = kv.get_entry(key, None).unwrap();
        assert_eq!(e.map(|e| e.value), Some(key.as_bytes().to_vec()), "{key}");
    }
}
