//! What a query's SQL text says before SQLite sees it: its statements, with
//! `DELETE/UPDATE ... LIMIT` rewritten ([`crate::limit`]), and which of them
//! are PRAGMAs. It depends on the text alone, never on the schema, so it is
//! worked out once per text and kept in a bounded LRU. Whatever depends on
//! the schema (whether a rewritten statement's table has a rowid, whether a
//! statement writes) is checked at every call.

use std::ops::Range;
use std::sync::{Arc, Mutex};

use hashlink::LruCache;
use rusqlite::Statement;

use crate::limit;
use crate::split::split_statements;

/// Texts kept. Each is at most [`MAX_CACHED_SQL_BYTES`], so the cache holds
/// at most about 1 MiB of SQL (twice that when every statement was rewritten).
const CAPACITY: usize = 128;

/// Longer SQL is analysed at every call: it is rare in hot paths, and its
/// own preparation dwarfs the analysis.
const MAX_CACHED_SQL_BYTES: usize = 8 * 1024;

/// One statement of a query.
#[derive(Debug)]
pub(crate) struct Piece {
    /// Where the statement lies in the query's text, unless it was rewritten.
    span: Range<usize>,
    rewritten: Option<Box<str>>,
    /// SQLite applies flag pragmas at prepare time (see `sqlite::is_pragma`).
    pub pragma: bool,
    /// The target table of a rewritten `LIMIT` statement, which must not be
    /// `WITHOUT ROWID`; checked per call, as the table can be re-created.
    pub limit_table: Option<Box<str>>,
}

/// When column names were read: the count of write calls and the pager's
/// data version. A schema changes only by a commit, which moves one of the
/// two (a write call here, or another connection's commit, which the pager
/// sees when a read begins), so names read at an equal epoch are current.
pub(crate) type Epoch = (u64, u32);

/// A statement's column names, and whether each appears once.
#[derive(Debug, Clone)]
pub(crate) struct ColumnNames {
    pub names: Arc<[String]>,
    pub distinct: bool,
}

impl ColumnNames {
    #[cfg(test)]
    pub fn new_for_test(names: Arc<[String]>) -> Self {
        Self::new(names)
    }

    fn new(names: Arc<[String]>) -> Self {
        let distinct = !names
            .iter()
            .enumerate()
            .any(|(i, c)| names[..i].contains(c));
        Self { names, distinct }
    }
}

/// The column names a query's last statement returned, and when.
#[derive(Debug)]
struct Columns {
    names: ColumnNames,
    epoch: Option<Epoch>,
}

/// A query's statements, and the column names its last statement returned
/// the last time it ran.
#[derive(Debug)]
pub(crate) struct Analysis {
    sql: Arc<str>,
    /// Up to the first statement the rewrite cannot serve, if any.
    pub pieces: Box<[Piece]>,
    /// The statement after the last of `pieces` is `UPDATE ... FROM ...
    /// LIMIT`, which the rewrite cannot serve: the query fails.
    pub update_from_limit: bool,
    columns: Mutex<Option<Columns>>,
}

impl Analysis {
    fn new(sql: &str) -> Self {
        let base = sql.as_ptr() as usize;
        let mut pieces = Vec::new();
        let mut update_from_limit = false;
        for piece in split_statements(sql) {
            // Pieces are slices of `sql`, so their offsets are exact.
            let start = piece.as_ptr() as usize - base;
            let span = start..start + piece.len();
            let (rewritten, limit_table) = match limit::rewrite(piece) {
                Ok(None) => (None, None),
                Ok(Some(r)) => (Some(r.sql.into_boxed_str()), Some(r.table.into_boxed_str())),
                Err(limit::Unsupported::UpdateFrom) => {
                    update_from_limit = true;
                    break;
                }
            };
            let pragma = crate::sqlite::is_pragma(rewritten.as_deref().unwrap_or(piece));
            pieces.push(Piece {
                span,
                rewritten,
                pragma,
                limit_table,
            });
        }
        Self {
            sql: Arc::from(sql),
            pieces: pieces.into_boxed_slice(),
            update_from_limit,
            columns: Mutex::new(None),
        }
    }

