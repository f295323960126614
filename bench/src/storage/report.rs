//! The markdown report: setting, table, what each side does, and a reading
//! of the figures that is recomputed on every run.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use super::{CaseId, CaseResult, StorageArgs};
use crate::machine::Machine;
use crate::measure::{Stats, fmt_count, fmt_latency, fmt_rate};

pub struct Report<'a> {
    pub machine: &'a Machine,
    pub data_dir: &'a Path,
    pub command_line: &'a str,
    pub args: &'a StorageArgs,
    pub results: &'a [CaseResult],
    pub total: Duration,
    pub release: bool,
}

pub fn render(r: &Report<'_>) -> String {
    let mut s = String::new();
    let m = r.machine;
    let _ = writeln!(
        s,
        "# Storage benchmark: binding contracts vs raw SQLite and files\n"
    );
    let _ = writeln!(
        s,
        "Measured {}{}, {} build, {:.0} s for the whole run.\n",
        m.date_utc,
        m.revision
            .as_ref()
            .map(|rev| format!(
                " at revision `{}`{}",
                rev.commit,
                if rev.dirty {
                    " (with uncommitted changes in the measured crates)"
                } else {
                    ""
                }
            ))
            .unwrap_or_default(),
        if r.release {
            "release"
        } else {
            "DEBUG (figures not meaningful)"
        },
        r.total.as_secs_f64()
    );

    let _ = writeln!(s, "## Machine\n");
    let _ = writeln!(s, "- CPU: {}, {} logical CPUs", m.cpu_model, m.logical_cpus);
    let _ = writeln!(s, "- Memory: {}", m.memory);
    let _ = writeln!(s, "- Kernel: {}", m.kernel);
    if let Some(load) = &m.load_average {
        let _ = writeln!(
            s,
            "- Load average when the run started (1, 5, 15 min): {load}"
        );
    }
    // Shown relative to the workspace when it is inside it: the absolute
    // path says nothing to a reader on another machine.
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent();
    let shown = workspace
        .and_then(|w| r.data_dir.strip_prefix(w).ok())
        .map_or_else(
            || format!("`{}`", r.data_dir.display()),
            |rel| format!("`{}` in the workspace", rel.display()),
        );
    let _ = writeln!(
        s,
        "- Data directory: {shown} (temporary, removed after the run)"
    );
    let _ = writeln!(s, "- Filesystem of the data directory: {}\n", m.filesystem);

    let _ = writeln!(s, "## Reproduce\n");
    let _ = writeln!(s, "```sh\n{}\n```\n", r.command_line);
    let a = r.args;
    let _ = writeln!(s, "Settings (`--help` lists the options):\n");
    if a.scale != 1.0 {
        let _ = writeln!(
            s,
            "- Every count, warm-up and the write time below are multiplied by {}.",
            a.scale
        );
    }
    let _ = writeln!(
        s,
        "- Reads: {} ops per side for KV get and D1 SELECT ({} in total over {} threads for \
         the threaded case), {} for R2 get, after {}% as many unmeasured ones; {} rounds; \
         at most {} s per side per case.",
        fmt_count(a.read_ops),
        fmt_count(a.read_ops),
        a.threads,
        fmt_count(a.blob_read_ops),
        a.warmup_percent,
        a.rounds,
        a.max_case_secs,
    );
    let _ = writeln!(
        s,
        "- Writes: each side writes for {} s (at most {} KV puts or D1 INSERTs, {} R2 puts), \
         after {} unmeasured ones; {} rounds.",
        a.write_secs,
        fmt_count(a.write_ops),
        fmt_count(a.blob_write_ops),
        a.write_warmup,
        a.write_rounds,
    );
    let _ = writeln!(
        s,
        "- Rounds alternate which side goes first, so drift in the machine's state reaches \
         both sides."
    );
    let _ = writeln!(
        s,
        "- Data: KV {} keys of {} bytes; D1 a table of {} rows; R2 {} objects of {} bytes.\n",
        fmt_count(a.kv_keys),
        fmt_count(a.kv_value_bytes as u64),
        fmt_count(a.d1_rows),
        a.r2_objects,
        fmt_count(a.r2_object_bytes as u64)
    );

    let _ = writeln!(s, "## Results\n");
    s.push_str(&table(r.results));
    let _ = writeln!(
        s,
        "\nops/s: measured operations over their wall time (for the threaded case, all \
         threads together). p50 / p99: per-operation latency. MB/s: object payload, \
         10^6 bytes per second. Hearth/raw: ratio of ops/s; 1.00 would mean the contract \
         costs nothing. The last column is the 25th to 75th percentile of the ratio \
         measured round by round: how far the comparison moved within this run.\n"
    );

    let _ = writeln!(s, "## What each side does\n");
    for c in r.results {
        let _ = writeln!(s, "- **{}**: {}", c.name, method(c.id, r.args));
    }
    s.push('\n');

    let _ = writeln!(s, "## Reading\n");
    for c in r.results {
        let mut line = reading(c, r.results, m.logical_cpus);
        if c.ratio() > 1.03 {
            line.push_str(
                " Hearth ahead of raw can only be noise: it does the raw work \
                 and more.",
            );
        }
        let _ = writeln!(s, "- {line}");
    }
    let _ = writeln!(
        s,
        "- Caveats: one run, not a distribution of runs, so differences of a few percent \
         are noise. A write case on a slow disk has only hundreds of samples, so its p99 \
         is set by a handful of slow fsyncs. Load from other processes lands on whichever \
         side runs at that moment; alternating rounds spread it over both, and the last \
         column of the table shows how much it moved the comparison. Every write figure, \
         Hearth and raw alike, is bound to the fsync latency of the device and filesystem \
         named above; another disk moves them all. Only the storage layer is measured: no \
         JavaScript, no HTTP."
    );
    s
}

