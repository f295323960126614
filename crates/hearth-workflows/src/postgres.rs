//! The cluster backend: the journal in PostgreSQL, shared by every node, so
//! any node answers `create`, `get`, `status`, `pause`, `resume`,
//! `terminate`, `restart` and `sendEvent` for any instance, and any node's
//! runner can claim a run whose runner died.
//!
//! Write transactions take one advisory lock first, so they run one at a
//! time across the cluster: the same single-writer rule the SQLite file
//! gives, which the engine's check-then-write steps rely on. Reads run in a
//! read-only `REPEATABLE READ` transaction (one snapshot) without the lock.
//! The transaction has a connection of its own (statements are prepared
//! once per connection); a write returns after PostgreSQL's commit.

use std::collections::HashMap;
use std::error::Error;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::BytesMut;
use hearth_cluster::Pg;
use hearth_cluster::tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use hearth_cluster::tokio_postgres::{Client, Statement};

use crate::error::{Result, WorkflowError};
use crate::store::{Dialect, JournalStore, Row, Tx, Value};

/// Schema steps of the `workflows` unit (see [`Pg::migrate`]).
const STEPS: &[&str] = &["
CREATE TABLE wf_instances (
    workflow         TEXT NOT NULL,
    id               TEXT NOT NULL,
    status           TEXT NOT NULL,
    params           BYTEA NOT NULL,
    created_ms       BIGINT NOT NULL,
    started_ms       BIGINT,
    ended_ms         BIGINT,
    output           BYTEA,
    error_name       TEXT,
    error_message    TEXT,
    wake_at_ms       BIGINT,
    lease            BIGINT NOT NULL DEFAULT 0,
    lease_expires_ms BIGINT,
    paused_at_ms     BIGINT,
    runner           TEXT,
    PRIMARY KEY (workflow, id)
);
CREATE INDEX wf_instances_due
    ON wf_instances (wake_at_ms) WHERE status IN ('queued', 'waiting');
CREATE INDEX wf_instances_leased
    ON wf_instances (lease_expires_ms) WHERE status IN ('running', 'waitingForPause');
CREATE INDEX wf_instances_created ON wf_instances (workflow, created_ms, id);

CREATE TABLE wf_steps (
    seq            BIGSERIAL,
    workflow       TEXT NOT NULL,
    instance       TEXT NOT NULL,
    kind           TEXT NOT NULL,
    name           TEXT NOT NULL,
    occurrence     BIGINT NOT NULL,
    state          TEXT NOT NULL,
    retry_limit    BIGINT,
    retry_delay_ms BIGINT,
    backoff        TEXT,
    timeout_ms     BIGINT,
    attempts       BIGINT NOT NULL DEFAULT 0,
    started_ms     BIGINT NOT NULL,
    ended_ms       BIGINT,
    wake_at_ms     BIGINT,
    event_type     TEXT,
    event_ms       BIGINT,
    output         BYTEA,
    error_name     TEXT,
    error_message  TEXT,
    PRIMARY KEY (workflow, instance, kind, name, occurrence)
);

CREATE TABLE wf_attempts (
    workflow      TEXT NOT NULL,
    instance      TEXT NOT NULL,
    name          TEXT NOT NULL,
    occurrence    BIGINT NOT NULL,
    attempt       BIGINT NOT NULL,
    started_ms    BIGINT NOT NULL,
    ended_ms      BIGINT,
    success       BOOLEAN,
    error_name    TEXT,
    error_message TEXT,
    PRIMARY KEY (workflow, instance, name, occurrence, attempt)
);

CREATE TABLE wf_events (
    seq          BIGSERIAL PRIMARY KEY,
    workflow     TEXT NOT NULL,
    instance     TEXT NOT NULL,
    event_type   TEXT NOT NULL,
    payload      BYTEA NOT NULL,
    timestamp_ms BIGINT NOT NULL,
    consumed     BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX wf_events_pending
    ON wf_events (workflow, instance, event_type, seq) WHERE consumed = 0;
"];

/// The advisory lock every write transaction takes (any fixed key; it is
/// per database, and the schema's name is mixed in so two clusters sharing
/// a database do not serialize each other).
const LOCK_SQL: &str = "SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.wf_journal'))";

/// The journal in PostgreSQL, in the schema of `pg`.
#[derive(Debug)]
pub struct PgJournal {
    pg: Pg,
    conn: Mutex<Option<Conn>>,
}

struct Conn {
    client: Arc<Client>,
    statements: HashMap<String, Statement>,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("statements", &self.statements.len())
            .finish()
    }
}

impl PgJournal {
    /// Migrates the journal's tables in `pg`'s schema.
    pub fn open(pg: Pg) -> Result<Self> {
        pg.migrate("workflows", STEPS)?;
        Ok(Self {
            pg,
            conn: Mutex::new(None),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Option<Conn>> {
        // A panic mid-transaction leaves the connection in it; the next
        // call finds it closed or rolls back before starting.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn run(&self, begin: &'static str, f: &mut dyn FnMut(&mut dyn Tx) -> Result<()>) -> Result<()> {
        let mut slot = self.lock();
        if slot.as_ref().is_none_or(|c| c.client.is_closed()) {
            let pg = self.pg.clone();
            let client = self.pg.block(async move { pg.open().await })?;
            *slot = Some(Conn {
                client: Arc::new(client),
                statements: HashMap::new(),
            });
        }
        let Some(conn) = slot.as_mut() else {
            return Err(WorkflowError::StoreSkipped);
        };
        let client = conn.client.clone();
        batch(&self.pg, &client, begin)?;
        let mut tx = PgTx { pg: &self.pg, conn };
        match f(&mut tx) {
            Ok(()) => {
                if let Err(e) = batch(&self.pg, &client, "COMMIT") {
                    // The outcome of a commit that did not answer is
                    // unknown; drop the connection rather than reuse it.
                    *slot = None;
                    return Err(e);
                }
                Ok(())
            }
            Err(e) => {
                if batch(&self.pg, &client, "ROLLBACK").is_err() {
                    *slot = None;
                }
                Err(e)
            }
        }
    }
}

fn batch(pg: &Pg, client: &Arc<Client>, sql: &'static str) -> Result<()> {
    let client = client.clone();
    pg.block(async move { Ok(client.batch_execute(sql).await?) })?;
    Ok(())
}

impl JournalStore for PgJournal {
    fn write(&self, f: &mut dyn FnMut(&mut dyn Tx) -> Result<()>) -> Result<()> {
        self.run("BEGIN", &mut |tx| {
            tx.execute(LOCK_SQL, &[])?;
            f(tx)
        })
    }

    fn read(&self, f: &mut dyn FnMut(&mut dyn Tx) -> Result<()>) -> Result<()> {
        self.run("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", f)
    }

    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn describe(&self) -> String {
        format!("postgres:{}.wf_instances", self.pg.schema())
    }
}

struct PgTx<'a> {
    pg: &'a Pg,
    conn: &'a mut Conn,
}

/// `?N` placeholders as PostgreSQL's `$N`.
fn dollar_params(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '?' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}

impl PgTx<'_> {
    fn statement(&mut self, sql: &str) -> Result<Statement> {
        if let Some(s) = self.conn.statements.get(sql) {
            return Ok(s.clone());
        }
        let (client, text) = (self.conn.client.clone(), dollar_params(sql));
        let statement = self
            .pg
            .block(async move { Ok(client.prepare(&text).await?) })?;
        self.conn
            .statements
            .insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }
}

impl Tx for PgTx<'_> {
    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<usize> {
        let statement = self.statement(sql)?;
        let (client, params) = (self.conn.client.clone(), params.to_vec());
        let n = self.pg.block(async move {
            let refs: Vec<&(dyn ToSql + Sync)> =
                params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
            Ok(client.execute(&statement, &refs).await?)
        })?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>> {
        let statement = self.statement(sql)?;
        let (client, params) = (self.conn.client.clone(), params.to_vec());
        let rows = self.pg.block(async move {
            let refs: Vec<&(dyn ToSql + Sync)> =
                params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
            Ok(client.query(&statement, &refs).await?)
        })?;
        rows.iter().map(row_of).collect()
    }
}

fn row_of(row: &hearth_cluster::tokio_postgres::Row) -> Result<Row> {
    let mut out = Vec::with_capacity(row.len());
    for (i, column) in row.columns().iter().enumerate() {
        let pg = |e: hearth_cluster::tokio_postgres::Error| {
            WorkflowError::Postgres(hearth_cluster::PgError::from(e))
        };
        let ty = column.type_();
        let value = if *ty == Type::INT8 {
            row.try_get::<_, Option<i64>>(i).map_err(pg)?.into()
        } else if *ty == Type::INT4 {
            row.try_get::<_, Option<i32>>(i)
                .map_err(pg)?
                .map(i64::from)
                .into()
        } else if *ty == Type::INT2 {
            row.try_get::<_, Option<i16>>(i)
                .map_err(pg)?
                .map(i64::from)
                .into()
        } else if *ty == Type::BOOL {
            row.try_get::<_, Option<bool>>(i).map_err(pg)?.into()
        } else if *ty == Type::BYTEA {
            row.try_get::<_, Option<Vec<u8>>>(i).map_err(pg)?.into()
        } else if [Type::TEXT, Type::VARCHAR, Type::NAME, Type::BPCHAR].contains(ty) {
            row.try_get::<_, Option<String>>(i).map_err(pg)?.into()
        } else {
            return Err(WorkflowError::BadColumn {
                column: i,
                found: "a PostgreSQL type the journal does not use",
                expected: "bigint, boolean, text or bytea",
            });
        };
        out.push(value);
    }
    Ok(Row(out))
}

impl ToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn Error + Sync + Send>> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(v) => {
                if *ty == Type::INT8 {
                    v.to_sql(ty, out)
                } else if *ty == Type::INT4 {
                    i32::try_from(*v)?.to_sql(ty, out)
                } else if *ty == Type::INT2 {
                    i16::try_from(*v)?.to_sql(ty, out)
                } else if *ty == Type::BOOL {
                    (*v != 0).to_sql(ty, out)
                } else {
                    Err(format!("an integer cannot be bound to a {ty} parameter").into())
                }
            }
            Value::Text(t) => t.as_str().to_sql(ty, out),
            Value::Blob(b) => b.as_slice().to_sql(ty, out),
        }
    }

    /// Any type: the value is converted (or refused) in `to_sql`, so one
    /// value type serves every column.
    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

#[cfg(test)]
mod tests {
    #[test]
    fn question_mark_parameters_become_dollar_parameters() {
        assert_eq!(
            super::dollar_params("a = ?1 AND b = ?12 AND c <> '?'"),
            "a = $1 AND b = $12 AND c <> '?'"
        );
    }
}
