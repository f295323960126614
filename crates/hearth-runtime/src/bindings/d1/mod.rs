//! `env.<D1 binding>`: a D1 database over [`hearth_d1::D1Database`].
//!
//! The JS half (`d1.js`) keeps prepared statements as plain
//! `{sql, params}` values (as the Workers binding does, so a statement can be
//! bound many times and passed to `batch`), checks bound value types, and
//! attaches D1's `cause` to errors. The natives here run the queries. Results
//! cross as JSON text, which gives exactly D1's number handling: integers come
//! back as JS numbers, losing precision past 2^53 like D1's JSON transport.
//! Queries run synchronously on the isolate thread.

pub(crate) mod cluster;
mod kind;

pub use kind::D1Kind;

use std::sync::Arc;

use hearth_core::ErrorClass;
use hearth_d1::{D1Database, D1DatabaseSession, D1PreparedStatement, D1Value, SessionConstraint};
use rquickjs::class::Trace;
use rquickjs::{Class, Ctx, Function, JsLifetime, Object, Value};
use serde::Serialize;

use self::cluster::{ClusterD1, D1Call, D1Op, WireValue};
use super::BindingAdapter;
use super::support::{bytes_of, install_factory, raise, throw};

const D1_JS: &str = include_str!("d1.js");

/// Exposes one D1 database as `env[name]`.
pub struct D1Adapter {
    name: String,
    source: Source,
    backend: String,
}

/// Where the binding's calls run.
#[derive(Clone)]
enum Source {
    Local(Arc<D1Database>),
    /// Cluster mode: wherever the database lives.
    Cluster(Arc<ClusterD1>),
}

impl D1Adapter {
    pub fn new(binding_name: impl Into<String>, database: Arc<D1Database>) -> Self {
        let backend = format!("sqlite:{}", database.path().display());
        Self {
            name: binding_name.into(),
            source: Source::Local(database),
            backend,
        }
    }

    /// Cluster mode: the database `d1` of the cluster.
    pub fn clustered(binding_name: impl Into<String>, d1: Arc<ClusterD1>) -> Self {
        Self {
            name: binding_name.into(),
            backend: format!("cluster:d1/{}", d1.id()),
            source: Source::Cluster(d1),
        }
    }

    /// The local database; `None` in cluster mode.
    pub fn database(&self) -> Option<&Arc<D1Database>> {
        match &self.source {
            Source::Local(db) => Some(db),
            Source::Cluster(_) => None,
        }
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
    session: SessionKind,
}

enum SessionKind {
    Local(D1DatabaseSession),
    /// Cluster mode: the session's state travels with each call.
    Cluster(ClusterSession),
}

struct ClusterSession {
    /// `""`, `first-primary`, `first-unconstrained` or the starting bookmark.
    constraint: String,
    /// The newest bookmark seen; bookmarks sort as text.
    bookmark: std::sync::Mutex<Option<String>>,
}

impl ClusterSession {
    fn start(constraint: Option<&str>) -> Result<Self, hearth_d1::D1Error> {
        let parsed = SessionConstraint::parse(constraint)?;
        let bookmark = match parsed {
            SessionConstraint::Bookmark(b) => Some(b),
            _ => None,
        };
        Ok(Self {
            constraint: constraint.map(str::trim).unwrap_or("").to_owned(),
            bookmark: std::sync::Mutex::new(bookmark),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.bookmark.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What the owner starts the call's session from.
    fn state(&self) -> String {
        self.lock()
            .clone()
            .unwrap_or_else(|| self.constraint.clone())
    }

    fn observe(&self, bookmark: Option<String>) {
        let mut current = self.lock();
        if let Some(b) = bookmark
            && current.as_ref().is_none_or(|c| *c < b)
        {
            *current = Some(b);
        }
    }
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
    match session.as_ref().map(|s| s.borrow()).as_deref() {
        Some(SessionHandle {
            session: SessionKind::Local(s),
        }) => Target::Session(s.clone()),
        // A cluster session never reaches a local database: both come
        // from the same binding.
        _ => Target::Database(db),
    }
}

/// Cluster mode: runs `op` where the database lives; the result's JSON,
/// or D1's error thrown.
fn cluster_call<'js>(
    ctx: &Ctx<'js>,
    d1: &ClusterD1,
    session: Option<Class<'js, SessionHandle>>,
    op: D1Op,
) -> rquickjs::Result<String> {
    let state = session.as_ref().and_then(|s| match &s.borrow().session {
        SessionKind::Cluster(c) => Some(c.state()),
        SessionKind::Local(_) => None,
    });
    let answer = d1.call(&D1Call { session: state, op });
    if let Some(s) = &session
        && let SessionKind::Cluster(c) = &s.borrow().session
    {
        c.observe(answer.bookmark);
    }
    answer
        .result
        .map_err(|message| throw(ctx, ErrorClass::Error, &message))
}

fn wire(values: Vec<D1Value>) -> Vec<WireValue> {
    values.into_iter().map(WireValue::from).collect()
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
        install_statements(&self.source, ctx, &native)?;
        install_database(&self.source, ctx, &native)?;
        install_factory(ctx, env, &self.name, "d1.js", D1_JS, native)
    }
}

/// The natives of a prepared statement: `all`, `first`, `raw`.
fn install_statements<'js>(
    from: &Source,
    ctx: &Ctx<'js>,
    native: &Object<'js>,
) -> rquickjs::Result<()> {
    // all(session, sql, params) -> JSON D1Result (also used by run())
    let source = from.clone();
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
                let db = match &source {
                    Source::Local(db) => db,
                    Source::Cluster(d1) => {
                        let op = D1Op::All {
                            sql,
                            params: wire(params),
                        };
                        return cluster_call(&ctx, d1, session, op);
                    }
                };
                let stmt = target(db, session).prepare(sql, params);
                let result = stmt.all().map_err(|e| raise(&ctx, e))?;
                to_json(&ctx, &result)
            },
        )?,
    )?;

    // first(session, sql, params, column) -> JSON row | value | null
    let source = from.clone();
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
                let db = match &source {
                    Source::Local(db) => db,
                    Source::Cluster(d1) => {
                        let op = D1Op::First {
                            sql,
                            params: wire(params),
                            column,
                        };
                        return cluster_call(&ctx, d1, session, op);
                    }
                };
                let stmt = target(db, session).prepare(sql, params);
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
    let source = from.clone();
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
                let db = match &source {
                    Source::Local(db) => db,
                    Source::Cluster(d1) => {
                        let op = D1Op::Raw {
                            sql,
                            params: wire(params),
                            column_names,
                        };
                        return cluster_call(&ctx, d1, session, op);
                    }
                };
                let stmt = target(db, session).prepare(sql, params);
                let rows = stmt.raw(column_names).map_err(|e| raise(&ctx, e))?;
                to_json(&ctx, &rows)
            },
        )?,
    )?;

    Ok(())
}

