//! How D1's `exec()` cuts its input into queries. Statement splitting
//! itself is hearth-core's (`hearth_core::sql`), shared with Durable Object
//! SQL.

pub use hearth_core::sql::split_statements;
use hearth_core::sql::{LexState, is_complete, scan_end};

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
            LexState::Code | LexState::LineComment => {
                depth <= 0 && (is_complete(chunk) || is_complete(&format!("{chunk}\n;")))
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
