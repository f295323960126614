//! The Vectorize contract: writes, reads, queries with namespaces and
//! metadata filters, Cloudflare's limits and messages, reopening, and the
//! graph's recall against exact search.

use std::sync::Arc;

use hearth_core::{DataDir, ManualClock};
use hearth_vectorize::{
    IndexConfig, IndexType, MetadataIndex, Metric, NewVector, QueryOptions, ReturnMetadata,
    SearchPath, VectorIndex, WriteMode, create_index, delete_index, list_indexes, open_index,
};
use serde_json::{Map, Value, json};

fn setup(dims: usize, metric: Metric) -> (tempfile::TempDir, DataDir, VectorIndex) {
    let dir = tempfile::tempdir().unwrap();
    let data = DataDir::new(dir.path());
    let clock = ManualClock::new(1_000).shared();
    let config = IndexConfig {
        dimensions: dims,
        metric,
        description: None,
    };
    let ix = create_index(&data, "docs", &config, clock).unwrap();
    (dir, data, ix)
}

fn meta(v: Value) -> Option<Map<String, Value>> {
    v.as_object().cloned()
}

fn vector(id: &str, values: &[f64], metadata: Value) -> NewVector {
    NewVector {
        id: id.into(),
        values: values.to_vec(),
        namespace: None,
        metadata: meta(metadata),
    }
}

fn upsert(ix: &VectorIndex, vs: &[NewVector]) {
    ix.write_vectors(WriteMode::Upsert, vs, 1000).unwrap();
}

fn ids(matches: &[hearth_vectorize::Match]) -> Vec<&str> {
    matches.iter().map(|m| m.id.as_str()).collect()
}

#[test]
fn cosine_scores_rank_and_values_read_back_as_written() {
    let (_d, _data, ix) = setup(3, Metric::Cosine);
    upsert(
        &ix,
        &[
            vector("a", &[1.0, 0.0, 0.0], Value::Null),
            vector("b", &[0.0, 2.0, 0.0], Value::Null),
            vector("c", &[3.0, 3.0, 0.0], Value::Null),
        ],
    );
    let opts = QueryOptions {
        top_k: 3,
        return_values: true,
        ..QueryOptions::default()
    };
    let m = ix.query(&[1.0, 0.1, 0.0], &opts).unwrap();
    assert_eq!(ids(&m), ["a", "c", "b"]);
    assert!((m[0].score - 0.995_037).abs() < 1e-4, "{}", m[0].score);
    assert_eq!(m[1].values.as_deref(), Some(&[3.0f32, 3.0, 0.0][..]));
}

#[test]
fn euclidean_and_dot_product_scores() {
    let (_d, _data, ix) = setup(2, Metric::Euclidean);
    upsert(
        &ix,
        &[
            vector("a", &[3.0, 4.0], Value::Null),
            vector("b", &[1.0, 1.0], Value::Null),
        ],
    );
    let m = ix.query(&[0.0, 0.0], &QueryOptions::default()).unwrap();
    assert_eq!(ids(&m), ["b", "a"]);
    assert!((m[1].score - 5.0).abs() < 1e-6);

    let (_d, _data, ix) = setup(2, Metric::DotProduct);
    upsert(
        &ix,
        &[
            vector("a", &[3.0, 4.0], Value::Null),
            vector("b", &[1.0, 1.0], Value::Null),
        ],
    );
    let m = ix.query(&[1.0, 1.0], &QueryOptions::default()).unwrap();
    assert_eq!(ids(&m), ["a", "b"]);
    assert!((m[0].score - 7.0).abs() < 1e-6);
}

#[test]
fn insert_keeps_existing_ids_and_upsert_replaces_them() {
    let (_d, _data, ix) = setup(2, Metric::Cosine);
    let first = ix
        .write_vectors(
            WriteMode::Insert,
            &[vector("a", &[1.0, 0.0], json!({"v": 1}))],
            1000,
        )
        .unwrap();
    assert_eq!(first.ids, ["a"]);
    let again = ix
        .write_vectors(
            WriteMode::Insert,
            &[
                vector("a", &[0.0, 1.0], json!({"v": 2})),
                vector("b", &[0.0, 1.0], Value::Null),
            ],
            1000,
        )
        .unwrap();
    assert_eq!(again.ids, ["b"]);
    assert_ne!(first.mutation_id, again.mutation_id);
    let got = ix.get_by_ids(&["a".into()]).unwrap();
    assert_eq!(got[0].values, [1.0, 0.0]);
    upsert(&ix, &[vector("a", &[0.0, 1.0], json!({"v": 3}))]);
    let got = ix
        .get_by_ids(&["a".into(), "missing".into(), "b".into()])
        .unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].values, [0.0, 1.0]);
    assert_eq!(got[0].metadata, meta(json!({"v": 3})));
    assert_eq!(ix.info().vector_count, 2);
}

