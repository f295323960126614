//! Cluster mode: the same Durable Object counter (one object, every call a
//! durable increment) on one embedded node, one cluster node and three
//! cluster nodes, and a forwarded call against a local one, all with the
//! same `hearth` binary, clients and duration in one run.
//!
//! Needs PostgreSQL (`--postgres-url`). Nodes share one machine, so three
//! nodes split its cores; the 3-node figure says what forwarding costs,
//! not what three machines would give.

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

fn project() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/hearth/tests/fixtures/cluster-counter")
}

fn start(hearth: &Path, dir: &Path, name: &str, cluster: Option<(&str, &str)>) -> Result<Node> {
    let port = free_port()?;
    let mut cmd = Command::new(hearth);
    cmd.arg("serve")
        .arg(project())
        .arg("--data-dir")
        .arg(dir.join(format!("data-{name}")))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("HEARTH_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some((url, schema)) = cluster {
        let file = dir.join(format!("{name}.cluster.toml"));
        std::fs::write(
            &file,
            format!(
                "node_id = \"{name}\"\nadvertise = \"127.0.0.1:{}\"\nsecret = \"benchmark-secret-of-at-least-32-bytes\"\n[postgres]\nurl = \"{url}\"\nschema = \"{schema}\"\n",
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
            && c.get("/rpc-count").is_ok()
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
        write!(
            self.writer,
            "GET {path} HTTP/1.1\r\nHost: {}\r\n\r\n",
            self.host
        )?;
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
        Ok(status)
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
    print!("{report}");
    std::fs::write(&args.output, &report)
        .with_context(|| format!("writing {}", args.output.display()))?;
    Ok(())
}
