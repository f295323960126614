//! `hearth-bench http`: the same worker scripts on Hearth, workerd,
//! miniflare and a raw hyper server, under the same wrk load, one server
//! at a time, in one run.
//!
//! Each (scenario, server) pair gets a fresh server with an empty data
//! directory: start, write the scenario's data through the worker, check
//! that the answers are the expected bytes, warm up, measure, read the
//! server's peak RSS, stop.

mod cases;
mod client;
mod raw;
mod report;
mod servers;
mod wrk;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::machine::Machine;
use cases::{CaseId, Probe};
use servers::{Env, ServerKind};

pub use raw::{RawArgs, serve as serve_raw};

#[derive(Debug, Clone, clap::Args)]
pub struct HttpArgs {
    /// Measured seconds per scenario and server.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,

    /// Seconds of the same load, unmeasured, before each measured run.
    #[arg(long, default_value_t = 3)]
    pub warmup: u64,

    /// Measured seconds of the queue and workflow scenarios, whose work goes
    /// on after wrk stops (the same for every server).
    #[arg(long, default_value_t = 5)]
    pub end_to_end_duration: u64,

    /// Longest wait, in seconds, for a queue or workflow scenario to finish
    /// the work its requests started.
    #[arg(long, default_value_t = 120)]
    pub drain_timeout: u64,

    /// wrk connections.
    #[arg(long, default_value_t = 16)]
    pub connections: u32,

    /// wrk threads.
    #[arg(long, default_value_t = 2)]
    pub threads: u32,

    /// The hearth binary. [default: target/release/hearth of this workspace]
    #[arg(long, value_name = "FILE")]
    pub hearth: Option<PathBuf>,

    /// Where node, workerd, miniflare and wrangler are installed (by
    /// bench/run-http.sh). [default: bench/.peers]
    #[arg(long, value_name = "DIR")]
    pub peers: Option<PathBuf>,

    /// Only these scenarios (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',', value_name = "SCENARIOS")]
    pub only: Vec<CaseId>,

    /// Only these servers (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',', value_name = "SERVERS")]
    pub servers: Vec<ServerKind>,

    /// Where the markdown report is written. [default: bench/RESULTS.md]
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Print the report without writing it to a file.
    #[arg(long)]
    pub no_write: bool,

    /// The command line to print in the report (set by bench/run-http.sh).
    #[arg(long, hide = true)]
    pub invoked_as: Option<String>,
}

/// What one server did in one scenario.
#[derive(Debug, Clone)]
pub enum Row {
    Measured {
        outcome: wrk::Outcome,
        peak_rss_kib: Option<u64>,
        /// For the queue and workflow scenarios: the work finished.
        end_to_end: Option<EndToEnd>,
    },
    NotAvailable(String),
    Failed(String),
}

/// How the work started by one measured run finished (queue messages
/// consumed, workflow instances completed).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EndToEnd {
    /// Units the measured run started: wrk's 2xx answers.
    pub started: u64,
    /// Units finished since the measured run began.
    pub finished: u64,
    /// From the start of the measured run until the count reached
    /// `started` (or the drain timeout).
    pub elapsed: Duration,
    /// From the end of the wrk run until then.
    pub lag: Duration,
}

impl EndToEnd {
    pub fn per_sec(&self) -> f64 {
        self.finished as f64 / self.elapsed.as_secs_f64()
    }

    pub fn complete(&self) -> bool {
        self.finished >= self.started
    }
}

#[derive(Debug, Clone)]
pub struct CaseResult {
    pub case: CaseId,
    pub rows: Vec<(ServerKind, Row)>,
}

