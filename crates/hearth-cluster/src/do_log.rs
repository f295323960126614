//! Durable Object storage durable outside the node: each object's change
//! log and snapshots in PostgreSQL (the [`ChangeLog`] of `hearth-do`).
//!
//! `do_changes` holds one row per shipped commit, keyed by object and
//! sequence number. A row is written only while the writer's lease is the
//! object's lease: the insert reads the lease row `FOR SHARE` in the same
//! statement, so a takeover (which updates that row) waits for an append
//! in flight, and an append after a takeover finds the token changed and
//! writes nothing. Snapshots are `bytea` chunks of the database file in
//! `do_snapshot_chunks`, or, when the cluster has an S3 store, objects
//! `<prefix>do-snapshots/<class>/<id>/<seq>/<chunk>` in it; either way a
//! snapshot is made current by one fenced transaction in PostgreSQL
//! (`do_snapshots`) that also drops the changes it holds, so the log's
//! order and fencing stay in one place. A chunk missing from the store is
//! looked for in PostgreSQL, where snapshots taken before the store was
//! configured live. The cluster's Durable Object id secret is kept here
//! too, so every node makes the same ids.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use hearth_do::{ChangeLog, Lease, LogError, SnapshotHead};

use hearth_r2::S3Store;

use crate::pg::{Pg, PgError};

