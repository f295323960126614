//! `hearth serve` on the Durable Objects example, through real HTTP:
//! counters, RPC, SQL, an acknowledged write surviving SIGKILL (the output
//! gate, also with concurrent calls answered by one group commit), and an
//! alarm set before a SIGKILL firing after the restart.

mod web_support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use web_support::{Reply, Server};

fn example_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/durable-objects/wrangler.toml")
}

fn json(r: &Reply) -> serde_json::Value {
    assert_eq!(r.status, 200, "{}", r.text());
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.text()))
}

fn wait_for<T>(secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(std::time::Instant::now() < deadline, "not within {secs} s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn counters_rpc_and_sql_through_http() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start("serve", &example_config(), data.path());
    for _ in 0..3 {
        server.request("POST", "/counter/a/inc", &[], b"");
    }
    server.request("POST", "/counter/b/inc", &[], b"");
    let r = server.request("POST", "/counter/a/add?n=10", &[], b"");
    assert_eq!(json(&r)["value"], 13);
    assert_eq!(
        json(&server.request("GET", "/counter/a", &[], b""))["value"],
        13
    );
    assert_eq!(
        json(&server.request("GET", "/counter/b", &[], b""))["value"],
        1
    );
    let log = json(&server.request("GET", "/counter/a/log", &[], b""));
    assert_eq!(
        log,
        serde_json::json!([{"change": "+1"}, {"change": "+1"}, {"change": "+1"}, {"change": "+10"}])
    );
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    let data = tempfile::tempdir().unwrap();
    let mut server = Server::start("serve", &example_config(), data.path());
    for i in 1..=5 {
        let r = server.request("POST", "/counter/durable/inc", &[], b"");
        assert_eq!(json(&r)["value"], i);
    }
    // SIGKILL straight after the response: the write before it is on disk.
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let server = Server::start("serve", &example_config(), data.path());
    assert_eq!(
        json(&server.request("GET", "/counter/durable", &[], b""))["value"],
        5
    );
}

/// Group commit: concurrent calls to one object are answered after one
/// commit covers several of them. Killed while calls are in flight, every
/// value answered before the kill is on disk, each increment's value and its
/// SQL log row committed together, and no two calls were answered the same
/// value.
#[test]
fn concurrent_acknowledged_increments_survive_sigkill() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    let data = tempfile::tempdir().unwrap();
    let mut server = Server::start("serve", &example_config(), data.path());
    let acked = Arc::new(Mutex::new(Vec::<u64>::new()));
    let count = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..12)
        .map(|i| {
            let (addr, acked, count, stop) = (
                server.addr.clone(),
                acked.clone(),
                count.clone(),
                stop.clone(),
            );
            std::thread::spawn(move || {
                // Half the clients call fetch() on the object, half call RPC.
                let path = if i % 2 == 0 {
                    "/counter/burst/inc"
                } else {
                    "/counter/burst/add?n=1"
                };
                while !stop.load(Ordering::SeqCst) {
                    let Ok(r) = web_support::try_http(
                        &addr,
                        "POST",
                        path,
                        &[],
                        b"",
                        Duration::from_secs(30),
                    ) else {
                        break;
                    };
                    if r.status != 200 {
                        break;
                    }
                    let v = json(&r)["value"].as_u64().unwrap();
                    acked.lock().unwrap().push(v);
                    count.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    wait_for(60, || (count.load(Ordering::SeqCst) >= 300).then_some(()));
    // SIGKILL with calls in flight: some answers are held for a commit.
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.join().unwrap();
    }
    let mut acked = acked.lock().unwrap().clone();
    let answered = acked.len();
    acked.sort_unstable();
    acked.dedup();
    assert_eq!(
        acked.len(),
        answered,
        "two calls were answered the same value"
    );
    let highest = *acked.last().unwrap();

    let server = Server::start("serve", &example_config(), data.path());
    let value = json(&server.request("GET", "/counter/burst", &[], b""))["value"]
        .as_u64()
        .unwrap();
    assert!(
        value >= highest,
        "{value} on disk, but {highest} was answered before the kill"
    );
    let log = json(&server.request("GET", "/counter/burst/log", &[], b""));
    assert_eq!(
        log.as_array().unwrap().len() as u64,
        value,
        "the value and its log rows commit together"
    );
}

#[test]
fn an_alarm_set_before_sigkill_fires_after_restart() {
    let data = tempfile::tempdir().unwrap();
    let mut server = Server::start("serve", &example_config(), data.path());
    let r = server.request("POST", "/counter/ring/alarm?ms=400", &[], b"");
    let at = json(&r)["scheduled"].as_f64().unwrap() as u128;
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    // Restart only once the alarm's time has passed while the server was down.
    wait_for(10, || {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis();
        (now > at).then_some(())
    });
    let server = Server::start("serve", &example_config(), data.path());
    let t = wait_for(15, || {
        let t = json(&server.request("GET", "/counter/ring", &[], b""));
        (t["alarms"] == 1).then_some(t)
    });
    assert_eq!(t["alarms"], 1);
}

#[test]
fn script_name_naming_a_worker_not_served_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("index.js"),
        "export default { fetch() { return new Response('x') } }; export class C {}",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("wrangler.toml"),
        "name = \"w\"\nmain = \"index.js\"\n\n[[durable_objects.bindings]]\nname = \"C\"\nclass_name = \"C\"\nscript_name = \"other\"\n\n[[migrations]]\ntag = \"v1\"\nnew_sqlite_classes = [\"C\"]\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .arg("serve")
        .arg(dir.path().join("wrangler.toml"))
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("script_name = \"other\" names another worker"),
        "{err}"
    );
}