    /// The text SQLite prepares for `piece`.
    pub fn text<'a>(&'a self, piece: &'a Piece) -> &'a str {
        piece
            .rewritten
            .as_deref()
            .unwrap_or_else(|| &self.sql[piece.span.clone()])
    }

    /// The column names of `stmt`, which has just run this query's last
    /// statement at `epoch` (`None` inside a write call, where the schema
    /// may have just changed). Read after stepping, since a statement SQLite
    /// re-prepared for a schema change may have other columns. The last
    /// list is reused as it is when read at the same epoch, and otherwise
    /// when every name still matches, so a repeated query allocates none.
    pub fn columns(&self, stmt: &Statement<'_>, epoch: Option<Epoch>) -> ColumnNames {
        let mut last = match self.columns.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(seen) = last.as_mut() {
            if epoch.is_some() && seen.epoch == epoch {
                return seen.names.clone();
            }
            let count = stmt.column_count();
            if seen.names.names.len() == count
                && seen
                    .names
                    .names
                    .iter()
                    .enumerate()
                    .all(|(i, c)| stmt.column_name(i).is_ok_and(|n| n == c))
            {
                seen.epoch = epoch;
                return seen.names.clone();
            }
        }
        let names = ColumnNames::new(stmt.column_names().map(str::to_owned).collect());
        *last = Some(Columns {
            names: names.clone(),
            epoch,
        });
        names
    }
}

/// Analyses by SQL text, least recently used out first.
#[derive(Debug)]
pub(crate) struct Analyses {
    cache: LruCache<Arc<str>, Arc<Analysis>>,
}

impl Analyses {
    pub fn new() -> Self {
        Self {
            cache: LruCache::new(CAPACITY),
        }
    }

    /// The analysis of `sql`, from the cache when it is there.
    pub fn get(&mut self, sql: &str) -> Arc<Analysis> {
        if let Some(a) = self.cache.get(sql) {
            return a.clone();
        }
        let analysis = Arc::new(Analysis::new(sql));
        if sql.len() <= MAX_CACHED_SQL_BYTES {
            self.cache.insert(analysis.sql.clone(), analysis.clone());
        }
        analysis
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.cache.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_keep_text_and_flags() {
        let a = Analysis::new("SELECT 1; pragma foreign_keys = on; DELETE FROM t LIMIT 2");
        let texts: Vec<&str> = a.pieces.iter().map(|p| a.text(p)).collect();
        assert_eq!(
            texts,
            vec![
                "SELECT 1;",
                " pragma foreign_keys = on;",
                " DELETE FROM t WHERE rowid IN (SELECT rowid FROM t LIMIT 2)"
            ]
        );
        let flags: Vec<(bool, Option<&str>)> = a
            .pieces
            .iter()
            .map(|p| (p.pragma, p.limit_table.as_deref()))
            .collect();
        assert_eq!(flags, vec![(false, None), (true, None), (false, Some("t"))]);
    }

    #[test]
    fn cache_is_bounded_and_skips_long_text() {
        let mut cache = Analyses::new();
        for i in 0..CAPACITY * 3 {
            cache.get(&format!("SELECT {i}"));
        }
        assert_eq!(cache.len(), CAPACITY);
        let long = format!("SELECT '{}'", "x".repeat(MAX_CACHED_SQL_BYTES));
        let a = cache.get(&long);
        assert_eq!(a.text(&a.pieces[0]), long);
        assert_eq!(cache.len(), CAPACITY);
        assert!(cache.cache.get(long.as_str()).is_none());
    }

    #[test]
    fn statements_stop_at_one_the_rewrite_cannot_serve() {
        let a = Analysis::new(
            "DELETE FROM a LIMIT 1; UPDATE t SET a = u.a FROM u WHERE t.id = u.id LIMIT 1; SELECT 1",
        );
        assert!(a.update_from_limit);
        assert_eq!(a.pieces.len(), 1);
        assert_eq!(a.pieces[0].limit_table.as_deref(), Some("a"));
        assert!(!Analysis::new("SELECT 1").update_from_limit);
    }
}
