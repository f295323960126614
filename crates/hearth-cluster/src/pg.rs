//! One PostgreSQL connection per node, shared by every backend on it.
//!
//! The binding contracts are synchronous and run on isolate threads, which
//! may be inside a tokio runtime of their own; so the client lives on a
//! small runtime owned here and synchronous callers hand it futures through
//! [`Pg::block`]. tokio-postgres pipelines concurrent queries over the one
//! connection, so callers do not queue behind each other's round trips.
//! Every table lives in the configured schema (`search_path`), which lets
//! several clusters or tests share one database.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::runtime::{Handle, Runtime};
use tokio_postgres::{Client, NoTls};

use crate::config::valid_schema;

/// The longest a synchronous caller waits for PostgreSQL.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error("cannot connect to PostgreSQL at {url}: {message}")]
    Connect { url: String, message: String },
    #[error("PostgreSQL: {0}")]
    Query(String),
    #[error("PostgreSQL did not answer within {} s", QUERY_TIMEOUT.as_secs())]
    Timeout,
    #[error("schema name {0:?} is not allowed: use a-z, 0-9 and '_', starting with a letter")]
    BadSchema(String),
    #[error(
        "the PostgreSQL schema {schema:?} holds {unit} at version {found}, newer than this build knows ({known}); use a newer hearth"
    )]
    Newer {
        schema: String,
        unit: String,
        found: i64,
        known: i64,
    },
    #[error("cannot start the PostgreSQL client's runtime: {0}")]
    Runtime(std::io::Error),
}

impl From<tokio_postgres::Error> for PgError {
    fn from(e: tokio_postgres::Error) -> Self {
        PgError::Query(describe(&e))
    }
}

/// tokio-postgres's `Display` says only "db error"; the server's message
/// is what an operator needs.
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => match std::error::Error::source(e) {
            Some(source) => format!("{e}: {source}"),
            None => e.to_string(),
        },
    }
}

/// A node's PostgreSQL connection. Cheap to clone.
#[derive(Clone)]
pub struct Pg {
    inner: Arc<Inner>,
}

struct Inner {
    runtime: Option<Runtime>,
    handle: Handle,
    url: String,
    schema: String,
    client: tokio::sync::Mutex<Option<Arc<Client>>>,
    /// PostgreSQL ends a transaction left idle this long (0: never).
    idle_transaction_ms: AtomicU64,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // May be dropped on an async thread, where a blocking shutdown panics.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl std::fmt::Debug for Pg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pg")
            .field("schema", &self.inner.schema)
            .finish_non_exhaustive()
    }
}

