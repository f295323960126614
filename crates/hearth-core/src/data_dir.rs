//! The one place that says where Hearth keeps what it persists.
//!
//! ```text
//! <data dir>/                 default: .hearth/ beside the config file
//!   do/<class key>/<id>.sqlite one SQLite file per Durable Object
//!   kv/<namespace id>.sqlite  one SQLite file per KV namespace
//!   d1/<database name>.sqlite one SQLite file per D1 database
//!   r2/<bucket name>/         one directory per R2 bucket (metadata + blobs)
//!   s3.sqlite                 S3 endpoint access keys (secrets sealed) and CORS rules
//!   s3.key                    the key sealing those secrets (mode 0600)
//!   queues.sqlite             every queue's messages and leases, one file
//!   cron.sqlite               last fired slot of every worker's cron triggers
//!   workflows.sqlite          every Workflow's instances and step journal
//!   analytics_engine.sqlite   every Analytics Engine dataset's data points
//!   cache/                    the Cache API: cache.sqlite + bodies/
//!   ai-gateway/logs.sqlite    AI Gateway's request logs, every gateway
//!   serve.lock                held (shared) by every `hearth serve` on the directory
//! ```
//!
//! Each binding kind also declares its paths (`BindingKind::data_paths` in
//! the runtime's registry), whose tests keep two kinds from sharing one.
//!
//! Names from the config become single path components; anything outside
//! `[A-Za-z0-9._-]` is percent-encoded so a name can never escape its folder.

use std::fs::File;
use std::path::{Path, PathBuf};

/// The directory name used when no `--data-dir` is given.
pub const DEFAULT_DIR_NAME: &str = ".hearth";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// `.hearth/` beside the config file (`config_dir` is the directory holding it).
    pub fn beside_config(config_dir: &Path) -> Self {
        Self::new(config_dir.join(DEFAULT_DIR_NAME))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Everything Durable Objects keep: per-class folders and shared indexes.
    pub fn durable_objects(&self) -> PathBuf {
        self.root.join("do")
    }

    /// The folder holding every object of one Durable Object class.
    pub fn durable_object_namespace(&self, namespace_key: &str) -> PathBuf {
        self.durable_objects().join(path_component(namespace_key))
    }

    /// One object's own database; `id` is its 64-hex-digit id.
    pub fn durable_object(&self, namespace_key: &str, id: &str) -> PathBuf {
        self.durable_object_namespace(namespace_key)
            .join(format!("{}.sqlite", path_component(id)))
    }

    pub fn kv_namespace(&self, namespace_id: &str) -> PathBuf {
        self.root
            .join("kv")
            .join(format!("{}.sqlite", path_component(namespace_id)))
    }

    pub fn d1_database(&self, database_name: &str) -> PathBuf {
        self.root
            .join("d1")
            .join(format!("{}.sqlite", path_component(database_name)))
    }

    pub fn r2_bucket(&self, bucket_name: &str) -> PathBuf {
        self.root.join("r2").join(path_component(bucket_name))
    }

    /// Where buckets created by name (not declared in a config) live.
    pub fn r2_buckets(&self) -> PathBuf {
        self.root.join("r2")
    }

    /// The S3 endpoint's access keys and per-bucket CORS rules.
    pub fn s3_credentials(&self) -> PathBuf {
        self.root.join("s3.sqlite")
    }

    /// The key sealing the S3 secrets; readable by its owner only.
    pub fn s3_key(&self) -> PathBuf {
        self.root.join("s3.key")
    }

    /// One file for all queues, so moving a message to a dead-letter queue
    /// is a single transaction.
    pub fn queues(&self) -> PathBuf {
        self.root.join("queues.sqlite")
    }

    /// One file for the cron trigger state of every worker.
    pub fn cron(&self) -> PathBuf {
        self.root.join("cron.sqlite")
    }

    /// One file for all Workflows: instances are keyed by workflow name inside it.
    pub fn workflows(&self) -> PathBuf {
        self.root.join("workflows.sqlite")
    }

    /// The Cache API's folder: `caches.default` and every named cache of
    /// the workers sharing this data directory, as a zone's cache is shared.
    pub fn cache(&self) -> PathBuf {
        self.root.join("cache")
    }

    /// Compiled modules kept across restarts, one file per module source.
    pub fn bytecode(&self) -> PathBuf {
        self.root.join("bytecode")
    }

    /// AI Gateway's request logs (one file for every gateway).
    pub fn ai_gateway_logs(&self) -> PathBuf {
        self.root.join("ai-gateway").join("logs.sqlite")
    }

    /// The lock a server holds on the directory while it runs.
    pub fn serve_lock(&self) -> PathBuf {
        self.root.join("serve.lock")
    }

    /// Marks the directory as served until the returned lock is dropped.
    /// Shared: several servers (and the data CLIs, which never lock) may
    /// use one directory; only [`lock_exclusive`](Self::lock_exclusive)
    /// is kept out.
    pub fn lock_serving(&self) -> Result<DirLock, LockError> {
        let file = self.open_lock()?;
        file.lock_shared().map_err(|source| LockError::Io {
            path: self.serve_lock().display().to_string(),
            source,
        })?;
        Ok(DirLock { _file: file })
    }

    /// Takes the directory for a process that needs it unused (copying it
    /// elsewhere); fails with [`LockError::Served`] while a server holds
    /// it. The lock dies with the process, so a crashed server never
    /// leaves it behind.
    pub fn lock_exclusive(&self) -> Result<DirLock, LockError> {
        let file = self.open_lock()?;
        match file.try_lock() {
            Ok(()) => Ok(DirLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(LockError::Served {
                path: self.root.display().to_string(),
            }),
            Err(std::fs::TryLockError::Error(source)) => Err(LockError::Io {
                path: self.serve_lock().display().to_string(),
                source,
            }),
        }
    }

    fn open_lock(&self) -> Result<File, LockError> {
        let path = self.serve_lock();
        let io = |source| LockError::Io {
            path: path.display().to_string(),
            source,
        };
        std::fs::create_dir_all(&self.root).map_err(io)?;
        File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)
    }
}

