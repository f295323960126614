//! The embedded backend: one SQLite file per namespace, one row per key.
//!
//! Keys are TEXT under SQLite's BINARY collation, which compares UTF-8 bytes
//! with `memcmp`: exactly the order Cloudflare lists keys in. Expirations are
//! whole seconds since the epoch; a row is live while `expiration > now`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::Result;
use crate::{KvStore, StoredEntry, StoredKey, StoredWrite};

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

/// Each entry moves the schema one version forward (see
/// `hearth_core::sqlite::migrate`); a file from a newer build is refused
/// rather than misread.
const SCHEMA_STEPS: &[&str] = &[SCHEMA];

/// Read connections per namespace. WAL lets each read its own snapshot
/// while the writer commits, so gets on different threads run in parallel
/// instead of queueing for the writer.
const READ_CONNECTIONS: usize = 4;

/// Expired rows deleted per write transaction, so a large purge never holds
/// the write lock long enough to stall a put from another thread or process.
const PURGE_BATCH: usize = 1000;

const UPSERT: &str =
    "INSERT INTO kv_entries (key, value, expiration, metadata) VALUES (?1, ?2, ?3, ?4)
     ON CONFLICT (key) DO UPDATE SET
         value = excluded.value,
         expiration = excluded.expiration,
         metadata = excluded.metadata";

/// A namespace stored in one SQLite file. Writes go through one connection
/// behind a mutex; reads take one of `READ_CONNECTIONS` query-only
/// connections, opened on first use. A write returns after its commit, and
/// a read starts a fresh WAL snapshot, so a read issued after a write
/// returned sees it, on any thread. Other processes (the CLI) open their
/// own connections and coordinate through SQLite's WAL locking and busy
/// timeout.
#[derive(Debug)]
pub struct SqliteStore {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Box<[Mutex<Option<Connection>>]>,
    /// Where the next read starts looking for an idle connection.
    next_reader: AtomicUsize,
}