fn table(results: &[CaseResult]) -> String {
    let mut s = String::new();
    s.push_str(
        "| Case | Hearth ops/s | Raw ops/s | Hearth/raw | Hearth p50 | Hearth p99 \
         | Raw p50 | Raw p99 | Hearth MB/s | Raw MB/s | Ops (Hearth / raw) \
         | Hearth/raw, middle half of rounds |\n",
    );
    s.push_str("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n");
    for c in results {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.2} | {} | {} | {} | {} | {} | {} | {} / {} | {} |",
            c.name,
            fmt_rate(c.hearth.ops_per_sec),
            fmt_rate(c.raw.ops_per_sec),
            c.ratio(),
            fmt_latency(c.hearth.p50),
            fmt_latency(c.hearth.p99),
            fmt_latency(c.raw.p50),
            fmt_latency(c.raw.p99),
            mb(&c.hearth),
            mb(&c.raw),
            fmt_count(c.hearth.ops),
            fmt_count(c.raw.ops),
            c.round_ratios
                .map_or("–".to_owned(), |(lo, hi)| format!("{lo:.2}–{hi:.2}")),
        );
    }
    s
}

fn method(id: CaseId, a: &StorageArgs) -> String {
    match id {
        CaseId::KvGet => {
            "Hearth: `KvNamespace::get(key, text)` on a random existing key. Raw: the \
             same cached `SELECT value, expiration, metadata … WHERE key = ? AND (expiration \
             IS NULL OR expiration > ?)` on a table of the same shape."
                .to_owned()
        }
        CaseId::KvGetParallel => format!(
            "{} threads at once. Hearth: one `KvNamespace` shared by all threads, as a \
             server shares a binding. Raw: one connection per thread.",
            a.threads
        ),
        CaseId::KvPut => "Hearth: `KvNamespace::put` of a new key, no options. Raw: the same \
             upsert statement, autocommit. Both durable on return (WAL, synchronous=FULL)."
            .to_owned(),
        CaseId::D1Select => "Hearth: `db.prepare(\"SELECT id, name, email, score FROM users \
             WHERE id = ?1\").bind([id]).first()` for a random existing id. Raw: the same \
             statement from rusqlite's statement cache, autocommit."
            .to_owned(),
        CaseId::D1Insert => "Hearth: `db.prepare(\"INSERT INTO users (name, email, score) \
             VALUES (?1, ?2, ?3)\").bind(…).run()`. Raw: the same cached statement, \
             autocommit. Both durable on return."
            .to_owned(),
        CaseId::R2Get => "Hearth: `R2Bucket::get(key)` and the whole body read into memory. \
             Raw: `std::fs::read` of a file of the same size."
            .to_owned(),
        CaseId::R2Put => format!(
            "Hearth: `R2Bucket::put(key, body)`, replacing one of {} keys in turn. Raw: \
             write a temporary file, fsync it, rename it over the old one, fsync the \
             directory.",
            a.r2_objects
        ),
    }
}

