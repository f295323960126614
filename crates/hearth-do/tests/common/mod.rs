#![allow(dead_code)]

use std::path::Path;

use hearth_core::{DataDir, ManualClock};
use hearth_do::{DoLimits, DurableObjectHost, DurableObjectNamespace, StorageBackend};

/// 2023-11-14T22:13:20Z, an arbitrary fixed start for the manual clock.
pub const T0: u64 = 1_700_000_000_000;

pub fn host(dir: &Path, clock: &ManualClock) -> DurableObjectHost {
    host_with(dir, clock, DoLimits::default())
}

pub fn host_with(dir: &Path, clock: &ManualClock, limits: DoLimits) -> DurableObjectHost {
    DurableObjectHost::open(&DataDir::new(dir), clock.shared(), limits).unwrap()
}

pub fn sqlite_ns(dir: &Path, clock: &ManualClock) -> DurableObjectNamespace {
    host(dir, clock)
        .namespace("Room", StorageBackend::Sqlite)
        .unwrap()
}

pub fn kv_ns(dir: &Path, clock: &ManualClock) -> DurableObjectNamespace {
    host(dir, clock)
        .namespace("Counter", StorageBackend::KeyValue)
        .unwrap()
}

pub fn err<T: std::fmt::Debug>(r: hearth_do::Result<T>) -> String {
    r.unwrap_err().to_string()
}
