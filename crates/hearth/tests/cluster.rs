//! Cluster mode end to end, through `hearth serve --cluster` processes on
//! one PostgreSQL and Redis:
//! - three nodes, one Durable Object counter driven through all of them
//!   by concurrent clients, and the node running the object SIGKILLed
//!   midway: every acknowledged increment must be present exactly once
//!   afterwards. Each node has a data directory of its own: the new owner
//!   rebuilds the object from what the old one shipped to PostgreSQL, and
//!   its copy carries its own, higher fencing token;
//! - two nodes sharing KV (PostgreSQL) and a rate limiter (Redis);
//! - three nodes serving one cron: each slot fires once;
//! - a Workflow whose node is SIGKILLed mid-run, finished by another node
//!   without re-running a step whose result was journaled;
//! - two nodes sharing an R2 bucket on an S3-compatible store (the moto
//!   double, `s3_double`).
//!
//! Needs PostgreSQL (`HEARTH_TEST_POSTGRES_URL`, default
//! postgres://postgres@127.0.0.1:5432/test) and Redis
//! (`HEARTH_TEST_REDIS_URL`, default redis://127.0.0.1:6379); skipped when
//! they are not reachable, unless `HEARTH_TEST_REQUIRE_CLUSTER=1` (CI sets
//! it).

mod cluster_support;
mod web_support;

use cluster_support::*;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use hearth_testkit::s3_double;
use web_support::{Server, try_http};

const LEASE_MS: u64 = 1500;
const INTERNAL_TOKEN: &str = "cluster-test-internal-token";