#[test]
fn deletes_hide_vectors_and_report_what_existed() {
    let (_d, _data, ix) = setup(2, Metric::Cosine);
    upsert(
        &ix,
        &[
            vector("a", &[1.0, 0.0], Value::Null),
            vector("b", &[0.9, 0.1], Value::Null),
        ],
    );
    let m = ix.delete_by_ids(&["a".into(), "zzz".into()]).unwrap();
    assert_eq!(m.ids, ["a"]);
    let found = ix.query(&[1.0, 0.0], &QueryOptions::default()).unwrap();
    assert_eq!(ids(&found), ["b"]);
    assert!(ix.get_by_ids(&["a".into()]).unwrap().is_empty());
}

#[test]
fn namespaces_partition_queries() {
    let (_d, _data, ix) = setup(2, Metric::Cosine);
    let mut a = vector("a", &[1.0, 0.0], Value::Null);
    a.namespace = Some("tenant-1".into());
    let mut b = vector("b", &[1.0, 0.01], Value::Null);
    b.namespace = Some("tenant-2".into());
    upsert(&ix, &[a, b]);
    let q = |ns: Option<&str>| {
        let opts = QueryOptions {
            namespace: ns.map(String::from),
            ..QueryOptions::default()
        };
        ix.query(&[1.0, 0.0], &opts).unwrap()
    };
    assert_eq!(ids(&q(Some("tenant-2"))), ["b"]);
    assert_eq!(
        q(Some("tenant-2"))[0].namespace.as_deref(),
        Some("tenant-2")
    );
    assert_eq!(ids(&q(None)), ["a", "b"]);
    assert!(q(Some("nobody")).is_empty());
}

#[test]
fn filters_apply_before_top_k_on_indexed_properties_only() {
    let (_d, _data, ix) = setup(2, Metric::Cosine);
    ix.create_metadata_index(&MetadataIndex {
        property_name: "genre".into(),
        index_type: IndexType::String,
    })
    .unwrap();
    ix.create_metadata_index(&MetadataIndex {
        property_name: "year".into(),
        index_type: IndexType::Number,
    })
    .unwrap();
    // Many near vectors of another genre, one far one of the wanted genre.
    let mut vs: Vec<NewVector> = (0..50)
        .map(|i| {
            vector(
                &format!("n{i}"),
                &[1.0, 0.001 * i as f64],
                json!({"genre": "news", "year": 2000 + i}),
            )
        })
        .collect();
    vs.push(vector(
        "far",
        &[0.0, 1.0],
        json!({"genre": "jazz", "year": 1960, "mood": "calm"}),
    ));
    upsert(&ix, &vs);
    let q = |filter: Value| {
        let opts = QueryOptions {
            top_k: 3,
            filter: Some(filter),
            return_metadata: ReturnMetadata::Indexed,
            ..QueryOptions::default()
        };
        ix.query(&[1.0, 0.0], &opts).unwrap()
    };
    let m = q(json!({"genre": "jazz"}));
    assert_eq!(ids(&m), ["far"]);
    assert_eq!(
        m[0].metadata,
        Some(json!({"genre": "jazz", "year": 1960.0}))
    );
    assert_eq!(ids(&q(json!({"genre": {"$eq": "jazz"}}))), ["far"]);
    assert_eq!(q(json!({"genre": {"$ne": "jazz"}})).len(), 3);
    assert!(!ids(&q(json!({"genre": {"$ne": "jazz"}}))).contains(&"far"));
    assert_eq!(
        ids(&q(json!({"genre": {"$in": ["jazz", "rock"]}}))),
        ["far"]
    );
    assert_eq!(q(json!({"genre": {"$nin": ["jazz"]}})).len(), 3);
    assert_eq!(ids(&q(json!({"year": {"$lt": 2000}}))), ["far"]);
    assert_eq!(ids(&q(json!({"year": {"$gte": 2049}}))), ["n49"]);
    assert_eq!(
        ids(&q(json!({"year": {"$gt": 2047, "$lte": 2048}}))),
        ["n48"]
    );
    // `mood` has no metadata index: nothing is filterable on it.
    assert!(q(json!({"mood": "calm"})).is_empty());
    let err = ix
        .query(
            &[1.0, 0.0],
            &QueryOptions {
                filter: Some(json!({"genre": {"$regex": "j"}})),
                ..QueryOptions::default()
            },
        )
        .unwrap_err();
    assert!(
        err.to_string().contains("unsupported operator $regex"),
        "{err}"
    );
}

#[test]
fn vectors_written_before_their_metadata_index_are_not_filterable() {
    let (_d, _data, ix) = setup(2, Metric::Cosine);
    upsert(&ix, &[vector("old", &[1.0, 0.0], json!({"genre": "jazz"}))]);
    ix.create_metadata_index(&MetadataIndex {
        property_name: "genre".into(),
        index_type: IndexType::String,
    })
    .unwrap();
    upsert(&ix, &[vector("new", &[0.0, 1.0], json!({"genre": "jazz"}))]);
    let opts = QueryOptions {
        filter: Some(json!({"genre": "jazz"})),
        ..QueryOptions::default()
    };
    assert_eq!(ids(&ix.query(&[1.0, 0.0], &opts).unwrap()), ["new"]);
}

