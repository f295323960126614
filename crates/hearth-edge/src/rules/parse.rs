//! Parser and type checker for the subset of Cloudflare's Rules language
//! that WAF custom rules use: fields, comparison operators, `in {...}`
//! lists, logical operators with Cloudflare's precedence
//! (`not` > `and` > `xor` > `or`), `[...]`/`[*]` indexing and the
//! transformation functions listed in [`Func`].

use std::net::IpAddr;

use super::{Cidr, Field, Func, Type};

/// A parse or type error, with the byte offset it was found at.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at column {}: {message}", .offset + 1)]
pub struct ParseError {
    pub offset: usize,
    pub message: String,
}

/// A compiled expression node.
#[derive(Debug, Clone)]
pub enum Node {
    Or(Vec<Node>),
    Xor(Box<Node>, Box<Node>),
    And(Vec<Node>),
    Not(Box<Node>),
    /// A Boolean-valued operand used on its own (`ssl`, `starts_with(...)`).
    Truthy(Operand),
    Compare(Operand, CmpOp, Literal),
    Contains(Operand, String),
    Matches(Operand, regex::Regex),
    Wildcard(Operand, WildPattern),
    InList(Operand, Vec<ListItem>),
}

#[derive(Debug, Clone)]
pub enum Operand {
    Field(Field),
    Call(Func, Vec<Operand>),
    Str(String),
    Int(i64),
    Index(Box<Operand>, Index),
    /// The comparison inside `any(...)` / `all(...)`.
    Pred(Box<Node>),
}

#[derive(Debug, Clone)]
pub enum Index {
    Key(String),
    Pos(usize),
    /// `[*]`: every element; the comparison then yields an array of Booleans.
    All,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone)]
pub enum Literal {
    Str(String),
    Int(i64),
    Ip(IpAddr),
    Cidr(Cidr),
    Bool(bool),
}

#[derive(Debug, Clone)]
pub enum ListItem {
    Str(String),
    Int(i64),
    IntRange(i64, i64),
    Cidr(Cidr),
    IpRange(IpAddr, IpAddr),
}

/// A compiled `wildcard` / `strict wildcard` pattern: `*` matches any
/// run of bytes; `wildcard` ignores case.
#[derive(Debug, Clone)]
pub struct WildPattern {
    pub parts: Vec<String>,
    pub case_insensitive: bool,
}

/// The most operator/list/regex work an expression may ask for.
pub const MAX_EXPRESSION_BYTES: usize = 4096;
const MAX_DEPTH: usize = 64;

pub fn parse(src: &str) -> Result<Node, ParseError> {
    if src.len() > MAX_EXPRESSION_BYTES {
        return Err(ParseError {
            offset: 0,
            message: format!(
                "the expression is {} bytes long; the limit is {MAX_EXPRESSION_BYTES}",
                src.len()
            ),
        });
    }
    let mut p = Parser {
        s: src,
        pos: 0,
        depth: 0,
    };
    let node = p.or()?;
    p.ws();
    if p.pos < src.len() {
        return p.fail(format!("unexpected {:?}", p.rest_word()));
    }
    Ok(node)
}

struct Parser<'a> {
    s: &'a str,
    pos: usize,
    depth: usize,
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '.'
}

impl<'a> Parser<'a> {
    fn fail<T>(&self, message: impl Into<String>) -> Result<T, ParseError> {
        Err(ParseError {
            offset: self.pos,
            message: message.into(),
        })
    }

