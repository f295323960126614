//! Cold start: how long a new isolate takes to be ready to serve, for a
//! hello world and for a bundle of about 1 MB, with the module compiled
//! (a source never seen), from the process's bytecode cache (every isolate
//! after the first), and from the bytecode directory (the first isolate of
//! a new process), beside the raw limit of QuickJS itself doing the same
//! compile or bytecode load and evaluation with nothing else. Also idle
//! RSS per isolate.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use hearth_runtime::{IsolatePool, WorkerConfig, WorkerRequest, bytecode};
use rquickjs::{Context as JsContext, Module, Runtime, WriteOptions};

use crate::machine::Machine;

#[derive(Debug, clap::Args)]
pub struct ColdStartArgs {
    /// Isolate starts measured per case (the median is reported).
    #[arg(long, default_value_t = 15)]
    pub runs: usize,
    /// Functions in the large bundle (6000 make about 1 MB).
    #[arg(long, default_value_t = 6000)]
    pub functions: usize,
    /// Isolates started at once for the idle RSS figure.
    #[arg(long, default_value_t = 8)]
    pub rss_isolates: usize,
    #[arg(long, default_value = "bench/COLDSTART-RESULTS.md")]
    pub out: PathBuf,
}

/// A module of `functions` small functions and a table using all of them,
/// so nothing is dead code; `salt` makes each source distinct when a case
/// must miss the cache.
fn bundle(functions: usize, salt: &str) -> String {
    let mut s = format!("// {salt}\n");
    for i in 0..functions {
        let _ = writeln!(
            s,
            "function f{i}(a, b) {{ const o = {{ k{i}: a + {i}, s: 'str{i}' + b }}; if (o.k{i} > {m}) return o.s.length; return [a, b, {i}].map((x) => x * 2).reduce((p, q) => p + q, 0); }}",
            m = i * 3
        );
    }
    let names: Vec<String> = (0..functions).map(|i| format!("f{i}")).collect();
    let _ = writeln!(s, "const table = [{}];", names.join(", "));
    s.push_str("export default { fetch() { return new Response(String(table.length + table[7](1, 'x'))); } };\n");
    s
}

const HELLO: &str = "export default { fetch() { return new Response('hello'); } };\n";

fn median_ms(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// Starts a one-isolate pool on `main`, checks it answers, and returns the
/// time `IsolatePool::start` took (the isolate is ready when it returns).
fn start_once(main: &Path, rt: &tokio::runtime::Runtime, dir: Option<&Path>) -> Result<f64> {
    let mut config = WorkerConfig::new(main);
    config.isolates = 1;
    config.bytecode_dir = dir.map(Path::to_path_buf);
    let t = Instant::now();
    let pool = IsolatePool::start(config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    let r = rt
        .block_on(pool.dispatch(WorkerRequest::new(
            "b",
            "GET",
            "http://localhost/".to_string(),
        )))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if r.status != 200 {
        bail!("the bench worker answered {}", r.status);
    }
    pool.shutdown();
    pool.join();
    Ok(ms)
}

/// Raw QuickJS: a new runtime and context, then the module compiled from
/// source (or loaded from `bytecode`) and evaluated.
fn raw_once(source: &str, bytecode: Option<&[u8]>) -> Result<f64> {
    let t = Instant::now();
    let runtime = Runtime::new()?;
    let context = JsContext::full(&runtime)?;
    context.with(|ctx| -> Result<()> {
        let module = match bytecode {
            // SAFETY: written by `Module::write` in this process.
            Some(b) => unsafe { Module::load(ctx.clone(), b)? },
            None => Module::declare(ctx.clone(), "bundle.js", source)?,
        };
        let (_module, promise) = module.eval()?;
        while ctx.execute_pending_job() {}
        drop(promise);
        Ok(())
    })?;
    Ok(t.elapsed().as_secs_f64() * 1000.0)
}

/// Raw QuickJS reading the bytecode from a file, unchecked.
fn raw_file_once(source: &str, file: &Path) -> Result<f64> {
    let t = Instant::now();
    let bytes = std::fs::read(file)?;
    let loaded = t.elapsed().as_secs_f64() * 1000.0;
    Ok(loaded + raw_once(source, Some(&bytes))?)
}

fn raw_bytecode(source: &str) -> Result<Vec<u8>> {
    let runtime = Runtime::new()?;
    let context = JsContext::full(&runtime)?;
    context.with(|ctx| -> Result<Vec<u8>> {
        let module = Module::declare(ctx.clone(), "bundle.js", source)?;
        Ok(module.write(WriteOptions::default())?)
    })
}

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0)
        * 4096
}

