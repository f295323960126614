//! A small writer of MaxMind DB files (format 2.0, IPv4 tree, 24-bit
//! records), so GeoIP tests build their own database instead of shipping
//! or downloading one.

use std::net::Ipv4Addr;

/// A value in the database's data section.
pub enum Val {
    Str(&'static str),
    U16(u16),
    U32(u32),
    U64(u64),
    F64(f64),
    Map(Vec<(&'static str, Val)>),
    Arr(Vec<Val>),
}

#[derive(Clone, Copy)]
enum Record {
    Empty,
    Node(u32),
    Data(u32),
}

#[derive(Default)]
pub struct Writer {
    nodes: Vec<[Record; 2]>,
    data: Vec<u8>,
}

impl Writer {
    pub fn new() -> Self {
        Writer {
            nodes: vec![[Record::Empty, Record::Empty]],
            data: Vec::new(),
        }
    }

    /// Maps `network/prefix` (1..=32) to `value`.
    pub fn insert(&mut self, network: Ipv4Addr, prefix: u8, value: &Val) {
        let offset = self.data.len() as u32;
        encode(value, &mut self.data);
        let bits = u32::from(network);
        let mut node = 0usize;
        for i in 0..prefix {
            let bit = ((bits >> (31 - i)) & 1) as usize;
            if i + 1 == prefix {
                self.nodes[node][bit] = Record::Data(offset);
                break;
            }
            node = match self.nodes[node][bit] {
                Record::Node(n) => n as usize,
                _ => {
                    self.nodes.push([Record::Empty, Record::Empty]);
                    let n = self.nodes.len() - 1;
                    self.nodes[node][bit] = Record::Node(n as u32);
                    n
                }
            };
        }
    }

    pub fn finish(self) -> Vec<u8> {
        let count = self.nodes.len() as u32;
        let value = |r: Record| match r {
            Record::Empty => count,
            Record::Node(n) => n,
            Record::Data(off) => count + 16 + off,
        };
        let mut out = Vec::new();
        for [left, right] in self.nodes {
            out.extend_from_slice(&value(left).to_be_bytes()[1..]);
            out.extend_from_slice(&value(right).to_be_bytes()[1..]);
        }
        out.extend_from_slice(&[0u8; 16]);
        out.extend_from_slice(&self.data);
        out.extend_from_slice(b"\xAB\xCD\xEFMaxMind.com");
        let metadata = Val::Map(vec![
            ("node_count", Val::U32(count)),
            ("record_size", Val::U16(24)),
            ("ip_version", Val::U16(4)),
            ("database_type", Val::Str("Hearth-Test-City")),
            ("languages", Val::Arr(vec![Val::Str("en")])),
            ("binary_format_major_version", Val::U16(2)),
            ("binary_format_minor_version", Val::U16(0)),
            ("build_epoch", Val::U64(1_700_000_000)),
            ("description", Val::Map(vec![("en", Val::Str("test"))])),
        ]);
        encode(&metadata, &mut out);
        out
    }
}

fn control(kind: u8, size: usize, out: &mut Vec<u8>) {
    let (first, extra): (u8, Vec<u8>) = if size < 29 {
        (size as u8, vec![])
    } else if size < 29 + 256 {
        (29, vec![(size - 29) as u8])
    } else {
        let n = size - 285;
        (30, vec![(n >> 8) as u8, n as u8])
    };
    if kind <= 7 {
        out.push((kind << 5) | first);
    } else {
        out.push(first);
        out.push(kind - 7);
    }
    out.extend_from_slice(&extra);
}

fn unsigned(kind: u8, v: u64, out: &mut Vec<u8>) {
    let bytes = v.to_be_bytes();
    let skip = bytes.iter().take_while(|&&b| b == 0).count();
    control(kind, 8 - skip, out);
    out.extend_from_slice(&bytes[skip..]);
}

fn encode(v: &Val, out: &mut Vec<u8>) {
    match v {
        Val::Str(s) => {
            control(2, s.len(), out);
            out.extend_from_slice(s.as_bytes());
        }
        Val::F64(f) => {
            control(3, 8, out);
            out.extend_from_slice(&f.to_be_bytes());
        }
        Val::U16(n) => unsigned(5, u64::from(*n), out),
        Val::U32(n) => unsigned(6, u64::from(*n), out),
        Val::U64(n) => unsigned(9, *n, out),
        Val::Map(pairs) => {
            control(7, pairs.len(), out);
            for (k, v) in pairs {
                encode(&Val::Str(k), out);
                encode(v, out);
            }
        }
        Val::Arr(items) => {
            control(11, items.len(), out);
            for item in items {
                encode(item, out);
            }
        }
    }
}