#[test]
fn limits_and_error_texts() {
    let (_d, _data, ix) = setup(3, Metric::Cosine);
    let err = ix.query(&[1.0], &QueryOptions::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "VECTOR_QUERY_ERROR (code = 40006): invalid query vector, expected 3 dimensions, and got 1 dimensions"
    );
    let heavy = QueryOptions {
        top_k: 21,
        return_values: true,
        ..QueryOptions::default()
    };
    let err = ix.query(&[1.0, 0.0, 0.0], &heavy).unwrap_err();
    assert_eq!(
        err.to_string(),
        "VECTOR_QUERY_ERROR (code = 40025): with returnValues=true or returnMetadata=all, max top K is 20, but got 21"
    );
    let light = QueryOptions {
        top_k: 100,
        ..QueryOptions::default()
    };
    assert!(ix.query(&[1.0, 0.0, 0.0], &light).is_ok());
    let over = QueryOptions {
        top_k: 101,
        ..QueryOptions::default()
    };
    assert!(
        ix.query(&[1.0, 0.0, 0.0], &over)
            .unwrap_err()
            .to_string()
            .contains("max top K is 100")
    );

    let err = ix
        .write_vectors(WriteMode::Upsert, &[vector("a", &[1.0], Value::Null)], 1000)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "VECTOR_UPSERT_ERROR (code = 40006): invalid vector for id=\"a\", expected 3 dimensions, and got 1 dimensions"
    );
    let long = "x".repeat(65);
    let err = ix
        .write_vectors(
            WriteMode::Insert,
            &[vector(&long, &[1.0, 0.0, 0.0], Value::Null)],
            1000,
        )
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("65 bytes, over the limit of 64 bytes"),
        "{err}"
    );
    let big = json!({ "text": "y".repeat(10 * 1024) });
    let err = ix
        .write_vectors(
            WriteMode::Insert,
            &[vector("a", &[1.0, 0.0, 0.0], big)],
            1000,
        )
        .unwrap_err();
    assert!(
        err.to_string().contains("over the limit of 10240 bytes"),
        "{err}"
    );
    let err = ix
        .write_vectors(
            WriteMode::Insert,
            &[vector("a", &[1.0, 0.0, 0.0], json!({"a.b": 1}))],
            1000,
        )
        .unwrap_err();
    assert!(
        err.to_string().contains("invalid metadata key \"a.b\""),
        "{err}"
    );
    let many: Vec<NewVector> = (0..1001)
        .map(|i| vector(&i.to_string(), &[1.0, 0.0, 0.0], Value::Null))
        .collect();
    let err = ix
        .write_vectors(WriteMode::Upsert, &many, 1000)
        .unwrap_err();
    assert!(
        err.to_string().contains("1001 given, the limit is 1000"),
        "{err}"
    );
    // Nothing of a refused batch was written.
    assert_eq!(ix.info().vector_count, 0);

    for i in 0..10 {
        ix.create_metadata_index(&MetadataIndex {
            property_name: format!("p{i}"),
            index_type: IndexType::Boolean,
        })
        .unwrap();
    }
    let err = ix
        .create_metadata_index(&MetadataIndex {
            property_name: "p10".into(),
            index_type: IndexType::Boolean,
        })
        .unwrap_err();
    assert_eq!(err.to_string(), "an index has at most 10 metadata indexes");
}

#[test]
fn indexes_are_created_listed_reopened_and_deleted() {
    let (_d, data, ix) = setup(2, Metric::Euclidean);
    upsert(&ix, &[vector("a", &[1.0, 2.0], json!({"k": "v"}))]);
    drop(ix);
    let clock = ManualClock::new(0).shared();
    let err = create_index(
        &data,
        "docs",
        &IndexConfig {
            dimensions: 2,
            metric: Metric::Cosine,
            description: None,
        },
        clock.clone(),
    )
    .unwrap_err();
    assert_eq!(err.to_string(), "Vectorize index \"docs\" already exists");
    let err = create_index(
        &data,
        "Bad_Name",
        &IndexConfig {
            dimensions: 2,
            metric: Metric::Cosine,
            description: None,
        },
        clock.clone(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("invalid index name"), "{err}");
    let listed = list_indexes(&data, clock.clone()).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].config.metric, Metric::Euclidean);
    let ix = open_index(&data, "docs", clock.clone()).unwrap();
    assert_eq!(ix.get_by_ids(&["a".into()]).unwrap()[0].values, [1.0, 2.0]);
    drop(ix);
    delete_index(&data, "docs").unwrap();
    let err = open_index(&data, "docs", clock).unwrap_err();
    assert!(
        err.to_string().contains("hearth vectorize create docs"),
        "{err}"
    );
}

#[test]
fn a_second_connection_sees_the_others_writes() {
    let (_d, data, ix) = setup(2, Metric::Cosine);
    let other = open_index(&data, "docs", ManualClock::new(0).shared()).unwrap();
    upsert(&other, &[vector("x", &[1.0, 0.0], Value::Null)]);
    upsert(&ix, &[vector("y", &[0.0, 1.0], Value::Null)]);
    other.delete_by_ids(&["y".into()]).unwrap();
    let found = ix.query(&[1.0, 1.0], &QueryOptions::default()).unwrap();
    assert_eq!(ids(&found), ["x"]);
    assert_eq!(ix.info().vector_count, 1);
}