fn bench_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn run(args: &HttpArgs, command: &str) -> Result<()> {
    let started = Instant::now();
    let bench = bench_dir();
    let root = bench.join("..");
    let env_scratch = tempfile::Builder::new()
        .prefix("hearth-bench-http-")
        .tempdir()
        .context("creating the scratch directory")?;
    let mut env = Env {
        hearth: args
            .hearth
            .clone()
            .unwrap_or_else(|| root.join("target/release/hearth")),
        raw_server: std::env::current_exe().context("locating this program")?,
        peers: args.peers.clone().unwrap_or_else(|| bench.join(".peers")),
        bench: bench.clone(),
        scratch: env_scratch.path().to_path_buf(),
    };
    let cases: Vec<CaseId> = if args.only.is_empty() {
        cases::ALL.to_vec()
    } else {
        args.only.clone()
    };
    let kinds: Vec<ServerKind> = if args.servers.is_empty() {
        servers::ALL.to_vec()
    } else {
        args.servers.clone()
    };
    check_prerequisites(&env, &kinds)?;
    // The servers run in their own directories: relative paths would miss.
    for path in [&mut env.hearth, &mut env.peers] {
        *path = fs::canonicalize(&*path).with_context(|| format!("locating {}", path.display()))?;
    }
    // Run private copies: a rebuild of the workspace during the run must
    // neither change nor remove the programs being measured.
    let bin = env.scratch.join("bin");
    fs::create_dir_all(&bin)?;
    for (path, name) in [
        (&mut env.hearth, "hearth"),
        (&mut env.raw_server, "hearth-bench"),
    ] {
        let copy = bin.join(name);
        fs::copy(&*path, &copy).with_context(|| format!("copying {}", path.display()))?;
        *path = copy;
    }
    let mut machine = Machine::describe(&env.scratch);
    if let Some(rev) = &mut machine.revision {
        // Every crate of the server is measured here, not only the storage ones.
        rev.dirty = tree_dirty(&root);
    }
    let versions = report::versions(&env, &kinds);
    let load = wrk::Load {
        connections: args.connections,
        threads: args.threads,
    };

    let mut results = Vec::new();
    for (index, &case) in cases.iter().enumerate() {
        // Each scenario starts with a different server, so a burst of other
        // work on the machine does not always land on the same one.
        let mut order = kinds.clone();
        order.rotate_left(index % kinds.len().max(1));
        let mut rows = Vec::new();
        for &kind in &order {
            eprintln!("== {} on {}", case.title(), kind.label());
            let row = match kind.unsupported(case) {
                Some(why) => Row::NotAvailable(why.to_owned()),
                None => match measure(kind, case, &env, load, args) {
                    Ok(row) => row,
                    Err(e) => {
                        eprintln!("   failed: {e:#}");
                        Row::Failed(first_line(&format!("{e:#}")))
                    }
                },
            };
            if let Row::Measured {
                outcome,
                end_to_end,
                ..
            } = &row
            {
                eprintln!(
                    "   {:.0} req/s, p50 {:?}, p99 {:?}",
                    outcome.requests_per_sec, outcome.p50, outcome.p99
                );
                if let Some(e) = end_to_end {
                    eprintln!(
                        "   {} of {} finished: {:.0}/s end to end, drain lag {:?}",
                        e.finished,
                        e.started,
                        e.per_sec(),
                        e.lag
                    );
                }
            }
            rows.push((kind, row));
        }
        // The tables list servers in the order asked for.
        rows.sort_by_key(|(kind, _)| kinds.iter().position(|k| k == kind));
        results.push(CaseResult { case, rows });
    }
    let load_average_after = fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "));

    let text = report::render(&report::Report {
        machine: &machine,
        command: args.invoked_as.as_deref().unwrap_or(command),
        args,
        versions: &versions,
        results: &results,
        total: started.elapsed(),
        load_average_after: load_average_after.as_deref(),
    });
    if args.no_write {
        print!("{text}");
    } else {
        let out = args
            .output
            .clone()
            .unwrap_or_else(|| bench.join("RESULTS.md"));
        fs::write(&out, &text).with_context(|| format!("writing {}", out.display()))?;
        eprintln!("wrote {}", out.display());
    }
    Ok(())
}

fn check_prerequisites(env: &Env, kinds: &[ServerKind]) -> Result<()> {
    if Command::new("wrk").arg("--version").output().is_err() {
        bail!("wrk is not installed; bench/run-http.sh installs it");
    }
    let mut needed: Vec<(PathBuf, &str)> = Vec::new();
    for kind in kinds {
        match kind {
            ServerKind::Hearth => needed.push((
                env.hearth.clone(),
                "build it with `cargo build --release -p hearth`",
            )),
            ServerKind::Workerd => {
                needed.push((env.workerd(), "bench/run-http.sh installs it"));
            }
            ServerKind::Miniflare => {
                needed.push((env.node(), "bench/run-http.sh installs it"));
                needed.push((
                    env.peers.join("node_modules/miniflare/package.json"),
                    "bench/run-http.sh installs it",
                ));
            }
            ServerKind::RawHyper => {}
        }
    }
    for (path, hint) in needed {
        if !path.exists() {
            bail!("{} is missing: {hint}", path.display());
        }
    }
    Ok(())
}

