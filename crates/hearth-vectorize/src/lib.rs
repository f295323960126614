//! Vectorize: the contract behind a `[[vectorize]]` binding and the
//! `hearth vectorize` commands.
//!
//! An index is one SQLite file, `<data>/vectorize/<index>.sqlite`, holding
//! its configuration (dimensions and metric, fixed at creation), its
//! metadata indexes and every vector with its namespace and metadata. A
//! write is acknowledged once its transaction is committed (fsynced), and
//! it is visible to queries as soon as the call returns: the vectors go
//! into memory at once and are searched exactly until the background
//! indexer has linked them into the HNSW graph ([`hnsw`]). The indexer
//! also unlinks deleted vectors from the graph and keeps a checksummed
//! snapshot of it in the index file ([`snapshot`]); on start the vectors
//! are read back, the graph is restored from the snapshot when it is sound
//! (else rebuilt in the background), and vectors written after it are
//! searched exactly until linked, so nothing acknowledged is ever missing.
//!
//! Queries scan the candidates when the set is small (a small index, or a
//! namespace or metadata filter that few vectors pass, found through the
//! in-memory posting lists of the metadata indexes), and walk the graph
//! otherwise, with the filter applied during the walk so top K is taken
//! from the filtered set. Scans and walks compare int8 codes of the
//! vectors (a quarter of the memory read) and rank what they keep by exact
//! f32 distance, so returned scores are exact.

pub mod distance;
pub mod filter;
pub mod hnsw;
mod index;
pub mod snapshot;

pub use distance::Metric;
pub use filter::{Filter, IndexType, Indexed, Key, MetadataIndex};
pub use index::{
    IndexConfig, IndexHandle, IndexInfo, Indexer, ListPage, Match, Mutation, NewVector,
    QueryOptions, ReturnMetadata, SearchPath, StoredVector, VectorIndex, WriteMode, create_index,
    delete_index, index_path, list_indexes, open_index,
};

use hearth_core::{ContractError, ErrorClass};

/// Cloudflare's Vectorize limits (V2 indexes).
#[derive(Debug, Clone)]
pub struct VectorizeLimits {
    pub max_dimensions: usize,
    pub max_id_bytes: usize,
    pub max_namespace_bytes: usize,
    pub max_index_name_bytes: usize,
    pub max_metadata_bytes: usize,
    pub max_metadata_indexes: usize,
    /// topK when neither values nor all metadata are returned.
    pub max_top_k: usize,
    /// topK with `returnValues: true` or `returnMetadata: "all"`.
    pub max_top_k_with_values: usize,
    /// Vectors per insert/upsert from a Worker.
    pub max_batch: usize,
    /// Vectors per insert/upsert through the HTTP API (the CLI's batches).
    pub max_batch_http: usize,
    /// Ids per `getByIds` / `deleteByIds`.
    pub max_ids: usize,
    /// Ids per page when listing.
    pub max_list_count: usize,
}

impl Default for VectorizeLimits {
    fn default() -> Self {
        Self {
            max_dimensions: 1536,
            max_id_bytes: 64,
            max_namespace_bytes: 64,
            max_index_name_bytes: 64,
            max_metadata_bytes: 10 * 1024,
            max_metadata_indexes: 10,
            max_top_k: 100,
            max_top_k_with_values: 20,
            max_batch: 1000,
            max_batch_http: 5000,
            max_ids: 1000,
            max_list_count: 1000,
        }
    }
}

/// Which call failed, as the error's prefix names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Insert,
    Upsert,
    Query,
    GetByIds,
    DeleteByIds,
    List,
    Index,
}

impl Op {
    fn prefix(self) -> &'static str {
        match self {
            Op::Insert => "VECTOR_INSERT_ERROR",
            Op::Upsert => "VECTOR_UPSERT_ERROR",
            Op::Query => "VECTOR_QUERY_ERROR",
            Op::GetByIds => "VECTOR_GET_ERROR",
            Op::DeleteByIds => "VECTOR_DELETE_ERROR",
            Op::List => "VECTOR_LIST_ERROR",
            Op::Index => "VECTORIZE_INDEX_ERROR",
        }
    }
}

impl std::fmt::Display for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.prefix())
    }
}

/// Codes as Cloudflare's service reports them, where known.
pub mod code {
    /// A vector (query or stored) of the wrong length.
    pub const DIMENSIONS: u32 = 40006;
    /// topK over the limit.
    pub const TOP_K: u32 = 40025;
    /// A request the service cannot read (bad option values, bad filter).
    pub const BAD_REQUEST: u32 = 40026;
    /// An id, namespace or metadata over its limit or malformed.
    pub const BAD_VECTOR: u32 = 40005;
    /// Too many vectors or ids in one call.
    pub const BATCH: u32 = 40007;
}

#[derive(Debug, thiserror::Error)]
pub enum VectorizeError {
    /// Refused input, in the service's `PREFIX (code = N): message` form.
    #[error("{op} (code = {code}): {message}")]
    Rejected { op: Op, code: u32, message: String },
    #[error(
        "Vectorize index \"{0}\" does not exist: create it with `hearth vectorize create {0} --dimensions <N> --metric <cosine|euclidean|dot-product>`"
    )]
    NoSuchIndex(String),
    #[error("Vectorize index \"{0}\" already exists")]
    IndexExists(String),
    /// A management call (create, metadata indexes) with bad arguments.
    #[error("{0}")]
    Invalid(String),
    #[error("Vectorize storage error at {path}: {message}")]
    Storage { path: String, message: String },
}

impl VectorizeError {
    pub(crate) fn rejected(op: Op, code: u32, message: impl Into<String>) -> Self {
        VectorizeError::Rejected {
            op,
            code,
            message: message.into(),
        }
    }
}

impl ContractError for VectorizeError {
    fn class(&self) -> ErrorClass {
        ErrorClass::Error
    }
}
