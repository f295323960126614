//! Analytics Engine and Rate Limiting, each against its raw limit in the
//! same run:
//!
//! - AE ingest: a worker served by `hearth serve` writes 250 points per
//!   request through `writeDataPoint`; points committed per second, end
//!   to end, against raw SQLite inserting the same rows in batches.
//! - AE query: `SELECT blob1, SUM(_sample_interval) ... GROUP BY blob1`
//!   over N rows through the SQL API's translation, against the same
//!   statement on the same file with rusqlite.
//! - Rate limiting: a hello-world worker with and without one
//!   `env.LIMITER.limit()` per request (the overhead), and the raw
//!   counter on 1M distinct keys (checks/s, bytes per key) against a bare
//!   `HashMap<String, u64>`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use hearth_analytics::AnalyticsEngine;
use hearth_core::SystemClock;

use crate::machine::Machine;

#[derive(Debug, Args)]
pub struct AnalyticsArgs {
    /// The hearth binary to serve the workers (a release build).
    #[arg(long, env = "HEARTH_BIN", default_value = "target/release/hearth")]
    pub hearth_bin: PathBuf,
    /// Rows for the GROUP BY query.
    #[arg(long, default_value_t = 10_000_000)]
    pub rows: u64,
    /// Distinct keys for the raw rate-limit counter.
    #[arg(long, default_value_t = 1_000_000)]
    pub keys: u64,
    /// Seconds of load per HTTP measurement.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Client connections for the HTTP measurements.
    #[arg(long, default_value_t = 8)]
    pub connections: usize,
    /// Where to write the report.
    #[arg(long, default_value = "bench/ANALYTICS-RESULTS.md")]
    pub out: PathBuf,
    /// The cases to run, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "counter,overhead,ingest,group-by"
    )]
    pub cases: Vec<String>,
}

const AE_WORKER: &str = r#"
export default {
  async fetch(request, env) {
    for (let i = 0; i < 250; i++) {
      env.EVENTS.writeDataPoint({ blobs: ["/path/" + (i % 50), "US"], doubles: [i, 1.5], indexes: ["tenant"] });
    }
    return new Response("ok");
  },
};
"#;

const HELLO: &str = r#"
export default {
  async fetch(request, env) {
    return new Response("Hello World!");
  },
};
"#;

const HELLO_LIMITED: &str = r#"
let n = 0;
export default {
  async fetch(request, env) {
    const { success } = await env.LIMITER.limit({ key: "client-" + (n++ % 1000) });
    return new Response(success ? "Hello World!" : "Too many");
  },
};
"#;

