//! Splits the text given to `sql.exec()` into its statements without
//! preparing them: a statement may only be prepared once the ones before it
//! have run (`CREATE TABLE t ...; INSERT INTO t ...`), yet whether it is the
//! last one must be known before it runs.

use std::ffi::CString;

/// The statements of `sql`, in order; pieces holding only whitespace and
/// comments are left out.
pub(crate) fn split_statements(sql: &str) -> Vec<&str> {
    let bytes = sql.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let mut has_content = false;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\'' | b'"' | b'`' => {
                has_content = true;
                i = skip_quoted(bytes, i, bytes[i]);
                continue;
            }
            b'[' => {
                has_content = true;
                i = skip_until(bytes, i + 1, b"]");
                continue;
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                i = skip_until(bytes, i + 2, b"\n");
                continue;
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i = skip_until(bytes, i + 2, b"*/");
                continue;
            }
            b';' => {
                let piece = &sql[start..=i];
                // A trigger body holds `;`-terminated statements of its own;
                // SQLite itself says whether the piece is complete.
                if !has_content || !might_be_trigger(piece) || is_complete(piece) {
                    if has_content {
                        out.push(piece);
                    }
                    start = i + 1;
                    has_content = false;
                }
            }
            b if b.is_ascii_whitespace() => {}
            _ => has_content = true,
        }
        i += 1;
    }
    if has_content {
        out.push(&sql[start..]);
    }
    out
}

/// Index just past the closing quote (a doubled quote is an escaped one).
fn skip_quoted(bytes: &[u8], open: usize, quote: u8) -> usize {
    let mut i = open + 1;
    while i < bytes.len() {
        if bytes[i] == quote {
            if bytes.get(i + 1) == Some(&quote) {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    bytes.len()
}

/// Index just past the first `end` at or after `from` (or the end of text).
fn skip_until(bytes: &[u8], from: usize, end: &[u8]) -> usize {
    let mut i = from;
    while i + end.len() <= bytes.len() {
        if &bytes[i..i + end.len()] == end {
            return i + end.len();
        }
        i += 1;
    }
    bytes.len()
}

fn might_be_trigger(piece: &str) -> bool {
    piece.to_ascii_lowercase().contains("trigger")
}

fn is_complete(piece: &str) -> bool {
    match CString::new(piece) {
        // SAFETY: sqlite3_complete only reads the NUL-terminated string.
        Ok(c) => unsafe { rusqlite::ffi::sqlite3_complete(c.as_ptr()) != 0 },
        Err(_) => true,
    }
}

/// Whether an `ALTER TABLE` statement renames something to a reserved
/// `_cf_` name. Stock SQLite does not show the new name to the authorizer,
/// so the text is checked instead.
pub(crate) fn renames_into_reserved(statement: &str) -> bool {
    let lower = statement.to_ascii_lowercase();
    let Some(at) = lower.find("rename") else {
        return false;
    };
    lower[at..]
        .split(|c: char| c.is_whitespace() || matches!(c, '(' | ')' | ',' | ';' | '.'))
        .map(|w| w.trim_matches(|c| matches!(c, '"' | '\'' | '`' | '[' | ']')))
        .any(|w| w.starts_with("_cf_"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_top_level_semicolons() {
        assert_eq!(
            split_statements("SELECT 1; SELECT ';' ; -- c;\n SELECT \"a;b\"; /* ; */"),
            ["SELECT 1;", " SELECT ';' ;", " -- c;\n SELECT \"a;b\";"]
        );
        assert_eq!(split_statements("  ;; -- x\n"), Vec::<&str>::new());
        assert_eq!(split_statements("SELECT 1"), ["SELECT 1"]);
    }

    #[test]
    fn keeps_trigger_bodies_whole() {
        let sql = "CREATE TRIGGER tr AFTER INSERT ON t BEGIN INSERT INTO u VALUES (1); DELETE FROM u; END; SELECT 2";
        let parts = split_statements(sql);
        assert_eq!(parts.len(), 2);
        assert!(parts[0].ends_with("END;"));
    }

    #[test]
    fn finds_renames_into_reserved_names() {
        assert!(renames_into_reserved("ALTER TABLE t RENAME TO _cf_x"));
        assert!(renames_into_reserved("alter table t rename to \"_CF_x\""));
        assert!(!renames_into_reserved("ALTER TABLE t RENAME TO u"));
        assert!(!renames_into_reserved("ALTER TABLE t ADD COLUMN c"));
    }
}