fn measure(
    kind: ServerKind,
    case: CaseId,
    env: &Env,
    load: wrk::Load,
    args: &HttpArgs,
) -> Result<Row> {
    let server = servers::start(kind, case, env)?;
    let with_log = |e: anyhow::Error| {
        e.context(format!(
            "server log ({}):\n{}",
            server.log.display(),
            servers::log_tail(&server.log)
        ))
    };
    for probe in case.seed() {
        send(server.addr, &probe)
            .context("writing the scenario's data")
            .map_err(with_log)?;
    }
    for probe in case.checks() {
        send(server.addr, &probe).map_err(with_log)?;
    }
    let script = case.script().map(|s| env.bench.join("wrk").join(s));
    // The scripts set each request's path themselves; hello takes the URL's.
    let path = "/";
    let drain_timeout = Duration::from_secs(args.drain_timeout);
    // Units of work started before the measured run (the checks, the
    // warm-up), which must be finished before it starts.
    let mut started_before = case.checks().len() as u64;
    if args.warmup > 0 {
        let warm = wrk::run(load, server.addr, path, script.as_deref(), args.warmup)?;
        started_before += warm.requests - warm.non_2xx;
    }
    let Some(completion) = case.completion() else {
        let outcome = wrk::run(load, server.addr, path, script.as_deref(), args.duration)?;
        let peak_rss_kib = server.peak_rss_kib();
        drop(server);
        return Ok(Row::Measured {
            outcome,
            peak_rss_kib,
            end_to_end: None,
        });
    };
    let (before, _) =
        wait_for_count(server.addr, started_before, drain_timeout).map_err(with_log)?;
    if before < started_before {
        return Err(with_log(anyhow::anyhow!(
            "only {before} of the {started_before} {} before the measured run finished within {} s",
            completion.unit,
            args.drain_timeout
        )));
    }
    // Requests still in flight when the warm-up's wrk stopped may have
    // started work that is not finished yet: let it finish first, so that
    // the measured run counts only its own.
    let before = settle(server.addr, before, drain_timeout).map_err(with_log)?;
    let start = Instant::now();
    let outcome = wrk::run(
        load,
        server.addr,
        path,
        script.as_deref(),
        args.end_to_end_duration,
    )?;
    let wrk_done = Instant::now();
    // wrk counts the requests it saw answered; one still in flight when it
    // stopped may add a unit more, which is then counted as finished too.
    let started = outcome.requests - outcome.non_2xx;
    let (after, at) =
        wait_for_count(server.addr, before + started, drain_timeout).map_err(with_log)?;
    let peak_rss_kib = server.peak_rss_kib();
    drop(server);
    Ok(Row::Measured {
        outcome,
        peak_rss_kib,
        end_to_end: Some(EndToEnd {
            started,
            finished: after - before,
            elapsed: at - start,
            lag: at.saturating_duration_since(wrk_done),
        }),
    })
}

/// How long the count at `/stats` must stay the same to count as settled:
/// longer than the queue scenario's max_batch_timeout (1 s).
const SETTLED: Duration = Duration::from_millis(1500);

/// Polls `GET /stats` until the count stops growing for [`SETTLED`].
fn settle(addr: std::net::SocketAddr, mut count: u64, timeout: Duration) -> Result<u64> {
    let deadline = Instant::now() + timeout;
    let mut since = Instant::now();
    while since.elapsed() < SETTLED && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        let (now, _) = wait_for_count(addr, 0, timeout)?;
        if now != count {
            count = now;
            since = Instant::now();
        }
    }
    Ok(count)
}

/// Polls `GET /stats` until it counts at least `target`, or `timeout`
/// passes; answers the last count and when it was read.
fn wait_for_count(
    addr: std::net::SocketAddr,
    target: u64,
    timeout: Duration,
) -> Result<(u64, Instant)> {
    let deadline = Instant::now() + timeout;
    loop {
        let res = client::request(addr, "GET", "/stats", None, Duration::from_secs(30))?;
        let at = Instant::now();
        let text = String::from_utf8_lossy(&res.body);
        if res.status != 200 {
            bail!("GET /stats answered {} {text:?}", res.status);
        }
        let count: u64 = text
            .trim()
            .parse()
            .with_context(|| format!("GET /stats answered {text:?}, not a count"))?;
        if count >= target || at > deadline {
            return Ok((count, at));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends one probe and checks its status and body.
fn send(addr: std::net::SocketAddr, probe: &Probe) -> Result<()> {
    let body = probe
        .body
        .as_ref()
        .map(|(ct, bytes)| (*ct, bytes.as_slice()));
    let res = client::request(
        addr,
        probe.method,
        &probe.path,
        body,
        Duration::from_secs(60),
    )?;
    let matches = res.status == probe.expect_status
        && probe.expect_body.as_ref().is_none_or(|b| *b == res.body);
    if !matches {
        bail!(
            "{} {} answered {} {:?}; expected {} {:?}",
            probe.method,
            probe.path,
            res.status,
            String::from_utf8_lossy(&res.body),
            probe.expect_status,
            probe
                .expect_body
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
        );
    }
    Ok(())
}

/// Whether the working tree differs from HEAD in anything the servers are
/// built from.
fn tree_dirty(root: &Path) -> bool {
    Command::new("git")
        .args([
            "status",
            "--porcelain",
            "--",
            "crates",
            "bench",
            "Cargo.toml",
            "Cargo.lock",
        ])
        .current_dir(root)
        .output()
        .is_ok_and(|o| o.status.success() && !o.stdout.is_empty())
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().to_owned()
}

/// Version of a peer's npm package, from its package.json.
fn package_version(peers: &Path, name: &str) -> Option<String> {
    let text =
        fs::read_to_string(peers.join("node_modules").join(name).join("package.json")).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json.get("version")?.as_str().map(str::to_owned)
}
