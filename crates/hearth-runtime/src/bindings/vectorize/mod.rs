//! `env.<vectorize binding>`: a Vectorize index over
//! [`hearth_vectorize::VectorIndex`]. The JS half (`vectorize.js`) checks
//! arguments as Workers does and shapes the results; the natives here run
//! each call to completion on the isolate thread (a query reads memory
//! only; a write waits for its fsynced commit).

use std::sync::Arc;

use hearth_core::ErrorClass;
use hearth_vectorize::{
    IndexHandle, NewVector, QueryOptions, ReturnMetadata, VectorIndex, VectorizeError, WriteMode,
};
use rquickjs::{Ctx, FromJs, Function, Object, TypedArray, Value as JsValue};
use serde_json::{Map, Value, json};

use super::BindingAdapter;
use super::registry::{
    BindingError, BindingKind, InternalFuture, InternalRequest, InternalResponse, InternalRoute,
    OpenContext, OpenedWorker,
};
use super::support::{install_factory, raise, throw};

const VECTORIZE_JS: &str = include_str!("vectorize.js");

/// Exposes one index as `env[name]`.
pub struct VectorizeAdapter {
    name: String,
    index: Arc<IndexHandle>,
}

impl VectorizeAdapter {
    pub fn new(name: impl Into<String>, index: Arc<IndexHandle>) -> Self {
        Self {
            name: name.into(),
            index,
        }
    }
}

fn json_text(ctx: &Ctx<'_>, v: &Value) -> rquickjs::Result<String> {
    serde_json::to_string(v).map_err(|e| throw(ctx, ErrorClass::Error, &e.to_string()))
}

fn parse<T: serde::de::DeserializeOwned>(ctx: &Ctx<'_>, text: &str) -> rquickjs::Result<T> {
    serde_json::from_str(text).map_err(|e| throw(ctx, ErrorClass::TypeError, &e.to_string()))
}

/// The vectors `vectorize.js` hands over as JSON:
/// `[{ id, values, namespace, metadata }]`, already shape-checked.
fn new_vectors(ctx: &Ctx<'_>, text: &str) -> rquickjs::Result<Vec<NewVector>> {
    let raw: Vec<Value> = parse(ctx, text)?;
    raw.into_iter()
        .map(|v| {
            let id = v
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let values = v
                .get("values")
                .and_then(Value::as_array)
                .map(|a| a.iter().map(|x| x.as_f64().unwrap_or(f64::NAN)).collect())
                .unwrap_or_default();
            let namespace = v.get("namespace").and_then(Value::as_str).map(String::from);
            let metadata = match v.get("metadata") {
                Some(Value::Object(m)) => Some(m.clone()),
                _ => None,
            };
            Ok(NewVector {
                id,
                values,
                namespace,
                metadata,
            })
        })
        .collect()
}

/// A query vector as `vectorize.js` passes it: a `Float32Array` or
/// `Float64Array` read straight from its buffer (no JS array of boxed
/// numbers in between), else an array of numbers.
fn vector_arg(v: JsValue<'_>) -> rquickjs::Result<Vec<f64>> {
    if let Ok(a) = TypedArray::<f32>::from_value(v.clone()) {
        // SAFETY: copied before any JavaScript runs again.
        let bytes = unsafe { a.as_bytes() }.unwrap_or_default();
        return Ok(bytes
            .chunks_exact(4)
            .map(|b| f64::from(f32::from_ne_bytes([b[0], b[1], b[2], b[3]])))
            .collect());
    }
    if let Ok(a) = TypedArray::<f64>::from_value(v.clone()) {
        // SAFETY: as above.
        let bytes = unsafe { a.as_bytes() }.unwrap_or_default();
        return Ok(bytes
            .chunks_exact(8)
            .map(|b| f64::from_ne_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
            .collect());
    }
    let ctx = v.ctx().clone();
    Vec::<f64>::from_js(&ctx, v)
}

fn match_json(m: hearth_vectorize::Match) -> Value {
    let mut o = Map::new();
    o.insert("id".into(), Value::String(m.id));
    o.insert("score".into(), json!(m.score));
    if let Some(values) = m.values {
        o.insert("values".into(), json!(values));
    }
    if let Some(metadata) = m.metadata {
        o.insert("metadata".into(), metadata);
    }
    if let Some(ns) = m.namespace {
        o.insert("namespace".into(), Value::String(ns));
    }
    Value::Object(o)
}

/// Registers `name(args...) -> Result<String, VectorizeError>` on `native`
/// with the index opened first.
macro_rules! native_fn {
    ($ctx:expr, $native:expr, $index:expr, $name:literal, |$ix:ident, $c:ident $(, $arg:ident : $ty:ty)*| $body:expr) => {{
        let handle = $index.clone();
        $native.set(
            $name,
            Function::new($ctx.clone(), move |$c: Ctx<'_>, $($arg: $ty),*| -> rquickjs::Result<String> {
                let $ix: Arc<VectorIndex> = handle.get().map_err(|e| raise(&$c, e))?;
                $body
            })?,
        )?;
    }};
}

