//! The markdown report: machine, command, versions, one table per scenario,
//! the scenarios not measured yet, and a reading of the ratios.

use std::fmt::Write as _;
use std::process::Command;
use std::time::Duration;

use super::cases::CaseId;
use super::servers::{Env, ServerKind};
use super::{CaseResult, EndToEnd, HttpArgs, Row, package_version, wrk};
use crate::machine::Machine;

pub struct Report<'a> {
    pub machine: &'a Machine,
    pub command: &'a str,
    pub args: &'a HttpArgs,
    pub versions: &'a [(String, String)],
    pub results: &'a [CaseResult],
    pub total: Duration,
    pub load_average_after: Option<&'a str>,
}

/// (what, version and how it ran) for every server of the run and wrk.
pub fn versions(env: &Env, kinds: &[ServerKind]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for kind in kinds {
        let v = match kind {
            ServerKind::Hearth => format!(
                "{}, `hearth serve <worker>/wrangler.toml` (release build)",
                first_line_of(Command::new(&env.hearth).arg("--version"))
            ),
            ServerKind::Workerd => format!(
                "{} (npm `workerd@{}`), `workerd serve` with a config from bench/peers/workerd.capnp.tmpl",
                first_line_of(Command::new(env.workerd()).arg("--version")),
                package_version(&env.peers, "workerd").unwrap_or_else(|| "?".to_owned())
            ),
            ServerKind::Miniflare => format!(
                "miniflare {} on Node {}, through its API (bench/peers/miniflare-serve.mjs), \
                 bindings from each worker's wrangler.toml, KV, D1, Durable Objects and \
                 Workflows persisted to disk; wrangler {} installed beside it (same workerd)",
                package_version(&env.peers, "miniflare").unwrap_or_else(|| "?".to_owned()),
                first_line_of(Command::new(env.node()).arg("--version")),
                package_version(&env.peers, "wrangler").unwrap_or_else(|| "?".to_owned()),
            ),
            ServerKind::RawHyper => format!(
                "hyper {} (`hearth-bench raw-server`, tokio multi-thread runtime)",
                hyper_version().unwrap_or_else(|| "1.x".to_owned())
            ),
        };
        out.push((kind.label().to_owned(), v));
    }
    out.push(("load generator".to_owned(), wrk::version()));
    out
}

fn first_line_of(cmd: &mut Command) -> String {
    cmd.output()
        .ok()
        .and_then(|o| {
            let text = String::from_utf8_lossy(&o.stdout).into_owned();
            text.lines().next().map(|l| l.trim().to_owned())
        })
        .filter(|l| !l.is_empty())
        .unwrap_or_else(|| "unknown version".to_owned())
}

/// hyper's version from the workspace lock file.
fn hyper_version() -> Option<String> {
    let lock =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.lock")).ok()?;
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line == "name = \"hyper\"" {
            let v = lines.next()?;
            return v
                .strip_prefix("version = \"")
                .and_then(|v| v.strip_suffix('"'))
                .map(str::to_owned);
        }
    }
    None
}

