//! Metadata indexes and the query filter over them.
//!
//! A metadata index names a property (`genre`, or `author.name` for a
//! nested one) and its type. When a vector is written, the value of each
//! indexed property that has the index's type is kept with it (strings cut
//! to their first 64 bytes on a character boundary, as Cloudflare does);
//! filters see only those values, so a vector written before its property
//! was indexed is not matched by a filter on it.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde_json::{Map, Value};

/// What Cloudflare keeps of an indexed string.
pub const MAX_INDEXED_STRING_BYTES: usize = 64;
/// A filter's JSON may be this long.
pub const MAX_FILTER_BYTES: usize = 2048;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexType {
    String,
    Number,
    Boolean,
}

impl IndexType {
    pub fn as_str(self) -> &'static str {
        match self {
            IndexType::String => "string",
            IndexType::Number => "number",
            IndexType::Boolean => "boolean",
        }
    }
}

impl fmt::Display for IndexType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for IndexType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "string" => Ok(IndexType::String),
            "number" => Ok(IndexType::Number),
            "boolean" => Ok(IndexType::Boolean),
            other => Err(format!(
                "unknown metadata index type \"{other}\": expected string, number or boolean"
            )),
        }
    }
}

/// One metadata index of a vector index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataIndex {
    pub property_name: String,
    pub index_type: IndexType,
}

/// An indexed value of one vector.
#[derive(Debug, Clone, PartialEq)]
pub enum Indexed {
    /// Shared, so equal strings of many vectors are one allocation.
    Str(Arc<str>),
    Num(f64),
    Bool(bool),
}

impl Indexed {
    pub fn to_json(&self) -> Value {
        match self {
            Indexed::Str(s) => Value::String(s.to_string()),
            Indexed::Num(n) => serde_json::Number::from_f64(*n).map_or(Value::Null, Value::Number),
            Indexed::Bool(b) => Value::Bool(*b),
        }
    }

    /// The value as a posting-list key.
    pub fn key(&self) -> Key {
        match self {
            Indexed::Str(s) => Key::Str(s.clone()),
            Indexed::Num(n) => Key::num(*n),
            Indexed::Bool(b) => Key::Bool(*b),
        }
    }

    fn from_json(v: &Value, ty: IndexType) -> Option<Indexed> {
        match (v, ty) {
            (Value::String(s), IndexType::String) => Some(Indexed::Str(truncate(s).into())),
            (Value::Number(n), IndexType::Number) => n.as_f64().map(Indexed::Num),
            (Value::Bool(b), IndexType::Boolean) => Some(Indexed::Bool(*b)),
            _ => None,
        }
    }

    fn compare(&self, other: &Scalar) -> Option<Ordering> {
        match (self, other) {
            (Indexed::Str(a), Scalar::Str(b)) => Some((**a).cmp(truncate(b))),
            (Indexed::Num(a), Scalar::Num(b)) => a.partial_cmp(b),
            (Indexed::Bool(a), Scalar::Bool(b)) => Some(a.cmp(b)),
            _ => None,
        }
    }
}

/// An indexed value as the key of its posting list: two values are the
/// same key exactly when a `$eq` between them holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    Str(Arc<str>),
    /// The number's bits, with -0 read as 0.
    Num(u64),
    Bool(bool),
}

impl Key {
    fn num(n: f64) -> Key {
        Key::Num(if n == 0.0 { 0 } else { n.to_bits() })
    }

    /// The value every vector in this key's posting list holds.
    pub fn value(&self) -> Indexed {
        match self {
            Key::Str(s) => Indexed::Str(s.clone()),
            Key::Num(bits) => Indexed::Num(f64::from_bits(*bits)),
            Key::Bool(b) => Indexed::Bool(*b),
        }
    }
}

/// The longest prefix of `s` within 64 bytes that ends on a character.
fn truncate(s: &str) -> &str {
    if s.len() <= MAX_INDEXED_STRING_BYTES {
        return s;
    }
    let mut end = MAX_INDEXED_STRING_BYTES;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// `metadata`'s value at a dotted property path.
fn lookup<'a>(metadata: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut parts = path.split('.');
    let mut cur = metadata.get(parts.next()?)?;
    for part in parts {
        cur = cur.as_object()?.get(part)?;
    }
    Some(cur)
}

