//! Cluster mode under a network partition. Three `hearth serve --cluster`
//! nodes run in network namespaces of their own (iproute2 `ip netns`), each
//! with two veth links to the host:
//! - a data link, into a bridge the nodes share: PostgreSQL and NATS (which
//!   listen on loopback only) are reached through a relay on the bridge's
//!   address, and the nodes reach each other's internal channel over it;
//! - a client link, which only the test's clients and the test's recorder
//!   of Workflow steps use.
//!
//! Taking a node's data link down partitions it from the backends and its
//! peers while clients still reach it. Concurrent clients drive one
//! Durable Object counter, one JetStream queue and a stream of Workflow
//! instances through every node while the counter's owner is SIGKILLed
//! (in the middle of a Workflow step) and then the next owner partitioned
//! (in the middle of a step, with a client of its own calling the counter
//! on it) and healed. Afterwards:
//! - every acknowledged increment is present exactly once, the count
//!   equals the increments stored, and no two runs of the object on
//!   different nodes overlap in time among the committed increments;
//! - every change PostgreSQL took into the object's log was appended under
//!   the lease the object had at that moment, tokens only grow, and the
//!   partitioned old owner did try to commit after losing its lease (its
//!   client's call in flight across the partition, or its next call once
//!   the healed node trusts its cached lease again) and was refused.
//!   Snapshots are taken every few commits and the heal waits for one by
//!   the new owner, so the old owner's next sequence number is free again
//!   and only the lease check can refuse its append;
//! - every queue message acknowledged to a producer was consumed;
//! - every Workflow instance completes; each step has exactly one
//!   successful attempt in the journal and it is the step's last, so no
//!   attempt began once the step had finished; the execution whose result
//!   was journaled ran exactly once; and every execution the recorder saw
//!   belongs to an attempt the journal began. A step "finished" when its
//!   result is in the journal; an execution that ended on a node that was
//!   then killed, cut off or superseded before the journal took its
//!   result did not finish, and its step runs again. (Such a cut-off
//!   execution may even start late: a node whose isolates were blocked by
//!   the partition ran one seconds after another node had finished the
//!   step, under an attempt begun before, so the recorder's times say
//!   nothing about attempts.)
//!
//! Needs root and `ip netns`, PostgreSQL (`HEARTH_TEST_POSTGRES_URL`) and
//! NATS with JetStream (`HEARTH_TEST_NATS_URL`); skipped without them
//! unless `HEARTH_TEST_REQUIRE_CLUSTER=1`, which makes it fail instead.

mod cluster_support;
mod web_support;

use cluster_support::*;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::Read;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use hearth_cluster::Pg;
use web_support::{Server, read_request, try_http};

const LEASE_MS: u64 = 1500;
const INTERNAL_PORT: u16 = 7800;
/// Connections one relay carries at once; more are refused.
const MAX_RELAYED: usize = 64;
/// A client gives up on a call after this long (a partitioned node may
/// never answer).
const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// The client of the node about to be cut off waits this long: its call
/// in flight across the partition is answered after the heal.
const PINNED_CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// Steps of each Workflow instance, and how long each execution works.
const WF_STEPS: usize = 3;
const WF_STEP_MS: u64 = 300;
/// A kill or a partition waits for a step execution on its node younger
/// than this, so it lands in the middle of the step.
const YOUNG_STEP: Duration = Duration::from_millis(100);

fn required() -> bool {
    std::env::var("HEARTH_TEST_REQUIRE_CLUSTER").as_deref() == Ok("1")
}

/// Prints why the test is skipped, or fails when the cluster is required.
fn skip(reason: &str) {
    assert!(
        !required(),
        "the partition test is required (HEARTH_TEST_REQUIRE_CLUSTER=1): {reason}"
    );
    eprintln!("skipped: {reason}; set HEARTH_TEST_REQUIRE_CLUSTER=1 to fail instead");
}

/// The socket address a backend URL names.
fn backend_addr(url: &str) -> SocketAddr {
    let u = url::Url::parse(url).unwrap();
    let host = u.host_str().unwrap().to_owned();
    let port = u.port().unwrap();
    (host.as_str(), port)
        .to_socket_addrs()
        .unwrap()
        .next()
        .unwrap()
}

/// `url` with its host and port replaced by `to`.
fn via(url: &str, to: SocketAddr) -> String {
    let mut u = url::Url::parse(url).unwrap();
    u.set_host(Some(&to.ip().to_string())).unwrap();
    u.set_port(Some(to.port())).unwrap();
    u.to_string()
}

/// Runs `ip <args>`; the error names the command and what it printed.
fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The namespaces, links and bridge of one run, named after the test
/// process so parallel runs do not meet; removed on drop, also when the
/// test panics or set-up fails halfway.
struct Net {
    subnet: u32,
    bridge: Option<String>,
    namespaces: Vec<String>,
    host_links: Vec<String>,
}