/// Extra time per operation that Hearth's lower rate implies.
fn extra_per_op(c: &CaseResult) -> Option<Duration> {
    let (h, r) = (c.hearth.ops_per_sec, c.raw.ops_per_sec);
    if h <= 0.0 || r <= 0.0 || h >= r {
        return None;
    }
    Some(Duration::from_secs_f64(1.0 / h - 1.0 / r))
}

fn pct(ratio: f64) -> String {
    format!("{:.0}%", ratio * 100.0)
}

fn cost_phrase(c: &CaseResult) -> String {
    match extra_per_op(c) {
        Some(d) => format!("about {} more per operation", fmt_latency(d)),
        None => "no measurable extra cost".to_owned(),
    }
}

fn reading(c: &CaseResult, all: &[CaseResult], cpus: usize) -> String {
    let h = &c.hearth;
    let r = &c.raw;
    match c.id {
        CaseId::KvGet => format!(
            "**KV get.** Hearth serves {} gets/s, {} of the bare statement's {} ({}; p50 {} vs \
             {}). Both run the same statement on the same data, so the gap is the contract's \
             own work per call: key and cacheTtl validation, a clock read, the namespace's \
             connection mutex, and handing the value back as text.",
            fmt_rate(h.ops_per_sec),
            pct(c.ratio()),
            fmt_rate(r.ops_per_sec),
            cost_phrase(c),
            fmt_latency(h.p50),
            fmt_latency(r.p50),
        ),
        CaseId::KvGetParallel => {
            let single = all.iter().find(|x| x.id == CaseId::KvGet);
            let scale = |threaded: f64, one: Option<f64>| {
                one.filter(|v| *v > 0.0)
                    .map(|v| format!(" ({:.2}× its single-thread rate)", threaded / v))
                    .unwrap_or_default()
            };
            let hs = single.map(|x| h.ops_per_sec / x.hearth.ops_per_sec.max(f64::MIN_POSITIVE));
            let rs = single.map(|x| r.ops_per_sec / x.raw.ops_per_sec.max(f64::MIN_POSITIVE));
            let verdict = match (hs, rs) {
                (Some(hs), Some(rs)) if rs > hs * 1.25 => {
                    " Here the shared connection is the limit: raw scales and Hearth does not. \
                     A small pool of read connections per namespace would let reads use the \
                     other cores."
                }
                (Some(_), Some(_)) => {
                    " On this machine the shared connection costs little beside what the \
                     cores allow."
                }
                _ => "",
            };
            format!(
                "**KV get, threaded.** Hearth: {} gets/s{}; raw: {} gets/s{}; Hearth/raw {:.2}. \
                 A `KvNamespace` runs every call on one SQLite connection behind a mutex, so \
                 concurrent gets take turns, while WAL lets the raw side's separate \
                 connections read in parallel. This machine has {} logical CPUs.{}",
                fmt_rate(h.ops_per_sec),
                scale(h.ops_per_sec, single.map(|x| x.hearth.ops_per_sec)),
                fmt_rate(r.ops_per_sec),
                scale(r.ops_per_sec, single.map(|x| x.raw.ops_per_sec)),
                c.ratio(),
                cpus,
                verdict
            )
        }
        CaseId::KvPut => format!(
            "**KV put.** Both sides commit one transaction per put and wait for its WAL fsync \
             (synchronous=FULL; strace shows exactly one per put on each side), so the raw p50 of {} is this disk's commit latency. \
             Hearth/raw {:.2} ({}); p99 {} vs {}. The contract's own work per put \
             (validation, the clock, the mutex) is microseconds, so a larger gap comes from \
             the disk rather than from the code.{}",
            fmt_latency(r.p50),
            c.ratio(),
            cost_phrase(c),
            fmt_latency(h.p99),
            fmt_latency(r.p99),
            lopsided(r),
        ),
        CaseId::D1Select => format!(
            "**D1 SELECT.** Hearth reaches {} of a cached prepared statement ({} vs {} \
             queries/s, {}). Per call, `D1Database` checks the statement's size and \
             parameters, splits the SQL into statements, prepares it afresh (there is no \
             statement cache), wraps it in `BEGIN IMMEDIATE … COMMIT` (so even a read takes \
             SQLite's write lock), reads `page_count` before and after for `meta`, reads the \
             commit sequence for the session bookmark, and builds a row keyed by column \
             name. Caching prepared statements and running read-only statements without the \
             write lock are the obvious levers if reads ever matter more than this.",
            pct(c.ratio()),
            fmt_rate(h.ops_per_sec),
            fmt_rate(r.ops_per_sec),
            cost_phrase(c),
        ),
        CaseId::D1Insert => format!(
            "**D1 INSERT.** One commit and one WAL fsync per insert on both sides; Hearth \
             also bumps its commit sequence inside the same transaction and does the per-call \
             work described for SELECT. Hearth/raw {:.2} ({}); p50 {} vs {}, p99 {} vs {}.",
            c.ratio(),
            cost_phrase(c),
            fmt_latency(h.p50),
            fmt_latency(r.p50),
            fmt_latency(h.p99),
            fmt_latency(r.p99),
        ),
        CaseId::R2Get => format!(
            "**R2 get.** {} vs {} MB/s (Hearth/raw {:.2}, {}). The objects were written \
             moments before, so both sides read from the page cache: this measures CPU, \
             system calls and memory copies, not the disk. Hearth adds a metadata lookup in \
             SQLite and pins the blob against a concurrent replace, and `R2Body::bytes` \
             reads through the body's `Read` implementation, which `read_to_end` drives in \
             doubling chunks from 8 KiB (nine `read` calls per MiB under strace at this \
             revision) where `fs::read` makes one.",
            mb(h),
            mb(r),
            c.ratio(),
            cost_phrase(c),
        ),
        CaseId::R2Put => {
            let split = match (extra_per_op(c), c.md5_time) {
                (Some(extra), Some(md5)) => format!(
                    " Of the extra {} per put, MD5 alone takes {} on this CPU (measured \
                     apart); the rest is the metadata commit with its fsync, and the unlink.",
                    fmt_latency(extra),
                    fmt_latency(md5)
                ),
                (None, Some(md5)) => format!(" MD5 of one object takes {} here.", fmt_latency(md5)),
                _ => String::new(),
            };
            format!(
                "**R2 put.** {} vs {} MB/s (Hearth/raw {:.2}; p50 {} vs {}). Hearth writes the \
                 blob with the same temporary file, fsync, rename and directory fsync as the \
                 raw side, computing MD5 on the way, then commits the object's metadata row \
                 in SQLite (one more fsync'd WAL commit) and unlinks the replaced blob.{}",
                mb(h),
                mb(r),
                c.ratio(),
                fmt_latency(h.p50),
                fmt_latency(r.p50),
                split
            )
        }
    }
}

/// A note when commit latency has a long tail, which makes write ratios
/// loose: a few slow commits landing on one side move its rate a lot.
fn lopsided(raw: &Stats) -> String {
    let (p50, p99) = (raw.p50.as_secs_f64(), raw.p99.as_secs_f64());
    if p50 > 0.0 && p99 > 10.0 * p50 {
        format!(
            " Commit latency on this disk is lopsided (raw p99 is {:.0}× its p50): most \
             commits return quickly and a few wait far longer, so write ratios are loose; \
             the last column of the table shows how loose.",
            p99 / p50
        )
    } else {
        String::new()
    }
}

fn mb(s: &Stats) -> String {
    s.mb_per_sec.map_or("–".to_owned(), fmt_rate)
}
