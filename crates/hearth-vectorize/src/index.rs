//! One index: its SQLite file, its vectors in memory, the graph over them.

use std::borrow::Cow;
use std::collections::{BinaryHeap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread::JoinHandle;

use hearth_core::data_dir::path_component;
use hearth_core::{DataDir, SharedClock};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde_json::{Map, Value};

use crate::distance::Metric;
use crate::filter::{Filter, IndexType, Indexed, Key, MetadataIndex, extract};
use crate::hnsw::{self, Graph, Near, QueryCodes, Vectors};
use crate::snapshot;
use crate::{Op, VectorizeError, VectorizeLimits, code};

/// Below this many candidates a query scans them all.
const EXACT_BELOW: usize = 4096;
/// A filtered walk's cost, in scan distances, times the share that passes
/// (see [`scan_is_cheaper`]): an unfiltered walk computes about 20 * ef
/// distances, each dearer than a scan's (random reads, heap work).
const SCAN_COST: usize = 32 * EF_SEARCH;
/// The fewest candidates a scan ranks by exact distance.
const RERANK_MIN: usize = 160;
/// Candidates the graph walk keeps (at least topK).
const EF_SEARCH: usize = 96;
/// `$ne`, `$nin` and ranges read posting lists when a property has at
/// most one value per this many live vectors, else its column.
const FEW_VALUES: usize = 16;

const SCHEMA: &[&str] = &[
    "
CREATE TABLE config (
    name TEXT NOT NULL,
    dimensions INTEGER NOT NULL,
    metric TEXT NOT NULL,
    description TEXT,
    created_ms INTEGER NOT NULL
);
CREATE TABLE metadata_indexes (
    property_name TEXT PRIMARY KEY,
    index_type TEXT NOT NULL
);
CREATE TABLE vectors (
    id TEXT PRIMARY KEY,
    namespace TEXT,
    vals BLOB NOT NULL,
    metadata TEXT,
    indexed TEXT,
    seq INTEGER NOT NULL
);
CREATE INDEX vectors_seq ON vectors(seq);
CREATE TABLE deletions (
    seq INTEGER NOT NULL,
    id TEXT NOT NULL
);
CREATE INDEX deletions_seq ON deletions(seq);
CREATE TABLE mutations (
    seq INTEGER PRIMARY KEY,
    mutation_id TEXT NOT NULL,
    at_ms INTEGER NOT NULL
);
",
    "
CREATE TABLE graph_snapshot (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    nodes INTEGER NOT NULL,
    checksum INTEGER NOT NULL,
    data BLOB NOT NULL
);
",
];

/// The indexer writes a snapshot of the graph once it is idle and this
/// many nodes were linked or repaired since the last one...
const SNAPSHOT_AFTER_CHANGES: u64 = 1000;
/// ...or this long after the last one, if anything changed.
const SNAPSHOT_AFTER: std::time::Duration = std::time::Duration::from_secs(30);

/// What an index is created with.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexConfig {
    pub dimensions: usize,
    pub metric: Metric,
    pub description: Option<String>,
}

/// `describe()` and `hearth vectorize get/info`.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexInfo {
    pub name: String,
    pub config: IndexConfig,
    pub created_ms: u64,
    pub vector_count: usize,
    pub processed_up_to_mutation: Option<String>,
    pub processed_up_to_ms: Option<u64>,
}

/// A vector handed to insert or upsert.
#[derive(Debug, Clone, PartialEq)]
pub struct NewVector {
    pub id: String,
    pub values: Vec<f64>,
    pub namespace: Option<String>,
    pub metadata: Option<Map<String, Value>>,
}

/// A vector as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredVector {
    pub id: String,
    pub values: Vec<f32>,
    pub namespace: Option<String>,
    pub metadata: Option<Map<String, Value>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// Only ids not yet in the index are written.
    Insert,
    /// Every vector replaces any with its id.
    Upsert,
}