/// RSS growth per isolate with `count` idle isolates of `main` started.
fn idle_rss_per_isolate(main: &Path, count: usize) -> Result<f64> {
    let before = rss_bytes();
    let mut config = WorkerConfig::new(main);
    config.isolates = count;
    let pool = IsolatePool::start(config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let per = rss_bytes().saturating_sub(before) as f64 / count as f64;
    pool.shutdown();
    pool.join();
    Ok(per)
}

pub fn run(args: &ColdStartArgs, command: &str) -> Result<()> {
    if args.runs == 0 || args.rss_isolates == 0 {
        bail!("--runs and --rss-isolates must be at least 1");
    }
    let tmp = tempfile::tempdir_in(".")?;
    let machine = Machine::describe(tmp.path());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let hello = tmp.path().join("hello/index.js");
    std::fs::create_dir_all(hello.parent().context("hello dir")?)?;
    std::fs::write(&hello, HELLO)?;
    let big_dir = tmp.path().join("big");
    std::fs::create_dir_all(&big_dir)?;
    let big = big_dir.join("index.js");
    let source = bundle(args.functions, "cached");
    std::fs::write(&big, &source)?;
    let bytecode = raw_bytecode(&source)?;
    let raw_file = tmp.path().join("raw.qbc");
    std::fs::write(&raw_file, &bytecode)?;

    let mut rows: Vec<[String; 4]> = Vec::new();
    let mut hello_ms = Vec::new();
    let mut raw_hello = Vec::new();
    let mut compiled = Vec::new();
    let mut raw_compiled = Vec::new();
    let mut cached = Vec::new();
    let mut raw_cached = Vec::new();
    let mut from_disk = Vec::new();
    let mut raw_disk = Vec::new();
    let disk = tmp.path().join("bytecode");
    start_once(&big, &rt, Some(&disk))?; // fills both caches for `source`
    for run in 0..args.runs {
        // Alternate which side goes first so drift hits both.
        let hearth_first = run % 2 == 0;
        let fresh_dir = tmp.path().join(format!("fresh-{run}"));
        std::fs::create_dir_all(&fresh_dir)?;
        let fresh = fresh_dir.join("index.js");
        let fresh_source = bundle(args.functions, &format!("miss {run}"));
        std::fs::write(&fresh, &fresh_source)?;
        let mut hearth = || -> Result<()> {
            hello_ms.push(start_once(&hello, &rt, None)?);
            compiled.push(start_once(&fresh, &rt, None)?);
            cached.push(start_once(&big, &rt, None)?);
            // As in a new process: nothing in memory, the file on disk
            // (loading it refills the memory cache for the next round).
            bytecode::forget_in_memory();
            from_disk.push(start_once(&big, &rt, Some(&disk))?);
            Ok(())
        };
        let mut raw = || -> Result<()> {
            raw_hello.push(raw_once(HELLO, None)?);
            raw_compiled.push(raw_once(&fresh_source, None)?);
            raw_cached.push(raw_once(&source, Some(&bytecode))?);
            raw_disk.push(raw_file_once(&source, &raw_file)?);
            Ok(())
        };
        if hearth_first {
            hearth()?;
            raw()?;
        } else {
            raw()?;
            hearth()?;
        }
    }
    let kb = source.len() / 1024;
    for (case, h, r) in [
        ("Hello world, isolate ready (ms)", &hello_ms, &raw_hello),
        (
            "1 MB bundle, compiled from source (ms)",
            &compiled,
            &raw_compiled,
        ),
        (
            "1 MB bundle, from the bytecode cache (ms)",
            &cached,
            &raw_cached,
        ),
        (
            "1 MB bundle, first isolate of a new process, bytecode from the data dir (ms)",
            &from_disk,
            &raw_disk,
        ),
    ] {
        let (h, r) = (median_ms(h.clone()), median_ms(r.clone()));
        rows.push([
            case.replace("1 MB", &format!("{kb} KiB")),
            format!("{h:.2}"),
            format!("{r:.2}"),
            format!("{:.2}", h / r),
        ]);
    }
    let hello_rss = idle_rss_per_isolate(&hello, args.rss_isolates)?;
    let big_rss = idle_rss_per_isolate(&big, args.rss_isolates)?;

    let mut s = String::new();
    let _ = writeln!(s, "# Cold start\n");
    let _ = writeln!(
        s,
        "How long a new isolate takes to be ready to serve (`IsolatePool::start` with one isolate, then one request checked), median of {} starts per case, beside raw QuickJS doing only the same compile (or bytecode load) and evaluation in a new runtime. Run on demand, never in CI.\n",
        args.runs
    );
    let _ = writeln!(s, "{}", machine.markdown_facts(command));
    let _ = writeln!(s, "| Case | Hearth | Raw QuickJS | Hearth ÷ raw |");
    let _ = writeln!(s, "|---|---:|---:|---:|");
    for r in &rows {
        let _ = writeln!(s, "| {} | {} | {} | {} |", r[0], r[1], r[2], r[3]);
    }
    let _ = writeln!(
        s,
        "\nIdle RSS per isolate ({} isolates started at once, RSS growth of this process ÷ {}): hello world {:.1} MiB, the {kb} KiB bundle {:.1} MiB.",
        args.rss_isolates,
        args.rss_isolates,
        hello_rss / (1024.0 * 1024.0),
        big_rss / (1024.0 * 1024.0)
    );
    std::fs::write(&args.out, &s).with_context(|| format!("writing {}", args.out.display()))?;
    print!("{s}");
    Ok(())
}