#[test]
fn listing_pages_through_ids_in_order() {
    let (_d, _data, ix) = setup(1, Metric::Euclidean);
    let vs: Vec<NewVector> = (0..5)
        .map(|i| vector(&format!("id{i}"), &[i as f64], Value::Null))
        .collect();
    upsert(&ix, &vs);
    let page = ix.list(2, None).unwrap();
    assert_eq!(page.ids, ["id0", "id1"]);
    assert_eq!(page.total_count, 5);
    let page = ix.list(2, page.next_cursor.as_deref()).unwrap();
    assert_eq!(page.ids, ["id2", "id3"]);
    let page = ix.list(2, page.next_cursor.as_deref()).unwrap();
    assert_eq!(page.ids, ["id4"]);
    assert_eq!(page.next_cursor, None);
}

/// Clustered points: `clusters` centres, each point near one.
fn clustered(n: usize, dims: usize, clusters: usize, seed: u64) -> Vec<Vec<f64>> {
    let mut s = seed;
    let mut rnd = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 11) as f64 / (1u64 << 53) as f64 - 0.5
    };
    let centres: Vec<Vec<f64>> = (0..clusters)
        .map(|_| (0..dims).map(|_| rnd()).collect())
        .collect();
    (0..n)
        .map(|i| {
            centres[i % clusters]
                .iter()
                .map(|c| c + 0.3 * rnd())
                .collect()
        })
        .collect()
}

#[test]
fn the_graph_finds_what_exact_search_finds() {
    let (_d, data, ix) = setup(16, Metric::Cosine);
    let points = clustered(6000, 16, 20, 7);
    for (b, chunk) in points.chunks(1000).enumerate() {
        let vs: Vec<NewVector> = chunk
            .iter()
            .enumerate()
            .map(|(i, p)| vector(&format!("v{}", b * 1000 + i), p, json!({"i": b * 1000 + i})))
            .collect();
        upsert(&ix, &vs);
    }
    let queries = clustered(50, 16, 20, 99);
    // Before indexing every query is exact: that is the ground truth.
    let truth: Vec<Vec<String>> = queries
        .iter()
        .map(|q| {
            let opts = QueryOptions {
                top_k: 10,
                ..QueryOptions::default()
            };
            ix.query(q, &opts)
                .unwrap()
                .into_iter()
                .map(|m| m.id)
                .collect()
        })
        .collect();
    let mut rng = 42u64;
    assert_eq!(ix.index_pending(&mut rng, &|| false), 6000);
    assert_eq!(ix.pending(), 0);
    let mut hits = 0;
    for (q, want) in queries.iter().zip(&truth) {
        let opts = QueryOptions {
            top_k: 10,
            ..QueryOptions::default()
        };
        let got: Vec<String> = ix
            .query(q, &opts)
            .unwrap()
            .into_iter()
            .map(|m| m.id)
            .collect();
        hits += got.iter().filter(|id| want.contains(id)).count();
    }
    let recall = hits as f64 / (10 * queries.len()) as f64;
    assert!(recall >= 0.95, "recall@10 {recall}");
    // A vector written after indexing is found before the indexer runs.
    upsert(&ix, &[vector("fresh", &queries[0], Value::Null)]);
    let opts = QueryOptions {
        top_k: 1,
        ..QueryOptions::default()
    };
    assert_eq!(ids(&ix.query(&queries[0], &opts).unwrap()), ["fresh"]);
    // Reopened, every vector is still there.
    drop(ix);
    let ix = Arc::new(open_index(&data, "docs", ManualClock::new(0).shared()).unwrap());
    assert_eq!(ix.info().vector_count, 6001);
}

/// `n` clustered vectors `v<i>` with `cat` = `c<i % 10>`, indexed on
/// `cat`, written but not yet linked into the graph.
fn categorised(ix: &VectorIndex, n: usize, dims: usize) -> Vec<Vec<f64>> {
    ix.create_metadata_index(&MetadataIndex {
        property_name: "cat".into(),
        index_type: IndexType::String,
    })
    .unwrap();
    let points = clustered(n, dims, 20, 7);
    for (b, chunk) in points.chunks(1000).enumerate() {
        let vs: Vec<NewVector> = chunk
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let i = b * 1000 + i;
                vector(
                    &format!("v{i}"),
                    p,
                    json!({ "cat": format!("c{}", i % 10) }),
                )
            })
            .collect();
        upsert(ix, &vs);
    }
    points
}

fn top_ids(ix: &VectorIndex, q: &[f64], filter: Option<Value>) -> Vec<String> {
    let opts = QueryOptions {
        top_k: 10,
        filter,
        ..QueryOptions::default()
    };
    ix.query(q, &opts)
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect()
}

