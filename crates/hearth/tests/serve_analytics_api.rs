//! Analytics Engine through `hearth serve`: the SQL API at Cloudflare's
//! path behind `--analytics-token`, `hearth analytics sql`, the 250
//! points per invocation counted per request, and the durability window:
//! points written more than a second before `kill -9` are all there.

mod web_support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use web_support::Server;

const WORKER: &str = r#"
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const n = Number(url.searchParams.get("n") ?? "1");
    let written = 0;
    try {
      for (let i = 0; i < n; i++) {
        env.EVENTS.writeDataPoint({ blobs: [url.pathname, String(i)], doubles: [i], indexes: ["t"] });
        written++;
      }
    } catch (e) {
      return new Response(written + " " + e.message, { status: 429 });
    }
    return new Response(String(written));
  },
};
"#;

fn project(root: &Path) -> (PathBuf, PathBuf) {
    std::fs::write(root.join("index.js"), WORKER).unwrap();
    let config = root.join("wrangler.toml");
    std::fs::write(
        &config,
        "name = \"ae\"\nmain = \"index.js\"\n\n[[analytics_engine_datasets]]\nbinding = \"EVENTS\"\ndataset = \"events\"\n",
    )
    .unwrap();
    (config, root.join("data"))
}

fn cli_sql(config: &Path, data: &Path, query: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["analytics", "sql"])
        .arg(query)
        .arg("--config")
        .arg(config)
        .arg("--data-dir")
        .arg(data)
        .output()
        .unwrap()
}