impl BindingAdapter for VectorizeAdapter {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &str {
        "vectorize"
    }

    fn backend(&self) -> String {
        format!(
            "sqlite:{} (index {})",
            self.index.path().display(),
            self.index.name()
        )
    }

    fn install<'js>(&self, ctx: &Ctx<'js>, env: &Object<'js>) -> rquickjs::Result<()> {
        let native = Object::new(ctx.clone())?;
        let index = &self.index;
        native_fn!(
            ctx,
            native,
            index,
            "query",
            |ix,
             c,
             vector: JsValue<'js>,
             top_k: f64,
             namespace: Option<String>,
             return_values: bool,
             return_metadata: String,
             filter: Option<String>| {
                let filter = match filter {
                    Some(f) => Some(parse::<Value>(&c, &f)?),
                    None => None,
                };
                let return_metadata = match return_metadata.as_str() {
                    "all" => ReturnMetadata::All,
                    "indexed" => ReturnMetadata::Indexed,
                    _ => ReturnMetadata::None,
                };
                let options = QueryOptions {
                    top_k: if top_k.is_finite() && top_k >= 0.0 {
                        top_k as usize
                    } else {
                        0
                    },
                    namespace,
                    return_values,
                    return_metadata,
                    filter,
                };
                let vector = vector_arg(vector)?;
                let matches = ix.query(&vector, &options).map_err(|e| raise(&c, e))?;
                let count = matches.len();
                let matches: Vec<Value> = matches.into_iter().map(match_json).collect();
                json_text(&c, &json!({ "matches": matches, "count": count }))
            }
        );
        native_fn!(ctx, native, index, "vectorOf", |ix, c, id: String| {
            let v = ix.vector_of(&id).map_err(|e| raise(&c, e))?;
            json_text(&c, &json!(v))
        });
        native_fn!(
            ctx,
            native,
            index,
            "write",
            |ix, c, mode: String, vectors: String| {
                let mode = if mode == "insert" {
                    WriteMode::Insert
                } else {
                    WriteMode::Upsert
                };
                let vectors = new_vectors(&c, &vectors)?;
                let max = ix.limits().max_batch;
                let m = ix
                    .write_vectors(mode, &vectors, max)
                    .map_err(|e| raise(&c, e))?;
                json_text(
                    &c,
                    &json!({ "mutationId": m.mutation_id, "ids": m.ids, "count": m.ids.len() }),
                )
            }
        );
        native_fn!(
            ctx,
            native,
            index,
            "deleteByIds",
            |ix, c, ids: Vec<String>| {
                let m = ix.delete_by_ids(&ids).map_err(|e| raise(&c, e))?;
                json_text(
                    &c,
                    &json!({ "mutationId": m.mutation_id, "ids": m.ids, "count": m.ids.len() }),
                )
            }
        );
        native_fn!(ctx, native, index, "getByIds", |ix, c, ids: Vec<String>| {
            let found = ix.get_by_ids(&ids).map_err(|e| raise(&c, e))?;
            let out: Vec<Value> = found
                .into_iter()
                .map(|v| {
                    let mut o = Map::new();
                    o.insert("id".into(), Value::String(v.id));
                    o.insert("values".into(), json!(v.values));
                    if let Some(ns) = v.namespace {
                        o.insert("namespace".into(), Value::String(ns));
                    }
                    o.insert(
                        "metadata".into(),
                        v.metadata.map_or_else(|| json!({}), Value::Object),
                    );
                    Value::Object(o)
                })
                .collect();
            json_text(&c, &Value::Array(out))
        });
        native_fn!(ctx, native, index, "describe", |ix, c| {
            let info = ix.info();
            json_text(
                &c,
                &json!({
                    "vectorCount": info.vector_count,
                    "dimensions": info.config.dimensions,
                    "processedUpToDatetime": info.processed_up_to_ms,
                    "processedUpToMutation": info.processed_up_to_mutation,
                }),
            )
        });
        native_fn!(
            ctx,
            native,
            index,
            "list",
            |ix, c, count: f64, cursor: Option<String>| {
                let count = if count.is_finite() && count >= 0.0 {
                    count as usize
                } else {
                    0
                };
                let page = ix
                    .list(count, cursor.as_deref())
                    .map_err(|e| raise(&c, e))?;
                let vectors: Vec<Value> = page.ids.iter().map(|id| json!({ "id": id })).collect();
                json_text(
                    &c,
                    &json!({
                        "count": vectors.len(),
                        "totalCount": page.total_count,
                        "isTruncated": page.next_cursor.is_some(),
                        "nextCursor": page.next_cursor,
                        "vectors": vectors,
                    }),
                )
            }
        );
        install_factory(ctx, env, &self.name, "vectorize.js", VECTORIZE_JS, native)
    }
}

