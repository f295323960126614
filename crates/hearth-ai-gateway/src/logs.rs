//! Request logs in `<data dir>/ai-gateway/logs.sqlite`. Requests hand their
//! record to a bounded queue and never wait for disk; one writer thread
//! commits batches. Each gateway holds at most `max_logs` logs; when full,
//! Cloudflare's two policies: stop logging, or drop the oldest.
//!
//! What a log never holds: request headers. Credentials (Authorization,
//! x-api-key, cf-aig-authorization) therefore cannot reach the file; bodies
//! are kept only when the gateway's `log_bodies` says so.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

use rusqlite::{Connection, params};
use serde_json::{Value, json};

use crate::config::WhenFull;

/// Records waiting for the writer; past it records are dropped and counted.
pub const QUEUE_CAPACITY: usize = 16_384;
const BATCH: usize = 1_000;

const SCHEMA: &[&str] = &["CREATE TABLE logs (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        gateway TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        provider TEXT NOT NULL,
        model TEXT,
        path TEXT NOT NULL,
        status INTEGER NOT NULL,
        success INTEGER NOT NULL,
        cached INTEGER NOT NULL,
        step INTEGER NOT NULL,
        attempts INTEGER NOT NULL,
        tokens_in INTEGER NOT NULL,
        tokens_out INTEGER NOT NULL,
        cost REAL NOT NULL,
        duration_ms INTEGER NOT NULL,
        key TEXT,
        metadata TEXT,
        dlp TEXT,
        error TEXT,
        request_body BLOB,
        response_body BLOB,
        feedback INTEGER,
        score REAL
    );
    CREATE INDEX logs_gateway ON logs (gateway, seq);"];

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error(transparent)]
    Open(#[from] hearth_core::sqlite::OpenError),
    #[error("logs: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("logs: the writer has stopped")]
    Stopped,
    #[error("{0}")]
    BadFilter(String),
    #[error("no log with id {0:?}")]
    NotFound(String),
}

#[derive(Debug, Clone, Default)]
pub struct LogRecord {
    pub id: String,
    pub gateway: String,
    pub created_ms: u64,
    pub provider: String,
    pub model: Option<String>,
    pub path: String,
    pub status: u16,
    pub success: bool,
    pub cached: bool,
    pub step: u32,
    pub attempts: u32,
    pub tokens_in: u64,
    pub tokens_out: u64,
    pub cost: f64,
    pub duration_ms: u64,
    pub key: Option<String>,
    pub metadata: Option<String>,
    pub dlp: Vec<String>,
    pub error: Option<String>,
    pub request_body: Option<Vec<u8>>,
    pub response_body: Option<Vec<u8>>,
}

/// `patchLog`'s fields.
#[derive(Debug, Clone, Default)]
pub struct LogPatch {
    pub feedback: Option<i64>,
    pub score: Option<f64>,
    pub metadata: Option<String>,
}

enum Msg {
    Log(Box<LogRecord>, u64, WhenFull),
    Patch(String, LogPatch, SyncSender<Result<(), LogError>>),
    Flush(SyncSender<()>),
}

#[derive(Debug)]
pub struct LogStore {
    path: PathBuf,
    tx: SyncSender<Msg>,
    dropped: Arc<AtomicU64>,
    _writer: std::thread::JoinHandle<()>,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Msg")
    }
}

pub fn open_file(path: &Path) -> Result<Connection, LogError> {
    let mut conn = hearth_core::sqlite::open(path)?;
    hearth_core::sqlite::migrate(&mut conn, path, SCHEMA)?;
    Ok(conn)
}

