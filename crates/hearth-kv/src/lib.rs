//! Workers KV: the [`KvNamespace`] contract and its embedded SQLite backend.
//!
//! The API mirrors the KV binding of Cloudflare Workers: `get` (with types
//! `text`, `json`, `arrayBuffer`, `stream`), `getWithMetadata`, bulk `get` of
//! up to 100 keys, `put` with `expiration` / `expirationTtl` / `metadata`,
//! `delete` and `list` with `prefix` / `limit` / `cursor`. Limits live in
//! [`KvLimits`] (Cloudflare's values by default) and every rule broken is
//! reported with Cloudflare's own message (see [`KvError`]).
//!
//! Guarantees:
//! - A call that returned `Ok` has committed durably (SQLite WAL commit with
//!   `synchronous=FULL`).
//! - Time comes from the injected [`SharedClock`]: a key is invisible to every
//!   read and list from the second its expiration is reached; rows are removed
//!   later by [`KvNamespace::purge_expired`] (or a [`PurgerHandle`] thread).
//! - [`KvNamespace`] is `Send + Sync`; several processes may open the same
//!   file at once.
//!
//! This crate knows nothing of JavaScript or HTTP.

mod error;
pub mod postgres;
mod purge;
pub mod sqlite;
pub mod validate;

use std::fmt;
use std::io::{self, BufRead, Cursor, Read};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hearth_core::SharedClock;
use serde::Serialize;
use serde_json::Value;

pub use error::{KvError, KvOp, Result};
pub use postgres::PostgresStore;
pub use purge::PurgerHandle;
pub use sqlite::SqliteStore;
pub use validate::KvLimits;

/// How `get` hands back a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KvValueType {
    #[default]
    Text,
    Json,
    ArrayBuffer,
    Stream,
}

impl KvValueType {
    /// Parses a type name as `get()` accepts it.
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            "arrayBuffer" => Ok(Self::ArrayBuffer),
            "stream" => Ok(Self::Stream),
            other => Err(KvError::UnknownType {
                value_type: other.to_owned(),
            }),
        }
    }

    /// Parses a type name as a bulk `get()` accepts it: only `text` or `json`.
    pub fn parse_bulk(name: &str) -> Result<Self> {
        match name {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            other => Err(KvError::BulkInvalidType {
                value_type: other.to_owned(),
            }),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Json => "json",
            Self::ArrayBuffer => "arrayBuffer",
            Self::Stream => "stream",
        }
    }
}

impl fmt::Display for KvValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for KvValueType {
    type Err = KvError;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

/// Options of `get` and `getWithMetadata`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GetOptions {
    pub value_type: KvValueType,
    /// Seconds a result may be cached at the edge. Checked (at least
    /// [`KvLimits::min_cache_ttl`]) and otherwise ignored: a single node has
    /// no edge cache and always reads its own writes.
    pub cache_ttl: Option<f64>,
}

impl GetOptions {
    pub fn of_type(value_type: KvValueType) -> Self {
        Self {
            value_type,
            cache_ttl: None,
        }
    }
    pub fn text() -> Self {
        Self::of_type(KvValueType::Text)
    }
    pub fn json() -> Self {
        Self::of_type(KvValueType::Json)
    }
    pub fn array_buffer() -> Self {
        Self::of_type(KvValueType::ArrayBuffer)
    }
    pub fn stream() -> Self {
        Self::of_type(KvValueType::Stream)
    }
    pub fn with_cache_ttl(mut self, seconds: f64) -> Self {
        self.cache_ttl = Some(seconds);
        self
    }
}

/// Options of `put`. Numbers are JavaScript numbers: non-integers, NaN and
/// negatives are refused with Cloudflare's messages.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PutOptions {
    /// Absolute expiry, seconds since the Unix epoch; at least
    /// [`KvLimits::min_expiration_ttl`] seconds from now.
    pub expiration: Option<f64>,
    /// Expiry relative to now, in seconds; takes precedence over `expiration`.
    pub expiration_ttl: Option<f64>,
    /// Any JSON value; `null` means none. Serialized size is limited.
    pub metadata: Option<Value>,
}

