//! The metadata half of the backend: one SQLite database per bucket holding
//! object rows, multipart uploads and their parts. Blob bytes live in files
//! (see `fs.rs`); rows name them by path relative to the bucket directory.

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, params};

use crate::{R2Checksums, R2HttpMetadata};

const SCHEMA_V1: &str = "
CREATE TABLE IF NOT EXISTS objects (
    key TEXT PRIMARY KEY NOT NULL,
    version TEXT NOT NULL,
    size INTEGER NOT NULL,
    etag TEXT NOT NULL,
    uploaded INTEGER NOT NULL,
    checksums TEXT NOT NULL,
    http_metadata TEXT NOT NULL,
    custom_metadata TEXT NOT NULL,
    -- single-part objects: the blob file; multipart objects: NULL
    blob TEXT,
    -- multipart objects: the completed upload whose parts hold the bytes
    upload_id TEXT
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS multipart_uploads (
    upload_id TEXT PRIMARY KEY NOT NULL,
    key TEXT NOT NULL,
    http_metadata TEXT NOT NULL,
    custom_metadata TEXT NOT NULL,
    -- 0 in progress, 1 completed, 2 aborted; finished uploads are kept so a
    -- late call gets R2's answer rather than a generic one
    state INTEGER NOT NULL DEFAULT 0,
    created INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS multipart_parts (
    upload_id TEXT NOT NULL REFERENCES multipart_uploads(upload_id),
    part_number INTEGER NOT NULL,
    blob TEXT NOT NULL,
    size INTEGER NOT NULL,
    md5 TEXT NOT NULL,
    PRIMARY KEY (upload_id, part_number)
) WITHOUT ROWID;
";

/// Each entry moves the schema one version forward (see
/// `hearth_core::sqlite::migrate`). Version 1 is the schema buckets had
/// before it was versioned; being all `IF NOT EXISTS`, it adopts them.
pub(crate) const SCHEMA_STEPS: &[&str] = &[SCHEMA_V1];

pub(crate) const IN_PROGRESS: i64 = 0;
pub(crate) const COMPLETED: i64 = 1;
pub(crate) const ABORTED: i64 = 2;

#[derive(Debug, Clone)]
pub(crate) struct ObjectRow {
    pub key: String,
    pub version: String,
    pub size: u64,
    pub etag: String,
    pub uploaded: u64,
    pub checksums: R2Checksums,
    pub http_metadata: R2HttpMetadata,
    pub custom_metadata: BTreeMap<String, String>,
    pub blob: Option<String>,
    pub upload_id: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct PartRow {
    pub part_number: u32,
    pub blob: String,
    pub size: u64,
    pub md5: String,
}

pub(crate) struct UploadRow {
    pub state: i64,
    pub http_metadata: R2HttpMetadata,
    pub custom_metadata: BTreeMap<String, String>,
}

fn json_col<T: serde::de::DeserializeOwned>(s: String, idx: usize) -> rusqlite::Result<T> {
    serde_json::from_str(&s).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn to_json<T: serde::Serialize>(v: &T) -> rusqlite::Result<String> {
    serde_json::to_string(v).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}

const OBJECT_COLUMNS: &str = "key, version, size, etag, uploaded, checksums, http_metadata, custom_metadata, blob, upload_id";

fn object_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ObjectRow> {
    Ok(ObjectRow {
        key: r.get(0)?,
        version: r.get(1)?,
        size: r.get::<_, i64>(2)? as u64,
        etag: r.get(3)?,
        uploaded: r.get::<_, i64>(4)? as u64,
        checksums: json_col(r.get(5)?, 5)?,
        http_metadata: json_col(r.get(6)?, 6)?,
        custom_metadata: json_col(r.get(7)?, 7)?,
        blob: r.get(8)?,
        upload_id: r.get(9)?,
    })
}

pub(crate) fn get_object(conn: &Connection, key: &str) -> rusqlite::Result<Option<ObjectRow>> {
    conn.prepare_cached(&format!(
        "SELECT {OBJECT_COLUMNS} FROM objects WHERE key = ?1"
    ))?
    .query_row([key], object_from_row)
    .optional()
}

pub(crate) fn put_object(conn: &Connection, row: &ObjectRow) -> rusqlite::Result<()> {
    conn.prepare_cached(&format!(
        "INSERT OR REPLACE INTO objects ({OBJECT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
    ))?
    .execute(params![
        row.key,
        row.version,
        row.size as i64,
        row.etag,
        row.uploaded as i64,
        to_json(&row.checksums)?,
        to_json(&row.http_metadata)?,
        to_json(&row.custom_metadata)?,
        row.blob,
        row.upload_id,
    ])?;
    Ok(())
}

/// The parts holding a multipart object's bytes, in part-number order.
pub(crate) fn parts_of(conn: &Connection, upload_id: &str) -> rusqlite::Result<Vec<PartRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT part_number, blob, size, md5 FROM multipart_parts
         WHERE upload_id = ?1 ORDER BY part_number",
    )?;
    let rows = stmt.query_map([upload_id], |r| {
        Ok(PartRow {
            part_number: r.get::<_, i64>(0)? as u32,
            blob: r.get(1)?,
            size: r.get::<_, i64>(2)? as u64,
            md5: r.get(3)?,
        })
    })?;
    rows.collect()
}

/// Removes an object's row (and, for a multipart object, its part rows);
/// returns the blob files that are now unreferenced.
pub(crate) fn delete_object(conn: &Connection, key: &str) -> rusqlite::Result<Vec<String>> {
    match get_object(conn, key)? {
        None => Ok(Vec::new()),
        Some(row) => {
            conn.prepare_cached("DELETE FROM objects WHERE key = ?1")?
                .execute([key])?;
            release_object_storage(conn, &row)
        }
    }
}

/// Blob files of a row that is being replaced or deleted; part rows of a
/// multipart object are dropped with it.
pub(crate) fn release_object_storage(
    conn: &Connection,
    row: &ObjectRow,
) -> rusqlite::Result<Vec<String>> {
    let mut blobs = Vec::new();
    if let Some(b) = &row.blob {
        blobs.push(b.clone());
    }
    if let Some(upload_id) = &row.upload_id {
        blobs.extend(parts_of(conn, upload_id)?.into_iter().map(|p| p.blob));
        conn.prepare_cached("DELETE FROM multipart_parts WHERE upload_id = ?1")?
            .execute([upload_id])?;
    }
    Ok(blobs)
}

pub(crate) fn create_upload(
    conn: &Connection,
    upload_id: &str,
    key: &str,
    http_metadata: &R2HttpMetadata,
    custom_metadata: &BTreeMap<String, String>,
    now: u64,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO multipart_uploads (upload_id, key, http_metadata, custom_metadata, state, created)
         VALUES (?1, ?2, ?3, ?4, 0, ?5)",
    )?
    .execute(params![
        upload_id,
        key,
        to_json(http_metadata)?,
        to_json(custom_metadata)?,
        now as i64
    ])?;
    Ok(())
}

/// The upload with this id, if it was created for this key.
pub(crate) fn get_upload(
    conn: &Connection,
    upload_id: &str,
    key: &str,
) -> rusqlite::Result<Option<UploadRow>> {
    conn.prepare_cached(
        "SELECT state, http_metadata, custom_metadata FROM multipart_uploads
         WHERE upload_id = ?1 AND key = ?2",
    )?
    .query_row([upload_id, key], |r| {
        Ok(UploadRow {
            state: r.get(0)?,
            http_metadata: json_col(r.get(1)?, 1)?,
            custom_metadata: json_col(r.get(2)?, 2)?,
        })
    })
    .optional()
}

/// Unfinished uploads created at or before `created_by` (ms).
pub(crate) fn uploads_created_by(
    conn: &Connection,
    created_by: u64,
) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT upload_id FROM multipart_uploads WHERE state = 0 AND created <= ?1",
    )?;
    let rows = stmt.query_map([i64::try_from(created_by).unwrap_or(i64::MAX)], |r| {
        r.get::<_, String>(0)
    })?;
    rows.collect()
}

