//! Cutting SQL text into statements without preparing it: later statements
//! may depend on tables the earlier ones create, so each is prepared only
//! when its turn comes.

use std::ffi::CString;

/// Lexical state of a scan, carried across lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum State {
    #[default]
    Code,
    Quote(u8),
    Bracket,
    LineComment,
    BlockComment,
}

/// Whether SQLite considers `sql` to end with a complete statement. This
/// is what tells a `;` inside `CREATE TRIGGER ... BEGIN ... END` from one
/// that ends the statement.
fn sqlite_complete(sql: &str) -> bool {
    match CString::new(sql) {
        // SAFETY: `text` is a valid NUL-terminated string that outlives the call,
        // and sqlite3_complete only reads it.
        Ok(text) => unsafe { rusqlite::ffi::sqlite3_complete(text.as_ptr()) != 0 },
        // SQLite stops reading at a NUL byte anyway.
        Err(_) => true,
    }
}

/// Splits `sql` into statements, each with its terminating `;` when it has
/// one. Pieces holding only whitespace and comments are dropped.
pub fn split_statements(sql: &str) -> Vec<&str> {
    let bytes = sql.as_bytes();
    let mut out = Vec::new();
    let mut state = State::Code;
    let mut start = 0;
    let mut has_code = false;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match state {
            State::Code => match b {
                b'\'' | b'"' | b'`' => {
                    state = State::Quote(b);
                    has_code = true;
                }
                b'[' => {
                    state = State::Bracket;
                    has_code = true;
                }
                b'-' if bytes.get(i + 1) == Some(&b'-') => {
                    state = State::LineComment;
                    i += 1;
                }
                b'/' if bytes.get(i + 1) == Some(&b'*') => {
                    state = State::BlockComment;
                    i += 1;
                }
                b';' => {
                    let piece = &sql[start..=i];
                    if !has_code {
                        start = i + 1;
                    } else if sqlite_complete(piece) {
                        out.push(piece);
                        start = i + 1;
                        has_code = false;
                    }
                }
                b if b.is_ascii_whitespace() => {}
                _ => has_code = true,
            },
            State::Quote(q) => {
                if b == q {
                    // A doubled quote is an escaped quote and stays inside.
                    if bytes.get(i + 1) == Some(&q) {
                        i += 1;
                    } else {
                        state = State::Code;
                    }
                }
            }
            State::Bracket => {
                if b == b']' {
                    state = State::Code;
                }
            }
            State::LineComment => {
                if b == b'\n' {
                    state = State::Code;
                }
            }
            State::BlockComment => {
                if b == b'*' && bytes.get(i + 1) == Some(&b'/') {
                    state = State::Code;
                    i += 1;
                }
            }
        }
        i += 1;
    }
    if has_code {
        out.push(&sql[start..]);
    }
    out
}

/// Paren depth and lexical state at the end of `sql`.
fn scan_end(sql: &str) -> (i64, State) {
    let bytes = sql.as_bytes();
    let mut state = State::Code;
    let mut depth = 0i64;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match state {
            State::Code => match b {
                b'\'' | b'"' | b'`' => state = State::Quote(b),
                b'[' => state = State::Bracket,
                b'-' if bytes.get(i + 1) == Some(&b'-') => {
                    state = State::LineComment;
                    i += 1;
                }
                b'/' if bytes.get(i + 1) == Some(&b'*') => {
                    state = State::BlockComment;
                    i += 1;
                }
                b'(' => depth += 1,
                b')' => depth -= 1,
                _ => {}
            },
            State::Quote(q) => {
                if b == q {
                    if bytes.get(i + 1) == Some(&q) {
                        i += 1;
                    } else {
                        state = State::Code;
                    }
                }
            }
            State::Bracket => {
                if b == b']' {
                    state = State::Code;
                }
            }
            State::LineComment => {
                if b == b'\n' {
                    state = State::Code;
                }
            }
            State::BlockComment => {
                if b == b'*' && bytes.get(i + 1) == Some(&b'/') {
                    state = State::Code;
                    i += 1;
                }
            }
        }
        i += 1;
    }
    (depth, state)
}

/// One query of `exec()`: its first line (1-based) and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExecQuery<'a> {
    pub line: usize,
    pub sql: &'a str,
}

/// Cuts `exec()` input the way D1 does, one query per line of the trimmed
/// input, except that a line which leaves a statement open (inside a
/// string, comment, parentheses or a trigger body) is joined with the next
/// ones until the statement closes. D1 itself would fail on such input.
/// Lines holding only whitespace or comments are not queries.
pub(crate) fn exec_queries(input: &str) -> Vec<ExecQuery<'_>> {
    let text = input.trim();
    let mut out = Vec::new();
    let mut offset = 0;
    let mut start: Option<(usize, usize)> = None; // (line, byte offset)
    for (idx, line) in text.split('\n').enumerate() {
        let line_start = offset;
        offset += line.len() + 1;
        let (first_line, from) = *start.get_or_insert((idx + 1, line_start));
        let end = (line_start + line.len()).min(text.len());
        let chunk = &text[from..end];
        let (depth, state) = scan_end(chunk);
        let closed = match state {
            State::Code | State::LineComment => {
                depth <= 0 && (sqlite_complete(chunk) || sqlite_complete(&format!("{chunk}\n;")))
            }
            _ => false,
        };
        if closed {
            if !split_statements(chunk).is_empty() {
                out.push(ExecQuery {
                    line: first_line,
                    sql: chunk,
                });
            }
            start = None;
        }
    }
    if let Some((line, from)) = start {
        let chunk = &text[from..];
        if !split_statements(chunk).is_empty() {
            out.push(ExecQuery { line, sql: chunk });
        }
    }
    out
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
    }

    #[test]
    fn keeps_trigger_bodies_whole() {
        let sql =
            "CREATE TRIGGER tr AFTER INSERT ON t BEGIN INSERT INTO u VALUES (1); END; SELECT 2;";
        assert_eq!(split_statements(sql).len(), 2);
    }

    #[test]
    fn comment_only_and_empty_pieces_are_dropped() {
        assert!(split_statements("  -- nothing\n ; ;").is_empty());
        assert!(split_statements("").is_empty());
    }

    #[test]
    fn exec_is_line_based_but_joins_open_statements() {
        let q = exec_queries(
            "CREATE TABLE t (\n  a INTEGER\n);\nINSERT INTO t VALUES (1)\n\n-- note\nSELECT * FROM t;",
        );
        let got: Vec<(usize, &str)> = q.iter().map(|q| (q.line, q.sql)).collect();
        assert_eq!(
            got,
            vec![
                (1, "CREATE TABLE t (\n  a INTEGER\n);"),
                (4, "INSERT INTO t VALUES (1)"),
                (7, "SELECT * FROM t;"),
            ]
        );
    }
}