impl PutOptions {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn expiration(mut self, seconds_since_epoch: f64) -> Self {
        self.expiration = Some(seconds_since_epoch);
        self
    }
    pub fn expiration_ttl(mut self, seconds: f64) -> Self {
        self.expiration_ttl = Some(seconds);
        self
    }
    pub fn metadata(mut self, metadata: Value) -> Self {
        self.metadata = Some(metadata);
        self
    }
}

/// Options of `list`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListOptions {
    pub prefix: Option<String>,
    /// 1..=[`KvLimits::max_list_keys`]; defaults to the maximum.
    pub limit: Option<f64>,
    /// The `cursor` of a previous, incomplete result.
    pub cursor: Option<String>,
}

impl ListOptions {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }
    pub fn limit(mut self, limit: f64) -> Self {
        self.limit = Some(limit);
        self
    }
    pub fn cursor(mut self, cursor: impl Into<String>) -> Self {
        self.cursor = Some(cursor.into());
        self
    }
}

/// A value read as a stream: readable in chunks with [`Read`] / [`BufRead`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvStream {
    inner: Cursor<Vec<u8>>,
}

impl KvStream {
    fn new(bytes: Vec<u8>) -> Self {
        Self {
            inner: Cursor::new(bytes),
        }
    }

    /// Total length of the value in bytes.
    pub fn len(&self) -> usize {
        self.inner.get_ref().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The whole value, regardless of how much was already read.
    pub fn into_bytes(self) -> Vec<u8> {
        self.inner.into_inner()
    }
}

impl Read for KvStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
}

impl BufRead for KvStream {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }
    fn consume(&mut self, amt: usize) {
        self.inner.consume(amt)
    }
}

/// A value decoded as the requested [`KvValueType`].
#[derive(Debug, Clone, PartialEq)]
pub enum KvValue {
    Text(String),
    Json(Value),
    ArrayBuffer(Vec<u8>),
    Stream(KvStream),
}

impl KvValue {
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Self::Text(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_json(&self) -> Option<&Value> {
        match self {
            Self::Json(v) => Some(v),
            _ => None,
        }
    }
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Self::ArrayBuffer(b) => Some(b),
            Self::Text(s) => Some(s.as_bytes()),
            _ => None,
        }
    }
    pub fn into_stream(self) -> Option<KvStream> {
        match self {
            Self::Stream(s) => Some(s),
            _ => None,
        }
    }
}

/// A stored value as raw bytes with what is known about it; the form the HTTP
/// front and the CLI want. Decode with [`KvEntry::decode`] or the helpers.
#[derive(Debug, Clone, PartialEq)]
pub struct KvEntry {
    pub value: Vec<u8>,
    pub metadata: Option<Value>,
    /// Seconds since the epoch.
    pub expiration: Option<u64>,
}

impl KvEntry {
    /// The value as text; invalid UTF-8 becomes U+FFFD, as `TextDecoder` does.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.value).into_owned()
    }

    pub fn json(&self) -> Result<Value> {
        serde_json::from_str(&self.text()).map_err(KvError::InvalidJson)
    }

    pub fn array_buffer(&self) -> &[u8] {
        &self.value
    }

    pub fn stream(self) -> KvStream {
        KvStream::new(self.value)
    }

    pub fn decode(self, value_type: KvValueType) -> Result<KvValue> {
        Ok(match value_type {
            KvValueType::Text => KvValue::Text(into_text(self.value)),
            KvValueType::Json => KvValue::Json(self.json()?),
            KvValueType::ArrayBuffer => KvValue::ArrayBuffer(self.value),
            KvValueType::Stream => KvValue::Stream(KvStream::new(self.value)),
        })
    }
}

