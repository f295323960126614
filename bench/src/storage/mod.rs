//! `hearth-bench storage`: each binding contract against the raw operation
//! it is built on, in one run, on one machine.
//!
//! Both sides of a case use the same data, the same keys in the same order,
//! and the same durability settings (`hearth_core::sqlite::open` for every
//! SQLite file, fsync + rename + directory fsync for every blob), so the
//! ratio is the price of the contract itself.

mod d1;
mod kv;
mod r2;
mod report;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::ValueEnum;

use crate::machine::Machine;
use crate::measure::{Plan, Side, Stats};

/// The binding groups the run can be limited to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Group {
    Kv,
    D1,
    R2,
}

#[derive(Debug, Clone, clap::Args)]
pub struct StorageArgs {
    /// Directory in which a temporary data directory is created (and removed
    /// afterwards). fsync-bound figures depend on its filesystem.
    /// [default: the Cargo target directory the binary was built into]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Where the markdown report is written. [default: bench/STORAGE-RESULTS.md]
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Print the report without writing it to a file.
    #[arg(long)]
    pub no_write: bool,

    /// Only these groups (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',', value_name = "GROUPS")]
    pub only: Vec<Group>,

    /// Multiplies every operation count, warm-up and the write time below
    /// (e.g. 0.1 for a smoke run).
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,

    /// Measured operations per side for KV get and D1 SELECT (the 4-thread
    /// case runs this many in total).
    #[arg(long, default_value_t = 200_000)]
    pub read_ops: u64,

    /// At most this many measured KV puts and D1 INSERTs per side (the case
    /// also ends after --write-secs).
    #[arg(long, default_value_t = 20_000)]
    pub write_ops: u64,

    /// Measured operations per side for R2 get.
    #[arg(long, default_value_t = 2_000)]
    pub blob_read_ops: u64,

    /// At most this many measured R2 puts per side (the case also ends
    /// after --write-secs).
    #[arg(long, default_value_t = 500)]
    pub blob_write_ops: u64,

    /// Measured time per side of each write case, in seconds. Writes are
    /// timed rather than counted: fsync latency differs by orders of
    /// magnitude between disks, and a fixed count would be either too few
    /// samples on a fast disk or minutes on a slow one.
    #[arg(long, default_value_t = 2.0)]
    pub write_secs: f64,

    /// Unmeasured writes per side before each write case.
    #[arg(long, default_value_t = 50)]
    pub write_warmup: u64,

    /// Unmeasured warm-up operations of the read cases, as a percentage of
    /// the measured ones.
    #[arg(long, default_value_t = 10)]
    pub warmup_percent: u64,

    /// Read cases split their measured operations into this many rounds,
    /// alternating which side goes first.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub rounds: u32,

    /// Rounds of the write cases: finer, because fsync latency drifts with
    /// the disk's state and both sides should see the same drift.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub write_rounds: u32,

    /// Threads of the parallel KV get case.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=256))]
    pub threads: u64,

    /// Upper bound on one side's measured time in one read case, in seconds.
    #[arg(long, default_value_t = 20.0)]
    pub max_case_secs: f64,

    /// Keys written before the KV read cases.
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub kv_keys: u64,

    /// Size of each KV value, in bytes.
    #[arg(long, default_value_t = 1_024)]
    pub kv_value_bytes: usize,

    /// Rows in the D1 table before the D1 cases.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub d1_rows: u64,

    /// Objects the R2 cases cycle over.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..))]
    pub r2_objects: u64,

    /// Size of each R2 object, in bytes.
    #[arg(long, default_value_t = 1 << 20)]
    pub r2_object_bytes: usize,
}

impl StorageArgs {
    fn plan(&self, ops: u64) -> Plan {
        let ops = ((ops as f64 * self.scale).round() as u64).max(1);
        Plan {
            ops,
            warmup: (ops * self.warmup_percent).div_ceil(100),
            rounds: self.rounds,
            max_secs: self.max_case_secs,
        }
    }

    fn write_plan(&self, ops: u64) -> Plan {
        let ops = ((ops as f64 * self.scale).round() as u64).max(1);
        Plan {
            ops,
            warmup: (self.write_warmup as f64 * self.scale).round() as u64,
            rounds: self.write_rounds,
            max_secs: self.write_secs * self.scale,
        }
    }

    fn threads(&self) -> usize {
        usize::try_from(self.threads).unwrap_or(4)
    }

    fn runs(&self, group: Group) -> bool {
        self.only.is_empty() || self.only.contains(&group)
    }
}

/// Which case a result belongs to; the report explains each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaseId {
    KvGet,
    KvGetParallel,
    KvPut,
    D1Select,
    D1Insert,
    R2Get,
    R2Put,
}