/// What a write returns.
#[derive(Debug, Clone, PartialEq)]
pub struct Mutation {
    pub mutation_id: String,
    /// The ids written (for insert, those that were new).
    pub ids: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReturnMetadata {
    #[default]
    None,
    Indexed,
    All,
}

#[derive(Debug, Clone, PartialEq)]
pub struct QueryOptions {
    pub top_k: usize,
    pub namespace: Option<String>,
    pub return_values: bool,
    pub return_metadata: ReturnMetadata,
    pub filter: Option<Value>,
}

impl Default for QueryOptions {
    fn default() -> Self {
        Self {
            top_k: 5,
            namespace: None,
            return_values: false,
            return_metadata: ReturnMetadata::None,
            filter: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Match {
    pub id: String,
    pub score: f64,
    pub values: Option<Vec<f32>>,
    pub metadata: Option<Value>,
    pub namespace: Option<String>,
}

/// One page of ids, in id order.
#[derive(Debug, Clone, PartialEq)]
pub struct ListPage {
    pub ids: Vec<String>,
    pub total_count: usize,
    pub next_cursor: Option<String>,
}

#[derive(Debug)]
struct Slot {
    id: Box<str>,
    /// The mutation that wrote this version of the vector.
    seq: i64,
    /// 0 for none; else `namespaces[ns - 1]`.
    ns: u32,
    alive: bool,
    metadata: Option<Box<str>>,
    indexed: Vec<(Box<str>, Indexed)>,
}

#[derive(Debug)]
struct State {
    dims: usize,
    metric: Metric,
    /// Every slot's values, `dims` per slot, as written (f32).
    data: Vec<f32>,
    inv_norms: Vec<f32>,
    /// Every slot's values as int8 codes, `dims` per slot, and each
    /// slot's scale: scans read these first (see [`Vectors::approx`]).
    codes: Vec<i8>,
    scales: Vec<f32>,
    /// The largest squared norm written so far (dot-product graphs link
    /// by it, see [`Vectors::between`]); never lowered by deletes.
    max_sq_norm: f32,
    slots: Vec<Slot>,
    by_id: HashMap<Box<str>, u32>,
    namespaces: Vec<Box<str>>,
    ns_ids: HashMap<Box<str>, u32>,
    graph: Graph,
    live: usize,
    metadata_indexes: Vec<MetadataIndex>,
    /// Each indexed property's values by slot (shorter than `slots` when
    /// the last vectors lack it): filters read these, not the slots.
    columns: HashMap<Box<str>, Vec<Option<Indexed>>>,
    /// The metadata indexes' posting lists: per indexed property, per
    /// value, the live slots holding it, ascending. `$eq` and `$in`
    /// clauses start from these instead of scanning every slot.
    postings: HashMap<Box<str>, HashMap<Key, Vec<u32>>>,
    /// The live slots of each namespace (`ns_slots[ns - 1]`), ascending.
    ns_slots: Vec<Vec<u32>>,
    strings: std::collections::HashSet<Arc<str>>,
    /// Dead slots the graph still links to (waypoints until repaired).
    dead_linked: usize,
    /// Graph changes (nodes linked, repairs) since the index was opened.
    changes: u64,
    /// The last mutation this process has applied.
    seq: i64,
}

impl State {
    fn vectors(&self) -> Vectors<'_> {
        Vectors {
            data: &self.data,
            inv_norms: &self.inv_norms,
            codes: &self.codes,
            scales: &self.scales,
            max_sq_norm: self.max_sq_norm,
            dims: self.dims,
            metric: self.metric,
        }
    }

    fn ns_id(&mut self, ns: Option<&str>) -> u32 {
        let Some(ns) = ns else { return 0 };
        if let Some(&id) = self.ns_ids.get(ns) {
            return id;
        }
        self.namespaces.push(ns.into());
        self.ns_slots.push(Vec::new());
        let id = self.namespaces.len() as u32;
        self.ns_ids.insert(ns.into(), id);
        id
    }

    fn namespace(&self, ns: u32) -> Option<String> {
        (ns > 0).then(|| self.namespaces[ns as usize - 1].to_string())
    }

    fn remove(&mut self, id: &str) -> bool {
        if let Some(slot) = self.by_id.remove(id) {
            let s = &mut self.slots[slot as usize];
            s.alive = false;
            self.live -= 1;
            self.dead_linked += usize::from((slot as usize) < self.graph.len());
            if s.ns > 0 {
                unlist(&mut self.ns_slots[s.ns as usize - 1], slot);
            }
            for (k, v) in &s.indexed {
                if let Some(lists) = self.postings.get_mut(k) {
                    let key = v.key();
                    if let Some(list) = lists.get_mut(&key) {
                        unlist(list, slot);
                        if list.is_empty() {
                            lists.remove(&key);
                        }
                    }
                }
            }
            true
        } else {
            false
        }
    }

    /// A slot for a graph node whose vector is gone (replaced or deleted
    /// after a snapshot): dead, its values zero, until repaired away.
    fn add_dead(&mut self) {
        self.data.extend(std::iter::repeat_n(0.0, self.dims));
        self.inv_norms.push(0.0);
        self.codes.extend(std::iter::repeat_n(0, self.dims));
        self.scales.push(0.0);
        self.slots.push(Slot {
            id: "".into(),
            seq: 0,
            ns: 0,
            alive: false,
            metadata: None,
            indexed: Vec::new(),
        });
    }

    /// Counts the dead slots the graph still links to.
    fn count_dead_linked(&self) -> usize {
        (0..self.graph.len() as u32)
            .filter(|&x| {
                !self.slots[x as usize].alive && self.graph.links(x).iter().any(|l| !l.is_empty())
            })
            .count()
    }

    /// Unlinks every dead slot from the graph at once.
    fn repair_now(&mut self) {
        if self.dead_linked == 0 {
            return;
        }
        let slots = &self.slots;
        let plan = self
            .graph
            .plan_repair(&|x| !slots[x as usize].alive, self.vectors());
        self.graph.repair(plan);
        self.dead_linked = self.count_dead_linked();
        self.changes += 1;
    }

    /// The same index without its dead slots, renumbered in order; the
    /// graph must have been repaired (no links to dead slots).
    fn compacted(self) -> State {
        let keep: Vec<bool> = self.slots.iter().map(|s| s.alive).collect();
        let mut next = State {
            dims: self.dims,
            metric: self.metric,
            data: Vec::with_capacity(self.live * self.dims),
            inv_norms: Vec::with_capacity(self.live),
            codes: Vec::with_capacity(self.live * self.dims),
            scales: Vec::with_capacity(self.live),
            max_sq_norm: 0.0,
            slots: Vec::with_capacity(self.live),
            by_id: HashMap::with_capacity(self.live),
            namespaces: Vec::new(),
            ns_ids: HashMap::new(),
            graph: self.graph.compact(&keep),
            live: 0,
            metadata_indexes: self.metadata_indexes.clone(),
            columns: HashMap::new(),
            postings: HashMap::new(),
            ns_slots: Vec::new(),
            strings: std::collections::HashSet::new(),
            dead_linked: 0,
            changes: self.changes + 1,
            seq: self.seq,
        };
        for (slot, s) in self.slots.into_iter().enumerate() {
            if !s.alive {
                continue;
            }
            let start = slot * self.dims;
            next.add(Row {
                id: s.id.into(),
                seq: s.seq,
                namespace: (s.ns > 0).then(|| self.namespaces[s.ns as usize - 1].to_string()),
                values: self.data[start..start + self.dims].to_vec(),
                metadata: s.metadata.map(String::from),
                indexed: s.indexed,
            });
        }
        next
    }

    fn add(&mut self, row: Row) {
        self.remove(&row.id);
        let ns = self.ns_id(row.namespace.as_deref());
        let slot = self.slots.len() as u32;
        let sq_norm = crate::distance::dot(&row.values, &row.values);
        self.max_sq_norm = self.max_sq_norm.max(sq_norm);
        let norm = sq_norm.sqrt();
        self.inv_norms
            .push(if norm > 0.0 { 1.0 / norm } else { 0.0 });
        self.data.extend_from_slice(&row.values);
        let scale = crate::distance::quantise(&row.values, &mut self.codes);
        self.scales.push(scale);
        self.by_id.insert(row.id.as_str().into(), slot);
        let mut indexed = row.indexed;
        for (k, v) in &mut indexed {
            if let Indexed::Str(text) = v {
                match self.strings.get(&**text) {
                    Some(shared) => *text = shared.clone(),
                    None => {
                        self.strings.insert(text.clone());
                    }
                }
            }
            let column = self.columns.entry(k.clone()).or_default();
            column.resize(slot as usize, None);
            column.push(Some(v.clone()));
            self.postings
                .entry(k.clone())
                .or_default()
                .entry(v.key())
                .or_default()
                .push(slot);
        }
        if ns > 0 {
            self.ns_slots[ns as usize - 1].push(slot);
        }
        self.slots.push(Slot {
            id: row.id.into(),
            seq: row.seq,
            ns,
            alive: true,
            metadata: row.metadata.map(Into::into),
            indexed,
        });
        self.live += 1;
    }
}

/// What [`VectorIndex::read_disk`] read.
struct Disk {
    indexes: Vec<MetadataIndex>,
    deleted: Vec<String>,
    rows: Vec<Row>,
    last: i64,
}

fn empty_state(dims: usize, metric: Metric) -> State {
    State {
        dims,
        metric,
        data: Vec::new(),
        inv_norms: Vec::new(),
        codes: Vec::new(),
        scales: Vec::new(),
        max_sq_norm: 0.0,
        slots: Vec::new(),
        by_id: HashMap::new(),
        namespaces: Vec::new(),
        ns_ids: HashMap::new(),
        graph: Graph::default(),
        live: 0,
        metadata_indexes: Vec::new(),
        columns: HashMap::new(),
        postings: HashMap::new(),
        ns_slots: Vec::new(),
        strings: std::collections::HashSet::new(),
        dead_linked: 0,
        changes: 0,
        seq: 0,
    }
}

/// Takes `slot` out of an ascending list.
fn unlist(list: &mut Vec<u32>, slot: u32) {
    if let Ok(at) = list.binary_search(&slot) {
        list.remove(at);
    }
}

/// A vector row on its way between SQLite and memory.
struct Row {
    id: String,
    seq: i64,
    namespace: Option<String>,
    values: Vec<f32>,
    metadata: Option<String>,
    indexed: Vec<(Box<str>, Indexed)>,
}

/// An open index.
pub struct VectorIndex {
    name: String,
    path: PathBuf,
    config: IndexConfig,
    created_ms: u64,
    limits: VectorizeLimits,
    clock: SharedClock,
    conn: Mutex<Connection>,
    state: RwLock<State>,
    /// Wakes the indexer when slots wait for the graph.
    work: (Mutex<bool>, Condvar),
    data_version: Mutex<i64>,
    /// `State::changes` when the last snapshot was taken.
    snapshot_at: Mutex<u64>,
    /// How restricted queries search (see [`SearchPath`]).
    path_choice: std::sync::atomic::AtomicU8,
}

/// How a query with a namespace or filter is searched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchPath {
    /// Exact over the passing vectors when few pass, else the filtered
    /// graph walk (the default).
    Auto = 0,
    /// Always exact over the passing vectors.
    Exact = 1,
    /// The filtered graph walk whenever the graph has nodes.
    Graph = 2,
}

impl std::fmt::Debug for VectorIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VectorIndex")
            .field("name", &self.name)
            .field("path", &self.path)
            .finish()
    }
}

/// `<data>/vectorize/<index>.sqlite`.
pub fn index_path(data_dir: &DataDir, name: &str) -> PathBuf {
    data_dir
        .root()
        .join("vectorize")
        .join(format!("{}.sqlite", path_component(name)))
}

fn storage(path: &Path) -> impl Fn(rusqlite::Error) -> VectorizeError + '_ {
    move |e| VectorizeError::Storage {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

fn check_index_name(name: &str, limits: &VectorizeLimits) -> Result<(), VectorizeError> {
    let ok = name.len() <= limits.max_index_name_bytes
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(VectorizeError::Invalid(format!(
            "invalid index name \"{name}\": it must start with a lowercase letter, hold only lowercase letters, digits and dashes, and be at most {} bytes",
            limits.max_index_name_bytes
        )))
    }
}