impl LogStore {
    pub fn open(path: &Path) -> Result<Self, LogError> {
        let conn = open_file(path)?;
        let (tx, rx) = sync_channel(QUEUE_CAPACITY);
        let writer = std::thread::Builder::new()
            .name("ai-gateway-logs".into())
            .spawn(move || write_loop(conn, rx))
            .map_err(|_| LogError::Stopped)?;
        Ok(Self {
            path: path.to_owned(),
            tx,
            dropped: Arc::new(AtomicU64::new(0)),
            _writer: writer,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Queues a record; never waits.
    pub fn record(&self, rec: LogRecord, max_logs: u64, when_full: WhenFull) {
        match self
            .tx
            .try_send(Msg::Log(Box::new(rec), max_logs, when_full))
        {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Records dropped because the writer fell behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Waits until every record queued before the call is committed.
    pub fn flush(&self) -> Result<(), LogError> {
        let (tx, rx) = sync_channel(1);
        self.tx
            .send(Msg::Flush(tx))
            .map_err(|_| LogError::Stopped)?;
        rx.recv().map_err(|_| LogError::Stopped)
    }

    pub fn patch(&self, id: &str, patch: LogPatch) -> Result<(), LogError> {
        let (tx, rx) = sync_channel(1);
        self.tx
            .send(Msg::Patch(id.to_owned(), patch, tx))
            .map_err(|_| LogError::Stopped)?;
        rx.recv().map_err(|_| LogError::Stopped)?
    }
}

fn write_loop(mut conn: Connection, rx: Receiver<Msg>) {
    let mut counts: HashMap<String, u64> = HashMap::new();
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        let mut acks = Vec::new();
        let result = (|| -> rusqlite::Result<()> {
            let tx = conn.transaction()?;
            for m in batch {
                match m {
                    Msg::Log(rec, max, when_full) => {
                        insert(&tx, &mut counts, &rec, max, when_full)?;
                    }
                    Msg::Patch(id, p, reply) => {
                        let n = tx.execute(
                            "UPDATE logs SET feedback = COALESCE(?2, feedback),
                                score = COALESCE(?3, score),
                                metadata = COALESCE(?4, metadata) WHERE id = ?1",
                            params![id, p.feedback, p.score, p.metadata],
                        )?;
                        acks.push(Ack::Patch(
                            reply,
                            if n == 0 {
                                Err(LogError::NotFound(id))
                            } else {
                                Ok(())
                            },
                        ));
                    }
                    Msg::Flush(reply) => acks.push(Ack::Flush(reply)),
                }
            }
            tx.commit()
        })();
        if let Err(e) = &result {
            tracing::warn!("ai gateway logs: commit failed: {e}");
            counts.clear();
        }
        for a in acks {
            match a {
                Ack::Flush(r) => {
                    let _ = r.send(());
                }
                Ack::Patch(r, outcome) => {
                    let _ = r.send(match (&result, outcome) {
                        (Err(e), _) => Err(LogError::BadFilter(format!("logs: {e}"))),
                        (Ok(()), o) => o,
                    });
                }
            }
        }
    }
}

enum Ack {
    Flush(SyncSender<()>),
    Patch(SyncSender<Result<(), LogError>>, Result<(), LogError>),
}

fn insert(
    tx: &rusqlite::Transaction<'_>,
    counts: &mut HashMap<String, u64>,
    r: &LogRecord,
    max: u64,
    when_full: WhenFull,
) -> rusqlite::Result<()> {
    let count = match counts.get(&r.gateway) {
        Some(c) => *c,
        None => {
            let c: i64 = tx.query_row(
                "SELECT COUNT(*) FROM logs WHERE gateway = ?1",
                [&r.gateway],
                |row| row.get(0),
            )?;
            c as u64
        }
    };
    let mut count = count;
    if count >= max {
        match when_full {
            WhenFull::Stop => {
                counts.insert(r.gateway.clone(), count);
                return Ok(());
            }
            WhenFull::DropOldest => {
                let excess = count + 1 - max;
                let n = tx.execute(
                    "DELETE FROM logs WHERE seq IN
                        (SELECT seq FROM logs WHERE gateway = ?1 ORDER BY seq LIMIT ?2)",
                    params![r.gateway, excess as i64],
                )?;
                count -= n as u64;
            }
        }
    }
    let dlp = (!r.dlp.is_empty()).then(|| r.dlp.join(","));
    tx.prepare_cached(
        "INSERT INTO logs (id, gateway, created_ms, provider, model, path, status, success,
            cached, step, attempts, tokens_in, tokens_out, cost, duration_ms, key, metadata, dlp,
            error, request_body, response_body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18,
            ?19, ?20, ?21)",
    )?
    .execute(params![
        r.id,
        r.gateway,
        r.created_ms as i64,
        r.provider,
        r.model,
        r.path,
        r.status,
        r.success,
        r.cached,
        r.step,
        r.attempts,
        r.tokens_in as i64,
        r.tokens_out as i64,
        r.cost,
        r.duration_ms as i64,
        r.key,
        r.metadata,
        dlp,
        r.error,
        r.request_body,
        r.response_body,
    ])?;
    counts.insert(r.gateway.clone(), count + 1);
    Ok(())
}

/// One `field=value` filter of `hearth ai-gateway logs --filter`.
fn filter_sql(f: &str) -> Result<(String, Value), LogError> {
    let (field, value) = f
        .split_once('=')
        .ok_or_else(|| LogError::BadFilter(format!("filter {f:?}: expected field=value")))?;
    let text = || Value::String(value.to_owned());
    let int = || {
        value
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| LogError::BadFilter(format!("filter {f:?}: {field} takes a whole number")))
    };
    let boolean = || match value {
        "true" => Ok(Value::from(1)),
        "false" => Ok(Value::from(0)),
        _ => Err(LogError::BadFilter(format!(
            "filter {f:?}: {field} takes true or false"
        ))),
    };
    Ok(match field {
        "provider" | "model" | "key" | "path" | "id" => (format!("{field} = ?"), text()),
        "status" | "step" => (format!("{field} = ?"), int()?),
        "success" | "cached" => (format!("{field} = ?"), boolean()?),
        "since" => ("created_ms >= ?".into(), int()?),
        "until" => ("created_ms < ?".into(), int()?),
        "dlp" => ("dlp IS NOT NULL AND instr(dlp, ?) > 0".into(), text()),
        _ => {
            return Err(LogError::BadFilter(format!(
                "filter {f:?}: unknown field {field:?} (provider, model, key, path, id, status, step, success, cached, since, until, dlp)"
            )));
        }
    })
}

fn row_json(row: &rusqlite::Row<'_>) -> rusqlite::Result<Value> {
    let body = |i: usize| -> rusqlite::Result<Value> {
        Ok(row.get::<_, Option<Vec<u8>>>(i)?.map_or(Value::Null, |b| {
            Value::String(String::from_utf8_lossy(&b).into_owned())
        }))
    };
    let metadata: Option<String> = row.get(16)?;
    Ok(json!({
        "id": row.get::<_, String>(0)?,
        "gateway": row.get::<_, String>(1)?,
        "created_at": row.get::<_, i64>(2)?,
        "provider": row.get::<_, String>(3)?,
        "model": row.get::<_, Option<String>>(4)?,
        "path": row.get::<_, String>(5)?,
        "status_code": row.get::<_, i64>(6)?,
        "success": row.get::<_, bool>(7)?,
        "cached": row.get::<_, bool>(8)?,
        "step": row.get::<_, i64>(9)?,
        "attempts": row.get::<_, i64>(10)?,
        "tokens_in": row.get::<_, i64>(11)?,
        "tokens_out": row.get::<_, i64>(12)?,
        "cost": row.get::<_, f64>(13)?,
        "duration": row.get::<_, i64>(14)?,
        "key": row.get::<_, Option<String>>(15)?,
        "metadata": metadata.and_then(|m| serde_json::from_str::<Value>(&m).ok()),
        "dlp": row.get::<_, Option<String>>(17)?,
        "error": row.get::<_, Option<String>>(18)?,
        "request": body(19)?,
        "response": body(20)?,
        "feedback": row.get::<_, Option<i64>>(21)?,
        "score": row.get::<_, Option<f64>>(22)?,
    }))
}

const COLUMNS: &str = "id, gateway, created_ms, provider, model, path, status, success, cached,
    step, attempts, tokens_in, tokens_out, cost, duration_ms, key, metadata, dlp, error,
    request_body, response_body, feedback, score";

fn to_sql(v: &Value) -> rusqlite::types::Value {
    match v {
        Value::String(s) => rusqlite::types::Value::Text(s.clone()),
        Value::Number(n) => rusqlite::types::Value::Integer(n.as_i64().unwrap_or(0)),
        _ => rusqlite::types::Value::Null,
    }
}

/// The newest logs of `gateway` matching every filter, newest first.
pub fn query(
    conn: &Connection,
    gateway: &str,
    filters: &[String],
    limit: u64,
) -> Result<Vec<Value>, LogError> {
    let mut sql = format!("SELECT {COLUMNS} FROM logs WHERE gateway = ?");
    let mut args = vec![rusqlite::types::Value::Text(gateway.to_owned())];
    for f in filters {
        let (clause, v) = filter_sql(f)?;
        sql.push_str(" AND ");
        sql.push_str(&clause);
        args.push(to_sql(&v));
    }
    sql.push_str(" ORDER BY seq DESC LIMIT ?");
    args.push(rusqlite::types::Value::Integer(
        limit.min(i64::MAX as u64) as i64
    ));
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(args), row_json)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Page `page` (from 1) of `gateway`'s logs, newest first, `per_page` a
/// page, and how many logs the gateway has in all.
pub fn page(
    conn: &Connection,
    gateway: &str,
    page: u64,
    per_page: u64,
) -> Result<(Vec<Value>, u64), LogError> {
    let total: i64 = conn.query_row(
        "SELECT COUNT(*) FROM logs WHERE gateway = ?1",
        [gateway],
        |r| r.get(0),
    )?;
    let offset = page.saturating_sub(1).saturating_mul(per_page);
    let clamp = |v: u64| v.min(i64::MAX as u64) as i64;
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM logs WHERE gateway = ?1 ORDER BY seq DESC LIMIT ?2 OFFSET ?3"
    ))?;
    let rows = stmt.query_map(
        rusqlite::params![gateway, clamp(per_page), clamp(offset)],
        row_json,
    )?;
    Ok((rows.collect::<rusqlite::Result<_>>()?, total.max(0) as u64))
}

