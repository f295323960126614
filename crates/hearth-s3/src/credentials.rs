//! Access keys for the S3 endpoint, and each bucket's CORS rules.
//!
//! SigV4 signatures are HMACs keyed by the secret, so the server must be
//! able to recover the secret: it cannot be stored as a one-way hash.
//! Secrets are instead sealed with AES-256-GCM under a key kept in its own
//! file (created with mode 0600, refused if group or others can read it),
//! with the access key id as associated data so a sealed secret cannot be
//! moved to another key id. The secret is shown once, when created.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hearth_core::SharedClock;
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

const SCHEMA_V1: &str = "
CREATE TABLE credentials (
    access_key_id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    nonce BLOB NOT NULL,
    sealed_secret BLOB NOT NULL,
    -- JSON array of bucket names; empty: every bucket
    buckets TEXT NOT NULL,
    access TEXT NOT NULL,
    created INTEGER NOT NULL,
    revoked INTEGER
) WITHOUT ROWID;
CREATE TABLE bucket_cors (
    bucket TEXT PRIMARY KEY NOT NULL,
    rules TEXT NOT NULL
) WITHOUT ROWID;
";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {reason}")]
    Open { path: String, reason: String },
    #[error("the S3 key file {path}: {reason}")]
    Key { path: String, reason: String },
    #[error("S3 credential store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("S3 credential store: the sealed secret of {0} does not open with this key file")]
    Unseal(String),
    #[error("no access key {0:?}")]
    NoSuchKey(String),
    #[error("{0}")]
    Invalid(String),
}

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Access {
    /// Read objects and list.
    Read,
    /// Read and write objects; with no bucket scope, also create and
    /// delete buckets and set CORS.
    ReadWrite,
}

impl std::str::FromStr for Access {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, StoreError> {
        match s {
            "read" | "read-only" => Ok(Access::Read),
            "read-write" | "write" => Ok(Access::ReadWrite),
            other => Err(StoreError::Invalid(format!(
                "access {other:?} is neither read nor read-write"
            ))),
        }
    }
}

impl std::fmt::Display for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Access::Read => "read",
            Access::ReadWrite => "read-write",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialInfo {
    pub access_key_id: String,
    pub name: String,
    /// Empty: every bucket.
    pub buckets: Vec<String>,
    pub access: Access,
    pub created_ms: u64,
    pub revoked_ms: Option<u64>,
}

impl CredentialInfo {
    pub fn allows_bucket(&self, bucket: &str) -> bool {
        self.buckets.is_empty() || self.buckets.iter().any(|b| b == bucket)
    }
}

/// A key as created: the only time its secret is seen.
#[derive(Debug, Clone)]
pub struct NewCredential {
    pub info: CredentialInfo,
    pub secret_access_key: String,
}

/// One CORS rule, as `PutBucketCors` and `hearth r2 bucket cors put` take it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct CorsRule {
    pub allowed_origins: Vec<String>,
    pub allowed_methods: Vec<String>,
    pub allowed_headers: Vec<String>,
    pub expose_headers: Vec<String>,
    pub max_age_seconds: Option<u64>,
}

pub struct CredentialStore {
    conn: Mutex<Connection>,
    cipher: Aes256Gcm,
    clock: SharedClock,
}

impl std::fmt::Debug for CredentialStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialStore").finish_non_exhaustive()
    }
}

const ID_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const SECRET_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

fn random_string(alphabet: &[u8], len: usize) -> Result<String, StoreError> {
    let mut out = String::with_capacity(len);
    // Rejection sampling keeps every character equally likely.
    let limit = 256 - (256 % alphabet.len());
    while out.len() < len {
        let mut buf = [0u8; 64];
        getrandom::fill(&mut buf).map_err(|e| StoreError::Invalid(format!("random: {e}")))?;
        for b in buf {
            if (b as usize) < limit && out.len() < len {
                out.push(alphabet[b as usize % alphabet.len()] as char);
            }
        }
    }
    Ok(out)
}

impl CredentialStore {
    /// Opens (creating if needed) the store at `db` and the sealing key at
    /// `key_file`.
    pub fn open(db: &Path, key_file: &Path, clock: SharedClock) -> Result<Self, StoreError> {
        let key = load_or_create_key(key_file)?;
        let mut conn = hearth_core::sqlite::open(db).map_err(|e| StoreError::Open {
            path: db.display().to_string(),
            reason: e.to_string(),
        })?;
        hearth_core::sqlite::migrate(&mut conn, db, &[SCHEMA_V1]).map_err(|e| {
            StoreError::Open {
                path: db.display().to_string(),
                reason: e.to_string(),
            }
        })?;
        let cipher = Aes256Gcm::new_from_slice(&key).map_err(|_| StoreError::Key {
            path: key_file.display().to_string(),
            reason: "not a 32-byte key".into(),
        })?;
        Ok(Self {
            conn: Mutex::new(conn),
            cipher,
            clock,
        })
    }