#[test]
fn the_sql_api_answers_at_cloudflares_path_with_the_token() {
    let root = tempfile::tempdir().unwrap();
    let (config, data) = project(root.path());
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hearth"));
    cmd.arg("serve")
        .arg(&config)
        .arg("--data-dir")
        .arg(&data)
        .env("HEARTH_ANALYTICS_TOKEN", "ae-secret");
    let server = Server::spawn(cmd, Duration::from_secs(60));
    assert_eq!(server.get("/a?n=2").text(), "2");
    let path = "/client/v4/accounts/0123456789abcdef0123456789abcdef/analytics_engine/sql";
    let query = b"SELECT blob1 AS p, count() AS n FROM events GROUP BY p FORMAT JSONEachRow";
    let answer = server.request(
        "POST",
        path,
        &[("authorization", "Bearer ae-secret")],
        query,
    );
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.text(), "{\"p\":\"/a\",\"n\":2}\n");
    for auth in [&[("authorization", "Bearer wrong")][..], &[][..]] {
        let refused = server.request("POST", path, auth, query);
        assert_eq!(refused.status, 401, "{}", refused.text());
        assert!(refused.text().contains("Authentication error"));
    }
    let bad = server.request(
        "POST",
        path,
        &[("authorization", "Bearer ae-secret")],
        b"SELECT sqlite_version()",
    );
    assert_eq!(bad.status, 400);
    assert!(bad.text().contains("sqlite_version"), "{}", bad.text());
    server.terminate();

    // Without the token the path is the worker's, as any other.
    let server = Server::start("serve", &config, &data);
    let reply = server.request(
        "POST",
        path,
        &[("authorization", "Bearer ae-secret")],
        query,
    );
    assert_eq!((reply.status, reply.text()), (200, "1".to_owned()));
    server.terminate();

    let out = cli_sql(
        &config,
        &data,
        "SELECT blob1 AS p, count() AS n FROM events GROUP BY p ORDER BY p FORMAT JSONEachRow",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{{\"p\":\"/a\",\"n\":2}}\n{{\"p\":\"{path}\",\"n\":1}}\n")
    );
    let out = cli_sql(&config, &data, "SELECT nope(1) FROM events");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("function nope is not part of"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn each_request_writes_at_most_250_points() {
    let root = tempfile::tempdir().unwrap();
    let (config, data) = project(root.path());
    let server = Server::start("serve", &config, &data);
    assert_eq!(server.get("/x?n=250").text(), "250");
    let over = server.get("/x?n=300");
    assert_eq!(over.status, 429);
    assert_eq!(
        over.text(),
        "250 writeDataPoint(): Maximum of 250 data points per invocation exceeded"
    );
    assert_eq!(
        server.get("/x?n=250").text(),
        "250",
        "the next request has its own 250"
    );
    let n = server.request(
        "POST",
        "/__hearth/analytics_engine/sql",
        &[],
        b"SELECT count() AS n FROM events FORMAT TabSeparated",
    );
    assert_eq!(n.text(), "750\n");
}

/// The durability window: the writer commits whatever is queued at once
/// (fsync per batch), so a point written more than a second before
/// `kill -9` is on disk. 20 requests of 200 points each (4,000 points,
/// under the 10,000-point buffer, so none is dropped), then one second,
/// then SIGKILL: every point is there after.
#[test]
fn points_written_a_second_before_kill_9_survive() {
    let root = tempfile::tempdir().unwrap();
    let (config, data) = project(root.path());
    let server = Server::start("serve", &config, &data);
    for i in 0..20 {
        assert_eq!(server.get(&format!("/k{i}?n=200")).text(), "200");
    }
    // The window is the claim under test, so this wait is real time.
    std::thread::sleep(Duration::from_millis(1000));
    server.kill9();
    let out = cli_sql(
        &config,
        &data,
        "SELECT count() AS n, count(DISTINCT blob1) AS paths FROM events FORMAT JSONEachRow",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "{\"n\":4000,\"paths\":20}\n"
    );
}

/// A burst six times the 10,000-point buffer from eight concurrent
/// clients: the worker outruns the writer, `writeDataPoint` waits for room
/// rather than dropping, and every point a request reported written is
/// queryable.
#[test]
fn a_burst_larger_than_the_buffer_loses_no_point() {
    let root = tempfile::tempdir().unwrap();
    let (config, data) = project(root.path());
    let server = Server::start("serve", &config, &data);
    let clients: Vec<_> = (0..8)
        .map(|c| {
            let addr = server.addr.clone();
            std::thread::spawn(move || {
                let mut written = 0u64;
                for r in 0..30 {
                    let reply =
                        web_support::http(&addr, "GET", &format!("/c{c}r{r}?n=250"), &[], b"");
                    assert_eq!(reply.status, 200, "{}", reply.text());
                    written += reply.text().parse::<u64>().unwrap();
                }
                written
            })
        })
        .collect();
    let written: u64 = clients.into_iter().map(|c| c.join().unwrap()).sum();
    assert_eq!(written, 60_000);
    assert_eq!(
        sql_api(
            &server,
            "SELECT count() AS n, count(DISTINCT blob1) AS paths, count(DISTINCT blob2) AS i FROM events FORMAT JSONEachRow"
        ),
        "{\"n\":60000,\"paths\":240,\"i\":250}\n"
    );
}

fn sql_api(server: &Server, query: &str) -> String {
    let r = server.request(
        "POST",
        "/__hearth/analytics_engine/sql",
        &[],
        query.as_bytes(),
    );
    assert_eq!(r.status, 200, "{query}: {}", r.text());
    r.text()
}

/// `HEARTH_ANALYTICS_RETENTION_DAYS` on the injected clock: points older
/// than the retention leave both the points and the per-second rollup
/// (`count()` by `blob1` reads the rollup, `SELECT blob1 ...` the points),
/// and newer ones stay.
#[test]
fn points_older_than_the_retention_days_are_gone() {
    let root = tempfile::tempdir().unwrap();
    let (config, data) = project(root.path());
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hearth"));
    cmd.arg("serve")
        .arg(&config)
        .arg("--data-dir")
        .arg(&data)
        .arg("--test-clock")
        .env("HEARTH_ANALYTICS_RETENTION_DAYS", "2");
    let server = Server::spawn(cmd, Duration::from_secs(60));
    const DAY_MS: u64 = 86_400_000;
    let by_path =
        "SELECT blob1 AS p, count() AS n FROM events GROUP BY p ORDER BY p FORMAT JSONEachRow";
    let rows = "SELECT DISTINCT blob1 AS p FROM events ORDER BY p FORMAT JSONEachRow";

    assert_eq!(server.get("/old?n=3").text(), "3");
    server.advance_clock(DAY_MS);
    assert_eq!(server.get("/new?n=2").text(), "2");
    assert_eq!(
        sql_api(&server, by_path),
        "{\"p\":\"/new\",\"n\":2}\n{\"p\":\"/old\",\"n\":3}\n"
    );

    // Two days and a second after the first points: they are past it.
    server.advance_clock(DAY_MS + 1000);
    assert_eq!(sql_api(&server, by_path), "{\"p\":\"/new\",\"n\":2}\n");
    assert_eq!(sql_api(&server, rows), "{\"p\":\"/new\"}\n");

    server.advance_clock(DAY_MS);
    assert_eq!(sql_api(&server, by_path), "");
    assert_eq!(sql_api(&server, rows), "");
    server.terminate();

    // A retention that is not a positive number of days is refused by name.
    let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["analytics", "sql", "SELECT count() FROM events", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(&data)
        .env("HEARTH_ANALYTICS_RETENTION_DAYS", "0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("HEARTH_ANALYTICS_RETENTION_DAYS"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