const STEPS: &[&str] = &["
CREATE TABLE do_changes (
    namespace TEXT NOT NULL,
    object_id TEXT NOT NULL,
    seq       BIGINT NOT NULL,
    token     BIGINT NOT NULL,
    node_id   TEXT NOT NULL,
    frames    BYTEA NOT NULL,
    PRIMARY KEY (namespace, object_id, seq)
);
CREATE TABLE do_snapshots (
    namespace TEXT NOT NULL,
    object_id TEXT NOT NULL,
    seq       BIGINT NOT NULL,
    chunks    INTEGER NOT NULL,
    token     BIGINT NOT NULL,
    PRIMARY KEY (namespace, object_id)
);
CREATE TABLE do_snapshot_chunks (
    namespace TEXT NOT NULL,
    object_id TEXT NOT NULL,
    seq       BIGINT NOT NULL,
    chunk     INTEGER NOT NULL,
    data      BYTEA NOT NULL,
    PRIMARY KEY (namespace, object_id, seq, chunk)
);
CREATE TABLE do_id_secret (
    one    BOOLEAN PRIMARY KEY DEFAULT true CHECK (one),
    secret BYTEA NOT NULL
);
CREATE TABLE do_alarms (
    namespace TEXT NOT NULL,
    object_id TEXT NOT NULL,
    at_ms     BIGINT NOT NULL,
    PRIMARY KEY (namespace, object_id)
);
CREATE INDEX do_alarms_at ON do_alarms (at_ms);
"];

/// Log bytes after which an owner snapshots an object, unless its file is
/// larger.
pub const DEFAULT_SNAPSHOT_AFTER_BYTES: u64 = 4 * 1024 * 1024;

/// The PostgreSQL change log of every Durable Object in the cluster.
#[derive(Clone)]
pub struct PgChangeLog {
    pg: Pg,
    snapshot_after: u64,
    /// Where snapshot chunks go instead of `do_snapshot_chunks`.
    store: Option<Arc<S3Store>>,
    counters: Arc<LogCounters>,
}

/// What this node shipped since it started (for metrics).
#[derive(Debug, Default)]
pub struct LogCounters {
    /// Commits appended to `do_changes`.
    pub commits: AtomicU64,
    /// Bytes of WAL frames in those commits.
    pub bytes: AtomicU64,
    /// Appends PostgreSQL did not take (fenced ones not counted).
    pub errors: AtomicU64,
}

/// Most snapshot objects of one Durable Object looked at when dropping
/// those of older snapshots.
const MAX_STALE_SNAPSHOT_OBJECTS: usize = 10_000;

fn chunk_dir(namespace: &str, id: &str) -> String {
    format!("do-snapshots/{namespace}/{id}/")
}

fn chunk_name(namespace: &str, id: &str, seq: i64, chunk: u32) -> String {
    format!("{}{seq}/{chunk}", chunk_dir(namespace, id))
}

impl std::fmt::Debug for PgChangeLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgChangeLog")
            .field("snapshot_after", &self.snapshot_after)
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

fn backend(e: PgError) -> LogError {
    LogError::Backend(e.to_string())
}

impl PgChangeLog {
    /// Migrates the log's tables. Placement's tables must exist (appends
    /// check leases), so open [`Placement`](crate::Placement) first.
    pub fn open(pg: Pg, snapshot_after: u64) -> Result<Arc<Self>, PgError> {
        pg.migrate("do_storage", STEPS)?;
        Ok(Arc::new(Self {
            pg,
            snapshot_after,
            store: None,
            counters: Arc::default(),
        }))
    }

    /// Like [`open`](Self::open), with snapshots kept in `store`.
    pub fn open_with_store(
        pg: Pg,
        snapshot_after: u64,
        store: Arc<S3Store>,
    ) -> Result<Arc<Self>, PgError> {
        pg.migrate("do_storage", STEPS)?;
        Ok(Arc::new(Self {
            pg,
            snapshot_after,
            store: Some(store),
            counters: Arc::default(),
        }))
    }

    /// Drops the store's objects of snapshots other than `seq` (chunks
    /// `0..chunks`). Best effort: a leftover costs space, not correctness.
    fn drop_stale_chunks(&self, namespace: &str, id: &str, seq: i64, chunks: u32) {
        let Some(store) = &self.store else { return };
        let keep: std::collections::HashSet<String> = (0..chunks)
            .map(|c| chunk_name(namespace, id, seq, c))
            .collect();
        let outcome = store
            .list_blobs(&chunk_dir(namespace, id), MAX_STALE_SNAPSHOT_OBJECTS)
            .and_then(|names| {
                let stale: Vec<String> = names.into_iter().filter(|n| !keep.contains(n)).collect();
                store.delete_blobs(&stale)
            });
        if let Err(error) = outcome {
            tracing::warn!(%error, namespace, id, "dropping older snapshot objects");
        }
    }

    /// The cluster's Durable Object id secret, made by the first node.
    pub fn id_secret(&self) -> Result<[u8; 32], PgError> {
        let mut fresh = [0u8; 32];
        getrandom::fill(&mut fresh).map_err(|e| PgError::Query(format!("random bytes: {e}")))?;
        let pg = self.pg.clone();
        let secret: Vec<u8> = self.pg.block(async move {
            let client = pg.client().await?;
            client
                .execute(
                    "INSERT INTO do_id_secret (secret) VALUES ($1) ON CONFLICT DO NOTHING",
                    &[&fresh.as_slice()],
                )
                .await?;
            let row = client
                .query_one("SELECT secret FROM do_id_secret", &[])
                .await?;
            Ok(row.get(0))
        })?;
        secret
            .try_into()
            .map_err(|_| PgError::Query("do_id_secret holds a secret that is not 32 bytes".into()))
    }

    /// Alarms of objects whose lease holder is not live (it died, or the
    /// object has no lease): another node takes them over. Earliest first.
    pub async fn orphan_alarms(
        &self,
        lease: std::time::Duration,
        limit: i64,
    ) -> Result<Vec<(String, String, i64)>, PgError> {
        let client = self.pg.client().await?;
        let lease_ms = lease.as_millis() as f64;
        let rows = client
            .query(
                "SELECT a.namespace, a.object_id, a.at_ms FROM do_alarms a
                 LEFT JOIN do_leases l ON l.namespace = a.namespace AND l.object_id = a.object_id
                 LEFT JOIN cluster_nodes n ON n.node_id = l.node_id
                 WHERE n.node_id IS NULL
                    OR n.heartbeat_at <= now() - $1::float8 * interval '1 millisecond'
                 ORDER BY a.at_ms LIMIT $2",
                &[&lease_ms, &limit],
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect())
    }

    /// What this node shipped since it started.
    pub fn counters(&self) -> &LogCounters {
        &self.counters
    }

    fn run<T, F>(&self, f: impl FnOnce(Pg) -> F) -> Result<T, LogError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, LogError>> + Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let fut = f(self.pg.clone());
        self.pg.handle().spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv_timeout(crate::pg::QUERY_TIMEOUT)
            .map_err(|_| backend(PgError::Timeout))?
    }
}

/// A write that found its lease gone, or its sequence number taken (by a
/// node that held the lease after this one), was fenced out.
fn append_error(e: tokio_postgres::Error) -> LogError {
    match e.code() {
        Some(c) if *c == tokio_postgres::error::SqlState::UNIQUE_VIOLATION => LogError::Fenced,
        _ => backend(e.into()),
    }
}