/// Creates index `name` under `data_dir`.
pub fn create_index(
    data_dir: &DataDir,
    name: &str,
    config: &IndexConfig,
    clock: SharedClock,
) -> Result<VectorIndex, VectorizeError> {
    let limits = VectorizeLimits::default();
    check_index_name(name, &limits)?;
    if config.dimensions == 0 || config.dimensions > limits.max_dimensions {
        return Err(VectorizeError::Invalid(format!(
            "invalid dimensions {}: an index has from 1 to {} dimensions",
            config.dimensions, limits.max_dimensions
        )));
    }
    let path = index_path(data_dir, name);
    if path.exists() {
        return Err(VectorizeError::IndexExists(name.into()));
    }
    let mut conn = open_conn(&path)?;
    let err = storage(&path);
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(&err)?;
    let existing: i64 = tx
        .query_row("SELECT count(*) FROM config", [], |r| r.get(0))
        .map_err(&err)?;
    if existing > 0 {
        return Err(VectorizeError::IndexExists(name.into()));
    }
    tx.execute(
        "INSERT INTO config (name, dimensions, metric, description, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            name,
            config.dimensions as i64,
            config.metric.as_str(),
            config.description,
            clock.now_ms() as i64
        ],
    )
    .map_err(&err)?;
    tx.commit().map_err(&err)?;
    drop(conn);
    open_index(data_dir, name, clock)
}

fn open_conn(path: &Path) -> Result<Connection, VectorizeError> {
    let mut conn = hearth_core::sqlite::open(path).map_err(|e| VectorizeError::Storage {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    hearth_core::sqlite::migrate(&mut conn, path, SCHEMA).map_err(|e| VectorizeError::Storage {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    Ok(conn)
}

/// Opens index `name` of `data_dir`, reading every vector into memory.
/// The graph is empty until an [`Indexer`] builds it; queries are exact
/// meanwhile.
pub fn open_index(
    data_dir: &DataDir,
    name: &str,
    clock: SharedClock,
) -> Result<VectorIndex, VectorizeError> {
    let path = index_path(data_dir, name);
    if !path.exists() {
        return Err(VectorizeError::NoSuchIndex(name.into()));
    }
    let conn = open_conn(&path)?;
    let row = conn
        .query_row(
            "SELECT dimensions, metric, description, created_ms FROM config",
            [],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            },
        )
        .optional()
        .map_err(storage(&path))?;
    let Some((dims, metric, description, created_ms)) = row else {
        return Err(VectorizeError::NoSuchIndex(name.into()));
    };
    let metric: Metric = metric
        .parse()
        .map_err(|e: String| VectorizeError::Storage {
            path: path.display().to_string(),
            message: e,
        })?;
    let config = IndexConfig {
        dimensions: dims as usize,
        metric,
        description,
    };
    let state = empty_state(dims as usize, metric);
    let index = VectorIndex {
        name: name.into(),
        path,
        config,
        created_ms: created_ms as u64,
        limits: VectorizeLimits::default(),
        clock,
        conn: Mutex::new(conn),
        state: RwLock::new(state),
        work: (Mutex::new(false), Condvar::new()),
        data_version: Mutex::new(-1),
        snapshot_at: Mutex::new(0),
        path_choice: std::sync::atomic::AtomicU8::new(SearchPath::Auto as u8),
    };
    index.load()?;
    Ok(index)
}

/// The names of the indexes under `data_dir`, sorted.
pub fn list_indexes(
    data_dir: &DataDir,
    clock: SharedClock,
) -> Result<Vec<IndexInfo>, VectorizeError> {
    let dir = data_dir.root().join("vectorize");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(Vec::new());
    };
    let mut names = Vec::new();
    for entry in entries.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        if let Some(stem) = file.strip_suffix(".sqlite")
            && !stem.starts_with('.')
        {
            // Index names are path-safe as they are.
            names.push(stem.to_owned());
        }
    }
    names.sort();
    names
        .iter()
        .map(|n| open_index(data_dir, n, clock.clone()).map(|ix| ix.info()))
        .collect()
}

/// Deletes index `name` and its vectors.
pub fn delete_index(data_dir: &DataDir, name: &str) -> Result<(), VectorizeError> {
    let path = index_path(data_dir, name);
    if !path.exists() {
        return Err(VectorizeError::NoSuchIndex(name.into()));
    }
    for suffix in ["-wal", "-shm", ""] {
        let mut p = path.clone().into_os_string();
        p.push(suffix);
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(VectorizeError::Storage {
                    path: path.display().to_string(),
                    message: e.to_string(),
                });
            }
        }
    }
    Ok(())
}

fn blob_of(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn values_of(blob: &[u8]) -> Vec<f32> {
    blob.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn indexed_json(indexed: &[(Box<str>, Indexed)]) -> Option<String> {
    if indexed.is_empty() {
        return None;
    }
    let map: Map<String, Value> = indexed
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_json()))
        .collect();
    Some(Value::Object(map).to_string())
}

fn indexed_of(json: Option<&str>, indexes: &[MetadataIndex]) -> Vec<(Box<str>, Indexed)> {
    let Some(Ok(Value::Object(map))) = json.map(serde_json::from_str::<Value>) else {
        return Vec::new();
    };
    // Each value is read back with the type it was indexed as.
    let types: Vec<MetadataIndex> = map
        .iter()
        .filter_map(|(k, v)| {
            let ty = match v {
                Value::String(_) => IndexType::String,
                Value::Number(_) => IndexType::Number,
                Value::Bool(_) => IndexType::Boolean,
                _ => return None,
            };
            Some(MetadataIndex {
                property_name: k.clone(),
                index_type: ty,
            })
        })
        .collect();
    let _ = indexes;
    // Property names may hold dots: look each one up as a whole key.
    types
        .into_iter()
        .filter_map(|ix| {
            let v = map.get(&ix.property_name)?;
            let i = match v {
                Value::String(s) => Indexed::Str(Arc::from(s.as_str())),
                Value::Number(n) => Indexed::Num(n.as_f64()?),
                Value::Bool(b) => Indexed::Bool(*b),
                _ => return None,
            };
            Some((ix.property_name.into_boxed_str(), i))
        })
        .collect()
}

impl VectorIndex {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn config(&self) -> &IndexConfig {
        &self.config
    }

    pub fn limits(&self) -> &VectorizeLimits {
        &self.limits
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> VectorizeError + '_ {
        storage(&self.path)
    }

    /// Applies what another process (a `hearth vectorize` command beside
    /// a running server) committed since this one last looked.
    fn catch_up(&self) -> Result<(), VectorizeError> {
        let conn = self.conn();
        let version: i64 = conn
            .query_row("PRAGMA data_version", [], |r| r.get(0))
            .map_err(self.err())?;
        let mut seen = self.data_version.lock().unwrap_or_else(|p| p.into_inner());
        if *seen == version {
            return Ok(());
        }
        let from = self.read().seq;
        self.apply_from_disk(&conn, from, i64::MAX)?;
        *seen = version;
        Ok(())
    }