pub(crate) fn set_upload_state(
    conn: &Connection,
    upload_id: &str,
    state: i64,
) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE multipart_uploads SET state = ?2 WHERE upload_id = ?1")?
        .execute(params![upload_id, state])?;
    Ok(())
}

/// Records a part, returning the blob of the part it replaces, if any.
pub(crate) fn put_part(
    conn: &Connection,
    upload_id: &str,
    part: &PartRow,
) -> rusqlite::Result<Option<String>> {
    let old: Option<String> = conn
        .prepare_cached(
            "SELECT blob FROM multipart_parts WHERE upload_id = ?1 AND part_number = ?2",
        )?
        .query_row(params![upload_id, part.part_number as i64], |r| r.get(0))
        .optional()?;
    conn.prepare_cached(
        "INSERT OR REPLACE INTO multipart_parts (upload_id, part_number, blob, size, md5)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        upload_id,
        part.part_number as i64,
        part.blob,
        part.size as i64,
        part.md5
    ])?;
    Ok(old)
}

pub(crate) fn delete_parts(
    conn: &Connection,
    upload_id: &str,
    keep: &[u32],
) -> rusqlite::Result<Vec<String>> {
    let mut removed = Vec::new();
    for part in parts_of(conn, upload_id)? {
        if !keep.contains(&part.part_number) {
            conn.prepare_cached(
                "DELETE FROM multipart_parts WHERE upload_id = ?1 AND part_number = ?2",
            )?
            .execute(params![upload_id, part.part_number as i64])?;
            removed.push(part.blob);
        }
    }
    Ok(removed)
}