impl ChangeLog for PgChangeLog {
    fn snapshot_head(&self, namespace: &str, id: &str) -> Result<Option<SnapshotHead>, LogError> {
        let (namespace, id) = (namespace.to_owned(), id.to_owned());
        self.run(|pg| async move {
            let client = pg.client().await.map_err(backend)?;
            let row = client
                .query_opt(
                    "SELECT seq, chunks FROM do_snapshots WHERE namespace = $1 AND object_id = $2",
                    &[&namespace, &id],
                )
                .await
                .map_err(|e| backend(e.into()))?;
            Ok(row.map(|r| SnapshotHead {
                seq: r.get(0),
                chunks: u32::try_from(r.get::<_, i32>(1)).unwrap_or(0),
            }))
        })
    }

    fn snapshot_chunk(
        &self,
        namespace: &str,
        id: &str,
        seq: i64,
        chunk: u32,
    ) -> Result<Vec<u8>, LogError> {
        if let Some(store) = &self.store
            && let Some(data) = store
                .get_blob(&chunk_name(namespace, id, seq, chunk))
                .map_err(|e| LogError::Backend(format!("snapshot store: {e}")))?
        {
            return Ok(data);
        }
        let (namespace, id) = (namespace.to_owned(), id.to_owned());
        let chunk = i32::try_from(chunk).unwrap_or(i32::MAX);
        self.run(move |pg| async move {
            let client = pg.client().await.map_err(backend)?;
            let row = client
                .query_opt(
                    "SELECT data FROM do_snapshot_chunks
                     WHERE namespace = $1 AND object_id = $2 AND seq = $3 AND chunk = $4",
                    &[&namespace, &id, &seq, &chunk],
                )
                .await
                .map_err(|e| backend(e.into()))?;
            row.map(|r| r.get(0)).ok_or_else(|| {
                LogError::Backend(format!(
                    "snapshot {seq} of {namespace}/{id} is missing chunk {chunk}"
                ))
            })
        })
    }

    fn changes(
        &self,
        namespace: &str,
        id: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<(i64, Vec<u8>)>, LogError> {
        let (namespace, id) = (namespace.to_owned(), id.to_owned());
        let limit = i64::from(limit);
        self.run(move |pg| async move {
            let client = pg.client().await.map_err(backend)?;
            let rows = client
                .query(
                    "SELECT seq, frames FROM do_changes
                     WHERE namespace = $1 AND object_id = $2 AND seq > $3
                     ORDER BY seq LIMIT $4",
                    &[&namespace, &id, &after, &limit],
                )
                .await
                .map_err(|e| backend(e.into()))?;
            Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
        })
    }

    fn append(
        &self,
        lease: &Lease<'_>,
        seq: i64,
        change: Vec<u8>,
        alarm: Option<Option<i64>>,
    ) -> Result<(), LogError> {
        let (changed, at) = (alarm.is_some(), alarm.flatten());
        let bytes = change.len() as u64;
        let counters = self.counters.clone();
        let (namespace, id, node, token) = (
            lease.namespace.to_owned(),
            lease.id.to_owned(),
            lease.node.to_owned(),
            lease.token,
        );
        self.run(move |pg| async move {
            let client = pg.client().await.map_err(backend)?;
            // One statement: the change, and the alarm index with it.
            let row = client
                .query_one(
                    "WITH ins AS (
                         INSERT INTO do_changes (namespace, object_id, seq, token, node_id, frames)
                         SELECT $1, $2, $3, $4, $5, $6
                         WHERE EXISTS (
                             SELECT 1 FROM do_leases
                             WHERE namespace = $1 AND object_id = $2 AND token = $4 AND node_id = $5
                             FOR SHARE)
                         RETURNING 1),
                     set_alarm AS (
                         INSERT INTO do_alarms (namespace, object_id, at_ms)
                         SELECT $1, $2, $8 FROM ins WHERE $7 AND $8::BIGINT IS NOT NULL
                         ON CONFLICT (namespace, object_id) DO UPDATE SET at_ms = excluded.at_ms
                         RETURNING 1),
                     clear_alarm AS (
                         DELETE FROM do_alarms
                         WHERE namespace = $1 AND object_id = $2 AND $7 AND $8::BIGINT IS NULL
                           AND EXISTS (SELECT 1 FROM ins)
                         RETURNING 1)
                     SELECT count(*) FROM ins",
                    &[&namespace, &id, &seq, &token, &node, &change, &changed, &at],
                )
                .await
                .map_err(|e| {
                    counters.errors.fetch_add(1, Ordering::Relaxed);
                    append_error(e)
                })?;
            let n: i64 = row.get(0);
            if n == 1 {
                counters.commits.fetch_add(1, Ordering::Relaxed);
                counters.bytes.fetch_add(bytes, Ordering::Relaxed);
                Ok(())
            } else {
                Err(LogError::Fenced)
            }
        })
    }

