//! `hearth migrate`, end to end: a project with KV, R2, a Durable Object,
//! D1 and a Workflow is written through an embedded `hearth serve`, copied into a
//! cluster (PostgreSQL, and the moto S3 double for R2 and snapshots), and
//! read back through two `hearth serve --cluster` nodes on fresh data
//! directories, which then write to the same data once more.
//!
//! Needs PostgreSQL (`HEARTH_TEST_POSTGRES_URL`, default
//! postgres://postgres@127.0.0.1:5432/test) and the S3 double; skipped when
//! they are not there, unless `HEARTH_TEST_REQUIRE_CLUSTER=1` (and
//! `HEARTH_TEST_REQUIRE_S3_BACKEND=1`).

mod cluster_support;
mod web_support;

use cluster_support::*;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use hearth_testkit::s3_double;
use sha2::Digest as _;
use web_support::{Reply, Server, http};

/// An alarm far enough ahead never to fire during the test.
const ALARM_AT_MS: u64 = 4_102_444_800_000;
/// Past one part of the import's multipart upload.
const BIG_OBJECT_BYTES: usize = 17 * 1024 * 1024 + 5;

fn cluster_file(dir: &Path, name: &str, schema: &str, s3: &str) -> PathBuf {
    let file = dir.join(format!("{name}.cluster.toml"));
    std::fs::write(
        &file,
        format!(
            r#"node_id = "{name}"
advertise = "127.0.0.1:{port}"
secret = "{SECRET}"

[postgres]
url = "{url}"
schema = "{schema}"

[durable_objects]
lease_ms = 1500
{s3}"#,
            port = free_port(),
            url = postgres_url()
        ),
    )
    .unwrap();
    file
}

fn serve(project: &Path, data_dir: &Path, cluster: Option<&Path>) -> Server {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hearth"));
    cmd.arg("serve")
        .arg(project)
        .arg("--data-dir")
        .arg(data_dir);
    if let Some(file) = cluster {
        cmd.arg("--cluster").arg(file);
    }
    Server::spawn(cmd, Duration::from_secs(60))
}

