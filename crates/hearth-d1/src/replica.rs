//! Cluster mode: a database owned by one node at a time, its commits
//! shipped to the cluster's change log before they are acknowledged.
//!
//! This is the Durable Object storage's scheme ([`hearth_do::ship`]), used
//! as is: the local file is a cache rebuilt from snapshot + changes when a
//! node opens the database under its lease; every write call's WAL frames
//! are appended to the log under the lease's fencing token (the log
//! refuses the append once another node took the lease), and only then is
//! the call answered. A call whose frames the log did not take leaves the
//! file ahead of the log: the database refuses every call from then on and
//! its owner opens it again from the log.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use hearth_do::ship::{self, ChangeLog, Lease, LogError};

use crate::error::D1Error;

/// The lease a node holds on a database, and where its changes go.
#[derive(Debug, Clone)]
pub struct Replication {
    pub log: Arc<dyn ChangeLog>,
    /// The log's key space for D1 (kept apart from Durable Object classes).
    pub namespace: String,
    /// The database's id in the cluster.
    pub id: String,
    /// This node.
    pub node: String,
    /// The lease's fencing token.
    pub token: i64,
}

#[derive(Debug, Default)]
struct Shipped {
    /// WAL frames already in the log, of the WAL with this salt.
    frames: u32,
    salt: Option<[u8; 8]>,
    /// The number of the last change in the log.
    seq: i64,
    /// The log holds the database (a snapshot at least).
    in_log: bool,
    /// Log bytes since the last snapshot.
    log_bytes: u64,
}

#[derive(Debug)]
pub(crate) struct Replica {
    cfg: Replication,
    /// The WAL's frame count after the last commit (set by the WAL hook).
    wal_frames: Arc<AtomicU32>,
    shipped: Mutex<Shipped>,
    /// A commit the log did not take: the file may hold it, so nothing
    /// more is served from this copy.
    broken: AtomicBool,
}

fn log_error(e: LogError, token: i64) -> D1Error {
    match e {
        LogError::Fenced => D1Error::Fenced { token },
        LogError::Backend(message) => D1Error::NotDurable { message },
    }
}

impl Replica {
    /// Rebuilds the database's file under `base` from the log; returns the
    /// replica and the file to open.
    pub(crate) fn restore(
        base: &Path,
        cfg: Replication,
    ) -> Result<(Self, std::path::PathBuf), D1Error> {
        let file = ship::generation_path(base, cfg.token);
        let restored =
            ship::restore(cfg.log.as_ref(), &cfg.namespace, &cfg.id, &file).map_err(|e| {
                D1Error::Open {
                    path: file.clone(),
                    message: format!("rebuilding it from the cluster's log: {e}"),
                }
            })?;
        let replica = Self {
            cfg,
            wal_frames: Arc::new(AtomicU32::new(0)),
            shipped: Mutex::new(Shipped {
                seq: restored.unwrap_or(0),
                in_log: restored.is_some(),
                ..Shipped::default()
            }),
            broken: AtomicBool::new(false),
        };
        Ok((replica, file))
    }

    /// Hooks the connection: the WAL hook records each commit's frame
    /// count (and replaces automatic checkpoints, so frames stay in the
    /// WAL until shipped); the local fsync is dropped, as the log's commit
    /// is what acknowledges.
    pub(crate) fn attach(&self, conn: &mut rusqlite::Connection) -> rusqlite::Result<()> {
        let frames = self.wal_frames.clone();
        conn.wal_hook(Some(
            move |_: &mut rusqlite::hooks::Wal, n: std::ffi::c_int| {
                frames.store(u32::try_from(n).unwrap_or(0), Ordering::SeqCst);
                Ok(())
            },
        ))?;
        conn.pragma_update(None, "synchronous", "OFF")
    }

    pub(crate) fn check(&self) -> Result<(), D1Error> {
        if self.broken.load(Ordering::SeqCst) {
            return Err(D1Error::Stale);
        }
        Ok(())
    }

    pub(crate) fn is_broken(&self) -> bool {
        self.broken.load(Ordering::SeqCst)
    }

