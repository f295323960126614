//! Cluster mode under a network partition. Three `hearth serve --cluster`
//! nodes run in network namespaces of their own (iproute2 `ip netns`), each
//! with two veth links to the host:
//! - a data link, into a bridge the nodes share: PostgreSQL and NATS (which
//!   listen on loopback only) are reached through a relay on the bridge's
//!   address, and the nodes reach each other's internal channel over it;
//! - a client link, which only the test's clients use.
//!
//! Taking a node's data link down partitions it from the backends and its
//! peers while clients still reach it. Concurrent clients drive one
//! Durable Object counter and one JetStream queue through every node while
//! the counter's owner is SIGKILLed and then the next owner partitioned and
//! healed. Afterwards: every acknowledged increment is present exactly
//! once, the count equals the increments stored, no two runs of the object
//! on different nodes overlap in time among the committed increments, the
//! lease tokens in the change log in PostgreSQL only grow, and every queue
//! message acknowledged to a producer was consumed.
//!
//! Needs root and `ip netns`, PostgreSQL (`HEARTH_TEST_POSTGRES_URL`) and
//! NATS with JetStream (`HEARTH_TEST_NATS_URL`); skipped without them
//! unless `HEARTH_TEST_REQUIRE_CLUSTER=1`, which makes it fail instead.

mod web_support;

use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use web_support::{Server, try_http};

const SECRET: &str = "cluster-test-secret-of-at-least-32-bytes";
const LEASE_MS: u64 = 1500;
const INTERNAL_PORT: u16 = 7800;
/// Connections one relay carries at once; more are refused.
const MAX_RELAYED: usize = 64;
/// A client gives up on a call after this long (a partitioned node may
/// never answer).
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

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

