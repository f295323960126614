//! Running wrk and reading its report.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};

/// The load every server gets.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    pub connections: u32,
    pub threads: u32,
}

/// What one measured wrk run reported.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outcome {
    pub requests: u64,
    pub requests_per_sec: f64,
    pub p50: Duration,
    pub p99: Duration,
    /// Responses with a status outside 2xx/3xx.
    pub non_2xx: u64,
    /// Connect, read, write errors and timeouts.
    pub socket_errors: u64,
}

/// Runs wrk against `addr` + `path` for `secs` seconds.
pub fn run(
    load: Load,
    addr: SocketAddr,
    path: &str,
    script: Option<&Path>,
    secs: u64,
) -> Result<Outcome> {
    let mut cmd = Command::new("wrk");
    cmd.arg(format!("--threads={}", load.threads))
        .arg(format!("--connections={}", load.connections))
        .arg(format!("--duration={secs}s"))
        .arg("--latency");
    if let Some(script) = script {
        cmd.arg(format!("--script={}", script.display()));
    }
    cmd.arg(format!("http://{addr}{path}"));
    let out = cmd.output().context("running wrk (is it installed?)")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "wrk failed ({}): {}{}",
            out.status,
            stdout,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    parse(&stdout).with_context(|| format!("reading wrk's report:\n{stdout}"))
}

fn parse(report: &str) -> Result<Outcome> {
    let mut requests = None;
    let mut requests_per_sec = None;
    let mut p50 = None;
    let mut p99 = None;
    let mut non_2xx = 0;
    let mut socket_errors = 0;
    for line in report.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["50%", v] => p50 = Some(duration(v)?),
            ["99%", v] => p99 = Some(duration(v)?),
            ["Requests/sec:", v] => requests_per_sec = Some(v.parse::<f64>()?),
            [n, "requests", "in", ..] => requests = Some(n.parse::<u64>()?),
            ["Non-2xx", "or", "3xx", "responses:", n] => non_2xx = n.parse()?,
            ["Socket", "errors:", rest @ ..] => {
                // "connect 0, read 0, write 0, timeout 0"
                socket_errors = rest
                    .iter()
                    .filter_map(|w| w.trim_end_matches(',').parse::<u64>().ok())
                    .sum();
            }
            _ => {}
        }
    }
    Ok(Outcome {
        requests: requests.ok_or_else(|| anyhow!("no request count"))?,
        requests_per_sec: requests_per_sec.ok_or_else(|| anyhow!("no Requests/sec"))?,
        p50: p50.ok_or_else(|| anyhow!("no 50% latency"))?,
        p99: p99.ok_or_else(|| anyhow!("no 99% latency"))?,
        non_2xx,
        socket_errors,
    })
}

/// wrk's durations: `812.00us`, `1.23ms`, `2.01s`, `1.50m`.
fn duration(text: &str) -> Result<Duration> {
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .ok_or_else(|| anyhow!("no unit in {text:?}"))?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse()?;
    let secs = match unit {
        "us" => number / 1e6,
        "ms" => number / 1e3,
        "s" => number,
        "m" => number * 60.0,
        "h" => number * 3600.0,
        _ => bail!("unknown unit in {text:?}"),
    };
    Ok(Duration::from_secs_f64(secs))
}

/// wrk's version line, e.g. `wrk 4.1.0 [epoll]`.
pub fn version() -> String {
    // wrk prints its usage with the version and exits non-zero.
    Command::new("wrk")
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(|l| l.split(" Copyright").next().unwrap_or(l).trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = "Running 10s test @ http://127.0.0.1:8080/
  2 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   410.12us  300.01us  12.04ms   95.00%
    Req/Sec    19.71k     1.20k   22.10k    70.00%
  Latency Distribution
     50%  352.00us
     75%  420.00us
     90%  530.00us
     99%    1.52ms
  392244 requests in 10.00s, 45.64MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 7
Requests/sec:  39223.51
Transfer/sec:      4.56MB
";

    #[test]
    fn reads_a_report() {
        let o = parse(REPORT).unwrap();
        assert_eq!(o.requests, 392_244);
        assert_eq!(o.requests_per_sec, 39_223.51);
        assert_eq!(o.p50, Duration::from_micros(352));
        assert_eq!(o.p99, Duration::from_micros(1520));
        assert_eq!((o.non_2xx, o.socket_errors), (7, 3));
    }

    #[test]
    fn a_report_without_latencies_is_an_error() {
        let cut = REPORT.replace("     99%    1.52ms\n", "");
        assert!(parse(&cut).unwrap_err().to_string().contains("99%"));
    }

    #[test]
    fn durations() {
        assert_eq!(duration("2.00s").unwrap(), Duration::from_secs(2));
        assert_eq!(duration("1.50m").unwrap(), Duration::from_secs(90));
        assert!(duration("12").is_err());
    }
}
