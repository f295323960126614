//! Cluster mode: the same Durable Object counter (one object, every call a
//! durable increment) on one embedded node, one cluster node and three
//! cluster nodes, and a forwarded call against a local one, all with the
//! same `hearth` binary, clients and duration in one run.
//!
//! Then queue produce-to-consume (`bench/workers/queue`) on one embedded
//! node, one cluster node and three cluster nodes with Queues on JetStream.
//!
//! Needs PostgreSQL (`--postgres-url`) and NATS with JetStream
//! (`--nats-url`). Nodes share one machine, so three nodes split its cores;
//! the 3-node figure says what forwarding costs, not what three machines
//! would give.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;

use crate::machine::Machine;

#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// The hearth binary to run (default: `hearth` beside this one).
    #[arg(long)]
    hearth: Option<PathBuf>,
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
    postgres_url: String,
    #[arg(long, default_value = "nats://127.0.0.1:4222")]
    nats_url: String,
    /// Seconds each case runs.
    #[arg(long, default_value_t = 5.0)]
    secs: f64,
    /// Concurrent clients (keep-alive connections) per case.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    #[arg(long, default_value = "bench/CLUSTER-RESULTS.md")]
    output: PathBuf,
}

struct Node {
    child: Child,
    addr: String,
    name: String,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn counter_project() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/hearth/tests/fixtures/cluster-counter")
}

fn queue_project() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("workers/queue")
}

/// What a node serves and how the cluster file ends.
struct Setup<'a> {
    project: PathBuf,
    /// A `GET` that answers once the node serves.
    ready: &'a str,
    /// `(postgres url, schema, more of the cluster file)`; `None`: embedded.
    cluster: Option<(&'a str, &'a str, String)>,
}

fn start(hearth: &Path, dir: &Path, name: &str, cluster: Option<(&str, &str)>) -> Result<Node> {
    let setup = Setup {
        project: counter_project(),
        ready: "/rpc-count",
        cluster: cluster.map(|(url, schema)| (url, schema, String::new())),
    };
    start_with(hearth, dir, name, &setup)
}

fn start_with(hearth: &Path, dir: &Path, name: &str, setup: &Setup<'_>) -> Result<Node> {
    let port = free_port()?;
    let mut cmd = Command::new(hearth);
    cmd.arg("serve")
        .arg(&setup.project)
        .arg("--data-dir")
        .arg(dir.join(format!("data-{name}")))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("HEARTH_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some((url, schema, more)) = &setup.cluster {
        let file = dir.join(format!("{name}.cluster.toml"));
        std::fs::write(
            &file,
            format!(
                "node_id = \"{name}\"\nadvertise = \"127.0.0.1:{}\"\nsecret = \"benchmark-secret-of-at-least-32-bytes\"\n[postgres]\nurl = \"{url}\"\nschema = \"{schema}\"\n{more}",
                free_port()?
            ),
        )?;
        cmd.arg("--cluster").arg(file);
    }
    let child = cmd.spawn().context("starting hearth")?;
    let node = Node {
        child,
        addr: format!("127.0.0.1:{port}"),
        name: name.to_owned(),
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(mut c) = Client::connect(&node.addr)
            && c.get(setup.ready).is_ok()
        {
            return Ok(node);
        }
        if Instant::now() > deadline {
            bail!("node {name} did not answer within 60 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A keep-alive HTTP/1.1 client for `GET`s with `Content-Length` answers.
struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    host: String,
}

impl Client {
    fn connect(addr: &str) -> Result<Self> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        Ok(Self {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
            host: addr.to_owned(),
        })
    }

    fn get(&mut self, path: &str) -> Result<u16> {
        Ok(self.request("GET", path, b"")?.0)
    }

    /// Sends a request and reads the status and body of its answer.
    fn request(&mut self, method: &str, path: &str, body: &[u8]) -> Result<(u16, Vec<u8>)> {
        write!(
            self.writer,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n\r\n",
            self.host,
            body.len()
        )?;
        self.writer.write_all(body)?;
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| anyhow!("bad status line {line:?}"))?;
        let mut length = 0usize;
        loop {
            line.clear();
            self.reader.read_line(&mut line)?;
            if line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some((n, v)) = line.split_once(':')
                && n.eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse()?;
            }
        }
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body)?;
        Ok((status, body))
    }
}

/// Increments per second with `clients` connections spread over `addrs`.
fn drive(addrs: &[String], clients: usize, secs: f64) -> Result<f64> {
    // Tags must differ between cases that share the object.
    static CASE: AtomicU64 = AtomicU64::new(0);
    let case = CASE.fetch_add(1, Ordering::Relaxed);
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let mut threads = Vec::new();
    for c in 0..clients {
        let addr = addrs[c % addrs.len()].clone();
        let (stop, done, failed) = (stop.clone(), done.clone(), failed.clone());
        threads.push(std::thread::spawn(move || -> Result<()> {
            let mut client = Client::connect(&addr)?;
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                match client.get(&format!("/add?tag={case}-{c}-{i}")) {
                    Ok(200) => done.fetch_add(1, Ordering::Relaxed),
                    _ => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
            Ok(())
        }));
    }
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(secs));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().map_err(|_| anyhow!("client panicked"))??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let failed = failed.load(Ordering::Relaxed);
    if failed > 0 {
        bail!("{failed} calls failed");
    }
    Ok(done.load(Ordering::Relaxed) as f64 / elapsed)
}

