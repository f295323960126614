//! The cluster backend: every namespace in one PostgreSQL table, one row
//! per key, shared by every node.
//!
//! Keys are stored as `BYTEA`, which compares bytewise: exactly the UTF-8
//! byte order Cloudflare lists keys in, whatever the database's collation,
//! and a key may hold any character (`TEXT` cannot hold NUL). A write
//! returns after PostgreSQL's commit (with `synchronous_commit` on, flushed
//! to its WAL). A bulk write is one statement, so it lands whole or not at
//! all, and a bulk read is one statement, so it reads one snapshot.

use hearth_cluster::Pg;
use hearth_cluster::tokio_postgres::Row;

use crate::error::Result;
use crate::{KvStore, StoredEntry, StoredKey, StoredWrite};

/// Schema steps of the `kv` unit (see [`Pg::migrate`]).
const STEPS: &[&str] = &["
CREATE TABLE kv_entries (
    namespace  TEXT NOT NULL,
    key        BYTEA NOT NULL,
    value      BYTEA NOT NULL,
    expiration BIGINT,
    metadata   TEXT,
    PRIMARY KEY (namespace, key)
);
CREATE INDEX kv_entries_expiration ON kv_entries (expiration) WHERE expiration IS NOT NULL;
"];

/// Expired rows deleted per statement, so a purge never holds many row
/// locks at once.
const PURGE_BATCH: i64 = 1000;

const UPSERT: &str = "
INSERT INTO kv_entries (namespace, key, value, expiration, metadata)
SELECT $1, k, v, e, m FROM unnest($2::bytea[], $3::bytea[], $4::int8[], $5::text[]) AS t(k, v, e, m)
ON CONFLICT (namespace, key) DO UPDATE SET
    value = excluded.value,
    expiration = excluded.expiration,
    metadata = excluded.metadata";

/// One namespace in PostgreSQL.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pg: Pg,
    namespace: String,
}