/// How `[[vectorize]]` is served: each index named by a binding, opened on
/// first use from `<data>/vectorize/<index>.sqlite` (so one created with
/// `hearth vectorize create` while serving is picked up), with its indexer
/// thread.
pub struct VectorizeKind;

impl BindingKind for VectorizeKind {
    fn section(&self) -> &'static str {
        "vectorize"
    }

    fn data_paths(&self) -> &'static [&'static str] {
        &["vectorize/<index name>.sqlite"]
    }

    fn cli_verbs(&self) -> &'static [&'static str] {
        &["vectorize"]
    }

    fn open(&self, cx: &mut OpenContext<'_>, out: &mut OpenedWorker) -> Result<(), BindingError> {
        for b in &cx.config.vectorize {
            let path = hearth_vectorize::index_path(cx.data_dir, &b.index_name);
            let (data_dir, clock) = (cx.data_dir.clone(), cx.clock.clone());
            let handle = cx.shared(&path.display().to_string(), || {
                Ok::<_, BindingError>(Arc::new(IndexHandle::new(data_dir, &b.index_name, clock)))
            })?;
            match handle.get() {
                Ok(_) => {}
                Err(e @ VectorizeError::NoSuchIndex(_)) => {
                    tracing::warn!("{}", cx.error(self.section(), &b.binding, e));
                }
                Err(e) => return Err(cx.error(self.section(), &b.binding, e)),
            }
            out.routes.push(Arc::new(IndexStatus {
                index: handle.clone(),
            }));
            out.worker
                .bindings
                .push(Arc::new(VectorizeAdapter::new(&b.binding, handle)));
        }
        Ok(())
    }
}

/// `GET /__hearth/vectorize/<index>`: the index's count and how many
/// vectors still wait for the graph (searched exactly meanwhile), for
/// operators and the benchmark.
#[derive(Debug)]
struct IndexStatus {
    index: Arc<IndexHandle>,
}

impl InternalRoute for IndexStatus {
    fn prefix(&self) -> &'static str {
        "vectorize"
    }

    fn claims(&self, rest: &str) -> bool {
        rest == self.index.name()
    }

    fn handle(&self, req: InternalRequest) -> InternalFuture {
        let index = self.index.clone();
        Box::pin(async move {
            let answer = |status: u16, body: Value| InternalResponse {
                status,
                content_type: "application/json",
                body: body.to_string().into(),
            };
            if req.rest != index.name() {
                return answer(
                    404,
                    json!({ "error": format!("no Vectorize index \"{}\" is bound here", req.rest) }),
                );
            }
            match index.get() {
                Ok(ix) => {
                    let info = ix.info();
                    answer(
                        200,
                        json!({
                            "name": info.name,
                            "dimensions": info.config.dimensions,
                            "metric": info.config.metric.as_str(),
                            "vectorCount": info.vector_count,
                            "awaitingGraph": ix.pending(),
                        }),
                    )
                }
                Err(e) => answer(404, json!({ "error": e.to_string() })),
            }
        })
    }
}
