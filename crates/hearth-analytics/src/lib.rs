//! Workers Analytics Engine: `writeDataPoint()` and the SQL API.
//!
//! A data point is up to 20 blobs (strings or bytes), 20 doubles and one
//! index, written to a dataset. As on Cloudflare, a write returns at once
//! and is not acknowledged: points go into a bounded buffer that a writer
//! thread commits in batches to `analytics_engine.sqlite` (one table,
//! keyed by dataset). No accepted point is dropped: when the buffer is
//! full (in points or bytes), `write` waits for the writer to make room,
//! and fails with [`AnalyticsError::BufferFull`] if it does not within
//! [`FULL_WAIT`]. (Cloudflare may sample a heavy index, but a kept point
//! then stands for the others through `_sample_interval`; dropping points
//! whose weight nothing records would make every count wrong.) A point
//! still in the buffer when the process is killed is lost. Points older than the
//! retention (three months, Cloudflare's) are deleted by the writer. In
//! the same transactions the writer keeps the points summed per
//! (dataset, second, blob1), which answers the common aggregate queries
//! without reading every point (see `SCHEMA_V2`).
//!
//! Queries take the SQL API's dialect where SQLite can carry it (see
//! [`sql`]): `SELECT` over a dataset by name with the columns `dataset`,
//! `timestamp`, `_sample_interval`, `index1`, `blob1`..`blob20`,
//! `double1`..`double20`, `NOW()`, `INTERVAL 'n' UNIT`,
//! `toStartOfInterval`, `intDiv`, and `FORMAT JSON | JSONEachRow |
//! TabSeparated`, answered in the API's JSON shape.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hearth_core::{ContractError, ErrorClass, SharedClock};
use rusqlite::Connection;

mod functions;
pub mod sql;

pub use functions::parse_datetime;

/// Blobs per data point.
pub const MAX_BLOBS: usize = 20;
/// Doubles per data point.
pub const MAX_DOUBLES: usize = 20;
/// Indexes per data point.
pub const MAX_INDEXES: usize = 1;
/// Bytes of the index.
pub const MAX_INDEX_BYTES: usize = 96;
/// Bytes of all blobs of one point together.
pub const MAX_BLOB_BYTES: usize = 16 * 1024;
/// Data points one invocation (a request, an event) may write, all
/// datasets together; counted by the runtime, which knows the invocation.
pub const MAX_POINTS_PER_INVOCATION: usize = 250;
/// How long points are kept: three months.
pub const RETENTION_MS: u64 = 92 * 24 * 3600 * 1000;
/// Points waiting for the writer before `write` waits for room.
pub const BUFFER_POINTS: usize = 10_000;
/// Bytes of points (blobs, index, doubles) waiting for the writer before
/// `write` waits for room, so large points cannot fill memory.
pub const BUFFER_BYTES: usize = 8 << 20;
/// How long `write` waits for room in a full buffer before it fails: the
/// writer commits a full buffer in well under a second, so only a writer
/// that cannot write (a full disk) makes a worker wait this long.
pub const FULL_WAIT: Duration = Duration::from_secs(5);

/// How a store is run; `Default` holds Cloudflare's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnalyticsOptions {
    /// Points waiting for the writer before `write` waits for room.
    pub buffer_points: usize,
    /// How long points are kept.
    pub retention_ms: u64,
    /// How long `write` waits for room in a full buffer before failing.
    pub full_wait: Duration,
}

impl Default for AnalyticsOptions {
    fn default() -> Self {
        Self {
            buffer_points: BUFFER_POINTS,
            retention_ms: RETENTION_MS,
            full_wait: FULL_WAIT,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AnalyticsError {
    #[error("writeDataPoint(): Maximum of {MAX_BLOBS} blobs supported, got {0}")]
    TooManyBlobs(usize),
    #[error("writeDataPoint(): Maximum of {MAX_DOUBLES} doubles supported, got {0}")]
    TooManyDoubles(usize),
    #[error("writeDataPoint(): Maximum of {MAX_INDEXES} indexes supported, got {0}")]
    TooManyIndexes(usize),
    #[error("writeDataPoint(): index is {0} bytes, above the {MAX_INDEX_BYTES}-byte limit")]
    IndexTooLong(usize),
    #[error("writeDataPoint(): blobs total {0} bytes, above the {MAX_BLOB_BYTES}-byte limit")]
    BlobsTooLarge(usize),
    #[error(
        "writeDataPoint(): Maximum of {MAX_POINTS_PER_INVOCATION} data points per invocation exceeded"
    )]
    TooManyPoints,
    #[error(
        "writeDataPoint(): the write buffer is full ({0} points waiting) and the writer made no room within {1:?}; the point was not recorded"
    )]
    BufferFull(usize, Duration),
    #[error("{0}")]
    Query(String),
    #[error("analytics storage: {0}")]
    Storage(String),
}

