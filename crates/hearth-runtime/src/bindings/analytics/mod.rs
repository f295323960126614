//! `env.<analytics_engine_datasets binding>`: a Workers Analytics Engine
//! dataset over [`hearth_analytics`]. `writeDataPoint({ blobs, doubles,
//! indexes })` returns at once; the SQL API answers on
//! `POST /__hearth/analytics_engine/sql` with the query as the body.

use std::sync::Arc;

use hearth_analytics::{AnalyticsEngine, AnalyticsError, DataPoint, MAX_POINTS_PER_INVOCATION};
use rquickjs::{Ctx, Function, Object, Value};

use super::BindingAdapter;
use super::registry::{
    BindingError, BindingKind, InternalFuture, InternalRequest, InternalResponse, InternalRoute,
    OpenContext, OpenedWorker,
};
use super::support::{bytes_of, current_invocation, install_factory, raise};

const ANALYTICS_JS: &str = include_str!("analytics.js");

thread_local! {
    /// (invocation, data points it wrote through any dataset binding). An
    /// isolate owns its thread and runs one invocation's JS at a time, so
    /// this counts Cloudflare's 250 points per invocation.
    static WRITTEN: std::cell::Cell<(u64, usize)> = const { std::cell::Cell::new((0, 0)) };
}

/// Exposes one dataset as `env[name]`.
pub struct AnalyticsAdapter {
    name: String,
    dataset: String,
    engine: Arc<AnalyticsEngine>,
}

impl AnalyticsAdapter {
    pub fn new(
        name: impl Into<String>,
        dataset: impl Into<String>,
        engine: Arc<AnalyticsEngine>,
    ) -> Self {
        Self {
            name: name.into(),
            dataset: dataset.into(),
            engine,
        }
    }
}

/// `null` stays `None`; strings and buffers are bytes.
fn optional_bytes(values: Vec<Value<'_>>) -> rquickjs::Result<Vec<Option<Vec<u8>>>> {
    values
        .iter()
        .map(|v| if v.is_null() { Ok(None) } else { bytes_of(v) })
        .collect()
}

/// The point read straight from the event when it has the usual shape:
/// arrays (or nothing) of strings and nulls, and of numbers. `None` for
/// anything else (buffers, a wrong type), which the JS side then checks
/// and converts value by value, naming what is wrong. One native call per
/// point instead of a JS check per value.
fn plain_point(event: &Value<'_>) -> rquickjs::Result<Option<DataPoint>> {
    if event.is_undefined() {
        return Ok(Some(DataPoint::default()));
    }
    let Some(event) = event.as_object() else {
        return Ok(None);
    };
    let texts = |field: &str| -> rquickjs::Result<Option<Vec<Option<Vec<u8>>>>> {
        let value: Value = event.get(field)?;
        if value.is_undefined() || value.is_null() {
            return Ok(Some(Vec::new()));
        }
        let Some(array) = value.as_array() else {
            return Ok(None);
        };
        let mut out = Vec::with_capacity(array.len());
        for i in 0..array.len() {
            let v: Value = array.get(i)?;
            if let Some(s) = v.as_string() {
                out.push(Some(s.to_string()?.into_bytes()));
            } else if v.is_null() || v.is_undefined() {
                out.push(None);
            } else {
                return Ok(None);
            }
        }
        Ok(Some(out))
    };
    let Some(blobs) = texts("blobs")? else {
        return Ok(None);
    };
    let Some(indexes) = texts("indexes")? else {
        return Ok(None);
    };
    let value: Value = event.get("doubles")?;
    let mut doubles = Vec::new();
    if !(value.is_undefined() || value.is_null()) {
        let Some(array) = value.as_array() else {
            return Ok(None);
        };
        doubles.reserve(array.len());
        for i in 0..array.len() {
            let v: Value = array.get(i)?;
            let Some(n) = v.as_number() else {
                return Ok(None);
            };
            doubles.push(n);
        }
    }
    Ok(Some(DataPoint {
        blobs,
        doubles,
        indexes,
    }))
}

/// Queues `point` for `dataset`, counting it against the invocation's 250.
fn write_point(
    ctx: &Ctx<'_>,
    engine: &AnalyticsEngine,
    dataset: &str,
    point: DataPoint,
) -> rquickjs::Result<()> {
    let invocation = current_invocation();
    let (last, count) = WRITTEN.with(std::cell::Cell::get);
    let count = if last == invocation { count } else { 0 };
    if count >= MAX_POINTS_PER_INVOCATION {
        return Err(raise(ctx, AnalyticsError::TooManyPoints));
    }
    engine.write(dataset, point).map_err(|e| raise(ctx, e))?;
    WRITTEN.with(|w| w.set((invocation, count + 1)));
    Ok(())
}

impl BindingAdapter for AnalyticsAdapter {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &str {
        "analytics_engine"
    }

    fn backend(&self) -> String {
        format!(
            "sqlite:{} (dataset {})",
            self.engine.path().display(),
            self.dataset
        )
    }