    /// Reads mutations `from < seq < to` from disk.
    fn read_disk(&self, conn: &Connection, from: i64, to: i64) -> Result<Disk, VectorizeError> {
        let err = self.err();
        let mut ix_stmt = conn
            .prepare_cached("SELECT property_name, index_type FROM metadata_indexes ORDER BY rowid")
            .map_err(&err)?;
        let indexes: Vec<MetadataIndex> = ix_stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(&err)?
            .filter_map(Result::ok)
            .filter_map(|(p, t)| {
                Some(MetadataIndex {
                    property_name: p,
                    index_type: t.parse().ok()?,
                })
            })
            .collect();
        let mut del_stmt = conn
            .prepare_cached("SELECT id FROM deletions WHERE seq > ?1 AND seq < ?2")
            .map_err(&err)?;
        let deleted: Vec<String> = if from > 0 {
            del_stmt
                .query_map(params![from, to], |r| r.get(0))
                .map_err(&err)?
                .collect::<Result<_, _>>()
                .map_err(&err)?
        } else {
            Vec::new()
        };
        let mut stmt = conn
            .prepare_cached(
                "SELECT id, namespace, vals, metadata, indexed, seq FROM vectors WHERE seq > ?1 AND seq < ?2 ORDER BY seq, rowid",
            )
            .map_err(&err)?;
        let dims = self.config.dimensions;
        let rows: Vec<Row> = stmt
            .query_map(params![from, to], |r| {
                let blob: Vec<u8> = r.get(2)?;
                let indexed: Option<String> = r.get(4)?;
                Ok(Row {
                    id: r.get(0)?,
                    seq: r.get(5)?,
                    namespace: r.get(1)?,
                    values: values_of(&blob),
                    metadata: r.get(3)?,
                    indexed: indexed_of(indexed.as_deref(), &indexes),
                })
            })
            .map_err(&err)?
            .filter(|r| r.as_ref().map_or(true, |r| r.values.len() == dims))
            .collect::<Result<_, _>>()
            .map_err(&err)?;
        let last: i64 = conn
            .query_row(
                "SELECT coalesce(max(seq), 0) FROM mutations WHERE seq < ?1",
                params![to],
                |r| r.get(0),
            )
            .map_err(&err)?;
        Ok(Disk {
            indexes,
            deleted,
            rows,
            last,
        })
    }

    /// Reads mutations `from < seq < to` from disk into memory.
    fn apply_from_disk(&self, conn: &Connection, from: i64, to: i64) -> Result<(), VectorizeError> {
        let disk = self.read_disk(conn, from, to)?;
        let mut state = self.write();
        state.metadata_indexes = disk.indexes;
        for id in &disk.deleted {
            state.remove(id);
        }
        let grew = !disk.rows.is_empty();
        for row in disk.rows {
            state.add(row);
        }
        state.seq = state.seq.max(disk.last);
        drop(state);
        if grew {
            self.wake();
        }
        Ok(())
    }

    /// Reads the index from disk on open: the graph from its snapshot
    /// when one is there and sound, every vector, and what changed since
    /// the snapshot (those vectors wait for the indexer; nodes whose
    /// vector was replaced or deleted are repaired away).
    fn load(&self) -> Result<(), VectorizeError> {
        let conn = self.conn();
        let err = self.err();
        let version: i64 = conn
            .query_row("PRAGMA data_version", [], |r| r.get(0))
            .map_err(&err)?;
        let disk = self.read_disk(&conn, 0, i64::MAX)?;
        let snapshot: Option<(i64, Vec<u8>)> = conn
            .query_row(
                "SELECT checksum, data FROM graph_snapshot WHERE id = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(&err)?;
        let dims = self.config.dimensions;
        let decoded = snapshot.and_then(|(sum, blob)| {
            let result = if snapshot::checksum(&blob) as i64 != sum {
                Err("its checksum does not match".to_string())
            } else {
                snapshot::decode(&blob, dims)
            };
            match result {
                Ok(g) => Some(g),
                Err(e) => {
                    eprintln!(
                        "vectorize index \"{}\": graph snapshot not used ({e}); rebuilding the graph",
                        self.name
                    );
                    None
                }
            }
        });
        let mut state = self.write();
        state.metadata_indexes = disk.indexes;
        let mut rows: Vec<Option<Row>> = disk.rows.into_iter().map(Some).collect();
        if let Some((graph, nodes)) = decoded {
            let at: HashMap<&str, usize> = rows
                .iter()
                .enumerate()
                .filter_map(|(i, r)| r.as_ref().map(|r| (r.id.as_str(), i)))
                .collect();
            let picks: Vec<Option<usize>> = nodes
                .iter()
                .map(|n| {
                    let (id, seq) = n.as_ref()?;
                    let &i = at.get(&**id)?;
                    (rows[i].as_ref()?.seq == *seq).then_some(i)
                })
                .collect();
            drop(at);
            let mut dead = 0;
            for pick in picks {
                match pick.and_then(|i| rows[i].take()) {
                    Some(row) => state.add(row),
                    None => {
                        state.add_dead();
                        dead += 1;
                    }
                }
            }
            state.graph = graph;
            if dead > 0 {
                state.dead_linked = state.count_dead_linked();
                state.repair_now();
                let old = std::mem::replace(&mut *state, empty_state(dims, self.config.metric));
                *state = old.compacted();
            }
        }
        for row in rows.into_iter().flatten() {
            state.add(row);
        }
        state.seq = disk.last;
        drop(state);
        *self.data_version.lock().unwrap_or_else(|p| p.into_inner()) = version;
        Ok(())
    }

    /// Writes the graph's snapshot (see [`crate::snapshot`]) if it changed
    /// since the last one; returns whether it wrote one.
    pub fn write_snapshot(&self) -> Result<bool, VectorizeError> {
        if !self.path.exists() {
            // Deleted under a running server.
            return Ok(false);
        }
        let (blob, nodes, changes) = {
            let state = self.read();
            if state.changes == *self.snapshot_at.lock().unwrap_or_else(|p| p.into_inner()) {
                return Ok(false);
            }
            let blob = snapshot::encode(&state.graph, state.dims, &|node| {
                let s = &state.slots[node as usize];
                s.alive.then(|| (s.id.clone(), s.seq))
            });
            (blob, state.graph.len(), state.changes)
        };
        let sum = snapshot::checksum(&blob) as i64;
        let err = self.err();
        self.conn()
            .execute(
                "INSERT OR REPLACE INTO graph_snapshot (id, nodes, checksum, data) VALUES (1, ?1, ?2, ?3)",
                params![nodes as i64, sum, blob],
            )
            .map_err(&err)?;
        *self.snapshot_at.lock().unwrap_or_else(|p| p.into_inner()) = changes;
        Ok(true)
    }

    /// Unlinks deleted and replaced vectors from the graph (they are
    /// skipped by searches meanwhile); returns whether there were any.
    /// The plan is made under the read lock, so queries go on.
    pub fn repair_graph(&self) -> bool {
        let plan = {
            let state = self.read();
            if state.dead_linked == 0 {
                return false;
            }
            let slots = &state.slots;
            state
                .graph
                .plan_repair(&|x| !slots[x as usize].alive, state.vectors())
        };
        // Only this thread changes the graph, so the plan still fits it.
        let mut state = self.write();
        state.graph.repair(plan);
        state.dead_linked = state.count_dead_linked();
        state.changes += 1;
        true
    }

    /// Fixes how restricted queries search, for tests and measurements
    /// that compare the two paths; [`SearchPath::Auto`] is the default.
    pub fn set_search_path(&self, path: SearchPath) {
        self.path_choice
            .store(path as u8, std::sync::atomic::Ordering::Relaxed);
    }

    /// Graph changes not yet in a snapshot.
    pub fn unsaved_changes(&self) -> u64 {
        let at = *self.snapshot_at.lock().unwrap_or_else(|p| p.into_inner());
        self.read().changes.saturating_sub(at)
    }

    /// Dead slots the graph still links to (0 once repaired).
    pub fn dead_in_graph(&self) -> usize {
        self.read().dead_linked
    }

    fn wake(&self) {
        let (lock, cv) = &self.work;
        drop(lock.lock().unwrap_or_else(|p| p.into_inner()));
        cv.notify_all();
    }

    /// Checks and converts one vector for writing.
    fn check_vector(
        &self,
        op: Op,
        v: &NewVector,
    ) -> Result<(Vec<f32>, Option<String>), VectorizeError> {
        let l = &self.limits;
        let bad = |code, m: String| VectorizeError::rejected(op, code, m);
        if v.id.is_empty() {
            return Err(bad(code::BAD_VECTOR, "vector id must not be empty".into()));
        }
        if v.id.len() > l.max_id_bytes {
            return Err(bad(
                code::BAD_VECTOR,
                format!(
                    "vector id \"{}\" is {} bytes, over the limit of {} bytes",
                    v.id,
                    v.id.len(),
                    l.max_id_bytes
                ),
            ));
        }
        if v.values.len() != self.config.dimensions {
            return Err(bad(
                code::DIMENSIONS,
                format!(
                    "invalid vector for id=\"{}\", expected {} dimensions, and got {} dimensions",
                    v.id,
                    self.config.dimensions,
                    v.values.len()
                ),
            ));
        }
        if v.values.iter().any(|x| !x.is_finite()) {
            return Err(bad(
                code::BAD_VECTOR,
                format!(
                    "invalid vector for id=\"{}\": values must be finite numbers",
                    v.id
                ),
            ));
        }
        if let Some(ns) = &v.namespace
            && (ns.is_empty() || ns.len() > l.max_namespace_bytes)
        {
            return Err(bad(
                code::BAD_VECTOR,
                format!(
                    "invalid namespace \"{ns}\" for id=\"{}\": a namespace is 1 to {} bytes",
                    v.id, l.max_namespace_bytes
                ),
            ));
        }
        let metadata = match &v.metadata {
            None => None,
            Some(m) => {
                for key in m.keys() {
                    if key.is_empty()
                        || key.contains('.')
                        || key.contains('"')
                        || key.starts_with('$')
                    {
                        return Err(bad(
                            code::BAD_VECTOR,
                            format!(
                                "invalid metadata key \"{key}\" for id=\"{}\": keys must be non-empty, without '.' or '\"', and not start with '$'",
                                v.id
                            ),
                        ));
                    }
                }
                let text = Value::Object(m.clone()).to_string();
                if text.len() > l.max_metadata_bytes {
                    return Err(bad(
                        code::BAD_VECTOR,
                        format!(
                            "metadata for id=\"{}\" is {} bytes, over the limit of {} bytes",
                            v.id,
                            text.len(),
                            l.max_metadata_bytes
                        ),
                    ));
                }
                Some(text)
            }
        };
        Ok((v.values.iter().map(|&x| x as f32).collect(), metadata))
    }

    /// Inserts or upserts `vectors` (at most `max_batch` of them; the CLI
    /// passes `max_batch_http`).
    pub fn write_vectors(
        &self,
        mode: WriteMode,
        vectors: &[NewVector],
        max_batch: usize,
    ) -> Result<Mutation, VectorizeError> {
        let op = match mode {
            WriteMode::Insert => Op::Insert,
            WriteMode::Upsert => Op::Upsert,
        };
        if vectors.is_empty() {
            return Err(VectorizeError::rejected(
                op,
                code::BATCH,
                "no vectors given: pass an array of at least one vector",
            ));
        }
        if vectors.len() > max_batch {
            return Err(VectorizeError::rejected(
                op,
                code::BATCH,
                format!(
                    "too many vectors in one call: {} given, the limit is {max_batch}",
                    vectors.len()
                ),
            ));
        }
        let mut checked = Vec::with_capacity(vectors.len());
        for v in vectors {
            checked.push(self.check_vector(op, v)?);
        }
        self.catch_up()?;
        let indexes = self.read().metadata_indexes.clone();
        let mutation_id = uuid::Uuid::new_v4().to_string();
        let now = self.clock.now_ms() as i64;
        let err = self.err();
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&err)?;
        let seq: i64 = tx
            .query_row("SELECT coalesce(max(seq), 0) + 1 FROM mutations", [], |r| {
                r.get(0)
            })
            .map_err(&err)?;
        tx.execute(
            "INSERT INTO mutations (seq, mutation_id, at_ms) VALUES (?1, ?2, ?3)",
            params![seq, mutation_id, now],
        )
        .map_err(&err)?;
        // Upsert: the last of duplicate ids wins; insert: the first, and
        // ids already stored are left alone.
        let mut order: Vec<usize> = Vec::new();
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (i, v) in vectors.iter().enumerate() {
            match seen.get(v.id.as_str()) {
                Some(&at) if mode == WriteMode::Upsert => order[at] = i,
                Some(_) => {}
                None => {
                    seen.insert(&v.id, order.len());
                    order.push(i);
                }
            }
        }
        let mut rows = Vec::with_capacity(order.len());
        {
            let mut exists = tx
                .prepare_cached("SELECT 1 FROM vectors WHERE id = ?1")
                .map_err(&err)?;
            let mut put = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO vectors (id, namespace, vals, metadata, indexed, seq) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(&err)?;
            for i in order {
                let v = &vectors[i];
                if mode == WriteMode::Insert && exists.exists(params![v.id]).map_err(&err)? {
                    continue;
                }
                let (values, metadata) = checked[i].clone();
                let indexed = extract(v.metadata.as_ref(), &indexes);
                put.execute(params![
                    v.id,
                    v.namespace,
                    blob_of(&values),
                    metadata,
                    indexed_json(&indexed),
                    seq
                ])
                .map_err(&err)?;
                rows.push(Row {
                    id: v.id.clone(),
                    seq,
                    namespace: v.namespace.clone(),
                    values,
                    metadata,
                    indexed,
                });
            }
        }
        tx.commit().map_err(&err)?;
        let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
        self.apply_own(&conn, seq, |state| {
            for row in rows {
                state.add(row);
            }
        })?;
        drop(conn);
        self.wake();
        Ok(Mutation { mutation_id, ids })
    }