pub fn get(conn: &Connection, id: &str) -> Result<Value, LogError> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM logs WHERE id = ?1"),
        [id],
        row_json,
    )
    .map_err(|e| match e {
        rusqlite::Error::QueryReturnedNoRows => LogError::NotFound(id.to_owned()),
        e => LogError::Sqlite(e),
    })
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Requests, tokens, cost, p50/p99 latency and cache hit rate, for the
/// whole gateway and per model, over the logs matching `filters`.
pub fn summary(conn: &Connection, gateway: &str, filters: &[String]) -> Result<Value, LogError> {
    let mut sql =
        "SELECT COALESCE(model, ''), duration_ms, cached, tokens_in, tokens_out, cost, success
        FROM logs WHERE gateway = ?"
            .to_owned();
    let mut args = vec![rusqlite::types::Value::Text(gateway.to_owned())];
    for f in filters {
        let (clause, v) = filter_sql(f)?;
        sql.push_str(" AND ");
        sql.push_str(&clause);
        args.push(to_sql(&v));
    }
    #[derive(Default)]
    struct Acc {
        durations: Vec<i64>,
        cached: u64,
        tokens_in: i64,
        tokens_out: i64,
        cost: f64,
        errors: u64,
    }
    let mut per: std::collections::BTreeMap<String, Acc> = Default::default();
    let mut all = Acc::default();
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
    while let Some(row) = rows.next()? {
        let model: String = row.get(0)?;
        for acc in [per.entry(model).or_default(), &mut all] {
            acc.durations.push(row.get(1)?);
            acc.cached += u64::from(row.get::<_, bool>(2)?);
            acc.tokens_in += row.get::<_, i64>(3)?;
            acc.tokens_out += row.get::<_, i64>(4)?;
            acc.cost += row.get::<_, f64>(5)?;
            acc.errors += u64::from(!row.get::<_, bool>(6)?);
        }
    }
    let render = |acc: &mut Acc| {
        acc.durations.sort_unstable();
        let n = acc.durations.len() as u64;
        json!({
            "requests": n,
            "errors": acc.errors,
            "tokens_in": acc.tokens_in,
            "tokens_out": acc.tokens_out,
            "cost": acc.cost,
            "latency_p50_ms": percentile(&acc.durations, 0.50),
            "latency_p99_ms": percentile(&acc.durations, 0.99),
            "cache_hit_rate": if n == 0 { 0.0 } else { acc.cached as f64 / n as f64 },
        })
    };
    let mut v = render(&mut all);
    v["gateway"] = json!(gateway);
    v["models"] = Value::Object(
        per.iter_mut()
            .map(|(m, acc)| (m.clone(), render(acc)))
            .collect(),
    );
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(gateway: &str, i: u64) -> LogRecord {
        LogRecord {
            id: format!("{gateway}-{i}"),
            gateway: gateway.into(),
            created_ms: i,
            provider: "openai".into(),
            model: Some(if i.is_multiple_of(2) { "a" } else { "b" }.into()),
            path: "chat/completions".into(),
            status: 200,
            success: true,
            cached: i.is_multiple_of(4),
            duration_ms: i,
            tokens_in: 10,
            tokens_out: 1,
            cost: 0.5,
            ..Default::default()
        }
    }

    #[test]
    fn drop_oldest_keeps_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let store = LogStore::open(&dir.path().join("logs.sqlite")).unwrap();
        for i in 0..10 {
            store.record(rec("g", i), 4, WhenFull::DropOldest);
        }
        store.record(rec("h", 0), 4, WhenFull::DropOldest);
        store.flush().unwrap();
        let conn = open_file(store.path()).unwrap();
        let ids: Vec<String> = query(&conn, "g", &[], 100)
            .unwrap()
            .iter()
            .map(|v| v["id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(ids, ["g-9", "g-8", "g-7", "g-6"]);
        assert_eq!(query(&conn, "h", &[], 100).unwrap().len(), 1);
    }

    #[test]
    fn stop_keeps_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = LogStore::open(&dir.path().join("logs.sqlite")).unwrap();
        for i in 0..10 {
            store.record(rec("g", i), 3, WhenFull::Stop);
        }
        store.flush().unwrap();
        let conn = open_file(store.path()).unwrap();
        let ids: Vec<String> = query(&conn, "g", &[], 100)
            .unwrap()
            .iter()
            .map(|v| v["id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(ids, ["g-2", "g-1", "g-0"]);
    }

    #[test]
    fn filters_summary_and_patch() {
        let dir = tempfile::tempdir().unwrap();
        let store = LogStore::open(&dir.path().join("logs.sqlite")).unwrap();
        for i in 1..=100 {
            store.record(rec("g", i), 1000, WhenFull::Stop);
        }
        store
            .patch(
                "g-3",
                LogPatch {
                    feedback: Some(1),
                    score: Some(80.0),
                    metadata: None,
                },
            )
            .unwrap();
        assert!(matches!(
            store.patch("nope", LogPatch::default()),
            Err(LogError::NotFound(_))
        ));
        store.flush().unwrap();
        let conn = open_file(store.path()).unwrap();
        assert_eq!(
            query(&conn, "g", &["model=a".into(), "cached=true".into()], 100)
                .unwrap()
                .len(),
            25
        );
        let err = query(&conn, "g", &["colour=red".into()], 1).unwrap_err();
        assert!(
            err.to_string().contains("unknown field \"colour\""),
            "{err}"
        );
        let got = get(&conn, "g-3").unwrap();
        assert_eq!(
            (got["feedback"].as_i64(), got["score"].as_f64()),
            (Some(1), Some(80.0))
        );
        let s = summary(&conn, "g", &[]).unwrap();
        assert_eq!(s["requests"], 100);
        assert_eq!(s["latency_p50_ms"], 50);
        assert_eq!(s["latency_p99_ms"], 99);
        assert_eq!(s["cost"], 50.0);
        assert_eq!(s["cache_hit_rate"], 0.25);
        assert_eq!(s["models"]["a"]["requests"], 50);
        assert_eq!(s["models"]["a"]["cache_hit_rate"], 0.5);
    }
}