/// The natives of the database and its sessions: `batch`, `exec`,
/// `session`, `bookmark`.
fn install_database<'js>(
    from: &Source,
    ctx: &Ctx<'js>,
    native: &Object<'js>,
) -> rquickjs::Result<()> {
    // batch(session, [[sql, params], ...]) -> array of D1Result. The
    // array is built while the transaction is open and the batch commits
    // only once it exists: a heap too small for the results rolls the
    // batch back rather than failing after the commit.
    let source = from.clone();
    native.set(
        "batch",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>,
                  session: Option<Class<'js, SessionHandle>>,
                  statements: Vec<rquickjs::Array<'js>>|
                  -> rquickjs::Result<Value<'js>> {
                let mut bound = Vec::with_capacity(statements.len());
                for pair in statements {
                    let sql: String = pair.get(0)?;
                    let params: Vec<Value<'js>> = pair.get(1)?;
                    bound.push((sql, to_d1_values(&ctx, &params)?));
                }
                let db = match &source {
                    Source::Local(db) => db,
                    Source::Cluster(d1) => {
                        let statements = bound
                            .into_iter()
                            .map(|(sql, params)| (sql, wire(params)))
                            .collect();
                        let op = D1Op::Batch { statements };
                        let json = cluster_call(&ctx, d1, session, op)?;
                        return ctx.json_parse(json);
                    }
                };
                let target = target(db, session);
                let prepared: Vec<_> = bound
                    .into_iter()
                    .map(|(sql, params)| target.prepare(sql, params))
                    .collect();
                let deliver = |results: Vec<hearth_d1::D1Result>| deliver(&ctx, results);
                match &target {
                    Target::Database(db) => db.batch_delivering(&prepared, deliver),
                    Target::Session(s) => s.batch_delivering(&prepared, deliver),
                }
                .map_err(|e| raise(&ctx, e))
            },
        )?,
    )?;

    let source = from.clone();
    native.set(
        "exec",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, sql: String| -> rquickjs::Result<String> {
                let db = match &source {
                    Source::Local(db) => db,
                    Source::Cluster(d1) => {
                        return cluster_call(&ctx, d1, None, D1Op::Exec { sql });
                    }
                };
                let result = db.exec(&sql).map_err(|e| raise(&ctx, e))?;
                to_json(&ctx, &result)
            },
        )?,
    )?;

    let source = from.clone();
    native.set(
        "session",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>,
                  constraint: Option<String>|
                  -> rquickjs::Result<Class<'js, SessionHandle>> {
                let session = match &source {
                    Source::Local(db) => db
                        .with_session(constraint.as_deref())
                        .map(SessionKind::Local),
                    Source::Cluster(_) => {
                        ClusterSession::start(constraint.as_deref()).map(SessionKind::Cluster)
                    }
                }
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
                match &handle.borrow().session {
                    SessionKind::Local(s) => s.get_bookmark(),
                    SessionKind::Cluster(c) => c.lock().clone(),
                }
            },
        )?,
    )?;

    Ok(())
}
