//! Every embedded SQLite database Hearth opens goes through [`open`], so the
//! durability settings are the same everywhere, and every store's schema
//! goes through [`migrate`], so versioning works the same everywhere.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior, ffi};

/// How long a writer waits for another process (a CLI command beside a
/// running server) to release the database before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens (creating if needed, with parent directories) a SQLite database in
/// WAL mode with `synchronous=FULL`: a commit that returned has been fsynced,
/// so it survives `kill -9` and power loss.
///
/// A file that exists but is empty (zero bytes), or that is not a SQLite
/// database, is refused rather than silently started over: it once held
/// data, and an empty store in its place would hide the loss.
pub fn open(path: &Path) -> Result<Connection, OpenError> {
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent).map_err(|source| OpenError::CreateDir {
            path: parent.display().to_string(),
            source,
        })?;
    }
    if is_truncated(path) {
        return Err(OpenError::Empty {
            path: path.display().to_string(),
        });
    }
    if !path.exists() {
        create(path)?;
    }
    let sqlite_err = |source: rusqlite::Error| {
        if source.sqlite_error_code() == Some(rusqlite::ErrorCode::NotADatabase) {
            OpenError::NotADatabase {
                path: path.display().to_string(),
            }
        } else {
            OpenError::Sqlite {
                path: path.display().to_string(),
                source,
            }
        }
    };
    let conn = Connection::open(path).map_err(sqlite_err)?;
    configure(&conn).map_err(sqlite_err)?;
    Ok(conn)
}

/// Creates the database at `path` whole or not at all: it is made and
/// switched to WAL (which writes its header) under a temporary name, synced,
/// and linked into place, so a process killed meanwhile leaves no empty
/// file at `path` (which [`open`] would refuse) but at most a temporary.
/// Linking, unlike renaming, never replaces a database another process
/// created meanwhile.
fn create(path: &Path) -> Result<(), OpenError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", crate::fs::unique_suffix()));
    let io_err = |source: std::io::Error| OpenError::Create {
        path: path.display().to_string(),
        source,
    };
    let made = (|| {
        let conn = Connection::open(&tmp).map_err(|source| OpenError::Sqlite {
            path: tmp.display().to_string(),
            source,
        })?;
        configure(&conn).map_err(|source| OpenError::Sqlite {
            path: tmp.display().to_string(),
            source,
        })?;
        drop(conn);
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(io_err)?;
        match std::fs::hard_link(&tmp, path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_err(e)),
        }
        crate::fs::sync_dir(path.parent().unwrap_or(Path::new("."))).map_err(io_err)
    })();
    for suffix in ["", "-wal", "-shm"] {
        let mut p = tmp.clone().into_os_string();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
    made
}

/// Whether `path` is a zero-length file. SQLite never leaves one once a
/// connection has switched it to WAL, which [`open`] does first: that
/// writes the header to the main file, so even a database whose every
/// commit is still in the write-ahead log has one. (Only a process killed
/// between creating the file and that switch leaves zero bytes behind, and
/// then there was nothing to lose: the error says to delete it.)
fn is_truncated(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() == 0)
}

/// An empty in-memory database: something to put in a connection's place
/// while its file is closed and replaced.
pub fn placeholder() -> rusqlite::Result<Connection> {
    Connection::open_in_memory()
}

/// Applies Hearth's pragmas to an already open connection.
pub fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

/// Brings a store's schema to the newest version, recorded in SQLite's
/// `user_version`. `steps[i]` is the SQL that moves version `i` to `i + 1`,
/// so the code's version is `steps.len()`. Forward only: a database with a
/// newer version than the code is refused, never touched.
///
/// A store that existed before it was versioned keeps its first schema,
/// written with `IF NOT EXISTS`, as step 1: its unversioned (version 0)
/// database is then adopted as version 1 with every row kept.
pub fn migrate(conn: &mut Connection, path: &Path, steps: &[&str]) -> Result<(), OpenError> {
    let target = i64::try_from(steps.len()).unwrap_or(i64::MAX);
    let sqlite_err = |source| OpenError::Sqlite {
        path: path.display().to_string(),
        source,
    };
    let too_new = |found| OpenError::SchemaTooNew {
        path: path.display().to_string(),
        found,
        supported: target,
    };
    let found = user_version(conn).map_err(sqlite_err)?;
    if found > target {
        return Err(too_new(found));
    }
    if found == target {
        return Ok(());
    }
    // IMMEDIATE: two processes opening a fresh file at once take turns, and
    // the second sees the version the first committed.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sqlite_err)?;
    let found = user_version(&tx).map_err(sqlite_err)?;
    if found > target {
        return Err(too_new(found));
    }
    let from = usize::try_from(found).unwrap_or(0);
    for (i, step) in steps.iter().enumerate().skip(from) {
        tx.execute_batch(step)
            .map_err(|source| OpenError::Migrate {
                path: path.display().to_string(),
                version: i + 1,
                source,
            })?;
    }
    tx.pragma_update(None, "user_version", target)
        .map_err(sqlite_err)?;
    tx.commit().map_err(sqlite_err)?;
    Ok(())
}