pub fn render(r: &Report<'_>) -> String {
    let mut s = String::new();
    let m = r.machine;
    let a = r.args;
    let _ = writeln!(
        s,
        "# HTTP benchmarks: Hearth, workerd, miniflare, raw hyper\n"
    );
    let _ = writeln!(
        s,
        "The same worker scripts (`bench/workers/`) on each server, under the same \
         load, one server at a time, in one run. Run on demand, never in CI.\n"
    );
    let _ = writeln!(s, "## Run\n");
    let _ = writeln!(s, "- Date: {}", m.date_utc);
    let _ = writeln!(s, "- CPU: {}, {} logical CPUs", m.cpu_model, m.logical_cpus);
    let _ = writeln!(s, "- Memory: {}", m.memory);
    let _ = writeln!(s, "- Kernel: {}", m.kernel);
    let _ = writeln!(s, "- Filesystem of the data directories: {}", m.filesystem);
    if let Some(load) = &m.load_average {
        let _ = writeln!(s, "- Load average at the start: {load}");
    }
    if let Some(load) = r.load_average_after {
        let _ = writeln!(
            s,
            "- Load average at the end: {load} (other work on the machine shows up in every \
             figure; the servers take turns going first, scenario by scenario)"
        );
    }
    if let Some(rev) = &m.revision {
        let _ = writeln!(
            s,
            "- Revision: {}{}",
            rev.commit,
            if rev.dirty {
                " (with uncommitted changes)"
            } else {
                ""
            }
        );
    }
    let _ = writeln!(s, "- Wall time of the run: {:.0} s", r.total.as_secs_f64());
    let _ = writeln!(s, "\nCommand:\n\n```sh\n{}\n```\n", r.command);

    let _ = writeln!(s, "## Servers\n");
    let _ = writeln!(s, "| Server | Version, and how it ran |\n|---|---|");
    for (what, version) in r.versions {
        let _ = writeln!(s, "| {what} | {version} |");
    }

    let _ = writeln!(s, "\n## Method\n");
    let _ = writeln!(
        s,
        "- Load: `wrk --threads={} --connections={} --duration={}s --latency`, after {} s of the \
         same load unmeasured; POST bodies and request mixes come from the Lua scripts in \
         `bench/wrk/`.",
        a.threads, a.connections, a.duration, a.warmup
    );
    let _ = writeln!(
        s,
        "- Durable Objects: every request goes from the worker's fetch() to a `Counter` \
         object (SQLite-backed class, `new_sqlite_classes`) by RPC; `increment()` reads the \
         value with `ctx.storage.get`, writes it back with `ctx.storage.put` and the worker \
         answers the new value. \"One object\" sends every request to the same object, so \
         its calls run one at a time; \"1000 objects\" picks `idFromName(\"counter-<n>\")` \
         with n drawn at random per request (`bench/wrk/do-counter-1000.lua`), so up to 1000 \
         objects are live. \"Read\" calls `read()` on the one object, which answers \
         `ctx.storage.get` of the value and writes nothing. Hearth lets an object take its \
         next call while earlier answers wait for their commit, and commits them together \
         (group commit; `bench/do-fsyncs.sh` counts the fsyncs per increment)."
    );
    let _ = writeln!(
        s,
        "- Queue produce-to-consume: each request sends one message (`env.Q.send`); the \
         worker's queue() handler (max_batch_size 100, max_batch_timeout 1 s, in the \
         wrangler.toml both servers read) acks each batch and adds its size to a count kept \
         by one Durable Object. Workflow, 5 steps: each request creates an instance \
         (`env.FLOW.create`) whose run() does five `step.do` of trivial work; the fifth adds \
         one to a count kept by one Durable Object. For both, wrk runs {} s (shorter, since \
         the work goes on after the answers), after the warm-up's work has all finished (the count at `/stats` reached the warm-up's \
         answers and then stayed the same for 1.5 s); \
         req/s, p50 and p99 are the producing requests'. Then the harness polls `GET /stats` \
         until the count has grown by wrk's 2xx answers (at most {} s). \"End to end\" is \
         that count divided by the time from the start of the wrk run until the poll that \
         saw it (messages consumed or instances completed per second, to within the 20 ms \
         poll); \"drain lag\" is the part of that time after wrk stopped. The queue's lag \
         includes up to one max_batch_timeout for the last, partial batch. miniflare's queue \
         broker keeps messages in memory (Hearth's are rows in SQLite) and arms one timer per \
         waiting message; workerd allows 10,000 active timers, so once about 10,000 messages \
         wait, miniflare's sends fail with 'Queue send failed: Internal Server Error' \
         (counted under errors, and not in the messages to consume).",
        a.end_to_end_duration, a.drain_timeout
    );
    let _ = writeln!(
        s,
        "- Each server starts fresh for each scenario, with an empty data directory; the \
         scenario's data is written through the worker itself, then one request per route is \
         checked for the exact expected bytes on every server before the load starts."
    );
    let _ = writeln!(
        s,
        "- The machine has {} logical CPUs: wrk's threads run on the same cores as the server \
         and take a share of them. The load is the same for every server, so the ratios \
         compare like with like, but the absolute figures are lower than the server would \
         reach on its own.",
        m.logical_cpus
    );
    let _ = writeln!(
        s,
        "- Peak RSS is VmHWM from /proc at the end of the measured run, summed over the \
         server's process group (for miniflare: Node plus the workerd it starts)."
    );
    let _ = writeln!(
        s,
        "- raw hyper answers each route with the same bytes as the worker, with no JS engine \
         and no storage: it is the ceiling of the HTTP path on this machine, not a peer."
    );
    let _ = writeln!(
        s,
        "- \"Hearth ÷ server\" divides Hearth's figure by that server's: above 1 for req/s \
         means Hearth served more; above 1 for p99 means Hearth's tail was slower."
    );

    let _ = writeln!(s, "\n## Results\n");
    for case in r.results {
        render_case(&mut s, case);
    }

    let _ = writeln!(s, "## Reading\n");
    for line in reading(r.results) {
        let _ = writeln!(s, "- {line}");
    }
    s
}