impl ContractError for AnalyticsError {
    fn class(&self) -> ErrorClass {
        match self {
            AnalyticsError::Storage(_)
            | AnalyticsError::BufferFull(..)
            | AnalyticsError::Query(_)
            | AnalyticsError::TooManyPoints => ErrorClass::Error,
            _ => ErrorClass::TypeError,
        }
    }
}

impl From<rusqlite::Error> for AnalyticsError {
    fn from(e: rusqlite::Error) -> Self {
        AnalyticsError::Storage(e.to_string())
    }
}

/// One data point as the worker gave it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DataPoint {
    /// `None` is a `null` blob.
    pub blobs: Vec<Option<Vec<u8>>>,
    pub doubles: Vec<f64>,
    pub indexes: Vec<Option<Vec<u8>>>,
}

impl DataPoint {
    /// Checks Cloudflare's limits.
    pub fn validate(&self) -> Result<(), AnalyticsError> {
        if self.blobs.len() > MAX_BLOBS {
            return Err(AnalyticsError::TooManyBlobs(self.blobs.len()));
        }
        if self.doubles.len() > MAX_DOUBLES {
            return Err(AnalyticsError::TooManyDoubles(self.doubles.len()));
        }
        if self.indexes.len() > MAX_INDEXES {
            return Err(AnalyticsError::TooManyIndexes(self.indexes.len()));
        }
        if let Some(Some(index)) = self.indexes.first()
            && index.len() > MAX_INDEX_BYTES
        {
            return Err(AnalyticsError::IndexTooLong(index.len()));
        }
        let total: usize = self.blobs.iter().flatten().map(Vec::len).sum();
        if total > MAX_BLOB_BYTES {
            return Err(AnalyticsError::BlobsTooLarge(total));
        }
        Ok(())
    }

    /// What the point holds against [`BUFFER_BYTES`].
    fn size(&self) -> usize {
        let bytes = |v: &[Option<Vec<u8>>]| v.iter().flatten().map(Vec::len).sum::<usize>();
        64 + bytes(&self.blobs) + bytes(&self.indexes) + 8 * self.doubles.len()
    }
}

const SCHEMA_V1: &str = "
CREATE TABLE points (
    dataset TEXT NOT NULL,
    timestamp DATETIME NOT NULL,
    _sample_interval INTEGER NOT NULL DEFAULT 1,
    index1 TEXT NOT NULL DEFAULT '',
    blob1 TEXT, blob2 TEXT, blob3 TEXT, blob4 TEXT, blob5 TEXT,
    blob6 TEXT, blob7 TEXT, blob8 TEXT, blob9 TEXT, blob10 TEXT,
    blob11 TEXT, blob12 TEXT, blob13 TEXT, blob14 TEXT, blob15 TEXT,
    blob16 TEXT, blob17 TEXT, blob18 TEXT, blob19 TEXT, blob20 TEXT,
    double1 REAL, double2 REAL, double3 REAL, double4 REAL, double5 REAL,
    double6 REAL, double7 REAL, double8 REAL, double9 REAL, double10 REAL,
    double11 REAL, double12 REAL, double13 REAL, double14 REAL, double15 REAL,
    double16 REAL, double17 REAL, double18 REAL, double19 REAL, double20 REAL
);
CREATE INDEX points_by_dataset_time ON points (dataset, timestamp);
";

