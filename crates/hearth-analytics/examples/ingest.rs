//! Writes N points of the ingest benchmark's shape through
//! `AnalyticsEngine::write` from one thread and waits until they are
//! committed: a driver for counting the store's instructions per point
//! (`valgrind --tool=callgrind target/release/examples/ingest 200000`).

use hearth_analytics::{AnalyticsEngine, DataPoint};
use hearth_core::SystemClock;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: u64 = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(100_000);
    let dir = tempfile::tempdir()?;
    let store = AnalyticsEngine::open(&dir.path().join("ae.sqlite"), SystemClock::shared())?;
    let started = std::time::Instant::now();
    for i in 0..n {
        store.write(
            "ingest",
            DataPoint {
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
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{n} points committed in {secs:.2} s: {:.0} points/s",
        n as f64 / secs
    );
    Ok(())
}
