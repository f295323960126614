//! `env.<D1 binding>`: a D1 database over [`hearth_d1::D1Database`].
//!
//! The JS half (`d1.js`) keeps prepared statements as plain
//! `{sql, params}` values (as the Workers binding does, so a statement can be
//! bound many times and passed to `batch`), checks bound value types, and
//! attaches D1's `cause` to errors. The natives here run the queries. Results
//! cross as JSON text, which gives exactly D1's number handling: integers come
//! back as JS numbers, losing precision past 2^53 like D1's JSON transport.
//! Queries run synchronously on the isolate thread.

mod kind;

pub use kind::D1Kind;

use std::sync::Arc;

use hearth_core::ErrorClass;
use hearth_d1::{D1Database, D1DatabaseSession, D1PreparedStatement, D1Value};
use rquickjs::class::Trace;
use rquickjs::{Class, Ctx, Function, JsLifetime, Object, Value};
use serde::Serialize;

use super::BindingAdapter;
use super::support::{bytes_of, install_factory, raise, throw};

const D1_JS: &str = include_str!("d1.js");

/// Exposes one D1 database as `env[name]`.
pub struct D1Adapter {
    name: String,
    database: Arc<D1Database>,
    backend: String,
}

impl D1Adapter {
    pub fn new(binding_name: impl Into<String>, database: Arc<D1Database>) -> Self {
        let backend = format!("sqlite:{}", database.path().display());
        Self {
            name: binding_name.into(),
            database,
            backend,
        }
    }

    pub fn database(&self) -> &Arc<D1Database> {
        &self.database
    }
}

impl std::fmt::Debug for D1Adapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("D1Adapter")
            .field("name", &self.name)
            .field("backend", &self.backend)
            .finish()
    }
}

/// A `withSession()` session, held by its JS object.
#[derive(Trace, JsLifetime)]
#[rquickjs::class(rename = "D1SessionHandle")]
pub(crate) struct SessionHandle {
    #[qjs(skip_trace)]
    session: D1DatabaseSession,
}

/// Where a statement runs: the database itself, or a session of it.
enum Target<'a> {
    Database(&'a D1Database),
    Session(D1DatabaseSession),
}

impl Target<'_> {
    fn prepare(&self, sql: String, params: Vec<D1Value>) -> D1PreparedStatement {
        match self {
            Target::Database(db) => db.prepare(sql).bind(params),
            Target::Session(s) => s.prepare(sql).bind(params),
        }
    }
}

fn target<'a, 'js>(db: &'a D1Database, session: Option<Class<'js, SessionHandle>>) -> Target<'a> {
    match session {
        Some(s) => Target::Session(s.borrow().session.clone()),
        None => Target::Database(db),
    }
}

/// The JS value of a batch's results, or why it cannot be built (the
/// pending exception, typically "out of memory", is taken and described).
/// The JSON text lives outside the JS heap; only the values are built in it.
fn deliver<'js>(ctx: &Ctx<'js>, results: Vec<hearth_d1::D1Result>) -> Result<Value<'js>, String> {
    let json = serde_json::to_vec(&results).map_err(|e| e.to_string())?;
    drop(results);
    match ctx.json_parse(json) {
        Ok(v) => Ok(v),
        Err(rquickjs::Error::Exception) => {
            let caught = ctx.catch();
            let message = caught
                .as_object()
                .and_then(|o| o.get::<_, String>("message").ok())
                .unwrap_or_else(|| "the worker's heap is full".to_string());
            Err(message)
        }
        Err(e) => Err(e.to_string()),
    }
}

fn to_json<T: Serialize>(ctx: &Ctx<'_>, value: &T) -> rquickjs::Result<String> {
    serde_json::to_string(value)
        .map_err(|e| throw(ctx, ErrorClass::Error, &format!("D1_ERROR: {e}")))
}

/// A bound JS value as D1 receives it. The JS half has already turned
/// booleans into 1/0 and refused unsupported types.
fn to_d1_value(ctx: &Ctx<'_>, v: &Value<'_>) -> rquickjs::Result<D1Value> {
    if v.is_null() || v.is_undefined() {
        return Ok(D1Value::Null);
    }
    if let Some(n) = v.as_number() {
        // D1 receives parameters as JSON: NaN and infinities become null,
        // integral numbers become INTEGER, the rest REAL.
        const TWO_63: f64 = 9_223_372_036_854_775_808.0;
        if !n.is_finite() {
            return Ok(D1Value::Null);
        }
        if n.fract() == 0.0 && (-TWO_63..TWO_63).contains(&n) {
            return Ok(D1Value::Integer(n as i64));
        }
        return Ok(D1Value::Real(n));
    }
    if let Some(b) = v.as_bool() {
        return Ok(D1Value::Integer(i64::from(b)));
    }
    if let Some(s) = v.as_string() {
        return Ok(D1Value::Text(s.to_string()?));
    }
    match bytes_of(v)? {
        Some(bytes) => Ok(D1Value::Blob(bytes)),
        None => Err(throw(
            ctx,
            ErrorClass::Error,
            "D1_TYPE_ERROR: unsupported bound value",
        )),
    }
}