/// Every blob file a row points at: what the start-up sweep must keep.
pub(crate) fn referenced_blobs(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut out = Vec::new();
    let mut stmt = conn.prepare("SELECT blob FROM objects WHERE blob IS NOT NULL")?;
    for b in stmt.query_map([], |r| r.get::<_, String>(0))? {
        out.push(b?);
    }
    let mut stmt = conn.prepare("SELECT blob FROM multipart_parts")?;
    for b in stmt.query_map([], |r| r.get::<_, String>(0))? {
        out.push(b?);
    }
    Ok(out)
}

/// Object rows in key order, strictly after `after` (or from `from`
/// inclusive), at most `limit` of them. Used by `list`.
pub(crate) fn scan_objects(
    conn: &Connection,
    lower: &Bound,
    limit: usize,
) -> rusqlite::Result<Vec<ObjectRow>> {
    let (op, value) = match lower {
        Bound::After(k) => (">", k.as_str()),
        Bound::From(k) => (">=", k.as_str()),
    };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {OBJECT_COLUMNS} FROM objects WHERE key {op} ?1 ORDER BY key LIMIT ?2"
    ))?;
    let rows = stmt.query_map(params![value, limit as i64], object_from_row)?;
    rows.collect()
}

/// The greatest key starting with `prefix` (bounded above by `end` when the
/// prefix has a successor).
pub(crate) fn last_key_with_prefix(
    conn: &Connection,
    prefix: &str,
    end: Option<&str>,
) -> rusqlite::Result<Option<String>> {
    let key: Option<String> = match end {
        Some(end) => conn
            .prepare_cached("SELECT max(key) FROM objects WHERE key >= ?1 AND key < ?2")?
            .query_row([prefix, end], |r| r.get(0))?,
        None => conn
            .prepare_cached("SELECT max(key) FROM objects WHERE key >= ?1")?
            .query_row([prefix], |r| r.get(0))?,
    };
    Ok(key)
}

pub(crate) enum Bound {
    After(String),
    From(String),
}

/// Unfinished uploads whose key starts with `prefix`, after the
/// (key, upload id) position `after`, by key then upload id: at most `limit`
/// of (key, upload id, created ms).
pub(crate) fn uploads_in_progress(
    conn: &Connection,
    prefix: &str,
    after: Option<(&str, &str)>,
    limit: usize,
) -> rusqlite::Result<Vec<(String, String, u64)>> {
    let (after_key, after_id) = after.unwrap_or(("", ""));
    let mut stmt = conn.prepare_cached(
        "SELECT key, upload_id, created FROM multipart_uploads
         WHERE state = 0 AND substr(key, 1, length(?1)) = ?1
           AND (key > ?2 OR (key = ?2 AND upload_id > ?3))
         ORDER BY key, upload_id LIMIT ?4",
    )?;
    let rows = stmt.query_map(
        params![
            prefix,
            after_key,
            after_id,
            i64::try_from(limit).unwrap_or(i64::MAX)
        ],
        |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?.max(0) as u64,
            ))
        },
    )?;
    rows.collect()
}

/// When an upload was created, if it was created for this key.
pub(crate) fn upload_created(
    conn: &Connection,
    upload_id: &str,
    key: &str,
) -> rusqlite::Result<Option<u64>> {
    conn.prepare_cached("SELECT created FROM multipart_uploads WHERE upload_id = ?1 AND key = ?2")?
        .query_row([upload_id, key], |r| r.get::<_, i64>(0))
        .optional()
        .map(|c| c.map(|c| c.max(0) as u64))
}