    fn db(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn create(
        &self,
        name: &str,
        buckets: Vec<String>,
        access: Access,
    ) -> Result<NewCredential, StoreError> {
        let access_key_id = format!("HRTH{}", random_string(ID_ALPHABET, 16)?);
        let secret = random_string(SECRET_ALPHABET, 40)?;
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce).map_err(|e| StoreError::Invalid(format!("random: {e}")))?;
        let sealed = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: secret.as_bytes(),
                    aad: access_key_id.as_bytes(),
                },
            )
            .map_err(|_| StoreError::Invalid("sealing the secret failed".into()))?;
        let created_ms = self.clock.now_ms();
        let buckets_json =
            serde_json::to_string(&buckets).map_err(|e| StoreError::Invalid(e.to_string()))?;
        self.db().execute(
            "INSERT INTO credentials (access_key_id, name, nonce, sealed_secret, buckets, access, created)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                access_key_id,
                name,
                nonce.as_slice(),
                sealed,
                buckets_json,
                access.to_string(),
                created_ms as i64
            ],
        )?;
        Ok(NewCredential {
            info: CredentialInfo {
                access_key_id,
                name: name.to_string(),
                buckets,
                access,
                created_ms,
                revoked_ms: None,
            },
            secret_access_key: secret,
        })
    }

    pub fn list(&self) -> Result<Vec<CredentialInfo>, StoreError> {
        let conn = self.db();
        let mut stmt = conn.prepare(
            "SELECT access_key_id, name, buckets, access, created, revoked FROM credentials ORDER BY created, access_key_id",
        )?;
        let rows = stmt.query_map([], info_from_row)?;
        let mut out = Vec::new();
        for r in rows {
            out.push(r??);
        }
        Ok(out)
    }

    /// Revokes a key; later requests signed with it are refused.
    pub fn revoke(&self, access_key_id: &str) -> Result<(), StoreError> {
        let n = self.db().execute(
            "UPDATE credentials SET revoked = COALESCE(revoked, ?2) WHERE access_key_id = ?1",
            params![access_key_id, self.clock.now_ms() as i64],
        )?;
        if n == 0 {
            return Err(StoreError::NoSuchKey(access_key_id.to_string()));
        }
        Ok(())
    }

    /// The key's description and secret, when it exists (revoked or not).
    pub fn lookup(
        &self,
        access_key_id: &str,
    ) -> Result<Option<(CredentialInfo, String)>, StoreError> {
        let row = self
            .db()
            .query_row(
                "SELECT access_key_id, name, buckets, access, created, revoked, nonce, sealed_secret
                 FROM credentials WHERE access_key_id = ?1",
                [access_key_id],
                |r| Ok((info_from_row(r)?, r.get::<_, Vec<u8>>(6)?, r.get::<_, Vec<u8>>(7)?)),
            )
            .optional()?;
        let Some((info, nonce, sealed)) = row else {
            return Ok(None);
        };
        let info = info?;
        if nonce.len() != 12 {
            return Err(StoreError::Unseal(access_key_id.to_string()));
        }
        let secret = self
            .cipher
            .decrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &sealed,
                    aad: access_key_id.as_bytes(),
                },
            )
            .map_err(|_| StoreError::Unseal(access_key_id.to_string()))?;
        let secret =
            String::from_utf8(secret).map_err(|_| StoreError::Unseal(access_key_id.to_string()))?;
        Ok(Some((info, secret)))
    }

    pub fn cors(&self, bucket: &str) -> Result<Option<Vec<CorsRule>>, StoreError> {
        let json: Option<String> = self
            .db()
            .query_row(
                "SELECT rules FROM bucket_cors WHERE bucket = ?1",
                [bucket],
                |r| r.get(0),
            )
            .optional()?;
        json.map(|j| serde_json::from_str(&j).map_err(|e| StoreError::Invalid(e.to_string())))
            .transpose()
    }

    pub fn put_cors(&self, bucket: &str, rules: &[CorsRule]) -> Result<(), StoreError> {
        let json = serde_json::to_string(rules).map_err(|e| StoreError::Invalid(e.to_string()))?;
        self.db().execute(
            "INSERT OR REPLACE INTO bucket_cors (bucket, rules) VALUES (?1, ?2)",
            params![bucket, json],
        )?;
        Ok(())
    }

    pub fn delete_cors(&self, bucket: &str) -> Result<(), StoreError> {
        self.db()
            .execute("DELETE FROM bucket_cors WHERE bucket = ?1", [bucket])?;
        Ok(())
    }
}

