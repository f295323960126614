//! Migrations the way `wrangler d1 migrations create|list|apply` does them:
//! `NNNN_name.sql` files in a directory (default `migrations`), applied in
//! number order, each in its own transaction together with its row in the
//! migrations table (default `d1_migrations`, columns `id`, `name`,
//! `applied_at`). A migration is known by its file name; one that fails is
//! rolled back whole and stops the run, leaving earlier ones applied.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use hearth_core::SharedClock;

use crate::error::{D1Error, MigrationError};
use crate::split::split_statements;
use crate::sqlite::Query;
use crate::validate::is_allowed_name;
use crate::{D1Database, D1Value};

pub const DEFAULT_MIGRATIONS_DIR: &str = "migrations";
pub const DEFAULT_MIGRATIONS_TABLE: &str = "d1_migrations";

/// A migration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    /// The file name, e.g. `0001_add_users.sql`; what the table records.
    pub name: String,
    /// The leading number, when the name has one.
    pub number: Option<u64>,
    pub path: PathBuf,
}

/// A row of the migrations table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedMigration {
    pub id: i64,
    pub name: String,
    /// `YYYY-MM-DD HH:MM:SS` in UTC, like SQLite's `CURRENT_TIMESTAMP`.
    pub applied_at: String,
}

/// Writes the next migration file, `NNNN_<message>.sql` (four digits at
/// least, spaces in the message turned into `_`), and returns its path.
/// Creates `dir` when missing.
pub fn create(dir: &Path, message: &str, clock: &SharedClock) -> Result<PathBuf, D1Error> {
    let trimmed = message.trim();
    if trimmed.is_empty() {
        return Err(MigrationError::EmptyName.into());
    }
    // Wrangler only replaces spaces; separators are replaced too so the
    // file always lands in `dir`.
    let name: String = trimmed
        .chars()
        .map(|c| match c {
            ' ' | '/' | '\\' => '_',
            c => c,
        })
        .collect();
    fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    let next = read_migrations(dir)?
        .iter()
        .filter_map(|m| m.number)
        .max()
        .map_or(0, |n| n + 1);
    let number = format!("{next:04}");
    let path = dir.join(format!("{number}_{name}.sql"));
    let header = format!(
        "-- Migration number: {number} \t {}\n",
        iso_timestamp(clock.now_ms())
    );
    hearth_core::fs::write_atomic(&path, header.as_bytes()).map_err(|e| io_err(&path, e))?;
    Ok(path)
}

/// The migrations in `dir` not yet recorded in `table`, in apply order.
pub fn list(db: &D1Database, dir: &Path, table: &str) -> Result<Vec<Migration>, D1Error> {
    let all = migrations_in(dir)?;
    ensure_table(db, table)?;
    let applied: HashSet<String> = applied(db, table)?.into_iter().map(|m| m.name).collect();
    Ok(all
        .into_iter()
        .filter(|m| !applied.contains(&m.name))
        .collect())
}

/// The rows of the migrations table, by id.
pub fn applied(db: &D1Database, table: &str) -> Result<Vec<AppliedMigration>, D1Error> {
    let table = quoted_table(table)?;
    ensure_table_quoted(db, &table)?;
    let rows = db
        .prepare(format!(
            "SELECT id, name, applied_at FROM {table} ORDER BY id"
        ))
        .raw(false)?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let mut it = row.into_iter();
            let id = it.next().and_then(|v| v.as_i64()).unwrap_or(0);
            let name = text(it.next());
            let applied_at = text(it.next());
            AppliedMigration {
                id,
                name,
                applied_at,
            }
        })
        .collect())
}

/// Applies every unapplied migration in order, each file and its table row
/// in one transaction. Stops at the first failure, naming the file; the
/// ones before it stay applied. Returns the migrations it applied.
pub fn apply(
    db: &D1Database,
    dir: &Path,
    table: &str,
    clock: &SharedClock,
) -> Result<Vec<Migration>, D1Error> {
    let pending = list(db, dir, table)?;
    let quoted = quoted_table(table)?;
    let insert = format!("INSERT INTO {quoted} (name, applied_at) VALUES (?1, ?2)");
    let mut done = Vec::with_capacity(pending.len());
    for migration in pending {
        let sql = fs::read_to_string(&migration.path).map_err(|e| io_err(&migration.path, e))?;
        let statements = strip_dump_transaction(split_statements(&sql));
        let record = [
            D1Value::Text(migration.name.clone()),
            D1Value::Text(sql_timestamp(clock.now_ms())),
        ];
        let mut queries: Vec<Query<'_>> = statements
            .iter()
            .map(|s| Query {
                sql: s,
                params: &[],
            })
            .collect();
        queries.push(Query {
            sql: &insert,
            params: &record,
        });
        db.run_queries(&queries)
            .map_err(|(_, e)| MigrationError::Failed {
                name: migration.name.clone(),
                message: e.to_string(),
            })?;
        done.push(migration);
    }
    Ok(done)
}

