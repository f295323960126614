//! `hearth serve` never starts over silently on damaged state: a store file
//! that was emptied or corrupted, or a lost Durable Object id secret while
//! objects exist, stops start-up with an error naming the file and what to
//! do, rather than serving an empty store with health "ok".

mod web_support;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use web_support::Server;

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../examples/{name}/wrangler.toml"))
}

/// Runs `hearth serve` and expects it to exit with an error within a
/// bounded time; returns its stderr.
fn refused(config: &Path, data_dir: &Path) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .arg("serve")
        .arg(config)
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("hearth serve started on damaged state instead of refusing");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(!status.success(), "exit {status}; stderr: {stderr}");
    stderr
}

/// Serves `config` once on `data_dir` (so its stores exist and hold data
/// written by `write`), then stops it.
fn run_once(config: &Path, data_dir: &Path, write: impl FnOnce(&Server)) {
    let server = Server::start("serve", config, data_dir);
    write(&server);
    server.kill9();
}

/// Empties a SQLite file to zero bytes, as a bad copy or a full disk can.
/// Its write-ahead log is left as it was.
fn truncate(file: &Path) {
    std::fs::File::create(file).unwrap();
}

#[test]
fn an_emptied_queues_database_stops_start_up() {
    let data = tempfile::tempdir().unwrap();
    let config = example("queues");
    run_once(&config, data.path(), |s| {
        let r = s.request("POST", "/exports", &[], b"kept until pulled");
        assert!(r.status < 500, "{}", r.text());
    });
    let file = data.path().join("queues.sqlite");
    assert!(std::fs::metadata(&file).unwrap().len() > 0);
    truncate(&file);
    let err = refused(&config, data.path());
    assert!(err.contains("queues.sqlite"), "{err}");
    assert!(err.contains("is empty") && err.contains("backup"), "{err}");
    // Nothing was written over the evidence.
    assert_eq!(std::fs::metadata(&file).unwrap().len(), 0);
}

#[test]
fn an_emptied_d1_database_stops_start_up() {
    let data = tempfile::tempdir().unwrap();
    let config = example("bindings");
    run_once(&config, data.path(), |_| {});
    let d1 = data.path().join("d1");
    let file = std::fs::read_dir(&d1)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "sqlite"))
        .expect("the example's D1 database file");
    truncate(&file);
    let err = refused(&config, data.path());
    let name = file.file_name().unwrap().to_str().unwrap();
    assert!(err.contains(name) && err.contains("is empty"), "{err}");
}

#[test]
fn a_lost_durable_object_secret_stops_start_up_while_objects_exist() {
    let data = tempfile::tempdir().unwrap();
    let config = example("durable-objects");
    run_once(&config, data.path(), |s| {
        let r = s.request("POST", "/counter/a/inc", &[], b"");
        assert_eq!(r.status, 200, "{}", r.text());
    });
    let secret = data.path().join("do/secret");
    std::fs::remove_file(&secret).unwrap();
    let err = refused(&config, data.path());
    assert!(err.contains("secret") && err.contains("missing"), "{err}");
    assert!(err.contains("Restore"), "{err}");
    assert!(
        !secret.exists(),
        "a new secret was made, orphaning the objects"
    );
}

#[test]
fn a_corrupt_cron_database_is_a_storage_error_not_a_config_error() {
    let data = tempfile::tempdir().unwrap();
    let config = example("queues");
    std::fs::write(data.path().join("cron.sqlite"), vec![0x42; 8192]).unwrap();
    let err = refused(&config, data.path());
    assert!(err.contains("cron.sqlite"), "{err}");
    assert!(err.contains("not a SQLite database"), "{err}");
    assert!(!err.contains("triggers.crons"), "{err}");
}