fn redis_url() -> String {
    std::env::var("HEARTH_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// Whether Redis answers; fails instead when the cluster is required.
fn redis_reachable() -> bool {
    let url = redis_url();
    match hearth_ratelimit::redis::RedisPool::connect(&url, "hearth-probe") {
        Ok(_) => true,
        Err(e) if std::env::var("HEARTH_TEST_REQUIRE_CLUSTER").as_deref() == Ok("1") => {
            panic!("Redis at {url} is required (HEARTH_TEST_REQUIRE_CLUSTER=1): {e}")
        }
        Err(e) => {
            eprintln!("skipped: {e}; set HEARTH_TEST_REQUIRE_CLUSTER=1 to fail instead");
            false
        }
    }
}

struct Node {
    name: String,
    server: Option<Server>,
    internal: String,
    cluster_file: PathBuf,
}

fn write_cluster_file_with(
    dir: &Path,
    name: &str,
    schema: &str,
    internal: &str,
    extra: &str,
) -> PathBuf {
    let file = dir.join(format!("{name}.cluster.toml"));
    std::fs::write(
        &file,
        format!(
            r#"node_id = "{name}"
advertise = "{internal}"
secret = "{SECRET}"

[postgres]
url = "{url}"
schema = "{schema}"

[durable_objects]
lease_ms = {LEASE_MS}
snapshot_after_bytes = 16384
{extra}"#,
            url = postgres_url()
        ),
    )
    .unwrap();
    file
}

fn start_node(dir: &Path, project: &Path, name: &str, schema: &str) -> Node {
    start_node_with(dir, project, name, schema, "")
}

/// A node whose cluster file has `extra` appended.
fn start_node_with(dir: &Path, project: &Path, name: &str, schema: &str, extra: &str) -> Node {
    let internal = format!("127.0.0.1:{}", free_port());
    let cluster_file = write_cluster_file_with(dir, name, schema, &internal, extra);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hearth"));
    cmd.arg("serve")
        .arg(project)
        .arg("--data-dir")
        .arg(dir.join(format!("data-{name}")))
        .arg("--cluster")
        .arg(&cluster_file)
        .arg("--internal-token")
        .arg(INTERNAL_TOKEN);
    let server = Server::spawn(cmd, Duration::from_secs(60));
    Node {
        name: name.to_owned(),
        server: Some(server),
        internal,
        cluster_file,
    }
}

struct Load {
    acked: Mutex<Vec<String>>,
    attempted: Mutex<Vec<String>>,
    live: RwLock<Vec<String>>,
    stop: AtomicBool,
}

fn client(load: Arc<Load>, t: usize) {
    let mut k = 0usize;
    while !load.stop.load(Ordering::SeqCst) {
        let addr = {
            let live = load.live.read().unwrap();
            live[(t + k) % live.len()].clone()
        };
        let tag = format!("c{t}-{k}");
        k += 1;
        load.attempted.lock().unwrap().push(tag.clone());
        match try_http(
            &addr,
            "GET",
            &format!("/add?tag={tag}"),
            &[],
            b"",
            Duration::from_secs(30),
        ) {
            Ok(r) if r.status == 200 => load.acked.lock().unwrap().push(tag),
            // Not acknowledged: it may or may not have been applied.
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

fn wait_for_acks(load: &Load, at_least: usize, nodes: &[Node]) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while load.acked.lock().unwrap().len() < at_least {
        if Instant::now() > deadline {
            let logs: Vec<String> = nodes
                .iter()
                .filter_map(|n| n.server.as_ref().map(|s| (n, s)))
                .map(|(n, s)| format!("--- {}:\n{}", n.name, s.log.lock().unwrap().join("\n")))
                .collect();
            panic!(
                "only {} increments acknowledged, wanted {at_least}\n{}",
                load.acked.lock().unwrap().len(),
                logs.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn every_acknowledged_increment_survives_the_owner_being_killed() {
    if !postgres_reachable() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("project");
    web_support::copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cluster-counter"),
        &project,
    );
    let schema = format!("hearth_t_{}_{}", std::process::id(), free_port());
    // Started one after another: the first creates the cluster's tables.
    let mut nodes: Vec<Node> = ["a", "b", "c"]
        .iter()
        .map(|n| start_node(dir.path(), &project, n, &schema))
        .collect();
    let addr_of = |n: &Node| n.server.as_ref().unwrap().addr.clone();

    // The internal channel refuses a call not signed with the secret.
    let unsigned = try_http(
        &nodes[0].internal,
        "POST",
        "/do/cluster-counter",
        &[],
        b"{}",
        Duration::from_secs(10),
    )
    .unwrap();
    assert_eq!(unsigned.status, 401, "{}", unsigned.text());

    let load = Arc::new(Load {
        acked: Mutex::new(Vec::new()),
        attempted: Mutex::new(Vec::new()),
        live: RwLock::new(nodes.iter().map(addr_of).collect()),
        stop: AtomicBool::new(false),
    });
    let clients: Vec<_> = (0..6)
        .map(|t| {
            let load = load.clone();
            std::thread::spawn(move || client(load, t))
        })
        .collect();

    wait_for_acks(&load, 60, &nodes);
    let victim = owner(&nodes[0].cluster_file);
    let before_kill = load.acked.lock().unwrap().len();
    let v = nodes.iter().position(|n| n.name == victim).unwrap();
    let victim_addr = addr_of(&nodes[v]);
    load.live.write().unwrap().retain(|a| *a != victim_addr);
    nodes[v].server.take().unwrap().kill9();

    wait_for_acks(&load, before_kill + 60, &nodes);
    load.stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.join().unwrap();
    }

    let survivors: Vec<&Node> = nodes.iter().filter(|n| n.server.is_some()).collect();
    let new_owner = owner(&survivors[0].cluster_file);
    assert_ne!(new_owner, victim, "the object moved off the killed node");

    let dump = web_support::http(&addr_of(survivors[0]), "GET", "/dump", &[], b"").json();
    let n = dump["n"].as_u64().unwrap() as usize;
    let tags: Vec<String> = dump["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_owned())
        .collect();
    let stored: HashSet<&String> = tags.iter().collect();
    let acked = load.acked.lock().unwrap().clone();
    let attempted: HashSet<String> = load.attempted.lock().unwrap().iter().cloned().collect();
    assert_eq!(stored.len(), tags.len(), "a tag stored twice");
    assert_eq!(
        n,
        tags.len(),
        "the count equals the increments stored: none applied twice"
    );
    for tag in &acked {
        assert!(stored.contains(tag), "acknowledged increment {tag} lost");
    }
    for tag in &tags {
        assert!(attempted.contains(tag), "increment {tag} was never sent");
    }
    eprintln!(
        "{} sent, {} acknowledged ({before_kill} before {victim} was killed), {n} applied; {new_owner} runs the object now",
        attempted.len(),
        acked.len()
    );
    assert!(n >= acked.len());
    // Unacknowledged but applied is allowed only for calls cut off by the kill.
    assert!(
        n - acked.len() <= 6 * 2,
        "{} increments applied without acknowledgement",
        n - acked.len()
    );

    // RPC through every surviving node reaches the same instance.
    for node in &survivors {
        let r = web_support::http(&addr_of(node), "GET", "/rpc-count", &[], b"");
        assert_eq!(r.text(), n.to_string(), "RPC via {}", node.name);
    }

    // No directory is shared: the new owner's own copy of the object
    // records its lease, newer than the first owner's.
    let files: Vec<PathBuf> = walk(&dir.path().join(format!("data-{new_owner}")))
        .into_iter()
        .filter(|p| {
            p.extension().is_some_and(|e| e == "sqlite")
                && p.parent().is_some_and(|d| d.ends_with("Counter"))
        })
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let conn = rusqlite::Connection::open(&files[0]).unwrap();
    let meta = |key: &str| -> String {
        conn.query_row(
            "SELECT CAST(value AS TEXT) FROM _cf_METADATA WHERE key = ?1",
            [key],
            |r| r.get(0),
        )
        .unwrap()
    };
    assert_eq!(meta("fence_node"), new_owner);
    assert!(meta("fence_token").parse::<i64>().unwrap() >= 2);
    drop(conn);
    // Snapshots were taken along the way, the newest under the new
    // owner's lease.
    assert!(
        snapshot_token(&schema) >= 2,
        "the new owner uploaded no snapshot"
    );

    let s = status(&survivors[0].cluster_file);
    let dead = s["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["node_id"] == victim.as_str())
        .unwrap();
    assert_eq!(dead["live"], false, "{s}");

    drop(nodes);
    drop_schema(&schema);
}

/// The lease token the object's newest snapshot was uploaded under.
fn snapshot_token(schema: &str) -> i64 {
    let pg = hearth_cluster::Pg::connect(&postgres_url(), schema).unwrap();
    let p = pg.clone();
    pg.block(async move {
        let c = p.client().await?;
        Ok(
            c.query_one("SELECT coalesce(max(token), 0) FROM do_snapshots", &[])
                .await?
                .get(0),
        )
    })
    .unwrap()
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn a_bad_cluster_file_is_refused_with_every_problem_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cluster.toml");
    std::fs::write(
        &file,
        "node_id = \"a b\"\nadvertise = \"0.0.0.0:7800\"\nsecret = \"short\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .arg("serve")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cluster-counter"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--cluster")
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let shown = file.display().to_string();
    for problem in [
        format!("{shown}: node_id: \"a b\" is not a node name"),
        format!("{shown}: advertise: \"0.0.0.0:7800\" cannot be reached by peers"),
        format!("{shown}: secret: 5 bytes is too short; use at least 32"),
        format!("{shown}: postgres: missing"),
    ] {
        assert!(err.contains(&problem), "missing {problem:?} in:\n{err}");
    }
}

#[test]
fn nodes_share_kv_in_postgres_and_rate_limits_in_redis() {
    if !postgres_reachable() || !redis_reachable() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("project");
    web_support::copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cluster-bindings"),
        &project,
    );
    let schema = format!("hearth_t_{}_{}", std::process::id(), free_port());
    let extra = format!(
        "\n[redis]\nurl = \"{}\"\nprefix = \"{schema}\"\n",
        redis_url()
    );
    let mut nodes: Vec<Node> = ["a", "b"]
        .iter()
        .map(|n| start_node_with(dir.path(), &project, n, &schema, &extra))
        .collect();
    let (a, b) = (
        nodes[0].server.as_ref().unwrap().addr.clone(),
        nodes[1].server.as_ref().unwrap().addr.clone(),
    );
    let get = |addr: &str, path: &str| web_support::http(addr, "GET", path, &[], b"");

    // A write acknowledged by one node is read by the other at once, and
    // outlives the writer's SIGKILL.
    assert_eq!(get(&a, "/put?k=greeting&v=hello").text(), "ok");
    assert_eq!(get(&b, "/get?k=greeting").text(), "hello");
    assert_eq!(get(&b, "/put?k=other&v=1").text(), "ok");
    nodes[0].server.take().unwrap().kill9();
    assert_eq!(get(&b, "/get?k=greeting").text(), "hello");
    assert_eq!(
        get(&b, "/list").json(),
        serde_json::json!(["greeting", "other"])
    );
    let a = {
        let node = start_node_with(dir.path(), &project, "a", &schema, &extra);
        let addr = node.server.as_ref().unwrap().addr.clone();
        nodes[0] = node;
        addr
    };
    assert_eq!(get(&a, "/get?k=other").text(), "1");

    // The Cache API lives in Redis: a put on one node is a match on the
    // other, named caches apart from the default one.
    assert_eq!(get(&a, "/cache-put?k=page&v=cached-on-a").text(), "ok");
    assert_eq!(get(&b, "/cache-match?k=page").text(), "cached-on-a");
    assert_eq!(get(&b, "/cache-match?k=page&cache=other").text(), "<miss>");
    assert_eq!(
        get(&b, "/cache-put?k=page&v=named&cache=other").text(),
        "ok"
    );
    assert_eq!(get(&a, "/cache-match?k=page&cache=other").text(), "named");
    assert_eq!(get(&a, "/cache-match?k=page").text(), "cached-on-a");
    // Redis expires the entry with its max-age.
    let pool = hearth_ratelimit::redis::RedisPool::connect(&redis_url(), &schema).unwrap();
    let ttl: i64 = pool
        .with(|c| {
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(format!("{schema}:cache:*"))
                .query(c)?;
            redis::cmd("PTTL").arg(&keys[0]).query(c)
        })
        .unwrap();
    assert!((1..=60_000).contains(&ttl), "{ttl}");

    // 5 per minute across both nodes: a burst alternating between them is
    // admitted exactly 5 times. A burst that straddles a minute boundary
    // counts in two windows, so it is run again on a fresh key.
    let minute = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            / 60
    };
    for attempt in 0.. {
        let started = minute();
        let admitted = (0..20)
            .filter(|i| {
                let addr = if i % 2 == 0 { &a } else { &b };
                let r = get(addr, &format!("/limit?key=burst-{attempt}"));
                assert!(matches!(r.status, 200 | 429), "{}: {}", r.status, r.text());
                r.status == 200
            })
            .count();
        if minute() == started {
            assert_eq!(admitted, 5, "5 per minute across both nodes");
            break;
        }
        assert!(attempt < 3, "three bursts straddled a minute");
    }
    drop(nodes);
    drop_schema(&schema);
}

/// An alarm is in the index every node reads; only the node running the
/// object delivers it, so it runs once, not once per node.
#[test]
fn an_alarm_runs_once_across_nodes() {
    if !postgres_reachable() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("project");
    web_support::copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cluster-counter"),
        &project,
    );
    let schema = format!("hearth_t_{}_{}", std::process::id(), free_port());
    let nodes: Vec<Node> = ["a", "b", "c"]
        .iter()
        .map(|n| start_node(dir.path(), &project, n, &schema))
        .collect();
    let addrs: Vec<String> = nodes
        .iter()
        .map(|n| n.server.as_ref().unwrap().addr.clone())
        .collect();
    let get = |i: usize, path: &str| web_support::http(&addrs[i], "GET", path, &[], b"");
    assert_eq!(get(1, "/set-alarm?name=alarmed&in=300").text(), "set");
    let deadline = Instant::now() + Duration::from_secs(30);
    while get(2, "/alarms?name=alarmed").text() != "1" {
        assert!(Instant::now() < deadline, "the alarm never ran");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Every node's alarm loop has seen it due by now; none runs it again.
    std::thread::sleep(Duration::from_millis(LEASE_MS * 3));
    for i in 0..3 {
        assert_eq!(get(i, "/alarms?name=alarmed").text(), "1", "via node {i}");
    }
    drop(nodes);
    drop_schema(&schema);
}

/// The owner of an object with a pending alarm is killed before the alarm
/// is due: a surviving node takes the alarm over from the log in
/// PostgreSQL and delivers it, with no request touching the object.
#[test]
fn an_alarm_survives_its_owner_being_killed() {
    if !postgres_reachable() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("project");
    web_support::copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cluster-counter"),
        &project,
    );
    let schema = format!("hearth_t_{}_{}", std::process::id(), free_port());
    let mut nodes: Vec<Node> = ["a", "b", "c"]
        .iter()
        .map(|n| start_node(dir.path(), &project, n, &schema))
        .collect();
    let addr = |n: &Node| n.server.as_ref().unwrap().addr.clone();
    let set = web_support::http(&addr(&nodes[0]), "GET", "/set-alarm?in=2500", &[], b"");
    assert_eq!(set.text(), "set");
    assert_eq!(
        pending_alarms(&schema),
        1,
        "the alarm was recorded with its change"
    );
    let victim = owner(&nodes[0].cluster_file);
    let v = nodes.iter().position(|n| n.name == victim).unwrap();
    nodes[v].server.take().unwrap().kill9();

    // Not a request to the object: only the alarm index in PostgreSQL.
    let deadline = Instant::now() + Duration::from_secs(60);
    while pending_alarms(&schema) > 0 {
        assert!(
            Instant::now() < deadline,
            "the alarm never ran after its owner died"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let survivor = nodes.iter().find(|n| n.server.is_some()).unwrap();
    assert_eq!(
        web_support::http(&addr(survivor), "GET", "/alarms", &[], b"").text(),
        "1",
        "delivered once"
    );
    assert_ne!(owner(&survivor.cluster_file), victim);
    drop(nodes);
    drop_schema(&schema);
}

fn pending_alarms(schema: &str) -> i64 {
    let pg = hearth_cluster::Pg::connect(&postgres_url(), schema).unwrap();
    let p = pg.clone();
    pg.block(async move {
        let c = p.client().await?;
        Ok(c.query_one("SELECT count(*) FROM do_alarms", &[])
            .await?
            .get(0))
    })
    .unwrap()
}

/// Whether NATS with JetStream answers; fails instead when the cluster is
/// required.
fn nats_reachable() -> bool {
    match hearth_cluster::Nats::connect(&nats_url(), "hearth_probe") {
        Ok(_) => true,
        Err(e) if std::env::var("HEARTH_TEST_REQUIRE_CLUSTER").as_deref() == Ok("1") => {
            panic!("NATS JetStream is required (HEARTH_TEST_REQUIRE_CLUSTER=1): {e}")
        }
        Err(e) => {
            eprintln!("skipped: {e}; set HEARTH_TEST_REQUIRE_CLUSTER=1 to fail instead");
            false
        }
    }
}

/// Deletes every stream whose name starts with `prefix`.
fn delete_streams(prefix: &str) {
    let Ok(nats) = hearth_cluster::Nats::connect(&nats_url(), "hearth_probe") else {
        return;
    };
    let js = nats.jetstream().clone();
    let start = format!("{prefix}_");
    let _ = nats.block(async move {
        use futures::StreamExt;
        let mut names = Vec::new();
        let mut list = js.stream_names();
        while let Some(Ok(name)) = list.next().await {
            if name.starts_with(&start) {
                names.push(name);
            }
        }
        for name in names {
            let _ = js.delete_stream(&name).await;
        }
        Ok::<_, hearth_cluster::NatsError>(())
    });
}

fn keys(addr: &str, prefix: &str) -> HashSet<String> {
    let r = web_support::http(addr, "GET", &format!("/keys?prefix={prefix}"), &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

/// Two nodes produce to one JetStream queue that three nodes consume; one
/// producing and consuming node is SIGKILLed midway. Every message a
/// producer got acknowledged is consumed at least once (what the killed
/// node held comes back after `ack_wait`), and messages that always fail
/// are retried across nodes and then dead-lettered with their attempts.
#[test]
fn queue_messages_acknowledged_to_producers_survive_a_node_being_killed() {
    if !postgres_reachable() || !nats_reachable() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("project");
    web_support::copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cluster-queues"),
        &project,
    );
    let schema = format!("hearth_t_{}_{}", std::process::id(), free_port());
    // Deletes the test's streams however the test ends.
    struct Streams(String);
    impl Drop for Streams {
        fn drop(&mut self) {
            delete_streams(&self.0);
        }
    }
    let _streams = Streams(schema.clone());
    let extra = format!(
        "\n[nats]\nurl = \"{}\"\nprefix = \"{schema}\"\nack_wait_ms = 2000\n",
        nats_url()
    );
    let mut nodes: Vec<Node> = ["a", "b", "c"]
        .iter()
        .map(|n| start_node_with(dir.path(), &project, n, &schema, &extra))
        .collect();
    let addrs: Vec<String> = nodes
        .iter()
        .map(|n| n.server.as_ref().unwrap().addr.clone())
        .collect();

    assert_eq!(
        status(&nodes[0].cluster_file)["backends"]["nats"],
        "ok",
        "the status reports JetStream's health"
    );
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    // Producer t sends through node t until that node dies, then through c.
    let targets: Arc<RwLock<Vec<String>>> = Arc::new(RwLock::new(addrs[..2].to_vec()));
    let producers: Vec<_> = (0..2)
        .map(|t| {
            let (acked, stop, targets) = (acked.clone(), stop.clone(), targets.clone());
            std::thread::spawn(move || {
                let mut k = 0usize;
                while !stop.load(Ordering::SeqCst) {
                    let addr = targets.read().unwrap()[t].clone();
                    let tag = format!("p{t}-{k}");
                    k += 1;
                    match try_http(
                        &addr,
                        "GET",
                        &format!("/send?tag={tag}"),
                        &[],
                        b"",
                        Duration::from_secs(30),
                    ) {
                        Ok(r) if r.status == 200 => acked.lock().unwrap().push(tag),
                        _ => std::thread::sleep(Duration::from_millis(20)),
                    }
                }
            })
        })
        .collect();
    let wait_acks = |n: usize| {
        let deadline = Instant::now() + Duration::from_secs(90);
        while acked.lock().unwrap().len() < n {
            assert!(Instant::now() < deadline, "producers stalled");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait_acks(300);
    nodes[1].server.take().unwrap().kill9();
    targets.write().unwrap()[1] = addrs[2].clone();
    let at_kill = acked.lock().unwrap().len();
    // Sent after the kill, so their retries run on the survivors only and
    // every attempt is a handler's failure.
    for i in 0..3 {
        let r = web_support::http(&addrs[2], "GET", &format!("/send?tag=poison-{i}"), &[], b"");
        assert_eq!(r.text(), "ok");
    }
    wait_acks(at_kill + 300);
    stop.store(true, Ordering::SeqCst);
    for p in producers {
        p.join().unwrap();
    }
    let acked: HashSet<String> = acked.lock().unwrap().iter().cloned().collect();

    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let seen: HashSet<String> = keys(&addrs[0], "seen:")
            .iter()
            .map(|k| k.trim_start_matches("seen:").to_owned())
            .collect();
        let missing: Vec<&String> = acked.difference(&seen).collect();
        let dead = keys(&addrs[2], "dead:");
        if missing.is_empty() && dead.len() == 3 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} acknowledged messages never consumed (e.g. {:?}); dead-lettered: {dead:?}",
            missing.len(),
            acked.len(),
            missing.iter().take(5).collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let get = |k: &str| web_support::http(&addrs[0], "GET", &format!("/get?k={k}"), &[], b"");
    for i in 0..3 {
        assert_eq!(
            get(&format!("dead:poison-{i}")).text(),
            "1",
            "attempts restart in the DLQ"
        );
        for attempt in 1..=3 {
            assert_eq!(get(&format!("try:poison-{i}:{attempt}")).text(), "1");
        }
        assert_eq!(
            get(&format!("try:poison-{i}:4")).text(),
            "<none>",
            "max_retries = 2: three deliveries"
        );
    }
    drop(nodes);
    drop_schema(&schema);
}

/// Two nodes serve one R2 bucket from the S3 store: what one writes the
/// other reads, lists and conditions on, also after the writer's SIGKILL,
/// and the object is in the store itself, not in either data directory.
#[test]
fn nodes_share_an_r2_bucket_through_s3() {
    if !postgres_reachable() {
        return;
    }
    let Some(endpoint) = s3_double::endpoint() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("project");
    web_support::copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cluster-r2"),
        &project,
    );
    let schema = format!("hearth_t_{}_{}", std::process::id(), free_port());
    let prefix = format!("{schema}/");
    let extra = format!(
        "\n[s3]\nendpoint = \"{endpoint}\"\nbucket = \"{bucket}\"\naccess_key_id = \"testing\"\nsecret_access_key = \"testing\"\nprefix = \"{prefix}\"\n",
        bucket = s3_double::BUCKET,
    );
    let mut nodes: Vec<Node> = ["a", "b"]
        .iter()
        .map(|n| start_node_with(dir.path(), &project, n, &schema, &extra))
        .collect();
    let (a, b) = (
        nodes[0].server.as_ref().unwrap().addr.clone(),
        nodes[1].server.as_ref().unwrap().addr.clone(),
    );
    let call = |addr: &str, method: &str, path: &str, body: &[u8]| {
        web_support::http(addr, method, path, &[], body)
    };

    let put = call(&a, "PUT", "/put?k=notes/1&node=a", b"written on a").json();
    let got = call(&b, "GET", "/get?k=notes/1", b"");
    assert_eq!(got.status, 200, "{}", got.text());
    let got = got.json();
    assert_eq!(got["text"], "written on a");
    assert_eq!(got["etag"], put["etag"]);
    assert_eq!(got["version"], put["version"]);
    assert_eq!(got["writer"], "a");
    assert_eq!(got["contentType"], "text/plain");

    // A create-only put sees the other node's object.
    assert_eq!(call(&b, "PUT", "/create?k=notes/1", b"x").text(), "exists");
    assert_eq!(call(&b, "PUT", "/create?k=notes/2", b"y").text(), "created");
    assert_eq!(call(&a, "PUT", "/create?k=notes/2", b"z").text(), "exists");

    assert_eq!(status(&nodes[1].cluster_file)["backends"]["s3"], "ok");
    nodes[0].server.take().unwrap().kill9();
    assert_eq!(
        call(&b, "GET", "/list", b"").json(),
        serde_json::json!([["notes/1", "a"], ["notes/2", null]])
    );

    // The bytes are in the store: a client of the bucket alone reads them.
    let store = hearth_r2::S3Store::connect(&s3_double::config(&prefix).unwrap()).unwrap();
    let direct = hearth_r2::R2Bucket::open_s3(
        store,
        "shared-bucket",
        hearth_core::SystemClock::shared(),
        hearth_r2::R2Limits::default(),
    )
    .unwrap();
    let body = direct
        .get("notes/1", &hearth_r2::R2GetOptions::default())
        .unwrap()
        .unwrap()
        .into_body()
        .unwrap()
        .body
        .text()
        .unwrap();
    assert_eq!(body, "written on a");
    let local: Vec<PathBuf> = walk(&dir.path().join("data-b"))
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("/r2/"))
        .collect();
    assert!(local.is_empty(), "no R2 files on the node: {local:?}");

    assert_eq!(call(&b, "POST", "/delete?k=notes/1", b"").text(), "deleted");
    assert!(direct.head("notes/1").unwrap().is_none());
    drop(nodes);
    drop_schema(&schema);
}

/// `hearth cluster drain` with clients hammering eight counters through
/// every node, the drained one included: no request fails, each counter
/// equals the increments acknowledged for it, and the drained node holds
/// no object afterwards (and takes none: its requests are forwarded).
#[test]
fn a_drained_node_hands_its_objects_over_without_failing_a_request() {
    if !postgres_reachable() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("project");
    web_support::copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cluster-counter"),
        &project,
    );
    let schema = format!("hearth_t_{}_{}", std::process::id(), free_port());
    let nodes: Vec<Node> = ["a", "b", "c"]
        .iter()
        .map(|n| start_node(dir.path(), &project, n, &schema))
        .collect();
    let addrs: Vec<String> = nodes
        .iter()
        .map(|n| n.server.as_ref().unwrap().addr.clone())
        .collect();
    const OBJECTS: usize = 8;
    // Node a gets every object first, so it holds them all.
    for o in 0..OBJECTS {
        let r = web_support::http(
            &addrs[0],
            "GET",
            &format!("/add?name=o{o}&tag=warm"),
            &[],
            b"",
        );
        assert_eq!(r.text(), "1");
    }
    let before = status(&nodes[0].cluster_file);
    let a = before["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["node_id"] == "a")
        .unwrap();
    assert_eq!(a["durable_objects"], OBJECTS as i64, "{before}");
    assert_eq!(a["state"], "active", "{before}");

    let acked: Arc<Mutex<Vec<(usize, String)>>> = Arc::default();
    let failed: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..6)
        .map(|t| {
            let (acked, failed, stop, addrs) =
                (acked.clone(), failed.clone(), stop.clone(), addrs.clone());
            std::thread::spawn(move || {
                let mut k = 0usize;
                while !stop.load(Ordering::SeqCst) {
                    // Half of the calls go through the node being drained.
                    let addr = if k.is_multiple_of(2) {
                        &addrs[0]
                    } else {
                        &addrs[1 + t % 2]
                    };
                    let o = (t * 3 + k) % OBJECTS;
                    let tag = format!("c{t}-{k}");
                    k += 1;
                    match try_http(
                        addr,
                        "GET",
                        &format!("/add?name=o{o}&tag={tag}&slow=15"),
                        &[],
                        b"",
                        Duration::from_secs(30),
                    ) {
                        Ok(r) if r.status == 200 => acked.lock().unwrap().push((o, tag)),
                        Ok(r) => failed.lock().unwrap().push(format!(
                            "{tag} via {addr}: {} {}",
                            r.status,
                            r.text()
                        )),
                        Err(e) => failed
                            .lock()
                            .unwrap()
                            .push(format!("{tag} via {addr}: {e}")),
                    }
                }
            })
        })
        .collect();
    let wait_acks = |n: usize| {
        let deadline = Instant::now() + Duration::from_secs(90);
        while acked.lock().unwrap().len() < n {
            assert!(
                Instant::now() < deadline,
                "only {} acknowledged",
                acked.lock().unwrap().len()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait_acks(40);
    let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["cluster", "drain", "a", "--timeout", "60", "--cluster"])
        .arg(&nodes[1].cluster_file)
        .output()
        .unwrap();
    let during = acked.lock().unwrap().len();
    assert!(
        out.status.success(),
        "drain failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        nodes[0]
            .server
            .as_ref()
            .unwrap()
            .log
            .lock()
            .unwrap()
            .join("\n")
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("a: drained"));
    // Keep hammering the drained node: it forwards, and takes nothing.
    wait_acks(during + 60);
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.join().unwrap();
    }
    let failed = failed.lock().unwrap().clone();
    assert!(
        failed.is_empty(),
        "{} requests failed: {failed:#?}",
        failed.len()
    );

    let after = status(&nodes[1].cluster_file);
    let by_node = |id: &str| {
        after["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["node_id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(by_node("a")["state"], "drained", "{after}");
    assert_eq!(by_node("a")["durable_objects"], 0, "{after}");
    assert_eq!(by_node("a")["live"], true, "{after}");
    let moved = by_node("b")["durable_objects"].as_i64().unwrap()
        + by_node("c")["durable_objects"].as_i64().unwrap();
    assert_eq!(moved, OBJECTS as i64, "{after}");

    let acked = acked.lock().unwrap().clone();
    for o in 0..OBJECTS {
        let dump =
            web_support::http(&addrs[0], "GET", &format!("/dump?name=o{o}"), &[], b"").json();
        let mut stored: Vec<String> = dump["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_owned())
            .collect();
        stored.sort();
        let mut want: Vec<String> = acked
            .iter()
            .filter(|(x, _)| *x == o)
            .map(|(_, t)| t.clone())
            .collect();
        want.push("warm".to_owned());
        want.sort();
        assert_eq!(
            stored, want,
            "object o{o}: every acknowledged increment, once"
        );
        assert_eq!(
            dump["n"].as_u64().unwrap() as usize,
            want.len(),
            "object o{o}"
        );
    }
    eprintln!(
        "{} increments acknowledged, {during} before the drain finished",
        acked.len()
    );

    // Each node's counters, on its internal endpoint.
    let m: Vec<String> = addrs.iter().map(|a| node_metrics(a)).collect();
    let v = |i: usize, name: &str| metric(&m[i], name);
    assert_eq!(
        v(
            0,
            "hearth_cluster_leases_total{node=\"a\",event=\"acquired\"}"
        ),
        OBJECTS as u64
    );
    assert_eq!(
        v(
            0,
            "hearth_cluster_leases_total{node=\"a\",event=\"released\"}"
        ),
        OBJECTS as u64
    );
    assert_eq!(v(0, "hearth_cluster_objects_owned{node=\"a\"}"), 0);
    assert_eq!(v(0, "hearth_cluster_draining{node=\"a\"}"), 1);
    assert!(
        v(
            0,
            "hearth_cluster_forwarded_total{node=\"a\",direction=\"out\"}"
        ) > 0
    );
    assert!(v(0, "hearth_cluster_requests_served_total{node=\"a\"}") > (during / 2) as u64);
    assert!(v(0, "hearth_cluster_shipped_commits_total{node=\"a\"}") >= OBJECTS as u64);
    let (b, c) = (1, 2);
    assert_eq!(
        v(
            b,
            "hearth_cluster_leases_total{node=\"b\",event=\"acquired\"}"
        ) + v(
            c,
            "hearth_cluster_leases_total{node=\"c\",event=\"acquired\"}"
        ),
        OBJECTS as u64
    );
    assert_eq!(
        v(b, "hearth_cluster_objects_owned{node=\"b\"}")
            + v(c, "hearth_cluster_objects_owned{node=\"c\"}"),
        OBJECTS as u64
    );
    assert!(
        v(
            b,
            "hearth_cluster_forwarded_total{node=\"b\",direction=\"in\"}"
        ) + v(
            c,
            "hearth_cluster_forwarded_total{node=\"c\",direction=\"in\"}"
        ) > 0
    );
    for (i, n) in ["a", "b", "c"].iter().enumerate() {
        assert_eq!(
            v(
                i,
                &format!(
                    "hearth_cluster_backend_errors_total{{node=\"{n}\",backend=\"postgres\"}}"
                )
            ),
            0,
            "{}",
            m[i]
        );
    }
    let shipped: u64 = (0..3)
        .map(|i| {
            v(
                i,
                &format!(
                    "hearth_cluster_shipped_bytes_total{{node=\"{}\"}}",
                    ["a", "b", "c"][i]
                ),
            )
        })
        .sum();
    assert!(shipped > 0);
    let after = status(&nodes[1].cluster_file);
    assert_eq!(
        after["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["node_id"] == "a")
            .unwrap()["durable_objects"],
        0,
        "the drained node took no object back: {after}"
    );
    drop(nodes);
    drop_schema(&schema);
}

fn node_metrics(addr: &str) -> String {
    let auth = format!("Bearer {INTERNAL_TOKEN}");
    let r = try_http(
        addr,
        "GET",
        "/__hearth/metrics",
        &[("authorization", auth.as_str())],
        b"",
        Duration::from_secs(10),
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    r.text()
}

/// The value of one sample (name with labels, as printed).
fn metric(text: &str, sample: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(sample).and_then(|v| v.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("no sample {sample} in:\n{text}"))
        .parse()
        .unwrap()
}

/// The cluster's journal and KV, read straight from PostgreSQL.
fn query_i64(schema: &str, sql: &'static str) -> i64 {
    let pg = hearth_cluster::Pg::connect(&postgres_url(), schema).unwrap();
    let p = pg.clone();
    pg.block(async move { Ok(p.client().await?.query_one(sql, &[]).await?.get(0)) })
        .unwrap()
}

fn query_strings(schema: &str, sql: &'static str) -> Vec<String> {
    let pg = hearth_cluster::Pg::connect(&postgres_url(), schema).unwrap();
    let p = pg.clone();
    pg.block(async move {
        let rows = p.client().await?.query(sql, &[]).await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    })
    .unwrap()
}

fn keys_under(addr: &str, prefix: &str) -> Vec<String> {
    let reply = web_support::http(addr, "GET", &format!("/keys?prefix={prefix}"), &[], b"");
    assert_eq!(reply.status, 200, "{}", reply.text());
    serde_json::from_value(reply.json()).unwrap()
}

fn cron_workflows_project(dir: &Path) -> PathBuf {
    let project = dir.join("project");
    web_support::copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cluster-cron-workflows"),
        &project,
    );
    project
}

/// Three nodes schedule one `* * * * *` cron on their own clocks (real
/// time: `--test-clock` is refused in cluster mode, so the test waits for
/// the next minute, at most about 70 s); the handler logs its
/// `scheduledTime`, and each slot is logged once.
#[test]
fn a_cron_slot_fires_on_exactly_one_of_three_nodes() {
    if !postgres_reachable() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let project = cron_workflows_project(dir.path());
    let schema = format!("hearth_t_{}_{}", std::process::id(), free_port());
    let nodes: Vec<Node> = ["a", "b", "c"]
        .iter()
        .map(|n| start_node(dir.path(), &project, n, &schema))
        .collect();
    let addr = nodes[0].server.as_ref().unwrap().addr.clone();
    let deadline = Instant::now() + Duration::from_secs(75);
    while keys_under(&addr, "cron/").is_empty() {
        assert!(Instant::now() < deadline, "no slot fired within 75 s");
        std::thread::sleep(Duration::from_millis(250));
    }
    // Every node's loop has reached the slot by now (they look each second).
    std::thread::sleep(Duration::from_secs(4));
    let fired = keys_under(&addr, "cron/");
    let mut per_slot: std::collections::HashMap<String, usize> = Default::default();
    for key in &fired {
        *per_slot
            .entry(key.split('/').nth(1).unwrap().to_owned())
            .or_default() += 1;
    }
    for (slot, n) in &per_slot {
        assert_eq!(*n, 1, "slot {slot} fired {n} times: {fired:?}");
    }
    assert_eq!(
        query_i64(&schema, "SELECT count(*) FROM cron_cursors WHERE done"),
        1,
        "one cursor row, its slot done"
    );
    drop(nodes);
    drop_schema(&schema);
}

/// A Workflow of eight steps is started through node a; whichever node
/// runs it is SIGKILLed after three steps are journaled. Another node takes
/// the run over once the lease lapses, and finishes it: every step whose
/// result was journaled before the kill ran exactly once (each run of a
/// step leaves a KV key), and a step ran more than once only for attempts
/// the journal records as cut off (by the kill, or by a lease lost on a
/// starved machine).
#[test]
fn a_workflow_whose_node_is_killed_finishes_on_another_without_rerunning_steps() {
    if !postgres_reachable() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let project = cron_workflows_project(dir.path());
    let schema = format!("hearth_t_{}_{}", std::process::id(), free_port());
    let mut nodes: Vec<Node> = ["a", "b", "c"]
        .iter()
        .map(|n| start_node(dir.path(), &project, n, &schema))
        .collect();
    let addr = |n: &Node| n.server.as_ref().unwrap().addr.clone();
    let started = web_support::http(
        &addr(&nodes[0]),
        "GET",
        "/start?id=chain-1&steps=8&ms=600",
        &[],
        b"",
    );
    assert_eq!(started.status, 200, "{}", started.text());
    let deadline = Instant::now() + Duration::from_secs(60);
    while query_i64(
        &schema,
        "SELECT count(*) FROM wf_steps WHERE state = 'succeeded'",
    ) < 3
    {
        assert!(Instant::now() < deadline, "three steps never completed");
        std::thread::sleep(Duration::from_millis(50));
    }
    let runner = query_strings(&schema, "SELECT runner FROM wf_instances")
        .pop()
        .unwrap();
    let v = nodes.iter().position(|n| n.name == runner).unwrap();
    nodes[v].server.take().unwrap().kill9();
    let killed_at = Instant::now();
    let journaled = query_strings(
        &schema,
        "SELECT name FROM wf_steps WHERE state = 'succeeded' ORDER BY name",
    );
    assert!(journaled.len() >= 3 && journaled.len() < 8, "{journaled:?}");

    let survivor = nodes.iter().find(|n| n.server.is_some()).unwrap();
    let survivor_addr = addr(survivor);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut moved_after = None;
    loop {
        let status = web_support::http(&survivor_addr, "GET", "/status?id=chain-1", &[], b"");
        let status = status.json();
        if moved_after.is_none()
            && query_strings(&schema, "SELECT runner FROM wf_instances").pop()
                != Some(runner.clone())
        {
            moved_after = Some(killed_at.elapsed());
        }
        if status["status"] == "complete" {
            assert_eq!(status["output"]["sum"], 36, "{status}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not finished after the kill: {status}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let moved_after = moved_after.expect("another node took the run over");
    assert!(
        moved_after < Duration::from_secs(10),
        "taken over after {moved_after:?}, lease {LEASE_MS} ms"
    );
    let runs = keys_under(&survivor_addr, "ran/chain-1/");
    let attempts = query_strings(
        &schema,
        "SELECT name || '/' || attempt || '/' || coalesce(success::text, 'cut')
         FROM wf_attempts ORDER BY name, attempt",
    );
    for i in 1..=8 {
        let name = format!("step {i}");
        let ran = runs
            .iter()
            .filter(|k| k.split('/').nth(2) == Some(&i.to_string()))
            .count();
        let of_step: Vec<&String> = attempts
            .iter()
            .filter(|a| a.starts_with(&format!("{name}/")))
            .collect();
        assert!(ran >= 1, "{name} never ran: {runs:?}");
        assert_eq!(
            of_step.iter().filter(|a| a.ends_with("/true")).count(),
            1,
            "{name} succeeded once: {attempts:?}"
        );
        if journaled.contains(&name) {
            assert_eq!(
                ran, 1,
                "{name} was journaled before the kill yet ran {ran} times"
            );
        } else {
            // A step runs again only for an attempt the journal recorded
            // as cut off (its node died, or lost its lease, mid-attempt).
            assert!(
                ran <= of_step.len(),
                "{name} ran {ran} times for {} attempts: {attempts:?}",
                of_step.len()
            );
        }
    }
    drop(nodes);
    drop_schema(&schema);
}

/// The node holding the D1 database's lease, from PostgreSQL.
fn d1_owner(schema: &str) -> String {
    let pg = hearth_cluster::Pg::connect(&postgres_url(), schema).unwrap();
    let p = pg.clone();
    pg.block(async move {
        let row = p
            .client()
            .await?
            .query_one(
                "SELECT node_id FROM do_leases WHERE namespace = 'd1:' AND object_id = 'notes-db'",
                &[],
            )
            .await?;
        Ok(row.get::<_, String>(0))
    })
    .unwrap()
}

/// One D1 database through two nodes: writes on one are read on the
/// other, a batch is all or nothing wherever it is sent, a bookmark
/// handed out by one node is honoured by the other (and one naming a
/// write the database never made is refused there).
#[test]
fn nodes_share_one_d1_database() {
    if !postgres_reachable() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("project");
    web_support::copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cluster-d1"),
        &project,
    );
    let schema = format!("hearth_t_{}_{}", std::process::id(), free_port());
    let nodes: Vec<Node> = ["a", "b"]
        .iter()
        .map(|n| start_node(dir.path(), &project, n, &schema))
        .collect();
    let (a, b) = (
        nodes[0].server.as_ref().unwrap().addr.clone(),
        nodes[1].server.as_ref().unwrap().addr.clone(),
    );
    let get = |addr: &str, path: &str| web_support::http(addr, "GET", path, &[], b"");
    let ok = |addr: &str, path: &str| {
        let r = get(addr, path);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        r.json()
    };

    assert_eq!(ok(&a, "/setup")["count"], 1);
    let owner = d1_owner(&schema);
    assert_eq!(owner, "a", "the first node to use the database takes it");

    // Written through the owner, read through the other node, and back.
    let put = ok(&a, "/put?k=k1&v=one");
    let bookmark = put["bookmark"].as_str().unwrap().to_owned();
    let read = ok(&b, &format!("/get?k=k1&bookmark={bookmark}"));
    assert_eq!(read["v"], "one");
    assert!(read["bookmark"].as_str().unwrap() >= bookmark.as_str());
    let put_b = ok(&b, &format!("/put?k=k2&v=two&bookmark={bookmark}"));
    let newer = put_b["bookmark"].as_str().unwrap().to_owned();
    assert!(newer > bookmark, "{newer} after {bookmark}");
    assert_eq!(ok(&a, &format!("/get?k=k2&bookmark={newer}"))["v"], "two");
    assert_eq!(
        ok(&b, "/raw?k=k1"),
        serde_json::json!([["k", "v"], ["k1", "one"]])
    );
    assert_eq!(ok(&b, "/blob"), serde_json::json!([0, 1, 2, 255]));

    // A bookmark past every write the database made is refused, on
    // either node, with D1's session error.
    let ahead = format!("7fffffff-00000000-00000000-{}", &newer[27..]);
    for node in [&a, &b] {
        let r = get(node, &format!("/get?k=k1&bookmark={ahead}"));
        assert_eq!(r.status, 500, "{}", r.text());
        assert!(r.text().contains("D1_SESSION_ERROR"), "{}", r.text());
    }

    // A batch sent to the other node is one transaction on the owner.
    let r = get(&b, "/batch?keys=x1,x2,k1");
    assert_eq!(r.status, 500, "{}", r.text());
    assert!(
        r.text().contains("UNIQUE constraint failed"),
        "{}",
        r.text()
    );
    assert_eq!(ok(&a, "/keys"), serde_json::json!(["k1", "k2"]));
    assert_eq!(ok(&b, "/batch?keys=x1,x2"), serde_json::json!([1, 1]));
    assert_eq!(ok(&a, "/keys"), serde_json::json!(["k1", "k2", "x1", "x2"]));
    assert_eq!(d1_owner(&schema), "a", "calls on b never moved the lease");

    // Each node keeps copies only under its own lease: b has none.
    let copies = |node: &str| {
        walk(&dir.path().join(format!("data-{node}")))
            .into_iter()
            .filter(|p| p.to_string_lossy().contains("d1/cluster/"))
            .count()
    };
    assert!(copies("a") > 0);
    assert_eq!(copies("b"), 0, "the database is not copied to b");
    drop(nodes);
    drop_schema(&schema);
}

/// Concurrent D1 writers through three nodes, the node owning the
/// database SIGKILLed midway: another node takes the database over from
/// PostgreSQL and every acknowledged write is in it.
#[test]
fn every_acknowledged_d1_write_survives_the_owner_being_killed() {
    if !postgres_reachable() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("project");
    web_support::copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cluster-d1"),
        &project,
    );
    let schema = format!("hearth_t_{}_{}", std::process::id(), free_port());
    let mut nodes: Vec<Node> = ["a", "b", "c"]
        .iter()
        .map(|n| start_node(dir.path(), &project, n, &schema))
        .collect();
    let addrs: Vec<String> = nodes
        .iter()
        .map(|n| n.server.as_ref().unwrap().addr.clone())
        .collect();
    let setup = web_support::http(&addrs[1], "GET", "/setup", &[], b"");
    assert_eq!(setup.status, 200, "{}", setup.text());

    let load = Arc::new(Load {
        acked: Mutex::new(Vec::new()),
        attempted: Mutex::new(Vec::new()),
        live: RwLock::new(addrs.clone()),
        stop: AtomicBool::new(false),
    });
    let clients: Vec<_> = (0..4)
        .map(|t| {
            let load = load.clone();
            std::thread::spawn(move || client(load, t))
        })
        .collect();
    wait_for_acks(&load, 60, &nodes);

    let owner = d1_owner(&schema);
    let index = nodes.iter().position(|n| n.name == owner).unwrap();
    nodes[index].server.take().unwrap().kill9();
    load.live.write().unwrap().retain(|a| *a != addrs[index]);
    let before = load.acked.lock().unwrap().len();
    wait_for_acks(&load, before + 60, &nodes);
    load.stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.join().unwrap();
    }
    let new_owner = d1_owner(&schema);
    assert_ne!(new_owner, owner, "another node took the database");

    let survivor = &load.live.read().unwrap()[0];
    let keys = web_support::http(survivor, "GET", "/keys", &[], b"").json();
    let keys: HashSet<String> = keys
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect();
    let acked = load.acked.lock().unwrap().clone();
    let missing: Vec<&String> = acked.iter().filter(|t| !keys.contains(*t)).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged writes lost: {missing:?}",
        missing.len()
    );
    let attempted: HashSet<String> = load.attempted.lock().unwrap().iter().cloned().collect();
    assert!(
        keys.iter().all(|k| attempted.contains(k)),
        "no write invented"
    );
    drop(nodes);
    drop_schema(&schema);
}