/// `sqlite3 .dump` output wraps its statements in `BEGIN TRANSACTION; ...
/// COMMIT;` (after a leading `PRAGMA foreign_keys=OFF;`). Each migration
/// already runs in a transaction, so that one wrapper goes; any other
/// transaction statement is left for the policy to refuse.
fn strip_dump_transaction(mut statements: Vec<&str>) -> Vec<&str> {
    let norm = |s: &str| {
        s.trim()
            .trim_end_matches(';')
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_ascii_uppercase()
    };
    let begin = statements
        .iter()
        .position(|s| norm(s) == "BEGIN TRANSACTION");
    let commit = statements.iter().rposition(|s| norm(s) == "COMMIT");
    if let (Some(b), Some(c)) = (begin, commit)
        && b < c
    {
        statements.remove(c);
        statements.remove(b);
    }
    statements
}

fn migrations_in(dir: &Path) -> Result<Vec<Migration>, D1Error> {
    if !dir.is_dir() {
        return Err(MigrationError::NoMigrationsDir {
            dir: dir.to_path_buf(),
        }
        .into());
    }
    read_migrations(dir)
}

/// Every `*.sql` file in `dir`, numbered ones first by number, then by name.
fn read_migrations(dir: &Path) -> Result<Vec<Migration>, D1Error> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| io_err(dir, e))? {
        let entry = entry.map_err(|e| io_err(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".sql") || !entry.path().is_file() {
            continue;
        }
        let digits: String = name.chars().take_while(char::is_ascii_digit).collect();
        out.push(Migration {
            number: digits.parse().ok(),
            path: entry.path(),
            name,
        });
    }
    out.sort_by(|a, b| {
        (a.number.is_none(), a.number, &a.name).cmp(&(b.number.is_none(), b.number, &b.name))
    });
    Ok(out)
}

fn ensure_table(db: &D1Database, table: &str) -> Result<(), D1Error> {
    ensure_table_quoted(db, &quoted_table(table)?)
}

fn ensure_table_quoted(db: &D1Database, quoted: &str) -> Result<(), D1Error> {
    db.prepare(format!(
        "CREATE TABLE IF NOT EXISTS {quoted} (
            id         INTEGER PRIMARY KEY AUTOINCREMENT,
            name       TEXT UNIQUE,
            applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL
        )"
    ))
    .run()
    .map(|_| ())
}

fn quoted_table(table: &str) -> Result<String, D1Error> {
    let valid = !table.is_empty()
        && table
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && is_allowed_name(table);
    if valid {
        Ok(format!("\"{table}\""))
    } else {
        Err(MigrationError::InvalidTableName(table.to_owned()).into())
    }
}

fn text(v: Option<D1Value>) -> String {
    match v {
        Some(D1Value::Text(s)) => s,
        Some(D1Value::Integer(i)) => i.to_string(),
        Some(D1Value::Real(f)) => f.to_string(),
        _ => String::new(),
    }
}

fn io_err(path: &Path, e: std::io::Error) -> D1Error {
    MigrationError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
    .into()
}

fn sql_timestamp(ms: u64) -> String {
    hearth_core::calendar::UtcDateTime::from_unix_ms(ms as i64).sql()
}

fn iso_timestamp(ms: u64) -> String {
    hearth_core::calendar::UtcDateTime::from_unix_ms(ms as i64).iso()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(sql_timestamp(0), "1970-01-01 00:00:00");
        // 2024-02-29T12:34:56.789Z, a leap day.
        assert_eq!(iso_timestamp(1_709_210_096_789), "2024-02-29T12:34:56.789Z");
        assert_eq!(sql_timestamp(1_709_210_096_789), "2024-02-29 12:34:56");
    }

    #[test]
    fn dump_wrapper_is_removed_only_when_balanced() {
        let s = vec!["BEGIN TRANSACTION;", " CREATE TABLE a(x);", "\nCOMMIT;"];
        assert_eq!(strip_dump_transaction(s), vec![" CREATE TABLE a(x);"]);
        let s = vec!["CREATE TABLE a(x);", "COMMIT;"];
        assert_eq!(strip_dump_transaction(s.clone()), s);
        let s = vec![
            "PRAGMA foreign_keys=OFF;",
            "BEGIN TRANSACTION;",
            "CREATE TABLE a(x);",
            "COMMIT;",
        ];
        assert_eq!(
            strip_dump_transaction(s),
            vec!["PRAGMA foreign_keys=OFF;", "CREATE TABLE a(x);"]
        );
    }
}
