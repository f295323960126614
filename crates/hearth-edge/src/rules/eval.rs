//! Evaluation of a compiled expression against one request.

use std::borrow::Cow;
use std::net::IpAddr;

use super::parse::{CmpOp, Index, ListItem, Literal, Node, Operand, WildPattern, type_of};
use super::{Field, Func, RequestCtx, Type};

#[derive(Debug, Clone)]
enum Val<'a> {
    Bool(bool),
    Int(i64),
    Str(Cow<'a, str>),
    Ip(IpAddr),
    Arr(Vec<Val<'a>>),
    Map(&'a [(String, Vec<String>)]),
}

/// The type a node evaluates to: Boolean, or Array<Boolean> over `[*]`.
fn node_type(node: &Node) -> Result<Type, String> {
    let boolean = Type::Bool;
    Ok(match node {
        Node::Or(items) | Node::And(items) => {
            for i in items {
                check_bool(i)?;
            }
            boolean
        }
        Node::Xor(a, b) => {
            check_bool(a)?;
            check_bool(b)?;
            boolean
        }
        Node::Not(inner) => {
            check_bool(inner)?;
            boolean
        }
        Node::Truthy(op) => type_of(op),
        Node::Compare(op, ..)
        | Node::Contains(op, _)
        | Node::Matches(op, _)
        | Node::Wildcard(op, _)
        | Node::InList(op, _) => match type_of(op) {
            Type::Array(_) => Type::Array(Box::new(Type::Bool)),
            _ => boolean,
        },
    })
}

pub(super) fn check_bool(node: &Node) -> Result<(), String> {
    match node_type(node)? {
        Type::Bool => Ok(()),
        t => Err(format!(
            "this part of the expression is {t}, not Boolean: wrap a comparison over [*] in any(...) or all(...)"
        )),
    }
}

pub(super) fn eval_bool(node: &Node, req: &RequestCtx<'_>) -> bool {
    matches!(eval_node(node, req), Val::Bool(true))
}

fn eval_node<'a>(node: &'a Node, req: &'a RequestCtx<'a>) -> Val<'a> {
    match node {
        Node::Or(items) => Val::Bool(items.iter().any(|n| eval_bool(n, req))),
        Node::And(items) => Val::Bool(items.iter().all(|n| eval_bool(n, req))),
        Node::Xor(a, b) => Val::Bool(eval_bool(a, req) ^ eval_bool(b, req)),
        Node::Not(inner) => Val::Bool(!eval_bool(inner, req)),
        Node::Truthy(op) => operand(op, req),
        Node::Compare(op, cmp, lit) => map_each(operand(op, req), &|v| compare(v, *cmp, lit)),
        Node::Contains(op, needle) => map_each(operand(op, req), &|v| match v {
            Val::Str(s) => s.contains(needle.as_str()),
            _ => false,
        }),
        Node::Matches(op, re) => map_each(operand(op, req), &|v| match v {
            Val::Str(s) => re.is_match(s),
            _ => false,
        }),
        Node::Wildcard(op, pat) => map_each(operand(op, req), &|v| match v {
            Val::Str(s) => wildcard(pat, s),
            _ => false,
        }),
        Node::InList(op, items) => {
            map_each(operand(op, req), &|v| items.iter().any(|i| in_item(v, i)))
        }
    }
}

fn map_each<'a>(v: Val<'a>, f: &dyn Fn(&Val<'a>) -> bool) -> Val<'a> {
    match v {
        Val::Arr(items) => Val::Arr(items.iter().map(|i| Val::Bool(f(i))).collect()),
        v => Val::Bool(f(&v)),
    }
}

fn compare(v: &Val<'_>, op: CmpOp, lit: &Literal) -> bool {
    use std::cmp::Ordering;
    let ord: Option<Ordering> = match (v, lit) {
        (Val::Str(s), Literal::Str(l)) => Some(s.as_ref().cmp(l.as_str())),
        (Val::Int(n), Literal::Int(l)) => Some(n.cmp(l)),
        (Val::Bool(b), Literal::Bool(l)) => Some(b.cmp(l)),
        (Val::Ip(ip), Literal::Ip(l)) => Some(normal(*ip).cmp(&normal(*l))),
        (Val::Ip(ip), Literal::Cidr(c)) => {
            return match op {
                CmpOp::Eq => c.contains(*ip),
                CmpOp::Ne => !c.contains(*ip),
                _ => false,
            };
        }
        _ => None,
    };
    let Some(ord) = ord else { return false };
    match op {
        CmpOp::Eq => ord == Ordering::Equal,
        CmpOp::Ne => ord != Ordering::Equal,
        CmpOp::Lt => ord == Ordering::Less,
        CmpOp::Le => ord != Ordering::Greater,
        CmpOp::Gt => ord == Ordering::Greater,
        CmpOp::Ge => ord != Ordering::Less,
    }
}

/// An IPv4-mapped IPv6 address compares as its IPv4 form.
fn normal(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        ip => ip,
    }
}

