//! A Hierarchical Navigable Small World graph (Malkov & Yashunin) over the
//! index's vector slots.
//!
//! Written here rather than taken from a crate because the index needs
//! what the crates on offer do not give together: slots that die (a
//! deleted or replaced vector stays in the graph as a waypoint, skipped in
//! results, until a repair unlinks it), a search that takes any predicate (namespace and
//! metadata filters applied before top K), insertion split into a
//! read-only planning step and a short linking step (so queries keep
//! running while the graph grows), and no threads, loggers or memory maps
//! of its own.
//!
//! Node `i` is slot `i`; nodes are added in slot order by one writer.

use std::cell::RefCell;
use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use crate::distance::{Metric, dot, dot_i8, quantise};

/// Neighbours per node above layer 0 (layer 0 keeps twice as many).
pub const M: usize = 16;
/// Candidates kept while linking a new node.
pub const EF_CONSTRUCTION: usize = 128;

/// The stored vectors the graph's nodes stand for, as given (cosine keeps
/// each one's inverse norm beside it rather than normalising, so values
/// read back are the ones written).
#[derive(Clone, Copy)]
pub struct Vectors<'a> {
    pub data: &'a [f32],
    pub inv_norms: &'a [f32],
    /// Each slot's values as int8 codes ([`quantise`]), `dims` per slot,
    /// and the scale of each slot's codes.
    pub codes: &'a [i8],
    pub scales: &'a [f32],
    /// The largest squared norm of any slot, for dot-product's links.
    pub max_sq_norm: f32,
    pub dims: usize,
    pub metric: Metric,
}

/// A prepared query as int8 codes, for [`Vectors::approx`].
pub struct QueryCodes {
    codes: Vec<i8>,
    scale: f32,
    sq_norm: f32,
}

impl QueryCodes {
    pub fn new(q: &[f32]) -> Self {
        let mut codes = Vec::with_capacity(q.len());
        let scale = quantise(q, &mut codes);
        Self {
            codes,
            scale,
            sq_norm: dot(q, q),
        }
    }
}

impl<'a> Vectors<'a> {
    #[inline]
    pub fn get(&self, slot: u32) -> &'a [f32] {
        let start = slot as usize * self.dims;
        &self.data[start..start + self.dims]
    }

    /// Distance from a prepared query ([`Metric::prepare`]) to a slot.
    #[inline]
    pub fn to(&self, q: &[f32], slot: u32) -> f32 {
        match self.metric {
            Metric::Cosine => 1.0 - dot(q, self.get(slot)) * self.inv_norms[slot as usize],
            m => m.distance(q, self.get(slot)),
        }
    }

    /// [`Vectors::to`] from the int8 codes: a quarter of the memory read,
    /// close enough to pick candidates that [`Vectors::to`] then ranks.
    #[inline]
    pub fn approx(&self, q: &QueryCodes, slot: u32) -> f32 {
        let s = slot as usize;
        let codes = &self.codes[s * self.dims..(s + 1) * self.dims];
        let raw = dot_i8(&q.codes, codes) as f32 * q.scale * self.scales[s];
        match self.metric {
            Metric::Cosine => 1.0 - raw * self.inv_norms[s],
            Metric::DotProduct => -raw,
            Metric::Euclidean => {
                let inv = self.inv_norms[s];
                let sq = if inv > 0.0 { 1.0 / (inv * inv) } else { 0.0 };
                q.sq_norm + sq - 2.0 * raw
            }
        }
    }

    /// Distance between two slots, what the graph is linked by.
    ///
    /// Dot-product is not a distance (a vector need not be its own
    /// nearest), and links chosen by it leave parts of the graph hard to
    /// reach. Its slots are linked instead by the euclidean distance
    /// between them lifted by one dimension, `sqrt(max_sq_norm - |x|^2)`,
    /// where every slot has the same norm: a query lifted by 0 is then
    /// ordered the same by that distance and by dot-product, so walks keep
    /// using dot-product (Bachrach et al., 2014, "Speeding up the Xbox
    /// recommender system using a euclidean transformation").
    #[inline]
    pub fn between(&self, a: u32, b: u32) -> f32 {
        let (ia, ib) = (self.inv_norms[a as usize], self.inv_norms[b as usize]);
        match self.metric {
            Metric::Cosine => 1.0 - dot(self.get(a), self.get(b)) * ia * ib,
            Metric::DotProduct => {
                let sq = |inv: f32| if inv > 0.0 { 1.0 / (inv * inv) } else { 0.0 };
                let lift = |inv: f32| (self.max_sq_norm - sq(inv)).max(0.0);
                2.0 * (self.max_sq_norm
                    - dot(self.get(a), self.get(b))
                    - (lift(ia) * lift(ib)).sqrt())
            }
            m => m.distance(self.get(a), self.get(b)),
        }
    }
}

