//! `env.INDEX` as a worker sees it: the Vectorize binding's methods, the
//! argument forms Workers takes (arrays, Float32Array, Float64Array,
//! `returnMetadata` as a boolean or a level), its TypeErrors, and the
//! error of an index not yet created.

mod bindings_common;

use std::sync::Arc;

use bindings_common::{err, ok};
use hearth_core::DataDir;
use hearth_core::clock::ManualClock;
use hearth_runtime::BindingAdapter;
use hearth_runtime::bindings::VectorizeAdapter;
use hearth_vectorize::{IndexConfig, IndexHandle, Metric, create_index};
use serde_json::{Value, json};

fn transcript(create: bool, body: &str) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let data = DataDir::new(dir.path().join("data"));
    let clock = ManualClock::new(1_700_000_000_000).shared();
    if create {
        let config = IndexConfig {
            dimensions: 3,
            metric: Metric::Cosine,
            description: None,
        };
        create_index(&data, "docs", &config, clock.clone()).unwrap();
    }
    let handle = Arc::new(IndexHandle::new(data, "docs", clock));
    let adapter: Arc<dyn BindingAdapter> = Arc::new(VectorizeAdapter::new("INDEX", handle));
    bindings_common::transcript(
        dir.path(),
        vec![adapter],
        &format!("    const {{ INDEX }} = env;\n{body}"),
    )
}

#[test]
fn methods_take_workers_argument_forms_and_answer_in_its_shapes() {
    let t = transcript(
        true,
        r#"
    await attempt(out, "tag", () => Object.prototype.toString.call(INDEX));
    await attempt(out, "isPromise", () => INDEX.describe() instanceof Promise);
    await attempt(out, "upsert", async () => Object.keys(await INDEX.upsert([
      { id: "a", values: new Float32Array([1, 0, 0]), metadata: { k: "x" } },
      { id: "b", values: new Float64Array([0, 1, 0]), namespace: "ns" },
      { id: "c", values: [0.5, 0.5, 0] },
    ])));
    await attempt(out, "typed", async () => (await INDEX.query(new Float32Array([1, 0, 0]), { topK: 1 })).matches.map((m) => m.id));
    await attempt(out, "typedView", async () => (await INDEX.query(new Float32Array([0, 0, 9, 0.5, 0.5, 0, 7]).subarray(3, 6), { topK: 1 })).matches.map((m) => [m.id, Math.round(m.score * 1e4) / 1e4]));
    await attempt(out, "typed64", async () => (await INDEX.query(new Float64Array([0, 1, 0]), { topK: 1, namespace: "ns" })).matches.map((m) => m.id));
    await attempt(out, "typedShort", () => INDEX.query(new Float32Array([1, 0])));
    await attempt(out, "metaTrue", async () => (await INDEX.query([1, 0, 0], { topK: 1, returnMetadata: true })).matches[0].metadata);
    await attempt(out, "metaFalse", async () => "metadata" in (await INDEX.query([1, 0, 0], { topK: 1, returnMetadata: false })).matches[0]);
    await attempt(out, "defaultTopK", async () => (await INDEX.query([1, 1, 0])).count);
    await attempt(out, "byIdMissing", async () => await INDEX.queryById("nope"));
    await attempt(out, "get", async () => (await INDEX.getByIds(["b"]))[0]);
    await attempt(out, "insertExisting", async () => typeof (await INDEX.insert([{ id: "a", values: [0, 0, 1] }])).mutationId);
    await attempt(out, "after", async () => (await INDEX.getByIds(["a"]))[0].values);
    await attempt(out, "delete", async () => Object.keys(await INDEX.deleteByIds(["a"])));
    await attempt(out, "describe", async () => { const d = await INDEX.describe(); return [d.vectorCount, d.dimensions, typeof d.processedUpToMutation, typeof d.processedUpToDatetime]; });
    await attempt(out, "notArray", () => INDEX.upsert({ id: "x", values: [1, 2, 3] }));
    await attempt(out, "badValues", () => INDEX.upsert([{ id: "x", values: "1,2,3" }]));
    await attempt(out, "badMeta", () => INDEX.query([1, 0, 0], { returnMetadata: "everything" }));
    await attempt(out, "badTopK", () => INDEX.query([1, 0, 0], { topK: 1.5 }));
    await attempt(out, "dims", () => INDEX.query([1, 0]));
    "#,
    );
    assert_eq!(ok(&t, "tag"), json!("[object VectorizeIndex]"));
    assert_eq!(ok(&t, "isPromise"), json!(true));
    assert_eq!(ok(&t, "upsert"), json!(["mutationId"]));
    assert_eq!(ok(&t, "typed"), json!(["a"]));
    // A view reads its own window of the buffer.
    assert_eq!(ok(&t, "typedView"), json!([["c", 1]]));
    assert_eq!(ok(&t, "typed64"), json!(["b"]));
    assert!(
        err(&t, "typedShort")
            .1
            .contains("expected 3 dimensions, and got 2")
    );
    assert_eq!(ok(&t, "metaTrue"), json!({ "k": "x" }));
    assert_eq!(ok(&t, "metaFalse"), json!(false));
    assert_eq!(ok(&t, "defaultTopK"), json!(3));
    assert_eq!(ok(&t, "byIdMissing"), json!({ "matches": [], "count": 0 }));
    assert_eq!(
        ok(&t, "get"),
        json!({ "id": "b", "values": [0, 1, 0], "namespace": "ns", "metadata": {} })
    );
    assert_eq!(ok(&t, "insertExisting"), json!("string"));
    assert_eq!(ok(&t, "after"), json!([1, 0, 0]));
    assert_eq!(ok(&t, "delete"), json!(["mutationId"]));
    assert_eq!(ok(&t, "describe"), json!([2, 3, "string", "number"]));
    assert_eq!(err(&t, "notArray").0, "TypeError");
    assert_eq!(err(&t, "badValues").0, "TypeError");
    assert_eq!(err(&t, "badMeta").0, "TypeError");
    assert_eq!(err(&t, "badTopK").0, "TypeError");
    assert_eq!(
        err(&t, "dims"),
        (
            "Error".into(),
            "VECTOR_QUERY_ERROR (code = 40006): invalid query vector, expected 3 dimensions, and got 2 dimensions".into()
        )
    );
}

#[test]
fn an_index_not_created_rejects_every_call_naming_the_command() {
    let t = transcript(
        false,
        r#"
    await attempt(out, "query", () => INDEX.query([1, 0, 0]));
    await attempt(out, "upsert", () => INDEX.upsert([{ id: "a", values: [1, 0, 0] }]));
    "#,
    );
    for label in ["query", "upsert"] {
        let (class, message) = err(&t, label);
        assert_eq!(class, "Error");
        assert!(
            message.contains("hearth vectorize create docs --dimensions"),
            "{message}"
        );
    }
}