fn migrate(project: &Path, data_dir: &Path, cluster: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hearth"))
        .arg("migrate")
        .arg(project)
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--cluster")
        .arg(cluster)
        .args(extra)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn ok(reply: Reply) -> Reply {
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply
}

fn alarms_in_cluster(schema: &str) -> i64 {
    let pg = hearth_cluster::Pg::connect(&postgres_url(), schema).unwrap();
    pg.block({
        let pg = pg.clone();
        async move {
            let c = pg.client().await?;
            let row = c
                .query_one(
                    "SELECT count(*) FROM do_alarms WHERE at_ms = $1",
                    &[&(ALARM_AT_MS as i64)],
                )
                .await?;
            Ok(row.get::<_, i64>(0))
        }
    })
    .unwrap()
}

/// Polls the workflow instance until it has `status`; returns its status.
fn wait_for_status(addr: &str, id: &str, status: &str) -> serde_json::Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let now = ok(http(addr, "GET", &format!("/wf/status?id={id}"), &[], b"")).json();
        if now["status"] == status {
            return now;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "instance {id} never reached {status}: {now}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Everything the embedded server wrote, as the worker reads it back.
fn read_all(addr: &str) -> serde_json::Value {
    let get = |path: &str| ok(http(addr, "GET", path, &[], b"")).json();
    serde_json::json!({
        "kv_a": get("/kv/get?k=a"),
        "kv_b": get("/kv/get?k=b"),
        "kv_list": get("/kv/list"),
        "r2_small": get("/r2/get?k=notes/small.txt"),
        "r2_big": get("/r2/get?k=big.bin"),
        "r2_list": get("/r2/list"),
        "do": get("/do/get"),
        "d1": get("/d1/all"),
        "wf": get("/wf/status?id=w1"),
    })
}

#[test]
fn migrate_copies_an_embedded_data_directory_into_the_cluster() {
    if !postgres_reachable() {
        return;
    }
    let Some(endpoint) = s3_double::endpoint() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("project");
    web_support::copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cluster-migrate"),
        &project,
    );
    let schema = format!("hearth_t_{}_{}", std::process::id(), free_port());
    let s3 = format!(
        "\n[s3]\nendpoint = \"{endpoint}\"\nbucket = \"{bucket}\"\naccess_key_id = \"testing\"\nsecret_access_key = \"testing\"\nprefix = \"{schema}/\"\n",
        bucket = s3_double::BUCKET,
    );
    let (file_a, file_b) = (
        cluster_file(dir.path(), "a", &schema, &s3),
        cluster_file(dir.path(), "b", &schema, &s3),
    );
    let data = dir.path().join("embedded");

    // Embedded mode: one of everything.
    let server = serve(&project, &data, None);
    let addr = server.addr.clone();
    let call = |method: &str, path: &str, body: &[u8]| ok(http(&addr, method, path, &[], body));
    call("GET", "/kv/put?k=a&v=one&note=first", b"");
    call("GET", "/kv/put?k=b&v=two&note=second&ttl=86400", b"");
    let small = b"hello from the embedded mode";
    let small_sha = hex::encode(sha2::Sha256::digest(small));
    call(
        "PUT",
        &format!("/r2/put?k=notes/small.txt&type=text/plain&writer=embedded&sha256={small_sha}"),
        small,
    );
    let big: Vec<u8> = (0..BIG_OBJECT_BYTES).map(|i| (i % 251) as u8).collect();
    call("PUT", "/r2/put?k=big.bin&writer=embedded", &big);
    for n in 1..=3 {
        assert_eq!(call("GET", "/do/add", b"").text(), n.to_string());
    }
    call("GET", &format!("/do/alarm?at={ALARM_AT_MS}"), b"");
    call("GET", "/d1/setup", b"");
    call("GET", "/d1/put?k=k1&v=v1", b"");
    call("GET", "/d1/put?k=k2&v=v2", b"");
    call("GET", "/wf/create?id=w1", b"");
    wait_for_status(&addr, "w1", "waiting");
    let before = read_all(&addr);
    assert_eq!(before["do"]["n"], 3, "{before}");
    assert_eq!(before["r2_big"]["size"], BIG_OBJECT_BYTES, "{before}");

    // A served directory is refused.
    let refused = migrate(&project, &data, &file_a, &[]);
    assert!(!refused.status.success(), "{}", text(&refused.stdout));
    assert!(
        text(&refused.stderr).contains("in use by a running `hearth serve`"),
        "{}",
        text(&refused.stderr)
    );
    server.terminate();

    let copied = migrate(&project, &data, &file_a, &[]);
    let report = text(&copied.stdout);
    assert!(copied.status.success(), "{}{report}", text(&copied.stderr));
    for line in [
        "KV namespace migrate-kv: 3 keys, 7 bytes",
        "Workflows approval: 1 instances,",
        &format!(
            "R2 bucket migrate-bucket: 2 objects, {} bytes",
            BIG_OBJECT_BYTES + small.len()
        ),
        "Durable Objects Counter: 1 objects,",
        " 1 alarms ",
        "D1 database migrate-notes-db: ",
    ] {
        assert!(report.contains(line), "{line:?} missing from:\n{report}");
    }
    assert_eq!(alarms_in_cluster(&schema), 1);

    // Copying again is refused, naming what the cluster holds, unless forced.
    let again = migrate(&project, &data, &file_a, &[]);
    assert!(!again.status.success());
    let err = text(&again.stderr);
    for name in [
        "KV namespace migrate-kv",
        "R2 bucket migrate-bucket",
        "Durable Object Counter ",
        "D1 database migrate-notes-db",
        "Workflow approval",
    ] {
        assert!(err.contains(name), "{name:?} missing from: {err}");
    }
    let forced = migrate(&project, &data, &file_a, &["--force"]);
    assert!(forced.status.success(), "{}", text(&forced.stderr));

    // Two nodes on fresh directories see it all, as the embedded server did.
    let a = serve(&project, &dir.path().join("data-a"), Some(&file_a));
    let b = serve(&project, &dir.path().join("data-b"), Some(&file_b));
    for node in [&a, &b] {
        assert_eq!(read_all(&node.addr), before, "through {}", node.addr);
    }

    // Both the object and the database are live: writes go on from there.
    assert_eq!(ok(b.get("/do/add")).text(), "4");
    assert_eq!(ok(a.get("/do/get")).json()["n"], 4);
    ok(a.get("/d1/put?k=k3&v=v3"));
    assert_eq!(ok(b.get("/d1/all")).json().as_array().unwrap().len(), 3);
    ok(b.get("/kv/put?k=c&v=three&note=third"));
    assert_eq!(ok(a.get("/kv/get?k=c")).json()["value"], "three");
    // The workflow goes on from its journal: its first step is not run again.
    ok(b.get("/wf/approve?id=w1&by=cluster"));
    let done = wait_for_status(&a.addr, "w1", "complete");
    assert_eq!(
        done["output"],
        serde_json::json!({"first": 1, "by": "cluster"}),
        "{done}"
    );
    assert_eq!(ok(b.get("/kv/count?prefix=wf-ran/w1/")).text(), "1");

    // Nodes are running: the copy is refused even with --force.
    let live = migrate(&project, &data, &file_a, &["--force"]);
    assert!(!live.status.success());
    assert!(
        text(&live.stderr).contains("cluster nodes are running"),
        "{}",
        text(&live.stderr)
    );
    drop((a, b));
    drop_schema(&schema);
}

/// Without `[s3]`: snapshots go to PostgreSQL, and R2, which then stays in
/// each node's own directory, is named as not copied.
#[test]
fn without_a_store_snapshots_go_to_postgres_and_r2_is_named_as_not_copied() {
    if !postgres_reachable() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("project");
    web_support::copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cluster-migrate"),
        &project,
    );
    let schema = format!("hearth_t_{}_{}", std::process::id(), free_port());
    let file = cluster_file(dir.path(), "a", &schema, "");
    let data = dir.path().join("embedded");
    let server = serve(&project, &data, None);
    for n in 1..=2 {
        assert_eq!(ok(server.get("/do/add")).text(), n.to_string());
    }
    ok(server.get("/d1/setup"));
    ok(server.get("/d1/put?k=k1&v=v1"));
    ok(server.request("PUT", "/r2/put?k=left-behind", &[], b"x"));
    server.terminate();

    let copied = migrate(&project, &data, &file, &[]);
    let report = text(&copied.stdout);
    assert!(copied.status.success(), "{}{report}", text(&copied.stderr));
    for line in [
        "not copied: R2 bucket BUCKET (migrate-bucket)",
        &format!("snapshots in postgres:{schema}.do_snapshot_chunks"),
        "Durable Objects Counter: 1 objects,",
    ] {
        assert!(report.contains(line), "{line:?} missing from:\n{report}");
    }

    let node = serve(&project, &dir.path().join("data-a"), Some(&file));
    let got = ok(node.get("/do/get")).json();
    assert_eq!(
        (got["n"].clone(), got["logged"].clone()),
        (2.into(), 2.into()),
        "{got}"
    );
    assert_eq!(
        ok(node.get("/d1/all")).json(),
        serde_json::json!([{"k": "k1", "v": "v1"}])
    );
    assert_eq!(ok(node.get("/do/add")).text(), "3");
    drop(node);
    drop_schema(&schema);
}
