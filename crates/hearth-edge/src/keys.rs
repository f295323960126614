//! API keys: stored as SHA-256 hashes with their tenant and scopes in
//! `<data dir>/edge/keys.sqlite`, created, listed and revoked by
//! `hearth keys`, checked by the server on every request that carries one
//! (so a revocation applies to the next request).
//!
//! A key reads `hk_<id>_<secret>`: the id (public, 12 hex digits) names it
//! in listings and events; the secret is 32 random bytes in hex. Only the
//! hash of the whole key is kept.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};

const SCHEMA: &[&str] = &["CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    hash BLOB NOT NULL UNIQUE,
    tenant TEXT NOT NULL,
    scopes TEXT NOT NULL,
    description TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    revoked_ms INTEGER
)"];

#[derive(Debug, thiserror::Error)]
pub enum KeyStoreError {
    #[error(transparent)]
    Open(#[from] hearth_core::sqlite::OpenError),
    #[error("{}: {source}", path.display())]
    Sql {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("no API key with id {0:?}")]
    NotFound(String),
    #[error("invalid {what} {value:?}: {why}")]
    Invalid {
        what: &'static str,
        value: String,
        why: &'static str,
    },
    #[error("the system's random number generator failed: {0}")]
    Random(String),
}

/// One key as listed (never the secret).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ApiKey {
    pub id: String,
    pub tenant: String,
    pub scopes: Vec<String>,
    pub description: String,
    pub created_ms: u64,
    pub revoked_ms: Option<u64>,
}

/// The key store over one SQLite file.
#[derive(Debug)]
pub struct KeyStore {
    path: PathBuf,
    conn: Mutex<Connection>,
}

/// Where the key store lives under a data directory.
pub fn store_path(data_dir: &Path) -> PathBuf {
    data_dir.join("edge").join("keys.sqlite")
}

fn check_name(what: &'static str, value: &str) -> Result<(), KeyStoreError> {
    let ok = !value.is_empty()
        && value.len() <= 128
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    if ok {
        Ok(())
    } else {
        Err(KeyStoreError::Invalid {
            what,
            value: value.to_string(),
            why: "use 1 to 128 characters from A-Z a-z 0-9 - _ . :",
        })
    }
}

fn hash(key: &str) -> Vec<u8> {
    Sha256::digest(key.as_bytes()).to_vec()
}

impl KeyStore {
    pub fn open(path: &Path) -> Result<KeyStore, KeyStoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| KeyStoreError::Sql {
                path: path.to_path_buf(),
                source: rusqlite::Error::ToSqlConversionFailure(Box::new(e)),
            })?;
        }
        let mut conn = hearth_core::sqlite::open(path)?;
        hearth_core::sqlite::migrate(&mut conn, path, SCHEMA)?;
        Ok(KeyStore {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
        })
    }

    fn sql(&self, source: rusqlite::Error) -> KeyStoreError {
        KeyStoreError::Sql {
            path: self.path.clone(),
            source,
        }
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes a key for `tenant` with `scopes`; returns its listing and the
    /// key itself, which is shown once and never stored.
    pub fn create(
        &self,
        tenant: &str,
        scopes: &[String],
        description: &str,
        now_ms: u64,
    ) -> Result<(ApiKey, String), KeyStoreError> {
        check_name("tenant", tenant)?;
        for s in scopes {
            check_name("scope", s)?;
        }
        let mut random = [0u8; 38];
        getrandom::fill(&mut random).map_err(|e| KeyStoreError::Random(e.to_string()))?;
        let id = hex::encode(&random[..6]);
        let secret = hex::encode(&random[6..]);
        let key = format!("hk_{id}_{secret}");
        self.conn()
            .execute(
                "INSERT INTO api_keys (id, hash, tenant, scopes, description, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![id, hash(&key), tenant, scopes.join(" "), description, now_ms as i64],
            )
            .map_err(|e| self.sql(e))?;
        let listed = ApiKey {
            id,
            tenant: tenant.to_string(),
            scopes: scopes.to_vec(),
            description: description.to_string(),
            created_ms: now_ms,
            revoked_ms: None,
        };
        Ok((listed, key))
    }

    pub fn list(&self) -> Result<Vec<ApiKey>, KeyStoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT id, tenant, scopes, description, created_ms, revoked_ms FROM api_keys ORDER BY created_ms, id")
            .map_err(|e| self.sql(e))?;
        let rows = stmt.query_map([], row).map_err(|e| self.sql(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.sql(e))
    }

    /// Revokes the key with `id`; the next request carrying it is refused.
    pub fn revoke(&self, id: &str, now_ms: u64) -> Result<(), KeyStoreError> {
        let n = self
            .conn()
            .execute(
                "UPDATE api_keys SET revoked_ms = ?2 WHERE id = ?1 AND revoked_ms IS NULL",
                params![id, now_ms as i64],
            )
            .map_err(|e| self.sql(e))?;
        if n == 0 {
            let exists: Option<i64> = self
                .conn()
                .query_row("SELECT 1 FROM api_keys WHERE id = ?1", [id], |r| r.get(0))
                .optional()
                .map_err(|e| self.sql(e))?;
            if exists.is_none() {
                return Err(KeyStoreError::NotFound(id.to_string()));
            }
        }
        Ok(())
    }

    /// The live (not revoked) key `key` is, if any.
    pub fn lookup(&self, key: &str) -> Result<Option<ApiKey>, KeyStoreError> {
        if key.len() > 256 || !key.starts_with("hk_") {
            return Ok(None);
        }
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT id, tenant, scopes, description, created_ms, revoked_ms FROM api_keys WHERE hash = ?1 AND revoked_ms IS NULL",
            )
            .map_err(|e| self.sql(e))?;
        stmt.query_row([hash(key)], row)
            .optional()
            .map_err(|e| self.sql(e))
    }
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ApiKey> {
    let scopes: String = r.get(2)?;
    Ok(ApiKey {
        id: r.get(0)?,
        tenant: r.get(1)?,
        scopes: scopes.split_whitespace().map(str::to_string).collect(),
        description: r.get(3)?,
        created_ms: r.get::<_, i64>(4)? as u64,
        revoked_ms: r.get::<_, Option<i64>>(5)?.map(|v| v as u64),
    })
}