fn in_item(v: &Val<'_>, item: &ListItem) -> bool {
    match (v, item) {
        (Val::Str(s), ListItem::Str(l)) => s == l,
        (Val::Int(n), ListItem::Int(l)) => n == l,
        (Val::Int(n), ListItem::IntRange(a, b)) => a <= n && n <= b,
        (Val::Ip(ip), ListItem::Cidr(c)) => c.contains(*ip),
        (Val::Ip(ip), ListItem::IpRange(a, b)) => {
            let ip = normal(*ip);
            normal(*a) <= ip && ip <= normal(*b)
        }
        _ => false,
    }
}

fn wildcard(p: &WildPattern, s: &str) -> bool {
    let lowered;
    let s = if p.case_insensitive {
        lowered = s.to_ascii_lowercase();
        lowered.as_str()
    } else {
        s
    };
    let parts = &p.parts;
    if parts.len() == 1 {
        return s == parts[0];
    }
    let (first, last) = (&parts[0], &parts[parts.len() - 1]);
    if !s.starts_with(first.as_str())
        || s.len() < first.len() + last.len()
        || !s.ends_with(last.as_str())
    {
        return false;
    }
    let mut rest = &s[first.len()..s.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid.as_str()) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

fn field<'a>(f: Field, req: &'a RequestCtx<'a>) -> Val<'a> {
    let s = |v: &'a str| Val::Str(Cow::Borrowed(v));
    let owned = |v: String| Val::Str(Cow::Owned(v));
    let names = |m: &'a [(String, Vec<String>)]| Val::Arr(m.iter().map(|(k, _)| s(k)).collect());
    let values = |m: &'a [(String, Vec<String>)]| {
        Val::Arr(m.iter().flat_map(|(_, v)| v.iter().map(|x| s(x))).collect())
    };
    match f {
        Field::Host => s(req.host),
        Field::Method => s(req.method),
        Field::Uri => {
            if req.query.is_empty() {
                s(req.path)
            } else {
                owned(format!("{}?{}", req.path, req.query))
            }
        }
        Field::Path => s(req.path),
        Field::PathExtension => {
            let last = req.path.rsplit('/').next().unwrap_or("");
            s(last.rsplit_once('.').map_or("", |(_, e)| e))
        }
        Field::Query => s(req.query),
        Field::FullUri => {
            let scheme = if req.ssl { "https" } else { "http" };
            let q = if req.query.is_empty() { "" } else { "?" };
            owned(format!(
                "{scheme}://{}{}{q}{}",
                req.host, req.path, req.query
            ))
        }
        Field::Version => s(req.version),
        Field::UserAgent => s(req.header("user-agent").unwrap_or("")),
        Field::Referer => s(req.header("referer").unwrap_or("")),
        Field::Cookie => s(req.header("cookie").unwrap_or("")),
        Field::XForwardedFor => s(req.header("x-forwarded-for").unwrap_or("")),
        Field::Headers => Val::Map(req.header_map()),
        Field::HeaderNames => names(req.header_map()),
        Field::HeaderValues => values(req.header_map()),
        Field::Cookies => Val::Map(req.cookie_map()),
        Field::Args => Val::Map(req.arg_map()),
        Field::ArgNames => names(req.arg_map()),
        Field::ArgValues => values(req.arg_map()),
        Field::JwtClaims => Val::Map(&req.jwt_claims),
        Field::IpSrc => Val::Ip(req.ip),
        Field::Ssl => Val::Bool(req.ssl),
        Field::Timestamp => Val::Int(req.timestamp_sec),
        Field::ServerPort => Val::Int(i64::from(req.port)),
    }
}

fn operand<'a>(op: &'a Operand, req: &'a RequestCtx<'a>) -> Val<'a> {
    match op {
        Operand::Field(f) => field(*f, req),
        Operand::Str(s) => Val::Str(Cow::Borrowed(s)),
        Operand::Int(n) => Val::Int(*n),
        Operand::Pred(node) => eval_node(node, req),
        Operand::Index(inner, idx) => index(operand(inner, req), idx),
        Operand::Call(func, args) => call(*func, args, req),
    }
}