impl SqliteStore {
    /// Opens (creating if needed) the namespace file at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let mut conn = hearth_core::sqlite::open(path)?;
        hearth_core::sqlite::migrate(&mut conn, path, SCHEMA_STEPS)?;
        Ok(Self {
            path: path.to_path_buf(),
            writer: Mutex::new(conn),
            readers: (0..READ_CONNECTIONS).map(|_| Mutex::new(None)).collect(),
            next_reader: AtomicUsize::new(0),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn writer(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite half-written (an
        // open transaction rolls back when dropped), so the connection stays usable.
        self.writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `f` on a read connection: the first idle one, else the next in
    /// turn once it is free. Looking from the first keeps a lone reader on
    /// one connection, whose page cache stays warm.
    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let idle = self.readers.iter().find_map(|slot| slot.try_lock().ok());
        let mut slot = match idle {
            Some(guard) => guard,
            None => {
                let turn = self.next_reader.fetch_add(1, Ordering::Relaxed) % self.readers.len();
                // Poisoned: a read holds no transaction once its statement
                // is reset, so the connection is still sound.
                self.readers[turn]
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
            }
        };
        let conn = match &mut *slot {
            Some(conn) => conn,
            empty => empty.insert(self.open_reader()?),
        };
        f(conn)
    }

    fn open_reader(&self) -> Result<Connection> {
        let conn = hearth_core::sqlite::open(&self.path)?;
        // A read connection never writes, whatever a bug might ask of it.
        conn.pragma_update(None, "query_only", true)?;
        Ok(conn)
    }
}

fn to_sql_secs(secs: u64) -> i64 {
    i64::try_from(secs).unwrap_or(i64::MAX)
}

fn from_sql_secs(secs: Option<i64>) -> Option<u64> {
    secs.map(|s| u64::try_from(s).unwrap_or(0))
}

/// The smallest string greater than every string that starts with `prefix`,
/// or `None` when no such bound exists. Code point order is UTF-8 byte order,
/// so bumping the last code point bounds the range.
fn prefix_upper_bound(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last as u32 {
            0xD7FF => Some('\u{E000}'),
            c => char::from_u32(c + 1),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

fn get_one(conn: &Connection, key: &str, now: i64) -> Result<Option<StoredEntry>> {
    let mut stmt = conn.prepare_cached(
        "SELECT value, expiration, metadata FROM kv_entries
         WHERE key = ?1 AND (expiration IS NULL OR expiration > ?2)",
    )?;
    let row = stmt
        .query_row(params![key, now], |r| {
            Ok(StoredEntry {
                value: r.get(0)?,
                expiration: from_sql_secs(r.get(1)?),
                metadata: r.get(2)?,
            })
        })
        .optional()?;
    Ok(row)
}

impl KvStore for SqliteStore {
    fn get(&self, key: &str, now_secs: u64) -> Result<Option<StoredEntry>> {
        self.read(|conn| get_one(conn, key, to_sql_secs(now_secs)))
    }

    fn get_many(&self, keys: &[&str], now_secs: u64) -> Result<Vec<Option<StoredEntry>>> {
        self.read(|conn| {
            // One read transaction: every value comes from the same snapshot.
            let tx = conn.unchecked_transaction()?;
            let now = to_sql_secs(now_secs);
            let found = keys
                .iter()
                .map(|key| get_one(&tx, key, now))
                .collect::<Result<Vec<_>>>()?;
            tx.commit()?;
            Ok(found)
        })
    }

    fn put(
        &self,
        key: &str,
        value: &[u8],
        expiration: Option<u64>,
        metadata: Option<&str>,
    ) -> Result<()> {
        let conn = self.writer();
        let mut stmt = conn.prepare_cached(UPSERT)?;
        // Autocommit: returning Ok means the commit was fsynced (synchronous=FULL).
        stmt.execute(params![key, value, expiration.map(to_sql_secs), metadata])?;
        Ok(())
    }

    fn put_many(&self, entries: &[StoredWrite<'_>]) -> Result<()> {
        let mut conn = self.writer();
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(UPSERT)?;
            for e in entries {
                stmt.execute(params![
                    e.key,
                    e.value,
                    e.expiration.map(to_sql_secs),
                    e.metadata
                ])?;
            }
        }
        // Returning Ok means the one commit was fsynced (synchronous=FULL).
        tx.commit()?;
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<()> {
        let conn = self.writer();
        let mut stmt = conn.prepare_cached("DELETE FROM kv_entries WHERE key = ?1")?;
        stmt.execute(params![key])?;
        Ok(())
    }

    fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
        now_secs: u64,
    ) -> Result<Vec<StoredKey>> {
        // One lower bound, so SQLite starts its index scan at the right row:
        // past the cursor if the cursor is inside or past the prefix range,
        // else at the prefix itself.
        let (lower, lower_op) = match start_after {
            Some(after) if after >= prefix => (after, ">"),
            _ => (prefix, ">="),
        };
        let upper = prefix_upper_bound(prefix);
        let upper_clause = if upper.is_some() { "AND key < ?4" } else { "" };
        let sql = format!(
            "SELECT key, expiration, metadata FROM kv_entries
             WHERE key {lower_op} ?1 {upper_clause}
               AND (expiration IS NULL OR expiration > ?2)
             ORDER BY key LIMIT ?3"
        );
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let now = to_sql_secs(now_secs);
        let map_row = |r: &rusqlite::Row<'_>| {
            Ok(StoredKey {
                name: r.get(0)?,
                expiration: from_sql_secs(r.get(1)?),
                metadata: r.get(2)?,
            })
        };
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = match &upper {
                Some(upper) => stmt
                    .query_map(params![lower, now, limit, upper], map_row)?
                    .collect::<rusqlite::Result<Vec<_>>>()?,
                None => stmt
                    .query_map(params![lower, now, limit], map_row)?
                    .collect::<rusqlite::Result<Vec<_>>>()?,
            };
            Ok(rows)
        })
    }

    fn purge_expired(&self, now_secs: u64) -> Result<usize> {
        let now = to_sql_secs(now_secs);
        let mut total = 0;
        loop {
            // Lock per batch so readers and writers interleave with a long purge.
            let conn = self.writer();
            let mut stmt = conn.prepare_cached(
                "DELETE FROM kv_entries WHERE key IN (
                     SELECT key FROM kv_entries
                     WHERE expiration IS NOT NULL AND expiration <= ?1
                     LIMIT ?2)",
            )?;
            let deleted = stmt.execute(params![now, PURGE_BATCH as i64])?;
            total += deleted;
            if deleted < PURGE_BATCH {
                return Ok(total);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upper_bound_covers_exactly_the_prefix_range() {
        assert_eq!(prefix_upper_bound(""), None);
        assert_eq!(prefix_upper_bound("ab").as_deref(), Some("ac"));
        assert_eq!(
            prefix_upper_bound("a\u{D7FF}").as_deref(),
            Some("a\u{E000}")
        );
        assert_eq!(prefix_upper_bound("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_upper_bound("\u{10FFFF}"), None);
        let bound = prefix_upper_bound("ä").unwrap();
        for s in ["ä", "ä\u{10FFFF}", "äzzz"] {
            assert!(s.as_bytes() < bound.as_bytes(), "{s}");
        }
        assert!("å".as_bytes() >= bound.as_bytes());
    }
}
