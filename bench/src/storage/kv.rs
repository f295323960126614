//! KV: `KvNamespace::get` / `put` against the same statements on a table of
//! the same shape, opened with the same pragmas.

use std::path::Path;

use anyhow::{Context, Result, ensure};
use hearth_core::SystemClock;
use hearth_kv::{GetOptions, KvLimits, KvNamespace, KvValue, PutOptions};
use rusqlite::{Connection, OptionalExtension, params};

use super::{CaseId, CaseResult, StorageArgs, checkpoint, now_secs, payload, progress};
use crate::measure::{Op, WorkerFactory, compare, compare_parallel, mix};

/// The layout hearth-kv stores a namespace in, reproduced for the raw side.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS kv_entries (
    key        TEXT PRIMARY KEY NOT NULL,
    value      BLOB NOT NULL,
    expiration INTEGER,
    metadata   TEXT
);
CREATE INDEX IF NOT EXISTS kv_entries_expiration
    ON kv_entries (expiration) WHERE expiration IS NOT NULL;
";

const GET_SQL: &str = "SELECT value, expiration, metadata FROM kv_entries
    WHERE key = ?1 AND (expiration IS NULL OR expiration > ?2)";

const PUT_SQL: &str = "INSERT INTO kv_entries (key, value, expiration, metadata)
    VALUES (?1, ?2, ?3, ?4)
    ON CONFLICT (key) DO UPDATE SET
        value = excluded.value, expiration = excluded.expiration, metadata = excluded.metadata";

type Row = (Vec<u8>, Option<i64>, Option<String>);

fn raw_get(conn: &Connection, key: &str) -> Result<Option<Row>> {
    let mut stmt = conn.prepare_cached(GET_SQL)?;
    Ok(stmt
        .query_row(params![key, now_secs()], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()?)
}

fn raw_put(conn: &Connection, key: &str, value: &[u8]) -> Result<()> {
    let mut stmt = conn.prepare_cached(PUT_SQL)?;
    stmt.execute(params![key, value, None::<i64>, None::<String>])?;
    Ok(())
}

fn hearth_get(ns: &KvNamespace, key: &str, len: usize) -> Result<()> {
    match ns.get(key, &GetOptions::text())? {
        Some(KvValue::Text(s)) => {
            ensure!(s.len() == len, "KV get returned {} bytes", s.len());
            Ok(())
        }
        other => anyhow::bail!("KV get of {key} missed: {other:?}"),
    }
}

fn checked_raw_get(conn: &Connection, key: &str, len: usize) -> Result<()> {
    let row = raw_get(conn, key)?.with_context(|| format!("raw get of {key} missed"))?;
    ensure!(row.0.len() == len, "raw get returned {} bytes", row.0.len());
    Ok(())
}

pub fn run(args: &StorageArgs, dir: &Path, out: &mut Vec<CaseResult>) -> Result<()> {
    let value = payload(args.kv_value_bytes, true);
    let len = value.len();
    let keys: Vec<String> = (0..args.kv_keys).map(|i| format!("key-{i:08}")).collect();
    let pick = |i: u64| keys[(mix(i) % keys.len() as u64) as usize].as_str();

    let hearth_path = dir.join("hearth/kv.sqlite");
    let raw_path = dir.join("raw/kv.sqlite");
    let ns = KvNamespace::open(&hearth_path, SystemClock::shared(), KvLimits::default())?;
    progress(format_args!(
        "KV: writing {} keys of {} bytes through KvNamespace::put (one durable commit each)",
        keys.len(),
        len
    ));
    for key in &keys {
        ns.put(key, &value, &PutOptions::default())?;
    }
    let raw = hearth_core::sqlite::open(&raw_path)?;
    raw.execute_batch(SCHEMA)?;
    {
        let tx = raw.unchecked_transaction()?;
        for key in &keys {
            raw_put(&tx, key, &value)?;
        }
        tx.commit()?;
    }
    checkpoint(&hearth_path)?;
    checkpoint(&raw_path)?;

    let size = fmt_size(len);
    let sides = compare(
        &args.plan(args.read_ops),
        &mut |i| hearth_get(&ns, pick(i), len),
        &mut |i| checked_raw_get(&raw, pick(i), len),
    )?;
    out.push(CaseResult::new(
        CaseId::KvGet,
        format!("KV get (hit, {size} text)"),
        sides,
        None,
    ));

    // One namespace shared by every thread, as a server shares a binding;
    // the raw side gives each thread its own connection, the most SQLite
    // allows.
    let threads = args.threads();
    let ns_ref = &ns;
    let hearth_workers: &WorkerFactory<'_> = &|_| {
        let op: Box<Op<'_>> = Box::new(move |i| hearth_get(ns_ref, pick(i), len));
        Ok(op)
    };
    let raw_path_ref = raw_path.as_path();
    let raw_workers: &WorkerFactory<'_> = &|_| {
        let conn = hearth_core::sqlite::open(raw_path_ref)?;
        let op: Box<Op<'_>> = Box::new(move |i| checked_raw_get(&conn, pick(i), len));
        Ok(op)
    };
    // Threads are started afresh each round, so each warms up briefly then.
    let mut plan = args.plan(args.read_ops);
    plan.warmup = plan
        .warmup
        .div_ceil(threads as u64 * u64::from(plan.rounds.max(1)));
    let sides = compare_parallel(&plan, threads, hearth_workers, raw_workers)?;
    out.push(CaseResult::new(
        CaseId::KvGetParallel,
        format!("KV get (hit, {size}), {threads} threads"),
        sides,
        None,
    ));

    let put_key = |i: u64| format!("put-{i:08}");
    let sides = compare(
        &args.write_plan(args.write_ops),
        &mut |i| Ok(ns.put(&put_key(i), &value, &PutOptions::default())?),
        &mut |i| raw_put(&raw, &put_key(i), &value),
    )?;
    out.push(CaseResult::new(
        CaseId::KvPut,
        format!("KV put ({size}, new key)"),
        sides,
        None,
    ));
    Ok(())
}

pub fn fmt_size(bytes: usize) -> String {
    if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else if bytes >= 1 << 10 && bytes.is_multiple_of(1 << 10) {
        format!("{} KiB", bytes >> 10)
    } else {
        format!("{bytes} B")
    }
}
