//! Acknowledged means durable: a child process writes through the KV, D1 and
//! R2 contracts and reports each write that returned Ok; the test SIGKILLs it
//! mid-stream, reopens the data directory and finds every acknowledged write.
//! Three rounds on the same directory also cover opening after a crash.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use hearth_core::{DataDir, SystemClock};
use hearth_d1::{D1Database, D1Value};
use hearth_kv::{KvLimits, KvNamespace, PutOptions};
use hearth_r2::{R2Bucket, R2GetOptions, R2Limits, R2PutOptions};

const CHILD_ENV: &str = "HEARTH_KILL9_CHILD_DIR";
const ROUND_ENV: &str = "HEARTH_KILL9_ROUND";

fn open_all(dir: &DataDir) -> (KvNamespace, D1Database, R2Bucket) {
    let kv = KvNamespace::open(
        &dir.kv_namespace("crash"),
        SystemClock::shared(),
        KvLimits::default(),
    )
    .unwrap();
    let d1 = D1Database::open(dir.d1_database("crash")).unwrap();
    d1.exec("CREATE TABLE IF NOT EXISTS t (id TEXT PRIMARY KEY, n INTEGER)")
        .unwrap();
    let r2 = R2Bucket::open(
        dir.r2_bucket("crash"),
        SystemClock::shared(),
        R2Limits::default(),
    )
    .unwrap();
    (kv, d1, r2)
}

/// The body R2 object `i` of round `round` must have: large enough that a
/// kill lands mid-write often.
fn blob(round: u32, i: u64) -> Vec<u8> {
    let seed = format!("{round}-{i}-");
    seed.bytes()
        .cycle()
        .take(96 * 1024 + (i as usize % 4096))
        .collect()
}

/// Runs only when re-executed by `acknowledged_writes_survive_sigkill`.
#[test]
fn kill9_child_writer() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let round: u32 = std::env::var(ROUND_ENV).unwrap().parse().unwrap();
    let (kv, d1, r2) = open_all(&DataDir::new(dir));
    for i in 0u64.. {
        let key = format!("r{round}-{i}");
        match i % 3 {
            0 => {
                kv.put(&key, format!("value-{key}"), &PutOptions::new())
                    .unwrap();
                println!("ack kv {key}");
            }
            1 => {
                d1.prepare("INSERT INTO t (id, n) VALUES (?1, ?2)")
                    .bind([D1Value::Text(key.clone()), D1Value::Integer(i as i64)])
                    .run()
                    .unwrap();
                println!("ack d1 {key}");
            }
            _ => {
                r2.put(&key, &blob(round, i)[..], &R2PutOptions::default())
                    .unwrap();
                println!("ack r2 {key}");
            }
        }
    }
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut acked: Vec<(String, String)> = Vec::new();
    for round in 0..3u32 {
        acked.extend(run_child_until_killed(
            tmp.path(),
            round,
            60 + 40 * round as usize,
        ));
        verify(&DataDir::new(tmp.path()), &acked);
    }
}

/// Starts a writer, lets it acknowledge at least `min_acks` writes, SIGKILLs
/// it, and returns what it acknowledged.
fn run_child_until_killed(dir: &Path, round: u32, min_acks: usize) -> Vec<(String, String)> {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args([
            "--exact",
            "kill9_child_writer",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir)
        .env(ROUND_ENV, round.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut acks = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("ack ") {
            let (kind, key) = rest.split_once(' ').unwrap();
            acks.push((kind.to_string(), key.to_string()));
            if acks.len() >= min_acks {
                break;
            }
        }
    }
    // Child::kill sends SIGKILL on Unix: no destructors, no flush.
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(acks.len() >= min_acks, "child stopped early: {acks:?}");
    acks
}

fn verify(dir: &DataDir, acked: &[(String, String)]) {
    let (kv, d1, r2) = open_all(dir);
    for (kind, key) in acked {
        match kind.as_str() {
            "kv" => {
                let entry = kv.get_entry(key, None).unwrap();
                assert_eq!(
                    entry.map(|e| e.text()),
                    Some(format!("value-{key}")),
                    "KV {key}"
                );
            }
            "d1" => {
                let row = d1
                    .prepare("SELECT n FROM t WHERE id = ?1")
                    .bind([D1Value::Text(key.clone())])
                    .first()
                    .unwrap();
                assert!(row.is_some(), "D1 row {key} lost");
            }
            "r2" => {
                let (round, i) = key[1..].split_once('-').unwrap();
                let expected = blob(round.parse().unwrap(), i.parse().unwrap());
                let got = r2
                    .get(key, &R2GetOptions::default())
                    .unwrap()
                    .and_then(|g| g.into_body())
                    .unwrap_or_else(|| panic!("R2 object {key} lost"));
                let mut body = Vec::new();
                std::io::Read::read_to_end(&mut { got.body }, &mut body).unwrap();
                assert_eq!(body.len(), expected.len(), "R2 {key} size");
                assert!(body == expected, "R2 {key} content");
            }
            other => panic!("unknown kind {other}"),
        }
    }
    // No half-written object is ever listed: every listed object reads whole.
    let listed = r2.list(&Default::default()).unwrap();
    for object in listed.objects {
        let got = r2
            .get(&object.key, &R2GetOptions::default())
            .unwrap()
            .and_then(|g| g.into_body())
            .unwrap();
        let mut body = Vec::new();
        std::io::Read::read_to_end(&mut { got.body }, &mut body).unwrap();
        assert_eq!(body.len() as u64, object.size, "{}", object.key);
    }
}
