//! The query engine alone (no HTTP, no JavaScript), on the data of
//! `hearth-bench vectorize`: 100k x 384 clustered vectors, cosine, a `cat`
//! of ten values under a metadata index. For instruction counts:
//!
//! ```sh
//! cargo run --release -p hearth-vectorize --example engine -- build /tmp/vx
//! valgrind --tool=callgrind --toggle-collect='*engine*run_queries*' \
//!   target/release/examples/engine query /tmp/vx 200 filtered
//! target/release/examples/engine recall /tmp/vx 500
//! ```
//!
//! `build` writes the index and its graph snapshot; `query` opens it and
//! runs that many queries (`plain` or `filtered`, `{ cat: "c3" }`);
//! `recall` also computes the exact answers and prints recall@10 and
//! queries/s for both cases; `paths` compares the scan and the filtered
//! walk at shares of 10% to 50%.

use std::path::Path;
use std::time::Instant;

use hearth_core::{DataDir, ManualClock};
use hearth_vectorize::distance::dot;
use hearth_vectorize::{
    IndexConfig, IndexType, MetadataIndex, Metric, NewVector, QueryOptions, SearchPath,
    VectorIndex, WriteMode, create_index, open_index,
};
use serde_json::{Map, json};

const DIMS: usize = 384;