fn index<'a>(v: Val<'a>, idx: &Index) -> Val<'a> {
    let s = |v: &'a String| Val::Str(Cow::Borrowed(v.as_str()));
    match (v, idx) {
        (Val::Map(m), Index::Key(k)) => Val::Arr(
            m.iter()
                .filter(|(n, _)| n == k)
                .flat_map(|(_, vals)| vals.iter().map(s))
                .collect(),
        ),
        (Val::Map(m), Index::All) => {
            Val::Arr(m.iter().flat_map(|(_, v)| v.iter().map(s)).collect())
        }
        (Val::Arr(mut a), Index::Pos(i)) => {
            if *i < a.len() {
                a.swap_remove(*i)
            } else {
                Val::Str(Cow::Borrowed(""))
            }
        }
        (v @ Val::Arr(_), Index::All) => v,
        (v, _) => v,
    }
}

fn text<'a>(v: &'a Val<'a>) -> Cow<'a, str> {
    match v {
        Val::Str(s) => Cow::Borrowed(s.as_ref()),
        Val::Int(n) => Cow::Owned(n.to_string()),
        Val::Ip(ip) => Cow::Owned(ip.to_string()),
        Val::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
        Val::Arr(_) | Val::Map(_) => Cow::Borrowed(""),
    }
}

fn call<'a>(func: Func, args: &'a [Operand], req: &'a RequestCtx<'a>) -> Val<'a> {
    let vals: Vec<Val<'a>> = args.iter().map(|a| operand(a, req)).collect();
    let first = vals.first().cloned().unwrap_or(Val::Bool(false));
    let owned = |s: String| Val::Str(Cow::Owned(s));
    match func {
        Func::Any => Val::Bool(match first {
            Val::Arr(a) => a.iter().any(|v| matches!(v, Val::Bool(true))),
            v => matches!(v, Val::Bool(true)),
        }),
        Func::All => Val::Bool(match first {
            Val::Arr(a) => a.iter().all(|v| matches!(v, Val::Bool(true))),
            v => matches!(v, Val::Bool(true)),
        }),
        Func::Concat => owned(vals.iter().map(|v| text(v).into_owned()).collect()),
        Func::StartsWith | Func::EndsWith => {
            let (a, b) = (text(&vals[0]), text(&vals[1]));
            Val::Bool(if func == Func::StartsWith {
                a.starts_with(b.as_ref())
            } else {
                a.ends_with(b.as_ref())
            })
        }
        Func::Len => Val::Int(match &first {
            Val::Arr(a) => a.len() as i64,
            v => text(v).len() as i64,
        }),
        Func::Lower | Func::Upper | Func::UrlDecode | Func::RemoveBytes => {
            let extra = vals
                .get(1)
                .map(|v| text(v).into_owned())
                .unwrap_or_default();
            let apply = |s: &str| -> String {
                match func {
                    Func::Lower => s.to_lowercase(),
                    Func::Upper => s.to_uppercase(),
                    Func::UrlDecode => {
                        let once = super::percent_decode(s, true);
                        if extra.contains('r') {
                            super::percent_decode(&once, true)
                        } else {
                            once
                        }
                    }
                    _ => s.chars().filter(|c| !extra.contains(*c)).collect(),
                }
            };
            match first {
                Val::Arr(a) => Val::Arr(a.iter().map(|v| owned(apply(&text(v)))).collect()),
                v => owned(apply(&text(&v))),
            }
        }
        Func::ToString => owned(text(&first).into_owned()),
        Func::Substring => {
            let s = text(&vals[0]);
            let len = s.len() as i64;
            let pos = |v: Option<&Val<'_>>, default: i64| match v {
                Some(Val::Int(n)) if *n < 0 => (len + n).max(0),
                Some(Val::Int(n)) => (*n).min(len),
                _ => default,
            };
            let (start, end) = (pos(vals.get(1), 0), pos(vals.get(2), len));
            let bytes = s.as_bytes();
            let piece = bytes
                .get(start as usize..end.max(start) as usize)
                .unwrap_or(&[]);
            owned(String::from_utf8_lossy(piece).into_owned())
        }
        Func::HasKey => Val::Bool(match (&first, vals.get(1)) {
            (Val::Map(m), Some(k)) => {
                let k = text(k);
                m.iter().any(|(n, _)| *n == k)
            }
            _ => false,
        }),
        Func::HasValue => Val::Bool(match (&first, vals.get(1)) {
            (Val::Map(m), Some(k)) => {
                let k = text(k);
                m.iter().any(|(_, vs)| vs.iter().any(|v| *v == k))
            }
            (Val::Arr(a), Some(k)) => {
                let k = text(k);
                a.iter().any(|v| text(v) == k)
            }
            _ => false,
        }),
    }
}
