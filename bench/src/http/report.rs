//! The markdown report: machine, command, versions, one table per scenario,
//! the scenarios not measured yet, and a reading of the ratios.

use std::fmt::Write as _;
use std::process::Command;
use std::time::Duration;

use super::cases::{self, CaseId};
use super::servers::{Env, ServerKind};
use super::{CaseResult, HttpArgs, Row, package_version, wrk};
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
                 KV and D1 persisted to disk; wrangler {} installed beside it (same workerd)",
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

    let _ = writeln!(s, "### Not measured yet\n");
    let _ = writeln!(
        s,
        "Listed so the gap stays visible; the peers are measured once Hearth serves the \
         binding.\n"
    );
    let _ = writeln!(
        s,
        "| Scenario | Hearth | workerd | miniflare | raw hyper |\n|---|---|---|---|---|"
    );
    for (name, why) in cases::NOT_YET {
        let _ = writeln!(s, "| {name} | n/a: {why} | not run | not run | not run |");
    }

    let _ = writeln!(s, "\n## Reading\n");
    for line in reading(r.results) {
        let _ = writeln!(s, "- {line}");
    }
    s
}

fn render_case(s: &mut String, case: &CaseResult) {
    let _ = writeln!(s, "### {}\n", case.case.title());
    let hearth = measured(case, ServerKind::Hearth);
    let _ = writeln!(
        s,
        "| Server | req/s | p50 | p99 | peak RSS | errors | Hearth ÷ server, req/s | Hearth ÷ server, p99 |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|");
    for (kind, row) in &case.rows {
        match row {
            Row::Measured {
                outcome,
                peak_rss_kib,
            } => {
                let (ratio_rps, ratio_p99) = match (hearth, *kind == ServerKind::Hearth) {
                    (Some(h), false) => (
                        format!("{:.2}", h.requests_per_sec / outcome.requests_per_sec),
                        format!("{:.2}", h.p99.as_secs_f64() / outcome.p99.as_secs_f64()),
                    ),
                    _ => ("".to_owned(), "".to_owned()),
                };
                let _ = writeln!(
                    s,
                    "| {} | {:.0} | {} | {} | {} | {} | {ratio_rps} | {ratio_p99} |",
                    kind.label(),
                    outcome.requests_per_sec,
                    latency(outcome.p50),
                    latency(outcome.p99),
                    peak_rss_kib.map_or_else(|| "?".to_owned(), mib),
                    errors(outcome),
                );
            }
            Row::NotAvailable(why) => {
                let _ = writeln!(s, "| {} | n/a: {why} | | | | | | |", kind.label());
            }
            Row::Failed(why) => {
                let _ = writeln!(
                    s,
                    "| {} | failed: {} | | | | | | |",
                    kind.label(),
                    why.replace('|', "\\|")
                );
            }
        }
    }
    let _ = writeln!(s);
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
        .any(|c| matches!(c.case, CaseId::Kv | CaseId::D1Insert))
    {
        lines.push(
            "Writes may not be equal work across servers: Hearth commits every KV put and D1 \
             insert with SQLite in WAL mode and synchronous=FULL (an fsync before the \
             response), while miniflare writes through workerd's local storage, whose sync \
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
                    },
                ),
                (ServerKind::Workerd, Row::NotAvailable("no KV".to_owned())),
                (
                    ServerKind::Miniflare,
                    Row::Measured {
                        outcome: outcome(2500.0, 4000),
                        peak_rss_kib: Some(102400),
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
}