impl Net {
    fn create(nodes: usize) -> Result<Net, String> {
        let pid = std::process::id();
        let id = pid % 100_000;
        let mut net = Net {
            subnet: 100 + pid % 100,
            bridge: None,
            namespaces: Vec::new(),
            host_links: Vec::new(),
        };
        let bridge = format!("hpb{id}");
        ip(&["link", "add", &bridge, "type", "bridge"])?;
        net.bridge = Some(bridge.clone());
        let gateway = format!("{}/24", net.gateway());
        ip(&["addr", "add", &gateway, "dev", &bridge])?;
        ip(&["link", "set", &bridge, "up"])?;
        for i in 0..nodes {
            let ns = format!("hpn{id}-{i}");
            ip(&["netns", "add", &ns])?;
            net.namespaces.push(ns.clone());
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;

            let data = format!("hpd{id}-{i}");
            ip(&[
                "link", "add", &data, "type", "veth", "peer", "name", "eth0", "netns", &ns,
            ])?;
            net.host_links.push(data.clone());
            ip(&["link", "set", &data, "master", &bridge, "up"])?;
            let peer = format!("{}/24", net.peer_ip(i));
            ip(&["-n", &ns, "addr", "add", &peer, "dev", "eth0"])?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;

            let client = format!("hpc{id}-{i}");
            ip(&[
                "link", "add", &client, "type", "veth", "peer", "name", "eth1", "netns", &ns,
            ])?;
            net.host_links.push(client.clone());
            let host_side = format!("{}/30", net.client_host_ip(i));
            ip(&["addr", "add", &host_side, "dev", &client])?;
            ip(&["link", "set", &client, "up"])?;
            let node_side = format!("{}/30", net.client_ip(i));
            ip(&["-n", &ns, "addr", "add", &node_side, "dev", "eth1"])?;
            ip(&["-n", &ns, "link", "set", "eth1", "up"])?;
        }
        Ok(net)
    }

    /// The bridge's address: where the nodes reach the backends' relays.
    fn gateway(&self) -> String {
        format!("10.213.{}.1", self.subnet)
    }

    /// Node `i`'s address on the bridge (its internal channel).
    fn peer_ip(&self, i: usize) -> String {
        format!("10.213.{}.{}", self.subnet, 10 + i)
    }

    /// The host's address on node `i`'s client link: where the node
    /// reaches the recorder, also while it is cut off.
    fn client_host_ip(&self, i: usize) -> String {
        format!("10.214.{}.{}", self.subnet, 4 * i + 1)
    }

    /// Node `i`'s address on its client link (its public listener).
    fn client_ip(&self, i: usize) -> String {
        format!("10.214.{}.{}", self.subnet, 4 * i + 2)
    }

    /// Cuts node `i` off from the backends and its peers; clients still
    /// reach it.
    fn partition(&self, i: usize) {
        ip(&["link", "set", &self.host_links[2 * i], "down"]).unwrap();
    }

    fn heal(&self, i: usize) {
        ip(&["link", "set", &self.host_links[2 * i], "up"]).unwrap();
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        // Deleting a namespace deletes its ends of the veth pairs, and
        // with them the host ends.
        for ns in &self.namespaces {
            let _ = ip(&["netns", "del", ns]);
        }
        for link in &self.host_links {
            let _ = ip(&["link", "del", link]);
        }
        if let Some(bridge) = &self.bridge {
            let _ = ip(&["link", "del", bridge]);
        }
    }
}

/// A relayed connection's pipes still running (2, then 1, then 0) and
/// one of its sockets, kept to close it on drop.
type Relayed = Arc<Mutex<Vec<(Arc<AtomicUsize>, TcpStream)>>>;

/// Relays TCP connections from an address the namespaces reach to a
/// backend that listens on loopback only; at most [`MAX_RELAYED`] at once.
/// Dropping it closes every relayed connection.
struct Relay {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    open: Relayed,
}

impl Relay {
    fn start(listen_ip: &str, target: SocketAddr) -> std::io::Result<Relay> {
        let listener = TcpListener::bind((listen_ip, 0))?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let open: Relayed = Arc::default();
        let (stop2, open2) = (stop.clone(), open.clone());
        std::thread::spawn(move || {
            for inbound in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(inbound) = inbound else { continue };
                let mut open = open2.lock().unwrap();
                // Pipes still running: each connection counts 2 until done.
                open.retain(|(pipes, _)| pipes.load(Ordering::SeqCst) > 0);
                if open.len() >= MAX_RELAYED {
                    continue;
                }
                let Ok(outbound) = TcpStream::connect_timeout(&target, Duration::from_secs(5))
                else {
                    continue;
                };
                let pipes = Arc::new(AtomicUsize::new(2));
                for (from, to) in [
                    (inbound.try_clone(), outbound.try_clone()),
                    (outbound.try_clone(), inbound.try_clone()),
                ] {
                    let (Ok(from), Ok(to)) = (from, to) else {
                        continue;
                    };
                    let pipes = pipes.clone();
                    std::thread::spawn(move || {
                        pipe(from, to);
                        pipes.fetch_sub(1, Ordering::SeqCst);
                    });
                }
                open.push((pipes.clone(), inbound));
                open.push((pipes, outbound));
            }
        });
        Ok(Relay { addr, stop, open })
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    let _ = std::io::copy(&mut from, &mut to);
    let _ = to.shutdown(Shutdown::Write);
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for (_, s) in self.open.lock().unwrap().iter() {
            let _ = s.shutdown(Shutdown::Both);
        }
        // Wakes the accept loop so it sees `stop`.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

/// One report of a Workflow step's execution, stamped on arrival by the
/// recorder's clock.
#[derive(Debug, Clone)]
struct Report {
    phase: String,
    instance: String,
    step: usize,
    exec: String,
    node: String,
    at: Duration,
}

/// Takes the step executions' reports (`/start` and `/end`) on the host's
/// end of each node's client link, so a node cut off from its peers still
/// reports; one thread per connection, one request each.
struct Recorder {
    began: Instant,
    reports: Arc<Mutex<Vec<Report>>>,
    /// The recorder's URL for each node, by node index.
    urls: Vec<String>,
    stop: Arc<AtomicBool>,
    addrs: Vec<SocketAddr>,
}

impl Recorder {
    fn start(net: &Net, nodes: usize) -> Recorder {
        let began = Instant::now();
        let reports: Arc<Mutex<Vec<Report>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (mut urls, mut addrs) = (Vec::new(), Vec::new());
        for i in 0..nodes {
            let listener = TcpListener::bind((net.client_host_ip(i).as_str(), 0)).unwrap();
            let addr = listener.local_addr().unwrap();
            urls.push(format!("http://{addr}"));
            addrs.push(addr);
            let (reports, stop) = (reports.clone(), stop.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming().map_while(Result::ok) {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let reports = reports.clone();
                    std::thread::spawn(move || record(stream, began, &reports));
                }
            });
        }
        Recorder {
            began,
            reports,
            urls,
            stop,
            addrs,
        }
    }