    fn put_snapshot_chunk(
        &self,
        namespace: &str,
        id: &str,
        seq: i64,
        chunk: u32,
        data: Vec<u8>,
    ) -> Result<(), LogError> {
        if let Some(store) = &self.store {
            return store
                .put_blob(&chunk_name(namespace, id, seq, chunk), data)
                .map_err(|e| LogError::Backend(format!("snapshot store: {e}")));
        }
        let (namespace, id) = (namespace.to_owned(), id.to_owned());
        let chunk = i32::try_from(chunk).unwrap_or(i32::MAX);
        self.run(move |pg| async move {
            let client = pg.client().await.map_err(backend)?;
            client
                .execute(
                    "INSERT INTO do_snapshot_chunks (namespace, object_id, seq, chunk, data)
                     VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (namespace, object_id, seq, chunk) DO UPDATE SET data = excluded.data",
                    &[&namespace, &id, &seq, &chunk, &data],
                )
                .await
                .map_err(|e| backend(e.into()))?;
            Ok(())
        })
    }

    fn finish_snapshot(&self, lease: &Lease<'_>, seq: i64, chunks: u32) -> Result<(), LogError> {
        self.finish_snapshot_in_pg(lease, seq, chunks)?;
        self.drop_stale_chunks(lease.namespace, lease.id, seq, chunks);
        Ok(())
    }

    fn snapshot_after_bytes(&self) -> u64 {
        self.snapshot_after
    }
}

impl PgChangeLog {
    fn finish_snapshot_in_pg(
        &self,
        lease: &Lease<'_>,
        seq: i64,
        chunks: u32,
    ) -> Result<(), LogError> {
        let (namespace, id, node, token) = (
            lease.namespace.to_owned(),
            lease.id.to_owned(),
            lease.node.to_owned(),
            lease.token,
        );
        let chunks = i32::try_from(chunks).unwrap_or(i32::MAX);
        self.run(move |pg| async move {
            let q = |e: tokio_postgres::Error| backend(e.into());
            let mut client = pg.open().await.map_err(backend)?;
            let tx = client.transaction().await.map_err(q)?;
            let held = tx
                .query_opt(
                    "SELECT 1 FROM do_leases
                     WHERE namespace = $1 AND object_id = $2 AND token = $3 AND node_id = $4
                     FOR SHARE",
                    &[&namespace, &id, &token, &node],
                )
                .await
                .map_err(q)?;
            if held.is_none() {
                return Err(LogError::Fenced);
            }
            tx.execute(
                "INSERT INTO do_snapshots (namespace, object_id, seq, chunks, token)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (namespace, object_id) DO UPDATE
                     SET seq = excluded.seq, chunks = excluded.chunks, token = excluded.token",
                &[&namespace, &id, &seq, &chunks, &token],
            )
            .await
            .map_err(q)?;
            tx.execute(
                "DELETE FROM do_snapshot_chunks
                 WHERE namespace = $1 AND object_id = $2 AND (seq <> $3 OR chunk >= $4)",
                &[&namespace, &id, &seq, &chunks],
            )
            .await
            .map_err(q)?;
            tx.execute(
                "DELETE FROM do_changes WHERE namespace = $1 AND object_id = $2 AND seq <= $3",
                &[&namespace, &id, &seq],
            )
            .await
            .map_err(q)?;
            tx.commit().await.map_err(q)?;
            Ok(())
        })
    }
}

/// What [`PgChangeLog::adopt_id_secret`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretAdopted {
    /// The cluster had no secret; it has this one now.
    Set,
    /// The cluster had this secret already.
    Same,
    /// The cluster had another secret but no Durable Object yet; it has
    /// this one now.
    Replaced,
}