    /// Applies this process's own mutation `seq`, first catching up on
    /// any another process committed between the last one seen and it.
    fn apply_own(
        &self,
        conn: &Connection,
        seq: i64,
        apply: impl FnOnce(&mut State),
    ) -> Result<(), VectorizeError> {
        let from = self.read().seq;
        if from + 1 < seq {
            self.apply_from_disk(conn, from, seq)?;
        }
        let mut state = self.write();
        apply(&mut state);
        state.seq = seq;
        Ok(())
    }

    /// Deletes the vectors with these ids; returns the ids that existed.
    pub fn delete_by_ids(&self, ids: &[String]) -> Result<Mutation, VectorizeError> {
        if ids.len() > self.limits.max_ids {
            return Err(VectorizeError::rejected(
                Op::DeleteByIds,
                code::BATCH,
                format!(
                    "too many ids in one call: {} given, the limit is {}",
                    ids.len(),
                    self.limits.max_ids
                ),
            ));
        }
        self.catch_up()?;
        let mutation_id = uuid::Uuid::new_v4().to_string();
        let now = self.clock.now_ms() as i64;
        let err = self.err();
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&err)?;
        let seq: i64 = tx
            .query_row("SELECT coalesce(max(seq), 0) + 1 FROM mutations", [], |r| {
                r.get(0)
            })
            .map_err(&err)?;
        tx.execute(
            "INSERT INTO mutations (seq, mutation_id, at_ms) VALUES (?1, ?2, ?3)",
            params![seq, mutation_id, now],
        )
        .map_err(&err)?;
        let mut gone = Vec::new();
        {
            let mut del = tx
                .prepare_cached("DELETE FROM vectors WHERE id = ?1")
                .map_err(&err)?;
            let mut log = tx
                .prepare_cached("INSERT INTO deletions (seq, id) VALUES (?1, ?2)")
                .map_err(&err)?;
            for id in ids {
                if del.execute(params![id]).map_err(&err)? > 0 {
                    log.execute(params![seq, id]).map_err(&err)?;
                    gone.push(id.clone());
                }
            }
        }
        tx.commit().map_err(&err)?;
        let removed = gone.clone();
        self.apply_own(&conn, seq, |state| {
            for id in &removed {
                state.remove(id);
            }
        })?;
        Ok(Mutation {
            mutation_id,
            ids: gone,
        })
    }

    /// The stored vectors among `ids`, in the order asked.
    pub fn get_by_ids(&self, ids: &[String]) -> Result<Vec<StoredVector>, VectorizeError> {
        if ids.len() > self.limits.max_ids {
            return Err(VectorizeError::rejected(
                Op::GetByIds,
                code::BATCH,
                format!(
                    "too many ids in one call: {} given, the limit is {}",
                    ids.len(),
                    self.limits.max_ids
                ),
            ));
        }
        self.catch_up()?;
        let state = self.read();
        let vecs = state.vectors();
        Ok(ids
            .iter()
            .filter_map(|id| {
                let slot = *state.by_id.get(id.as_str())?;
                let s = &state.slots[slot as usize];
                Some(StoredVector {
                    id: id.clone(),
                    values: vecs.get(slot).to_vec(),
                    namespace: state.namespace(s.ns),
                    metadata: s.metadata.as_deref().and_then(|m| {
                        serde_json::from_str::<Value>(m)
                            .ok()
                            .and_then(|v| v.as_object().cloned())
                    }),
                })
            })
            .collect())
    }

    /// Up to `count` ids after `cursor`, in id order.
    pub fn list(&self, count: usize, cursor: Option<&str>) -> Result<ListPage, VectorizeError> {
        if count == 0 || count > self.limits.max_list_count {
            return Err(VectorizeError::rejected(
                Op::List,
                code::BAD_REQUEST,
                format!(
                    "invalid count {count}: a page holds 1 to {} ids",
                    self.limits.max_list_count
                ),
            ));
        }
        let err = self.err();
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached("SELECT id FROM vectors WHERE id > ?1 ORDER BY id LIMIT ?2")
            .map_err(&err)?;
        let mut ids: Vec<String> = stmt
            .query_map(params![cursor.unwrap_or(""), (count + 1) as i64], |r| {
                r.get(0)
            })
            .map_err(&err)?
            .collect::<Result<_, _>>()
            .map_err(&err)?;
        let total: i64 = conn
            .query_row("SELECT count(*) FROM vectors", [], |r| r.get(0))
            .map_err(&err)?;
        let truncated = ids.len() > count;
        ids.truncate(count);
        let next_cursor = if truncated { ids.last().cloned() } else { None };
        Ok(ListPage {
            ids,
            total_count: total as usize,
            next_cursor,
        })
    }

    /// The index's configuration, count and last mutation.
    pub fn info(&self) -> IndexInfo {
        let _ = self.catch_up();
        let vector_count = self.read().live;
        let last = self
            .conn()
            .query_row(
                "SELECT mutation_id, at_ms FROM mutations ORDER BY seq DESC LIMIT 1",
                [],
                |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)),
            )
            .optional()
            .ok()
            .flatten();
        IndexInfo {
            name: self.name.clone(),
            config: self.config.clone(),
            created_ms: self.created_ms,
            vector_count,
            processed_up_to_mutation: last.as_ref().map(|l| l.0.clone()),
            processed_up_to_ms: last.map(|l| l.1 as u64),
        }
    }

    pub fn metadata_indexes(&self) -> Result<Vec<MetadataIndex>, VectorizeError> {
        self.catch_up()?;
        Ok(self.read().metadata_indexes.clone())
    }

    /// Adds a metadata index; vectors written from now on are filterable
    /// on the property.
    pub fn create_metadata_index(&self, ix: &MetadataIndex) -> Result<(), VectorizeError> {
        let name = &ix.property_name;
        if name.is_empty() || name.starts_with('$') || name.contains('"') || name.len() > 512 {
            return Err(VectorizeError::Invalid(format!(
                "invalid property name \"{name}\": it must be non-empty, without '\"' and not start with '$'"
            )));
        }
        self.catch_up()?;
        let err = self.err();
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&err)?;
        let count: i64 = tx
            .query_row("SELECT count(*) FROM metadata_indexes", [], |r| r.get(0))
            .map_err(&err)?;
        let exists: bool = tx
            .prepare("SELECT 1 FROM metadata_indexes WHERE property_name = ?1")
            .and_then(|mut s| s.exists(params![name]))
            .map_err(&err)?;
        if exists {
            return Err(VectorizeError::Invalid(format!(
                "a metadata index on \"{name}\" already exists"
            )));
        }
        if count as usize >= self.limits.max_metadata_indexes {
            return Err(VectorizeError::Invalid(format!(
                "an index has at most {} metadata indexes",
                self.limits.max_metadata_indexes
            )));
        }
        tx.execute(
            "INSERT INTO metadata_indexes (property_name, index_type) VALUES (?1, ?2)",
            params![name, ix.index_type.as_str()],
        )
        .map_err(&err)?;
        tx.commit().map_err(&err)?;
        self.write().metadata_indexes.push(ix.clone());
        Ok(())
    }

    pub fn delete_metadata_index(&self, property_name: &str) -> Result<(), VectorizeError> {
        self.catch_up()?;
        let err = self.err();
        let n = self
            .conn()
            .execute(
                "DELETE FROM metadata_indexes WHERE property_name = ?1",
                params![property_name],
            )
            .map_err(&err)?;
        if n == 0 {
            return Err(VectorizeError::Invalid(format!(
                "no metadata index on \"{property_name}\""
            )));
        }
        self.write()
            .metadata_indexes
            .retain(|ix| ix.property_name != property_name);
        Ok(())
    }

    /// The stored vector of `id`, for `queryById`.
    pub fn vector_of(&self, id: &str) -> Result<Option<Vec<f64>>, VectorizeError> {
        self.catch_up()?;
        let state = self.read();
        Ok(state.by_id.get(id).map(|&slot| {
            state
                .vectors()
                .get(slot)
                .iter()
                .map(|&x| f64::from(x))
                .collect()
        }))
    }

    /// The `top_k` nearest vectors to `vector` that pass the namespace and
    /// filter, nearest first.
    pub fn query(
        &self,
        vector: &[f64],
        options: &QueryOptions,
    ) -> Result<Vec<Match>, VectorizeError> {
        let bad = |code, m: String| VectorizeError::rejected(Op::Query, code, m);
        let l = &self.limits;
        let heavy = options.return_values || options.return_metadata == ReturnMetadata::All;
        if options.top_k == 0 {
            return Err(bad(
                code::TOP_K,
                "invalid topK 0: topK must be at least 1".into(),
            ));
        }
        if heavy && options.top_k > l.max_top_k_with_values {
            return Err(bad(
                code::TOP_K,
                format!(
                    "with returnValues=true or returnMetadata=all, max top K is {}, but got {}",
                    l.max_top_k_with_values, options.top_k
                ),
            ));
        }
        if options.top_k > l.max_top_k {
            return Err(bad(
                code::TOP_K,
                format!("max top K is {}, but got {}", l.max_top_k, options.top_k),
            ));
        }
        if vector.len() != self.config.dimensions {
            return Err(bad(
                code::DIMENSIONS,
                format!(
                    "invalid query vector, expected {} dimensions, and got {} dimensions",
                    self.config.dimensions,
                    vector.len()
                ),
            ));
        }
        if vector.iter().any(|x| !x.is_finite()) {
            return Err(bad(
                code::BAD_REQUEST,
                "invalid query vector: values must be finite numbers".into(),
            ));
        }
        self.catch_up()?;
        let state = self.read();
        let filter = match &options.filter {
            Some(f) => {
                Filter::parse(f, &state.metadata_indexes).map_err(|m| bad(code::BAD_REQUEST, m))?
            }
            None => Filter::default(),
        };
        let ns = match &options.namespace {
            None => None,
            Some(ns) => match state.ns_ids.get(ns.as_str()) {
                Some(&id) => Some(id),
                // No vector was ever written to it.
                None => return Ok(Vec::new()),
            },
        };
        let mut q: Vec<f32> = vector.iter().map(|&x| x as f32).collect();
        self.config.metric.prepare(&mut q);
        let path = match self.path_choice.load(std::sync::atomic::Ordering::Relaxed) {
            1 => SearchPath::Exact,
            2 => SearchPath::Graph,
            _ => SearchPath::Auto,
        };
        let found = search(&state, &q, options.top_k, ns, &filter, path);
        let vecs = state.vectors();
        Ok(found
            .into_iter()
            .map(|Near(d, slot)| {
                let s = &state.slots[slot as usize];
                let metadata = match options.return_metadata {
                    ReturnMetadata::None => None,
                    ReturnMetadata::All => s
                        .metadata
                        .as_deref()
                        .and_then(|m| serde_json::from_str(m).ok()),
                    ReturnMetadata::Indexed => Some(Value::Object(
                        s.indexed
                            .iter()
                            .filter(|(k, _)| {
                                state
                                    .metadata_indexes
                                    .iter()
                                    .any(|ix| *ix.property_name == **k)
                            })
                            .map(|(k, v)| (k.to_string(), v.to_json()))
                            .collect(),
                    )),
                };
                Match {
                    id: s.id.to_string(),
                    score: self.config.metric.score(d),
                    values: options.return_values.then(|| vecs.get(slot).to_vec()),
                    metadata,
                    namespace: state.namespace(s.ns),
                }
            })
            .collect())
    }

    /// Links every waiting slot into the graph; returns how many. The
    /// planning half runs under the read lock, so queries go on meanwhile.
    pub fn index_pending(&self, rng: &mut u64, stop: &dyn Fn() -> bool) -> usize {
        let mut done = 0;
        loop {
            if stop() {
                return done;
            }
            let plan = {
                let state = self.read();
                let node = state.graph.len();
                if node >= state.slots.len() {
                    return done;
                }
                if state.slots[node].alive {
                    let level = hnsw::draw_level(rng);
                    Some(state.graph.plan(level, state.vectors()))
                } else {
                    None
                }
            };
            let mut state = self.write();
            let node = state.graph.len();
            match plan {
                Some(plan) => {
                    let (graph, vecs) = split(&mut state);
                    graph.apply(plan, vecs);
                    // Deleted while it was being linked.
                    if !state.slots[node].alive {
                        state.dead_linked += 1;
                    }
                }
                // Deleted before it was linked: it takes its node number
                // and no links.
                None => state.graph.push_unlinked(),
            }
            state.changes += 1;
            done += 1;
        }
    }

    /// Slots waiting for the graph (0 once the indexer has caught up).
    pub fn pending(&self) -> usize {
        let state = self.read();
        state.slots.len() - state.graph.len()
    }
}