    fn reports(&self) -> Vec<Report> {
        self.reports.lock().unwrap().clone()
    }

    /// Whether a step execution that started less than `young` ago is
    /// still running on `node`.
    fn running_on(&self, node: &str, young: Duration) -> bool {
        let now = self.began.elapsed();
        let reports = self.reports.lock().unwrap();
        let ended: HashSet<&str> = reports
            .iter()
            .filter(|r| r.phase == "end")
            .map(|r| r.exec.as_str())
            .collect();
        reports.iter().any(|r| {
            r.phase == "start"
                && r.node == node
                && now.saturating_sub(r.at) < young
                && !ended.contains(r.exec.as_str())
        })
    }
}

/// Answers one report and keeps it.
fn record(mut stream: TcpStream, began: Instant, reports: &Mutex<Vec<Report>>) {
    let Some(request) = read_request(&stream) else {
        return;
    };
    let at = began.elapsed();
    let url = url::Url::parse(&format!("http://recorder{}", request.path));
    let report = url.ok().and_then(|u| {
        let q: HashMap<String, String> = u.query_pairs().into_owned().collect();
        Some(Report {
            phase: u.path().trim_start_matches('/').to_owned(),
            instance: q.get("instance")?.clone(),
            step: q.get("step")?.parse().ok()?,
            exec: q.get("exec")?.clone(),
            node: q.get("node")?.clone(),
            at,
        })
    });
    let status = match report {
        Some(r) if r.phase == "start" || r.phase == "end" => {
            reports.lock().unwrap().push(r);
            "200 OK"
        }
        _ => "400 Bad Request",
    };
    let _ = std::io::Write::write_all(
        &mut stream,
        format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes(),
    );
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes each accept loop so it sees `stop`.
        for addr in &self.addrs {
            let _ = TcpStream::connect_timeout(addr, Duration::from_secs(1));
        }
    }
}

struct Node {
    name: String,
    server: Option<Server>,
    cluster_file: PathBuf,
}

impl Node {
    fn addr(&self) -> String {
        self.server.as_ref().unwrap().addr.clone()
    }
}

/// Starts node `i` in its namespace, with a project copy of its own whose
/// `NODE` variable names it and `RECORDER` is the recorder's URL on its
/// client link.
fn start_node(net: &Net, i: usize, dir: &Path, backends: &Backends, recorder: &Recorder) -> Node {
    let name = ["a", "b", "c"][i].to_owned();
    let project = dir.join(format!("project-{name}"));
    web_support::copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cluster-partition"),
        &project,
    );
    let manifest = project.join("wrangler.toml");
    let mut text = std::fs::read_to_string(&manifest).unwrap();
    text.push_str(&format!(
        "\n[vars]\nNODE = \"{name}\"\nRECORDER = \"{}\"\n",
        recorder.urls[i]
    ));
    std::fs::write(&manifest, text).unwrap();

    let cluster_file = dir.join(format!("{name}.cluster.toml"));
    std::fs::write(
        &cluster_file,
        format!(
            r#"node_id = "{name}"
advertise = "{peer}:{INTERNAL_PORT}"
secret = "{SECRET}"

[postgres]
url = "{pg}"
schema = "{schema}"

[nats]
url = "{nats}"
prefix = "{schema}"
ack_wait_ms = 2000

[durable_objects]
lease_ms = {LEASE_MS}
# A snapshot every few commits: it drops the changes it holds, so a stale
# owner's next sequence number is free again and only the lease check
# refuses its append. The test keeps its own copy of the log.
snapshot_after_bytes = 4096
"#,
            peer = net.peer_ip(i),
            pg = backends.postgres,
            nats = backends.nats,
            schema = backends.schema,
        ),
    )
    .unwrap();
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &net.namespaces[i]])
        .arg(env!("CARGO_BIN_EXE_hearth"))
        .arg("serve")
        .arg(&project)
        .arg("--data-dir")
        .arg(dir.join(format!("data-{name}")))
        .arg("--cluster")
        .arg(&cluster_file);
    let listen = format!("{}:0", net.client_ip(i));
    let server = Server::spawn_listening(cmd, &listen, Duration::from_secs(60));
    Node {
        name,
        server: Some(server),
        cluster_file,
    }
}

/// The backends as the nodes see them, through the relays.
struct Backends {
    postgres: String,
    nats: String,
    schema: String,
}

/// What the clients sent and which calls were acknowledged, and by whom.
#[derive(Default)]
struct Load {
    /// (tag, address that acknowledged it)
    acked: Mutex<Vec<(String, String)>>,
    attempted: Mutex<Vec<String>>,
    sent: Mutex<Vec<String>>,
    /// Workflow instances whose creation was acknowledged.
    instances: Mutex<Vec<String>>,
    live: RwLock<Vec<String>>,
    /// Holds the pinned client's next call (not the one in flight).
    hold_pinned: AtomicBool,
    /// Calls the pinned client started, and those that ended (answered
    /// or not).
    pinned_started: AtomicUsize,
    pinned_ended: AtomicUsize,
    stop: AtomicBool,
}

impl Load {
    fn acked_len(&self) -> usize {
        self.acked.lock().unwrap().len()
    }
    fn sent_len(&self) -> usize {
        self.sent.lock().unwrap().len()
    }
    fn acked_by(&self, addr: &str) -> usize {
        let acked = self.acked.lock().unwrap();
        acked.iter().filter(|(_, a)| a == addr).count()
    }
}