/// Copying a data directory into the cluster (`hearth migrate`): nothing
/// here takes a lease, so no node may be running objects meanwhile (the
/// command checks that no node is live).
impl PgChangeLog {
    /// Makes `secret` (a data directory's id secret) the cluster's, so
    /// `idFromName` gives the ids the copied objects were stored under.
    /// Refused when the cluster holds objects made with another secret:
    /// their ids would stop resolving.
    pub fn adopt_id_secret(&self, secret: [u8; 32]) -> Result<SecretAdopted, PgError> {
        let pg = self.pg.clone();
        self.pg.block(async move {
            let mut client = pg.open().await?;
            let tx = client.transaction().await?;
            // Serialized with a node making the first secret.
            tx.batch_execute("LOCK TABLE do_id_secret IN EXCLUSIVE MODE")
                .await?;
            let current: Option<Vec<u8>> = tx
                .query_opt("SELECT secret FROM do_id_secret", &[])
                .await?
                .map(|r| r.get(0));
            let outcome = match current {
                None => {
                    tx.execute(
                        "INSERT INTO do_id_secret (secret) VALUES ($1)",
                        &[&secret.as_slice()],
                    )
                    .await?;
                    SecretAdopted::Set
                }
                Some(s) if s == secret => SecretAdopted::Same,
                Some(_) => {
                    let objects: i64 = tx
                        .query_one(
                            "SELECT (SELECT count(*) FROM do_snapshots WHERE namespace NOT LIKE '%:')
                                  + (SELECT count(*) FROM do_changes WHERE namespace NOT LIKE '%:')",
                            &[],
                        )
                        .await?
                        .get(0);
                    if objects > 0 {
                        return Err(PgError::Query(
                            "the cluster already holds Durable Objects whose ids were made with another secret than this data directory's; copy into a new schema".into(),
                        ));
                    }
                    tx.execute("UPDATE do_id_secret SET secret = $1", &[&secret.as_slice()])
                        .await?;
                    SecretAdopted::Replaced
                }
            };
            tx.commit().await?;
            Ok(outcome)
        })
    }

    /// Whether the log holds anything of the object (a snapshot or a change).
    pub fn holds(&self, namespace: &str, id: &str) -> Result<bool, PgError> {
        let (pg, namespace, id) = (self.pg.clone(), namespace.to_owned(), id.to_owned());
        self.pg.block(async move {
            let client = pg.client().await?;
            let row = client
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM do_snapshots WHERE namespace = $1 AND object_id = $2)
                         OR EXISTS (SELECT 1 FROM do_changes WHERE namespace = $1 AND object_id = $2)",
                    &[&namespace, &id],
                )
                .await?;
            Ok(row.get(0))
        })
    }

    /// Makes snapshot 0 (its `chunks` uploaded already with
    /// [`hearth_do::ship::upload_snapshot`]) the whole of the object's log,
    /// replacing whatever the log held of it, and records its alarm, in
    /// one transaction; the first node to take the object's lease restores
    /// it from there.
    pub fn import_snapshot(
        &self,
        namespace: &str,
        id: &str,
        chunks: u32,
        alarm_ms: Option<i64>,
    ) -> Result<(), PgError> {
        let (pg, ns, oid) = (self.pg.clone(), namespace.to_owned(), id.to_owned());
        let n = i32::try_from(chunks).unwrap_or(i32::MAX);
        self.pg.block(async move {
            let mut client = pg.open().await?;
            let tx = client.transaction().await?;
            tx.execute(
                "INSERT INTO do_snapshots (namespace, object_id, seq, chunks, token)
                 VALUES ($1, $2, 0, $3, 0)
                 ON CONFLICT (namespace, object_id) DO UPDATE
                     SET seq = 0, chunks = excluded.chunks, token = 0",
                &[&ns, &oid, &n],
            )
            .await?;
            tx.execute(
                "DELETE FROM do_snapshot_chunks
                 WHERE namespace = $1 AND object_id = $2 AND (seq <> 0 OR chunk >= $3)",
                &[&ns, &oid, &n],
            )
            .await?;
            tx.execute(
                "DELETE FROM do_changes WHERE namespace = $1 AND object_id = $2",
                &[&ns, &oid],
            )
            .await?;
            match alarm_ms {
                Some(at) => {
                    tx.execute(
                        "INSERT INTO do_alarms (namespace, object_id, at_ms) VALUES ($1, $2, $3)
                         ON CONFLICT (namespace, object_id) DO UPDATE SET at_ms = excluded.at_ms",
                        &[&ns, &oid, &at],
                    )
                    .await?;
                }
                None => {
                    tx.execute(
                        "DELETE FROM do_alarms WHERE namespace = $1 AND object_id = $2",
                        &[&ns, &oid],
                    )
                    .await?;
                }
            }
            tx.commit().await?;
            Ok(())
        })?;
        self.drop_stale_chunks(namespace, id, 0, chunks);
        Ok(())
    }
}