fn recall(got: &[Vec<String>], want: &[Vec<String>]) -> f64 {
    let hits: usize = got
        .iter()
        .zip(want)
        .map(|(g, w)| g.iter().filter(|id| w.contains(id)).count())
        .sum();
    hits as f64 / want.iter().map(Vec::len).sum::<usize>().max(1) as f64
}

#[test]
fn filtered_graph_walks_find_what_exact_search_over_the_posting_list_finds() {
    let (_d, _data, ix) = setup(16, Metric::Cosine);
    categorised(&ix, 6000, 16);
    let mut rng = 42u64;
    assert_eq!(ix.index_pending(&mut rng, &|| false), 6000);
    let queries = clustered(40, 16, 20, 99);
    for filter in [
        json!({ "cat": "c3" }),
        json!({ "cat": { "$in": ["c1", "c2"] } }),
        json!({ "cat": { "$ne": "c3" } }),
        json!({ "cat": { "$gte": "c7" } }),
    ] {
        ix.set_search_path(SearchPath::Exact);
        let want: Vec<Vec<String>> = queries
            .iter()
            .map(|q| top_ids(&ix, q, Some(filter.clone())))
            .collect();
        for w in &want {
            assert_eq!(w.len(), 10, "{filter}");
        }
        ix.set_search_path(SearchPath::Graph);
        let got: Vec<Vec<String>> = queries
            .iter()
            .map(|q| top_ids(&ix, q, Some(filter.clone())))
            .collect();
        let r = recall(&got, &want);
        assert!(r >= 0.95, "recall@10 {r} for {filter}");
        // Everything the walk returns passes the filter.
        let opts = QueryOptions {
            top_k: 10,
            filter: Some(filter.clone()),
            return_metadata: ReturnMetadata::Indexed,
            ..QueryOptions::default()
        };
        let parsed = hearth_vectorize::Filter::parse(
            &filter,
            &[MetadataIndex {
                property_name: "cat".into(),
                index_type: IndexType::String,
            }],
        )
        .unwrap();
        for m in ix.query(&queries[0], &opts).unwrap() {
            let cat = m.metadata.unwrap()["cat"].as_str().unwrap().to_owned();
            let values = vec![(
                Box::<str>::from("cat"),
                hearth_vectorize::Indexed::Str(cat.as_str().into()),
            )];
            assert!(parsed.matches(&values), "{cat} for {filter}");
        }
    }
}

#[test]
fn posting_lists_follow_upserts_and_deletes() {
    let (_d, _data, ix) = setup(3, Metric::Cosine);
    ix.create_metadata_index(&MetadataIndex {
        property_name: "cat".into(),
        index_type: IndexType::String,
    })
    .unwrap();
    ix.create_metadata_index(&MetadataIndex {
        property_name: "n".into(),
        index_type: IndexType::Number,
    })
    .unwrap();
    upsert(
        &ix,
        &[
            vector("a", &[1.0, 0.0, 0.0], json!({ "cat": "x", "n": 1 })),
            vector("b", &[0.9, 0.1, 0.0], json!({ "cat": "x", "n": 2.0 })),
            vector("c", &[0.0, 1.0, 0.0], json!({ "cat": "y", "n": -0.0 })),
        ],
    );
    let q = [1.0, 0.0, 0.0];
    let by = |f: Value| top_ids(&ix, &q, Some(f));
    assert_eq!(by(json!({ "cat": "x" })), ["a", "b"]);
    assert_eq!(by(json!({ "n": 2 })), ["b"]);
    assert_eq!(by(json!({ "n": 0 })), ["c"]);
    assert_eq!(
        by(json!({ "cat": { "$in": ["y", "x", 3] } })),
        ["a", "b", "c"]
    );
    assert_eq!(by(json!({ "cat": "x", "n": 1 })), ["a"]);
    // A replaced vector moves to its new value's list.
    upsert(&ix, &[vector("a", &[1.0, 0.0, 0.0], json!({ "cat": "y" }))]);
    assert_eq!(by(json!({ "cat": "x" })), ["b"]);
    assert_eq!(by(json!({ "cat": "y" })), ["a", "c"]);
    assert_eq!(by(json!({ "n": 1 })), Vec::<String>::new());
    ix.delete_by_ids(&["c".into()]).unwrap();
    assert_eq!(by(json!({ "cat": "y" })), ["a"]);
    // Namespaces have lists too.
    let mut v = vector("d", &[1.0, 0.0, 0.0], json!({ "cat": "y" }));
    v.namespace = Some("ns".into());
    upsert(&ix, &[v]);
    let opts = QueryOptions {
        top_k: 10,
        namespace: Some("ns".into()),
        filter: Some(json!({ "cat": "y" })),
        ..QueryOptions::default()
    };
    assert_eq!(ids(&ix.query(&q, &opts).unwrap()), ["d"]);
    ix.delete_by_ids(&["d".into()]).unwrap();
    assert!(ix.query(&q, &opts).unwrap().is_empty());
}