impl PostgresStore {
    /// The namespace `namespace` in `pg`'s schema, migrating the table first.
    pub fn open(pg: Pg, namespace: &str) -> Result<Self> {
        pg.migrate("kv", STEPS)?;
        Ok(Self {
            pg,
            namespace: namespace.to_owned(),
        })
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Rows present for this namespace, expired or not (for tests and the
    /// health report).
    pub fn stored_rows(&self) -> Result<i64> {
        let (pg, ns) = (self.pg.clone(), self.namespace.clone());
        Ok(self.pg.block(async move {
            let c = pg.client().await?;
            let row = c
                .query_one(
                    "SELECT count(*) FROM kv_entries WHERE namespace = $1",
                    &[&ns],
                )
                .await?;
            Ok(row.get::<_, i64>(0))
        })?)
    }
}

fn to_sql_secs(secs: u64) -> i64 {
    i64::try_from(secs).unwrap_or(i64::MAX)
}

fn from_sql_secs(secs: Option<i64>) -> Option<u64> {
    secs.map(|s| u64::try_from(s).unwrap_or(0))
}

fn entry(row: &Row) -> StoredEntry {
    StoredEntry {
        value: row.get(1),
        expiration: from_sql_secs(row.get(2)),
        metadata: row.get(3),
    }
}

/// The smallest byte string greater than every one starting with
/// `prefix`, or `None` when the prefix is all 0xFF (or empty).
fn prefix_upper_bound(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut bound = prefix.to_vec();
    while let Some(last) = bound.pop() {
        if last < 0xFF {
            bound.push(last + 1);
            return Some(bound);
        }
    }
    None
}

impl KvStore for PostgresStore {
    fn get(&self, key: &str, now_secs: u64) -> Result<Option<StoredEntry>> {
        Ok(self.get_many(&[key], now_secs)?.pop().flatten())
    }

    fn get_many(&self, keys: &[&str], now_secs: u64) -> Result<Vec<Option<StoredEntry>>> {
        let (pg, ns) = (self.pg.clone(), self.namespace.clone());
        let wanted: Vec<Vec<u8>> = keys.iter().map(|k| k.as_bytes().to_vec()).collect();
        let now = to_sql_secs(now_secs);
        let rows = self.pg.block(async move {
            let c = pg.client().await?;
            Ok(c.query(
                "SELECT key, value, expiration, metadata FROM kv_entries
                 WHERE namespace = $1 AND key = ANY($2)
                   AND (expiration IS NULL OR expiration > $3)",
                &[&ns, &wanted, &now],
            )
            .await?)
        })?;
        Ok(keys
            .iter()
            .map(|key| {
                rows.iter()
                    .find(|r| r.get::<_, &[u8]>(0) == key.as_bytes())
                    .map(entry)
            })
            .collect())
    }

    fn put(
        &self,
        key: &str,
        value: &[u8],
        expiration: Option<u64>,
        metadata: Option<&str>,
    ) -> Result<()> {
        self.put_many(&[StoredWrite {
            key,
            value,
            expiration,
            metadata,
        }])
    }

    fn put_many(&self, entries: &[StoredWrite<'_>]) -> Result<()> {
        // One statement may not update a row twice: the last write of a
        // key wins, as it would in a sequence of puts.
        let mut last: Vec<&StoredWrite<'_>> = Vec::with_capacity(entries.len());
        for e in entries.iter().rev() {
            if !last.iter().any(|l| l.key == e.key) {
                last.push(e);
            }
        }
        let keys: Vec<Vec<u8>> = last.iter().map(|e| e.key.as_bytes().to_vec()).collect();
        let values: Vec<Vec<u8>> = last.iter().map(|e| e.value.to_vec()).collect();
        let expirations: Vec<Option<i64>> =
            last.iter().map(|e| e.expiration.map(to_sql_secs)).collect();
        let metadata: Vec<Option<String>> =
            last.iter().map(|e| e.metadata.map(str::to_owned)).collect();
        let (pg, ns) = (self.pg.clone(), self.namespace.clone());
        self.pg.block(async move {
            let c = pg.client().await?;
            c.execute(UPSERT, &[&ns, &keys, &values, &expirations, &metadata])
                .await?;
            Ok(())
        })?;
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<()> {
        let (pg, ns) = (self.pg.clone(), self.namespace.clone());
        let key = key.as_bytes().to_vec();
        self.pg.block(async move {
            let c = pg.client().await?;
            c.execute(
                "DELETE FROM kv_entries WHERE namespace = $1 AND key = $2",
                &[&ns, &key],
            )
            .await?;
            Ok(())
        })?;
        Ok(())
    }

    fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
        now_secs: u64,
    ) -> Result<Vec<StoredKey>> {
        let (lower, inclusive) = match start_after {
            Some(after) if after >= prefix => (after.as_bytes().to_vec(), false),
            _ => (prefix.as_bytes().to_vec(), true),
        };
        let upper = prefix_upper_bound(prefix.as_bytes());
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let now = to_sql_secs(now_secs);
        let (pg, ns) = (self.pg.clone(), self.namespace.clone());
        let rows = self.pg.block(async move {
            let c = pg.client().await?;
            let op = if inclusive { ">=" } else { ">" };
            Ok(c.query(
                &format!(
                    "SELECT key, expiration, metadata FROM kv_entries
                     WHERE namespace = $1 AND key {op} $2
                       AND ($3::bytea IS NULL OR key < $3)
                       AND (expiration IS NULL OR expiration > $4)
                     ORDER BY key LIMIT $5"
                ),
                &[&ns, &lower, &upper, &now, &limit],
            )
            .await?)
        })?;
        Ok(rows
            .into_iter()
            .map(|r| StoredKey {
                name: String::from_utf8_lossy(r.get::<_, &[u8]>(0)).into_owned(),
                expiration: from_sql_secs(r.get(1)),
                metadata: r.get(2),
            })
            .collect())
    }

    fn purge_expired(&self, now_secs: u64) -> Result<usize> {
        let now = to_sql_secs(now_secs);
        let mut total = 0;
        loop {
            let (pg, ns) = (self.pg.clone(), self.namespace.clone());
            let deleted = self.pg.block(async move {
                let c = pg.client().await?;
                Ok(c.execute(
                    "DELETE FROM kv_entries WHERE namespace = $1 AND key IN (
                         SELECT key FROM kv_entries
                         WHERE namespace = $1 AND expiration IS NOT NULL AND expiration <= $2
                         LIMIT $3)",
                    &[&ns, &now, &PURGE_BATCH],
                )
                .await?)
            })?;
            total += deleted as usize;
            if (deleted as i64) < PURGE_BATCH {
                return Ok(total);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn upper_bound_covers_exactly_the_prefix_range() {
        use super::prefix_upper_bound as b;
        assert_eq!(b(b""), None);
        assert_eq!(b(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(b(&[0x61, 0xFF]), Some(vec![0x62]));
        assert_eq!(b(&[0xFF]), None);
    }
}
