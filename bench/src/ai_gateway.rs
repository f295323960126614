//! AI Gateway against calling the provider directly and against LiteLLM's
//! proxy, on the same provider double, in one run.
//!
//! Three processes besides this one: the provider double
//! (`hearth-bench provider-double`), Hearth's gateway (`hearth gateway`:
//! `--hearth-bin`, else the `hearth` built beside this executable; only
//! without either `hearth-bench gateway-server`, which runs the same
//! `GatewayServer` and engine) with logging, the exact cache
//! and per-key limits and budgets on, and LiteLLM's proxy when `--litellm`
//! names its executable. The load is open-loop at a fixed rate (latency
//! counted from each request's scheduled time, so a stall is not hidden),
//! then closed-loop for throughput. `--soak SECS` instead drives `hearth
//! gateway` alone at `--rate` and samples its RSS from /proc.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use clap::Args;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

use crate::machine::Machine;

#[derive(Debug, Args)]
pub struct AiGatewayArgs {
    /// Seconds each measured phase runs.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Requests per second of the open-loop phases (besides 100/s).
    #[arg(long, default_value_t = 2000)]
    pub rate: u64,
    /// Connections of the load generator.
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// The `hearth` binary to run `hearth gateway` from; default: the
    /// `hearth` beside this executable (`cargo build --release -p hearth
    /// -p hearth-bench` puts it there), else `hearth-bench gateway-server`.
    #[arg(long)]
    pub hearth_bin: Option<PathBuf>,
    /// LiteLLM's `litellm` executable (bench/run-ai-gateway.sh installs it).
    #[arg(long)]
    pub litellm: Option<PathBuf>,
    /// Where to write the results (default bench/AI-GATEWAY-RESULTS.md, or
    /// bench/AI-GATEWAY-SOAK.md with --soak).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Instead of the comparison: drive `hearth gateway` (--hearth-bin) at
    /// --rate for this many seconds with logging, the cache and per-key
    /// limits and budgets on, sampling its RSS from /proc.
    #[arg(long)]
    pub soak: Option<u64>,
    /// Seconds between RSS samples of the soak.
    #[arg(long, default_value_t = 5)]
    pub sample_every: u64,
}

#[derive(Debug, Args)]
pub struct DoubleArgs {
    #[arg(long)]
    pub listen: SocketAddr,
}