fn render_case(s: &mut String, case: &CaseResult) {
    let _ = writeln!(s, "### {}\n", case.case.title());
    let hearth = measured(case, ServerKind::Hearth);
    let hearth_e2e = end_to_end(case, ServerKind::Hearth);
    // The queue and workflow tables carry the end-to-end figures too.
    let unit = case.case.completion().map(|c| c.unit);
    let columns = if unit.is_some() { 11 } else { 8 };
    match unit {
        Some(unit) => {
            let _ = writeln!(
                s,
                "| Server | req/s | p50 | p99 | peak RSS | errors | {unit} /s, end to end | drain lag \
                 | Hearth ÷ server, req/s | Hearth ÷ server, p99 | Hearth ÷ server, end to end |"
            );
            let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        }
        None => {
            let _ = writeln!(
                s,
                "| Server | req/s | p50 | p99 | peak RSS | errors | Hearth ÷ server, req/s | Hearth ÷ server, p99 |"
            );
            let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|");
        }
    }
    let blanks = |used: usize| " |".repeat(columns - used);
    for (kind, row) in &case.rows {
        match row {
            Row::Measured {
                outcome,
                peak_rss_kib,
                end_to_end,
            } => {
                let is_hearth = *kind == ServerKind::Hearth;
                let ratio = |a: Option<f64>, b: f64| match a {
                    Some(a) if !is_hearth => format!("{:.2}", a / b),
                    _ => String::new(),
                };
                let _ = write!(
                    s,
                    "| {} | {:.0} | {} | {} | {} | {} |",
                    kind.label(),
                    outcome.requests_per_sec,
                    latency(outcome.p50),
                    latency(outcome.p99),
                    peak_rss_kib.map_or_else(|| "?".to_owned(), mib),
                    errors(outcome),
                );
                if unit.is_some() {
                    let (rate, lag) = match end_to_end {
                        Some(e) => (throughput(e), latency(e.lag)),
                        None => (String::new(), String::new()),
                    };
                    let _ = write!(s, " {rate} | {lag} |");
                }
                let _ = write!(
                    s,
                    " {} | {} |",
                    ratio(hearth.map(|h| h.requests_per_sec), outcome.requests_per_sec),
                    ratio(
                        hearth.map(|h| h.p99.as_secs_f64()),
                        outcome.p99.as_secs_f64()
                    ),
                );
                if unit.is_some() {
                    let e2e = match end_to_end {
                        Some(e) => ratio(hearth_e2e.map(|h| h.per_sec()), e.per_sec()),
                        None => String::new(),
                    };
                    let _ = write!(s, " {e2e} |");
                }
                let _ = writeln!(s);
            }
            Row::NotAvailable(why) => {
                let _ = writeln!(s, "| {} | n/a: {why} |{}", kind.label(), blanks(2));
            }
            Row::Failed(why) => {
                let _ = writeln!(
                    s,
                    "| {} | failed: {} |{}",
                    kind.label(),
                    why.replace('|', "\\|"),
                    blanks(2)
                );
            }
        }
    }
    let _ = writeln!(s);
}

/// The end-to-end rate, marked when the drain timed out.
fn throughput(e: &EndToEnd) -> String {
    if e.complete() {
        format!("{:.0}", e.per_sec())
    } else {
        format!(
            "{:.0} (timed out: {} of {} finished)",
            e.per_sec(),
            e.finished,
            e.started
        )
    }
}