/// The values `indexes` keep of `metadata`.
pub fn extract(
    metadata: Option<&Map<String, Value>>,
    indexes: &[MetadataIndex],
) -> Vec<(Box<str>, Indexed)> {
    let Some(metadata) = metadata else {
        return Vec::new();
    };
    indexes
        .iter()
        .filter_map(|ix| {
            let v = lookup(metadata, &ix.property_name)?;
            Indexed::from_json(v, ix.index_type).map(|i| (ix.property_name.as_str().into(), i))
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq)]
enum Scalar {
    Null,
    Str(String),
    Num(f64),
    Bool(bool),
}

impl Scalar {
    fn parse(v: &Value, field: &str, op: &str) -> Result<Scalar, String> {
        Ok(match v {
            Value::Null => Scalar::Null,
            Value::String(s) => Scalar::Str(s.clone()),
            Value::Number(n) => Scalar::Num(n.as_f64().unwrap_or(f64::NAN)),
            Value::Bool(b) => Scalar::Bool(*b),
            _ => {
                return Err(format!(
                    "invalid filter: \"{field}\": {op} takes a string, number, boolean or null"
                ));
            }
        })
    }

    /// The posting-list key a vector's value must have to equal this
    /// (`None` for null, which matches vectors lacking the property).
    fn key(&self) -> Option<Key> {
        match self {
            Scalar::Null => None,
            Scalar::Str(s) => Some(Key::Str(Arc::from(truncate(s)))),
            Scalar::Num(n) if n.is_nan() => None,
            Scalar::Num(n) => Some(Key::num(*n)),
            Scalar::Bool(b) => Some(Key::Bool(*b)),
        }
    }

    fn equals(&self, value: Option<&Indexed>) -> bool {
        match (self, value) {
            (Scalar::Null, None) => true,
            (Scalar::Null, Some(_)) | (_, None) => false,
            (s, Some(v)) => v.compare(s) == Some(Ordering::Equal),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Op {
    Eq(Scalar),
    Ne(Scalar),
    In(Vec<Scalar>),
    Nin(Vec<Scalar>),
    Lt(Scalar),
    Lte(Scalar),
    Gt(Scalar),
    Gte(Scalar),
}

#[derive(Debug, Clone, PartialEq)]
struct Clause {
    field: String,
    /// Whether the field has a metadata index: a filter on one that has
    /// none sees every vector as lacking it.
    indexed: bool,
    op: Op,
}

/// A parsed `filter`: every clause must hold (an implicit AND).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Filter {
    clauses: Vec<Clause>,
}

impl Filter {
    /// Parses a query's `filter` against the index's metadata indexes.
    pub fn parse(filter: &Value, indexes: &[MetadataIndex]) -> Result<Filter, String> {
        let size = filter.to_string().len();
        if size > MAX_FILTER_BYTES {
            return Err(format!(
                "invalid filter: {size} bytes of JSON is over the limit of {MAX_FILTER_BYTES}"
            ));
        }
        let Value::Object(fields) = filter else {
            return Err("invalid filter: expected an object of property names".into());
        };
        let mut clauses = Vec::new();
        for (field, cond) in fields {
            if field.is_empty() || field.starts_with('$') || field.contains('"') {
                return Err(format!(
                    "invalid filter: \"{field}\" is not a property name (it must be non-empty, without '\"' and not start with '$')"
                ));
            }
            let indexed = indexes.iter().any(|ix| ix.property_name == *field);
            let mut push = |op| {
                clauses.push(Clause {
                    field: field.clone(),
                    indexed,
                    op,
                })
            };
            match cond {
                Value::Object(ops) => {
                    if ops.is_empty() {
                        return Err(format!("invalid filter: \"{field}\" has no operator"));
                    }
                    for (name, v) in ops {
                        let one = |v| Scalar::parse(v, field, name);
                        let list = |v: &Value| {
                            match v {
                            Value::Array(items) => items
                                .iter()
                                .map(|i| match i {
                                    Value::Null => Err(format!(
                                        "invalid filter: \"{field}\": {name} takes strings, numbers or booleans"
                                    )),
                                    i => Scalar::parse(i, field, name),
                                })
                                .collect::<Result<Vec<_>, _>>(),
                            _ => Err(format!("invalid filter: \"{field}\": {name} takes an array")),
                        }
                        };
                        let range = |v| match one(v)? {
                            Scalar::Null => Err(format!(
                                "invalid filter: \"{field}\": {name} takes a string, number or boolean"
                            )),
                            s => Ok(s),
                        };
                        let op = match name.as_str() {
                            "$eq" => Op::Eq(one(v)?),
                            "$ne" => Op::Ne(one(v)?),
                            "$in" => Op::In(list(v)?),
                            "$nin" => Op::Nin(list(v)?),
                            "$lt" => Op::Lt(range(v)?),
                            "$lte" => Op::Lte(range(v)?),
                            "$gt" => Op::Gt(range(v)?),
                            "$gte" => Op::Gte(range(v)?),
                            other => {
                                return Err(format!(
                                    "invalid filter: \"{field}\": unsupported operator {other} (expected $eq, $ne, $in, $nin, $lt, $lte, $gt or $gte)"
                                ));
                            }
                        };
                        push(op);
                    }
                }
                Value::Array(_) => {
                    return Err(format!(
                        "invalid filter: \"{field}\": use {{ \"$in\": [...] }} to match one of several values"
                    ));
                }
                v => push(Op::Eq(Scalar::parse(v, field, "$eq")?)),
            }
        }
        Ok(Filter { clauses })
    }

    pub fn is_empty(&self) -> bool {
        self.clauses.is_empty()
    }

    /// How many clauses (each operator of each property is one).
    pub fn len(&self) -> usize {
        self.clauses.len()
    }

    /// Per clause, the property it reads when that property has a
    /// metadata index (`None`: it reads nothing, every vector lacks it).
    pub fn fields(&self) -> Vec<Option<&str>> {
        self.clauses
            .iter()
            .map(|c| c.indexed.then_some(c.field.as_str()))
            .collect()
    }

    /// Per clause that only vectors holding one of a few values can pass
    /// (`$eq` or `$in` on an indexed property), the property and those
    /// values as posting-list keys. A vector that passes the filter is in
    /// the union of the keys' posting lists of every clause given here.
    pub fn lookups(&self) -> Vec<(&str, Vec<Key>)> {
        self.clauses
            .iter()
            .filter(|c| c.indexed)
            .filter_map(|c| {
                let keys = match &c.op {
                    Op::Eq(s) => vec![s.key()?],
                    // Values of another type than the property's match
                    // nothing; their lists are simply empty.
                    Op::In(list) => list.iter().filter_map(Scalar::key).collect(),
                    _ => return None,
                };
                Some((c.field.as_str(), keys))
            })
            .collect()
    }

    /// The clauses on indexed properties that [`Filter::lookups`] leaves
    /// out (`$ne`, `$nin` and ranges), by number and property: a vector
    /// passes one when [`Filter::clause_passes`] says its value does.
    pub fn key_tests(&self) -> Vec<(usize, &str)> {
        self.clauses
            .iter()
            .enumerate()
            .filter(|(_, c)| c.indexed && !matches!(c.op, Op::Eq(_) | Op::In(_)))
            .map(|(i, c)| (i, c.field.as_str()))
            .collect()
    }

    /// Whether a vector whose value for clause `i`'s property is `value`
    /// passes that clause.
    pub fn clause_passes(&self, i: usize, value: Option<&Indexed>) -> bool {
        self.clauses.get(i).is_some_and(|c| c.passes(value))
    }

    /// Whether a vector with these indexed values passes.
    pub fn matches(&self, values: &[(Box<str>, Indexed)]) -> bool {
        self.matches_by(|i| {
            let c = &self.clauses[i];
            if !c.indexed {
                return None;
            }
            values.iter().find(|(k, _)| **k == *c.field).map(|(_, v)| v)
        })
    }

    /// Whether a vector passes whose value for clause `i` is `value(i)`.
    pub fn matches_by<'a>(&self, value: impl Fn(usize) -> Option<&'a Indexed>) -> bool {
        self.clauses
            .iter()
            .enumerate()
            .all(|(i, c)| c.passes(value(i)))
    }
}

impl Clause {
    fn passes(&self, value: Option<&Indexed>) -> bool {
        let ord = |s: &Scalar| value.and_then(|v| v.compare(s));
        match &self.op {
            Op::Eq(s) => s.equals(value),
            Op::Ne(s) => !s.equals(value),
            Op::In(list) => list.iter().any(|s| s.equals(value)),
            Op::Nin(list) => !list.iter().any(|s| s.equals(value)),
            Op::Lt(s) => ord(s) == Some(Ordering::Less),
            Op::Lte(s) => matches!(ord(s), Some(Ordering::Less | Ordering::Equal)),
            Op::Gt(s) => ord(s) == Some(Ordering::Greater),
            Op::Gte(s) => matches!(ord(s), Some(Ordering::Greater | Ordering::Equal)),
        }
    }
}
