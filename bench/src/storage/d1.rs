//! D1: `prepare().bind().first()` and `.run()` against cached prepared
//! statements on the same schema, opened with the same pragmas.

use std::path::Path;

use anyhow::{Context, Result, ensure};
use hearth_d1::{D1Database, D1Value};
use rusqlite::{Connection, params};

use super::{CaseId, CaseResult, StorageArgs, checkpoint, progress};
use crate::measure::{compare, mix};

const SCHEMA: &str = "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, \
                      email TEXT NOT NULL, score INTEGER NOT NULL)";
const SEED_SQL: &str = "INSERT INTO users (id, name, email, score) VALUES (?1, ?2, ?3, ?4)";
const SELECT_SQL: &str = "SELECT id, name, email, score FROM users WHERE id = ?1";
const INSERT_SQL: &str = "INSERT INTO users (name, email, score) VALUES (?1, ?2, ?3)";

/// Rows per seeding batch: one transaction each.
const SEED_BATCH: u64 = 1_000;

fn name(i: u64) -> String {
    format!("user {i:08}")
}

fn email(i: u64) -> String {
    format!("user{i}@example.com")
}

fn score(i: u64) -> i64 {
    (mix(i) % 1_000_000) as i64
}

pub fn run(args: &StorageArgs, dir: &Path, out: &mut Vec<CaseResult>) -> Result<()> {
    let rows = args.d1_rows;
    let hearth_path = dir.join("hearth/d1.sqlite");
    let raw_path = dir.join("raw/d1.sqlite");

    progress(format_args!(
        "D1: seeding {rows} rows (batches of {SEED_BATCH})"
    ));
    let db = D1Database::open(&hearth_path)?;
    db.exec(SCHEMA)?;
    let seed = db.prepare(SEED_SQL);
    let mut start = 1;
    while start <= rows {
        let end = (start + SEED_BATCH - 1).min(rows);
        let batch: Vec<_> = (start..=end)
            .map(|id| {
                seed.bind(vec![
                    D1Value::Integer(id as i64),
                    D1Value::Text(name(id)),
                    D1Value::Text(email(id)),
                    D1Value::Integer(score(id)),
                ])
            })
            .collect();
        db.batch(&batch)?;
        start = end + 1;
    }

    let raw = hearth_core::sqlite::open(&raw_path)?;
    raw.execute_batch(SCHEMA)?;
    {
        let tx = raw.unchecked_transaction()?;
        {
            let mut stmt = tx.prepare_cached(SEED_SQL)?;
            for id in 1..=rows {
                stmt.execute(params![id as i64, name(id), email(id), score(id)])?;
            }
        }
        tx.commit()?;
    }
    checkpoint(&hearth_path)?;
    checkpoint(&raw_path)?;

    let pick = |i: u64| 1 + (mix(i) % rows) as i64;
    let sides = compare(
        &args.plan(args.read_ops),
        &mut |i| {
            let id = pick(i);
            let row = db
                .prepare(SELECT_SQL)
                .bind([D1Value::Integer(id)])
                .first()?
                .with_context(|| format!("D1 SELECT of id {id} found nothing"))?;
            ensure!(row.get("id") == Some(&D1Value::Integer(id)), "wrong row");
            Ok(())
        },
        &mut |i| raw_select(&raw, pick(i)),
    )?;
    out.push(CaseResult::new(
        CaseId::D1Select,
        "D1 SELECT by primary key, .first()".to_owned(),
        sides,
        None,
    ));

    let sides = compare(
        &args.write_plan(args.write_ops),
        &mut |i| {
            let result = db
                .prepare(INSERT_SQL)
                .bind(vec![
                    D1Value::Text(name(i)),
                    D1Value::Text(email(i)),
                    D1Value::Integer(score(i)),
                ])
                .run()?;
            ensure!(
                result.meta.changes == 1,
                "INSERT changed {}",
                result.meta.changes
            );
            Ok(())
        },
        &mut |i| {
            let mut stmt = raw.prepare_cached(INSERT_SQL)?;
            let changed = stmt.execute(params![name(i), email(i), score(i)])?;
            ensure!(changed == 1, "INSERT changed {changed}");
            Ok(())
        },
    )?;
    out.push(CaseResult::new(
        CaseId::D1Insert,
        "D1 INSERT, .run()".to_owned(),
        sides,
        None,
    ));
    Ok(())
}

fn raw_select(conn: &Connection, id: i64) -> Result<()> {
    let mut stmt = conn.prepare_cached(SELECT_SQL)?;
    let row: (i64, String, String, i64) =
        stmt.query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
    ensure!(row.0 == id, "wrong row");
    Ok(())
}
