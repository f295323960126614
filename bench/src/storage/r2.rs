//! R2: `R2Bucket::put` / `get` of whole objects against the bare file
//! protocol: write, fsync, rename over the old file, fsync the directory;
//! and a plain whole-file read.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use hearth_core::SystemClock;
use hearth_r2::{R2Bucket, R2GetOptions, R2GetResult, R2Limits, R2PutOptions};
use md5::{Digest, Md5};

use super::kv::fmt_size;
use super::{CaseId, CaseResult, StorageArgs, payload, progress};
use crate::measure::compare;

fn object_name(i: u64, objects: u64) -> String {
    format!("object-{:04}", i % objects)
}

/// The durable replace every blob store needs at minimum.
fn raw_put(dir: &Path, name: &str, body: &[u8], seq: u64) -> Result<()> {
    let tmp = dir.join(format!(".{name}.tmp-{seq}"));
    let mut file = File::create_new(&tmp)?;
    file.write_all(body)?;
    file.sync_all()?;
    drop(file);
    fs::rename(&tmp, dir.join(name))?;
    File::open(dir)?.sync_all()?;
    Ok(())
}

fn hearth_put(bucket: &R2Bucket, key: &str, body: &[u8]) -> Result<()> {
    let object = bucket
        .put(key, body, &R2PutOptions::default())?
        .context("R2 put without conditions returned no object")?;
    ensure!(
        object.size == body.len() as u64,
        "stored {} bytes",
        object.size
    );
    Ok(())
}

/// Median time to MD5 `body` once, the hash every R2 put computes.
fn md5_median(body: &[u8]) -> Duration {
    let mut times: Vec<Duration> = (0..11)
        .map(|_| {
            let start = Instant::now();
            std::hint::black_box(Md5::digest(std::hint::black_box(body)));
            start.elapsed()
        })
        .collect();
    times.sort_unstable();
    times[times.len() / 2]
}

pub fn run(args: &StorageArgs, dir: &Path, out: &mut Vec<CaseResult>) -> Result<()> {
    let objects = args.r2_objects;
    let body = payload(args.r2_object_bytes, false);
    let len = body.len();
    let bytes_per_op = Some(len as u64);
    let size = fmt_size(len);

    let bucket = R2Bucket::open(
        dir.join("hearth/r2"),
        SystemClock::shared(),
        R2Limits::default(),
    )?;
    let raw_dir = dir.join("raw/r2");
    fs::create_dir_all(&raw_dir)?;
    progress(format_args!("R2: writing {objects} objects of {size}"));
    for i in 0..objects {
        let name = object_name(i, objects);
        hearth_put(&bucket, &name, &body)?;
        raw_put(&raw_dir, &name, &body, u64::MAX - i)?;
    }

    let sides = compare(
        &args.plan(args.blob_read_ops),
        &mut |i| {
            let key = object_name(i, objects);
            let found = bucket
                .get(&key, &R2GetOptions::default())?
                .and_then(R2GetResult::into_body)
                .with_context(|| format!("R2 get of {key} found nothing"))?;
            let bytes = found.body.bytes()?;
            ensure!(bytes.len() == len, "R2 get read {} bytes", bytes.len());
            Ok(())
        },
        &mut |i| {
            let bytes = fs::read(raw_dir.join(object_name(i, objects)))?;
            ensure!(bytes.len() == len, "raw read {} bytes", bytes.len());
            Ok(())
        },
    )?;
    out.push(CaseResult::new(
        CaseId::R2Get,
        format!("R2 get {size} (whole body)"),
        sides,
        bytes_per_op,
    ));

    let md5_time = md5_median(&body);
    let sides = compare(
        &args.write_plan(args.blob_write_ops),
        &mut |i| hearth_put(&bucket, &object_name(i, objects), &body),
        &mut |i| raw_put(&raw_dir, &object_name(i, objects), &body, i),
    )?;
    let mut result = CaseResult::new(
        CaseId::R2Put,
        format!("R2 put {size} (replace)"),
        sides,
        bytes_per_op,
    );
    result.md5_time = Some(md5_time);
    out.push(result);
    Ok(())
}
