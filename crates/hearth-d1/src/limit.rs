//! `DELETE ... LIMIT` and `UPDATE ... LIMIT`, as D1 accepts them.
//!
//! D1's SQLite is built with `SQLITE_ENABLE_UPDATE_DELETE_LIMIT`; the
//! bundled amalgamation cannot be: its parser was generated without the
//! option, and defining the macro at compile time does not change the
//! grammar (`near "LIMIT": syntax error` either way). So such a statement
//! is rewritten before SQLite sees it into the form SQLite itself would
//! plan for it:
//!
//! ```sql
//! DELETE FROM t WHERE w RETURNING r ORDER BY o LIMIT n
//! -- becomes
//! DELETE FROM t WHERE rowid IN (SELECT rowid FROM t WHERE w ORDER BY o LIMIT n) RETURNING r
//! ```
//!
//! Anonymous `?` parameters are numbered first (`?1`, `?2`, ...), so moving
//! the `RETURNING` clause does not change which value binds where. Tables
//! declared `WITHOUT ROWID` have no `rowid` and are refused with a clear
//! error by the caller ([`Rewritten::table`] names the table to check), as
//! is `UPDATE ... FROM ... LIMIT`.

/// A statement that was rewritten.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rewritten {
    pub sql: String,
    /// The target table, unquoted (without its schema).
    pub table: String,
}

/// Why a statement with `LIMIT` could not be rewritten.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Unsupported {
    UpdateFrom,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Word,
    Quoted,
    Param,
    Open,
    Close,
    Other,
}

#[derive(Debug, Clone, Copy)]
struct Token {
    start: usize,
    end: usize,
    kind: Kind,
    depth: i32,
}

fn tokens(sql: &str) -> Vec<Token> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut depth = 0i32;
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80;
    while i < b.len() {
        let c = b[i];
        let start = i;
        let kind = match c {
            _ if c.is_ascii_whitespace() => {
                i += 1;
                continue;
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i < b.len() && !(b[i] == b'*' && b.get(i + 1) == Some(&b'/')) {
                    i += 1;
                }
                i = (i + 2).min(b.len());
                continue;
            }
            b'\'' | b'"' | b'`' | b'[' => {
                let close = if c == b'[' { b']' } else { c };
                i += 1;
                loop {
                    if i >= b.len() {
                        break;
                    }
                    if b[i] == close {
                        // A doubled quote is an escaped one.
                        if close != b']' && b.get(i + 1) == Some(&close) {
                            i += 2;
                            continue;
                        }
                        i += 1;
                        break;
                    }
                    i += 1;
                }
                Kind::Quoted
            }
            b'?' | b':' | b'@' | b'$' if c == b'?' || b.get(i + 1).is_some_and(|&n| word(n)) => {
                i += 1;
                while i < b.len() && word(b[i]) {
                    i += 1;
                }
                Kind::Param
            }
            b'(' => {
                i += 1;
                depth += 1;
                out.push(Token {
                    start,
                    end: i,
                    kind: Kind::Open,
                    depth: depth - 1,
                });
                continue;
            }
            b')' => {
                i += 1;
                depth -= 1;
                Kind::Close
            }
            _ if word(c) => {
                while i < b.len() && word(b[i]) {
                    i += 1;
                }
                Kind::Word
            }
            _ => {
                i += sql[i..].chars().next().map_or(1, char::len_utf8);
                Kind::Other
            }
        };
        out.push(Token {
            start,
            end: i,
            kind,
            depth,
        });
    }
    out
}

fn is_kw(sql: &str, t: &Token, kw: &str) -> bool {
    t.kind == Kind::Word && t.depth == 0 && sql[t.start..t.end].eq_ignore_ascii_case(kw)
}

fn unquote(s: &str) -> String {
    let b = s.as_bytes();
    match b.first() {
        Some(b'"') | Some(b'`') | Some(b'\'') if s.len() >= 2 => {
            let q = &s[..1];
            s[1..s.len() - 1].replace(&format!("{q}{q}"), q)
        }
        Some(b'[') if s.len() >= 2 => s[1..s.len() - 1].to_string(),
        _ => s.to_string(),
    }
}