/// A distance and its node, ordered by distance.
#[derive(Clone, Copy, Debug)]
pub struct Near(pub f32, pub u32);

impl PartialEq for Near {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Near {}
impl PartialOrd for Near {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Near {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0).then(self.1.cmp(&other.1))
    }
}

/// Where a new node goes: its level and its chosen neighbours per layer.
pub struct Plan {
    node: u32,
    level: usize,
    neighbours: Vec<Vec<u32>>,
}

/// What unlinking dead nodes changes: new link lists, the nodes whose
/// links are dropped, and the entry after.
pub struct Repair {
    relinked: Vec<(u32, u8, Vec<u32>)>,
    unlinked: Vec<u32>,
    entry: Option<u32>,
}

#[derive(Debug)]
pub struct Graph {
    levels: Vec<u8>,
    /// `links[node][layer]`.
    links: Vec<Vec<Vec<u32>>>,
    entry: Option<u32>,
    top: usize,
    rng: u64,
}

thread_local! {
    /// Per-thread visited marks: `marks[node] == stamp` means visited in
    /// the current search, so nothing is cleared between searches.
    static VISITED: RefCell<(u32, Vec<u32>)> = const { RefCell::new((0, Vec::new())) };
}

fn with_visited<R>(n: usize, f: impl FnOnce(&mut dyn FnMut(u32) -> bool) -> R) -> R {
    VISITED.with(|v| {
        let mut v = v.borrow_mut();
        let (stamp, marks) = &mut *v;
        if marks.len() < n {
            marks.resize(n, 0);
        }
        *stamp = stamp.wrapping_add(1);
        if *stamp == 0 {
            marks.iter_mut().for_each(|m| *m = 0);
            *stamp = 1;
        }
        let s = *stamp;
        let mut first_visit = |node: u32| {
            let m = &mut marks[node as usize];
            if *m == s {
                false
            } else {
                *m = s;
                true
            }
        };
        f(&mut first_visit)
    })
}

impl Default for Graph {
    fn default() -> Self {
        Self::new(0x9E37_79B9_7F4A_7C15)
    }
}

impl Graph {
    pub fn new(seed: u64) -> Self {
        Self {
            levels: Vec::new(),
            links: Vec::new(),
            entry: None,
            top: 0,
            rng: seed | 1,
        }
    }

    pub fn len(&self) -> usize {
        self.levels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.levels.is_empty()
    }

    /// A random level with the usual 1/ln(M) decay (xorshift64*).
    pub fn draw_level(&mut self) -> usize {
        draw_level(&mut self.rng)
    }

    fn max_links(layer: usize) -> usize {
        if layer == 0 { 2 * M } else { M }
    }