fn into_text(bytes: Vec<u8>) -> String {
    // Most values are ASCII, and `is_ascii` checks a KiB several times
    // faster than full UTF-8 validation.
    if bytes.is_ascii() {
        // SAFETY: ASCII is valid UTF-8.
        return unsafe { String::from_utf8_unchecked(bytes) };
    }
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Result of `getWithMetadata`.
#[derive(Debug, Clone, PartialEq)]
pub struct KvGetWithMetadata {
    /// `None` when the key does not exist (or has expired).
    pub value: Option<KvValue>,
    pub metadata: Option<Value>,
    /// Always `None` here: there is no edge cache.
    pub cache_status: Option<String>,
}

/// One value of a bulk `getWithMetadata`.
#[derive(Debug, Clone, PartialEq)]
pub struct KvBulkEntry {
    pub value: KvValue,
    pub metadata: Option<Value>,
}

/// The result of a bulk read: one entry per distinct requested key, in the
/// order the keys were first requested; missing keys map to `None`.
#[derive(Debug, Clone, PartialEq)]
pub struct KvMap<V> {
    entries: Vec<(String, V)>,
}

impl<V> KvMap<V> {
    fn with_capacity(n: usize) -> Self {
        Self {
            entries: Vec::with_capacity(n),
        }
    }

    fn insert(&mut self, key: &str, value: V) {
        match self.entries.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => self.entries.push((key.to_owned(), value)),
        }
    }

    pub fn get(&self, key: &str) -> Option<&V> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(k, _)| k.as_str())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &V)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }
}

impl<V> IntoIterator for KvMap<V> {
    type Item = (String, V);
    type IntoIter = std::vec::IntoIter<(String, V)>;
    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

/// One key of a `list` result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KvKey {
    pub name: String,
    /// Absolute, seconds since the epoch, even if set as a TTL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiration: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
}

/// Result of `list`; serializes to the shape Workers code sees.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KvListResult {
    pub keys: Vec<KvKey>,
    pub list_complete: bool,
    /// Present exactly when `list_complete` is false.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    #[serde(rename = "cacheStatus")]
    pub cache_status: Option<String>,
}

/// A row as a backend stores it. Metadata is serialized JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEntry {
    pub value: Vec<u8>,
    pub expiration: Option<u64>,
    pub metadata: Option<String>,
}

/// A key as a backend lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredKey {
    pub name: String,
    pub expiration: Option<u64>,
    pub metadata: Option<String>,
}

/// What a storage backend provides. Inputs arrive validated; every read must
/// hide rows whose `expiration <= now_secs`; every write must be durable when
/// it returns. Keys order by their UTF-8 bytes.
pub trait KvStore: Send + Sync + fmt::Debug {
    fn get(&self, key: &str, now_secs: u64) -> Result<Option<StoredEntry>>;
    /// Reads several keys from one consistent snapshot.
    fn get_many(&self, keys: &[&str], now_secs: u64) -> Result<Vec<Option<StoredEntry>>>;
    fn put(
        &self,
        key: &str,
        value: &[u8],
        expiration: Option<u64>,
        metadata: Option<&str>,
    ) -> Result<()>;
    /// Writes every entry in one transaction: all land or none do.
    fn put_many(&self, entries: &[StoredWrite<'_>]) -> Result<()>;
    fn delete(&self, key: &str) -> Result<()>;
    /// Live keys starting with `prefix` and greater than `start_after`, in
    /// order, at most `limit` of them.
    fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
        now_secs: u64,
    ) -> Result<Vec<StoredKey>>;
    /// Removes expired rows; returns how many.
    fn purge_expired(&self, now_secs: u64) -> Result<usize>;
}

/// One validated write handed to [`KvStore::put_many`].
#[derive(Debug, Clone, Copy)]
pub struct StoredWrite<'a> {
    pub key: &'a str,
    pub value: &'a [u8],
    /// Seconds since the Unix epoch.
    pub expiration: Option<u64>,
    /// Serialized JSON.
    pub metadata: Option<&'a str>,
}