/// `sql` with every anonymous `?` numbered, as SQLite would number it.
fn number_parameters(sql: &str, toks: &[Token]) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut last = 0;
    let mut next = 1u64;
    for t in toks.iter().filter(|t| t.kind == Kind::Param) {
        let text = &sql[t.start..t.end];
        if text == "?" {
            out.push_str(&sql[last..t.start]);
            out.push_str(&format!("?{next}"));
            last = t.end;
            next += 1;
        } else if let Some(n) = text.strip_prefix('?').and_then(|n| n.parse::<u64>().ok()) {
            next = next.max(n + 1);
        }
    }
    out.push_str(&sql[last..]);
    out
}

/// Rewrites one statement if it is a `DELETE` or `UPDATE` with a
/// top-level `LIMIT`; otherwise returns `Ok(None)`.
pub(crate) fn rewrite(statement: &str) -> Result<Option<Rewritten>, Unsupported> {
    let toks = tokens(statement);
    let Some(first) = toks.first() else {
        return Ok(None);
    };
    let verb = if is_kw(statement, first, "WITH") {
        toks.iter().position(|t| {
            is_kw(statement, t, "DELETE")
                || is_kw(statement, t, "UPDATE")
                || is_kw(statement, t, "SELECT")
                || is_kw(statement, t, "INSERT")
                || is_kw(statement, t, "REPLACE")
        })
    } else {
        Some(0)
    };
    let Some(verb) = verb else {
        return Ok(None);
    };
    let is_delete = is_kw(statement, &toks[verb], "DELETE");
    if !is_delete && !is_kw(statement, &toks[verb], "UPDATE") {
        return Ok(None);
    }
    let Some(limit) = toks[verb..]
        .iter()
        .position(|t| is_kw(statement, t, "LIMIT"))
        .map(|p| p + verb)
    else {
        return Ok(None);
    };
    // Numbering parameters does not move any keyword the rest looks for,
    // so work on the numbered text from here.
    let numbered = number_parameters(statement, &toks);
    let sql = numbered.as_str();
    let toks = tokens(sql);
    let find = |from: usize, to: usize, kw: &str| (from..to).find(|&i| is_kw(sql, &toks[i], kw));
    // The target: `[schema.]table [[AS] alias] [INDEXED BY i | NOT INDEXED]`.
    let table_start = if is_delete {
        match find(verb, limit, "FROM") {
            Some(i) => i + 1,
            None => return Ok(None),
        }
    } else {
        let mut i = verb + 1;
        if toks.get(i).is_some_and(|t| is_kw(sql, t, "OR")) {
            i += 2;
        }
        i
    };
    let clause_start = |i: usize| {
        ["WHERE", "RETURNING", "ORDER", "LIMIT", "SET", "FROM"]
            .iter()
            .any(|k| is_kw(sql, &toks[i], k))
    };
    let Some(table_end) = (table_start..=limit).find(|&i| clause_start(i)) else {
        return Ok(None);
    };
    if table_end <= table_start {
        return Ok(None);
    }
    let target = sql[toks[table_start].start..toks[table_end - 1].end].trim();
    let table = {
        let t0 = &toks[table_start];
        let named = if toks
            .get(table_start + 1)
            .is_some_and(|t| &sql[t.start..t.end] == ".")
            && table_start + 2 < table_end
        {
            &toks[table_start + 2]
        } else {
            t0
        };
        unquote(&sql[named.start..named.end])
    };
    // Where the statement's own WHERE starts (for UPDATE, after SET ...).
    let body_start = if is_delete {
        table_end
    } else {
        if find(table_end, limit, "FROM").is_some() {
            return Err(Unsupported::UpdateFrom);
        }
        table_end
    };
    let where_at = find(body_start, limit, "WHERE");
    let returning_at = find(body_start, limit, "RETURNING");
    let order_at = (body_start..limit).find(|&i| {
        is_kw(sql, &toks[i], "ORDER") && toks.get(i + 1).is_some_and(|t| is_kw(sql, t, "BY"))
    });
    let stmt_end = {
        let trimmed = sql.trim_end();
        trimmed.strip_suffix(';').unwrap_or(trimmed).len()
    };
    let next_after = |i: usize, candidates: &[Option<usize>]| {
        candidates
            .iter()
            .flatten()
            .filter(|&&c| c > i)
            .min()
            .map(|&c| toks[c].start)
            .unwrap_or(stmt_end)
    };
    let all = [where_at, returning_at, order_at, Some(limit)];
    let head_end = all
        .iter()
        .flatten()
        .min()
        .map(|&i| toks[i].start)
        .unwrap_or(stmt_end);
    let head = sql[..head_end].trim_end();
    let part = |at: Option<usize>| at.map(|i| sql[toks[i].start..next_after(i, &all)].trim());
    let where_clause = part(where_at);
    let returning = part(returning_at);
    let order = part(order_at);
    let limit_clause = sql[toks[limit].start..stmt_end].trim();
    let mut out = format!("{head} WHERE rowid IN (SELECT rowid FROM {target}");
    for clause in [where_clause, order, Some(limit_clause)]
        .into_iter()
        .flatten()
    {
        out.push(' ');
        out.push_str(clause);
    }
    out.push(')');
    if let Some(r) = returning {
        out.push(' ');
        out.push_str(r);
    }
    if stmt_end < sql.trim_end().len() {
        out.push(';');
    }
    Ok(Some(Rewritten { sql: out, table }))
}