    /// Plans the insertion of the next node (`self.len()`) at `level`;
    /// reads only, so it runs beside queries.
    pub fn plan(&self, level: usize, vecs: Vectors<'_>) -> Plan {
        let node = self.len() as u32;
        let Some(entry) = self.entry else {
            return Plan {
                node,
                level,
                neighbours: vec![Vec::new(); level + 1],
            };
        };
        let mut neighbours = vec![Vec::new(); level + 1];
        let dist = |n: u32| vecs.between(node, n);
        let mut eps = vec![Near(dist(entry), entry)];
        for layer in (level + 1..=self.top).rev() {
            eps = self.search_layer(&dist, &eps, 1, layer, &|_| true);
        }
        for layer in (0..=level.min(self.top)).rev() {
            let found = self.search_layer(&dist, &eps, EF_CONSTRUCTION, layer, &|_| true);
            neighbours[layer] = select(&found, M, vecs);
            eps = found;
        }
        Plan {
            node,
            level,
            neighbours,
        }
    }

    /// Links a planned node in; `plan` must be for `self.len()`.
    pub fn apply(&mut self, plan: Plan, vecs: Vectors<'_>) {
        debug_assert_eq!(plan.node as usize, self.len());
        let node = plan.node;
        self.levels.push(plan.level as u8);
        self.links.push(plan.neighbours.clone());
        for (layer, list) in plan.neighbours.iter().enumerate() {
            for &n in list {
                let max = Self::max_links(layer);
                let theirs = &mut self.links[n as usize][layer];
                theirs.push(node);
                if theirs.len() > max {
                    let mut cands: Vec<Near> = theirs
                        .iter()
                        .map(|&x| Near(vecs.between(n, x), x))
                        .collect();
                    cands.sort_unstable();
                    self.links[n as usize][layer] = select(&cands, max, vecs);
                }
            }
        }
        if self.entry.is_none() || plan.level > self.top {
            self.entry = Some(node);
            self.top = plan.level;
        }
    }

    /// Adds the next node with no links (a vector deleted before it was
    /// linked): it takes a node number and is never reached.
    pub fn push_unlinked(&mut self) {
        self.levels.push(0);
        self.links.push(vec![Vec::new()]);
    }

    /// A node's level.
    pub fn level(&self, node: u32) -> usize {
        self.levels[node as usize] as usize
    }

    /// A node's links, per layer from 0 up to its level.
    pub fn links(&self, node: u32) -> &[Vec<u32>] {
        &self.links[node as usize]
    }

    /// The entry node and the top layer.
    pub fn entry(&self) -> (Option<u32>, usize) {
        (self.entry, self.top)
    }

    /// The random state levels are drawn from.
    pub fn rng(&self) -> u64 {
        self.rng
    }

    /// A graph from its parts, checked: one level per node (at most 16),
    /// links per layer up to each node's level, every link to a node of
    /// the graph and no more per layer than linking keeps, the entry a
    /// node on the top layer.
    pub fn from_parts(
        levels: Vec<u8>,
        links: Vec<Vec<Vec<u32>>>,
        entry: Option<u32>,
        rng: u64,
    ) -> Result<Graph, String> {
        let n = levels.len();
        if links.len() != n {
            return Err(format!("{} nodes but {} link lists", n, links.len()));
        }
        for (node, (level, layers)) in levels.iter().zip(&links).enumerate() {
            if *level > 16 || layers.len() != *level as usize + 1 {
                return Err(format!(
                    "node {node}: level {level} with {} layers",
                    layers.len()
                ));
            }
            for (layer, list) in layers.iter().enumerate() {
                if list.len() > Self::max_links(layer) || list.iter().any(|&x| x as usize >= n) {
                    return Err(format!("node {node}: bad links on layer {layer}"));
                }
            }
        }
        let top = match entry {
            None => 0,
            Some(e) if (e as usize) < n => levels[e as usize] as usize,
            Some(e) => return Err(format!("entry {e} is not a node")),
        };
        Ok(Graph {
            levels,
            links,
            entry,
            top,
            rng: rng | 1,
        })
    }