/// The graph mutably beside the vectors it reads.
fn split(state: &mut State) -> (&mut Graph, Vectors<'_>) {
    let vecs = Vectors {
        data: &state.data,
        inv_norms: &state.inv_norms,
        codes: &state.codes,
        scales: &state.scales,
        max_sq_norm: state.max_sq_norm,
        dims: state.dims,
        metric: state.metric,
    };
    (&mut state.graph, vecs)
}

/// How many of a scan's int8 nearest are ranked again by exact distance:
/// in a tight cluster the codes' error is near the gaps between
/// neighbours, so many more than `k` (each costs one f32 distance, against
/// one int8 distance per vector scanned); a set this small is ranked
/// exactly whole.
fn rerank_size(k: usize) -> usize {
    (16 * k).max(RERANK_MIN)
}

/// The `k` nearest of `slots` to `q`: a pass over their int8 codes keeps
/// the [`rerank_size`] nearest, which are then ranked by exact distance.
fn scan(
    vecs: Vectors<'_>,
    q: &[f32],
    qc: &QueryCodes,
    slots: impl Iterator<Item = u32>,
    k: usize,
) -> Vec<Near> {
    let keep = rerank_size(k);
    let mut heap: BinaryHeap<Near> = BinaryHeap::with_capacity(keep);
    for s in slots {
        let d = vecs.approx(qc, s);
        if heap.len() < keep {
            heap.push(Near(d, s));
        } else if let Some(mut worst) = heap.peek_mut()
            && d < worst.0
        {
            *worst = Near(d, s);
        }
    }
    let mut found: Vec<Near> = heap
        .into_iter()
        .map(|Near(_, s)| Near(vecs.to(q, s), s))
        .collect();
    found.sort_unstable();
    found.truncate(k);
    found
}