/// [`rewrite`] for callers that only want the text.
#[cfg(test)]
fn text(statement: &str) -> String {
    match rewrite(statement) {
        Ok(Some(r)) => r.sql,
        _ => statement.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delete_returning_limit() {
        let r = rewrite("DELETE FROM tasks WHERE id = ? RETURNING * LIMIT 1")
            .unwrap()
            .unwrap();
        assert_eq!(
            r.sql,
            "DELETE FROM tasks WHERE rowid IN (SELECT rowid FROM tasks WHERE id = ?1 LIMIT 1) RETURNING *"
        );
        assert_eq!(r.table, "tasks");
    }

    #[test]
    fn update_with_order_offset_and_quoted_names() {
        let r = rewrite(
            "UPDATE OR IGNORE main.\"my t\" AS x SET v = ? WHERE x.k > ? RETURNING v + ? ORDER BY k DESC LIMIT ? OFFSET 1;",
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            r.sql,
            "UPDATE OR IGNORE main.\"my t\" AS x SET v = ?1 WHERE rowid IN (SELECT rowid FROM main.\"my t\" AS x WHERE x.k > ?2 ORDER BY k DESC LIMIT ?4 OFFSET 1) RETURNING v + ?3;"
        );
        assert_eq!(r.table, "my t");
    }

    #[test]
    fn limits_inside_subqueries_strings_and_comments_are_left_alone() {
        for sql in [
            "DELETE FROM t WHERE id IN (SELECT id FROM t LIMIT 1)",
            "UPDATE t SET a = 'LIMIT 1' -- LIMIT 2\n WHERE b = 1",
            "SELECT * FROM t LIMIT 1",
            "WITH c AS (SELECT 1 LIMIT 1) SELECT * FROM c",
            "INSERT INTO t SELECT * FROM u LIMIT 3",
        ] {
            assert_eq!(text(sql), sql);
        }
    }

    #[test]
    fn with_clause_and_no_where() {
        assert_eq!(
            text("WITH old AS (SELECT 1) DELETE FROM t LIMIT 2"),
            "WITH old AS (SELECT 1) DELETE FROM t WHERE rowid IN (SELECT rowid FROM t LIMIT 2)"
        );
    }

    #[test]
    fn update_from_is_unsupported() {
        assert_eq!(
            rewrite("UPDATE t SET a = u.a FROM u WHERE t.id = u.id LIMIT 1"),
            Err(Unsupported::UpdateFrom)
        );
    }
}