fn gaussian(state: &mut u64) -> f32 {
    let mut uniform = || {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        ((*state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    let (u, v) = (uniform(), uniform());
    ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
}

/// The benchmark's generator: 200 centres, each point a centre plus noise;
/// the queries follow the vectors in the same stream.
fn generate(n: usize, queries: usize) -> (Vec<f32>, Vec<f32>) {
    let mut s = 0x1234_5678_9ABC_DEF1u64;
    let centres: Vec<f32> = (0..200 * DIMS).map(|_| gaussian(&mut s)).collect();
    let point = |s: &mut u64| -> Vec<f32> {
        let c = (gaussian(s).abs() * 1e6) as usize % 200;
        (0..DIMS)
            .map(|d| centres[c * DIMS + d] + 0.6 * gaussian(s))
            .collect()
    };
    let vectors = (0..n).flat_map(|_| point(&mut s)).collect();
    let queries = (0..queries).flat_map(|_| point(&mut s)).collect();
    (vectors, queries)
}

fn open(dir: &Path) -> VectorIndex {
    open_index(
        &DataDir::new(dir),
        "bench",
        ManualClock::new(1_000).shared(),
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

fn build(dir: &Path, n: usize) {
    let data = DataDir::new(dir);
    let config = IndexConfig {
        dimensions: DIMS,
        metric: Metric::Cosine,
        description: None,
    };
    let ix = create_index(&data, "bench", &config, ManualClock::new(1_000).shared())
        .unwrap_or_else(|e| panic!("{e}"));
    ix.create_metadata_index(&MetadataIndex {
        property_name: "cat".into(),
        index_type: IndexType::String,
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let (vectors, queries) = generate(n, 1000);
    let bytes: Vec<u8> = queries.iter().flat_map(|x| x.to_le_bytes()).collect();
    std::fs::write(dir.join("queries.f32"), bytes).unwrap_or_else(|e| panic!("{e}"));
    let t = Instant::now();
    for (b, chunk) in vectors.chunks(1000 * DIMS).enumerate() {
        let batch: Vec<NewVector> = chunk
            .chunks(DIMS)
            .enumerate()
            .map(|(i, v)| {
                let id = b * 1000 + i;
                let mut m = Map::new();
                m.insert("cat".into(), json!(format!("c{}", id % 10)));
                NewVector {
                    id: format!("v{id}"),
                    values: v.iter().map(|&x| f64::from(x)).collect(),
                    namespace: None,
                    metadata: Some(m),
                }
            })
            .collect();
        ix.write_vectors(WriteMode::Upsert, &batch, 1000)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    eprintln!("written in {:.1} s", t.elapsed().as_secs_f64());
    let mut rng = 0x2545_F491_4F6C_DD1D;
    ix.index_pending(&mut rng, &|| false);
    eprintln!("graph in {:.1} s", t.elapsed().as_secs_f64());
    ix.write_snapshot().unwrap_or_else(|e| panic!("{e}"));
}

fn options(filtered: bool) -> QueryOptions {
    QueryOptions {
        top_k: 10,
        filter: filtered.then(|| json!({ "cat": "c3" })),
        ..QueryOptions::default()
    }
}

/// For shares of 10% to 50%, queries/s and recall@10 of the scan and the
/// filtered walk, alternated three times so load changes hit both alike.
fn paths(dir: &Path, n: usize, total: usize) {
    let (vectors, queries) = generate(total, n);
    let units: Vec<Vec<f32>> = vectors.chunks(DIMS).map(unit).collect();
    let ix = open(dir);
    let as_f64: Vec<Vec<f64>> = queries
        .chunks(DIMS)
        .map(|q| q.iter().map(|&x| f64::from(x)).collect())
        .collect();
    for m in [1usize, 2, 3, 5] {
        let cats: Vec<String> = (0..m).map(|c| format!("c{c}")).collect();
        let opts = QueryOptions {
            top_k: 10,
            filter: Some(json!({ "cat": { "$in": cats } })),
            ..QueryOptions::default()
        };
        let want: Vec<Vec<u32>> = queries
            .chunks(DIMS)
            .map(|q| exact_where(&units, q, |i| i % 10 < m))
            .collect();
        let mut rates = [Vec::new(), Vec::new()];
        let mut recalls = [0.0; 2];
        for _ in 0..3 {
            for (p, path) in [SearchPath::Exact, SearchPath::Graph]
                .into_iter()
                .enumerate()
            {
                ix.set_search_path(path);
                let t = Instant::now();
                let got: Vec<Vec<u32>> = as_f64
                    .iter()
                    .map(|q| {
                        ix.query(q, &opts)
                            .unwrap_or_else(|e| panic!("{e}"))
                            .iter()
                            .filter_map(|m| m.id.strip_prefix('v')?.parse().ok())
                            .collect()
                    })
                    .collect();
                rates[p].push(n as f64 / t.elapsed().as_secs_f64());
                let hits: usize = got
                    .iter()
                    .zip(&want)
                    .map(|(g, w)| g.iter().filter(|id| w.contains(id)).count())
                    .sum();
                recalls[p] = hits as f64 / (10 * n) as f64;
            }
        }
        let best = |r: &Vec<f64>| r.iter().copied().fold(0.0, f64::max);
        println!(
            "{}% pass: scan {:.0}/s recall {:.3}; walk {:.0}/s recall {:.3}",
            m * 10,
            best(&rates[0]),
            recalls[0],
            best(&rates[1]),
            recalls[1]
        );
    }
    ix.set_search_path(SearchPath::Auto);
}

/// The measured part: one query per vector of `queries`; the ids found.
#[inline(never)]
fn run_queries(ix: &VectorIndex, queries: &[Vec<f64>], filtered: bool) -> Vec<Vec<u32>> {
    let opts = options(filtered);
    queries
        .iter()
        .map(|q| {
            ix.query(q, &opts)
                .unwrap_or_else(|e| panic!("{e}"))
                .iter()
                .filter_map(|m| m.id.strip_prefix('v')?.parse().ok())
                .collect()
        })
        .collect()
}

fn unit(v: &[f32]) -> Vec<f32> {
    let n = dot(v, v).sqrt().max(f32::MIN_POSITIVE);
    v.iter().map(|x| x / n).collect()
}

/// The exact 10 nearest by cosine of the (normalised) vectors `keep` lets
/// through.
fn exact_where(units: &[Vec<f32>], q: &[f32], keep: impl Fn(usize) -> bool) -> Vec<u32> {
    let q = unit(q);
    let mut all: Vec<(f32, u32)> = units
        .iter()
        .enumerate()
        .filter(|(i, _)| keep(*i))
        .map(|(i, v)| (-dot(&q, v), i as u32))
        .collect();
    all.select_nth_unstable_by(9, |a, b| a.0.total_cmp(&b.0));
    all.truncate(10);
    all.into_iter().map(|(_, i)| i).collect()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).map(String::as_str);
    let usage = "usage: engine build <dir> [vectors] | query <dir> <n> plain|filtered (n <= 1000) | recall|paths <dir> <n> [vectors]";
    let dir = Path::new(arg(1).unwrap_or_else(|| panic!("{usage}")));
    let num = |i: usize, default: usize| arg(i).map_or(default, |s| s.parse().expect(usage));
    match arg(0) {
        Some("build") => build(dir, num(2, 100_000)),
        Some("query") => {
            let n = num(2, 200);
            let bytes = std::fs::read(dir.join("queries.f32")).unwrap_or_else(|e| panic!("{e}"));
            let queries: Vec<Vec<f64>> = bytes
                .chunks_exact(4 * DIMS)
                .take(n)
                .map(|q| {
                    q.chunks_exact(4)
                        .map(|b| f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])))
                        .collect()
                })
                .collect();
            let ix = open(dir);
            let t = Instant::now();
            let found = run_queries(&ix, &queries, arg(3) == Some("filtered"));
            let s = t.elapsed().as_secs_f64();
            println!(
                "{} queries in {s:.3} s: {:.0}/s",
                found.len(),
                found.len() as f64 / s
            );
        }
        Some("paths") => paths(dir, num(2, 200), num(3, 100_000)),
        Some("recall") => {
            let n = num(2, 500);
            let (vectors, queries) = generate(num(3, 100_000), n);
            let units: Vec<Vec<f32>> = vectors.chunks(DIMS).map(unit).collect();
            let ix = open(dir);
            let as_f64: Vec<Vec<f64>> = queries
                .chunks(DIMS)
                .map(|q| q.iter().map(|&x| f64::from(x)).collect())
                .collect();
            for filtered in [false, true] {
                let t = Instant::now();
                let found = run_queries(&ix, &as_f64, filtered);
                let s = t.elapsed().as_secs_f64();
                let hits: usize = found
                    .iter()
                    .zip(queries.chunks(DIMS))
                    .map(|(got, q)| {
                        let want = exact_where(&units, q, |i| !filtered || i % 10 == 3);
                        got.iter().filter(|id| want.contains(id)).count()
                    })
                    .sum();
                println!(
                    "{}: recall@10 {:.3}, {:.0} queries/s on one thread",
                    if filtered { "filtered" } else { "plain" },
                    hits as f64 / (10 * n) as f64,
                    n as f64 / s
                );
            }
        }
        _ => panic!("{usage}"),
    }
}