    fn rest(&self) -> &'a str {
        &self.s[self.pos..]
    }

    fn rest_word(&self) -> String {
        self.rest().chars().take(24).collect()
    }

    fn ws(&mut self) {
        let trimmed = self.rest().trim_start();
        self.pos = self.s.len() - trimmed.len();
    }

    fn peek(&mut self) -> Option<char> {
        self.ws();
        self.rest().chars().next()
    }

    /// Consumes `sym` (punctuation) if it comes next.
    fn sym(&mut self, sym: &str) -> bool {
        self.ws();
        if self.rest().starts_with(sym) {
            self.pos += sym.len();
            true
        } else {
            false
        }
    }

    /// Consumes the keyword `kw` if it comes next as a whole word.
    fn kw(&mut self, kw: &str) -> bool {
        self.ws();
        let r = self.rest();
        if r.starts_with(kw) && !r[kw.len()..].chars().next().is_some_and(is_ident_char) {
            self.pos += kw.len();
            true
        } else {
            false
        }
    }

    fn ident(&mut self) -> Option<&'a str> {
        self.ws();
        let r = self.rest();
        let end = r.find(|c: char| !is_ident_char(c)).unwrap_or(r.len());
        if end == 0 || !r.as_bytes()[0].is_ascii_alphabetic() {
            return None;
        }
        self.pos += end;
        Some(&r[..end])
    }

    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return self.fail(format!(
                "the expression nests deeper than {MAX_DEPTH} levels"
            ));
        }
        Ok(())
    }

    fn or(&mut self) -> Result<Node, ParseError> {
        self.enter()?;
        let mut items = vec![self.xor()?];
        while self.kw("or") || self.sym("||") {
            items.push(self.xor()?);
        }
        self.depth -= 1;
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Node::Or(items)
        })
    }

    fn xor(&mut self) -> Result<Node, ParseError> {
        let mut left = self.and()?;
        while self.kw("xor") || self.sym("^^") {
            let right = self.and()?;
            left = Node::Xor(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Node, ParseError> {
        let mut items = vec![self.unary()?];
        while self.kw("and") || self.sym("&&") {
            items.push(self.unary()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Node::And(items)
        })
    }

    fn unary(&mut self) -> Result<Node, ParseError> {
        if self.kw("not")
            || (self.peek() == Some('!') && !self.rest().starts_with("!=") && self.sym("!"))
        {
            self.enter()?;
            let inner = self.unary()?;
            self.depth -= 1;
            return Ok(Node::Not(Box::new(inner)));
        }
        // The Boolean literals: an empty `and` is true, an empty `or` false.
        if self.kw("true") {
            return Ok(Node::And(Vec::new()));
        }
        if self.kw("false") {
            return Ok(Node::Or(Vec::new()));
        }
        if self.sym("(") {
            let inner = self.or()?;
            if !self.sym(")") {
                return self.fail("expected `)`");
            }
            return Ok(inner);
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Node, ParseError> {
        let start = self.pos;
        let lhs = self.operand()?;
        let ty = type_of(&lhs);
        let op_at = self.pos;
        let scalar = match &ty {
            Type::Array(inner) if ends_with_all(&lhs) => (**inner).clone(),
            t => t.clone(),
        };
        let node = if self.kw("eq") || self.sym("==") {
            Node::Compare(lhs, CmpOp::Eq, self.literal(&scalar)?)
        } else if self.kw("ne") || self.sym("!=") {
            Node::Compare(lhs, CmpOp::Ne, self.literal(&scalar)?)
        } else if self.kw("le") || self.sym("<=") {
            self.ordered(lhs, CmpOp::Le, &scalar, op_at)?
        } else if self.kw("lt") || self.sym("<") {
            self.ordered(lhs, CmpOp::Lt, &scalar, op_at)?
        } else if self.kw("ge") || self.sym(">=") {
            self.ordered(lhs, CmpOp::Ge, &scalar, op_at)?
        } else if self.kw("gt") || self.sym(">") {
            self.ordered(lhs, CmpOp::Gt, &scalar, op_at)?
        } else if self.kw("contains") {
            self.need_bytes(&scalar, "contains", op_at)?;
            Node::Contains(lhs, self.string()?)
        } else if self.kw("matches") || self.sym("~") {
            self.need_bytes(&scalar, "matches", op_at)?;
            let at = self.pos;
            let pattern = self.string()?;
            let re = regex::RegexBuilder::new(&pattern)
                .size_limit(1 << 20)
                .build()
                .map_err(|e| ParseError {
                    offset: at,
                    message: format!("invalid regular expression: {e}"),
                })?;
            Node::Matches(lhs, re)
        } else if self.kw("strict") {
            if !self.kw("wildcard") {
                return self.fail("expected `wildcard` after `strict`");
            }
            self.need_bytes(&scalar, "strict wildcard", op_at)?;
            Node::Wildcard(lhs, wild(self.string()?, false))
        } else if self.kw("wildcard") {
            self.need_bytes(&scalar, "wildcard", op_at)?;
            Node::Wildcard(lhs, wild(self.string()?, true))
        } else if self.kw("in") {
            Node::InList(lhs, self.list(&scalar)?)
        } else {
            if scalar != Type::Bool {
                self.pos = start;
                return self.fail(format!(
                    "{} is of type {scalar}, not Boolean: compare it with an operator (eq, contains, in, ...)",
                    describe(&lhs)
                ));
            }
            return Ok(Node::Truthy(lhs));
        };
        Ok(node)
    }

    fn ordered(
        &mut self,
        lhs: Operand,
        op: CmpOp,
        ty: &Type,
        at: usize,
    ) -> Result<Node, ParseError> {
        if !matches!(ty, Type::Int | Type::Bytes | Type::Ip) {
            self.pos = at;
            return self.fail(format!(
                "ordering comparisons need an Integer, String or IP, not {ty}"
            ));
        }
        Ok(Node::Compare(lhs, op, self.literal(ty)?))
    }

    fn need_bytes(&mut self, ty: &Type, op: &str, at: usize) -> Result<(), ParseError> {
        if *ty != Type::Bytes {
            self.pos = at;
            return self.fail(format!("`{op}` needs a String operand, not {ty}"));
        }
        Ok(())
    }

    fn literal(&mut self, ty: &Type) -> Result<Literal, ParseError> {
        self.ws();
        match ty {
            Type::Bytes => Ok(Literal::Str(self.string()?)),
            Type::Int => Ok(Literal::Int(self.int()?)),
            Type::Bool => {
                if self.kw("true") {
                    Ok(Literal::Bool(true))
                } else if self.kw("false") {
                    Ok(Literal::Bool(false))
                } else {
                    self.fail("expected true or false")
                }
            }
            Type::Ip => {
                let at = self.pos;
                let word = self.bare();
                if word.contains('/') {
                    Cidr::parse(word)
                        .map(Literal::Cidr)
                        .map_err(|m| ParseError {
                            offset: at,
                            message: m,
                        })
                } else {
                    word.parse::<IpAddr>()
                        .map(Literal::Ip)
                        .map_err(|_| ParseError {
                            offset: at,
                            message: format!("{word:?} is not an IP address"),
                        })
                }
            }
            other => self.fail(format!("a value of type {other} cannot be compared")),
        }
    }

    /// An unquoted run of IP/CIDR characters.
    fn bare(&mut self) -> &'a str {
        self.ws();
        let r = self.rest();
        let end = r
            .find(|c: char| !(c.is_ascii_hexdigit() || matches!(c, '.' | ':' | '/')))
            .unwrap_or(r.len());
        self.pos += end;
        &r[..end]
    }

    fn int(&mut self) -> Result<i64, ParseError> {
        self.ws();
        let r = self.rest();
        let neg = r.starts_with('-');
        let digits = &r[usize::from(neg)..];
        let end = digits
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(digits.len());
        if end == 0 {
            return self.fail(format!("expected an integer, found {:?}", self.rest_word()));
        }
        let text = &r[..end + usize::from(neg)];
        let n = text.parse::<i64>().map_err(|_| ParseError {
            offset: self.pos,
            message: format!("{text} does not fit a 64-bit integer"),
        })?;
        self.pos += text.len();
        Ok(n)
    }

    /// A quoted string: `"..."` with `\"`, `\\` and `\xNN` escapes, or a raw
    /// string `r"..."` / `r#"..."#`.
    fn string(&mut self) -> Result<String, ParseError> {
        self.ws();
        let r = self.rest();
        if let Some(raw) = r.strip_prefix('r') {
            let hashes = raw.len() - raw.trim_start_matches('#').len();
            let body = &raw[hashes..];
            if let Some(body) = body.strip_prefix('"') {
                let close = format!("\"{}", "#".repeat(hashes));
                let Some(end) = body.find(&close) else {
                    return self.fail("unterminated raw string");
                };
                self.pos += 1 + hashes + 1 + end + close.len();
                return Ok(body[..end].to_string());
            }
        }
        if !r.starts_with('"') {
            return self.fail(format!(
                "expected a quoted string, found {:?}",
                self.rest_word()
            ));
        }
        let mut out = Vec::new();
        let bytes = r.as_bytes();
        let mut i = 1;
        while i < bytes.len() {
            match bytes[i] {
                b'"' => {
                    self.pos += i + 1;
                    return String::from_utf8(out).map_err(|_| ParseError {
                        offset: self.pos,
                        message: "the string's escapes do not make UTF-8".into(),
                    });
                }
                b'\\' => {
                    match bytes.get(i + 1) {
                        Some(b'"') => out.push(b'"'),
                        Some(b'\\') => out.push(b'\\'),
                        Some(b'x') => {
                            let hex = r
                                .get(i + 2..i + 4)
                                .and_then(|h| u8::from_str_radix(h, 16).ok());
                            let Some(b) = hex else {
                                self.pos += i;
                                return self.fail("`\\x` needs two hex digits");
                            };
                            out.push(b);
                            i += 2;
                        }
                        _ => {
                            self.pos += i;
                            return self
                                .fail("unknown escape: only \\\", \\\\ and \\xNN are allowed");
                        }
                    }
                    i += 2;
                }
                b => {
                    out.push(b);
                    i += 1;
                }
            }
        }
        self.fail("unterminated string")
    }

    fn list(&mut self, ty: &Type) -> Result<Vec<ListItem>, ParseError> {
        if self.peek() == Some('$') {
            return self
                .fail("named lists ($name) are not supported; write the values inline in {...}");
        }
        if !self.sym("{") {
            return self.fail("expected `{` to start a list");
        }
        let mut items = Vec::new();
        loop {
            self.sym(",");
            if self.sym("}") {
                break;
            }
            if self.pos >= self.s.len() {
                return self.fail("unterminated list: expected `}`");
            }
            let at = self.pos;
            let item = match ty {
                Type::Bytes => ListItem::Str(self.string()?),
                Type::Int => {
                    let a = self.int()?;
                    if self.sym("..") {
                        ListItem::IntRange(a, self.int()?)
                    } else {
                        ListItem::Int(a)
                    }
                }
                Type::Ip => {
                    let word = self.bare();
                    let err = |m: String| ParseError {
                        offset: at,
                        message: m,
                    };
                    if let Some((a, b)) = word.split_once("..") {
                        let a = a
                            .parse()
                            .map_err(|_| err(format!("{a:?} is not an IP address")))?;
                        let b = b
                            .parse()
                            .map_err(|_| err(format!("{b:?} is not an IP address")))?;
                        ListItem::IpRange(a, b)
                    } else {
                        ListItem::Cidr(Cidr::parse(word).map_err(err)?)
                    }
                }
                other => {
                    return self.fail(format!(
                        "`in` needs a String, Integer or IP operand, not {other}"
                    ));
                }
            };
            items.push(item);
            if items.len() > 10_000 {
                return self.fail("a list holds at most 10000 values");
            }
        }
        Ok(items)
    }

    fn operand(&mut self) -> Result<Operand, ParseError> {
        self.ws();
        let at = self.pos;
        let mut op = match self.peek() {
            Some('"') => Operand::Str(self.string()?),
            Some(c) if c.is_ascii_digit() || c == '-' => Operand::Int(self.int()?),
            Some('r') if self.rest().starts_with("r\"") || self.rest().starts_with("r#") => {
                Operand::Str(self.string()?)
            }
            _ => {
                let Some(name) = self.ident() else {
                    return self.fail(format!(
                        "expected a field, function or value, found {:?}",
                        self.rest_word()
                    ));
                };
                if self.sym("(") {
                    self.call(name, at)?
                } else if let Some(f) = Field::from_name(name) {
                    Operand::Field(f)
                } else {
                    self.pos = at;
                    return self.fail(format!("unknown field {name:?}"));
                }
            }
        };
        while self.sym("[") {
            let idx = if self.sym("*") {
                Index::All
            } else if self.peek() == Some('"') {
                Index::Key(self.string()?)
            } else {
                let n = self.int()?;
                Index::Pos(usize::try_from(n).map_err(|_| ParseError {
                    offset: self.pos,
                    message: "an index cannot be negative".into(),
                })?)
            };
            if !self.sym("]") {
                return self.fail("expected `]`");
            }
            match (&type_of(&op), &idx) {
                (Type::Map(_), Index::Key(_) | Index::All)
                | (Type::Array(_), Index::Pos(_) | Index::All) => {}
                (t, _) => {
                    self.pos = at;
                    return self.fail(format!(
                        "{} ({t}) cannot be indexed that way",
                        describe(&op)
                    ));
                }
            }
            op = Operand::Index(Box::new(op), idx);
        }
        Ok(op)
    }

    fn call(&mut self, name: &str, at: usize) -> Result<Operand, ParseError> {
        let Some(func) = Func::from_name(name) else {
            self.pos = at;
            return self.fail(format!("unknown function {name}()"));
        };
        let mut args = Vec::new();
        if !self.sym(")") {
            loop {
                args.push(self.call_arg(func)?);
                if self.sym(")") {
                    break;
                }
                if !self.sym(",") {
                    return self.fail("expected `,` or `)` in the argument list");
                }
            }
        }
        let call = Operand::Call(func, args);
        if let Err(m) = check_call(&call) {
            self.pos = at;
            return self.fail(m);
        }
        Ok(call)
    }

    /// `any(...)`/`all(...)` take a comparison over `[*]`; other functions
    /// take operands.
    fn call_arg(&mut self, func: Func) -> Result<Operand, ParseError> {
        if matches!(func, Func::Any | Func::All) {
            let node = self.or()?;
            return Ok(Operand::Pred(Box::new(node)));
        }
        self.operand()
    }
}

fn wild(pattern: String, case_insensitive: bool) -> WildPattern {
    let pattern = if case_insensitive {
        pattern.to_ascii_lowercase()
    } else {
        pattern
    };
    WildPattern {
        parts: pattern.split('*').map(str::to_string).collect(),
        case_insensitive,
    }
}

/// Whether `op` walks an array with `[*]` (directly, or through a
/// function applied to each element), so a comparison applies per element.
fn ends_with_all(op: &Operand) -> bool {
    match op {
        Operand::Index(_, Index::All) => true,
        Operand::Call(f, args) if f.elementwise() => args.first().is_some_and(ends_with_all),
        _ => false,
    }
}

fn describe(op: &Operand) -> String {
    match op {
        Operand::Field(f) => f.name().to_string(),
        Operand::Call(f, _) => format!("{}()", f.name()),
        Operand::Index(inner, _) => format!("{}[...]", describe(inner)),
        Operand::Str(_) => "a string".into(),
        Operand::Int(_) => "an integer".into(),
        Operand::Pred(_) => "a comparison".into(),
    }
}

pub fn type_of(op: &Operand) -> Type {
    match op {
        Operand::Field(f) => f.ty(),
        Operand::Str(_) => Type::Bytes,
        Operand::Int(_) => Type::Int,
        Operand::Pred(_) => Type::Array(Box::new(Type::Bool)),
        Operand::Call(f, args) => f.result(args.first().map(type_of)),
        Operand::Index(inner, idx) => match (type_of(inner), idx) {
            (Type::Map(v), Index::Key(_)) => *v,
            (Type::Map(v), Index::All) => Type::Array(Box::new(element(*v))),
            (Type::Array(v), Index::Pos(_)) => *v,
            (Type::Array(v), Index::All) => Type::Array(v),
            (t, _) => t,
        },
    }
}

/// Indexing a `Map<Array<T>>` with `[*]` walks every value's elements.
fn element(t: Type) -> Type {
    match t {
        Type::Array(inner) => *inner,
        t => t,
    }
}

fn check_call(call: &Operand) -> Result<(), String> {
    let Operand::Call(func, args) = call else {
        return Ok(());
    };
    let types: Vec<Type> = args.iter().map(type_of).collect();
    let (min, max) = func.arity();
    if types.len() < min || types.len() > max {
        return Err(if min == max {
            format!(
                "{}() takes {min} argument(s), not {}",
                func.name(),
                types.len()
            )
        } else {
            format!(
                "{}() takes {min} to {max} arguments, not {}",
                func.name(),
                types.len()
            )
        });
    }
    for (i, t) in types.iter().enumerate() {
        let ok = match (func, i) {
            (Func::Any | Func::All, _) => true,
            (Func::Len, _) => matches!(t, Type::Bytes | Type::Array(_)),
            (Func::ToString, _) => matches!(t, Type::Int | Type::Ip | Type::Bool | Type::Bytes),
            (Func::Substring, 1 | 2) => *t == Type::Int,
            (Func::HasKey | Func::HasValue, 0) => matches!(t, Type::Map(_) | Type::Array(_)),
            (Func::Concat, _) => matches!(t, Type::Bytes),
            (f, 0) if f.elementwise() => {
                *t == Type::Bytes || *t == Type::Array(Box::new(Type::Bytes))
            }
            _ => *t == Type::Bytes,
        };
        if !ok {
            return Err(format!(
                "{}(): argument {} is {t}, which it does not take",
                func.name(),
                i + 1
            ));
        }
    }
    Ok(())
}