/// A KV namespace: Cloudflare's KV semantics over a [`KvStore`].
#[derive(Debug)]
pub struct KvNamespace {
    store: Box<dyn KvStore>,
    clock: SharedClock,
    limits: KvLimits,
}

impl KvNamespace {
    /// Opens (creating if needed) the namespace stored in the SQLite file at
    /// `path`.
    pub fn open(path: &Path, clock: SharedClock, limits: KvLimits) -> Result<Self> {
        Ok(Self::with_store(
            Box::new(SqliteStore::open(path)?),
            clock,
            limits,
        ))
    }

    /// A namespace over any backend.
    pub fn with_store(store: Box<dyn KvStore>, clock: SharedClock, limits: KvLimits) -> Self {
        Self {
            store,
            clock,
            limits,
        }
    }

    pub fn limits(&self) -> &KvLimits {
        &self.limits
    }

    fn now_secs(&self) -> u64 {
        self.clock.now_secs()
    }

    /// `get(key, {type, cacheTtl})`: the value decoded as asked, or `None`.
    pub fn get(&self, key: &str, options: &GetOptions) -> Result<Option<KvValue>> {
        Ok(self.get_with_metadata(key, options)?.value)
    }

    /// `getWithMetadata(key, {type, cacheTtl})`.
    pub fn get_with_metadata(&self, key: &str, options: &GetOptions) -> Result<KvGetWithMetadata> {
        let Some(entry) = self.get_entry(key, options.cache_ttl)? else {
            return Ok(KvGetWithMetadata {
                value: None,
                metadata: None,
                cache_status: None,
            });
        };
        let metadata = entry.metadata.clone();
        Ok(KvGetWithMetadata {
            value: Some(entry.decode(options.value_type)?),
            metadata,
            cache_status: None,
        })
    }

    /// The stored bytes with metadata and expiration, undecoded.
    pub fn get_entry(&self, key: &str, cache_ttl: Option<f64>) -> Result<Option<KvEntry>> {
        validate::key(KvOp::Get, key, &self.limits)?;
        validate::cache_ttl(KvOp::Get, cache_ttl, &self.limits)?;
        self.store
            .get(key, self.now_secs())?
            .map(|stored| to_entry(key, stored))
            .transpose()
    }

    /// Bulk `get([keys], {type, cacheTtl})`: `text` or `json` only.
    pub fn get_bulk<K: AsRef<str>>(
        &self,
        keys: &[K],
        options: &GetOptions,
    ) -> Result<KvMap<Option<KvValue>>> {
        let found = self.read_bulk(keys, options)?;
        let mut map = KvMap::with_capacity(found.len());
        for (key, entry) in found {
            map.insert(&key, entry.map(|e| e.value));
        }
        Ok(map)
    }

    /// Bulk `getWithMetadata([keys], {type, cacheTtl})`.
    pub fn get_bulk_with_metadata<K: AsRef<str>>(
        &self,
        keys: &[K],
        options: &GetOptions,
    ) -> Result<KvMap<Option<KvBulkEntry>>> {
        let found = self.read_bulk(keys, options)?;
        let mut map = KvMap::with_capacity(found.len());
        for (key, entry) in found {
            map.insert(&key, entry);
        }
        Ok(map)
    }