pub(crate) struct Served {
    child: Child,
    pub(crate) addr: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn serve(bin: &Path, dir: &Path, script: &str, extra: &str) -> Result<Served> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("index.js"), script)?;
    std::fs::write(
        dir.join("wrangler.toml"),
        format!("name = \"bench\"\nmain = \"index.js\"\n{extra}"),
    )?;
    let mut child = Command::new(bin)
        .arg("serve")
        .arg(dir.join("wrangler.toml"))
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.join("data"))
        .env("HEARTH_INTERNAL_TOKEN", "bench")
        .env("HEARTH_LOG", "warn,hearth=info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let stderr = child.stderr.take().ok_or_else(|| anyhow!("no stderr"))?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split(" on http://").nth(1)
                && let Some(t) = tx.take()
            {
                let _ = t.send(rest.split_whitespace().next().unwrap_or("").to_owned());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .map_err(|_| anyhow!("{} did not report its address", bin.display()))?;
    Ok(Served { child, addr })
}

/// One keep-alive request; the body of the answer.
fn keep_alive(stream: &mut TcpStream, path: &str, buf: &mut Vec<u8>) -> Result<Vec<u8>> {
    write!(stream, "GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n")?;
    buf.clear();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .ok_or_else(|| anyhow!("no content-length in {head}"))?;
            while buf.len() < end + 4 + len {
                let n = stream.read(&mut chunk)?;
                if n == 0 {
                    bail!("connection closed");
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            if !head.starts_with("http/1.1 200") {
                bail!("{head}");
            }
            return Ok(buf[end + 4..end + 4 + len].to_vec());
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            bail!("connection closed");
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Requests per second over `seconds` from `connections` keep-alive clients.
fn load(addr: &str, path: &str, connections: usize, seconds: u64) -> Result<(u64, f64)> {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let handles: Vec<_> = (0..connections)
        .map(|_| {
            let (stop, done, addr, path) =
                (stop.clone(), done.clone(), addr.to_owned(), path.to_owned());
            std::thread::spawn(move || -> Result<()> {
                let mut stream = TcpStream::connect(&addr)?;
                stream.set_nodelay(true)?;
                let mut buf = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    keep_alive(&mut stream, &path, &mut buf)?;
                    done.fetch_add(1, Ordering::Relaxed);
                }
                Ok(())
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(seconds));
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().map_err(|_| anyhow!("a client panicked"))??;
    }
    let n = done.load(Ordering::Relaxed);
    Ok((n, n as f64 / started.elapsed().as_secs_f64()))
}

fn sql(addr: &str, query: &str) -> Result<String> {
    let mut stream = TcpStream::connect(addr)?;
    write!(
        stream,
        "POST /__hearth/analytics_engine/sql HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer bench\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{query}",
        query.len()
    )?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw)?;
    Ok(raw.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned())
}

struct Figures {
    lines: Vec<String>,
}

impl Figures {
    fn row(&mut self, cells: &[String]) {
        self.lines.push(format!("| {} |", cells.join(" | ")));
    }
}

fn ingest(args: &AnalyticsArgs, tmp: &Path, f: &mut Figures) -> Result<()> {
    let server = serve(
        &args.hearth_bin,
        &tmp.join("ingest"),
        AE_WORKER,
        "[[analytics_engine_datasets]]\nbinding = \"EVENTS\"\ndataset = \"ingest\"\n",
    )?;
    let started = Instant::now();
    let server_cpu = process_cpu_secs(server.child.id());
    let (requests, _) = load(&server.addr, "/", args.connections, args.seconds)?;
    let sent = requests * 250;
    let load_secs = started.elapsed().as_secs_f64();
    let mut stored = 0u64;
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut last_change = Instant::now();
    while Instant::now() < deadline {
        let n: u64 = sql(
            &server.addr,
            "SELECT count() FROM ingest FORMAT TabSeparated",
        )?
        .trim()
        .parse()
        .unwrap_or(0);
        if n != stored {
            last_change = Instant::now();
        }
        stored = n;
        if stored >= sent || last_change.elapsed() > Duration::from_secs(2) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let end_to_end = started.elapsed().as_secs_f64();
    if stored != sent {
        bail!("{sent} points were written and {stored} are stored");
    }
    let hearth_rate = stored as f64 / end_to_end;
    let server_cpu = process_cpu_secs(server.child.id()) - server_cpu;
    drop(server);

    // The raw limit: the same rows into the same table shape, 1000 per
    // transaction, WAL and synchronous=FULL as hearth-core opens SQLite.
    let path = tmp.join("raw-ingest.sqlite");
    let raw = AnalyticsEngine::open(&path, SystemClock::shared())?;
    drop(raw);
    let mut conn = rusqlite::Connection::open(&path)?;
    conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;")?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    let (t, raw_cpu) = (Instant::now(), thread_cpu_ns());
    let mut i = 0u64;
    while i < stored.max(1) {
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO points (dataset, timestamp, index1, blob1, blob2, double1, double2) VALUES ('ingest', ?1, 'tenant', ?2, 'US', ?3, 1.5)",
            )?;
            for _ in 0..1000 {
                stmt.execute(rusqlite::params![
                    now - (i / 1000) as i64,
                    format!("/path/{}", i % 50),
                    (i % 250) as f64
                ])?;
                i += 1;
            }
        }
        tx.commit()?;
    }
    let raw_rate = i as f64 / t.elapsed().as_secs_f64();
    let raw_cpu_rate = i as f64 / (thread_cpu_ns().saturating_sub(raw_cpu) as f64 / 1e9);

    // The store alone: the same points through `AnalyticsEngine::write`
    // from one thread (no HTTP, no JS), with the default buffer, until all
    // are committed.
    let alone_n = stored.max(1);
    let store = AnalyticsEngine::open(&tmp.join("store-ingest.sqlite"), SystemClock::shared())?;
    let writer_cpu = writer_thread_cpu_ns();
    let t = Instant::now();
    for i in 0..alone_n {
        store.write(
            "ingest",
            hearth_analytics::DataPoint {
                blobs: vec![
                    Some(format!("/path/{}", i % 50).into_bytes()),
                    Some(b"US".to_vec()),
                ],
                doubles: vec![(i % 250) as f64, 1.5],
                indexes: vec![Some(b"tenant".to_vec())],
            },
        )?;
    }
    store.flush()?;
    let alone_rate = alone_n as f64 / t.elapsed().as_secs_f64();
    let writer_cpu = (writer_thread_cpu_ns() - writer_cpu) as f64 / 1e9;
    let kept = store.query("SELECT count() FROM ingest FORMAT TabSeparated")?;
    if kept.body.trim() != alone_n.to_string() {
        bail!("the store kept {} of {alone_n} points", kept.body.trim());
    }
    drop(store);
    f.row(&[
        "AE ingest, points/s committed".into(),
        format!("{hearth_rate:.0} ({stored} of {sent} written in {load_secs:.1} s, all on disk after {end_to_end:.1} s; {:.0} points per CPU-second of the whole server)", stored as f64 / server_cpu.max(0.01)),
        format!("{raw_rate:.0} (raw SQLite, 1000 rows per transaction; {raw_cpu_rate:.0} per CPU-second)"),
        format!("{:.2}", hearth_rate / raw_rate),
    ]);
    f.row(&[
        "AE store alone (`AnalyticsEngine::write` from one thread, no HTTP or JS), points/s committed".into(),
        format!("{alone_rate:.0} ({alone_n} points; {:.0} per CPU-second of the writer thread)", alone_n as f64 / writer_cpu.max(0.001)),
        format!("{raw_rate:.0} (raw SQLite, as above)"),
        format!("{:.2}", alone_rate / raw_rate),
    ]);
    Ok(())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn group_by(args: &AnalyticsArgs, tmp: &Path, f: &mut Figures) -> Result<()> {
    let path = tmp.join("groupby.sqlite");
    drop(AnalyticsEngine::open(&path, SystemClock::shared())?);
    let conn = rusqlite::Connection::open(&path)?;
    conn.execute_batch("PRAGMA journal_mode=WAL;")?;
    let t = Instant::now();
    // Timestamps within the last day, so the retention sweep keeps them.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    conn.execute(
        "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < ?1) \
         INSERT INTO points (dataset, timestamp, index1, blob1, blob2, double1) \
         SELECT 'big', ?2 - i % 86400, 'tenant', '/path/' || (i % 1000), 'US', i FROM c",
        [args.rows as i64, now],
    )?;
    let fill = t.elapsed().as_secs_f64();
    drop(conn);
    // Opening sums the points stored behind the writer's back into the
    // per-second rollup, as after an upgrade; the writer keeps it as it
    // commits, so this cost is paid once.
    let t = Instant::now();
    let engine = AnalyticsEngine::open(&path, SystemClock::shared())?;
    let rolled = t.elapsed().as_secs_f64();
    let raw = rusqlite::Connection::open(&path)?;
    const QUERY: &str = "SELECT blob1, SUM(_sample_interval) AS n FROM big GROUP BY blob1";
    let check = |body: &str| -> Result<()> {
        if !body.contains("\"rows\":1000") {
            bail!("unexpected answer: {}", &body[..body.len().min(200)]);
        }
        Ok(())
    };
    let direct_on = |table: &str| -> Result<f64> {
        let t = Instant::now();
        let mut stmt = raw.prepare_cached(&format!(
            "SELECT blob1, SUM(_sample_interval) AS n FROM {table} WHERE dataset = 'big' GROUP BY blob1"
        ))?;
        let rows: Vec<(String, i64)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        if rows.len() != 1000 {
            bail!("{} groups", rows.len());
        }
        Ok(t.elapsed().as_secs_f64())
    };
    // The same query through the points, as before the rollup (it may
    // pass the 10 s query limit): one warm-up and one counted run.
    let mut points_ms = None;
    for _ in 0..2 {
        let t = Instant::now();
        points_ms = match engine.query_points(QUERY) {
            Ok(out) => {
                check(&out.body)?;
                Some(t.elapsed().as_secs_f64() * 1000.0)
            }
            Err(e) if e.to_string().contains("ran longer") => None,
            Err(e) => return Err(e.into()),
        };
    }
    let direct = || direct_on("points_by_second");
    let mut on_points = Vec::new();
    for _ in 0..3 {
        on_points.push(direct_on("points")?);
    }
    let on_points = median(on_points);
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for round in 0..4 {
        let hearth = || -> Result<f64> {
            let t = Instant::now();
            let out = engine.query(QUERY)?;
            check(&out.body)?;
            Ok(t.elapsed().as_secs_f64())
        };
        // The first round warms the page cache and is not counted; the
        // side going first alternates.
        let (a, b) = if round % 2 == 0 {
            let a = hearth()?;
            (a, direct()?)
        } else {
            let b = direct()?;
            (hearth()?, b)
        };
        if round > 0 {
            ours.push(a);
            theirs.push(b);
        }
    }
    let (ours, theirs) = (median(ours), median(theirs));
    f.row(&[
        format!(
            "AE `SELECT blob1, SUM(_sample_interval) ... GROUP BY blob1`, {} rows, 1000 groups (per-second rollup)",
            args.rows
        ),
        format!("{:.0} ms (median of 3)", ours * 1000.0),
        format!(
            "{:.0} ms (rusqlite on the rollup table, same file; filled in {fill:.0} s, rolled up at open in {rolled:.0} s)",
            theirs * 1000.0
        ),
        format!("{:.2}", ours / theirs),
    ]);
    f.row(&[
        format!(
            "AE the same query read from the points (the path before the rollup), {} rows",
            args.rows
        ),
        match points_ms {
            Some(ms) => format!("{ms:.0} ms (one run after a warm-up)"),
            None => "over the 10 s query limit".to_owned(),
        },
        format!(
            "{:.0} ms (rusqlite on the points, median of 3)",
            on_points * 1000.0
        ),
        match points_ms {
            Some(ms) => format!("{:.2}", ms / (on_points * 1000.0)),
            None => "—".to_owned(),
        },
    ]);
    Ok(())
}

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// CPU time this thread has run, in ns (the scheduler's own count), so
/// a figure can be given per CPU-second as well as per second of a
/// machine shared with other work.
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// CPU seconds (user and system) process `pid` has used, from
/// /proc/<pid>/stat in clock ticks of 1/100 s (Linux's USER_HZ).
fn process_cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let field = |n: usize| -> f64 {
        rest.split_whitespace()
            .nth(n)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15, the 12th and 13th after it.
    (field(11) + field(12)) / 100.0
}

/// CPU time of this process's Analytics Engine writer threads, in ns.
fn writer_thread_cpu_ns() -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm"))
                .is_ok_and(|c| c.trim_end().starts_with("hearth-analytic"))
        })
        .filter_map(|t| {
            std::fs::read_to_string(t.path().join("schedstat"))
                .ok()?
                .split_whitespace()
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

/// Runs `f`, returning its result, the wall seconds and the CPU seconds
/// of this thread.
fn timed<T>(f: impl FnOnce() -> Result<T>) -> Result<(T, f64, f64)> {
    let (t, cpu) = (Instant::now(), thread_cpu_ns());
    let out = f()?;
    let cpu = thread_cpu_ns().saturating_sub(cpu) as f64 / 1e9;
    Ok((out, t.elapsed().as_secs_f64(), cpu))
}

fn raw_counter(args: &AnalyticsArgs, f: &mut Figures) -> Result<()> {
    let keys: Vec<String> = (0..args.keys).map(|i| format!("user-{i:08}")).collect();
    let before = rss_bytes();
    let ns = hearth_ratelimit::RateLimitNamespace::with_max_keys(SystemClock::shared(), keys.len());
    let ((), insert, insert_cpu) = timed(|| {
        for k in &keys {
            ns.limit(k, 100, 60)?;
        }
        Ok(())
    })?;
    let per_key = (rss_bytes().saturating_sub(before)) as f64 / keys.len() as f64;
    let (admitted, hit, hit_cpu) = timed(|| {
        let mut admitted = 0u64;
        for k in &keys {
            admitted += u64::from(ns.limit(k, 100, 60)?);
        }
        Ok(admitted)
    })?;
    if admitted != keys.len() as u64 {
        bail!("only {admitted} admitted");
    }
    drop(ns);

    let before = rss_bytes();
    let map = std::sync::Mutex::new(HashMap::<String, u64>::new());
    let ((), peer_insert, peer_insert_cpu) = timed(|| {
        for k in &keys {
            *map.lock()
                .map_err(|_| anyhow!("poisoned"))?
                .entry(k.clone())
                .or_default() += 1;
        }
        Ok(())
    })?;
    let peer_per_key = (rss_bytes().saturating_sub(before)) as f64 / keys.len() as f64;
    let ((), peer_hit, peer_hit_cpu) = timed(|| {
        for k in &keys {
            if let Some(c) = map
                .lock()
                .map_err(|_| anyhow!("poisoned"))?
                .get_mut(k.as_str())
            {
                *c += 1;
            }
        }
        Ok(())
    })?;
    let n = keys.len() as f64;
    let rate = |wall: f64, cpu: f64| {
        format!(
            "{:.0} ({:.0} per CPU-second)",
            n / wall,
            n / cpu.max(f64::MIN_POSITIVE)
        )
    };
    f.row(&[
        format!("Rate limit raw counter, {} new keys, checks/s", keys.len()),
        rate(insert, insert_cpu),
        format!(
            "{} (Mutex<HashMap<String, u64>>)",
            rate(peer_insert, peer_insert_cpu)
        ),
        format!("{:.2}", peer_insert / insert),
    ]);
    f.row(&[
        format!(
            "Rate limit raw counter, {} known keys, checks/s",
            keys.len()
        ),
        rate(hit, hit_cpu),
        rate(peer_hit, peer_hit_cpu),
        format!("{:.2}", peer_hit / hit),
    ]);
    f.row(&[
        "Rate limit memory, bytes per key (RSS growth, 13-byte keys)".into(),
        format!("{per_key:.0}"),
        format!("{peer_per_key:.0}"),
        format!("{:.2}", per_key / peer_per_key.max(1.0)),
    ]);
    Ok(())
}

fn limit_overhead(args: &AnalyticsArgs, tmp: &Path, f: &mut Figures) -> Result<()> {
    let limiter = "[[ratelimits]]\nname = \"LIMITER\"\nnamespace_id = \"1\"\nsimple = { limit = 1000000000, period = 60 }\n";
    let (mut plain, mut limited) = (Vec::new(), Vec::new());
    for round in 0..4 {
        let one = |limit: bool| -> Result<f64> {
            let dir = tmp.join(format!("rl-{round}-{limit}"));
            let server = if limit {
                serve(&args.hearth_bin, &dir, HELLO_LIMITED, limiter)?
            } else {
                serve(&args.hearth_bin, &dir, HELLO, "")?
            };
            load(&server.addr, "/", args.connections, 2)?;
            Ok(load(&server.addr, "/", args.connections, args.seconds)?.1)
        };
        if round % 2 == 0 {
            plain.push(one(false)?);
            limited.push(one(true)?);
        } else {
            limited.push(one(true)?);
            plain.push(one(false)?);
        }
    }
    let (p, l) = (median(plain), median(limited));
    f.row(&[
        "Hello world with one `limit()` per request, req/s".into(),
        format!("{l:.0}"),
        format!("{p:.0} (the same worker without `limit()`)"),
        format!("{:.3} (overhead {:.1}%)", l / p, (1.0 - l / p) * 100.0),
    ]);
    Ok(())
}

pub fn run(args: &AnalyticsArgs, command: &str) -> Result<()> {
    let tmp = tempfile::tempdir_in(".")?;
    let machine = Machine::describe(tmp.path());
    let mut f = Figures { lines: Vec::new() };
    let wanted = |case: &str| args.cases.iter().any(|c| c == case);
    if let Some(unknown) = args
        .cases
        .iter()
        .find(|c| !["counter", "overhead", "ingest", "group-by"].contains(&c.as_str()))
    {
        bail!("unknown case {unknown}: the cases are counter, overhead, ingest, group-by");
    }
    if wanted("counter") {
        raw_counter(args, &mut f)?;
    }
    if wanted("overhead") {
        limit_overhead(args, tmp.path(), &mut f)?;
    }
    if wanted("ingest") {
        ingest(args, tmp.path(), &mut f)?;
    }
    if wanted("group-by") {
        group_by(args, tmp.path(), &mut f)?;
    }
    let mut s = String::new();
    let _ = writeln!(s, "# Analytics Engine and Rate Limiting benchmarks\n");
    let _ = writeln!(
        s,
        "Each figure beside its raw limit or peer, measured in the same run. Run on demand, never in CI.\n"
    );
    let _ = writeln!(s, "{}", machine.markdown_facts(command));
    let _ = writeln!(
        s,
        "HTTP load: {} keep-alive connections from this process for {} s per measurement (the load generator shares the 2 cores with the server). The GROUP BY runs on a file filled by one `INSERT ... SELECT` with 1000 distinct `blob1` values over a day of seconds (432,000 distinct (second, `blob1`) pairs, so the per-second rollup holds about 23 points per row); both sides read the same file, Hearth through its SQL API translation (which adds the dataset filter the raw query spells out).\n",
        args.connections, args.seconds
    );
    let _ = writeln!(s, "| Case | Hearth | Raw limit / peer | Hearth ÷ peer |");
    let _ = writeln!(s, "|---|---:|---:|---:|");
    for line in &f.lines {
        let _ = writeln!(s, "{line}");
    }
    std::fs::write(&args.out, &s).with_context(|| format!("writing {}", args.out.display()))?;
    print!("{s}");
    Ok(())
}