#[test]
fn deleted_vectors_are_unlinked_from_the_graph_while_it_serves() {
    let (_d, _data, ix) = setup(16, Metric::Cosine);
    categorised(&ix, 6000, 16);
    let mut rng = 42u64;
    ix.index_pending(&mut rng, &|| false);
    // Every third vector goes, the entry node among them.
    let gone: Vec<String> = (0..6000).step_by(3).map(|i| format!("v{i}")).collect();
    for chunk in gone.chunks(1000) {
        ix.delete_by_ids(chunk).unwrap();
    }
    assert!(ix.dead_in_graph() > 0);
    let queries = clustered(40, 16, 20, 99);
    // Tombstones are skipped before the repair...
    let before: Vec<Vec<String>> = queries.iter().map(|q| top_ids(&ix, q, None)).collect();
    assert!(ix.repair_graph());
    assert_eq!(ix.dead_in_graph(), 0);
    assert!(!ix.repair_graph());
    // ...and the repaired graph still finds what exact search finds.
    let after: Vec<Vec<String>> = queries.iter().map(|q| top_ids(&ix, q, None)).collect();
    ix.set_search_path(SearchPath::Exact);
    let want: Vec<Vec<String>> = queries
        .iter()
        .map(|q| top_ids(&ix, q, Some(json!({ "cat": { "$ne": "none" } }))))
        .collect();
    for got in before.iter().chain(&after) {
        assert!(got.iter().all(|id| !gone.contains(id)), "{got:?}");
    }
    assert!(recall(&before, &want) >= 0.95, "{}", recall(&before, &want));
    assert!(recall(&after, &want) >= 0.95, "{}", recall(&after, &want));
    // New vectors link into the repaired graph.
    upsert(&ix, &[vector("fresh", &queries[0], json!({}))]);
    ix.index_pending(&mut rng, &|| false);
    assert_eq!(top_ids(&ix, &queries[0], None)[0], "fresh");
}

fn snapshot_nodes(data: &DataDir) -> Option<i64> {
    let conn = rusqlite::Connection::open(hearth_vectorize::index_path(data, "docs")).unwrap();
    conn.query_row("SELECT nodes FROM graph_snapshot", [], |r| r.get(0))
        .ok()
}

#[test]
fn the_graph_snapshot_restores_the_graph_and_what_changed_after_it_is_caught_up() {
    let (_d, data, ix) = setup(16, Metric::Cosine);
    let points = categorised(&ix, 3000, 16);
    let mut rng = 42u64;
    ix.index_pending(&mut rng, &|| false);
    assert!(ix.write_snapshot().unwrap());
    assert!(!ix.write_snapshot().unwrap(), "nothing changed since");
    assert_eq!(snapshot_nodes(&data), Some(3000));
    // After the snapshot: new vectors, replaced ones, deleted ones; then
    // the process ends without writing anything more (as kill -9 would).
    let extra = clustered(20, 16, 20, 5);
    let fresh: Vec<NewVector> = extra
        .iter()
        .enumerate()
        .map(|(i, p)| vector(&format!("new{i}"), p, json!({ "cat": "c3" })))
        .collect();
    upsert(&ix, &fresh);
    let moved: Vec<NewVector> = (0..10)
        .map(|i| vector(&format!("v{}", i * 7), &extra[i], json!({ "cat": "moved" })))
        .collect();
    upsert(&ix, &moved);
    let gone: Vec<String> = (1000..1050).map(|i| format!("v{i}")).collect();
    ix.delete_by_ids(&gone).unwrap();
    drop(ix);

    let ix = open_index(&data, "docs", ManualClock::new(0).shared()).unwrap();
    // Only what changed after the snapshot waits for the indexer; the
    // nodes of replaced and deleted vectors were repaired away.
    assert_eq!(ix.pending(), 30);
    assert_eq!(ix.dead_in_graph(), 0);
    assert_eq!(ix.info().vector_count, 3000 + 20 - 50);
    for (i, values) in extra.iter().enumerate().take(10) {
        let got = top_ids(&ix, values, Some(json!({ "cat": "moved" })));
        assert_eq!(got[0], format!("v{}", i * 7));
    }
    assert_eq!(ix.get_by_ids(&gone).unwrap(), vec![]);
    ix.index_pending(&mut rng, &|| false);
    let queries = clustered(40, 16, 20, 99);
    let got: Vec<Vec<String>> = queries.iter().map(|q| top_ids(&ix, q, None)).collect();
    ix.set_search_path(SearchPath::Exact);
    let want: Vec<Vec<String>> = queries
        .iter()
        .map(|q| top_ids(&ix, q, Some(json!({ "cat": { "$ne": "none" } }))))
        .collect();
    assert!(recall(&got, &want) >= 0.95, "{}", recall(&got, &want));
    for (i, p) in points.iter().enumerate().skip(2000).take(5) {
        assert_eq!(top_ids(&ix, p, None)[0], format!("v{i}"));
    }
}

