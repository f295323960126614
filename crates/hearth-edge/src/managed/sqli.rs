//! SQL injection detection by tokenising, in the manner of libinjection:
//! the input is read as SQL three times (as it is, as if it began inside a
//! single-quoted string, and inside a double-quoted one), and the token
//! stream is checked for the shapes an injection needs: a break out of a
//! literal followed by SQL, a tautology, `UNION SELECT`, stacked queries,
//! comment truncation, and functions used only by attacks.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok<'a> {
    /// A string literal, with its quotes (the closing one may be missing).
    Str(&'a str),
    Num(&'a str),
    Word(&'a str),
    /// `@var` / `@@var`.
    Var,
    Op(&'a str),
    LParen,
    RParen,
    Comma,
    Semi,
    Comment,
    /// MySQL's executable comment `/*! ... */`.
    ExecComment,
}

fn tokenize(s: &str, start_quote: Option<u8>) -> Vec<Tok<'_>> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    // Where the last string literal ended, to join adjacent ones.
    let mut str_end = usize::MAX;
    if let Some(q) = start_quote {
        // The input began inside a literal: it ends at the first quote.
        match b.iter().position(|&c| c == q) {
            Some(end) => {
                out.push(Tok::Str(&s[..end + 1]));
                i = end + 1;
                str_end = i;
            }
            None => return out,
        }
    }
    while i < b.len() && out.len() < 256 {
        let c = b[i];
        match c {
            b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c | 0xa0 => i += 1,
            b'\'' | b'"' | b'`' => {
                let end = b[i + 1..]
                    .iter()
                    .position(|&x| x == c)
                    .map_or(b.len(), |p| i + 1 + p + 1);
                let end = end.min(b.len());
                if c == b'`' {
                    out.push(Tok::Word("`"));
                } else if str_end == i
                    && let Some(Tok::Str(prev)) = out.last_mut()
                {
                    // Adjacent literals read as one (`'a''b'`), as SQL does.
                    let from = i - prev.len();
                    *prev = &s[from..end];
                    str_end = end;
                } else {
                    out.push(Tok::Str(&s[i..end]));
                    str_end = end;
                }
                i = end;
            }
            b'0'..=b'9' => {
                let end = b[i..]
                    .iter()
                    .position(|x| !(x.is_ascii_alphanumeric() || *x == b'.'))
                    .map_or(b.len(), |p| i + p);
                out.push(Tok::Num(&s[i..end]));
                i = end;
            }
            b'.' if b.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                i += 1;
            }
            b'@' => {
                let end = b[i..]
                    .iter()
                    .position(|x| {
                        !(x.is_ascii_alphanumeric() || matches!(x, b'_' | b'@' | b'.' | b'$'))
                    })
                    .map_or(b.len(), |p| i + p);
                out.push(Tok::Var);
                i = end.max(i + 1);
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                out.push(Tok::Comment);
                break;
            }
            b'#' => {
                out.push(Tok::Comment);
                break;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let exec = b.get(i + 2) == Some(&b'!');
                let end = s[i + 2..].find("*/").map_or(b.len(), |p| i + 2 + p + 2);
                out.push(if exec { Tok::ExecComment } else { Tok::Comment });
                i = end;
            }
            b'(' => {
                out.push(Tok::LParen);
                i += 1;
            }
            b')' => {
                out.push(Tok::RParen);
                i += 1;
            }
            b',' => {
                out.push(Tok::Comma);
                i += 1;
            }
            b';' => {
                out.push(Tok::Semi);
                i += 1;
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c == b'$' || c >= 0x80 => {
                let end = b[i..]
                    .iter()
                    .position(|x| {
                        !(x.is_ascii_alphanumeric()
                            || matches!(x, b'_' | b'$' | b'.')
                            || *x >= 0x80)
                    })
                    .map_or(b.len(), |p| i + p);
                out.push(Tok::Word(&s[i..end]));
                i = end;
            }
            _ => {
                let two = s.get(i..i + 2).unwrap_or("");
                let op = if s.get(i..i + 3) == Some("<=>") {
                    "<=>"
                } else if matches!(
                    two,
                    "<=" | ">=" | "!=" | "<>" | "||" | "&&" | ":=" | "<<" | ">>" | "=="
                ) {
                    two
                } else {
                    s.get(i..i + 1).unwrap_or("?")
                };
                out.push(Tok::Op(op));
                i += op.len().max(1);
            }
        }
    }
    out
}

fn kw(t: &Tok<'_>, words: &[&str]) -> bool {
    matches!(t, Tok::Word(w) if words.iter().any(|k| w.eq_ignore_ascii_case(k)))
}

const STACKED: &[&str] = &[
    "select", "insert", "update", "delete", "drop", "exec", "execute", "declare", "shutdown",
    "create", "alter", "truncate", "waitfor", "union", "set", "call", "grant", "revoke", "load",
    "replace", "if", "begin",
];
/// Functions and names that only attacks call from a request value.
const STRONG: &[&str] = &[
    "sleep",
    "benchmark",
    "pg_sleep",
    "load_file",
    "extractvalue",
    "updatexml",
    "group_concat",
    "concat_ws",
    "information_schema",
    "xp_cmdshell",
    "sp_executesql",
    "sp_oacreate",
    "dbms_pipe",
    "utl_http",
    "utl_inaddr",
    "sys_eval",
    "sys_exec",
    "sqlite_master",
    "pg_catalog",
    "sysobjects",
    "syscolumns",
    "mysql.user",
    "randomblob",
    "make_set",
    "name_const",
    "json_keys",
    "geometrycollection",
    "multipoint",
    "user_name",
    "db_name",
    "current_user",
    "session_user",
    "pg_read_file",
    "dbms_xmlgen",
    "ctxsys",
    "xmltype",
    "unhex",
];
/// Functions an attack often calls, but ordinary text may name too.
const WEAK: &[&str] = &[
    "elt",
    "polygon",
    "linestring",
    "exp",
    "floor",
    "rand",
    "waitfor",
    "char",
    "chr",
    "ascii",
    "ord",
    "substring",
    "substr",
    "mid",
    "version",
    "database",
    "schema",
    "cast",
    "convert",
    "hex",
    "concat",
    "if",
    "ifnull",
    "nullif",
    "iif",
    "case",
    "count",
    "user",
    "length",
    "md5",
    "sha1",
    "lower",
    "upper",
];

fn is_operand(t: &Tok<'_>) -> bool {
    matches!(t, Tok::Str(_) | Tok::Num(_) | Tok::Var | Tok::LParen)
        || matches!(t, Tok::Word(w) if !w.eq_ignore_ascii_case("the"))
}

fn is_cmp(t: &Tok<'_>) -> bool {
    matches!(
        t,
        Tok::Op(
            "=" | "<"
                | ">"
                | "<="
                | ">="
                | "!="
                | "<>"
                | "=="
                | "<<"
                | ">>"
                | "&"
                | "|"
                | "^"
                | "+"
                | "-"
                | "*"
                | "/"
                | "%"
        )
    ) || kw(
        t,
        &[
            "like", "rlike", "regexp", "is", "in", "between", "sounds", "div", "mod",
        ],
    )
}

fn logic(t: &Tok<'_>) -> bool {
    matches!(t, Tok::Op("||" | "&&")) || kw(t, &["or", "and", "xor"])
}

/// The shape that makes this token stream an injection, if any.
fn judge(toks: &[Tok<'_>], quoted: bool) -> Option<&'static str> {
    let n = toks.len();
    for i in 0..n {
        let t = &toks[i];
        let next = toks.get(i + 1);
        let after = toks.get(i + 2);
        // UNION [ALL|DISTINCT] SELECT
        if kw(t, &["union"]) {
            let j = if next.is_some_and(|x| kw(x, &["all", "distinct"])) {
                i + 2
            } else {
                i + 1
            };
            if toks
                .get(j)
                .is_some_and(|x| kw(x, &["select"]) || matches!(x, Tok::LParen))
            {
                return Some("UNION SELECT");
            }
        }
        if matches!(t, Tok::ExecComment) {
            return Some("MySQL executable comment");
        }
        // A function only attacks call.
        if let Tok::Word(w) = t {
            let strong = STRONG.iter().any(|k| w.eq_ignore_ascii_case(k));
            if strong && (matches!(next, Some(Tok::LParen)) || w.contains('_') || w.contains('.')) {
                return Some("SQL function");
            }
        }
        // Stacked query: `; DROP ...`
        if matches!(t, Tok::Semi) && next.is_some_and(|x| kw(x, STACKED)) && i > 0 {
            return Some("stacked query");
        }
        // select ... from with SQL punctuation, or select with a function
        if kw(t, &["select"]) {
            let rest = &toks[i + 1..];
            let from = rest.iter().position(|x| kw(x, &["from"]));
            let punct = rest.iter().any(|x| {
                matches!(
                    x,
                    Tok::Op("*")
                        | Tok::Comma
                        | Tok::LParen
                        | Tok::Var
                        | Tok::Str(_)
                        | Tok::Comment
                        | Tok::Semi
                )
            });
            if (from.is_some() && punct)
                || rest
                    .first()
                    .is_some_and(|x| matches!(x, Tok::Var | Tok::Num(_)) || closed_str(x))
            {
                return Some("SELECT statement");
            }
            if matches!(rest.first(), Some(Tok::Word(_)))
                && matches!(rest.get(1), Some(Tok::LParen))
            {
                return Some("SELECT statement");
            }
        }
        if kw(t, &["into"]) && next.is_some_and(|x| kw(x, &["outfile", "dumpfile"])) {
            return Some("INTO OUTFILE");
        }
        if kw(t, &["insert"]) && next.is_some_and(|x| kw(x, &["into"])) {
            return Some("INSERT statement");
        }
        if kw(t, &["delete"])
            && next.is_some_and(|x| kw(x, &["from"]))
            && after.is_some_and(|x| matches!(x, Tok::Word(_)))
        {
            return Some("DELETE statement");
        }
        if kw(t, &["drop", "truncate"])
            && next.is_some_and(|x| kw(x, &["table", "database", "schema"]))
        {
            return Some("DROP statement");
        }
        if kw(t, &["update"]) && after.is_some_and(|x| kw(x, &["set"])) {
            return Some("UPDATE statement");
        }
        if kw(t, &["waitfor"]) && next.is_some_and(|x| kw(x, &["delay", "time"])) {
            return Some("WAITFOR DELAY");
        }
        if kw(t, &["exec", "execute"]) && next.is_some_and(|x| matches!(x, Tok::Word(w) if w.starts_with("xp_") || w.starts_with("sp_") || w.starts_with("master"))) {
            return Some("EXEC of a stored procedure");
        }
        if kw(t, &["declare"]) && matches!(next, Some(Tok::Var)) {
            return Some("DECLARE");
        }
        // Tautology: OR 1=1, AND 'a'='a', || 2>1
        if logic(t)
            && next.is_some_and(is_operand)
            && after.is_some_and(is_cmp)
            && toks.get(i + 3).is_some_and(is_operand)
            && i > 0
        {
            return Some("tautology");
        }
        if logic(t) && next.is_some_and(|x| kw(x, &["true", "false", "null"])) && i > 0 {
            return Some("tautology");
        }
        // `OR NOT 1=2` and `OR NOT (…)`; "whether or not" is English.
        if logic(t)
            && next.is_some_and(|x| kw(x, &["not"]))
            && after.is_some_and(|x| is_operand(x) || matches!(x, Tok::LParen))
            && i > 0
        {
            return Some("tautology");
        }
    }
    // Breaking out of a literal: `' OR ...`, `1' --`, `' UNION`, `1 AND sleep`
    if quoted && n >= 2 && matches!(toks[0], Tok::Str(_)) {
        let second = &toks[1];
        if matches!(second, Tok::Comment | Tok::Semi | Tok::ExecComment) {
            return Some("literal break-out with a comment");
        }
        if logic(second)
            || kw(
                second,
                &[
                    "union",
                    "order",
                    "group",
                    "having",
                    "procedure",
                    "limit",
                    "into",
                    "like",
                    "rlike",
                    "regexp",
                    "div",
                    "xor",
                    "is",
                    "in",
                    "between",
                    "sounds",
                    "collate",
                ],
            )
        {
            return Some("literal break-out");
        }
        if is_cmp(second)
            && toks.get(2).is_some_and(|x| {
                matches!(
                    x,
                    Tok::Str(_) | Tok::Num(_) | Tok::Var | Tok::LParen | Tok::Word(_)
                )
            })
        {
            return Some("literal break-out with an operator");
        }
        if matches!(second, Tok::RParen)
            && toks.get(2).is_some_and(|x| {
                logic(x)
                    || matches!(x, Tok::Semi | Tok::Comment | Tok::RParen)
                    || kw(x, &["union", "order", "group"])
            })
        {
            return Some("literal break-out");
        }
    }
    if !quoted && n >= 2 && matches!(toks[0], Tok::Num(_)) {
        let second = &toks[1];
        if matches!(second, Tok::Semi) && toks.get(2).is_some_and(|x| kw(x, STACKED)) {
            return Some("number break-out");
        }
        let third = toks.get(2);
        let fourth = toks.get(3);
        if logic(second)
            && (third.is_some_and(|x| {
                kw(x, STRONG) || kw(x, WEAK) && matches!(fourth, Some(Tok::LParen))
            }) || third
                .is_some_and(|x| matches!(x, Tok::Num(_) | Tok::Str(_) | Tok::Var | Tok::LParen))
                && fourth.is_some_and(|x| is_cmp(x) || matches!(x, Tok::Comment | Tok::Semi)))
        {
            return Some("number break-out");
        }
        if matches!(second, Tok::RParen)
            && toks
                .get(2)
                .is_some_and(|x| logic(x) || kw(x, &["union", "order"]))
        {
            return Some("number break-out");
        }
        if kw(second, &["union", "order", "having", "procedure", "into"])
            && toks
                .get(2)
                .is_some_and(|x| kw(x, &["select", "all", "by", "outfile", "analyse"]))
        {
            return Some("number break-out");
        }
    }
    None
}

/// Why `input` reads as SQL injection, or `None`.
pub fn detect(input: &str) -> Option<&'static str> {
    if input.len() < 3 {
        return None;
    }
    if !input.bytes().any(|c| {
        c.is_ascii_alphabetic()
            || matches!(
                c,
                b'\'' | b'"' | b';' | b'#' | b'-' | b'/' | b'=' | b'<' | b'>' | b'!'
            )
    }) {
        return None;
    }
    if scientific_call(input.as_bytes()) {
        return Some("MySQL scientific-notation call");
    }
    let plain = tokenize(input, None);
    if let Some(r) = judge(&plain, false).or_else(|| shapes(&plain, false, input)) {
        return Some(r);
    }
    for q in [b'\'', b'"'] {
        if input.as_bytes().contains(&q) {
            let toks = tokenize(input, Some(q));
            if let Some(r) = judge(&toks, true).or_else(|| shapes(&toks, true, input)) {
                return Some(r);
            }
        }
    }
    // A value that is itself `name=value` (an encoded `=` decoded): the
    // inner value is read too, once.
    if let Some((name, inner)) = input.split_once('=')
        && !name.is_empty()
        && name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
        && inner.len() >= 3
    {
        let toks = tokenize(inner, None);
        return judge(&toks, false).or_else(|| shapes(&toks, false, inner));
    }
    None
}

/// `1.e(` and `1.e.name`: MySQL reads `1.e` as a number and lets a call
/// or a qualified name follow it without a space.
fn scientific_call(b: &[u8]) -> bool {
    let num_e = |w: &[u8]| w[0].is_ascii_digit() && w[1] == b'.' && matches!(w[2], b'e' | b'E');
    // `1.e.g.` is prose: a name needs two letters.
    b.windows(4).any(|w| num_e(w) && w[3] == b'(')
        || b.windows(6).any(|w| {
            num_e(w) && w[3] == b'.' && w[4].is_ascii_alphabetic() && w[5].is_ascii_alphabetic()
        })
}

/// The text of a literal without its quotes.
fn literal<'a>(t: &Tok<'a>) -> Option<&'a str> {
    match t {
        Tok::Num(n) => Some(n),
        Tok::Str(s) => {
            let q = s.chars().next().filter(|c| matches!(c, '\'' | '"'));
            let inner = match q {
                Some(q) => s[1..].strip_suffix(q).unwrap_or(&s[1..]),
                // The leading literal of a quoted reading: `abc'`.
                None => s.get(..s.len().saturating_sub(1)).unwrap_or(""),
            };
            Some(inner)
        }
        _ => None,
    }
}

/// A string literal with both its quotes (`'select' button` leaves the
/// literal after `select` open).
fn closed_str(t: &Tok<'_>) -> bool {
    matches!(t, Tok::Str(s) if s.len() >= 2 && s.as_bytes()[0] == s.as_bytes()[s.len() - 1])
}

/// A strict comparison operator.
fn compares(t: &Tok<'_>) -> bool {
    matches!(
        t,
        Tok::Op("=" | "==" | "!=" | "<>" | "<" | ">" | "<=" | ">=" | "<=>")
    ) || kw(t, &["like", "rlike", "regexp", "glob", "not"])
}

/// SQL functions worth flagging when a value ends in a call left open.
const OPEN_CALLS: &[&str] = &[
    "compress",
    "uncompress",
    "rand",
    "sin",
    "cos",
    "tan",
    "floor",
    "ceil",
    "round",
    "time",
    "values",
    "minute",
    "hour",
    "second",
    "day",
    "month",
    "year",
    "quarter",
    "date",
    "ln",
    "log",
    "user",
    "length",
    "version",
    "if",
    "in",
    "ascii",
    "char",
    "concat",
    "substr",
    "substring",
    "mid",
    "sleep",
    "benchmark",
    "count",
    "hex",
    "unhex",
    "md5",
    "sha1",
    "database",
    "schema",
    "exp",
    "pow",
    "sqrt",
    "abs",
    "now",
    "left",
    "right",
    "elt",
    "field",
    "instr",
    "locate",
];

/// Injection shapes beyond [`judge`]'s: tautologies between literals,
/// chained conditions, open calls, and statement openers.
fn shapes(toks: &[Tok<'_>], quoted: bool, input: &str) -> Option<&'static str> {
    let n = toks.len();
    for i in 0..n {
        let t = &toks[i];
        let next = toks.get(i + 1);
        // `1=1`, `'a'='a'`, `11!=1`, `1 is not 2`: a comparison of two
        // literals that is always true.
        if let Some(a) = literal(t) {
            let (op, at) = match (next, toks.get(i + 2)) {
                (Some(x), Some(y)) if kw(x, &["is"]) && kw(y, &["not"]) => ("<>", i + 3),
                (Some(Tok::Op(o)), _) => (*o, i + 2),
                _ => ("", 0),
            };
            if let Some(b) = toks.get(at).and_then(literal)
                && !a.is_empty()
                && match op {
                    "=" | "==" | "<=>" => a.eq_ignore_ascii_case(b),
                    "!=" | "<>" => !a.eq_ignore_ascii_case(b) && !b.is_empty(),
                    _ => false,
                }
                && (i == 0
                    || matches!(toks[i - 1], Tok::Comma | Tok::LParen)
                    || logic(&toks[i - 1]))
            {
                return Some("tautology");
            }
        }
        if kw(t, &["case"])
            && next.is_some_and(|x| kw(x, &["when"]))
            && toks[i..].iter().any(|x| kw(x, &["then"]))
        {
            return Some("CASE WHEN");
        }
        // `) like (`, `) when 234 then`: SQL between closed groups.
        if matches!(t, Tok::RParen)
            && (next.is_some_and(|x| kw(x, &["like", "rlike", "regexp"]))
                && matches!(toks.get(i + 2), Some(Tok::LParen))
                || next.is_some_and(|x| kw(x, &["when"]))
                    && toks[i..].iter().any(|x| kw(x, &["then"])))
        {
            return Some("SQL operator after a closed group");
        }
        if kw(t, &["execute"]) && next.is_some_and(|x| kw(x, &["immediate"])) {
            return Some("EXECUTE IMMEDIATE");
        }
        if kw(t, &["procedure"]) && next.is_some_and(|x| kw(x, &["analyse"])) {
            return Some("PROCEDURE ANALYSE");
        }
        if kw(t, &["except", "intersect"]) && next.is_some_and(|x| kw(x, &["select"])) {
            return Some("set operator before SELECT");
        }
        if matches!(t, Tok::LParen) && next.is_some_and(|x| kw(x, &["select"])) && i + 2 == n {
            return Some("open subquery");
        }
        // `DROP t;--` (not "drop shipping; returns").
        if kw(t, &["drop", "truncate", "alter"])
            && matches!(next, Some(Tok::Word(_)))
            && (matches!(toks.get(i + 2), Some(Tok::Comment))
                || matches!(toks.get(i + 2), Some(Tok::Semi))
                    && matches!(toks.get(i + 3), Some(Tok::Comment)))
        {
            return Some("DDL statement");
        }
        if kw(t, &["div"])
            && matches!(next, Some(Tok::LParen))
            && matches!(toks.get(i + 2), Some(Tok::Num(_)))
            && matches!(toks.get(i + 3), Some(Tok::Comma))
        {
            return Some("SQL function");
        }
    }
    if n >= 3
        && matches!(toks[0], Tok::Semi)
        && kw(&toks[1], STACKED)
        && !kw(
            &toks[1],
            &[
                "if", "begin", "set", "call", "load", "replace", "grant", "revoke", "union",
                "select",
            ],
        )
    {
        return Some("stacked query");
    }
    // A call left open at the end: `FLOOR (`, `length||(`, `year]=(`.
    if n >= 2 && matches!(toks[n - 1], Tok::LParen) {
        let before = toks[..n - 1]
            .iter()
            .rev()
            .take(3)
            .find(|x| !matches!(x, Tok::Op(_)));
        if let Some(Tok::Word(w)) = before {
            let w = w.trim_end_matches('.');
            if OPEN_CALLS.iter().any(|k| w.eq_ignore_ascii_case(k)) {
                return Some("SQL function call left open");
            }
        }
    }
    // A chained condition: `AND name = "`, `||(e==`, `OR (1=2)`, `OR 1#`.
    if n >= 3 && logic(&toks[0]) && !quoted {
        let j = if matches!(toks[1], Tok::LParen) { 2 } else { 1 };
        let operand = toks
            .get(j)
            .is_some_and(|x| matches!(x, Tok::Word(_) | Tok::Num(_) | Tok::Var));
        let then = toks.get(j + 1);
        if operand
            && then.is_some_and(|x| {
                matches!(
                    x,
                    Tok::Op("=" | "==" | "!=" | "<>" | "<" | ">" | "<=" | ">=" | "<=>")
                )
            })
        {
            return Some("chained condition");
        }
        if j == 1 && matches!(toks[1], Tok::Num(_)) && matches!(then, Some(Tok::Comment)) {
            return Some("chained condition");
        }
    }
    if !quoted {
        // A value that opens with a quoted literal compared to another:
        // `'x'!='y`, `'1' not regexp '2'`.
        if input.starts_with('\'')
            && n >= 3
            && matches!(toks[0], Tok::Str(_))
            && compares(&toks[1])
            && toks[2..]
                .iter()
                .take(2)
                .any(|x| matches!(x, Tok::Str(_) | Tok::Num(_)))
        {
            return Some("quoted comparison");
        }
        return None;
    }
    // Breaking out of a literal (the quoted reading): `' = #`,
    // `'alter ...`, `id'not like`, `' notnull --`.
    if n >= 2 {
        let second = &toks[1];
        let ops = toks[1..]
            .iter()
            .take(3)
            .position(|x| !matches!(x, Tok::Op(_)));
        if ops.is_some_and(|p| p > 0 && matches!(toks[1 + p], Tok::Comment)) {
            return Some("literal break-out with a comment");
        }
        if kw(second, &["not"])
            && toks
                .get(2)
                .is_some_and(|x| kw(x, &["like", "glob", "regexp", "rlike", "in", "between"]))
        {
            return Some("literal break-out");
        }
        if kw(second, &["glob", "notnull", "isnull"]) {
            return Some("literal break-out");
        }
        let prefix = input.find(['\'', '"']).map_or("", |p| &input[..p]);
        // Only a value that opens with the quote: `6' drop ceiling` is a
        // measure and `'select' button` names a button.
        if prefix.bytes().all(|c| c == b' ')
            && !matches!(toks.get(2), Some(Tok::Str(_)))
            && kw(
                second,
                &[
                    "alter", "drop", "create", "truncate", "select", "insert", "update", "delete",
                    "exec", "declare", "shutdown",
                ],
            )
        {
            return Some("literal break-out into a statement");
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::detect;

    #[test]
    fn catches_classic_injections() {
        for s in [
            "1234 OR 1=1",
            "-1839' or '1'='1",
            "admin'--",
            "1 UNION SELECT username, password FROM users",
            "1; DROP TABLE users",
            "x' AND sleep(5) AND 'a'='a",
            "1/*!50000union*/ select 1",
            "' or ''='",
            // Shapes read from the token stream.
            "1=1",
            "b,1=1",
            "11!=1",
            "1 is not 2",
            "'x'!='y",
            "'1' not regexp '2'",
            "'''or 1",
            "' = # '",
            "'alter a",
            "id'not like id--",
            "AND name = \"",
            "&&(e===",
            "OR (7319=8742)",
            "FLOOR (",
            "length||(",
            "case when condition1 then result1",
            "EXECUTE IMMEDIATE \"",
            "procedure analyse (",
            "except select 1",
            "DROP sampletable;--",
            ";truncate[xx",
            "div(23,-2)",
            "pay=&&(l=!0)",
            ") like (",
            ") when 234 then",
            "1.e(ascii)",
            "1.e.tables",
        ] {
            assert!(detect(s).is_some(), "{s}");
        }
    }

    #[test]
    fn passes_ordinary_text() {
        for s in [
            "O'Brien",
            "select a product from the list",
            "it's a nice day, isn't it",
            "rock and roll",
            "1 or 2 bedrooms",
            "Tom & Jerry",
            "hello-world",
            "2024-01-05",
            "what's new in 3.2?",
            "l'alter ego",
            "10' drop cord",
            "the 'select' button",
            "drop shipping; returns",
            "round (2 decimals)",
            "rating >= 4",
            "'quoted' = fine",
            "5 stars = great",
            "see fig. 1.e.g. below",
            "1 = 2",
        ] {
            assert_eq!(detect(s), None, "{s}");
        }
    }
}