/// The schema version a database records.
pub fn user_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.pragma_query_value(None, "user_version", |r| r.get(0))
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot create directory {path}: {source}")]
    CreateDir {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot open SQLite database {path}: {source}")]
    Sqlite {
        path: String,
        source: rusqlite::Error,
    },
    #[error("cannot create SQLite database {path}: {source}")]
    Create {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "SQLite database {path} is empty (0 bytes) but should hold a database: it was truncated or replaced. \
         Restore it from a backup, or delete it to start this store empty"
    )]
    Empty { path: String },
    #[error(
        "{path} is not a SQLite database (corrupt or overwritten). \
         Restore it from a backup, or move it away to start this store empty"
    )]
    NotADatabase { path: String },
    #[error(
        "SQLite database {path} has schema version {found}; this build of Hearth understands up to {supported}. \
         It was written by a newer Hearth: run that one, or move the file away to start empty"
    )]
    SchemaTooNew {
        path: String,
        found: i64,
        supported: i64,
    },
    #[error("cannot bring SQLite database {path} to schema version {version}: {source}")]
    Migrate {
        path: String,
        version: usize,
        source: rusqlite::Error,
    },
}

/// SQLite's name for a primary result code (`SQLITE_CONSTRAINT`, ...), the
/// way D1 and Durable Object SQL report failures; unknown codes read as
/// `SQLITE_ERROR`.
pub fn code_name(code: i32) -> &'static str {
    match code {
        ffi::SQLITE_ERROR => "SQLITE_ERROR",
        ffi::SQLITE_INTERNAL => "SQLITE_INTERNAL",
        ffi::SQLITE_PERM => "SQLITE_PERM",
        ffi::SQLITE_ABORT => "SQLITE_ABORT",
        ffi::SQLITE_BUSY => "SQLITE_BUSY",
        ffi::SQLITE_LOCKED => "SQLITE_LOCKED",
        ffi::SQLITE_NOMEM => "SQLITE_NOMEM",
        ffi::SQLITE_READONLY => "SQLITE_READONLY",
        ffi::SQLITE_INTERRUPT => "SQLITE_INTERRUPT",
        ffi::SQLITE_IOERR => "SQLITE_IOERR",
        ffi::SQLITE_CORRUPT => "SQLITE_CORRUPT",
        ffi::SQLITE_NOTFOUND => "SQLITE_NOTFOUND",
        ffi::SQLITE_FULL => "SQLITE_FULL",
        ffi::SQLITE_CANTOPEN => "SQLITE_CANTOPEN",
        ffi::SQLITE_PROTOCOL => "SQLITE_PROTOCOL",
        ffi::SQLITE_EMPTY => "SQLITE_EMPTY",
        ffi::SQLITE_SCHEMA => "SQLITE_SCHEMA",
        ffi::SQLITE_TOOBIG => "SQLITE_TOOBIG",
        ffi::SQLITE_CONSTRAINT => "SQLITE_CONSTRAINT",
        ffi::SQLITE_MISMATCH => "SQLITE_MISMATCH",
        ffi::SQLITE_MISUSE => "SQLITE_MISUSE",
        ffi::SQLITE_NOLFS => "SQLITE_NOLFS",
        ffi::SQLITE_AUTH => "SQLITE_AUTH",
        ffi::SQLITE_FORMAT => "SQLITE_FORMAT",
        ffi::SQLITE_RANGE => "SQLITE_RANGE",
        ffi::SQLITE_NOTADB => "SQLITE_NOTADB",
        _ => "SQLITE_ERROR",
    }
}

/// SQLite's name for the extended result codes D1 spells out after the
/// primary one; `None` for the rest.
pub fn extended_code_name(code: i32) -> Option<&'static str> {
    Some(match code {
        ffi::SQLITE_CONSTRAINT_CHECK => "SQLITE_CONSTRAINT_CHECK",
        ffi::SQLITE_CONSTRAINT_FOREIGNKEY => "SQLITE_CONSTRAINT_FOREIGNKEY",
        ffi::SQLITE_CONSTRAINT_NOTNULL => "SQLITE_CONSTRAINT_NOTNULL",
        ffi::SQLITE_CONSTRAINT_PRIMARYKEY => "SQLITE_CONSTRAINT_PRIMARYKEY",
        ffi::SQLITE_CONSTRAINT_TRIGGER => "SQLITE_CONSTRAINT_TRIGGER",
        ffi::SQLITE_CONSTRAINT_UNIQUE => "SQLITE_CONSTRAINT_UNIQUE",
        ffi::SQLITE_CONSTRAINT_ROWID => "SQLITE_CONSTRAINT_ROWID",
        ffi::SQLITE_CONSTRAINT_DATATYPE => "SQLITE_CONSTRAINT_DATATYPE",
        _ => return None,
    })
}

