//! Timing loops shared by every benchmark: warm-up, alternating rounds,
//! per-operation latencies, and the statistics drawn from them.

use std::sync::Barrier;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};

/// One operation; the argument is the operation's index, from which the
/// case derives its key so both sides touch the same keys in the same order.
pub type Op<'a> = dyn FnMut(u64) -> Result<()> + 'a;

/// Builds the per-thread operation of a parallel case (thread index given).
pub type WorkerFactory<'a> = dyn Fn(usize) -> Result<Box<Op<'a>>> + Sync + 'a;

/// How much of one case to run.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Measured operations per side.
    pub ops: u64,
    /// Unmeasured operations per side (per thread in parallel cases) before
    /// the first measured one.
    pub warmup: u64,
    /// The measured operations are split into this many rounds, and the
    /// side that goes first alternates, so drift in the machine's state
    /// (page cache, disk write-back, a neighbour's load) hits both sides.
    pub rounds: u32,
    /// Cap on one side's measured time; a slow disk ends the case early
    /// rather than stretching the run.
    pub max_secs: f64,
}

/// What one side of a case measured.
#[derive(Debug, Default, Clone)]
pub struct Side {
    pub ops: u64,
    /// Wall time of the measured operations (for parallel cases, from the
    /// moment all threads were released until the last finished).
    pub elapsed: Duration,
    pub latencies_ns: Vec<u64>,
    /// Operations and wall time of each round, to show the spread.
    pub rounds: Vec<(u64, Duration)>,
}

/// Figures of one side.
#[derive(Debug, Clone, Copy)]
pub struct Stats {
    pub ops: u64,
    pub ops_per_sec: f64,
    pub p50: Duration,
    pub p99: Duration,
    /// Payload throughput, 10^6 bytes per second, when a case moves a
    /// fixed payload per operation.
    pub mb_per_sec: Option<f64>,
}

impl Side {
    pub fn stats(&self, bytes_per_op: Option<u64>) -> Stats {
        let mut sorted = self.latencies_ns.clone();
        sorted.sort_unstable();
        let secs = self.elapsed.as_secs_f64();
        let ops_per_sec = if secs > 0.0 {
            self.ops as f64 / secs
        } else {
            0.0
        };
        Stats {
            ops: self.ops,
            ops_per_sec,
            p50: Duration::from_nanos(percentile(&sorted, 50.0)),
            p99: Duration::from_nanos(percentile(&sorted, 99.0)),
            mb_per_sec: bytes_per_op.map(|b| ops_per_sec * b as f64 / 1e6),
        }
    }
}

