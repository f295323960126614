//! Cutting SQL text into statements without preparing it: later statements
//! may depend on tables the earlier ones create, so each is prepared only
//! when its turn comes, yet whether one is the last must be known first.
//! D1 (`exec`, migrations, `batch` input) and Durable Object SQL
//! (`sql.exec`) share this one lexer.

use std::ffi::CString;

/// Lexical state of a scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LexState {
    #[default]
    Code,
    /// Inside a `'`, `"` or `` ` `` quoted string or name.
    Quote(u8),
    /// Inside a `[bracketed]` name.
    Bracket,
    LineComment,
    BlockComment,
}

/// What the scanner reports at a byte outside comments.
enum Token {
    /// A string or name opens here.
    Open,
    /// Any other byte of code.
    Byte(u8),
}

/// Walks `sql`, calling `on` at each byte of code (`i`, token), and returns
/// the state at the end. Bytes inside strings and comments are skipped.
fn scan(sql: &str, mut on: impl FnMut(usize, Token)) -> LexState {
    let bytes = sql.as_bytes();
    let mut state = LexState::Code;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match state {
            LexState::Code => match b {
                b'\'' | b'"' | b'`' => {
                    state = LexState::Quote(b);
                    on(i, Token::Open);
                }
                b'[' => {
                    state = LexState::Bracket;
                    on(i, Token::Open);
                }
                b'-' if bytes.get(i + 1) == Some(&b'-') => {
                    state = LexState::LineComment;
                    i += 1;
                }
                b'/' if bytes.get(i + 1) == Some(&b'*') => {
                    state = LexState::BlockComment;
                    i += 1;
                }
                _ => on(i, Token::Byte(b)),
            },
            LexState::Quote(q) => {
                if b == q {
                    // A doubled quote is an escaped quote and stays inside.
                    if bytes.get(i + 1) == Some(&q) {
                        i += 1;
                    } else {
                        state = LexState::Code;
                    }
                }
            }
            LexState::Bracket => {
                if b == b']' {
                    state = LexState::Code;
                }
            }
            LexState::LineComment => {
                if b == b'\n' {
                    state = LexState::Code;
                }
            }
            LexState::BlockComment => {
                if b == b'*' && bytes.get(i + 1) == Some(&b'/') {
                    state = LexState::Code;
                    i += 1;
                }
            }
        }
        i += 1;
    }
    state
}

/// Whether SQLite considers `sql` to end with a complete statement. This
/// is what tells a `;` inside `CREATE TRIGGER ... BEGIN ... END` from one
/// that ends the statement.
pub fn is_complete(sql: &str) -> bool {
    match CString::new(sql) {
        // SAFETY: `text` is a valid NUL-terminated string that outlives the
        // call, and sqlite3_complete only reads it.
        Ok(text) => unsafe { rusqlite::ffi::sqlite3_complete(text.as_ptr()) != 0 },
        // SQLite stops reading at a NUL byte anyway.
        Err(_) => true,
    }
}

/// Only a trigger body holds a `;` that does not end its statement, so
/// SQLite is asked only about pieces that could be one.
fn ends_statement(piece: &str) -> bool {
    !piece.to_ascii_lowercase().contains("trigger") || is_complete(piece)
}

/// Splits `sql` into statements, in order, each with its terminating `;`
/// when it has one. Pieces holding only whitespace and comments are
/// dropped; a comment before a statement stays part of it.
pub fn split_statements(sql: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut has_code = false;
    scan(sql, |i, token| match token {
        Token::Byte(b';') => {
            if !has_code {
                start = i + 1;
            } else if ends_statement(&sql[start..=i]) {
                out.push(&sql[start..=i]);
                start = i + 1;
                has_code = false;
            }
        }
        Token::Byte(b) if b.is_ascii_whitespace() => {}
        Token::Byte(_) | Token::Open => has_code = true,
    });
    if has_code {
        out.push(&sql[start..]);
    }
    out
}

/// Parenthesis depth and lexical state at the end of `sql`: whether a
/// statement written over several lines is still open.
pub fn scan_end(sql: &str) -> (i64, LexState) {
    let mut depth = 0i64;
    let state = scan(sql, |_, token| match token {
        Token::Byte(b'(') => depth += 1,
        Token::Byte(b')') => depth -= 1,
        _ => {}
    });
    (depth, state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_semicolons_outside_strings_and_comments() {
        let sql = "CREATE TABLE t (a TEXT); INSERT INTO t VALUES ('x;y'); -- c;\n/* ; */ SELECT 1";
        assert_eq!(
            split_statements(sql),
            vec![
                "CREATE TABLE t (a TEXT);",
                " INSERT INTO t VALUES ('x;y');",
                " -- c;\n/* ; */ SELECT 1"
            ]
        );
        assert_eq!(
            split_statements("SELECT 1; SELECT ';' ; -- c;\n SELECT \"a;b\"; /* ; */"),
            ["SELECT 1;", " SELECT ';' ;", " -- c;\n SELECT \"a;b\";"]
        );
        assert_eq!(
            split_statements("SELECT [a;b], `c;d`, 'it''s;'; SELECT 2"),
            ["SELECT [a;b], `c;d`, 'it''s;';", " SELECT 2"]
        );
        assert_eq!(split_statements("SELECT 1"), ["SELECT 1"]);
    }

    #[test]
    fn keeps_trigger_bodies_whole() {
        let sql = "CREATE TRIGGER tr AFTER INSERT ON t BEGIN INSERT INTO u VALUES (1); DELETE FROM u; END; SELECT 2";
        let parts = split_statements(sql);
        assert_eq!(parts.len(), 2);
        assert!(parts[0].ends_with("END;"));
        let sql = "create temp trigger tr after insert on t begin select 1; end; select 2;";
        assert_eq!(split_statements(sql).len(), 2);
    }

    #[test]
    fn the_word_trigger_elsewhere_does_not_join_statements() {
        let sql = "INSERT INTO t VALUES ('trigger'); SELECT 2;";
        assert_eq!(split_statements(sql).len(), 2);
        let sql = "CREATE TABLE trigger_log (a); SELECT 2;";
        assert_eq!(split_statements(sql).len(), 2);
    }

    #[test]
    fn comment_only_and_empty_pieces_are_dropped() {
        assert!(split_statements("  -- nothing\n ; ;").is_empty());
        assert!(split_statements("  ;; -- x\n").is_empty());
        assert!(split_statements("").is_empty());
        assert!(split_statements("/* unterminated ; comment").is_empty());
    }

    #[test]
    fn scan_end_reports_open_parens_strings_and_comments() {
        assert_eq!(scan_end("CREATE TABLE t ("), (1, LexState::Code));
        assert_eq!(scan_end("SELECT '(("), (0, LexState::Quote(b'\'')));
        assert_eq!(scan_end("SELECT 1 -- ("), (0, LexState::LineComment));
        assert_eq!(scan_end("SELECT /* ("), (0, LexState::BlockComment));
        assert_eq!(scan_end("SELECT [a("), (0, LexState::Bracket));
        assert_eq!(scan_end("f(a, (b))"), (0, LexState::Code));
    }
}