fn to_d1_values(ctx: &Ctx<'_>, values: &[Value<'_>]) -> rquickjs::Result<Vec<D1Value>> {
    values.iter().map(|v| to_d1_value(ctx, v)).collect()
}

impl BindingAdapter for D1Adapter {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &str {
        "d1"
    }

    fn backend(&self) -> String {
        self.backend.clone()
    }

    fn install<'js>(&self, ctx: &Ctx<'js>, env: &Object<'js>) -> rquickjs::Result<()> {
        let native = Object::new(ctx.clone())?;

        // all(session, sql, params) -> JSON D1Result (also used by run())
        let db = self.database.clone();
        native.set(
            "all",
            Function::new(
                ctx.clone(),
                move |ctx: Ctx<'js>,
                      session: Option<Class<'js, SessionHandle>>,
                      sql: String,
                      params: Vec<Value<'js>>|
                      -> rquickjs::Result<String> {
                    let params = to_d1_values(&ctx, &params)?;
                    let stmt = target(&db, session).prepare(sql, params);
                    let result = stmt.all().map_err(|e| raise(&ctx, e))?;
                    to_json(&ctx, &result)
                },
            )?,
        )?;

        // first(session, sql, params, column) -> JSON row | value | null
        let db = self.database.clone();
        native.set(
            "first",
            Function::new(
                ctx.clone(),
                move |ctx: Ctx<'js>,
                      session: Option<Class<'js, SessionHandle>>,
                      sql: String,
                      params: Vec<Value<'js>>,
                      column: Option<String>|
                      -> rquickjs::Result<String> {
                    let params = to_d1_values(&ctx, &params)?;
                    let stmt = target(&db, session).prepare(sql, params);
                    match column {
                        Some(c) => {
                            let v = stmt.first_column(&c).map_err(|e| raise(&ctx, e))?;
                            to_json(&ctx, &v)
                        }
                        None => {
                            let row = stmt.first().map_err(|e| raise(&ctx, e))?;
                            to_json(&ctx, &row)
                        }
                    }
                },
            )?,
        )?;

        // raw(session, sql, params, columnNames) -> JSON array of arrays
        let db = self.database.clone();
        native.set(
            "raw",
            Function::new(
                ctx.clone(),
                move |ctx: Ctx<'js>,
                      session: Option<Class<'js, SessionHandle>>,
                      sql: String,
                      params: Vec<Value<'js>>,
                      column_names: bool|
                      -> rquickjs::Result<String> {
                    let params = to_d1_values(&ctx, &params)?;
                    let stmt = target(&db, session).prepare(sql, params);
                    let rows = stmt.raw(column_names).map_err(|e| raise(&ctx, e))?;
                    to_json(&ctx, &rows)
                },
            )?,
        )?;

        // batch(session, [[sql, params], ...]) -> array of D1Result. The
        // array is built while the transaction is open and the batch commits
        // only once it exists: a heap too small for the results rolls the
        // batch back rather than failing after the commit.
        let db = self.database.clone();
        native.set(
            "batch",
            Function::new(
                ctx.clone(),
                move |ctx: Ctx<'js>,
                      session: Option<Class<'js, SessionHandle>>,
                      statements: Vec<rquickjs::Array<'js>>|
                      -> rquickjs::Result<Value<'js>> {
                    let target = target(&db, session);
                    let mut prepared = Vec::with_capacity(statements.len());
                    for pair in statements {
                        let sql: String = pair.get(0)?;
                        let params: Vec<Value<'js>> = pair.get(1)?;
                        let params = to_d1_values(&ctx, &params)?;
                        prepared.push(target.prepare(sql, params));
                    }
                    let deliver = |results: Vec<hearth_d1::D1Result>| deliver(&ctx, results);
                    match &target {
                        Target::Database(db) => db.batch_delivering(&prepared, deliver),
                        Target::Session(s) => s.batch_delivering(&prepared, deliver),
                    }
                    .map_err(|e| raise(&ctx, e))
                },
            )?,
        )?;

        let db = self.database.clone();
        native.set(
            "exec",
            Function::new(
                ctx.clone(),
                move |ctx: Ctx<'js>, sql: String| -> rquickjs::Result<String> {
                    let result = db.exec(&sql).map_err(|e| raise(&ctx, e))?;
                    to_json(&ctx, &result)
                },
            )?,
        )?;

        let db = self.database.clone();
        native.set(
            "session",
            Function::new(
                ctx.clone(),
                move |ctx: Ctx<'js>,
                      constraint: Option<String>|
                      -> rquickjs::Result<Class<'js, SessionHandle>> {
                    let session = db
                        .with_session(constraint.as_deref())
                        .map_err(|e| raise(&ctx, e))?;
                    Class::instance(ctx, SessionHandle { session })
                },
            )?,
        )?;

        native.set(
            "bookmark",
            Function::new(
                ctx.clone(),
                |handle: Class<'js, SessionHandle>| -> Option<String> {
                    handle.borrow().session.get_bookmark()
                },
            )?,
        )?;

        install_factory(ctx, env, &self.name, "d1.js", D1_JS, native)
    }
}