/// The points summed per (dataset, second, blob1): `_sample_interval` holds
/// the sum of the points' sample intervals and `_hearth_rows` how many
/// points there are. A query that reads only `timestamp` and `blob1` and
/// aggregates with `count()` or `SUM(_sample_interval)` (the shape of most
/// dashboards, and of Cloudflare's own examples) is answered from here,
/// exactly, since `timestamp` is held to the second anyway. Kept in the
/// writer's transaction; `rollup_mark` records the last point rowid it
/// covers, so points stored some other way are summed on the next open.
const SCHEMA_V2: &str = "
CREATE TABLE points_by_second (
    dataset TEXT NOT NULL,
    timestamp DATETIME NOT NULL,
    blob1 TEXT NOT NULL,
    _sample_interval INTEGER NOT NULL,
    _hearth_rows INTEGER NOT NULL,
    PRIMARY KEY (dataset, timestamp, blob1)
) WITHOUT ROWID;
CREATE INDEX points_by_second_blob1
    ON points_by_second (dataset, blob1, timestamp, _sample_interval, _hearth_rows);
CREATE TABLE rollup_mark (points_rowid INTEGER NOT NULL);
INSERT INTO rollup_mark VALUES (0);
";

/// Adds the points after `rollup_mark` to the rollup and moves the mark.
/// A null blob1 is summed as '', as the writer stores it.
const ROLLUP_CATCH_UP: &str = "
INSERT INTO points_by_second (dataset, timestamp, blob1, _sample_interval, _hearth_rows)
    SELECT dataset, timestamp, IFNULL(blob1, ''), SUM(_sample_interval), COUNT(*)
    FROM points WHERE rowid > (SELECT points_rowid FROM rollup_mark)
    GROUP BY 1, 2, 3
    ON CONFLICT DO UPDATE SET
        _sample_interval = _sample_interval + excluded._sample_interval,
        _hearth_rows = _hearth_rows + excluded._hearth_rows;
UPDATE rollup_mark SET points_rowid = (SELECT IFNULL(MAX(rowid), 0) FROM points);
";

/// A point waiting for the writer.
struct Pending {
    /// Shared by the points of one dataset, so a write allocates no name.
    dataset: Arc<str>,
    at_secs: i64,
    point: DataPoint,
}

/// The buffer between `write` and the writer thread.
#[derive(Default)]
struct Queue {
    points: Vec<Pending>,
    bytes: usize,
    /// Callers of `flush` waiting for the points queued before them.
    flushes: Vec<SyncSender<()>>,
    /// The last dataset name written, reused while it repeats.
    last_dataset: Option<Arc<str>>,
    /// Set when the store closes: the writer commits what is left and ends.
    closed: bool,
}

struct Buffer {
    queue: Mutex<Queue>,
    /// Signalled when points or a flush arrive, or the store closes.
    ready: Condvar,
    /// Signalled when the writer takes points, so waiting writes fit.
    room: Condvar,
    max_points: usize,
    max_bytes: usize,
    full_wait: Duration,
}

impl Buffer {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The datasets of one data directory.
pub struct AnalyticsEngine {
    path: PathBuf,
    clock: SharedClock,
    buffer: Arc<Buffer>,
    writer: Mutex<Option<JoinHandle<()>>>,
    query_conn: Mutex<Connection>,
}

impl std::fmt::Debug for AnalyticsEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnalyticsEngine")
            .field("path", &self.path)
            .finish()
    }
}

impl AnalyticsEngine {
    /// Opens (or creates) the store at `path` and starts its writer.
    pub fn open(path: &Path, clock: SharedClock) -> Result<Self, AnalyticsError> {
        Self::open_with(path, clock, AnalyticsOptions::default())
    }

    pub fn open_with_buffer(
        path: &Path,
        clock: SharedClock,
        buffer: usize,
    ) -> Result<Self, AnalyticsError> {
        let options = AnalyticsOptions {
            buffer_points: buffer,
            ..AnalyticsOptions::default()
        };
        Self::open_with(path, clock, options)
    }