/// What a client does.
#[derive(Clone)]
enum Role {
    /// Increments the counter (`/add`) through the live nodes in turn.
    Counter,
    /// Produces to the queue (`/send`) through the live nodes in turn.
    Producer,
    /// Increments the counter through this one node, waiting as long as
    /// it takes.
    Pinned(String),
}

/// Client `t` in `role`, until the load stops.
fn client(load: Arc<Load>, t: usize, role: Role) {
    let mut k = 0usize;
    while !load.stop.load(Ordering::SeqCst) {
        if matches!(role, Role::Pinned(_)) && load.hold_pinned.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        }
        let (addr, timeout) = match &role {
            Role::Pinned(addr) => (addr.clone(), PINNED_CALL_TIMEOUT),
            _ => {
                let live = load.live.read().unwrap();
                (live[(t + k) % live.len()].clone(), CALL_TIMEOUT)
            }
        };
        let produce = matches!(role, Role::Producer);
        let (tag, path) = if produce {
            let tag = format!("p{t}-{k}");
            let path = format!("/send?tag={tag}");
            (tag, path)
        } else {
            let tag = format!("c{t}-{k}");
            load.attempted.lock().unwrap().push(tag.clone());
            let path = format!("/add?tag={tag}");
            (tag, path)
        };
        k += 1;
        let pinned = matches!(role, Role::Pinned(_));
        if pinned {
            load.pinned_started.fetch_add(1, Ordering::SeqCst);
        }
        let reply = try_http(&addr, "GET", &path, &[], b"", timeout);
        if pinned {
            load.pinned_ended.fetch_add(1, Ordering::SeqCst);
        }
        match reply {
            Ok(r) if r.status == 200 && produce => load.sent.lock().unwrap().push(tag),
            Ok(r) if r.status == 200 => load.acked.lock().unwrap().push((tag, addr)),
            // Not acknowledged: it may or may not have been applied.
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// Starts a Workflow instance every few hundred milliseconds through the
/// live nodes in turn, until the load stops.
fn creator(load: Arc<Load>) {
    let mut k = 0usize;
    while !load.stop.load(Ordering::SeqCst) {
        let addr = {
            let live = load.live.read().unwrap();
            live[k % live.len()].clone()
        };
        let id = format!("w{k}");
        let path = format!("/wf/start?id={id}&steps={WF_STEPS}&ms={WF_STEP_MS}");
        k += 1;
        if let Ok(r) = try_http(&addr, "GET", &path, &[], b"", CALL_TIMEOUT)
            && r.status == 200
        {
            load.instances.lock().unwrap().push(id);
        }
        // Pacing the load, not waiting for an outcome.
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Waits until `done` holds, failing with every node's log after `secs`.
fn wait_until(what: &str, secs: u64, nodes: &[Node], done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done() {
        if Instant::now() > deadline {
            let logs: Vec<String> = nodes
                .iter()
                .filter_map(|n| n.server.as_ref().map(|s| (n, s)))
                .map(|(n, s)| format!("--- {}:\n{}", n.name, s.log.lock().unwrap().join("\n")))
                .collect();
            panic!("timed out waiting for {what}\n{}", logs.join("\n"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One committed increment, as the object recorded it.
#[derive(Debug)]
struct Run {
    tag: String,
    n: u64,
    node: String,
    instance: String,
    start: i64,
    end: i64,
}

fn runs_of(dump: &serde_json::Value) -> Vec<Run> {
    let mut runs: Vec<Run> = dump["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| Run {
            tag: r["tag"].as_str().unwrap().to_owned(),
            n: r["n"].as_u64().unwrap(),
            node: r["node"].as_str().unwrap().to_owned(),
            instance: r["instance"].as_str().unwrap().to_owned(),
            start: r["start"].as_i64().unwrap(),
            end: r["end"].as_i64().unwrap(),
        })
        .collect();
    runs.sort_by_key(|r| r.n);
    runs
}

/// Committed runs of the object by different instances (different nodes,
/// or different activations on one node) that overlap in time.
fn overlapping(runs: &[Run]) -> Vec<String> {
    let mut found = Vec::new();
    for (i, a) in runs.iter().enumerate() {
        for b in &runs[i + 1..] {
            let other = a.node != b.node || a.instance != b.instance;
            if other && a.start < b.end && b.start < a.end {
                found.push(format!("{a:?} overlaps {b:?}"));
            }
        }
    }
    found
}

/// Runs `sql` in the test's schema.
fn pg_execute(pg: &Pg, sql: String) {
    let p = pg.clone();
    pg.block(async move {
        p.client().await?.batch_execute(&sql).await?;
        Ok(())
    })
    .unwrap()
}

/// Keeps, through a trigger of the test's own, a copy of every change
/// PostgreSQL takes into `do_changes` with the object's lease at that
/// moment: snapshots drop the changes they hold, and the checks need the
/// whole history. The append's statement holds the lease row `FOR SHARE`,
/// so the lease the trigger reads is the one the append was judged by.
fn audit_appends(pg: &Pg) {
    let schema = pg.schema();
    pg_execute(
        pg,
        format!(
            "CREATE TABLE {schema}.tp_appends (
                 id          BIGSERIAL PRIMARY KEY,
                 seq         BIGINT NOT NULL,
                 token       BIGINT NOT NULL,
                 node_id     TEXT NOT NULL,
                 lease_token BIGINT,
                 lease_node  TEXT);
             CREATE FUNCTION {schema}.tp_audit() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
                 INSERT INTO {schema}.tp_appends (seq, token, node_id, lease_token, lease_node)
                 SELECT NEW.seq, NEW.token, NEW.node_id, l.token, l.node_id
                 FROM (SELECT 1) one LEFT JOIN {schema}.do_leases l
                   ON l.namespace = NEW.namespace AND l.object_id = NEW.object_id;
                 RETURN NULL;
             END $$;
             CREATE TRIGGER tp_audit AFTER INSERT ON {schema}.do_changes
                 FOR EACH ROW EXECUTE FUNCTION {schema}.tp_audit();"
        ),
    );
}

/// One change PostgreSQL took, with the lease of the object then.
#[derive(Debug)]
struct Append {
    seq: i64,
    token: i64,
    node: String,
    lease: Option<(i64, String)>,
}

/// Every change PostgreSQL took into the log, in the order it took them.
fn appends(pg: &Pg) -> Vec<Append> {
    let p = pg.clone();
    pg.block(async move {
        let c = p.client().await?;
        Ok(c.query(
            "SELECT seq, token, node_id, lease_token, lease_node FROM tp_appends ORDER BY id",
            &[],
        )
        .await?
        .iter()
        .map(|r| Append {
            seq: r.get(0),
            token: r.get(1),
            node: r.get(2),
            lease: r
                .get::<_, Option<i64>>(3)
                .zip(r.get::<_, Option<String>>(4)),
        })
        .collect())
    })
    .unwrap()
}

/// Whether the object's newest snapshot was made under its current lease,
/// by a node other than `not`, and holds every change number `not` could
/// append next.
fn snapshot_by_new_owner(pg: &Pg, not: &str) -> bool {
    let (p, not) = (pg.clone(), not.to_owned());
    pg.block(async move {
        let c = p.client().await?;
        let row = c
            .query_one(
                "SELECT count(*) FROM do_snapshots s JOIN do_leases l
                   ON l.namespace = s.namespace AND l.object_id = s.object_id
                 WHERE s.token = l.token AND l.node_id <> $1
                   AND s.seq > (SELECT coalesce(max(seq), 0) FROM tp_appends WHERE node_id = $1)",
                &[&not],
            )
            .await?;
        Ok(row.get::<_, i64>(0) > 0)
    })
    .unwrap()
}

/// The journal's rows of Workflow instance `id`, for a failure's message.
fn journal_of(pg: &Pg, id: &str) -> Vec<String> {
    let (p, id) = (pg.clone(), id.to_owned());
    pg.block(async move {
        let c = p.client().await?;
        let mut out = Vec::new();
        for r in c
            .query(
                "SELECT status, lease, lease_expires_ms, runner FROM wf_instances WHERE id = $1",
                &[&id],
            )
            .await?
        {
            let (status, lease): (String, i64) = (r.get(0), r.get(1));
            let (expires, runner): (Option<i64>, Option<String>) = (r.get(2), r.get(3));
            out.push(format!(
                "{status} lease {lease} until {expires:?} by {runner:?}"
            ));
        }
        for r in c
            .query(
                "SELECT name, attempt, started_ms, ended_ms, success FROM wf_attempts
                 WHERE instance = $1 ORDER BY name, attempt",
                &[&id],
            )
            .await?
        {
            let (name, attempt, started): (String, i64, i64) = (r.get(0), r.get(1), r.get(2));
            let (ended, ok): (Option<i64>, Option<bool>) = (r.get(3), r.get(4));
            out.push(format!("{name} #{attempt} {started}..{ended:?} {ok:?}"));
        }
        Ok(out)
    })
    .unwrap()
}

/// Every `step.do` attempt in the journal: (instance, step name) →
/// (attempt, whether it succeeded; `None` while unfinished).
type Attempts = BTreeMap<(String, String), Vec<(i64, Option<bool>)>>;

fn step_attempts(pg: &Pg) -> Attempts {
    let p = pg.clone();
    pg.block(async move {
        let c = p.client().await?;
        let mut out = Attempts::new();
        for r in c
            .query(
                "SELECT instance, name, attempt, success FROM wf_attempts ORDER BY attempt",
                &[],
            )
            .await?
        {
            out.entry((r.get(0), r.get(1)))
                .or_default()
                .push((r.get(2), r.get(3)));
        }
        Ok(out)
    })
    .unwrap()
}

/// When node `node` last heartbeat, by PostgreSQL's clock (seconds).
fn heartbeat_at(pg: &Pg, node: &str) -> f64 {
    let (p, node) = (pg.clone(), node.to_owned());
    pg.block(async move {
        let c = p.client().await?;
        let row = c
            .query_one(
                "SELECT extract(epoch FROM heartbeat_at)::float8 FROM cluster_nodes WHERE node_id = $1",
                &[&node],
            )
            .await?;
        Ok(row.get(0))
    })
    .unwrap()
}

/// Durable Object leases node `addr` found lost to a newer owner (a
/// commit of its refused), from its metrics.
fn leases_lost(addr: &str) -> u64 {
    let Ok(r) = try_http(addr, "GET", "/__hearth/metrics", &[], b"", CALL_TIMEOUT) else {
        return 0;
    };
    r.text()
        .lines()
        .find(|l| l.starts_with("hearth_cluster_leases_total") && l.contains("event=\"lost\""))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// `items` with runs of equal neighbours collapsed to one.
fn collapsed<T: PartialEq + Clone>(items: impl IntoIterator<Item = T>) -> Vec<T> {
    let mut out: Vec<T> = Vec::new();
    for item in items {
        if out.last() != Some(&item) {
            out.push(item);
        }
    }
    out
}

fn is_subsequence(small: &[String], big: &[String]) -> bool {
    let mut rest = big.iter();
    small.iter().all(|s| rest.any(|b| b == s))
}

/// Deletes the test's streams and schema however the test ends.
struct Cleanup(String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        drop_schema(&self.0);
        let Ok(nats) = hearth_cluster::Nats::connect(&nats_url(), "hearth_probe") else {
            return;
        };
        let js = nats.jetstream().clone();
        let start = format!("{}_", self.0);
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
}

/// The backends answer and this process may make namespaces; the reason
/// otherwise.
fn preconditions() -> Result<Net, String> {
    hearth_cluster::Pg::connect(&postgres_url(), "hearth_probe")
        .map_err(|e| format!("PostgreSQL at {} unreachable: {e}", postgres_url()))?;
    hearth_cluster::Nats::connect(&nats_url(), "hearth_probe")
        .map_err(|e| format!("NATS JetStream at {} unreachable: {e}", nats_url()))?;
    let mut uid = String::new();
    std::fs::File::open("/proc/self/status")
        .and_then(|mut f| f.read_to_string(&mut uid))
        .map_err(|e| format!("cannot read /proc/self/status: {e}"))?;
    let root = uid
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        == Some("0");
    if !root {
        return Err("network namespaces need root".into());
    }
    Net::create(3).map_err(|e| format!("cannot build the test's network namespaces: {e}"))
}

#[test]
fn a_killed_node_and_a_partitioned_one_lose_no_acknowledged_work() {
    let began = Instant::now();
    let net = match preconditions() {
        Ok(net) => net,
        Err(reason) => return skip(&reason),
    };
    let schema = format!("hearth_tp_{}", std::process::id());
    let _cleanup = Cleanup(schema.clone());
    let pg = Pg::connect(&postgres_url(), &schema).unwrap();
    let pg_relay = Relay::start(&net.gateway(), backend_addr(&postgres_url())).unwrap();
    let nats_relay = Relay::start(&net.gateway(), backend_addr(&nats_url())).unwrap();
    let backends = Backends {
        postgres: via(&postgres_url(), pg_relay.addr),
        nats: via(&nats_url(), nats_relay.addr),
        schema: schema.clone(),
    };
    let recorder = Recorder::start(&net, 3);
    // What happened when, by the recorder's clock, for failure messages.
    let timeline: Mutex<Vec<(Duration, String)>> = Mutex::default();
    let event = |what: String| {
        let at = recorder.began.elapsed();
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis();
        eprintln!("{at:.1?}: {what}");
        timeline
            .lock()
            .unwrap()
            .push((at, format!("{what} (wall {wall} ms)")));
    };
    let dir = tempfile::tempdir().unwrap();
    // Started one after another: the first creates the cluster's tables.
    let mut nodes: Vec<Node> = (0..3)
        .map(|i| start_node(&net, i, dir.path(), &backends, &recorder))
        .collect();
    audit_appends(&pg);

    let load = Arc::new(Load::default());
    *load.live.write().unwrap() = nodes.iter().map(Node::addr).collect();
    let mut clients: Vec<_> = (0..8)
        .map(|t| {
            let load = load.clone();
            let role = if t >= 6 {
                Role::Producer
            } else {
                Role::Counter
            };
            std::thread::spawn(move || client(load, t, role))
        })
        .collect();
    clients.push({
        let load = load.clone();
        std::thread::spawn(move || creator(load))
    });
    wait_until("first increments and messages", 60, &nodes, || {
        load.acked_len() >= 30 && load.sent_len() >= 30
    });

    // SIGKILL the counter's owner in the middle of a Workflow step; its
    // clients move to the others.
    let victim = owner(&nodes[0].cluster_file);
    let v = nodes.iter().position(|n| n.name == victim).unwrap();
    let victim_addr = nodes[v].addr();
    wait_until("a Workflow step running on the owner", 30, &nodes, || {
        recorder.running_on(&victim, YOUNG_STEP)
    });
    load.live.write().unwrap().retain(|a| *a != victim_addr);
    nodes[v].server.take().unwrap().kill9();
    event(format!("{victim} killed"));
    let at_kill = load.acked_len();
    wait_until("increments after the kill", 60, &nodes, || {
        load.acked_len() >= at_kill + 30
    });

    // Partition the new owner from PostgreSQL, NATS and its peers, in the
    // middle of a Workflow step and while a client of its own keeps
    // calling the counter on it: that call's commit is in flight across
    // the partition, and is judged by PostgreSQL only after the heal.
    // The other clients leave it; the third node must take the object over.
    let cut = owner(&nodes[(v + 1) % 3].cluster_file);
    let p = nodes.iter().position(|n| n.name == cut).unwrap();
    let cut_addr = nodes[p].addr();
    clients.push({
        let (load, addr) = (load.clone(), cut_addr.clone());
        std::thread::spawn(move || client(load, 100, Role::Pinned(addr)))
    });
    let pinned_before = load.acked_by(&cut_addr);
    wait_until(
        "calls and a Workflow step on the node to cut",
        30,
        &nodes,
        || load.acked_by(&cut_addr) >= pinned_before + 3 && recorder.running_on(&cut, YOUNG_STEP),
    );
    load.live.write().unwrap().retain(|a| *a != cut_addr);
    load.hold_pinned.store(true, Ordering::SeqCst);
    net.partition(p);
    event(format!("{cut} cut off"));
    let at_partition = load.acked_len();
    // Until the new owner has taken a snapshot: the changes the cut node
    // would append next are dropped, their numbers free again.
    wait_until(
        "increments and a snapshot during the partition",
        60,
        &nodes,
        || load.acked_len() >= at_partition + 20 && snapshot_by_new_owner(&pg, &cut),
    );
    let third = nodes
        .iter()
        .find(|n| n.server.is_some() && n.name != cut)
        .unwrap();
    assert_eq!(
        owner(&third.cluster_file),
        third.name,
        "the node still connected took the object over"
    );
    let cut_acks_while_cut = load.acked.lock().unwrap()[at_partition..]
        .iter()
        .filter(|(_, a)| *a == cut_addr)
        .count();

    net.heal(p);
    event(format!("{cut} healed"));
    // The other clients come back only after the pinned client's next
    // call: a call reaching the node before it heartbeats afresh makes it
    // drop the cached lease.
    // The cut node still caches its lease. Its client calls again once
    // the node heartbeats afresh, so the node trusts that cache and
    // commits under its old lease, unless its call in flight was already
    // refused. The first heartbeat to land may have started before the
    // heal; the second did not, and the node has seen its answer once it
    // sent the third.
    let beats = Mutex::new(vec![heartbeat_at(&pg, &cut)]);
    wait_until("the healed node heartbeating afresh", 30, &nodes, || {
        let mut beats = beats.lock().unwrap();
        let at = heartbeat_at(&pg, &cut);
        if beats.last() != Some(&at) {
            beats.push(at);
        }
        beats.len() >= 4
    });
    let started = load.pinned_started.load(Ordering::SeqCst);
    load.hold_pinned.store(false, Ordering::SeqCst);
    wait_until(
        "the pinned client's call after the heal",
        90,
        &nodes,
        || load.pinned_ended.load(Ordering::SeqCst) > started,
    );
    load.live.write().unwrap().push(cut_addr.clone());
    let (at_heal, sent_at_heal) = (load.acked_len(), load.sent_len());
    wait_until("increments via the healed node", 60, &nodes, || {
        let acked = load.acked.lock().unwrap();
        acked[at_heal..]
            .iter()
            .filter(|(_, a)| *a == cut_addr)
            .count()
            >= 5
            && acked.len() >= at_heal + 30
            && load.sent_len() >= sent_at_heal + 20
    });
    // The old owner tried to commit after losing the lease, and the log
    // refused it (the node counts the lease as lost).
    wait_until("the old owner's late commit refused", 60, &nodes, || {
        leases_lost(&cut_addr) >= 1
    });
    load.stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.join().unwrap();
    }

    let survivor = third.addr();
    let counter = check_counter(&load, &survivor, &pg);
    let steps = check_workflows(
        &load,
        &recorder,
        &survivor,
        &nodes,
        [&victim, &cut],
        &pg,
        &timeline,
    );

    // The queue: every message acknowledged to a producer was consumed.
    let sent: HashSet<String> = load.sent.lock().unwrap().iter().cloned().collect();
    wait_until("every acknowledged message consumed", 60, &nodes, || {
        let seen = web_support::http(&survivor, "GET", "/seen", &[], b"").json();
        let seen: HashSet<&str> = seen
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        sent.iter().all(|t| seen.contains(t.as_str()))
    });

    let s = status(&third.cluster_file);
    let dead = s["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["node_id"] == victim.as_str())
        .unwrap();
    assert_eq!(dead["live"], false, "{s}");
    eprintln!(
        "{counter}; {victim} killed, {cut} partitioned ({cut_acks_while_cut} acknowledged by it while cut off), \
         then healed; {} messages acknowledged to producers and consumed; {steps}; {:.1} s",
        sent.len(),
        began.elapsed().as_secs_f64()
    );
    drop(nodes);
}

/// The counter: every acknowledged increment exactly once, committed runs
/// never overlapping across instances, and every change in the log
/// appended under the lease of its moment. A summary for the report.
fn check_counter(load: &Load, survivor: &str, pg: &Pg) -> String {
    let dump = web_support::http(survivor, "GET", "/dump", &[], b"").json();
    let n = dump["n"].as_u64().unwrap();
    let runs = runs_of(&dump);
    let acked: Vec<String> = load
        .acked
        .lock()
        .unwrap()
        .iter()
        .map(|(t, _)| t.clone())
        .collect();
    let stored: HashSet<&str> = runs.iter().map(|r| r.tag.as_str()).collect();
    let attempted: HashSet<String> = load.attempted.lock().unwrap().iter().cloned().collect();
    assert_eq!(stored.len(), runs.len(), "a tag stored twice");
    assert_eq!(
        runs.iter().map(|r| r.n).collect::<Vec<_>>(),
        (1..=n).collect::<Vec<_>>(),
        "each count from 1 to {n} was reached by exactly one increment"
    );
    let lost: Vec<&String> = acked
        .iter()
        .filter(|t| !stored.contains(t.as_str()))
        .collect();
    assert!(lost.is_empty(), "acknowledged increments lost: {lost:?}");
    for r in &runs {
        assert!(attempted.contains(&r.tag), "{} was never sent", r.tag);
    }
    // Applied without acknowledgement: calls that failed or timed out on
    // the client (a stored tag was sent, and every acknowledged one is
    // stored, so these are the rest).
    let unacked = n as usize - acked.len();

    // No two instances ran the object at once in the committed history.
    let overlaps = overlapping(&runs);
    assert!(
        overlaps.is_empty(),
        "{} overlaps, e.g.:\n{}",
        overlaps.len(),
        overlaps[..overlaps.len().min(5)].join("\n")
    );
    // Every change PostgreSQL took was appended under the object's lease
    // of that moment, so lease tokens only grow in the order of the
    // appends, each belongs to one node, and the nodes that committed
    // increments did so in that order.
    let log = appends(pg);
    let stale: Vec<String> = log
        .iter()
        .filter(|a| a.lease.as_ref() != Some(&(a.token, a.node.clone())))
        .map(|a| {
            format!(
                "change {} by {} under token {}, lease then {:?}",
                a.seq, a.node, a.token, a.lease
            )
        })
        .collect();
    assert!(
        stale.is_empty(),
        "changes appended under a lease the object no longer had:\n{}",
        stale.join("\n")
    );
    let mut owner_of: BTreeMap<i64, String> = BTreeMap::new();
    for w in log.windows(2) {
        assert!(
            w[0].token <= w[1].token,
            "token {} appended after {}",
            w[1].token,
            w[0].token
        );
    }
    for a in &log {
        let first = owner_of.entry(a.token).or_insert_with(|| a.node.clone());
        assert_eq!(*first, a.node, "token {} used by two nodes", a.token);
    }
    let leases = collapsed(log.iter().map(|a| a.node.clone()));
    let runs_by_node = collapsed(runs.iter().map(|r| r.node.clone()));
    assert!(
        is_subsequence(&runs_by_node, &leases),
        "increments committed by {runs_by_node:?}, leases in the log {leases:?}"
    );
    assert!(
        runs_by_node.len() >= 3,
        "the object ran on three nodes in turn: {runs_by_node:?}"
    );
    format!(
        "{} increments sent, {} acknowledged, {n} applied ({unacked} without an answer), \
         {} changes appended, leases {owner_of:?}",
        attempted.len(),
        acked.len(),
        log.len()
    )
}

/// The Workflows: every instance completes, each step's one successful
/// attempt is its last, its journaled execution ran once, and no step ran
/// more often than the journal began attempts of it. `cut_off` are the
/// nodes killed and partitioned mid-step: a step each was running ran
/// again elsewhere. A summary for the report.
fn check_workflows(
    load: &Load,
    recorder: &Recorder,
    survivor: &str,
    nodes: &[Node],
    cut_off: [&str; 2],
    pg: &Pg,
    timeline: &Mutex<Vec<(Duration, String)>>,
) -> String {
    // Acknowledged, or created without an answer and then run.
    let mut instances: BTreeSet<String> = load.instances.lock().unwrap().iter().cloned().collect();
    instances.extend(recorder.reports().into_iter().map(|r| r.instance));
    let outputs: Mutex<BTreeMap<String, serde_json::Value>> = Mutex::default();
    wait_until("every Workflow instance complete", 60, nodes, || {
        let mut outputs = outputs.lock().unwrap();
        for id in &instances {
            if outputs.contains_key(id) {
                continue;
            }
            let path = format!("/wf/status?id={id}");
            let reply = try_http(survivor, "GET", &path, &[], b"", CALL_TIMEOUT);
            let Some(status) = reply
                .ok()
                .filter(|r| r.status == 200)
                .and_then(|r| serde_json::from_str::<serde_json::Value>(&r.text()).ok())
            else {
                continue;
            };
            assert_ne!(status["status"], "errored", "{id}: {status}");
            if status["status"] == "complete" {
                outputs.insert(id.clone(), status["output"].clone());
            }
        }
        outputs.len() == instances.len()
    });
    let outputs = outputs.into_inner().unwrap();

    // (instance, step) → exec → (node, starts, ends)
    type Execs = BTreeMap<String, (String, Vec<Duration>, Vec<Duration>)>;
    let mut by_step: BTreeMap<(String, usize), Execs> = BTreeMap::new();
    for r in recorder.reports() {
        let e = by_step
            .entry((r.instance, r.step))
            .or_default()
            .entry(r.exec)
            .or_insert_with(|| (r.node, Vec::new(), Vec::new()));
        match r.phase.as_str() {
            "start" => e.1.push(r.at),
            _ => e.2.push(r.at),
        }
    }
    let attempts = step_attempts(pg);
    let (mut reruns, mut rerun_after) = (0, [0usize; 2]);
    for (id, output) in &outputs {
        let finished = output
            .as_array()
            .unwrap_or_else(|| panic!("{id}: {output}"));
        assert_eq!(finished.len(), WF_STEPS, "{id}: {output}");
        for (i, f) in finished.iter().enumerate() {
            let step = i + 1;
            let context = || {
                format!(
                    "events {:?}\njournal {:?}",
                    timeline.lock().unwrap(),
                    journal_of(pg, id)
                )
            };
            // The journal: one attempt succeeded, and it is the last one,
            // so no attempt began once the step had finished.
            let tried = attempts
                .get(&(id.clone(), format!("step {step}")))
                .map(Vec::as_slice)
                .unwrap_or_default();
            let succeeded: Vec<i64> = tried
                .iter()
                .filter(|(_, ok)| *ok == Some(true))
                .map(|(n, _)| *n)
                .collect();
            let last = tried.iter().map(|(n, _)| *n).max();
            assert!(
                succeeded.len() == 1 && last == succeeded.first().copied(),
                "{id} step {step}: attempts {tried:?}\n{}",
                context()
            );
            // The executions: the one whose result was journaled ran once,
            // and every execution belongs to an attempt the journal began
            // (the others were cut off, or failed, before the step
            // finished).
            let exec = f["exec"].as_str().unwrap();
            let execs = by_step.get(&(id.clone(), step));
            let Some((node, starts, ends)) = execs.and_then(|e| e.get(exec)) else {
                panic!("{id} step {step}: the journaled execution {exec} never reported");
            };
            assert_eq!(f["node"], node.as_str(), "{id} step {step}");
            assert!(
                starts.len() == 1 && ends.len() == 1,
                "{id} step {step}: the journaled execution {exec} ran {} times",
                starts.len()
            );
            let execs = execs.unwrap();
            assert!(
                execs.len() <= tried.len(),
                "{id} step {step} ran {} times for {} attempts: {execs:?}\n{}",
                execs.len(),
                tried.len(),
                context()
            );
            for (on, _, _) in execs.iter().filter(|(e, _)| *e != exec).map(|(_, v)| v) {
                for (k, n) in cut_off.iter().enumerate() {
                    if on == n && node != n {
                        rerun_after[k] += 1;
                    }
                }
            }
            reruns += execs.len() - 1;
        }
    }
    assert!(
        rerun_after[0] > 0,
        "a step cut off by the kill of {} ran again elsewhere",
        cut_off[0]
    );
    assert!(
        rerun_after[1] > 0,
        "a step cut off by the partition of {} ran again elsewhere",
        cut_off[1]
    );
    format!(
        "{} Workflow instances complete, {} steps, {reruns} executions that did not finish \
         ({} on the killed node, {} on the partitioned one)",
        outputs.len(),
        outputs.len() * WF_STEPS,
        rerun_after[0],
        rerun_after[1]
    )
}