impl Pg {
    /// Connects (creating `schema` if needed), so a wrong URL fails at start.
    pub fn connect(url: &str, schema: &str) -> Result<Self, PgError> {
        if !valid_schema(schema) {
            return Err(PgError::BadSchema(schema.to_owned()));
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("hearth-pg")
            .enable_all()
            .build()
            .map_err(PgError::Runtime)?;
        let handle = runtime.handle().clone();
        let pg = Pg {
            inner: Arc::new(Inner {
                runtime: Some(runtime),
                handle,
                url: url.to_owned(),
                schema: schema.to_owned(),
                client: tokio::sync::Mutex::new(None),
                idle_transaction_ms: AtomicU64::new(0),
            }),
        };
        let this = pg.clone();
        pg.block(async move { this.client().await.map(|_| ()) })?;
        Ok(pg)
    }

    /// Has PostgreSQL end a transaction of a connection opened from now on
    /// once it waited `limit` for this node (idle in transaction): a node
    /// cut off mid-transaction then holds its locks (the Workflows
    /// journal's advisory lock, a lease row read `FOR SHARE`) for at most
    /// that long, not until its TCP connection times out. The transaction
    /// is rolled back; the node finds out when it reaches PostgreSQL again.
    pub fn limit_idle_transactions(&self, limit: Duration) {
        let ms = u64::try_from(limit.as_millis()).unwrap_or(u64::MAX).max(1);
        self.inner.idle_transaction_ms.store(ms, Ordering::Relaxed);
    }

    pub fn schema(&self) -> &str {
        &self.inner.schema
    }

    /// The runtime the client runs on, for async callers' own tasks.
    pub fn handle(&self) -> &Handle {
        &self.inner.handle
    }

    /// The live client, reconnecting when the last one closed.
    pub async fn client(&self) -> Result<Arc<Client>, PgError> {
        let mut slot = self.inner.client.lock().await;
        if let Some(c) = slot.as_ref()
            && !c.is_closed()
        {
            return Ok(c.clone());
        }
        let client = Arc::new(self.open().await?);
        *slot = Some(client.clone());
        Ok(client)
    }

    /// A connection of its own, for work that needs a transaction.
    pub async fn open(&self) -> Result<Client, PgError> {
        let connect_error = |message: String| PgError::Connect {
            url: redact(&self.inner.url),
            message,
        };
        let mut config: tokio_postgres::Config = self
            .inner
            .url
            .parse()
            .map_err(|e: tokio_postgres::Error| connect_error(describe(&e)))?;
        config.connect_timeout(CONNECT_TIMEOUT);
        config.application_name("hearth");
        // "schema already exists, skipping" and the like are not news.
        let mut options = "-c client_min_messages=warning".to_owned();
        let idle = self.inner.idle_transaction_ms.load(Ordering::Relaxed);
        if idle > 0 {
            options.push_str(&format!(" -c idle_in_transaction_session_timeout={idle}"));
        }
        config.options(&options);
        let (client, connection) = config
            .connect(NoTls)
            .await
            .map_err(|e| connect_error(describe(&e)))?;
        self.inner.handle.spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(target: "hearth::cluster", "PostgreSQL connection ended: {}", describe(&e));
            }
        });
        let schema = &self.inner.schema;
        // Two nodes creating the schema at once: one wins, the other's
        // duplicate error means it exists, which is all that is wanted.
        if let Err(e) = client
            .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
            .await
            && !e
                .code()
                .is_some_and(|c| matches!(c.code(), "23505" | "42P06"))
        {
            return Err(e.into());
        }
        client
            .batch_execute(&format!("SET search_path TO {schema}"))
            .await?;
        Ok(client)
    }

    /// Runs `fut` on the client's runtime and waits for it: the bridge from
    /// the synchronous contracts. Never call it from the runtime itself.
    pub fn block<T, F>(&self, fut: F) -> Result<T, PgError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, PgError>> + Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.inner.handle.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv_timeout(QUERY_TIMEOUT)
            .map_err(|_| PgError::Timeout)?
    }

    /// Brings `unit`'s tables to the last of `steps`: step `n` moves the
    /// unit from version `n` to `n + 1`, all in one transaction under an
    /// advisory lock, so nodes starting together migrate once. A schema
    /// from a newer build is refused rather than misread.
    pub fn migrate(
        &self,
        unit: &'static str,
        steps: &'static [&'static str],
    ) -> Result<(), PgError> {
        let this = self.clone();
        self.block(async move { this.migrate_async(unit, steps).await })
    }

    /// [`migrate`](Self::migrate) from async code.
    pub async fn migrate_async(&self, unit: &str, steps: &[&str]) -> Result<(), PgError> {
        let mut client = self.open().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtext(current_schema()))",
            &[],
        )
        .await?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS hearth_migrations (
                 unit TEXT PRIMARY KEY, version BIGINT NOT NULL)",
        )
        .await?;
        let found: i64 = tx
            .query_opt(
                "SELECT version FROM hearth_migrations WHERE unit = $1",
                &[&unit],
            )
            .await?
            .map(|r| r.get(0))
            .unwrap_or(0);
        let known = steps.len() as i64;
        if found > known {
            return Err(PgError::Newer {
                schema: self.inner.schema.clone(),
                unit: unit.to_owned(),
                found,
                known,
            });
        }
        for step in &steps[found as usize..] {
            tx.batch_execute(step).await?;
        }
        tx.execute(
            "INSERT INTO hearth_migrations (unit, version) VALUES ($1, $2)
             ON CONFLICT (unit) DO UPDATE SET version = excluded.version",
            &[&unit, &known],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            super::redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(super::redact("postgres://u@h/db"), "postgres://u@h/db");
    }
}