fn postgres_url() -> String {
    std::env::var("HEARTH_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

fn nats_url() -> String {
    std::env::var("HEARTH_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
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
            let host_side = format!("10.214.{}.{}/30", net.subnet, 4 * i + 1);
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
/// `NODE` variable names it.
fn start_node(net: &Net, i: usize, dir: &Path, backends: &Backends) -> Node {
    let name = ["a", "b", "c"][i].to_owned();
    let project = dir.join(format!("project-{name}"));
    web_support::copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cluster-partition"),
        &project,
    );
    let manifest = project.join("wrangler.toml");
    let mut text = std::fs::read_to_string(&manifest).unwrap();
    text.push_str(&format!("\n[vars]\nNODE = \"{name}\"\n"));
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
# No snapshot during the test: the change log keeps the whole history.
snapshot_after_bytes = 1073741824
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

fn status(cluster_file: &Path) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["cluster", "status", "--json", "--cluster"])
        .arg(cluster_file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "hearth cluster status failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The node that holds the counter's lease.
fn owner(cluster_file: &Path) -> String {
    let s = status(cluster_file);
    let holders: Vec<String> = s["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["durable_objects"].as_i64() == Some(1))
        .map(|n| n["node_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(holders.len(), 1, "one node holds the object: {s}");
    holders[0].clone()
}

/// What the clients sent and which calls were acknowledged, and by whom.
#[derive(Default)]
struct Load {
    /// (tag, address that acknowledged it)
    acked: Mutex<Vec<(String, String)>>,
    attempted: Mutex<Vec<String>>,
    sent: Mutex<Vec<String>>,
    live: RwLock<Vec<String>>,
    stop: AtomicBool,
}

impl Load {
    fn acked_len(&self) -> usize {
        self.acked.lock().unwrap().len()
    }
    fn sent_len(&self) -> usize {
        self.sent.lock().unwrap().len()
    }
}

/// Client `t`: increments the counter (`/add`), or produces to the queue
/// (`/send`) when `produce`, through the live nodes in turn.
fn client(load: Arc<Load>, t: usize, produce: bool) {
    let mut k = 0usize;
    while !load.stop.load(Ordering::SeqCst) {
        let addr = {
            let live = load.live.read().unwrap();
            live[(t + k) % live.len()].clone()
        };
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
        match try_http(&addr, "GET", &path, &[], b"", CALL_TIMEOUT) {
            Ok(r) if r.status == 200 && produce => load.sent.lock().unwrap().push(tag),
            Ok(r) if r.status == 200 => load.acked.lock().unwrap().push((tag, addr)),
            // Not acknowledged: it may or may not have been applied.
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
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

/// The change log in PostgreSQL, in commit order: (token, node).
fn change_log(schema: &str) -> Vec<(i64, String)> {
    let pg = hearth_cluster::Pg::connect(&postgres_url(), schema).unwrap();
    let p = pg.clone();
    pg.block(async move {
        let c = p.client().await?;
        Ok(
            c.query("SELECT token, node_id FROM do_changes ORDER BY seq", &[])
                .await?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect(),
        )
    })
    .unwrap()
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

fn drop_schema(schema: &str) {
    if let Ok(pg) = hearth_cluster::Pg::connect(&postgres_url(), "hearth_probe") {
        let schema = schema.to_owned();
        let _ = pg.block({
            let pg = pg.clone();
            async move {
                let c = pg.client().await?;
                c.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                    .await?;
                Ok(())
            }
        });
    }
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
    let pg_relay = Relay::start(&net.gateway(), backend_addr(&postgres_url())).unwrap();
    let nats_relay = Relay::start(&net.gateway(), backend_addr(&nats_url())).unwrap();
    let backends = Backends {
        postgres: via(&postgres_url(), pg_relay.addr),
        nats: via(&nats_url(), nats_relay.addr),
        schema: schema.clone(),
    };
    let dir = tempfile::tempdir().unwrap();
    // Started one after another: the first creates the cluster's tables.
    let mut nodes: Vec<Node> = (0..3)
        .map(|i| start_node(&net, i, dir.path(), &backends))
        .collect();

    let load = Arc::new(Load::default());
    *load.live.write().unwrap() = nodes.iter().map(Node::addr).collect();
    let clients: Vec<_> = (0..8)
        .map(|t| {
            let load = load.clone();
            std::thread::spawn(move || client(load, t, t >= 6))
        })
        .collect();
    wait_until("first increments and messages", 60, &nodes, || {
        load.acked_len() >= 30 && load.sent_len() >= 30
    });

    // SIGKILL the counter's owner; its clients move to the others.
    let victim = owner(&nodes[0].cluster_file);
    let v = nodes.iter().position(|n| n.name == victim).unwrap();
    let victim_addr = nodes[v].addr();
    load.live.write().unwrap().retain(|a| *a != victim_addr);
    nodes[v].server.take().unwrap().kill9();
    let at_kill = load.acked_len();
    wait_until("increments after the kill", 60, &nodes, || {
        load.acked_len() >= at_kill + 30
    });

    // Partition the new owner from PostgreSQL, NATS and its peers; clients
    // still send to it (each such call waits out CALL_TIMEOUT), and the
    // third node must take the object over.
    let cut = owner(&nodes[(v + 1) % 3].cluster_file);
    let p = nodes.iter().position(|n| n.name == cut).unwrap();
    let cut_addr = nodes[p].addr();
    net.partition(p);
    let at_partition = load.acked_len();
    wait_until("increments during the partition", 60, &nodes, || {
        load.acked_len() >= at_partition + 20
    });
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
    load.stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.join().unwrap();
    }

    // The counter: every acknowledged increment exactly once.
    let survivor = third.addr();
    let dump = web_support::http(&survivor, "GET", "/dump", &[], b"").json();
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
    for tag in &acked {
        assert!(stored.contains(tag.as_str()), "acknowledged {tag} lost");
    }
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
    // The change log's lease tokens only grow, each belongs to one node,
    // and the nodes that committed increments did so in the log's order.
    let log = change_log(&schema);
    let mut owner_of: BTreeMap<i64, String> = BTreeMap::new();
    for w in log.windows(2) {
        assert!(w[0].0 <= w[1].0, "token {} after {}", w[1].0, w[0].0);
    }
    for (token, node) in &log {
        let first = owner_of.entry(*token).or_insert_with(|| node.clone());
        assert_eq!(first, node, "token {token} used by two nodes");
    }
    let leases = collapsed(log.iter().map(|(_, node)| node.clone()));
    let runs_by_node = collapsed(runs.iter().map(|r| r.node.clone()));
    assert!(
        is_subsequence(&runs_by_node, &leases),
        "increments committed by {runs_by_node:?}, leases in the log {leases:?}"
    );
    assert!(
        runs_by_node.len() >= 3,
        "the object ran on three nodes in turn: {runs_by_node:?}"
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
        "{} increments sent, {} acknowledged, {n} applied ({unacked} without an answer); {victim} killed, {cut} partitioned \
         ({cut_acks_while_cut} acknowledged by it while cut off), then healed; leases {:?}; \
         {} messages acknowledged to producers and consumed; {:.1} s",
        attempted.len(),
        acked.len(),
        owner_of,
        sent.len(),
        began.elapsed().as_secs_f64()
    );
    drop(nodes);
}