    /// Opens the store with `options` (buffer size, retention).
    pub fn open_with(
        path: &Path,
        clock: SharedClock,
        options: AnalyticsOptions,
    ) -> Result<Self, AnalyticsError> {
        let buffer = options.buffer_points;
        let retention_ms = options.retention_ms;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| AnalyticsError::Storage(format!("creating {}: {e}", dir.display())))?;
        }
        let storage = |e: &dyn std::fmt::Display| AnalyticsError::Storage(e.to_string());
        let mut conn = hearth_core::sqlite::open(path).map_err(|e| storage(&e))?;
        hearth_core::sqlite::migrate(&mut conn, path, &[SCHEMA_V1, SCHEMA_V2])
            .map_err(|e| storage(&e))?;
        {
            let tx = conn.transaction().map_err(|e| storage(&e))?;
            tx.execute_batch(ROLLUP_CATCH_UP).map_err(|e| storage(&e))?;
            tx.commit().map_err(|e| storage(&e))?;
        }
        let query_conn = hearth_core::sqlite::open(path).map_err(|e| storage(&e))?;
        sql::install_functions(&query_conn, clock.clone())?;
        // The SQL API's LIKE is case-sensitive; SQLite's is not by default.
        query_conn
            .pragma_update(None, "case_sensitive_like", true)
            .map_err(|e| storage(&e))?;
        let shared = Arc::new(Buffer {
            queue: Mutex::new(Queue::default()),
            ready: Condvar::new(),
            room: Condvar::new(),
            max_points: buffer.max(1),
            max_bytes: BUFFER_BYTES,
            full_wait: options.full_wait,
        });
        let writer_clock = clock.clone();
        let writer_buffer = shared.clone();
        let writer = std::thread::Builder::new()
            .name("hearth-analytics-writer".into())
            .spawn(move || write_loop(conn, &writer_buffer, writer_clock, retention_ms))
            .map_err(|e| storage(&e))?;
        Ok(Self {
            path: path.to_path_buf(),
            clock,
            buffer: shared,
            writer: Mutex::new(Some(writer)),
            query_conn: Mutex::new(query_conn),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Queues `point` for `dataset`. A point over a limit is an error.
    /// Returns at once unless the buffer is full; then it waits for the
    /// writer to make room, up to `full_wait` ([`FULL_WAIT`] by default), and fails with
    /// [`AnalyticsError::BufferFull`] rather than drop the point.
    pub fn write(&self, dataset: &str, point: DataPoint) -> Result<(), AnalyticsError> {
        point.validate()?;
        let at_secs = (self.clock.now_ms() / 1000) as i64;
        let size = point.size();
        let buffer = &*self.buffer;
        let mut queue = buffer.lock();
        let mut deadline = None;
        // An empty buffer takes any point, however large.
        while !queue.points.is_empty()
            && (queue.points.len() >= buffer.max_points || queue.bytes + size > buffer.max_bytes)
        {
            if queue.closed {
                break;
            }
            let deadline = *deadline.get_or_insert_with(|| Instant::now() + buffer.full_wait);
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(AnalyticsError::BufferFull(
                    queue.points.len(),
                    buffer.full_wait,
                ));
            }
            queue = buffer
                .room
                .wait_timeout(queue, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        if queue.closed {
            return Err(AnalyticsError::Storage("the store is closed".into()));
        }
        let dataset = match &queue.last_dataset {
            Some(last) if **last == *dataset => last.clone(),
            _ => {
                let name: Arc<str> = Arc::from(dataset);
                queue.last_dataset = Some(name.clone());
                name
            }
        };
        let was_empty = queue.points.is_empty();
        queue.points.push(Pending {
            dataset,
            at_secs,
            point,
        });
        queue.bytes += size;
        drop(queue);
        // The writer sleeps only on an empty buffer, so only the first
        // point after it needs to wake it.
        if was_empty {
            buffer.ready.notify_one();
        }
        Ok(())
    }

    /// Waits until every point queued so far is committed.
    pub fn flush(&self) -> Result<(), AnalyticsError> {
        let (done_tx, done_rx) = sync_channel(1);
        {
            let mut queue = self.buffer.lock();
            if queue.closed {
                return Ok(());
            }
            queue.flushes.push(done_tx);
        }
        self.buffer.ready.notify_one();
        done_rx
            .recv()
            .map_err(|_| AnalyticsError::Storage("the writer stopped".into()))
    }

    /// Runs a SQL API query (after committing what was written before it).
    pub fn query(&self, text: &str) -> Result<sql::QueryOutput, AnalyticsError> {
        self.flush()?;
        let mut conn = self.query_conn.lock().unwrap_or_else(|e| e.into_inner());
        sql::run(&mut conn, text, true)
    }

    /// Runs a query reading the points only, never the per-second rollup
    /// (the answer is the same; this is how that is checked).
    pub fn query_points(&self, text: &str) -> Result<sql::QueryOutput, AnalyticsError> {
        self.flush()?;
        let mut conn = self.query_conn.lock().unwrap_or_else(|e| e.into_inner());
        sql::run(&mut conn, text, false)
    }
}

impl Drop for AnalyticsEngine {
    fn drop(&mut self) {
        // The writer commits what the buffer holds, then ends.
        self.buffer.lock().closed = true;
        self.buffer.ready.notify_all();
        self.buffer.room.notify_all();
        if let Some(writer) = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = writer.join();
        }
    }
}

/// Inserted points between two retention sweeps.
const SWEEP_EVERY: u64 = 10_000;
/// Clock time between two retention sweeps, however few points came.
const SWEEP_EVERY_MS: u64 = 60_000;
/// Pause before retrying a batch SQLite refused (a full disk, a lock
/// held past the busy timeout): the points stay in memory meanwhile.
const RETRY_PAUSE: Duration = Duration::from_millis(500);

/// Takes everything queued (one transaction, one fsync, however many
/// points: the buffer bounds the batch) and commits it, until the store
/// closes and the buffer is empty. Writes fill a fresh buffer meanwhile.
fn write_loop(mut conn: Connection, buffer: &Buffer, clock: SharedClock, retention_ms: u64) {
    let mut since_sweep = SWEEP_EVERY;
    let mut last_sweep_ms = 0u64;
    let mut spare = Vec::new();
    loop {
        let (points, flushes, closed) = {
            let mut queue = buffer.lock();
            while queue.points.is_empty() && queue.flushes.is_empty() && !queue.closed {
                queue = buffer.ready.wait(queue).unwrap_or_else(|e| e.into_inner());
            }
            let points = std::mem::replace(&mut queue.points, std::mem::take(&mut spare));
            queue.bytes = 0;
            (points, std::mem::take(&mut queue.flushes), queue.closed)
        };
        buffer.room.notify_all();
        if points.is_empty() && flushes.is_empty() && closed {
            return;
        }
        let now_ms = clock.now_ms();
        if since_sweep >= SWEEP_EVERY || now_ms.saturating_sub(last_sweep_ms) >= SWEEP_EVERY_MS {
            let cutoff = (now_ms.saturating_sub(retention_ms) / 1000) as i64;
            if let Err(e) = sweep(&mut conn, cutoff) {
                tracing::error!(target: "hearth::analytics", "cannot delete expired points: {e}");
            }
            since_sweep = 0;
            last_sweep_ms = now_ms;
        }
        since_sweep += points.len() as u64;
        // An accepted point is kept: a failed batch is retried while the
        // store is open (new writes wait, then fail, meanwhile), and once
        // more on close.
        let mut attempts = 0u32;
        while let Err(e) = insert(&mut conn, &points) {
            attempts += 1;
            tracing::error!(target: "hearth::analytics", "cannot store {} data point(s) (attempt {attempts}): {e}", points.len());
            if buffer.lock().closed && attempts >= 2 {
                break;
            }
            std::thread::sleep(RETRY_PAUSE);
        }
        for done in flushes {
            let _ = done.send(());
        }
        spare = points;
        spare.clear();
    }
}

/// Deletes points (and their rollup rows) older than `cutoff`, dataset by
/// dataset so each delete walks the (dataset, timestamp) index rather than
/// the whole table.
fn sweep(conn: &mut Connection, cutoff: i64) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    {
        let mut next = tx.prepare_cached(
            "SELECT dataset FROM points_by_second WHERE dataset > ?1 ORDER BY dataset LIMIT 1",
        )?;
        let mut points =
            tx.prepare_cached("DELETE FROM points WHERE dataset = ?1 AND timestamp < ?2")?;
        let mut rollup = tx
            .prepare_cached("DELETE FROM points_by_second WHERE dataset = ?1 AND timestamp < ?2")?;
        let mut after = String::new();
        while let Some(dataset) = next
            .query_row([&after], |r| r.get::<_, String>(0))
            .map(Some)
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                e => Err(e),
            })?
        {
            points.execute(rusqlite::params![dataset, cutoff])?;
            rollup.execute(rusqlite::params![dataset, cutoff])?;
            after = dataset;
        }
    }
    tx.commit()
}

