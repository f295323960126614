//! Cloudflare's Rules language (the wirefilter syntax) for custom rules,
//! rate-limiting rule scopes, JWT/API-key scopes and managed-rule
//! exclusions: [`Expr::compile`] parses and type-checks an expression once,
//! [`Expr::eval`] runs it against one request's [`RequestCtx`].

mod eval;
mod parse;

use std::borrow::Cow;
use std::cell::OnceCell;
use std::fmt;
use std::net::IpAddr;

pub use parse::{MAX_EXPRESSION_BYTES, ParseError};

/// A value type of the Rules language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Type {
    Bool,
    Int,
    Bytes,
    Ip,
    Array(Box<Type>),
    Map(Box<Type>),
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::Bool => f.write_str("Boolean"),
            Type::Int => f.write_str("Integer"),
            Type::Bytes => f.write_str("String"),
            Type::Ip => f.write_str("IP address"),
            Type::Array(t) => write!(f, "Array<{t}>"),
            Type::Map(t) => write!(f, "Map<{t}>"),
        }
    }
}

macro_rules! fields {
    ($($variant:ident = $name:literal : $ty:expr,)*) => {
        /// The request fields an expression can read.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Field { $($variant,)* }

        impl Field {
            pub fn from_name(name: &str) -> Option<Field> {
                match name { $($name => Some(Field::$variant),)* _ => None }
            }
            pub fn name(self) -> &'static str {
                match self { $(Field::$variant => $name,)* }
            }
            pub fn ty(self) -> Type {
                match self { $(Field::$variant => $ty,)* }
            }
            /// Every field name, for documentation and error hints.
            pub const ALL: &'static [&'static str] = &[$($name,)*];
        }
    };
}

fn strs() -> Type {
    Type::Array(Box::new(Type::Bytes))
}
fn str_map() -> Type {
    Type::Map(Box::new(strs()))
}

fields! {
    Host = "http.host": Type::Bytes,
    Method = "http.request.method": Type::Bytes,
    Uri = "http.request.uri": Type::Bytes,
    Path = "http.request.uri.path": Type::Bytes,
    PathExtension = "http.request.uri.path.extension": Type::Bytes,
    Query = "http.request.uri.query": Type::Bytes,
    FullUri = "http.request.full_uri": Type::Bytes,
    Version = "http.request.version": Type::Bytes,
    UserAgent = "http.user_agent": Type::Bytes,
    Referer = "http.referer": Type::Bytes,
    Cookie = "http.cookie": Type::Bytes,
    XForwardedFor = "http.x_forwarded_for": Type::Bytes,
    Headers = "http.request.headers": str_map(),
    HeaderNames = "http.request.headers.names": strs(),
    HeaderValues = "http.request.headers.values": strs(),
    Cookies = "http.request.cookies": str_map(),
    Args = "http.request.uri.args": str_map(),
    ArgNames = "http.request.uri.args.names": strs(),
    ArgValues = "http.request.uri.args.values": strs(),
    JwtClaims = "http.request.jwt.claims": str_map(),
    IpSrc = "ip.src": Type::Ip,
    Ssl = "ssl": Type::Bool,
    Timestamp = "http.request.timestamp.sec": Type::Int,
    ServerPort = "cf.edge.server_port": Type::Int,
}

/// The transformation and test functions of the Rules language this
/// engine implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    Any,
    All,
    Concat,
    EndsWith,
    StartsWith,
    Len,
    Lower,
    Upper,
    UrlDecode,
    ToString,
    Substring,
    HasKey,
    HasValue,
    RemoveBytes,
}