/// A lock on a data directory, released when dropped.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("the data directory {path} is in use by a running `hearth serve`; stop it first")]
    Served { path: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Encodes a configured name as one safe path component.
pub fn path_component(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' => out.push(b as char),
            // A leading dot would hide the file or make "." / ".." components.
            b'.' if !out.is_empty() => out.push('.'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    if out.is_empty() {
        out.push_str("%00");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_escape_their_folder() {
        assert_eq!(path_component("my-db_1"), "my-db_1");
        assert_eq!(path_component("../etc"), "%2E.%2Fetc");
        assert_eq!(path_component(".."), "%2E.");
        assert_eq!(path_component("a/b"), "a%2Fb");
        assert_eq!(path_component(""), "%00");
    }

    #[test]
    fn a_served_directory_cannot_be_taken_exclusively() {
        let dir = tempfile::tempdir().unwrap();
        let d = DataDir::new(dir.path().join("data"));
        let first = d.lock_serving().unwrap();
        let second = d.lock_serving().unwrap();
        assert!(matches!(d.lock_exclusive(), Err(LockError::Served { .. })));
        drop(first);
        assert!(matches!(d.lock_exclusive(), Err(LockError::Served { .. })));
        drop(second);
        let taken = d.lock_exclusive().unwrap();
        assert!(matches!(d.lock_exclusive(), Err(LockError::Served { .. })));
        drop(taken);
        d.lock_exclusive().unwrap();
    }

    #[test]
    fn durable_object_layout() {
        let d = DataDir::new("/d");
        assert_eq!(d.durable_objects(), Path::new("/d/do"));
        assert_eq!(
            d.durable_object_namespace("Counter"),
            Path::new("/d/do/Counter")
        );
        assert_eq!(
            d.durable_object("Counter", "ab12"),
            Path::new("/d/do/Counter/ab12.sqlite")
        );
        assert_eq!(
            d.durable_object_namespace("../x"),
            Path::new("/d/do/%2E.%2Fx")
        );
    }

    #[test]
    fn layout() {
        let d = DataDir::beside_config(Path::new("/p"));
        assert_eq!(d.kv_namespace("abc"), Path::new("/p/.hearth/kv/abc.sqlite"));
        assert_eq!(d.d1_database("db"), Path::new("/p/.hearth/d1/db.sqlite"));
        assert_eq!(d.r2_bucket("b"), Path::new("/p/.hearth/r2/b"));
        assert_eq!(d.queues(), Path::new("/p/.hearth/queues.sqlite"));
        assert_eq!(d.cron(), Path::new("/p/.hearth/cron.sqlite"));
        assert_eq!(d.workflows(), Path::new("/p/.hearth/workflows.sqlite"));
        assert_eq!(d.cache(), Path::new("/p/.hearth/cache"));
    }
}
