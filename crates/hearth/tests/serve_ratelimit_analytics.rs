//! `hearth serve` with `[[ratelimits]]`: the binding is on `env`, counters
//! are shared by two workers naming one namespace_id, the health report
//! lists it, and a binding kind Hearth does not serve yet is named in a
//! warning (derived from the binding registry); and the Analytics Engine
//! kind through `hearth serve` and its SQL API.

mod web_support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use web_support::Server;

const WORKER: &str = r#"
export default {
  async fetch(request, env) {
    const key = new URL(request.url).searchParams.get("key") ?? "";
    const { success } = await env.LIMITER.limit({ key });
    return new Response(success ? "ok" : "slow down", { status: success ? 200 : 429 });
  },
};
"#;

fn write_worker(dir: &Path, name: &str, route: &str, extra: &str) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("index.js"), WORKER).unwrap();
    let config = dir.join("wrangler.toml");
    std::fs::write(
        &config,
        format!(
            r#"name = "{name}"
main = "index.js"
routes = [{{ pattern = "{route}/*" }}]

[[ratelimits]]
name = "LIMITER"
namespace_id = "1001"
simple = {{ limit = 3, period = 60 }}
{extra}"#
        ),
    )
    .unwrap();
    config
}

#[test]
fn two_workers_share_a_namespace() {
    let root = tempfile::tempdir().unwrap();
    let a = write_worker(&root.path().join("a"), "a", "a.test", "");
    let b = write_worker(&root.path().join("b"), "b", "b.test", "");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hearth"));
    cmd.arg("serve")
        .arg(&a)
        .arg(&b)
        .arg("--data-dir")
        .arg(root.path().join("data"));
    let server = Server::spawn(cmd, Duration::from_secs(60));
    let get = |host: &str, key: &str| {
        server
            .request("GET", &format!("/?key={key}"), &[("host", host)], b"")
            .status
    };
    assert_eq!(get("a.test", "alice"), 200);
    assert_eq!(get("b.test", "alice"), 200);
    assert_eq!(get("a.test", "alice"), 200);
    // The namespace is shared: the fourth request for the key, from either
    // worker, is over the limit of 3 per minute.
    assert_eq!(get("b.test", "alice"), 429);
    assert_eq!(get("a.test", "alice"), 429);
    assert_eq!(get("a.test", "bob"), 200, "another key has its own budget");

    let health = server.get("/__hearth/health?worker=a");
    assert_eq!(health.status, 200, "{}", health.text());
    let text = health.text();
    assert!(
        text.contains("\"LIMITER\"") && text.contains("ratelimit"),
        "{text}"
    );

    let log = server.log.lock().unwrap().join("\n");
    assert!(!log.contains("is not served by Hearth yet"), "{log}");
}

const ANALYTICS_WORKER: &str = r#"
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    env.EVENTS.writeDataPoint({ blobs: [url.pathname], doubles: [1], indexes: ["t1"] });
    return new Response("logged");
  },
};
"#;

/// The Analytics Engine kind, added by the same recipe: data points written
/// by a served worker are answered by the SQL API endpoint, and survive a
/// restart.
#[test]
fn analytics_engine_points_reach_the_sql_api() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("index.js"), ANALYTICS_WORKER).unwrap();
    let config = root.path().join("wrangler.toml");
    std::fs::write(
        &config,
        "name = \"ae\"\nmain = \"index.js\"\n\n[[analytics_engine_datasets]]\nbinding = \"EVENTS\"\ndataset = \"page_views\"\n",
    )
    .unwrap();
    let data = root.path().join("data");
    let sql = "SELECT blob1 AS path, SUM(_sample_interval) AS hits FROM page_views GROUP BY path ORDER BY path FORMAT JSONEachRow";
    {
        let server = Server::start("serve", &config, &data);
        for path in ["/a", "/b", "/a"] {
            assert_eq!(server.get(path).text(), "logged");
        }
        let answer = server.request(
            "POST",
            "/__hearth/analytics_engine/sql",
            &[],
            sql.as_bytes(),
        );
        assert_eq!(answer.status, 200, "{}", answer.text());
        assert_eq!(
            answer.text(),
            "{\"path\":\"/a\",\"hits\":2}\n{\"path\":\"/b\",\"hits\":1}\n"
        );
        let refused = server.request(
            "POST",
            "/__hearth/analytics_engine/sql",
            &[],
            b"DROP TABLE points",
        );
        assert_eq!(refused.status, 400);
        assert!(refused.text().contains("only SELECT"), "{}", refused.text());
        server.terminate();
    }
    let server = Server::start("serve", &config, &data);
    let answer = server.request(
        "POST",
        "/__hearth/analytics_engine/sql",
        &[],
        sql.as_bytes(),
    );
    assert_eq!(
        answer.text(),
        "{\"path\":\"/a\",\"hits\":2}\n{\"path\":\"/b\",\"hits\":1}\n",
        "points committed before a clean stop are kept"
    );
}