    /// Plans the unlinking of dead nodes (reads only, so it runs beside
    /// queries): each live node that links to a dead one loses that link
    /// and is offered the dead one's live neighbours in its place, then
    /// keeps the best by the linking heuristic. Dead nodes keep guiding
    /// walks until [`Graph::repair`] applies the plan.
    pub fn plan_repair(&self, dead: &dyn Fn(u32) -> bool, vecs: Vectors<'_>) -> Repair {
        let mut relinked = Vec::new();
        let mut unlinked = Vec::new();
        for node in 0..self.len() as u32 {
            let layers = &self.links[node as usize];
            if dead(node) {
                if layers.iter().any(|l| !l.is_empty()) {
                    unlinked.push(node);
                }
                continue;
            }
            for (layer, list) in layers.iter().enumerate() {
                if !list.iter().any(|&x| dead(x)) {
                    continue;
                }
                let mut cands: Vec<u32> = Vec::with_capacity(list.len() * 2);
                for &x in list {
                    if !dead(x) {
                        cands.push(x);
                        continue;
                    }
                    if let Some(theirs) = self.links[x as usize].get(layer) {
                        cands.extend(theirs.iter().copied().filter(|&y| y != node && !dead(y)));
                    }
                }
                cands.sort_unstable();
                cands.dedup();
                let mut near: Vec<Near> = cands
                    .into_iter()
                    .map(|x| Near(vecs.between(node, x), x))
                    .collect();
                near.sort_unstable();
                near.truncate(3 * Self::max_links(layer));
                relinked.push((
                    node,
                    layer as u8,
                    select(&near, Self::max_links(layer), vecs),
                ));
            }
        }
        let entry = match self.entry {
            Some(e) if dead(e) => {
                // The live node on the highest layer takes over.
                (0..self.len() as u32)
                    .filter(|&x| !dead(x))
                    .max_by_key(|&x| (self.levels[x as usize], Reverse(x)))
            }
            e => e,
        };
        Repair {
            relinked,
            unlinked,
            entry,
        }
    }

    /// Applies a repair planned on this graph as it still is.
    pub fn repair(&mut self, plan: Repair) -> usize {
        for (node, layer, list) in plan.relinked {
            self.links[node as usize][layer as usize] = list;
        }
        for &node in &plan.unlinked {
            for list in &mut self.links[node as usize] {
                *list = Vec::new();
            }
        }
        self.entry = plan.entry;
        self.top = plan.entry.map_or(0, |e| self.levels[e as usize] as usize);
        plan.unlinked.len()
    }

    /// The graph of the nodes `keep` marks, renumbered in order; links to
    /// the others (there are none once they are repaired away) are dropped.
    pub fn compact(&self, keep: &[bool]) -> Graph {
        let mut map = vec![u32::MAX; self.len()];
        let mut next = 0u32;
        for (node, slot) in map.iter_mut().enumerate() {
            if keep.get(node).copied().unwrap_or(false) {
                *slot = next;
                next += 1;
            }
        }
        let mut levels = Vec::with_capacity(next as usize);
        let mut links = Vec::with_capacity(next as usize);
        for node in 0..self.len() {
            if map[node] == u32::MAX {
                continue;
            }
            levels.push(self.levels[node]);
            links.push(
                self.links[node]
                    .iter()
                    .map(|l| {
                        l.iter()
                            .map(|&x| map[x as usize])
                            .filter(|&x| x != u32::MAX)
                            .collect()
                    })
                    .collect(),
            );
        }
        let entry = self.entry.and_then(|e| {
            let e = map[e as usize];
            (e != u32::MAX).then_some(e)
        });
        let top = entry.map_or(0, |e| levels[e as usize] as usize);
        Graph {
            levels,
            links,
            entry,
            top,
            rng: self.rng,
        }
    }

    /// The `ef` nearest nodes to `q` that `accept` lets through, nearest
    /// first. Nodes refused still guide the walk.
    pub fn search(
        &self,
        q: &[f32],
        ef: usize,
        vecs: Vectors<'_>,
        accept: &dyn Fn(u32) -> bool,
    ) -> Vec<Near> {
        self.search_by(&|n| vecs.to(q, n), ef, accept)
    }

