//! Every embedded SQLite database Hearth opens goes through [`open`], so the
//! durability settings are the same everywhere.

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;

/// How long a writer waits for another process (a CLI command beside a
/// running server) to release the database before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens (creating if needed, with parent directories) a SQLite database in
/// WAL mode with `synchronous=FULL`: a commit that returned has been fsynced,
/// so it survives `kill -9` and power loss.
pub fn open(path: &Path) -> Result<Connection, OpenError> {
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent).map_err(|source| OpenError::CreateDir {
            path: parent.display().to_string(),
            source,
        })?;
    }
    let conn = Connection::open(path).map_err(|source| OpenError::Sqlite {
        path: path.display().to_string(),
        source,
    })?;
    configure(&conn).map_err(|source| OpenError::Sqlite {
        path: path.display().to_string(),
        source,
    })?;
    Ok(conn)
}

/// Applies Hearth's pragmas to an already open connection.
pub fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
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
    }
}