/// The `k` nearest of `found` (a graph walk's, by int8 distance) by exact
/// distance.
fn rerank(vecs: Vectors<'_>, q: &[f32], found: Vec<Near>, k: usize) -> Vec<Near> {
    let mut exact: Vec<Near> = found
        .into_iter()
        .map(|Near(_, s)| Near(vecs.to(q, s), s))
        .collect();
    exact.sort_unstable();
    exact.truncate(k);
    exact
}

/// The slots that may pass a restricted query, from the posting lists:
/// the shortest of the namespace's list and each clause's union of the
/// lists of the values that pass it, and whether every slot listed passes
/// (the list stands for the whole restriction: a namespace alone, or one
/// clause and no namespace; the lists hold live slots only). `None` when
/// no clause has one (a `$ne`, `$nin` or range on a property of many
/// values, or that some vectors lack), so every slot must be checked.
fn candidates<'a>(
    state: &'a State,
    ns: Option<u32>,
    filter: &Filter,
) -> Option<(Cow<'a, [u32]>, bool)> {
    let mut best: Option<(Cow<'a, [u32]>, bool)> = ns.map(|n| {
        (
            Cow::Borrowed(&state.ns_slots[n as usize - 1][..]),
            filter.is_empty(),
        )
    });
    let whole = ns.is_none() && filter.len() == 1;
    for (field, keys) in filter.lookups() {
        let lists: Vec<&Vec<u32>> = match state.postings.get(field) {
            Some(by_value) => keys.iter().filter_map(|k| by_value.get(k)).collect(),
            None => Vec::new(),
        };
        let len: usize = lists.iter().map(|l| l.len()).sum();
        if best.as_ref().is_some_and(|(b, _)| b.len() <= len) {
            continue;
        }
        best = Some((union(&lists, state.slots.len()), whole));
    }
    // `$ne`, `$nin` and ranges: the lists of the values that pass, when the
    // property has few values (else reading the lists is no cheaper than
    // reading the column) and, for a clause that a vector without the
    // property passes, every live vector has it.
    for (clause, field) in filter.key_tests() {
        let Some(by_value) = state.postings.get(field) else {
            continue;
        };
        if by_value.len() * FEW_VALUES > state.live {
            continue;
        }
        let (mut held, mut lists) = (0, Vec::new());
        for (key, list) in by_value {
            held += list.len();
            if filter.clause_passes(clause, Some(&key.value())) {
                lists.push(list);
            }
        }
        if held < state.live && filter.clause_passes(clause, None) {
            continue;
        }
        let len: usize = lists.iter().map(|l| l.len()).sum();
        if best.as_ref().is_some_and(|(b, _)| b.len() <= len) {
            continue;
        }
        best = Some((union(&lists, state.slots.len()), whole));
    }
    best
}

/// The slots of several ascending posting lists, ascending, once each.
fn union<'a>(lists: &[&'a Vec<u32>], slots: usize) -> Cow<'a, [u32]> {
    match lists {
        [] => Cow::Borrowed(&[][..]),
        [one] => Cow::Borrowed(&one[..]),
        many => {
            let mut marks = vec![0u64; slots.div_ceil(64)];
            for &s in many.iter().flat_map(|l| l.iter()) {
                marks[s as usize / 64] |= 1 << (s % 64);
            }
            let mut all = Vec::with_capacity(many.iter().map(|l| l.len()).sum());
            for (w, &word) in marks.iter().enumerate() {
                let mut bits = word;
                while bits != 0 {
                    all.push(w as u32 * 64 + bits.trailing_zeros());
                    bits &= bits - 1;
                }
            }
            Cow::Owned(all)
        }
    }
}

/// The graph walk's candidate count for a restricted query that a share
/// `passing / live` of the vectors pass: the walk goes on until it has
/// `ef` passing nodes, so it already widens as the share falls; below one
/// in ten it is widened further, as passing nodes get sparse around the
/// query and the walk must not settle on the few it met first.
fn filtered_ef(k: usize, passing: usize, live: usize) -> usize {
    let base = EF_SEARCH.max(k);
    let share = passing.max(1) as f64 / live.max(1) as f64;
    let widen = (0.1 / share).clamp(1.0, 8.0);
    ((base as f64 * widen) as usize).min(1024)
}

/// Whether a restricted query that `passing` of `live` vectors pass is
/// cheaper scanned: a scan costs one int8 distance per passing vector; a
/// filtered walk about `V * live / passing` f32 distances, `V` being what
/// an unfiltered walk computes, so the crossover is near
/// `sqrt(SCAN_COST * live)` with `SCAN_COST` the walk's cost in scan
/// distances (measured on the 100k benchmark, see bench/VECTORIZE-RESULTS.md).
fn scan_is_cheaper(passing: usize, live: usize) -> bool {
    passing <= EXACT_BELOW || passing * passing <= SCAN_COST * live
}

