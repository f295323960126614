//! Copying the journal of some workflows from one store into another
//! (`hearth migrate`: the embedded file into PostgreSQL). Rows go over
//! as they are, a page at a time, in the order they were written, so the
//! engine on the other side resumes every instance where it stood: a
//! journaled step is not run again, a sleep wakes at its time, an
//! unconsumed event is still waiting. A run that was leased when the
//! source stopped is claimed again once its lease lapses.

use crate::error::Result;
use crate::store::{JournalStore, Row, Tx, Value};

/// Rows read and written per transaction.
const PAGE: i64 = 256;

/// Every journal table with its columns (the same in both backends);
/// `wf_steps` and `wf_events` are ordered by their insertion, which the
/// engine reads them back in, so they are copied in that order.
const TABLES: &[(&str, &str)] = &[
    (
        "wf_instances",
        "workflow, id, status, params, created_ms, started_ms, ended_ms, output, error_name, \
         error_message, wake_at_ms, lease, lease_expires_ms, paused_at_ms, runner",
    ),
    (
        "wf_steps",
        "workflow, instance, kind, name, occurrence, state, retry_limit, retry_delay_ms, backoff, \
         timeout_ms, attempts, started_ms, ended_ms, wake_at_ms, event_type, event_ms, output, \
         error_name, error_message",
    ),
    (
        "wf_attempts",
        "workflow, instance, name, occurrence, attempt, started_ms, ended_ms, success, error_name, \
         error_message",
    ),
    (
        "wf_events",
        "workflow, instance, event_type, payload, timestamp_ms, consumed",
    ),
];

/// What [`copy_journal`] copied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JournalCopy {
    pub instances: u64,
    /// Steps, attempts and events.
    pub records: u64,
}

/// The workflows of `names` that `store` holds instances of.
pub fn workflows_present(store: &dyn JournalStore, names: &[String]) -> Result<Vec<String>> {
    let mut present = Vec::new();
    store.read(&mut |tx| {
        present.clear();
        for name in names {
            let found = tx.query_opt(
                "SELECT 1 FROM wf_instances WHERE workflow = ?1 LIMIT 1",
                &[Value::from(name)],
            )?;
            if found.is_some() {
                present.push(name.clone());
            }
        }
        Ok(())
    })?;
    Ok(present)
}

/// Every workflow `store` holds instances of, by name.
pub fn workflows_stored(store: &dyn JournalStore) -> Result<Vec<String>> {
    let mut names = Vec::new();
    store.read(&mut |tx| {
        names = tx
            .query(
                "SELECT DISTINCT workflow FROM wf_instances ORDER BY workflow",
                &[],
            )?
            .iter()
            .map(|r| r.text(0))
            .collect::<Result<Vec<_>>>()?;
        Ok(())
    })?;
    Ok(names)
}

/// Copies every row of the workflows `names` from `from` (a SQLite
/// journal: pages follow its `rowid`) into `to`, replacing whatever `to`
/// held of them.
pub fn copy_journal(
    from: &dyn JournalStore,
    to: &dyn JournalStore,
    names: &[String],
) -> Result<JournalCopy> {
    to.write(&mut |tx| {
        for (table, _) in TABLES.iter().rev() {
            for name in names {
                tx.execute(
                    &format!("DELETE FROM {table} WHERE workflow = ?1"),
                    &[Value::from(name)],
                )?;
            }
        }
        Ok(())
    })?;
    let mut copied = JournalCopy::default();
    for (table, columns) in TABLES {
        let n = columns.split(',').count();
        let placeholders: Vec<String> = (1..=n).map(|i| format!("?{i}")).collect();
        let insert = format!(
            "INSERT INTO {table} ({columns}) VALUES ({})",
            placeholders.join(", ")
        );
        let select = format!(
            "SELECT rowid, {columns} FROM {table} WHERE rowid > ?1 ORDER BY rowid LIMIT {PAGE}"
        );
        let mut after = 0i64;
        loop {
            let mut page: Vec<Row> = Vec::new();
            from.read(&mut |tx: &mut dyn Tx| {
                page = tx.query(&select, &[Value::Int(after)])?;
                Ok(())
            })?;
            let Some(last) = page.last() else { break };
            after = last.int(0)?;
            let rows: Vec<Vec<Value>> = page
                .into_iter()
                .map(|r| r.0.into_iter().skip(1).collect::<Vec<_>>())
                .filter(
                    |values| matches!(values.first(), Some(Value::Text(w)) if names.contains(w)),
                )
                .collect();
            to.write(&mut |tx| {
                for values in &rows {
                    tx.execute(&insert, values)?;
                }
                Ok(())
            })?;
            let count = rows.len() as u64;
            if *table == "wf_instances" {
                copied.instances += count;
            } else {
                copied.records += count;
            }
        }
    }
    Ok(copied)
}