    fn read_bulk<K: AsRef<str>>(
        &self,
        keys: &[K],
        options: &GetOptions,
    ) -> Result<Vec<(String, Option<KvBulkEntry>)>> {
        let value_type = options.value_type;
        if !matches!(value_type, KvValueType::Text | KvValueType::Json) {
            return Err(KvError::BulkInvalidType {
                value_type: value_type.as_str().to_owned(),
            });
        }
        validate::bulk_key_count(keys.len(), &self.limits)?;
        let keys: Vec<&str> = keys.iter().map(AsRef::as_ref).collect();
        for key in &keys {
            validate::bulk_key(key, &self.limits)?;
        }
        validate::cache_ttl(KvOp::GetBulk, options.cache_ttl, &self.limits)?;

        let stored = self.store.get_many(&keys, self.now_secs())?;
        let mut total = 0usize;
        let mut out = Vec::with_capacity(keys.len());
        for (key, stored) in keys.into_iter().zip(stored) {
            let Some(stored) = stored else {
                out.push((key.to_owned(), None));
                continue;
            };
            total = total.saturating_add(stored.value.len());
            let entry = to_entry(key, stored)?;
            let metadata = entry.metadata.clone();
            let value = match value_type {
                KvValueType::Json => {
                    KvValue::Json(entry.json().map_err(|_| KvError::BulkValueNotOfType {
                        value_type: value_type.as_str().to_owned(),
                    })?)
                }
                _ => KvValue::Text(into_text(entry.value)),
            };
            out.push((key.to_owned(), Some(KvBulkEntry { value, metadata })));
        }
        validate::bulk_size(total, &self.limits)?;
        Ok(out)
    }

    /// `put(key, value, {expiration, expirationTtl, metadata})`. Durable when
    /// it returns `Ok`.
    pub fn put(&self, key: &str, value: impl AsRef<[u8]>, options: &PutOptions) -> Result<()> {
        let value = value.as_ref();
        let (expiration, metadata) = self.check_put(key, options)?;
        validate::value_size(value.len() as u64, &self.limits)?;
        self.store.put(key, value, expiration, metadata.as_deref())
    }