fn end_to_end(case: &CaseResult, kind: ServerKind) -> Option<&EndToEnd> {
    case.rows.iter().find_map(|(k, row)| match row {
        Row::Measured {
            end_to_end: Some(e),
            ..
        } if *k == kind => Some(e),
        _ => None,
    })
}

fn measured(case: &CaseResult, kind: ServerKind) -> Option<&wrk::Outcome> {
    case.rows.iter().find_map(|(k, row)| match row {
        Row::Measured { outcome, .. } if *k == kind => Some(outcome),
        _ => None,
    })
}

fn errors(o: &wrk::Outcome) -> String {
    match (o.non_2xx, o.socket_errors) {
        (0, 0) => "0".to_owned(),
        (n, 0) => format!("{n} non-2xx"),
        (0, e) => format!("{e} socket"),
        (n, e) => format!("{n} non-2xx, {e} socket"),
    }
}

fn latency(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1000.0 {
        format!("{us:.0} µs")
    } else if us < 1e6 {
        format!("{:.2} ms", us / 1000.0)
    } else {
        format!("{:.2} s", us / 1e6)
    }
}

fn mib(kib: u64) -> String {
    format!("{:.0} MiB", kib as f64 / 1024.0)
}

/// Plain statements drawn from the figures, so the reading never
/// disagrees with the tables above it.
fn reading(results: &[CaseResult]) -> Vec<String> {
    let mut lines = Vec::new();
    for case in results {
        let Some(h) = measured(case, ServerKind::Hearth) else {
            let why = case
                .rows
                .iter()
                .find_map(|(k, row)| match row {
                    Row::Failed(why) if *k == ServerKind::Hearth => Some(why.as_str()),
                    _ => None,
                })
                .unwrap_or("not run");
            lines.push(format!("{}: no Hearth figure ({why}).", case.case.title()));
            continue;
        };
        let mut parts = Vec::new();
        for kind in [
            ServerKind::Workerd,
            ServerKind::Miniflare,
            ServerKind::RawHyper,
        ] {
            if let Some(o) = measured(case, kind) {
                parts.push(format!(
                    "{:.2}× {}'s req/s",
                    h.requests_per_sec / o.requests_per_sec,
                    kind.label()
                ));
            }
        }
        if let (Some(c), Some(he)) = (case.case.completion(), end_to_end(case, ServerKind::Hearth))
        {
            let mut e2e = Vec::new();
            if let Some(me) = end_to_end(case, ServerKind::Miniflare) {
                e2e.push(format!(
                    "{:.2}× miniflare's ({:.0}/s, drain lag {})",
                    he.per_sec() / me.per_sec(),
                    me.per_sec(),
                    latency(me.lag)
                ));
            }
            parts.push(format!(
                "end to end {:.0} {}/s{} with a drain lag of {}{}",
                he.per_sec(),
                c.unit,
                if he.complete() { "" } else { " (timed out)" },
                latency(he.lag),
                if e2e.is_empty() {
                    String::new()
                } else {
                    format!(", {}", e2e.join(", "))
                }
            ));
        }
        let errors = if h.non_2xx + h.socket_errors > 0 {
            format!(" Hearth had errors under load: {}.", errors(h))
        } else {
            String::new()
        };
        lines.push(format!(
            "{}: Hearth served {:.0} req/s{}{}.{errors}",
            case.case.title(),
            h.requests_per_sec,
            if parts.is_empty() { "" } else { ", " },
            parts.join(", ")
        ));
    }
    if results
        .iter()
        .any(|c| matches!(c.case, CaseId::Kv | CaseId::D1Insert) || c.case.uses_platform())
    {
        lines.push(
            "Writes may not be equal work across servers: Hearth commits every KV put, D1 \
             insert, Durable Object storage write, queue send and workflow step with SQLite \
             in WAL mode and synchronous=FULL (an fsync before the response or the next \
             step), while miniflare writes through workerd's local storage, whose sync \
             policy this benchmark does not check."
                .to_owned(),
        );
    }
    lines.push(
        "Concurrency differs by design: Hearth runs one QuickJS isolate per core; \
         workerd and miniflare run the worker on one V8 isolate, single-threaded; raw hyper \
         uses a tokio worker per core. Hearth's engine is an interpreter, V8 is a JIT: \
         JS-heavy work (JSON) shows that most."
            .to_owned(),
    );
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(rps: f64, p99_us: u64) -> wrk::Outcome {
        wrk::Outcome {
            requests: (rps * 10.0) as u64,
            requests_per_sec: rps,
            p50: Duration::from_micros(p99_us / 4),
            p99: Duration::from_micros(p99_us),
            non_2xx: 0,
            socket_errors: 0,
        }
    }

    #[test]
    fn tables_carry_ratios_and_gaps() {
        let case = CaseResult {
            case: CaseId::Kv,
            rows: vec![
                (
                    ServerKind::Hearth,
                    Row::Measured {
                        outcome: outcome(5000.0, 2000),
                        peak_rss_kib: Some(20480),
                        end_to_end: None,
                    },
                ),
                (ServerKind::Workerd, Row::NotAvailable("no KV".to_owned())),
                (
                    ServerKind::Miniflare,
                    Row::Measured {
                        outcome: outcome(2500.0, 4000),
                        peak_rss_kib: Some(102400),
                        end_to_end: None,
                    },
                ),
                (ServerKind::RawHyper, Row::Failed("boom | bang".to_owned())),
            ],
        };
        let mut s = String::new();
        render_case(&mut s, &case);
        assert!(
            s.contains("| Hearth | 5000 | 500 µs | 2.00 ms | 20 MiB | 0 |  |  |"),
            "{s}"
        );
        assert!(s.contains("| workerd | n/a: no KV |"), "{s}");
        assert!(
            s.contains("| miniflare | 2500 | 1.00 ms | 4.00 ms | 100 MiB | 0 | 2.00 | 0.50 |"),
            "{s}"
        );
        assert!(s.contains("| raw hyper | failed: boom \\| bang |"), "{s}");
        let lines = reading(&[case]);
        assert!(
            lines[0].contains("Hearth served 5000 req/s, 2.00× miniflare's req/s."),
            "{lines:?}"
        );
    }

    #[test]
    fn end_to_end_tables_carry_the_finished_work() {
        let e2e = |finished: u64, started: u64, ms: u64, lag_ms: u64| EndToEnd {
            started,
            finished,
            elapsed: Duration::from_millis(ms),
            lag: Duration::from_millis(lag_ms),
        };
        let case = CaseResult {
            case: CaseId::Queue,
            rows: vec![
                (
                    ServerKind::Hearth,
                    Row::Measured {
                        outcome: outcome(4000.0, 2000),
                        peak_rss_kib: Some(20480),
                        end_to_end: Some(e2e(20_000, 20_000, 6_250, 1_250)),
                    },
                ),
                (
                    ServerKind::Workerd,
                    Row::NotAvailable("no queues".to_owned()),
                ),
                (
                    ServerKind::Miniflare,
                    Row::Measured {
                        outcome: outcome(1000.0, 4000),
                        peak_rss_kib: Some(102400),
                        end_to_end: Some(e2e(4_000, 5_000, 8_000, 3_000)),
                    },
                ),
            ],
        };
        let mut s = String::new();
        render_case(&mut s, &case);
        assert!(
            s.contains("| messages consumed /s, end to end | drain lag |"),
            "{s}"
        );
        assert!(
            s.contains(
                "| Hearth | 4000 | 500 µs | 2.00 ms | 20 MiB | 0 | 3200 | 1.25 s |  |  |  |"
            ),
            "{s}"
        );
        assert!(
            s.contains("| workerd | n/a: no queues | | | | | | | | | |\n"),
            "{s}"
        );
        assert!(
            s.contains(
                "| miniflare | 1000 | 1.00 ms | 4.00 ms | 100 MiB | 0 | 500 (timed out: 4000 of 5000 finished) | 3.00 s | 4.00 | 0.50 | 6.40 |"
            ),
            "{s}"
        );
        let lines = reading(&[case]);
        assert!(
            lines[0].contains(
                "end to end 3200 messages consumed/s with a drain lag of 1.25 s, 6.40× miniflare's (500/s, drain lag 3.00 s)"
            ),
            "{lines:?}"
        );
    }
}