/// Nearest-rank percentile of sorted samples; 0 for no samples.
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Runs a single-threaded case: `sides[0]` is Hearth, `sides[1]` the raw
/// equivalent. Returns their measurements in the same order.
pub fn compare(plan: &Plan, hearth: &mut Op<'_>, raw: &mut Op<'_>) -> Result<[Side; 2]> {
    let mut ops: [&mut Op<'_>; 2] = [hearth, raw];
    let mut next = [0u64; 2];
    for (side, op) in ops.iter_mut().enumerate() {
        for _ in 0..plan.warmup {
            op(next[side])?;
            next[side] += 1;
        }
    }
    let mut out = [Side::default(), Side::default()];
    let rounds = plan.rounds.max(1);
    let per_round = plan.ops.div_ceil(u64::from(rounds));
    let budget = Duration::from_secs_f64(plan.max_secs / f64::from(rounds));
    for round in 0..rounds {
        for side in order(round) {
            let n = per_round.min(plan.ops - out[side].ops);
            let op = &mut ops[side];
            let result = &mut out[side];
            result.latencies_ns.reserve(n as usize);
            let before = result.ops;
            let start = Instant::now();
            for _ in 0..n {
                let t = Instant::now();
                op(next[side])?;
                let end = Instant::now();
                next[side] += 1;
                result.ops += 1;
                result.latencies_ns.push(nanos(end - t));
                if end - start >= budget {
                    break;
                }
            }
            let elapsed = start.elapsed();
            result.elapsed += elapsed;
            result.rounds.push((result.ops - before, elapsed));
        }
    }
    Ok(out)
}

/// The middle half (25th to 75th percentile) of the Hearth/raw ratios of
/// the rounds' rates: how much the comparison moved within the run.
pub fn round_ratio_range(hearth: &Side, raw: &Side) -> Option<(f64, f64)> {
    let rate = |(ops, t): &(u64, Duration)| {
        let secs = t.as_secs_f64();
        (secs > 0.0 && *ops > 0).then(|| *ops as f64 / secs)
    };
    let mut ratios: Vec<f64> = hearth
        .rounds
        .iter()
        .zip(&raw.rounds)
        .filter_map(|(h, r)| Some(rate(h)? / rate(r)?))
        .collect();
    if ratios.is_empty() {
        return None;
    }
    ratios.sort_unstable_by(f64::total_cmp);
    let at = |p: f64| {
        let rank = ((p / 100.0) * ratios.len() as f64).ceil() as usize;
        ratios[rank.clamp(1, ratios.len()) - 1]
    };
    Some((at(25.0), at(75.0)))
}

/// Runs a case on `threads` threads at once, each with its own operation
/// from the factory. `plan.ops` is the total over all threads.
pub fn compare_parallel<'a>(
    plan: &Plan,
    threads: usize,
    hearth: &WorkerFactory<'a>,
    raw: &WorkerFactory<'a>,
) -> Result<[Side; 2]> {
    let factories: [&WorkerFactory<'a>; 2] = [hearth, raw];
    let threads = threads.max(1);
    let mut out = [Side::default(), Side::default()];
    let rounds = plan.rounds.max(1);
    let per_round = plan.ops.div_ceil(u64::from(rounds));
    let budget = Duration::from_secs_f64(plan.max_secs / f64::from(rounds));
    for round in 0..rounds {
        for side in order(round) {
            let n = per_round.min(plan.ops - out[side].ops);
            let per_thread = n.div_ceil(threads as u64);
            let (elapsed, per_thread_latencies) = run_threads(
                factories[side],
                threads,
                plan.warmup,
                per_thread,
                u64::from(round),
                budget,
            )?;
            let before = out[side].ops;
            for lat in per_thread_latencies {
                out[side].ops += lat.len() as u64;
                out[side].latencies_ns.extend(lat);
            }
            out[side].elapsed += elapsed;
            let done = out[side].ops - before;
            out[side].rounds.push((done, elapsed));
        }
    }
    Ok(out)
}

fn run_threads(
    factory: &WorkerFactory<'_>,
    threads: usize,
    warmup: u64,
    per_thread: u64,
    round: u64,
    budget: Duration,
) -> Result<(Duration, Vec<Vec<u64>>)> {
    // The main thread joins the barrier too, so the clock starts only once
    // every worker is built and warm.
    let barrier = Barrier::new(threads + 1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let barrier = &barrier;
                scope.spawn(move || -> Result<Vec<u64>> {
                    // Distinct index ranges per thread and round, so threads
                    // do not read the same keys in lockstep.
                    let base = ((t as u64) << 48) | (round << 40);
                    let setup = factory(t).and_then(|mut op| {
                        for i in 0..warmup {
                            op(base | i)?;
                        }
                        Ok(op)
                    });
                    // Wait even after a failure, or the others would hang.
                    barrier.wait();
                    let mut op = setup?;
                    let mut lat = Vec::with_capacity(per_thread as usize);
                    let start = Instant::now();
                    for i in 0..per_thread {
                        let t0 = Instant::now();
                        op(base | (warmup + i))?;
                        let end = Instant::now();
                        lat.push(nanos(end - t0));
                        if end - start >= budget {
                            break;
                        }
                    }
                    Ok(lat)
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        let mut all = Vec::with_capacity(threads);
        let mut first_err = None;
        for h in handles {
            match h.join() {
                Ok(Ok(lat)) => all.push(lat),
                Ok(Err(e)) => {
                    first_err.get_or_insert(e);
                }
                Err(_) => {
                    first_err.get_or_insert(anyhow!("a benchmark thread panicked"));
                }
            }
        }
        let elapsed = start.elapsed();
        match first_err {
            Some(e) => Err(e),
            None => Ok((elapsed, all)),
        }
    })
}

/// Which side goes first in a round: Hearth in even rounds, raw in odd.
fn order(round: u32) -> [usize; 2] {
    if round.is_multiple_of(2) {
        [0, 1]
    } else {
        [1, 0]
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// A well-mixed 64-bit value from an index (SplitMix64's finaliser), to
/// pick keys in a scattered but reproducible order.
pub fn mix(i: u64) -> u64 {
    let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Formats a latency with a unit that keeps three significant digits.
pub fn fmt_latency(d: Duration) -> String {
    let ns = d.as_nanos() as f64;
    if ns < 1_000.0 {
        format!("{ns:.0} ns")
    } else if ns < 1_000_000.0 {
        format!("{:.1} µs", ns / 1e3)
    } else if ns < 1_000_000_000.0 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

/// Formats a rate with thousands separators (or one decimal when small).
pub fn fmt_rate(r: f64) -> String {
    if r < 100.0 {
        return format!("{r:.1}");
    }
    fmt_count(r.round() as u64)
}

/// Formats a count with thousands separators.
pub fn fmt_count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), 50);
        assert_eq!(percentile(&v, 99.0), 99);
        assert_eq!(percentile(&v, 100.0), 100);
        assert_eq!(percentile(&[7], 99.0), 7);
        assert_eq!(percentile(&[], 50.0), 0);
    }

    #[test]
    fn compare_runs_exact_counts_and_alternates() {
        let plan = Plan {
            ops: 10,
            warmup: 2,
            rounds: 3,
            max_secs: 60.0,
        };
        let mut seen_h = Vec::new();
        let mut seen_r = Vec::new();
        let [h, r] = compare(
            &plan,
            &mut |i| {
                seen_h.push(i);
                Ok(())
            },
            &mut |i| {
                seen_r.push(i);
                Ok(())
            },
        )
        .unwrap();
        assert_eq!((h.ops, r.ops), (10, 10));
        assert_eq!(h.latencies_ns.len(), 10);
        let per_round: Vec<u64> = h.rounds.iter().map(|(n, _)| *n).collect();
        assert_eq!(per_round, [4, 4, 2]);
        assert!(round_ratio_range(&h, &r).is_some());
        // Warm-up indices first, then the measured ones, without gaps.
        assert_eq!(seen_h, (0..12).collect::<Vec<_>>());
        assert_eq!(seen_r, (0..12).collect::<Vec<_>>());
    }

    #[test]
    fn compare_stops_a_side_at_its_time_budget() {
        let plan = Plan {
            ops: 1_000,
            warmup: 0,
            rounds: 1,
            max_secs: 0.02,
        };
        let [h, r] = compare(
            &plan,
            &mut |_| {
                std::thread::sleep(Duration::from_millis(5));
                Ok(())
            },
            &mut |_| Ok(()),
        )
        .unwrap();
        assert!(h.ops < 10, "slow side ran {} ops", h.ops);
        assert_eq!(r.ops, 1_000);
    }

    #[test]
    fn errors_stop_the_case() {
        let plan = Plan {
            ops: 5,
            warmup: 0,
            rounds: 1,
            max_secs: 60.0,
        };
        let err = compare(&plan, &mut |_| Ok(()), &mut |_| Err(anyhow!("miss")))
            .err()
            .unwrap();
        assert_eq!(err.to_string(), "miss");
    }

    #[test]
    fn parallel_counts_every_thread() {
        let plan = Plan {
            ops: 400,
            warmup: 3,
            rounds: 2,
            max_secs: 60.0,
        };
        let ok: &WorkerFactory<'_> = &|_| Ok(Box::new(|_| Ok(())));
        let [h, r] = compare_parallel(&plan, 4, ok, ok).unwrap();
        assert_eq!((h.ops, r.ops), (400, 400));
        let failing: &WorkerFactory<'_> = &|t| {
            if t == 2 {
                Err(anyhow!("cannot open"))
            } else {
                Ok(Box::new(|_| Ok(())))
            }
        };
        let err = compare_parallel(&plan, 4, ok, failing).err().unwrap();
        assert_eq!(err.to_string(), "cannot open");
    }

    #[test]
    fn round_ratios() {
        let side = |rounds: &[(u64, u64)]| Side {
            rounds: rounds
                .iter()
                .map(|&(n, ms)| (n, Duration::from_millis(ms)))
                .collect(),
            ..Side::default()
        };
        // Ratios 1, 0.5, 0.25, 2, 4: nearest ranks 2 and 4 of 5 sorted.
        let h = side(&[(10, 100), (10, 200), (10, 400), (10, 50), (10, 25)]);
        let r = side(&[(10, 100); 5]);
        assert_eq!(round_ratio_range(&h, &r), Some((0.5, 2.0)));
        assert_eq!(round_ratio_range(&Side::default(), &r), None);
    }

    #[test]
    fn formatting() {
        assert_eq!(fmt_latency(Duration::from_nanos(850)), "850 ns");
        assert_eq!(fmt_latency(Duration::from_nanos(12_345)), "12.3 µs");
        assert_eq!(fmt_latency(Duration::from_micros(4_210)), "4.21 ms");
        assert_eq!(fmt_rate(1_234_567.4), "1,234,567");
        assert_eq!(fmt_rate(999.6), "1,000");
        assert_eq!(fmt_rate(42.24), "42.2");
        assert_eq!(fmt_count(25), "25");
        assert_eq!(fmt_count(1_000), "1,000");
    }
}