    /// [`Graph::search`] ordered by `dist(node)` (e.g. the int8 codes'
    /// [`Vectors::approx`], for the caller to rank again exactly).
    pub fn search_by<D: Fn(u32) -> f32>(
        &self,
        dist: &D,
        ef: usize,
        accept: &dyn Fn(u32) -> bool,
    ) -> Vec<Near> {
        let Some(entry) = self.entry else {
            return Vec::new();
        };
        let mut eps = vec![Near(dist(entry), entry)];
        for layer in (1..=self.top).rev() {
            eps = self.search_layer(dist, &eps, 1, layer, &|_| true);
        }
        self.search_layer(dist, &eps, ef, 0, accept)
    }

    /// One layer's best-first search from `entries`, keeping the `ef`
    /// nearest accepted nodes; sorted nearest first. While fewer than `ef`
    /// are accepted the walk goes on, so a selective predicate widens it.
    fn search_layer<D: Fn(u32) -> f32>(
        &self,
        dist: &D,
        entries: &[Near],
        ef: usize,
        layer: usize,
        accept: &dyn Fn(u32) -> bool,
    ) -> Vec<Near> {
        with_visited(self.len() + 1, |visited| {
            self.walk(dist, entries, ef, layer, accept, visited)
        })
    }

    fn walk<D: Fn(u32) -> f32>(
        &self,
        dist: &D,
        entries: &[Near],
        ef: usize,
        layer: usize,
        accept: &dyn Fn(u32) -> bool,
        visited: &mut dyn FnMut(u32) -> bool,
    ) -> Vec<Near> {
        let mut candidates: BinaryHeap<Reverse<Near>> = BinaryHeap::new();
        let mut results: BinaryHeap<Near> = BinaryHeap::new();
        for &e in entries {
            if visited(e.1) {
                candidates.push(Reverse(e));
                if accept(e.1) {
                    results.push(e);
                }
            }
        }
        while results.len() > ef {
            results.pop();
        }
        let mut bound = results.peek().map_or(f32::INFINITY, |w| w.0);
        while let Some(Reverse(c)) = candidates.pop() {
            if results.len() >= ef && c.0 > bound {
                break;
            }
            let Some(links) = self.links[c.1 as usize].get(layer) else {
                continue;
            };
            for &n in links {
                if !visited(n) {
                    continue;
                }
                let d = dist(n);
                if results.len() < ef || d < bound {
                    candidates.push(Reverse(Near(d, n)));
                    if accept(n) {
                        results.push(Near(d, n));
                        if results.len() > ef {
                            results.pop();
                        }
                        bound = results.peek().map_or(f32::INFINITY, |w| w.0);
                    }
                }
            }
        }
        results.into_sorted_vec()
    }
}

/// The heuristic neighbour choice: walk candidates nearest first and keep
/// one only if it is nearer to the base than to every one kept, which
/// spreads links across clusters instead of within one.
fn select(sorted: &[Near], max: usize, vecs: Vectors<'_>) -> Vec<u32> {
    let mut kept: Vec<Near> = Vec::with_capacity(max);
    for &c in sorted {
        if kept.len() >= max {
            break;
        }
        if kept.iter().all(|k| vecs.between(c.1, k.1) > c.0) {
            kept.push(c);
        }
    }
    kept.into_iter().map(|n| n.1).collect()
}

/// A random level with the usual 1/ln(M) decay, from a xorshift64* state.
pub fn draw_level(rng: &mut u64) -> usize {
    *rng ^= *rng >> 12;
    *rng ^= *rng << 25;
    *rng ^= *rng >> 27;
    let bits = rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11;
    let u = (bits as f64 + 1.0) / (1u64 << 53) as f64;
    let level = (-u.ln() / (M as f64).ln()).floor();
    (level as usize).min(16)
}