fn search(
    state: &State,
    q: &[f32],
    k: usize,
    ns: Option<u32>,
    filter: &Filter,
    path: SearchPath,
) -> Vec<Near> {
    let vecs = state.vectors();
    let qc = QueryCodes::new(q);
    let in_graph = state.graph.len();
    let total = state.slots.len() as u32;
    let restricted = ns.is_some() || !filter.is_empty();
    if restricted {
        let columns: Vec<Option<&Vec<Option<Indexed>>>> = filter
            .fields()
            .into_iter()
            .map(|f| f.and_then(|f| state.columns.get(f)))
            .collect();
        let pass = |slot: u32| {
            let s = &state.slots[slot as usize];
            s.alive
                && ns.is_none_or(|n| s.ns == n)
                && (filter.is_empty()
                    || filter.matches_by(|i| {
                        columns[i]
                            .and_then(|c| c.get(slot as usize))
                            .and_then(Option::as_ref)
                    }))
        };
        let passing: Cow<'_, [u32]> = match candidates(state, ns, filter) {
            Some((list, true)) => list,
            Some((list, false)) => list.iter().copied().filter(|&s| pass(s)).collect(),
            None => (0..total).filter(|&s| pass(s)).collect(),
        };
        let scan_now = match path {
            SearchPath::Auto => scan_is_cheaper(passing.len(), state.live),
            SearchPath::Exact => true,
            SearchPath::Graph => false,
        };
        if in_graph == 0 || scan_now {
            return scan(vecs, q, &qc, passing.iter().copied(), k);
        }
        let mut admitted = vec![0u64; (total as usize).div_ceil(64)];
        for &s in passing.iter() {
            admitted[s as usize / 64] |= 1 << (s % 64);
        }
        let admit = |s: u32| admitted[s as usize / 64] & (1 << (s % 64)) != 0;
        let ef = filtered_ef(k, passing.len(), state.live);
        let mut found = rerank(
            vecs,
            q,
            state.graph.search_by(&|s| vecs.approx(&qc, s), ef, &admit),
            k,
        );
        let unlinked = passing.partition_point(|&s| (s as usize) < in_graph);
        found.extend(scan(vecs, q, &qc, passing[unlinked..].iter().copied(), k));
        found.sort_unstable();
        found.truncate(k);
        return found;
    }
    if state.live <= EXACT_BELOW || in_graph == 0 {
        return scan(
            vecs,
            q,
            &qc,
            (0..total).filter(|&s| state.slots[s as usize].alive),
            k,
        );
    }
    let alive = |slot: u32| state.slots[slot as usize].alive;
    let mut found = rerank(
        vecs,
        q,
        state
            .graph
            .search_by(&|s| vecs.approx(&qc, s), EF_SEARCH.max(k), &alive),
        k,
    );
    found.extend(scan(
        vecs,
        q,
        &qc,
        (in_graph as u32..total).filter(|&s| alive(s)),
        k,
    ));
    found.sort_unstable();
    found.truncate(k);
    found
}

/// The background thread that links new vectors into an index's graph;
/// stops when dropped.
pub struct Indexer {
    index: Arc<VectorIndex>,
    thread: Option<JoinHandle<()>>,
}

impl Indexer {
    pub fn spawn(index: Arc<VectorIndex>) -> std::io::Result<Self> {
        let ix = index.clone();
        let thread = std::thread::Builder::new()
            .name(format!("vectorize-{}", index.name))
            .spawn(move || {
                let mut rng = 0x2545_F491_4F6C_DD1D ^ (ix.name.len() as u64);
                let stopped = || *ix.work.0.lock().unwrap_or_else(|p| p.into_inner());
                let mut last_snapshot = std::time::Instant::now();
                let snapshot = |last: &mut std::time::Instant| {
                    if let Err(e) = ix.write_snapshot() {
                        eprintln!("vectorize index \"{}\": {e}", ix.name);
                    }
                    *last = std::time::Instant::now();
                };
                loop {
                    ix.index_pending(&mut rng, &stopped);
                    if stopped() {
                        // A clean stop leaves the graph on disk.
                        snapshot(&mut last_snapshot);
                        return;
                    }
                    if ix.pending() > 0 {
                        continue;
                    }
                    // Idle: unlink what was deleted, then maybe snapshot.
                    ix.repair_graph();
                    let unsaved = ix.unsaved_changes();
                    if unsaved >= SNAPSHOT_AFTER_CHANGES
                        || (unsaved > 0 && last_snapshot.elapsed() >= SNAPSHOT_AFTER)
                    {
                        snapshot(&mut last_snapshot);
                    }
                    let (lock, cv) = &ix.work;
                    let guard = lock.lock().unwrap_or_else(|p| p.into_inner());
                    if *guard {
                        drop(guard);
                        snapshot(&mut last_snapshot);
                        return;
                    }
                    if ix.pending() > 0 {
                        continue;
                    }
                    let guard = cv
                        .wait_timeout(guard, std::time::Duration::from_millis(500))
                        .map(|(g, _)| g)
                        .unwrap_or_else(|p| p.into_inner().0);
                    if *guard {
                        drop(guard);
                        snapshot(&mut last_snapshot);
                        return;
                    }
                    drop(guard);
                    // Another process's writes show up here too.
                    let _ = ix.catch_up();
                }
            })?;
        Ok(Self {
            index,
            thread: Some(thread),
        })
    }
}

impl Drop for Indexer {
    fn drop(&mut self) {
        {
            let mut stop = self.index.work.0.lock().unwrap_or_else(|p| p.into_inner());
            *stop = true;
        }
        self.index.work.1.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// An index a binding names, opened on first use so one created with
/// `hearth vectorize create` while the server runs is picked up.
pub struct IndexHandle {
    data_dir: DataDir,
    name: String,
    clock: SharedClock,
    open: Mutex<Option<(Arc<VectorIndex>, Indexer, FileId)>>,
}

/// Which file an open index was read from: `hearth vectorize delete`
/// (and a create after it) while the server runs replaces it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileId(u64, u64);

impl FileId {
    fn of(path: &Path) -> Option<FileId> {
        let meta = std::fs::metadata(path).ok()?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            Some(FileId(meta.dev(), meta.ino()))
        }
        #[cfg(not(unix))]
        {
            let created = meta
                .created()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos() as u64);
            Some(FileId(created, 0))
        }
    }
}

impl std::fmt::Debug for IndexHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexHandle")
            .field("name", &self.name)
            .finish()
    }
}

impl IndexHandle {
    pub fn new(data_dir: DataDir, name: impl Into<String>, clock: SharedClock) -> Self {
        Self {
            data_dir,
            name: name.into(),
            clock,
            open: Mutex::new(None),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn path(&self) -> PathBuf {
        index_path(&self.data_dir, &self.name)
    }

    /// The open index, opening it (and starting its indexer) if needed.
    /// An index deleted since it was opened is closed (its indexer
    /// stopped), so the binding reports it missing, and one created again
    /// under the name is opened afresh.
    pub fn get(&self) -> Result<Arc<VectorIndex>, VectorizeError> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let now = FileId::of(&self.path());
        if let Some((ix, _, file)) = &*open {
            if now == Some(*file) {
                return Ok(ix.clone());
            }
            // Dropping the indexer stops its thread.
            *open = None;
        }
        let Some(file) = now else {
            return Err(VectorizeError::NoSuchIndex(self.name.clone()));
        };
        let ix = Arc::new(open_index(&self.data_dir, &self.name, self.clock.clone())?);
        let indexer = Indexer::spawn(ix.clone()).map_err(|e| VectorizeError::Storage {
            path: ix.path.display().to_string(),
            message: format!("starting the indexer thread: {e}"),
        })?;
        *open = Some((ix.clone(), indexer, file));
        Ok(ix)
    }
}