fn insert(conn: &mut Connection, points: &[Pending]) -> rusqlite::Result<()> {
    if points.is_empty() {
        return Ok(());
    }
    let mut columns = String::from("dataset, timestamp, index1");
    let mut marks = String::from("?1, ?2, ?3");
    for i in 1..=MAX_BLOBS {
        columns.push_str(&format!(", blob{i}"));
        marks.push_str(&format!(", ?{}", 3 + i));
    }
    for i in 1..=MAX_DOUBLES {
        columns.push_str(&format!(", double{i}"));
        marks.push_str(&format!(", ?{}", 3 + MAX_BLOBS + i));
    }
    // The batch's rollup rows: (dataset, second, blob1) -> points. Every
    // point is stored with a sample interval of 1.
    let mut rollup: std::collections::HashMap<(&str, i64, std::borrow::Cow<'_, str>), i64> =
        std::collections::HashMap::new();
    let tx = conn.transaction()?;
    {
        let mut stmt =
            tx.prepare_cached(&format!("INSERT INTO points ({columns}) VALUES ({marks})"))?;
        // Bound in place (borrowed text, no per-value allocation): this
        // loop is the writer's whole cost per point. Bindings outlive each
        // execution, so every column starts as an unset blob ('') or
        // double (0), as the SQL API shows them, and a point rebinds only
        // the columns it sets and those the point before it set.
        fn text(b: Option<&Vec<u8>>) -> std::borrow::Cow<'_, str> {
            // `from_utf8` checks valid text (the usual blob) faster than
            // the lossy decoder, which only bytes that are not text need.
            b.map(|b| match std::str::from_utf8(b) {
                Ok(s) => std::borrow::Cow::Borrowed(s),
                Err(_) => String::from_utf8_lossy(b),
            })
            .unwrap_or_default()
        }
        for i in 0..MAX_BLOBS {
            stmt.raw_bind_parameter(4 + i, "")?;
        }
        for i in 0..MAX_DOUBLES {
            stmt.raw_bind_parameter(4 + MAX_BLOBS + i, 0.0)?;
        }
        let (mut blobs_set, mut doubles_set) = (0, 0);
        for Pending {
            dataset,
            at_secs: at,
            point,
        } in points
        {
            stmt.raw_bind_parameter(1, &**dataset)?;
            stmt.raw_bind_parameter(2, *at)?;
            stmt.raw_bind_parameter(3, &*text(point.indexes.first().and_then(Option::as_ref)))?;
            let blobs = point.blobs.len().min(MAX_BLOBS);
            let blob1 = text(point.blobs.first().and_then(Option::as_ref));
            for i in 0..blobs.max(blobs_set) {
                if i == 0 {
                    stmt.raw_bind_parameter(4, &*blob1)?;
                } else {
                    let blob = text(point.blobs.get(i).and_then(Option::as_ref));
                    stmt.raw_bind_parameter(4 + i, &*blob)?;
                }
            }
            blobs_set = blobs;
            let doubles = point.doubles.len().min(MAX_DOUBLES);
            for i in 0..doubles.max(doubles_set) {
                let double = point.doubles.get(i).copied().unwrap_or(0.0);
                stmt.raw_bind_parameter(4 + MAX_BLOBS + i, double)?;
            }
            doubles_set = doubles;
            stmt.raw_execute()?;
            // A null or unset blob1 is summed as '', as it is stored.
            *rollup.entry((&**dataset, *at, blob1)).or_default() += 1;
        }
        let last_rowid = tx.last_insert_rowid();
        let mut up = tx.prepare_cached(
            "INSERT INTO points_by_second (dataset, timestamp, blob1, _sample_interval, _hearth_rows) \
             VALUES (?1, ?2, ?3, ?4, ?4) ON CONFLICT DO UPDATE SET \
             _sample_interval = _sample_interval + excluded._sample_interval, \
             _hearth_rows = _hearth_rows + excluded._hearth_rows",
        )?;
        for ((dataset, at, blob1), n) in &rollup {
            up.execute(rusqlite::params![dataset, at, blob1.as_ref(), n])?;
        }
        tx.prepare_cached("UPDATE rollup_mark SET points_rowid = ?1")?
            .execute([last_rowid])?;
    }
    tx.commit()
}