fn info_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<CredentialInfo, StoreError>> {
    let buckets: String = r.get(2)?;
    let access: String = r.get(3)?;
    let created: i64 = r.get(4)?;
    let revoked: Option<i64> = r.get(5)?;
    let id: String = r.get(0)?;
    let name: String = r.get(1)?;
    Ok((|| {
        Ok(CredentialInfo {
            buckets: serde_json::from_str(&buckets)
                .map_err(|e| StoreError::Invalid(format!("{id}: buckets: {e}")))?,
            access: access.parse()?,
            access_key_id: id,
            name,
            created_ms: created.max(0) as u64,
            revoked_ms: revoked.map(|v| v.max(0) as u64),
        })
    })())
}

fn load_or_create_key(path: &Path) -> Result<Vec<u8>, StoreError> {
    let fail = |reason: String| StoreError::Key {
        path: path.display().to_string(),
        reason,
    };
    match std::fs::read(path) {
        Ok(bytes) => {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt as _;
                let mode = std::fs::metadata(path)
                    .map_err(|e| fail(e.to_string()))?
                    .permissions()
                    .mode();
                if mode & 0o077 != 0 {
                    return Err(fail(format!(
                        "its permissions {:o} let others read it; run chmod 600 on it",
                        mode & 0o777
                    )));
                }
            }
            if bytes.len() != 32 {
                return Err(fail(format!("{} bytes, not 32", bytes.len())));
            }
            Ok(bytes)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
            }
            let mut key = vec![0u8; 32];
            getrandom::fill(&mut key).map_err(|e| fail(format!("random: {e}")))?;
            let tmp = PathBuf::from(format!("{}.tmp", path.display()));
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create(true).truncate(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt as _;
                opts.mode(0o600);
            }
            let mut f = opts.open(&tmp).map_err(|e| fail(e.to_string()))?;
            f.write_all(&key).map_err(|e| fail(e.to_string()))?;
            f.sync_all().map_err(|e| fail(e.to_string()))?;
            drop(f);
            // Two processes creating it at once: the first rename wins and
            // both read back what is there.
            if std::fs::hard_link(&tmp, path).is_ok() {
                let _ = std::fs::remove_file(&tmp);
                if let Some(dir) = path.parent() {
                    let _ = hearth_core::fs::sync_dir(dir);
                }
                return Ok(key);
            }
            let _ = std::fs::remove_file(&tmp);
            load_or_create_key(path)
        }
        Err(e) => Err(fail(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_core::ManualClock;

    #[test]
    fn create_lookup_revoke_and_seal() {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(1_000);
        let (db, key) = (dir.path().join("s3.sqlite"), dir.path().join("s3.key"));
        let store = CredentialStore::open(&db, &key, clock.shared()).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&key).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let made = store
            .create("ci", vec!["photos".into()], Access::Read)
            .unwrap();
        assert_eq!(made.secret_access_key.len(), 40);
        let (info, secret) = store.lookup(&made.info.access_key_id).unwrap().unwrap();
        assert_eq!(secret, made.secret_access_key);
        assert!(info.allows_bucket("photos") && !info.allows_bucket("other"));
        // The secret is not stored in the clear.
        let raw = std::fs::read(&db).unwrap();
        assert!(
            !raw.windows(40)
                .any(|w| w == made.secret_access_key.as_bytes())
        );
        clock.advance_secs(5);
        store.revoke(&made.info.access_key_id).unwrap();
        let listed = store.list().unwrap();
        assert_eq!(listed[0].revoked_ms, Some(6_000));
        assert!(matches!(
            store.revoke("HRTHNOPE"),
            Err(StoreError::NoSuchKey(_))
        ));
        // Another key file cannot open the sealed secret.
        drop(store);
        std::fs::remove_file(&key).unwrap();
        let other = CredentialStore::open(&db, &key, clock.shared()).unwrap();
        assert!(matches!(
            other.lookup(&made.info.access_key_id),
            Err(StoreError::Unseal(_))
        ));
    }

    #[cfg(unix)]
    #[test]
    fn a_readable_key_file_is_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("s3.key");
        std::fs::write(&key, [7u8; 32]).unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = CredentialStore::open(
            &dir.path().join("s3.sqlite"),
            &key,
            ManualClock::new(0).shared(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("chmod 600"), "{e}");
    }
}