#[test]
fn a_corrupt_or_missing_snapshot_falls_back_to_a_rebuild() {
    let (_d, data, ix) = setup(16, Metric::Cosine);
    let points = categorised(&ix, 2000, 16);
    let mut rng = 42u64;
    ix.index_pending(&mut rng, &|| false);
    ix.write_snapshot().unwrap();
    drop(ix);
    let path = hearth_vectorize::index_path(&data, "docs");
    let reopen = || open_index(&data, "docs", ManualClock::new(0).shared()).unwrap();
    assert_eq!(reopen().pending(), 0, "a sound snapshot is used");
    // One byte changed in the middle of the blob.
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        let mut blob: Vec<u8> = conn
            .query_row("SELECT data FROM graph_snapshot", [], |r| r.get(0))
            .unwrap();
        let mid = blob.len() / 2;
        blob[mid] ^= 0x40;
        conn.execute("UPDATE graph_snapshot SET data = ?1", [blob])
            .unwrap();
    }
    let ix = reopen();
    assert_eq!(ix.pending(), 2000, "rebuilt");
    assert_eq!(top_ids(&ix, &points[5], None)[0], "v5");
    ix.index_pending(&mut rng, &|| false);
    ix.write_snapshot().unwrap();
    drop(ix);
    // A snapshot whose checksum holds but which does not parse.
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        let blob = b"HVG1 not a graph".to_vec();
        let sum = hearth_vectorize::snapshot::checksum(&blob) as i64;
        conn.execute(
            "UPDATE graph_snapshot SET data = ?1, checksum = ?2",
            rusqlite::params![blob, sum],
        )
        .unwrap();
    }
    assert_eq!(reopen().pending(), 2000);
    // None at all.
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute("DELETE FROM graph_snapshot", []).unwrap();
    }
    let ix = reopen();
    assert_eq!(ix.pending(), 2000);
    assert_eq!(ix.info().vector_count, 2000);
    assert_eq!(
        top_ids(&ix, &points[1999], Some(json!({ "cat": "c9" })))[0],
        "v1999"
    );
}

/// Brute force in f64: the `k` nearest ids of `points` (those `keep`
/// passes) with Workers' scores, by `metric`.
fn brute_force(
    points: &[Vec<f64>],
    q: &[f64],
    metric: Metric,
    k: usize,
    keep: impl Fn(usize) -> bool,
) -> Vec<(String, f64)> {
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let mut all: Vec<(f64, usize)> = points
        .iter()
        .enumerate()
        .filter(|(i, _)| keep(*i))
        .map(|(i, p)| {
            let score = match metric {
                Metric::Cosine => dot(p, q) / (dot(p, p).sqrt() * dot(q, q).sqrt()),
                Metric::DotProduct => dot(p, q),
                Metric::Euclidean => p
                    .iter()
                    .zip(q)
                    .map(|(x, y)| (x - y) * (x - y))
                    .sum::<f64>()
                    .sqrt(),
            };
            (score, i)
        })
        .collect();
    // Higher is closer but for euclidean.
    all.sort_by(|a, b| match metric {
        Metric::Euclidean => a.0.total_cmp(&b.0),
        _ => b.0.total_cmp(&a.0),
    });
    all.truncate(k);
    all.into_iter().map(|(s, i)| (format!("v{i}"), s)).collect()
}

#[test]
fn scans_and_walks_rank_their_int8_candidates_by_exact_scores() {
    // 100 dimensions: the kernels' 32-wide steps and their tails.
    for metric in [Metric::Cosine, Metric::Euclidean, Metric::DotProduct] {
        let (_d, _data, ix) = setup(100, metric);
        let points = categorised(&ix, 5000, 100);
        // New points of the same clusters (the generator's next 30).
        let queries = clustered(5030, 100, 20, 7).split_off(5000);
        let check = |filter: Option<Value>, keep: &dyn Fn(usize) -> bool, min_recall: f64| {
            let opts = QueryOptions {
                top_k: 10,
                filter: filter.clone(),
                ..QueryOptions::default()
            };
            let mut hits = 0;
            for q in &queries {
                let want = brute_force(&points, q, metric, 10, keep);
                let got = ix.query(q, &opts).unwrap();
                assert_eq!(got.len(), 10);
                for m in &got {
                    let i: usize = m.id[1..].parse().unwrap();
                    // The score is the exact one, not the int8 estimate.
                    let exact = brute_force(&points[i..=i], q, metric, 1, |_| true)[0].1;
                    assert!(
                        (m.score - exact).abs() <= 1e-4 * exact.abs().max(1.0),
                        "{metric} {filter:?}: {} scored {} for {exact}",
                        m.id,
                        m.score
                    );
                    assert!(keep(i), "{metric} {filter:?}: {} does not pass", m.id);
                    hits += usize::from(want.iter().any(|(id, _)| *id == m.id));
                }
            }
            let recall = hits as f64 / (10 * queries.len()) as f64;
            assert!(
                recall >= min_recall,
                "{metric} {filter:?}: recall@10 {recall}"
            );
        };
        // Not yet in the graph: every query scans.
        check(None, &|_| true, 0.99);
        check(Some(json!({ "cat": "c3" })), &|i| i % 10 == 3, 0.99);
        check(
            Some(json!({ "cat": { "$ne": "c3" } })),
            &|i| i % 10 != 3,
            0.99,
        );
        // In the graph: unfiltered queries walk it by int8 distance and
        // rank what it found exactly; a 10% filter still scans.
        let mut rng = 42u64;
        assert_eq!(ix.index_pending(&mut rng, &|| false), 5000);
        check(None, &|_| true, 0.95);
        check(Some(json!({ "cat": "c3" })), &|i| i % 10 == 3, 0.99);
        // The filtered walk, held to the same bar for every metric (most
        // queries' own clusters fail the filter: the walk must leave them).
        ix.set_search_path(SearchPath::Graph);
        check(
            Some(json!({ "cat": { "$in": ["c1", "c2"] } })),
            &|i| i % 10 == 1 || i % 10 == 2,
            0.95,
        );
        ix.set_search_path(SearchPath::Auto);
    }
}