/// SQLite's English text for a result code.
pub fn error_string(code: i32) -> String {
    // SAFETY: sqlite3_errstr returns a pointer to a static, NUL-terminated
    // English string for any code (or null), which is only read here.
    unsafe {
        let p = ffi::sqlite3_errstr(code);
        if p.is_null() {
            return "unknown error".to_owned();
        }
        std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_creates_parents_and_uses_wal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/c.sqlite");
        let conn = open(&path).unwrap();
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let sync: i64 = conn
            .pragma_query_value(None, "synchronous", |r| r.get(0))
            .unwrap();
        assert_eq!(sync, 2, "synchronous=FULL");
        assert!(path.exists());
        drop(conn);
        // What open() leaves behind is never mistaken for a truncated file.
        assert!(std::fs::metadata(&path).unwrap().len() > 0);
        open(&path).unwrap();
    }

    #[test]
    fn a_new_database_appears_whole_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new.sqlite");
        // What a process killed while creating another database left.
        let stale = dir.path().join(".new.sqlite.tmp-1-0");
        std::fs::write(&stale, b"").unwrap();
        let conn = open(&path).unwrap();
        conn.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
            .unwrap();
        drop(conn);
        // The header (WAL mode included) was on disk before the file had
        // its name, so the name never points at an empty file.
        let header = std::fs::read(&path).unwrap();
        assert!(header.starts_with(b"SQLite format 3\0"));
        assert_eq!((header[18], header[19]), (2, 2), "WAL read/write versions");
        let left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".tmp-") && n != ".new.sqlite.tmp-1-0")
            .collect();
        assert!(left.is_empty(), "{left:?}");
        let n: i64 = open(&path)
            .unwrap()
            .query_row("SELECT x FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1);
    }

    #[test]
    fn an_empty_file_is_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("queues.sqlite");
        std::fs::write(&path, b"").unwrap();
        let e = open(&path).unwrap_err();
        assert!(matches!(e, OpenError::Empty { .. }), "{e}");
        let text = e.to_string();
        assert!(
            text.contains("queues.sqlite") && text.contains("delete it"),
            "{text}"
        );
    }

    #[test]
    fn a_file_that_is_not_a_database_is_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cron.sqlite");
        std::fs::write(&path, vec![0x5a; 8192]).unwrap();
        let e = open(&path).unwrap_err();
        assert!(matches!(e, OpenError::NotADatabase { .. }), "{e}");
        assert!(e.to_string().contains("cron.sqlite"), "{e}");
    }

    const V1: &str = "CREATE TABLE IF NOT EXISTS t (a INTEGER);";
    const V2: &str = "ALTER TABLE t ADD COLUMN b TEXT;";

    #[test]
    fn migrate_runs_each_step_once_and_records_the_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite");
        let mut conn = open(&path).unwrap();
        migrate(&mut conn, &path, &[V1]).unwrap();
        assert_eq!(user_version(&conn).unwrap(), 1);
        conn.execute("INSERT INTO t (a) VALUES (7)", []).unwrap();
        migrate(&mut conn, &path, &[V1]).unwrap();
        // Forward: only the new step runs (re-running V2 would fail).
        migrate(&mut conn, &path, &[V1, V2]).unwrap();
        migrate(&mut conn, &path, &[V1, V2]).unwrap();
        assert_eq!(user_version(&conn).unwrap(), 2);
        let a: i64 = conn.query_row("SELECT a FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(a, 7);
    }

    #[test]
    fn migrate_adopts_an_unversioned_database_keeping_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite");
        let mut conn = open(&path).unwrap();
        conn.execute_batch("CREATE TABLE t (a INTEGER); INSERT INTO t VALUES (1);")
            .unwrap();
        migrate(&mut conn, &path, &[V1]).unwrap();
        assert_eq!(user_version(&conn).unwrap(), 1);
        let n: i64 = conn
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1);
    }

    #[test]
    fn migrate_refuses_a_newer_database_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite");
        let mut conn = open(&path).unwrap();
        conn.pragma_update(None, "user_version", 5).unwrap();
        let e = migrate(&mut conn, &path, &[V1]).unwrap_err();
        assert!(
            matches!(
                e,
                OpenError::SchemaTooNew {
                    found: 5,
                    supported: 1,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("has schema version 5"), "{e}");
        let tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
            .unwrap();
        assert_eq!(tables, 0);
    }

    #[test]
    fn a_failing_step_names_its_version_and_leaves_the_old_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite");
        let mut conn = open(&path).unwrap();
        migrate(&mut conn, &path, &[V1]).unwrap();
        let e = migrate(&mut conn, &path, &[V1, "NOT SQL"]).unwrap_err();
        assert!(matches!(e, OpenError::Migrate { version: 2, .. }), "{e}");
        assert_eq!(user_version(&conn).unwrap(), 1);
    }

    #[test]
    fn code_names() {
        assert_eq!(code_name(ffi::SQLITE_CONSTRAINT), "SQLITE_CONSTRAINT");
        assert_eq!(code_name(9999), "SQLITE_ERROR");
        assert_eq!(
            extended_code_name(ffi::SQLITE_CONSTRAINT_UNIQUE),
            Some("SQLITE_CONSTRAINT_UNIQUE")
        );
        assert_eq!(extended_code_name(ffi::SQLITE_IOERR_READ), None);
    }
}
