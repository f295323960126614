//! Vectorize through the binding, against hnswlib on the same data in the
//! same run:
//!
//! - 100k x 384 float32 vectors in clusters, cosine, loaded by a worker
//!   served by `hearth serve` (`upsert` in batches of 1000); each vector
//!   has a `cat` of ten values under a metadata index.
//! - Ground truth by brute force here, for every query, unfiltered and
//!   with `{ cat: "c3" }`.
//! - Recall@10 and per-query latency (p50, p99) from sequential requests,
//!   queries/s from several keep-alive clients, and upsert-to-visible:
//!   from sending an upsert to the first query that returns the vector.
//! - The peer, hnswlib (PyPI) with the same graph parameters, queried
//!   in-process (no HTTP, no JavaScript): `bench/run-vectorize.sh` installs
//!   it and passes its Python.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use hearth_vectorize::distance::dot;
use hearth_vectorize::hnsw::{EF_CONSTRUCTION, M};

use crate::analytics::serve;
use crate::machine::Machine;

#[derive(Debug, Args)]
pub struct VectorizeArgs {
    /// The hearth binary to serve the worker (a release build).
    #[arg(long, env = "HEARTH_BIN", default_value = "target/release/hearth")]
    pub hearth_bin: PathBuf,
    /// A Python with `hnswlib` and `numpy` for the peer; none skips it.
    #[arg(long)]
    pub peer_python: Option<PathBuf>,
    #[arg(long, default_value_t = 100_000)]
    pub vectors: usize,
    #[arg(long, default_value_t = 384)]
    pub dims: usize,
    #[arg(long, default_value_t = 1000)]
    pub queries: usize,
    /// Seconds of load per queries/s measurement.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Client connections for queries/s.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    #[arg(long, default_value = "bench/VECTORIZE-RESULTS.md")]
    pub out: PathBuf,
}

const WORKER: &str = r#"
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const body = new Float32Array(await request.arrayBuffer());
    if (url.pathname === "/load") {
      const dims = Number(url.searchParams.get("dims"));
      const from = Number(url.searchParams.get("from"));
      const vectors = [];
      for (let i = 0; i * dims < body.length; i++) {
        const id = from + i;
        vectors.push({ id: "v" + id, values: body.subarray(i * dims, (i + 1) * dims), metadata: { cat: "c" + (id % 10) } });
      }
      return new Response((await env.INDEX.upsert(vectors)).mutationId);
    }
    // The same request without the query: what HTTP and JavaScript cost.
    if (url.pathname === "/echo") return new Response(String(body.length));
    const options = { topK: 10 };
    const cat = url.searchParams.get("cat");
    if (cat) options.filter = { cat };
    const found = await env.INDEX.query(body, options);
    return new Response(found.matches.map((m) => m.id).join(","));
  },
};
"#;

/// Ids in clusters: 200 centres, each point a centre plus noise.
struct Data {
    dims: usize,
    vectors: Vec<f32>,
    queries: Vec<f32>,
}