    fn install<'js>(&self, ctx: &Ctx<'js>, env: &Object<'js>) -> rquickjs::Result<()> {
        let native = Object::new(ctx.clone())?;
        let (engine, dataset) = (self.engine.clone(), self.dataset.clone());
        native.set(
            "writePlain",
            Function::new(
                ctx.clone(),
                move |ctx: Ctx<'js>, event: Value<'js>| -> rquickjs::Result<bool> {
                    let Some(point) = plain_point(&event)? else {
                        return Ok(false);
                    };
                    write_point(&ctx, &engine, &dataset, point)?;
                    Ok(true)
                },
            )?,
        )?;
        let (engine, dataset) = (self.engine.clone(), self.dataset.clone());
        native.set(
            "write",
            Function::new(
                ctx.clone(),
                move |ctx: Ctx<'js>,
                      blobs: Vec<Value<'js>>,
                      doubles: Vec<f64>,
                      indexes: Vec<Value<'js>>| {
                    let point = DataPoint {
                        blobs: optional_bytes(blobs)?,
                        doubles,
                        indexes: optional_bytes(indexes)?,
                    };
                    write_point(&ctx, &engine, &dataset, point)
                },
            )?,
        )?;
        install_factory(ctx, env, &self.name, "analytics.js", ANALYTICS_JS, native)
    }
}

/// How `analytics_engine_datasets` is served: every dataset of a data
/// directory in `analytics_engine.sqlite`, and the SQL API.
pub struct AnalyticsKind;

/// Opens `<data>/analytics_engine.sqlite`.
pub fn open_analytics(
    data_dir: &hearth_core::DataDir,
    clock: hearth_core::SharedClock,
    retention_ms: Option<u64>,
) -> Result<AnalyticsEngine, BindingError> {
    let path = data_dir.root().join("analytics_engine.sqlite");
    let mut options = hearth_analytics::AnalyticsOptions::default();
    if let Some(ms) = retention_ms {
        options.retention_ms = ms;
    }
    AnalyticsEngine::open_with(&path, clock, options)
        .map_err(|e| BindingError::new(format!("opening {}: {e}", path.display())))
}

impl BindingKind for AnalyticsKind {
    fn section(&self) -> &'static str {
        "analytics_engine_datasets"
    }

    fn data_paths(&self) -> &'static [&'static str] {
        &["analytics_engine.sqlite"]
    }

    fn cli_verbs(&self) -> &'static [&'static str] {
        &["analytics sql"]
    }

    fn open(&self, cx: &mut OpenContext<'_>, out: &mut OpenedWorker) -> Result<(), BindingError> {
        let config = cx.config;
        if config.analytics_engine_datasets.is_empty() {
            return Ok(());
        }
        let (data_dir, clock) = (cx.data_dir, cx.clock.clone());
        let retention = cx.settings.analytics_retention_ms;
        let key = data_dir
            .root()
            .join("analytics_engine.sqlite")
            .display()
            .to_string();
        let engine = cx.shared(&key, || {
            open_analytics(data_dir, clock, retention).map(Arc::new)
        })?;
        for b in &config.analytics_engine_datasets {
            out.worker.bindings.push(Arc::new(AnalyticsAdapter::new(
                &b.binding,
                b.dataset_name(),
                engine.clone(),
            )));
        }
        out.routes.push(Arc::new(SqlApi { engine }));
        Ok(())
    }
}

/// `POST /__hearth/analytics_engine/sql`: the query is the body.
#[derive(Debug)]
struct SqlApi {
    engine: Arc<AnalyticsEngine>,
}

impl InternalRoute for SqlApi {
    fn prefix(&self) -> &'static str {
        "analytics_engine"
    }

    fn claims(&self, rest: &str) -> bool {
        rest == "sql"
    }

    fn handle(&self, req: InternalRequest) -> InternalFuture {
        let engine = self.engine.clone();
        Box::pin(async move {
            let text = |status: u16, body: String| InternalResponse {
                status,
                content_type: "text/plain; charset=utf-8",
                body: body.into(),
            };
            if req.rest != "sql" {
                return text(
                    404,
                    "404 Not Found: the SQL API is at /__hearth/analytics_engine/sql\n".into(),
                );
            }
            if req.method != "POST" {
                return text(
                    405,
                    "405 Method Not Allowed: POST the query as the body\n".into(),
                );
            }
            let Ok(query) = String::from_utf8(req.body.to_vec()) else {
                return text(400, "the query is not UTF-8\n".into());
            };
            match tokio::task::spawn_blocking(move || engine.query(&query)).await {
                Ok(Ok(out)) => InternalResponse {
                    status: 200,
                    content_type: out.content_type,
                    body: out.body.into(),
                },
                Ok(Err(e)) => text(400, format!("{e}\n")),
                Err(e) => text(500, format!("{e}\n")),
            }
        })
    }
}