#[derive(Debug, Clone)]
pub struct CaseResult {
    pub id: CaseId,
    pub name: String,
    pub hearth: Stats,
    pub raw: Stats,
    /// For R2 put: the time to MD5 one object on this CPU, measured alone,
    /// to split Hearth's extra cost between hashing and the metadata commit.
    pub md5_time: Option<std::time::Duration>,
    /// The middle half of the rounds' Hearth/raw ratios: the run's own
    /// measure of its noise.
    pub round_ratios: Option<(f64, f64)>,
}

impl CaseResult {
    fn new(id: CaseId, name: String, sides: [Side; 2], bytes_per_op: Option<u64>) -> Self {
        let round_ratios = crate::measure::round_ratio_range(&sides[0], &sides[1]);
        let [hearth, raw] = sides;
        let result = Self {
            id,
            name,
            hearth: hearth.stats(bytes_per_op),
            raw: raw.stats(bytes_per_op),
            md5_time: None,
            round_ratios,
        };
        // Progress on stderr; the report goes to stdout at the end.
        eprintln!(
            "  {:<34} hearth {:>12} ops/s   raw {:>12} ops/s   ratio {:.2}",
            result.name,
            crate::measure::fmt_rate(result.hearth.ops_per_sec),
            crate::measure::fmt_rate(result.raw.ops_per_sec),
            result.ratio()
        );
        result
    }

    /// Hearth ops/s over raw ops/s.
    pub fn ratio(&self) -> f64 {
        if self.raw.ops_per_sec > 0.0 {
            self.hearth.ops_per_sec / self.raw.ops_per_sec
        } else {
            0.0
        }
    }
}

pub fn run(args: &StorageArgs, command_line: &str) -> Result<()> {
    let base = match &args.data_dir {
        Some(d) => d.clone(),
        None => default_data_base(),
    };
    std::fs::create_dir_all(&base)
        .with_context(|| format!("cannot create data directory base {}", base.display()))?;
    let tmp = tempfile::Builder::new()
        .prefix("hearth-bench-storage-")
        .tempdir_in(&base)
        .with_context(|| format!("cannot create a temporary directory in {}", base.display()))?;
    let dir = tmp.path().to_path_buf();
    let machine = Machine::describe(&dir);
    eprintln!("data in {} ({})", dir.display(), machine.filesystem);
    if cfg!(debug_assertions) {
        eprintln!("warning: debug build; figures are only meaningful with --release");
    }

    let started = Instant::now();
    let mut results = Vec::new();
    if args.runs(Group::Kv) {
        kv::run(args, &dir, &mut results)?;
    }
    if args.runs(Group::D1) {
        d1::run(args, &dir, &mut results)?;
    }
    if args.runs(Group::R2) {
        r2::run(args, &dir, &mut results)?;
    }
    let total = started.elapsed();

    let text = report::render(&report::Report {
        machine: &machine,
        data_dir: &dir,
        command_line,
        args,
        results: &results,
        total,
        release: !cfg!(debug_assertions),
    });
    println!("{text}");
    if !args.no_write {
        let out = args
            .output
            .clone()
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("STORAGE-RESULTS.md"));
        std::fs::write(&out, &text).with_context(|| format!("cannot write {}", out.display()))?;
        eprintln!("report written to {}", out.display());
    }
    drop(tmp);
    Ok(())
}

/// The target directory holding this binary (`target/release/hearth-bench`
/// → `target/`): on the project's disk, and already ignored by git. Falls
/// back to the system temporary directory.
fn default_data_base() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| {
            exe.ancestors()
                .find(|p| p.file_name().is_some_and(|n| n == "target"))
                .map(Path::to_path_buf)
        })
        .unwrap_or_else(std::env::temp_dir)
}

/// Folds a SQLite file's WAL back into the main file, so both sides of a
/// read case start from the same on-disk shape whatever their write history.
fn checkpoint(path: &Path) -> Result<()> {
    let conn = hearth_core::sqlite::open(path)?;
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .with_context(|| format!("checkpointing {}", path.display()))?;
    Ok(())
}

/// Deterministic filler bytes: printable ASCII when `text` (KV values are
/// read as text), otherwise arbitrary bytes.
fn payload(len: usize, text: bool) -> Vec<u8> {
    (0..len as u64)
        .map(|i| {
            let b = crate::measure::mix(i) as u8;
            if text { b'a' + b % 26 } else { b }
        })
        .collect()
}

/// Seconds since the epoch, read the way the injected system clock reads
/// it, so the raw side pays the same clock cost per read.
fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn progress(message: impl std::fmt::Display) {
    eprintln!("{message}");
}