/// Queue produce-to-consume: `clients` producers spread over `addrs` send
/// one message per request for `secs`; the rate is the messages
/// acknowledged to producers over the time until the consumers' tally
/// holds them all.
fn drive_queue(addrs: &[String], clients: usize, secs: f64) -> Result<f64> {
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let mut threads = Vec::new();
    for c in 0..clients {
        let addr = addrs[c % addrs.len()].clone();
        let (stop, sent, failed) = (stop.clone(), sent.clone(), failed.clone());
        threads.push(std::thread::spawn(move || -> Result<()> {
            let mut client = Client::connect(&addr)?;
            while !stop.load(Ordering::Relaxed) {
                match client.request("POST", "/send", b"payload") {
                    Ok((200, _)) => sent.fetch_add(1, Ordering::Relaxed),
                    _ => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
            Ok(())
        }));
    }
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(secs));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().map_err(|_| anyhow!("producer panicked"))??;
    }
    let failed = failed.load(Ordering::Relaxed);
    if failed > 0 {
        bail!("{failed} sends failed");
    }
    let sent = sent.load(Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut client = Client::connect(&addrs[0])?;
    loop {
        let (status, body) = client.request("GET", "/stats", b"")?;
        let consumed: u64 = String::from_utf8_lossy(&body).trim().parse().unwrap_or(0);
        if status == 200 && consumed >= sent {
            break;
        }
        if Instant::now() > deadline {
            bail!("only {consumed} of {sent} messages consumed after 300 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(sent as f64 / started.elapsed().as_secs_f64())
}

/// The queue cases: one embedded node, then one and three cluster nodes
/// with Queues on JetStream (streams under `prefix`, deleted afterwards).
fn queue_rows(hearth: &Path, args: &ClusterArgs, schema: &str) -> Result<Vec<(String, f64)>> {
    let mut rows = Vec::new();
    {
        let d = tempfile::tempdir()?;
        let setup = Setup {
            project: queue_project(),
            ready: "/stats",
            cluster: None,
        };
        let node = start_with(hearth, d.path(), "q-embedded", &setup)?;
        rows.push((
            "1 node, embedded (SQLite)".into(),
            drive_queue(std::slice::from_ref(&node.addr), args.clients, args.secs)?,
        ));
    }
    for (label, names) in [
        ("1 node, cluster (JetStream)", &["q1"][..]),
        (
            "3 nodes, cluster (JetStream), producers on every node",
            &["qa", "qb", "qc"][..],
        ),
    ] {
        let d = tempfile::tempdir()?;
        let case_schema = format!("{schema}_{}", names.len());
        let more = format!(
            "[nats]\nurl = \"{}\"\nprefix = \"{case_schema}\"\n",
            args.nats_url
        );
        let setup = Setup {
            project: queue_project(),
            ready: "/stats",
            cluster: Some((args.postgres_url.as_str(), case_schema.as_str(), more)),
        };
        let nodes: Vec<Node> = names
            .iter()
            .map(|n| start_with(hearth, d.path(), n, &setup))
            .collect::<Result<_>>()?;
        let addrs: Vec<String> = nodes.iter().map(|n| n.addr.clone()).collect();
        let rate = drive_queue(&addrs, args.clients, args.secs);
        drop(nodes);
        delete_streams(&args.nats_url, &case_schema);
        rows.push((label.into(), rate?));
    }
    Ok(rows)
}

/// Deletes the streams a case left under `prefix`.
fn delete_streams(url: &str, prefix: &str) {
    let Ok(nats) = hearth_cluster::Nats::connect(url, prefix) else {
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

/// The node holding the counter's lease.
fn owner(hearth: &Path, url: &str, schema: &str) -> Result<String> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("c.toml");
    std::fs::write(
        &file,
        format!(
            "node_id = \"status\"\nadvertise = \"127.0.0.1:1\"\nsecret = \"benchmark-secret-of-at-least-32-bytes\"\n[postgres]\nurl = \"{url}\"\nschema = \"{schema}\"\n"
        ),
    )?;
    let out = Command::new(hearth)
        .args(["cluster", "status", "--json", "--cluster"])
        .arg(&file)
        .output()?;
    let status: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    status["nodes"]
        .as_array()
        .and_then(|n| n.iter().find(|n| n["durable_objects"].as_i64() == Some(1)))
        .and_then(|n| n["node_id"].as_str())
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("no node holds the counter: {status}"))
}

fn default_hearth() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    Ok(exe
        .parent()
        .ok_or_else(|| anyhow!("no folder for {}", exe.display()))?
        .join("hearth"))
}

pub fn run(args: &ClusterArgs, command: &str) -> Result<()> {
    let hearth = match &args.hearth {
        Some(p) => p.clone(),
        None => default_hearth()?,
    };
    if !hearth.exists() {
        bail!(
            "{} not found: build it first (cargo build --release -p hearth) or pass --hearth",
            hearth.display()
        );
    }
    let dir = tempfile::tempdir()?;
    let machine = Machine::describe(dir.path());
    let schema = format!("hearth_bench_{}", std::process::id());
    let url = args.postgres_url.as_str();
    let mut rows: Vec<(String, f64)> = Vec::new();

    {
        let node = start(&hearth, dir.path(), "embedded", None)?;
        rows.push((
            "1 node, embedded".into(),
            drive(std::slice::from_ref(&node.addr), args.clients, args.secs)?,
        ));
    }
    {
        let d = tempfile::tempdir()?;
        let node = start(
            &hearth,
            d.path(),
            "solo",
            Some((url, &format!("{schema}_solo"))),
        )?;
        rows.push((
            "1 node, cluster".into(),
            drive(std::slice::from_ref(&node.addr), args.clients, args.secs)?,
        ));
    }
    let nodes: Vec<Node> = ["a", "b", "c"]
        .iter()
        .map(|n| start(&hearth, dir.path(), n, Some((url, &schema))))
        .collect::<Result<_>>()?;
    let all: Vec<String> = nodes.iter().map(|n| n.addr.clone()).collect();
    rows.push((
        "3 nodes, clients on every node".into(),
        drive(&all, args.clients, args.secs)?,
    ));
    let owner = owner(&hearth, url, &schema)?;
    let local: Vec<String> = nodes
        .iter()
        .filter(|n| n.name == owner)
        .map(|n| n.addr.clone())
        .collect();
    let remote: Vec<String> = nodes
        .iter()
        .filter(|n| n.name != owner)
        .map(|n| n.addr.clone())
        .collect();
    let local_rate = drive(&local, args.clients, args.secs)?;
    let remote_rate = drive(&remote, args.clients, args.secs)?;
    rows.push((
        "3 nodes, clients on the owner only (local)".into(),
        local_rate,
    ));
    rows.push((
        "3 nodes, clients on the other two (forwarded)".into(),
        remote_rate,
    ));
    drop(nodes);
    let queues = queue_rows(&hearth, args, &format!("{schema}_q"))?;

    let base = rows[0].1;
    let mut report = format!(
        "# Cluster mode: Durable Object counter\n\nCommand: `{command}`\n\nBinary: `{}`\n\nMachine: {} ({} logical CPUs), {}, kernel {}, load average at start {}, {}\n\n{}One object; every call is a durable increment (SQLite commit, fsynced; in cluster mode the commit's WAL frames are also appended to PostgreSQL under the lease before the answer leaves, and the owner uploads a snapshot every 4 MiB of log). Each node has its own data directory. {} keep-alive clients, {} s per case. Nodes share the machine.\n\n| Case | increments/s | vs 1 node embedded |\n|---|---:|---:|\n",
        hearth.display(),
        machine.cpu_model,
        machine.logical_cpus,
        machine.memory,
        machine.kernel,
        machine.load_average.as_deref().unwrap_or("?"),
        machine.date_utc,
        if hearth.components().any(|c| c.as_os_str() == "debug") {
            "**Unoptimised (debug) build**: read the ratios within this run, not the absolute figures.\n\n"
        } else {
            ""
        },
        args.clients,
        args.secs,
    );
    for (case, rate) in &rows {
        report.push_str(&format!("| {case} | {rate:.0} | {:.2}x |\n", rate / base));
    }
    report.push_str(&format!(
        "\nShipping each commit to PostgreSQL (1 cluster node vs 1 embedded node): {:.2}x.\n\nForwarded vs local: {:.2}x the throughput of calls made on the owner.\n",
        rows[1].1 / base,
        remote_rate / local_rate
    ));
    let qbase = queues[0].1;
    report.push_str(&format!(
        "\n# Cluster mode: queue produce to consume\n\nThe `bench/workers/queue` worker: each request sends one message (`send()` answers once it is durable: SQLite commit, or JetStream's publish acknowledgement on file storage); `queue()` acknowledges each batch (`max_batch_size` 100, `max_batch_timeout` 1 s) and adds its size to a Durable Object tally. The rate is the messages acknowledged to {} producers in {} s over the time until the tally holds them all. In cluster mode the tally is a cluster Durable Object (one call per batch, shipped to PostgreSQL) and consumers on every node share one durable JetStream pull consumer.\n\n| Case | messages/s | vs 1 node embedded |\n|---|---:|---:|\n",
        args.clients, args.secs,
    ));
    for (case, rate) in &queues {
        report.push_str(&format!("| {case} | {rate:.0} | {:.2}x |\n", rate / qbase));
    }
    print!("{report}");
    std::fs::write(&args.output, &report)
        .with_context(|| format!("writing {}", args.output.display()))?;
    Ok(())
}
