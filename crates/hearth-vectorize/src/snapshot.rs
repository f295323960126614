//! The graph as it is kept on disk, so a restart need not rebuild it.
//!
//! A snapshot is one blob in the index's SQLite file with a checksum
//! beside it. It holds the graph's nodes in order and, for each, which
//! vector it stands for: the id and the mutation (`seq`) that wrote that
//! version, or nothing for a vector deleted before the snapshot. On start
//! a node is matched to the stored row with the same id and `seq`; a node
//! whose vector was replaced or deleted since is dead and repaired away,
//! and rows written since are linked by the indexer as new. A blob whose
//! checksum or structure does not hold is ignored: the graph is rebuilt.
//!
//! Layout (little-endian): magic `HVG1`, dimensions u32, nodes u32, entry
//! u32 (`u32::MAX` for none), rng u64; then per node its seq i64, id
//! length u16 and bytes, level u8, and per layer a link count u16 and the
//! links u32.

use crate::hnsw::Graph;

const MAGIC: &[u8; 4] = b"HVG1";

/// What a node stands for: `(id, seq)`, or `None` for a dead vector.
pub type NodeOf = Option<(Box<str>, i64)>;

/// FNV-1a, 64 bits: enough to tell a torn or altered blob.
pub fn checksum(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Encodes `graph` with `node_of(node)` for each node.
pub fn encode(graph: &Graph, dims: usize, node_of: &dyn Fn(u32) -> NodeOf) -> Vec<u8> {
    let mut out = Vec::with_capacity(graph.len() * 120 + 32);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(dims as u32).to_le_bytes());
    out.extend_from_slice(&(graph.len() as u32).to_le_bytes());
    let (entry, _) = graph.entry();
    out.extend_from_slice(&entry.unwrap_or(u32::MAX).to_le_bytes());
    out.extend_from_slice(&graph.rng().to_le_bytes());
    for node in 0..graph.len() as u32 {
        let (id, seq) = match node_of(node) {
            Some((id, seq)) => (id, seq),
            None => (Box::from(""), 0),
        };
        out.extend_from_slice(&seq.to_le_bytes());
        out.extend_from_slice(&(id.len() as u16).to_le_bytes());
        out.extend_from_slice(id.as_bytes());
        let links = graph.links(node);
        out.push(graph.level(node) as u8);
        for list in links {
            out.extend_from_slice(&(list.len() as u16).to_le_bytes());
            for &x in list {
                out.extend_from_slice(&x.to_le_bytes());
            }
        }
    }
    out
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let Some(end) = end else {
            return Err(format!("the snapshot ends early at byte {}", self.at));
        };
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
}

/// Decodes a snapshot for an index of `dims` dimensions.
pub fn decode(bytes: &[u8], dims: usize) -> Result<(Graph, Vec<NodeOf>), String> {
    let mut r = Reader { bytes, at: 0 };
    if r.take(4)? != MAGIC {
        return Err("not a graph snapshot".into());
    }
    let d = u32::from_le_bytes(r.array()?) as usize;
    if d != dims {
        return Err(format!("snapshot of {d} dimensions, the index has {dims}"));
    }
    let n = u32::from_le_bytes(r.array()?) as usize;
    let entry = u32::from_le_bytes(r.array()?);
    let rng = u64::from_le_bytes(r.array()?);
    // Each node takes at least 13 bytes: no count is trusted beyond that.
    if n > bytes.len() / 13 {
        return Err(format!("{n} nodes cannot fit in {} bytes", bytes.len()));
    }
    let mut nodes = Vec::with_capacity(n);
    let mut levels = Vec::with_capacity(n);
    let mut links = Vec::with_capacity(n);
    for _ in 0..n {
        let seq = i64::from_le_bytes(r.array()?);
        let len = u16::from_le_bytes(r.array()?) as usize;
        let id = std::str::from_utf8(r.take(len)?).map_err(|e| format!("node id: {e}"))?;
        nodes.push((!id.is_empty()).then(|| (Box::from(id), seq)));
        let level = r.array::<1>()?[0];
        if level > 16 {
            return Err(format!("node level {level}"));
        }
        let mut layers = Vec::with_capacity(level as usize + 1);
        for _ in 0..=level {
            let count = u16::from_le_bytes(r.array()?) as usize;
            let raw = r.take(count * 4)?;
            layers.push(
                raw.chunks_exact(4)
                    .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect::<Vec<u32>>(),
            );
        }
        levels.push(level);
        links.push(layers);
    }
    if r.at != bytes.len() {
        return Err(format!("{} bytes after the last node", bytes.len() - r.at));
    }
    let entry = (entry != u32::MAX).then_some(entry);
    let graph = Graph::from_parts(levels, links, entry, rng)?;
    Ok((graph, nodes))
}