    pub(crate) fn token(&self) -> i64 {
        self.cfg.token
    }

    fn lease(&self) -> Lease<'_> {
        Lease {
            namespace: &self.cfg.namespace,
            id: &self.cfg.id,
            node: &self.cfg.node,
            token: self.cfg.token,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shipped> {
        self.shipped.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// After opening: a first snapshot for a database the log never saw,
    /// else the frames opening wrote (none, usually).
    pub(crate) fn settle(
        &self,
        file: &Path,
        checkpoint: impl FnOnce() -> Result<i64, D1Error>,
    ) -> Result<(), D1Error> {
        let in_log = self.lock().in_log;
        let result = if in_log {
            self.ship(file, checkpoint)
        } else {
            self.snapshot(file, checkpoint)
        };
        if result.is_err() {
            self.broken.store(true, Ordering::SeqCst);
        }
        result
    }

    /// Appends the frames committed since the last shipment to the log
    /// under the lease; snapshots once the log outgrew the file. An error
    /// leaves the replica broken.
    pub(crate) fn ship(
        &self,
        file: &Path,
        checkpoint: impl FnOnce() -> Result<i64, D1Error>,
    ) -> Result<(), D1Error> {
        let upto = self.wal_frames.load(Ordering::SeqCst);
        let mut shipped = self.lock();
        let frames = ship::read_frames(file, shipped.frames, upto, shipped.salt)
            .map_err(|e| D1Error::NotDurable {
                message: e.to_string(),
            })
            .inspect_err(|_| self.broken.store(true, Ordering::SeqCst))?;
        let Some(frames) = frames else {
            return Ok(());
        };
        let bytes = frames.change.len() as u64;
        if let Err(e) = self
            .cfg
            .log
            .append(&self.lease(), shipped.seq + 1, frames.change, None)
        {
            self.broken.store(true, Ordering::SeqCst);
            return Err(log_error(e, self.cfg.token));
        }
        shipped.seq += 1;
        shipped.frames = upto;
        shipped.salt = Some(frames.salt);
        shipped.log_bytes += bytes;
        let file_bytes = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
        let due = shipped.log_bytes > self.cfg.log.snapshot_after_bytes().max(file_bytes);
        drop(shipped);
        if due {
            // The log holds every change already; a failed snapshot is
            // tried again after the next commit.
            let _ = self.snapshot(file, checkpoint);
        }
        Ok(())
    }

    /// Checkpoints the WAL into the file and uploads the file as the
    /// snapshot of every change so far.
    fn snapshot(
        &self,
        file: &Path,
        checkpoint: impl FnOnce() -> Result<i64, D1Error>,
    ) -> Result<(), D1Error> {
        let mut shipped = self.lock();
        if checkpoint()? != 0 {
            return Err(D1Error::NotDurable {
                message: "the checkpoint before a snapshot was blocked".into(),
            });
        }
        // Every shipped frame is in the file now; the WAL starts over.
        self.wal_frames.store(0, Ordering::SeqCst);
        shipped.frames = 0;
        shipped.salt = None;
        let io = |e: std::io::Error| D1Error::NotDurable {
            message: format!("{}: {e}", file.display()),
        };
        let f = std::fs::File::open(file).map_err(io)?;
        let len = f.metadata().map_err(io)?.len();
        let (mut offset, mut chunk) = (0u64, 0u32);
        let token = self.cfg.token;
        while offset < len {
            let n = (len - offset).min(ship::SNAPSHOT_CHUNK as u64) as usize;
            let mut data = vec![0u8; n];
            std::os::unix::fs::FileExt::read_exact_at(&f, &mut data, offset).map_err(io)?;
            self.cfg
                .log
                .put_snapshot_chunk(&self.cfg.namespace, &self.cfg.id, shipped.seq, chunk, data)
                .map_err(|e| log_error(e, token))?;
            offset += n as u64;
            chunk += 1;
        }
        self.cfg
            .log
            .finish_snapshot(&self.lease(), shipped.seq, chunk)
            .map_err(|e| log_error(e, token))?;
        shipped.log_bytes = 0;
        shipped.in_log = true;
        Ok(())
    }
}