impl Func {
    fn from_name(name: &str) -> Option<Func> {
        Some(match name {
            "any" => Func::Any,
            "all" => Func::All,
            "concat" => Func::Concat,
            "ends_with" => Func::EndsWith,
            "starts_with" => Func::StartsWith,
            "len" => Func::Len,
            "lower" => Func::Lower,
            "upper" => Func::Upper,
            "url_decode" => Func::UrlDecode,
            "to_string" => Func::ToString,
            "substring" => Func::Substring,
            "has_key" => Func::HasKey,
            "has_value" => Func::HasValue,
            "remove_bytes" => Func::RemoveBytes,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Func::Any => "any",
            Func::All => "all",
            Func::Concat => "concat",
            Func::EndsWith => "ends_with",
            Func::StartsWith => "starts_with",
            Func::Len => "len",
            Func::Lower => "lower",
            Func::Upper => "upper",
            Func::UrlDecode => "url_decode",
            Func::ToString => "to_string",
            Func::Substring => "substring",
            Func::HasKey => "has_key",
            Func::HasValue => "has_value",
            Func::RemoveBytes => "remove_bytes",
        }
    }

    fn arity(self) -> (usize, usize) {
        match self {
            Func::Any | Func::All | Func::Len | Func::Lower | Func::Upper | Func::ToString => {
                (1, 1)
            }
            Func::UrlDecode => (1, 2),
            Func::Concat => (1, 16),
            Func::EndsWith
            | Func::StartsWith
            | Func::HasKey
            | Func::HasValue
            | Func::RemoveBytes => (2, 2),
            Func::Substring => (2, 3),
        }
    }

    /// Whether the function applies to each element of an array argument.
    fn elementwise(self) -> bool {
        matches!(
            self,
            Func::Lower | Func::Upper | Func::UrlDecode | Func::RemoveBytes
        )
    }

    fn result(self, first: Option<Type>) -> Type {
        match self {
            Func::Any
            | Func::All
            | Func::EndsWith
            | Func::StartsWith
            | Func::HasKey
            | Func::HasValue => Type::Bool,
            Func::Len => Type::Int,
            _ if self.elementwise() && matches!(first, Some(Type::Array(_))) => strs(),
            _ => Type::Bytes,
        }
    }
}

/// An IP network, `addr/prefix`; a bare address is a /32 or /128.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("{text:?} is not an IP address or CIDR range"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(n) if n <= max => n,
                _ => return Err(format!("{text:?}: the prefix length must be 0 to {max}")),
            },
        };
        Ok(Cidr { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match (self.addr, ip) {
            (IpAddr::V4(_), IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => return false,
            },
            (_, ip) => ip,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// A compiled, type-checked expression.
#[derive(Debug, Clone)]
pub struct Expr {
    root: parse::Node,
    source: String,
}

impl Expr {
    /// Parses and type-checks `source`; the whole must be a Boolean.
    pub fn compile(source: &str) -> Result<Expr, ParseError> {
        let root = parse::parse(source)?;
        if let Err(message) = eval::check_bool(&root) {
            return Err(ParseError { offset: 0, message });
        }
        Ok(Expr {
            root,
            source: source.to_string(),
        })
    }

    /// The expression as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn eval(&self, req: &RequestCtx<'_>) -> bool {
        eval::eval_bool(&self.root, req)
    }
}

/// One request as expressions see it. Derived views (headers by name,
/// cookies, query arguments) are built on first use.
#[derive(Debug)]
pub struct RequestCtx<'a> {
    pub method: &'a str,
    pub host: &'a str,
    /// The raw path, as sent.
    pub path: &'a str,
    /// The raw query, without `?` (empty when there is none).
    pub query: &'a str,
    /// Header names in lower case, in arrival order.
    pub headers: Vec<(&'a str, Cow<'a, str>)>,
    pub ip: IpAddr,
    pub ssl: bool,
    pub version: &'a str,
    pub port: u16,
    pub timestamp_sec: i64,
    /// Claims of a verified JWT, each as its string forms.
    pub jwt_claims: Vec<(String, Vec<String>)>,
    header_map: OnceCell<Vec<(String, Vec<String>)>>,
    cookie_map: OnceCell<Vec<(String, Vec<String>)>>,
    arg_map: OnceCell<Vec<(String, Vec<String>)>>,
}

impl<'a> RequestCtx<'a> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        method: &'a str,
        host: &'a str,
        path: &'a str,
        query: &'a str,
        headers: Vec<(&'a str, Cow<'a, str>)>,
        ip: IpAddr,
        ssl: bool,
        port: u16,
    ) -> Self {
        Self {
            method,
            host,
            path,
            query,
            headers,
            ip,
            ssl,
            version: "HTTP/1.1",
            port,
            timestamp_sec: 0,
            jwt_claims: Vec::new(),
            header_map: OnceCell::new(),
            cookie_map: OnceCell::new(),
            arg_map: OnceCell::new(),
        }
    }

    /// The first value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_ref())
    }

    pub fn header_map(&self) -> &[(String, Vec<String>)] {
        self.header_map.get_or_init(|| {
            let mut map: Vec<(String, Vec<String>)> = Vec::new();
            for (k, v) in &self.headers {
                let k = k.to_ascii_lowercase();
                match map.iter_mut().find(|(n, _)| *n == k) {
                    Some((_, vals)) => vals.push(v.to_string()),
                    None => map.push((k, vec![v.to_string()])),
                }
            }
            map
        })
    }

    pub fn cookie_map(&self) -> &[(String, Vec<String>)] {
        self.cookie_map.get_or_init(|| {
            let mut map: Vec<(String, Vec<String>)> = Vec::new();
            for (k, v) in &self.headers {
                if !k.eq_ignore_ascii_case("cookie") {
                    continue;
                }
                for pair in v.split(';') {
                    let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                    push(&mut map, name.trim().to_string(), value.trim().to_string());
                }
            }
            map
        })
    }

    /// Query arguments, names and values percent-decoded (`+` is a space).
    pub fn arg_map(&self) -> &[(String, Vec<String>)] {
        self.arg_map.get_or_init(|| {
            let mut map = Vec::new();
            for (k, v) in form_pairs(self.query) {
                push(&mut map, k, v);
            }
            map
        })
    }
}

fn push(map: &mut Vec<(String, Vec<String>)>, k: String, v: String) {
    match map.iter_mut().find(|(n, _)| *n == k) {
        Some((_, vals)) => vals.push(v),
        None => map.push((k, vec![v])),
    }
}

/// `application/x-www-form-urlencoded` pairs, decoded.
pub fn form_pairs(text: &str) -> impl Iterator<Item = (String, String)> + '_ {
    text.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k, true), percent_decode(v, true))
    })
}

/// Like [`percent_decode`], borrowing `s` when there is nothing to
/// decode (the common case, which then costs no allocation).
pub fn percent_decode_cow(s: &str, plus_is_space: bool) -> Cow<'_, str> {
    let has_plus = plus_is_space && s.as_bytes().contains(&b'+');
    if !has_plus && !s.as_bytes().contains(&b'%') {
        return Cow::Borrowed(s);
    }
    Cow::Owned(percent_decode(s, plus_is_space))
}

/// Percent-decodes `s`; invalid escapes stay as they are; bytes that do
/// not form UTF-8 become U+FFFD.
pub fn percent_decode(s: &str, plus_is_space: bool) -> String {
    if !s.contains(['%', '+']) {
        return s.to_string();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                }
                _ => {
                    out.push(b'%');
                    i += 1;
                }
            },
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}