#[test]
fn ne_nin_and_range_filters_alone_find_what_brute_force_finds() {
    let (_d, _data, ix) = setup(16, Metric::Cosine);
    for (name, ty) in [("cat", IndexType::String), ("n", IndexType::Number)] {
        ix.create_metadata_index(&MetadataIndex {
            property_name: name.into(),
            index_type: ty,
        })
        .unwrap();
    }
    // Every vector has `cat` (c0..c9); one in 13 lacks `n` (0..4), which
    // `$ne`/`$nin` on `n` must still let through.
    let points = clustered(6000, 16, 20, 7);
    let has_n = |i: usize| !i.is_multiple_of(13);
    for (b, chunk) in points.chunks(1000).enumerate() {
        let vs: Vec<NewVector> = chunk
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let i = b * 1000 + i;
                let m = if has_n(i) {
                    json!({ "cat": format!("c{}", i % 10), "n": i % 5 })
                } else {
                    json!({ "cat": format!("c{}", i % 10) })
                };
                vector(&format!("v{i}"), p, m)
            })
            .collect();
        upsert(&ix, &vs);
    }
    let deleted = |i: usize| i.is_multiple_of(17);
    let gone: Vec<String> = (0..6000)
        .filter(|&i| deleted(i))
        .map(|i| format!("v{i}"))
        .collect();
    ix.delete_by_ids(&gone).unwrap();
    let cat = |i: usize| i % 10;
    let n = |i: usize| has_n(i).then_some(i % 5);
    type Keep<'a> = Box<dyn Fn(usize) -> bool + 'a>;
    let cases: Vec<(Value, Keep<'_>)> = vec![
        (
            json!({ "cat": { "$ne": "c3" } }),
            Box::new(move |i| cat(i) != 3),
        ),
        (
            json!({ "cat": { "$nin": ["c1", "c2", "x"] } }),
            Box::new(move |i| cat(i) != 1 && cat(i) != 2),
        ),
        (
            json!({ "cat": { "$gte": "c7" } }),
            Box::new(move |i| cat(i) >= 7),
        ),
        (
            json!({ "cat": { "$lt": "c1" } }),
            Box::new(move |i| cat(i) < 1),
        ),
        (
            json!({ "n": { "$gt": 2 } }),
            Box::new(move |i| n(i).is_some_and(|n| n > 2)),
        ),
        (
            json!({ "n": { "$ne": 1 } }),
            Box::new(move |i| n(i) != Some(1)),
        ),
        (
            json!({ "n": { "$nin": [0, 4] } }),
            Box::new(move |i| n(i) != Some(0) && n(i) != Some(4)),
        ),
        (
            json!({ "n": { "$lte": 1 }, "cat": { "$ne": "c0" } }),
            Box::new(move |i| n(i).is_some_and(|n| n <= 1) && cat(i) != 0),
        ),
        // A type the property does not hold matches no range.
        (json!({ "n": { "$gt": "a" } }), Box::new(|_| false)),
    ];
    let queries = clustered(6020, 16, 20, 7).split_off(6000);
    let mut rng = 42u64;
    for graph in [false, true] {
        if graph {
            assert_eq!(ix.index_pending(&mut rng, &|| false), 6000);
        }
        for (filter, keep) in &cases {
            let keep = |i: usize| !deleted(i) && keep(i);
            let opts = QueryOptions {
                top_k: 10,
                filter: Some(filter.clone()),
                ..QueryOptions::default()
            };
            let mut hits = 0;
            for q in &queries {
                let want = brute_force(&points, q, Metric::Cosine, 10, keep);
                let got = ix.query(q, &opts).unwrap();
                assert_eq!(got.len(), want.len(), "{filter}");
                for m in &got {
                    let i: usize = m.id[1..].parse().unwrap();
                    assert!(keep(i), "{filter}: {} does not pass", m.id);
                    hits += usize::from(want.iter().any(|(id, _)| *id == m.id));
                }
            }
            let total: usize = queries
                .iter()
                .map(|q| brute_force(&points, q, Metric::Cosine, 10, keep).len())
                .sum();
            assert!(
                hits as f64 >= 0.99 * total as f64,
                "{filter} (graph {graph}): {hits} of {total}"
            );
        }
    }
}