#[derive(Debug, Args)]
pub struct ServerArgs {
    #[arg(long)]
    pub listen: SocketAddr,
    #[arg(long)]
    pub config: PathBuf,
    #[arg(long)]
    pub data_dir: PathBuf,
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

pub fn serve_double(args: &DoubleArgs) -> Result<()> {
    runtime()?.block_on(async {
        let _double = hearth_ai_gateway::double::ProviderDouble::start_on(args.listen).await?;
        std::future::pending::<()>().await;
        Ok(())
    })
}

pub fn serve_gateway(args: &ServerArgs) -> Result<()> {
    runtime()?.block_on(async {
        let gateways = hearth_ai_gateway::engine::open_file(
            &args.config,
            &args.data_dir,
            hearth_core::SystemClock::shared(),
        )?;
        hearth_ai_gateway::server::GatewayServer::bind(args.listen, gateways)
            .await?
            .run()
            .await;
        Ok(())
    })
}

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn wait_ready(addr: SocketAddr, what: &str, limit: Duration) -> Result<()> {
    let deadline = Instant::now() + limit;
    while std::net::TcpStream::connect(addr).is_err() {
        if Instant::now() > deadline {
            bail!("{what} did not start listening on {addr}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[derive(Clone)]
struct Target {
    addr: SocketAddr,
    path: String,
    /// Every request has its own body (cache misses) or the same one (hits).
    unique: bool,
    /// With `unique`: one request in four repeats an earlier body (hits).
    mixed: bool,
}

#[derive(Default)]
struct Run {
    latencies_us: Vec<u64>,
    errors: u64,
    elapsed: Duration,
}

impl Run {
    fn pct(&mut self, p: f64) -> f64 {
        self.latencies_us.sort_unstable();
        crate::measure::percentile(&self.latencies_us, p) as f64 / 1000.0
    }

    fn rate(&self) -> f64 {
        self.latencies_us.len() as f64 / self.elapsed.as_secs_f64()
    }
}

fn body(i: u64, unique: bool) -> Bytes {
    let content = if unique {
        format!("question number {i}")
    } else {
        "the same question".to_owned()
    };
    Bytes::from(format!(
        r#"{{"model":"gpt-test","messages":[{{"role":"user","content":"{content}"}}]}}"#
    ))
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

/// The first failure of each target (by port), for the report.
static FIRST_ERRORS: std::sync::Mutex<Vec<(u16, String)>> = std::sync::Mutex::new(Vec::new());

fn note_error(t: &Target, what: String) {
    let mut errors = FIRST_ERRORS.lock().unwrap_or_else(|p| p.into_inner());
    if !errors.iter().any(|(port, _)| *port == t.addr.port()) {
        errors.push((t.addr.port(), what));
    }
}

async fn connect(addr: SocketAddr) -> Option<Sender> {
    let stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let _ = stream.set_nodelay(true);
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .ok()?;
    tokio::spawn(conn);
    Some(sender)
}

async fn send(sender: &mut Option<Sender>, t: &Target, i: u64) -> bool {
    if sender.as_ref().is_none_or(|s| s.is_closed()) {
        *sender = connect(t.addr).await;
    }
    let Some(s) = sender.as_mut() else {
        note_error(t, "cannot connect".into());
        return false;
    };
    if let Err(e) = s.ready().await {
        note_error(t, format!("connection closed: {e}"));
        *sender = None;
        return false;
    }
    let req = hyper::Request::post(&t.path)
        .header("host", t.addr.to_string())
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {BENCH_KEY}"))
        .header("x-tenant", format!("tenant-{}", i % 64))
        .body(Full::new(body(
            i,
            t.unique && !(t.mixed && i.is_multiple_of(4)),
        )));
    let req = match req {
        Ok(r) => r,
        Err(e) => {
            note_error(t, format!("bad request: {e}"));
            return false;
        }
    };
    match s.send_request(req).await {
        Ok(r) => {
            let status = r.status();
            let body = r.into_body().collect().await;
            if status != 200 {
                let text: String = body
                    .map(|b| {
                        String::from_utf8_lossy(&b.to_bytes())
                            .chars()
                            .take(300)
                            .collect()
                    })
                    .unwrap_or_default();
                note_error(t, format!("{status}: {text}"));
                return false;
            }
            body.is_ok()
        }
        Err(e) => {
            note_error(t, format!("request failed: {e}"));
            *sender = None;
            false
        }
    }
}

/// `rate` requests per second for `secs`, spread over `conns` connections,
/// each request sent at its due time whatever the others are doing.
async fn open_loop(t: &Target, rate: u64, secs: u64, conns: usize) -> Run {
    let total = rate * secs;
    let start = tokio::time::Instant::now() + Duration::from_millis(50);
    let mut tasks = Vec::new();
    for k in 0..conns as u64 {
        let t = t.clone();
        tasks.push(tokio::spawn(async move {
            let mut sender = None;
            let mut lat = Vec::new();
            let mut errors = 0;
            let mut i = k;
            while i < total {
                let due = start + Duration::from_nanos(i * 1_000_000_000 / rate);
                tokio::time::sleep_until(due).await;
                // From the send, not the due time: the timer wakes up to a
                // millisecond late, which would swamp sub-millisecond figures.
                let sent = tokio::time::Instant::now();
                if send(&mut sender, &t, i).await {
                    lat.push(sent.elapsed().as_micros() as u64);
                } else {
                    errors += 1;
                }
                i += conns as u64;
            }
            (lat, errors)
        }));
    }
    let mut run = Run::default();
    for task in tasks {
        if let Ok((lat, errors)) = task.await {
            run.latencies_us.extend(lat);
            run.errors += errors;
        }
    }
    run.elapsed = start.elapsed();
    run
}

/// As fast as `conns` connections go, for `secs`.
async fn closed_loop(t: &Target, secs: u64, conns: usize) -> Run {
    let start = Instant::now();
    let end = start + Duration::from_secs(secs);
    let counter = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let t = t.clone();
        let counter = counter.clone();
        tasks.push(tokio::spawn(async move {
            let mut sender = None;
            let mut lat = Vec::new();
            let mut errors = 0;
            while Instant::now() < end {
                let i = counter.fetch_add(1, Ordering::Relaxed);
                let sent = Instant::now();
                if send(&mut sender, &t, i).await {
                    lat.push(sent.elapsed().as_micros() as u64);
                } else {
                    errors += 1;
                }
            }
            (lat, errors)
        }));
    }
    let mut run = Run::default();
    for task in tasks {
        if let Ok((lat, errors)) = task.await {
            run.latencies_us.extend(lat);
            run.errors += errors;
        }
    }
    run.elapsed = start.elapsed();
    run
}

const GATEWAY_TOML: &str = r#"
[[gateways]]
id = "bench"
cache_ttl = 300
collect_logs = true
max_logs = 10000000
key_header = "x-tenant"
key_rate_limit = { limit = 100000000, period = 60, technique = "sliding" }
key_budget = { limit = 1000000000.0, period = 86400 }

[providers.openai]
base_url = "http://DOUBLE/v1"

[[prices]]
model = "gpt-test"
input = 0.15
output = 0.60
"#;

const LITELLM_YAML: &str = r#"
model_list:
  - model_name: gpt-test
    litellm_params:
      model: openai/gpt-test
      api_base: http://DOUBLE/v1
      api_key: sk-bench
litellm_settings:
  cache: true
  cache_params:
    type: local
  telemetry: false
general_settings:
  master_key: MASTER_KEY
"#;

/// The bearer every request sends: the provider key for the double and
/// Hearth (which pass it on), LiteLLM's master key (it refuses to start
/// without one).
const BENCH_KEY: &str = "sk-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

struct Row {
    label: String,
    run: Run,
}

/// `--hearth-bin`, else the `hearth` built beside this executable.
fn hearth_bin(args: &AiGatewayArgs) -> Option<PathBuf> {
    args.hearth_bin.clone().or_else(|| {
        let sibling = std::env::current_exe().ok()?.with_file_name("hearth");
        sibling.is_file().then_some(sibling)
    })
}

pub fn run(args: &AiGatewayArgs, command: &str) -> Result<()> {
    if let Some(secs) = args.soak {
        return soak(args, secs, command);
    }
    let work = tempfile::tempdir()?;
    let machine = Machine::describe(work.path());
    let exe = std::env::current_exe()?;
    let double_addr: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
    let _double = Proc(
        Command::new(&exe)
            .args(["provider-double", "--listen", &double_addr.to_string()])
            .stdout(Stdio::null())
            .spawn()?,
    );
    wait_ready(double_addr, "the provider double", Duration::from_secs(10))?;

    let gw_addr: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
    let config = work.path().join("gateways.toml");
    std::fs::write(
        &config,
        GATEWAY_TOML.replace("DOUBLE", &double_addr.to_string()),
    )?;
    let data = work.path().join("data");
    let (gateway, how) = match &hearth_bin(args) {
        Some(bin) => (
            Command::new(bin)
                .arg("gateway")
                .args(["--listen", &gw_addr.to_string()])
                .arg("--config")
                .arg(&config)
                .arg("--data-dir")
                .arg(&data)
                .env("HEARTH_LOG", "warn")
                .stderr(Stdio::null())
                .spawn()?,
            format!("`{} gateway`", bin.display()),
        ),
        None => (
            Command::new(&exe)
                .args(["gateway-server", "--listen", &gw_addr.to_string()])
                .arg("--config")
                .arg(&config)
                .arg("--data-dir")
                .arg(&data)
                .spawn()?,
            "`hearth-bench gateway-server` (the `GatewayServer` and engine `hearth gateway` runs)"
                .to_owned(),
        ),
    };
    let gateway_pid = gateway.id();
    let _gateway = Proc(gateway);
    wait_ready(gw_addr, "the gateway", Duration::from_secs(20))?;

    let litellm = match &args.litellm {
        Some(bin) => {
            let port = free_port()?;
            let cfg = work.path().join("litellm.yaml");
            std::fs::write(
                &cfg,
                // The load's bearer is the master key: any other key is a
                // virtual key, which LiteLLM looks up in its database
                // ("400 No connected db" without one).
                LITELLM_YAML
                    .replace("DOUBLE", &double_addr.to_string())
                    .replace("MASTER_KEY", BENCH_KEY),
            )?;
            let child = Command::new(bin)
                .arg("--config")
                .arg(&cfg)
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .env("LITELLM_LOCAL_MODEL_COST_MAP", "True")
                .env("LITELLM_LOG", "ERROR")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .with_context(|| format!("starting {}", bin.display()))?;
            let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
            let proc = Proc(child);
            wait_ready(addr, "LiteLLM", Duration::from_secs(180))?;
            Some((proc, addr))
        }
        None => None,
    };

    let rt = runtime()?;
    let conns = args.connections;
    let secs = args.seconds;
    let direct = Target {
        addr: double_addr,
        path: "/v1/chat/completions".into(),
        unique: true,
        mixed: false,
    };
    let hearth_miss = Target {
        addr: gw_addr,
        path: "/bench/openai/chat/completions".into(),
        unique: true,
        mixed: false,
    };
    let hearth_hit = Target {
        unique: false,
        ..hearth_miss.clone()
    };
    let lite = litellm.as_ref().map(|(_, addr)| Target {
        addr: *addr,
        path: "/v1/chat/completions".into(),
        unique: true,
        mixed: false,
    });
    let lite_hit = lite.as_ref().map(|t| Target {
        unique: false,
        ..t.clone()
    });
    let rss_start = rss_kib(gateway_pid);
    let mut open_rows: Vec<(u64, Vec<Row>)> = Vec::new();
    let mut closed_rows = Vec::new();
    rt.block_on(async {
        // Warm-up: connections, the cache's first entry, code paths.
        closed_loop(&hearth_hit, 2, conns).await;
        closed_loop(&direct, 1, conns).await;
        if let (Some(l), Some(h)) = (&lite, &lite_hit) {
            closed_loop(l, 3, 8).await;
            closed_loop(h, 1, 8).await;
        }
        for rate in [100, args.rate] {
            let mut rows = vec![
                Row {
                    label: "direct to the double".into(),
                    run: open_loop(&direct, rate, secs, conns).await,
                },
                Row {
                    label: "Hearth, cache miss (logs, cache, per-key limits and budgets on)".into(),
                    run: open_loop(&hearth_miss, rate, secs, conns).await,
                },
                Row {
                    label: "Hearth, cache hit".into(),
                    run: open_loop(&hearth_hit, rate, secs, conns).await,
                },
            ];
            if let (Some(l), Some(h)) = (&lite, &lite_hit) {
                rows.push(Row {
                    label: "LiteLLM proxy, cache miss (local cache on)".into(),
                    run: open_loop(l, rate, secs, conns).await,
                });
                rows.push(Row {
                    label: "LiteLLM proxy, cache hit".into(),
                    run: open_loop(h, rate, secs, conns).await,
                });
            }
            open_rows.push((rate, rows));
        }
        closed_rows.push(Row {
            label: "direct to the double".into(),
            run: closed_loop(&direct, secs, conns).await,
        });
        closed_rows.push(Row {
            label: "Hearth, cache miss (logs, cache, per-key limits and budgets on)".into(),
            run: closed_loop(&hearth_miss, secs, conns).await,
        });
        closed_rows.push(Row {
            label: "Hearth, cache hit".into(),
            run: closed_loop(&hearth_hit, secs, conns).await,
        });
        if let Some(l) = &lite {
            closed_rows.push(Row {
                label: "LiteLLM proxy, cache miss".into(),
                run: closed_loop(l, secs, conns).await,
            });
        }
    });
    let rss_end = rss_kib(gateway_pid);
    // Let the log writer catch up, then count what it kept.
    std::thread::sleep(Duration::from_secs(2));
    let logged = hearth_ai_gateway::logs::open_file(&hearth_ai_gateway::engine::logs_path(&data))
        .ok()
        .and_then(|c| {
            c.query_row("SELECT COUNT(*) FROM logs", [], |r| r.get::<_, i64>(0))
                .ok()
        });
    let litellm_version = args.litellm.as_ref().and_then(|b| {
        let pip = b.with_file_name("pip");
        let out = Command::new(pip).args(["show", "litellm"]).output().ok()?;
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("Version: ").map(str::to_owned))
    });
    let report = render(
        args,
        command,
        &machine,
        &how,
        litellm_version.as_deref(),
        &mut open_rows,
        &mut closed_rows,
        (rss_start, rss_end),
        logged,
    );
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| "bench/AI-GATEWAY-RESULTS.md".into());
    std::fs::write(out, &report)?;
    print!("{report}");
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn render(
    args: &AiGatewayArgs,
    command: &str,
    m: &Machine,
    how: &str,
    litellm: Option<&str>,
    open_rows: &mut [(u64, Vec<Row>)],
    closed_rows: &mut [Row],
    rss: (Option<u64>, Option<u64>),
    logged: Option<i64>,
) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# AI Gateway: Hearth against the provider directly and LiteLLM's proxy\n"
    );
    let _ = writeln!(s, "- Date: {}", m.date_utc);
    let _ = writeln!(
        s,
        "- CPU: {}, {} logical CPUs (shared by the load generator, the double, and the gateway under test)",
        m.cpu_model, m.logical_cpus
    );
    let _ = writeln!(
        s,
        "- Load average at the start: {}",
        m.load_average.as_deref().unwrap_or("?")
    );
    if let Some(r) = &m.revision {
        let _ = writeln!(
            s,
            "- Revision: {}{}",
            r.commit,
            if r.dirty {
                " (with uncommitted changes)"
            } else {
                ""
            }
        );
    }
    let _ = writeln!(
        s,
        "- Hearth: {how}, logging to SQLite, exact cache (ttl 300 s), per-key sliding-window limit and spend budget on every request (64 keys)"
    );
    let _ = writeln!(s, "- LiteLLM: {}", litellm.map_or("not run (no --litellm)".to_owned(), |v| format!("litellm[proxy] {v} from PyPI, `litellm --config` (one uvicorn worker, its default) with the in-memory (`local`) cache and a master key; no database, so no spend logs, per-key limits or budgets (those need PostgreSQL)")));
    let _ = writeln!(
        s,
        "- Provider: `hearth-bench provider-double`, answering at once (OpenAI-shaped JSON with usage)"
    );
    let _ = writeln!(
        s,
        "- Load: {} keep-alive connections from one tokio process; open-loop phases send at a fixed rate for {} s, each request sent at its due time, latency from its send (tokio's timer wakes up to 1 ms late, which would swamp sub-millisecond figures)",
        args.connections, args.seconds
    );
    let _ = writeln!(s, "\nCommand:\n\n```sh\n{command}\n```\n");
    for (rate, rows) in open_rows.iter_mut() {
        let _ = writeln!(s, "## Open loop, {rate} requests/s\n");
        let _ = writeln!(
            s,
            "| Path | p50 ms | p99 ms | added p50 ms | added p99 ms | done/s | errors |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|---|");
        let (d50, d99) = {
            let d = &mut rows[0].run;
            (d.pct(0.50), d.pct(0.99))
        };
        for row in rows.iter_mut() {
            let (p50, p99) = (row.run.pct(0.50), row.run.pct(0.99));
            let _ = writeln!(
                s,
                "| {} | {p50:.3} | {p99:.3} | {:.3} | {:.3} | {:.0} | {} |",
                row.label,
                p50 - d50,
                p99 - d99,
                row.run.rate(),
                row.run.errors
            );
        }
        let _ = writeln!(s);
    }
    let _ = writeln!(s, "## Closed loop (throughput)\n");
    let _ = writeln!(s, "| Path | requests/s | p50 ms | p99 ms | errors |");
    let _ = writeln!(s, "|---|---|---|---|---|");
    for row in closed_rows.iter_mut() {
        let (p50, p99) = (row.run.pct(0.50), row.run.pct(0.99));
        let _ = writeln!(
            s,
            "| {} | {:.0} | {p50:.3} | {p99:.3} | {} |",
            row.label,
            row.run.rate(),
            row.run.errors
        );
    }
    let _ = writeln!(s, "\n## Memory and logs\n");
    let _ = writeln!(
        s,
        "- Gateway RSS before the load {} KiB, after the run {} KiB",
        rss.0.map_or("?".into(), |v| v.to_string()),
        rss.1.map_or("?".into(), |v| v.to_string())
    );
    let _ = writeln!(
        s,
        "- Logs written: {} (records past the writer's 16,384-record queue are dropped and counted, never waited for)",
        logged.map_or("?".into(), |v| v.to_string())
    );
    let errors = FIRST_ERRORS.lock().unwrap_or_else(|p| p.into_inner());
    if !errors.is_empty() {
        let _ = writeln!(s, "\n## First failure per server (by port)\n");
        for (port, e) in errors.iter() {
            let _ = writeln!(s, "- {port}: `{}`", e.replace(['`', '\n'], " "));
        }
    }
    s
}

/// The soak's gateway: as the comparison's, with the default log cap so
/// the oldest logs are dropped as new ones come (a bounded store).
const SOAK_TOML: &str = r#"
[[gateways]]
id = "bench"
cache_ttl = 300
collect_logs = true
max_logs = 100000
when_full = "drop_oldest"
key_header = "x-tenant"
key_rate_limit = { limit = 100000000, period = 60, technique = "sliding" }
key_budget = { limit = 1000000000.0, period = 86400 }

[providers.openai]
base_url = "http://DOUBLE/v1"

[[prices]]
model = "gpt-test"
input = 0.15
output = 0.60
"#;

/// One RSS sample: seconds since the load began, RSS in KiB, bytes on
/// disk under the gateway's data directory.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at_s: f64,
    rss_kib: u64,
    disk: u64,
}

fn dir_bytes(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Least-squares slope of RSS, in KiB per minute.
fn slope_kib_per_min(samples: &[Sample]) -> Option<f64> {
    if samples.len() < 2 {
        return None;
    }
    let n = samples.len() as f64;
    let mx = samples.iter().map(|s| s.at_s / 60.0).sum::<f64>() / n;
    let my = samples.iter().map(|s| s.rss_kib as f64).sum::<f64>() / n;
    let (mut num, mut den) = (0.0, 0.0);
    for s in samples {
        let dx = s.at_s / 60.0 - mx;
        num += dx * (s.rss_kib as f64 - my);
        den += dx * dx;
    }
    (den > 0.0).then(|| num / den)
}

struct Minute {
    from_s: u64,
    run: Run,
}

fn soak(args: &AiGatewayArgs, secs: u64, command: &str) -> Result<()> {
    let Some(bin) = &hearth_bin(args) else {
        bail!(
            "--soak drives `hearth gateway`: build it beside hearth-bench or pass --hearth-bin path/to/hearth"
        );
    };
    if secs == 0 || args.sample_every == 0 || args.rate == 0 {
        bail!("--soak, --sample-every and --rate must be at least 1");
    }
    let work = tempfile::tempdir()?;
    let machine = Machine::describe(work.path());
    let exe = std::env::current_exe()?;
    let double_addr: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
    let _double = Proc(
        Command::new(&exe)
            .args(["provider-double", "--listen", &double_addr.to_string()])
            .stdout(Stdio::null())
            .spawn()?,
    );
    wait_ready(double_addr, "the provider double", Duration::from_secs(10))?;
    let gw_addr: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
    let config = work.path().join("gateways.toml");
    std::fs::write(
        &config,
        SOAK_TOML.replace("DOUBLE", &double_addr.to_string()),
    )?;
    let data = work.path().join("data");
    let gateway = Command::new(bin)
        .arg("gateway")
        .args(["--listen", &gw_addr.to_string()])
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(&data)
        .env("HEARTH_LOG", "warn")
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {} gateway", bin.display()))?;
    let pid = gateway.id();
    let gateway = Proc(gateway);
    wait_ready(gw_addr, "the gateway", Duration::from_secs(20))?;
    let idle_kib = rss_kib(pid);

    let target = Target {
        addr: gw_addr,
        path: "/bench/openai/chat/completions".into(),
        unique: true,
        mixed: true,
    };
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let began = Instant::now();
    let sampler = {
        let stop = stop.clone();
        let data = data.clone();
        let every = Duration::from_secs(args.sample_every);
        std::thread::spawn(move || {
            let mut samples = Vec::new();
            let mut next = began;
            while !stop.load(Ordering::Relaxed) {
                if let Some(rss_kib) = rss_kib(pid) {
                    samples.push(Sample {
                        at_s: began.elapsed().as_secs_f64(),
                        rss_kib,
                        disk: dir_bytes(&data),
                    });
                }
                next += every;
                while !stop.load(Ordering::Relaxed) && Instant::now() < next {
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
            samples
        })
    };
    let rt = runtime()?;
    let mut minutes = Vec::new();
    rt.block_on(async {
        let mut done = 0;
        while done < secs {
            let chunk = (secs - done).min(60);
            minutes.push(Minute {
                from_s: done,
                run: open_loop(&target, args.rate, chunk, args.connections).await,
            });
            done += chunk;
        }
    });
    let load_s = began.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let mut samples = sampler.join().unwrap_or_default();
    if let Some(rss_kib) = rss_kib(pid) {
        samples.push(Sample {
            at_s: began.elapsed().as_secs_f64(),
            rss_kib,
            disk: dir_bytes(&data),
        });
    }
    std::thread::sleep(Duration::from_secs(2));
    let logged = hearth_ai_gateway::logs::open_file(&hearth_ai_gateway::engine::logs_path(&data))
        .ok()
        .and_then(|c| {
            c.query_row("SELECT COUNT(*) FROM logs", [], |r| r.get::<_, i64>(0))
                .ok()
        });
    drop(gateway);
    let report = render_soak(
        args,
        command,
        &machine,
        bin,
        idle_kib,
        &samples,
        &mut minutes,
        load_s,
        logged,
    );
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| "bench/AI-GATEWAY-SOAK.md".into());
    std::fs::write(out, &report)?;
    print!("{report}");
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn render_soak(
    args: &AiGatewayArgs,
    command: &str,
    m: &Machine,
    bin: &std::path::Path,
    idle_kib: Option<u64>,
    samples: &[Sample],
    minutes: &mut [Minute],
    load_s: f64,
    logged: Option<i64>,
) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# AI Gateway: RSS over a soak of `hearth gateway`\n");
    let _ = writeln!(s, "- Date: {}", m.date_utc);
    let _ = writeln!(
        s,
        "- CPU: {}, {} logical CPUs (shared by the load generator, the double and the gateway)",
        m.cpu_model, m.logical_cpus
    );
    let _ = writeln!(
        s,
        "- Load average at the start: {}",
        m.load_average.as_deref().unwrap_or("?")
    );
    if let Some(r) = &m.revision {
        let _ = writeln!(
            s,
            "- Revision: {}{}",
            r.commit,
            if r.dirty {
                " (with uncommitted changes)"
            } else {
                ""
            }
        );
    }
    let _ = writeln!(
        s,
        "- Gateway: `{} gateway` with logging to SQLite (max_logs 100,000, drop oldest), exact cache (ttl 300 s, 64 MiB cap), per-key sliding-window limit and spend budget (64 keys)",
        bin.display()
    );
    let _ = writeln!(
        s,
        "- Load: open loop at {} requests/s over {} keep-alive connections for {:.0} s; three requests in four have a new body (cache miss), one in four repeats the same body (cache hit); RSS (VmRSS from /proc) sampled every {} s",
        args.rate, args.connections, load_s, args.sample_every
    );
    let _ = writeln!(s, "\nCommand:\n\n```sh\n{command}\n```\n");
    let first = samples.first().copied();
    let last = samples.last().copied();
    let peak = samples.iter().map(|x| x.rss_kib).max();
    let half = samples.len() / 2;
    let _ = writeln!(s, "## RSS\n");
    let _ = writeln!(s, "| | KiB |");
    let _ = writeln!(s, "|---|---:|");
    let kib = |v: Option<u64>| v.map_or("?".to_owned(), |v| v.to_string());
    let _ = writeln!(s, "| idle, before the load | {} |", kib(idle_kib));
    let _ = writeln!(
        s,
        "| first sample (load starting) | {} |",
        kib(first.map(|x| x.rss_kib))
    );
    let _ = writeln!(s, "| peak | {} |", kib(peak));
    let _ = writeln!(s, "| end | {} |", kib(last.map(|x| x.rss_kib)));
    let slope = |v: Option<f64>| v.map_or("?".to_owned(), |v| format!("{v:+.1}"));
    let _ = writeln!(
        s,
        "\n- Slope over the whole run: {} KiB/min",
        slope(slope_kib_per_min(samples))
    );
    let _ = writeln!(
        s,
        "- Slope over the second half (after the cache and log caps are reached): {} KiB/min",
        slope(slope_kib_per_min(&samples[half..]))
    );
    let _ = writeln!(
        s,
        "- Data directory on disk at the end: {} KiB; logs kept: {}",
        last.map_or("?".to_owned(), |x| (x.disk / 1024).to_string()),
        logged.map_or("?".into(), |v| v.to_string())
    );
    let _ = writeln!(s, "\n## Per minute\n");
    let _ = writeln!(
        s,
        "| from s | done/s | p50 ms | p99 ms | errors | RSS at the end KiB |"
    );
    let _ = writeln!(s, "|---:|---:|---:|---:|---:|---:|");
    for m in minutes.iter_mut() {
        let (p50, p99) = (m.run.pct(0.50), m.run.pct(0.99));
        let end_s = (m.from_s + 60) as f64;
        let rss = samples
            .iter()
            .rev()
            .find(|x| x.at_s <= end_s)
            .map(|x| x.rss_kib);
        let _ = writeln!(
            s,
            "| {} | {:.0} | {p50:.3} | {p99:.3} | {} | {} |",
            m.from_s,
            m.run.rate(),
            m.run.errors,
            kib(rss)
        );
    }
    let _ = writeln!(s, "\n## Samples\n");
    let _ = writeln!(s, "| s | RSS KiB | disk KiB |");
    let _ = writeln!(s, "|---:|---:|---:|");
    for x in samples {
        let _ = writeln!(s, "| {:.0} | {} | {} |", x.at_s, x.rss_kib, x.disk / 1024);
    }
    let errors = FIRST_ERRORS.lock().unwrap_or_else(|p| p.into_inner());
    if !errors.is_empty() {
        let _ = writeln!(s, "\n## First failure\n");
        for (port, e) in errors.iter() {
            let _ = writeln!(s, "- {port}: `{}`", e.replace(['`', '\n'], " "));
        }
    }
    s
}