fn gaussian(state: &mut u64) -> f32 {
    let mut uniform = || {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        ((*state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    let (u, v) = (uniform(), uniform());
    ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
}

fn generate(n: usize, queries: usize, dims: usize) -> Data {
    let mut s = 0x1234_5678_9ABC_DEF1u64;
    let centres: Vec<f32> = (0..200 * dims).map(|_| gaussian(&mut s)).collect();
    let point = |s: &mut u64| -> Vec<f32> {
        let c = (gaussian(s).abs() * 1e6) as usize % 200;
        (0..dims)
            .map(|d| centres[c * dims + d] + 0.6 * gaussian(s))
            .collect()
    };
    let vectors = (0..n).flat_map(|_| point(&mut s)).collect();
    let queries = (0..queries).flat_map(|_| point(&mut s)).collect();
    Data {
        dims,
        vectors,
        queries,
    }
}

fn normalised(v: &[f32]) -> Vec<f32> {
    let n = dot(v, v).sqrt().max(f32::MIN_POSITIVE);
    v.iter().map(|x| x / n).collect()
}

/// The exact 10 nearest by cosine for every query (2 threads).
fn ground_truth(data: &Data, filtered: bool) -> Vec<Vec<u32>> {
    let d = data.dims;
    let unit: Vec<Vec<f32>> = data.vectors.chunks(d).map(normalised).collect();
    let queries: Vec<Vec<f32>> = data.queries.chunks(d).map(normalised).collect();
    let half = queries.len().div_ceil(2);
    std::thread::scope(|scope| {
        let handles: Vec<_> = queries
            .chunks(half)
            .map(|qs| {
                let unit = &unit;
                scope.spawn(move || {
                    qs.iter()
                        .map(|q| {
                            let mut best: Vec<(f32, u32)> = unit
                                .iter()
                                .enumerate()
                                .filter(|(i, _)| !filtered || i % 10 == 3)
                                .map(|(i, v)| (-dot(q, v), i as u32))
                                .collect();
                            best.select_nth_unstable_by(9, |a, b| a.0.total_cmp(&b.0));
                            best.truncate(10);
                            best.into_iter().map(|(_, i)| i).collect()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    })
}

/// One keep-alive POST; the answer's body.
fn post(stream: &mut TcpStream, path: &str, body: &[u8], buf: &mut Vec<u8>) -> Result<String> {
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )?;
    stream.write_all(body)?;
    buf.clear();
    let mut chunk = [0u8; 8192];
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
            let text = String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).into_owned();
            if !head.starts_with("http/1.1 200") {
                bail!("{head}\n{text}");
            }
            return Ok(text);
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            bail!("connection closed");
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn get_json(addr: &str, path: &str) -> Result<serde_json::Value> {
    let mut stream = TcpStream::connect(addr)?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer bench\r\nConnection: close\r\n\r\n"
    )?;
    let mut text = String::new();
    stream.read_to_string(&mut text)?;
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
    serde_json::from_str(body).with_context(|| format!("{path}: {text}"))
}

fn bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

struct Side {
    recall: f64,
    p50_ms: f64,
    p99_ms: f64,
    qps: f64,
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

/// Recall and latency from one connection, then queries/s from several.
fn measure(
    args: &VectorizeArgs,
    addr: &str,
    data: &Data,
    truth: &[Vec<u32>],
    filtered: bool,
) -> Result<Side> {
    let path = if filtered { "/query?cat=c3" } else { "/query" };
    let mut stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    let mut buf = Vec::new();
    let (mut hits, mut lat) = (0usize, Vec::new());
    for (q, want) in data.queries.chunks(data.dims).zip(truth) {
        let t = Instant::now();
        let got = post(&mut stream, path, &bytes(q), &mut buf)?;
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
        hits += got
            .split(',')
            .filter_map(|id| id.strip_prefix('v')?.parse::<u32>().ok())
            .filter(|id| want.contains(id))
            .count();
    }
    lat.sort_by(f64::total_cmp);
    Ok(Side {
        recall: hits as f64 / (10 * truth.len()) as f64,
        p50_ms: pct(&lat, 0.5),
        p99_ms: pct(&lat, 0.99),
        qps: throughput(args, addr, data, path)?,
    })
}

/// Requests/s to `path` from several keep-alive clients, each sending the
/// queries in turn.
fn throughput(args: &VectorizeArgs, addr: &str, data: &Data, path: &str) -> Result<f64> {
    let bodies: Arc<Vec<Vec<u8>>> = Arc::new(data.queries.chunks(data.dims).map(bytes).collect());
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let handles: Vec<_> = (0..args.connections)
        .map(|c| {
            let (stop, done, bodies, addr, path) = (
                stop.clone(),
                done.clone(),
                bodies.clone(),
                addr.to_owned(),
                path.to_owned(),
            );
            std::thread::spawn(move || -> Result<()> {
                let mut stream = TcpStream::connect(&addr)?;
                stream.set_nodelay(true)?;
                let mut buf = Vec::new();
                let mut i = c * 97;
                while !stop.load(Ordering::Relaxed) {
                    post(&mut stream, &path, &bodies[i % bodies.len()], &mut buf)?;
                    done.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
                Ok(())
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(args.seconds));
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().map_err(|_| anyhow!("a client panicked"))??;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}

/// From sending an upsert of a query's own vector under a new id to the
/// first query answering with it; (p50, max) in ms over 50 tries.
fn upsert_to_visible(addr: &str, data: &Data) -> Result<(f64, f64)> {
    let mut writer = TcpStream::connect(addr)?;
    let mut reader = TcpStream::connect(addr)?;
    writer.set_nodelay(true)?;
    reader.set_nodelay(true)?;
    let mut buf = Vec::new();
    let mut times = Vec::new();
    for (i, q) in data.queries.chunks(data.dims).take(50).enumerate() {
        let id = 10_000_000 + i;
        let body = bytes(q);
        let t = Instant::now();
        post(
            &mut writer,
            &format!("/load?dims={}&from={id}", data.dims),
            &body,
            &mut buf,
        )?;
        loop {
            let got = post(&mut reader, "/query", &body, &mut buf)?;
            if got.split(',').next() == Some(&format!("v{id}")) {
                break;
            }
            if t.elapsed() > Duration::from_secs(10) {
                bail!("v{id} not visible after 10 s");
            }
        }
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    Ok((pct(&times, 0.5), times[times.len() - 1]))
}

fn write_u32s(path: &Path, rows: &[Vec<u32>]) -> Result<()> {
    let b: Vec<u8> = rows
        .iter()
        .flatten()
        .flat_map(|x| x.to_le_bytes())
        .collect();
    Ok(std::fs::write(path, b)?)
}

fn peer(args: &VectorizeArgs, dir: &Path) -> Result<Option<serde_json::Value>> {
    let Some(python) = &args.peer_python else {
        return Ok(None);
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/vectorize_hnswlib.py");
    let out = Command::new(python)
        .arg(script)
        .arg(dir)
        .args([
            args.dims.to_string(),
            M.to_string(),
            EF_CONSTRUCTION.to_string(),
            "96".into(),
            args.seconds.to_string(),
        ])
        .output()
        .context("running the hnswlib peer")?;
    if !out.status.success() {
        bail!(
            "hnswlib peer failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(Some(serde_json::from_slice(&out.stdout)?))
}

pub fn run(args: &VectorizeArgs, command: &str) -> Result<()> {
    let tmp = tempfile::tempdir_in(".")?;
    let machine = Machine::describe(tmp.path());
    let t = Instant::now();
    let data = generate(args.vectors, args.queries, args.dims);
    let truth = ground_truth(&data, false);
    let truth_f = ground_truth(&data, true);
    let truth_s = t.elapsed().as_secs_f64();
    std::fs::write(tmp.path().join("data.f32"), bytes(&data.vectors))?;
    std::fs::write(tmp.path().join("queries.f32"), bytes(&data.queries))?;
    write_u32s(&tmp.path().join("truth.u32"), &truth)?;
    write_u32s(&tmp.path().join("truth_filtered.u32"), &truth_f)?;

    let dir = tmp.path().join("hearth");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        dir.join("wrangler.toml"),
        "name = \"bench\"\nmain = \"index.js\"\n",
    )?;
    let cli = |a: &[&str]| -> Result<()> {
        let out = Command::new(&args.hearth_bin)
            .arg("vectorize")
            .args(a)
            .arg("--config")
            .arg(dir.join("wrangler.toml"))
            .arg("--data-dir")
            .arg(dir.join("data"))
            .output()?;
        if !out.status.success() {
            bail!(
                "hearth vectorize {a:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    };
    let dims = args.dims.to_string();
    cli(&[
        "create",
        "bench",
        "--dimensions",
        &dims,
        "--metric",
        "cosine",
    ])?;
    cli(&[
        "create-metadata-index",
        "bench",
        "--property-name",
        "cat",
        "--type",
        "string",
    ])?;
    let server = serve(
        &args.hearth_bin,
        &dir,
        WORKER,
        "\n[[vectorize]]\nbinding = \"INDEX\"\nindex_name = \"bench\"\n",
    )?;
    let addr = server.addr.clone();
    let mut stream = TcpStream::connect(&addr)?;
    let mut buf = Vec::new();
    let t = Instant::now();
    for (b, chunk) in data.vectors.chunks(1000 * args.dims).enumerate() {
        post(
            &mut stream,
            &format!("/load?dims={}&from={}", args.dims, b * 1000),
            &bytes(chunk),
            &mut buf,
        )?;
    }
    let load_s = t.elapsed().as_secs_f64();
    loop {
        let status = get_json(&addr, "/__hearth/vectorize/bench")?;
        if status["awaitingGraph"].as_u64() == Some(0) {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let graph_s = t.elapsed().as_secs_f64();
    // The indexer snapshots the graph once idle; waited for here so the
    // write does not fall inside the measurements.
    let db = dir.join("data").join("vectorize").join("bench.sqlite");
    let snapshot = || -> Option<(i64, i64)> {
        let conn = rusqlite::Connection::open(&db).ok()?;
        conn.query_row("SELECT nodes, length(data) FROM graph_snapshot", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .ok()
    };
    let waited = Instant::now();
    let snapshot_bytes = loop {
        match snapshot() {
            Some((nodes, len)) if nodes as usize >= args.vectors => break len,
            _ if waited.elapsed() > Duration::from_secs(300) => {
                bail!("no graph snapshot 300 s after the graph was complete")
            }
            _ => std::thread::sleep(Duration::from_millis(200)),
        }
    };
    let plain = measure(args, &addr, &data, &truth, false)?;
    let filtered = measure(args, &addr, &data, &truth_f, true)?;
    let echo_qps = throughput(args, &addr, &data, "/echo")?;
    // Restart: kill -9, serve again, time the first query (the index is
    // opened then: every vector read back, the graph from its snapshot)
    // and until nothing waits for the graph.
    drop(server);
    let t = Instant::now();
    let server = serve(
        &args.hearth_bin,
        &dir,
        WORKER,
        "\n[[vectorize]]\nbinding = \"INDEX\"\nindex_name = \"bench\"\n",
    )?;
    let addr = server.addr.clone();
    {
        let mut stream = TcpStream::connect(&addr)?;
        post(
            &mut stream,
            "/query",
            &bytes(&data.queries[..args.dims]),
            &mut buf,
        )?;
    }
    let restart_query_s = t.elapsed().as_secs_f64();
    loop {
        let status = get_json(&addr, "/__hearth/vectorize/bench")?;
        if status["awaitingGraph"].as_u64() == Some(0) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let restart_graph_s = t.elapsed().as_secs_f64();
    let after = measure(args, &addr, &data, &truth, false)?;
    let visible = upsert_to_visible(&addr, &data)?;
    drop(server);
    let peer = peer(args, tmp.path())?;

    let mut s = String::new();
    let _ = writeln!(s, "# Vectorize benchmark\n");
    let _ = writeln!(
        s,
        "Hearth's `[[vectorize]]` binding, queried by a worker through HTTP, beside hnswlib on the same vectors in the same run. Run on demand, never in CI.\n"
    );
    let _ = writeln!(s, "- Date: {}", machine.date_utc);
    let _ = writeln!(
        s,
        "- CPU: {}, {} logical CPUs",
        machine.cpu_model, machine.logical_cpus
    );
    let _ = writeln!(s, "- Memory: {}", machine.memory);
    if let Some(load) = &machine.load_average {
        let _ = writeln!(s, "- Load average at the start: {load}");
    }
    if let Some(rev) = &machine.revision {
        let _ = writeln!(
            s,
            "- Revision: {}{}",
            rev.commit,
            if rev.dirty { " (modified)" } else { "" }
        );
    }
    let _ = writeln!(s, "\nCommand:\n\n```sh\n{command}\n```\n");
    let _ = writeln!(
        s,
        "Data: {} x {} float32 vectors around 200 cluster centres, cosine; {} queries drawn the same way; metadata `cat` = `c0`..`c9` (the filtered case, `{{ cat: \"c3\" }}`, keeps 10%). Ground truth: brute force here ({truth_s:.0} s for both cases). Graph: M = {M}, ef_construction = {EF_CONSTRUCTION}, ef = 96 on both sides. Hearth: latency and recall from one keep-alive connection sending the queries in turn (each a worker request: HTTP, JavaScript, the binding); queries/s from {} connections for {} s (the load generator shares the cores with the server). hnswlib: in-process Python calls on one thread (no HTTP, no JavaScript), its filter a Python callback.\n",
        args.vectors, args.dims, args.queries, args.connections, args.seconds
    );
    let p = |path: &str| -> String {
        peer.as_ref()
            .and_then(|v| v.pointer(path))
            .and_then(serde_json::Value::as_f64)
            .map_or_else(|| "not run".into(), |x| format!("{x:.3}"))
    };
    let _ = writeln!(s, "| Case | Hearth | hnswlib (peer) | Goal |");
    let _ = writeln!(s, "|---|---:|---:|---:|");
    let rows = [
        (
            "recall@10, no filter",
            format!("{:.3}", plain.recall),
            p("/plain/recall"),
            ">= 0.95",
        ),
        (
            "recall@10, filter",
            format!("{:.3}", filtered.recall),
            p("/filtered/recall"),
            ">= 0.95",
        ),
        (
            "queries/s, no filter",
            format!("{:.0}", plain.qps),
            p("/plain/qps"),
            ">= 800",
        ),
        (
            "queries/s, filter",
            format!("{:.0}", filtered.qps),
            p("/filtered/qps"),
            ">= 800",
        ),
        (
            "requests/s, the same worker not querying (HTTP and JavaScript alone)",
            format!("{echo_qps:.0}"),
            "".into(),
            "",
        ),
        (
            "p50 ms, no filter",
            format!("{:.2}", plain.p50_ms),
            p("/plain/p50_ms"),
            "",
        ),
        (
            "p99 ms, no filter",
            format!("{:.2}", plain.p99_ms),
            p("/plain/p99_ms"),
            "<= 10",
        ),
        (
            "p50 ms, filter",
            format!("{:.2}", filtered.p50_ms),
            p("/filtered/p50_ms"),
            "",
        ),
        (
            "p99 ms, filter",
            format!("{:.2}", filtered.p99_ms),
            p("/filtered/p99_ms"),
            "<= 10",
        ),
        (
            "upsert-to-visible p50 ms",
            format!("{:.2}", visible.0),
            p("/visible_p50_ms"),
            "",
        ),
        (
            "upsert-to-visible max ms",
            format!("{:.2}", visible.1),
            p("/visible_max_ms"),
            "<= 50",
        ),
        (
            "load, s (Hearth: 100 upserts of 1000 through the worker, acknowledged)",
            format!("{load_s:.1}"),
            "".into(),
            "",
        ),
        (
            "graph complete, s (Hearth: from the first upsert; hnswlib: add_items, 1 thread)",
            format!("{graph_s:.1}"),
            p("/build_s"),
            "",
        ),
        (
            "restart after kill -9 to the first query answered, s (Hearth: graph from its snapshot)",
            format!("{restart_query_s:.1}"),
            "".into(),
            "",
        ),
        (
            "restart after kill -9 to the graph complete, s",
            format!("{restart_graph_s:.1}"),
            "".into(),
            "",
        ),
        (
            "recall@10 after the restart, no filter",
            format!("{:.3}", after.recall),
            "".into(),
            ">= 0.95",
        ),
        (
            "graph snapshot, MB",
            format!("{:.1}", snapshot_bytes as f64 / 1e6),
            "".into(),
            "",
        ),
    ];
    for (case, h, peer, goal) in rows {
        let _ = writeln!(s, "| {case} | {h} | {peer} | {goal} |");
    }
    std::fs::write(&args.out, &s).with_context(|| format!("writing {}", args.out.display()))?;
    print!("{s}");
    Ok(())
}