    /// `put` with the value read from a stream. An oversized stream is read to
    /// its end so the error can state its full length, as Cloudflare's does.
    pub fn put_stream(&self, key: &str, mut value: impl Read, options: &PutOptions) -> Result<()> {
        let (expiration, metadata) = self.check_put(key, options)?;
        let max = self.limits.max_value_size as u64;
        let mut bytes = Vec::new();
        (&mut value)
            .take(max.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(KvError::ReadValue)?;
        if bytes.len() as u64 > max {
            let rest = io::copy(&mut value, &mut io::sink()).map_err(KvError::ReadValue)?;
            validate::value_size((bytes.len() as u64).saturating_add(rest), &self.limits)?;
        }
        self.store.put(key, &bytes, expiration, metadata.as_deref())
    }

    /// Several puts as one all-or-nothing write: every entry is checked
    /// first, then all are committed in one transaction. Not part of the
    /// Workers API; the CLI's bulk put uses it so a bad entry or a crash never
    /// leaves a file half-written.
    pub fn put_many<K: AsRef<str>, V: AsRef<[u8]>>(
        &self,
        entries: &[(K, V, PutOptions)],
    ) -> Result<()> {
        let mut checked = Vec::with_capacity(entries.len());
        for (key, value, options) in entries {
            let (expiration, metadata) = self.check_put(key.as_ref(), options)?;
            validate::value_size(value.as_ref().len() as u64, &self.limits)?;
            checked.push((expiration, metadata));
        }
        let writes: Vec<StoredWrite<'_>> = entries
            .iter()
            .zip(&checked)
            .map(|((key, value, _), (expiration, metadata))| StoredWrite {
                key: key.as_ref(),
                value: value.as_ref(),
                expiration: *expiration,
                metadata: metadata.as_deref(),
            })
            .collect();
        self.store.put_many(&writes)
    }

    /// Every check `put` makes, without writing: lets a caller validate a whole
    /// batch before the first write.
    pub fn validate_put(&self, key: &str, value_len: usize, options: &PutOptions) -> Result<()> {
        self.check_put(key, options)?;
        validate::value_size(value_len as u64, &self.limits)
    }

    fn check_put(&self, key: &str, options: &PutOptions) -> Result<(Option<u64>, Option<String>)> {
        validate::key(KvOp::Put, key, &self.limits)?;
        let expiration = validate::expiration(
            self.now_secs(),
            options.expiration,
            options.expiration_ttl,
            &self.limits,
        )?;
        let metadata = validate::metadata(options.metadata.as_ref(), &self.limits)?;
        Ok((expiration, metadata))
    }

    /// `delete(key)`: succeeds whether or not the key exists.
    pub fn delete(&self, key: &str) -> Result<()> {
        validate::key(KvOp::Delete, key, &self.limits)?;
        self.store.delete(key)
    }

    /// `list({prefix, limit, cursor})`: live keys in UTF-8 byte order. The
    /// cursor names the last key returned, so keys written between pages
    /// after that point are still seen.
    pub fn list(&self, options: &ListOptions) -> Result<KvListResult> {
        let limit = validate::list_limit(options.limit, &self.limits)? as usize;
        let prefix = options.prefix.as_deref().unwrap_or("");
        validate::key_length(KvOp::Get, prefix, &self.limits)?;
        let start_after = options.cursor.as_deref().map(decode_cursor).transpose()?;

        // One extra row tells whether another page exists.
        let mut rows = self.store.list(
            prefix,
            start_after.as_deref(),
            limit.saturating_add(1),
            self.now_secs(),
        )?;
        let more = rows.len() > limit;
        rows.truncate(limit);
        let cursor = match rows.last() {
            Some(last) if more => Some(BASE64.encode(last.name.as_bytes())),
            _ => None,
        };
        let keys = rows
            .into_iter()
            .map(|row| {
                let metadata = parse_metadata(&row.name, row.metadata.as_deref())?;
                Ok(KvKey {
                    name: row.name,
                    expiration: row.expiration,
                    metadata,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(KvListResult {
            keys,
            list_complete: !more,
            cursor,
            cache_status: None,
        })
    }

    /// Deletes the rows of expired keys (already invisible to reads); returns
    /// how many were removed.
    pub fn purge_expired(&self) -> Result<usize> {
        self.store.purge_expired(self.now_secs())
    }

    /// Starts a thread that calls [`purge_expired`](Self::purge_expired) every
    /// `every`. It holds only a weak reference: it ends when the namespace is
    /// dropped, or when the returned handle is.
    pub fn spawn_purger(self: &Arc<Self>, every: Duration) -> Result<PurgerHandle> {
        PurgerHandle::spawn(self, every)
    }
}

fn to_entry(key: &str, stored: StoredEntry) -> Result<KvEntry> {
    Ok(KvEntry {
        metadata: parse_metadata(key, stored.metadata.as_deref())?,
        value: stored.value,
        expiration: stored.expiration,
    })
}

fn parse_metadata(key: &str, json: Option<&str>) -> Result<Option<Value>> {
    json.map(|j| {
        serde_json::from_str(j).map_err(|source| KvError::CorruptMetadata {
            key: key.to_owned(),
            source,
        })
    })
    .transpose()
}

fn decode_cursor(cursor: &str) -> Result<String> {
    let invalid = || KvError::InvalidCursor {
        cursor: cursor.to_owned(),
    };
    let bytes = BASE64.decode(cursor).map_err(|_| invalid())?;
    String::from_utf8(bytes).map_err(|_| invalid())
}

#[cfg(test)]
mod tests {
    use super::into_text;

    #[test]
    fn text_is_ascii_utf8_or_replaced() {
        assert_eq!(into_text(b"plain ascii".to_vec()), "plain ascii");
        assert_eq!(
            into_text("h\u{e9}llo \u{1f600}".as_bytes().to_vec()),
            "h\u{e9}llo \u{1f600}"
        );
        assert_eq!(into_text(vec![b'a', 0xff, b'b']), "a\u{fffd}b");
    }
}
