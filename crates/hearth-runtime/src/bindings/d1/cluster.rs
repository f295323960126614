//! Cluster mode: a D1 database runs on one node at a time, placed by
//! lease like a Durable Object (namespace [`D1_NAMESPACE`], the database's
//! id as object id). A call made on the owner runs on its local copy,
//! which ships each commit to the cluster's log before answering
//! ([`hearth_d1::D1Database::open_replicated`]); a call made elsewhere is
//! sent to the owner over the signed internal channel (`/d1/<id>`).
//!
//! A session's call carries the session's newest bookmark (or its
//! constraint); the owner refuses a bookmark newer than its copy, so a read
//! after a bookmark observes that write, whichever node handed it out.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use hearth_cluster::Owner;
use hearth_d1::{D1Database, D1DatabaseSession, D1Error, D1Limits, D1Value, Replication};
use serde::{Deserialize, Serialize};

use crate::cluster::{ClusterNode, Sent};

/// Placement's key space for D1 databases; `:` keeps it apart from
/// Durable Object class names.
pub const D1_NAMESPACE: &str = "d1:";
/// The internal path of D1 calls (`/d1/<database id>`).
pub const D1_PATH: &str = "/d1/";

/// A bound value on the wire.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "t", content = "v", rename_all = "snake_case")]
pub(crate) enum WireValue {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    /// Base64.
    Blob(String),
}

impl From<D1Value> for WireValue {
    fn from(v: D1Value) -> Self {
        match v {
            D1Value::Null => Self::Null,
            D1Value::Integer(i) => Self::Integer(i),
            D1Value::Real(f) => Self::Real(f),
            D1Value::Text(t) => Self::Text(t),
            D1Value::Blob(b) => Self::Blob(BASE64.encode(b)),
        }
    }
}

impl WireValue {
    fn into_value(self) -> Result<D1Value, String> {
        Ok(match self {
            Self::Null => D1Value::Null,
            Self::Integer(i) => D1Value::Integer(i),
            Self::Real(f) => D1Value::Real(f),
            Self::Text(t) => D1Value::Text(t),
            Self::Blob(b) => D1Value::Blob(
                BASE64
                    .decode(b)
                    .map_err(|e| format!("bad BLOB parameter: {e}"))?,
            ),
        })
    }
}

fn values(params: Vec<WireValue>) -> Result<Vec<D1Value>, String> {
    params.into_iter().map(WireValue::into_value).collect()
}

/// What a worker asked of the database.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub(crate) enum D1Op {
    All {
        sql: String,
        params: Vec<WireValue>,
    },
    First {
        sql: String,
        params: Vec<WireValue>,
        column: Option<String>,
    },
    Raw {
        sql: String,
        params: Vec<WireValue>,
        column_names: bool,
    },
    Batch {
        statements: Vec<(String, Vec<WireValue>)>,
    },
    Exec {
        sql: String,
    },
}

/// One call, as sent to the owner.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct D1Call {
    /// A session's call: its newest bookmark, else its constraint (`""`
    /// for none).
    pub session: Option<String>,
    pub op: D1Op,
}

/// The owner's answer: the result as the JSON the binding hands to
/// JavaScript, or D1's error message; and the session's bookmark after it.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct D1Answer {
    pub result: Result<String, String>,
    pub bookmark: Option<String>,
}

impl D1Answer {
    fn error(message: impl Into<String>) -> Self {
        Self {
            result: Err(message.into()),
            bookmark: None,
        }
    }
}

/// One D1 database of the cluster, as this node reaches it.
pub struct ClusterD1 {
    node: Arc<ClusterNode>,
    id: String,
    /// Beside which this node keeps its copies (`d1/<id>.t<token>-...`).
    base: PathBuf,
    /// The copy this node runs while it holds the lease.
    local: Mutex<Option<Arc<D1Database>>>,
}

impl std::fmt::Debug for ClusterD1 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterD1")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

fn json<T: Serialize>(v: Result<T, D1Error>) -> Result<String, D1Error> {
    let v = v?;
    serde_json::to_string(&v).map_err(|e| D1Error::Sqlite {
        message: e.to_string(),
    })
}

impl ClusterD1 {
    pub fn new(node: Arc<ClusterNode>, id: &str, base: PathBuf) -> Arc<Self> {
        let d1 = Arc::new(Self {
            node: node.clone(),
            id: id.to_owned(),
            base,
            local: Mutex::new(None),
        });
        node.register_d1(id, &d1);
        d1
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Runs `call` where the database lives. Blocks the calling thread
    /// (an isolate's, as every D1 call does) for a forwarded round trip.
    pub(crate) fn call(&self, call: &D1Call) -> D1Answer {
        let lease = self.node.placement().lease();
        let deadline = Instant::now() + lease * 3;
        loop {
            let node = self.node.clone();
            let id = self.id.clone();
            let owner = self
                .node
                .block_on(async move { node.owner(D1_NAMESPACE, &id).await });
            let owner = match owner {
                Some(Ok(o)) => o,
                Some(Err(e)) => return D1Answer::error(format!("D1_ERROR: {e}")),
                None => return D1Answer::error("D1_ERROR: D1 placement did not answer"),
            };
            let (node, address) = match owner {
                Owner::Local { token } => return self.run_here(token, call),
                Owner::Remote { node, address } => (node, address),
            };
            let body = match serde_json::to_vec(call) {
                Ok(b) => Bytes::from(b),
                Err(e) => return D1Answer::error(format!("D1_ERROR: {e}")),
            };
            let path = format!("{D1_PATH}{}", self.id);
            let me = self.node.clone();
            let sent = self
                .node
                .block_on(async move { me.post(address, &path, body).await });
            match sent {
                Some(Sent::Answered(bytes)) => {
                    return serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                        D1Answer::error(format!(
                            "D1_ERROR: node {node} answered unreadably ({e}); the call may or may not have run"
                        ))
                    });
                }
                Some(Sent::NotRun(why)) if Instant::now() < deadline => {
                    tracing::debug!(target: "hearth::cluster", %node, "D1 call not run: {why}; asking placement again");
                    std::thread::sleep(lease / 5);
                }
                Some(Sent::NotRun(why)) => {
                    return D1Answer::error(format!(
                        "D1_ERROR: D1 database unavailable: node {node} ({address}) holds it and cannot be reached: {why}"
                    ));
                }
                Some(Sent::Refused(why)) => return D1Answer::error(format!("D1_ERROR: {why}")),
                Some(Sent::Lost(why)) => {
                    return D1Answer::error(format!(
                        "D1_ERROR: D1 call to node {node} ({address}) failed after it was sent, so it may or may not have run: {why}"
                    ));
                }
                None => {
                    return D1Answer::error(format!(
                        "D1_ERROR: D1 call to node {node} ({address}) got no answer; it may or may not have run"
                    ));
                }
            }
        }
    }

    /// Runs `call` on this node's copy, under the lease `token`.
    pub(crate) fn run_here(&self, token: i64, call: &D1Call) -> D1Answer {
        let db = match self.copy(token) {
            Ok(db) => db,
            Err(e) => return D1Answer::error(e.to_string()),
        };
        let answer = run(&db, call);
        if db.is_broken() {
            // Refused by the log: the lease may have moved.
            self.node.placement().forget(D1_NAMESPACE, &self.id);
        }
        answer
    }

    /// The copy opened under `token`, rebuilt from the log when there is
    /// none yet, when the lease moved since, or when the last one broke.
    fn copy(&self, token: i64) -> Result<Arc<D1Database>, D1Error> {
        let mut local = self.local.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(db) = local.as_ref()
            && db.lease_token() == Some(token)
            && !db.is_broken()
        {
            return Ok(db.clone());
        }
        // Closed before its replacement is rebuilt.
        local.take();
        let db = Arc::new(D1Database::open_replicated(
            &self.base,
            D1Limits::default(),
            Replication {
                log: self.node.do_log(),
                namespace: D1_NAMESPACE.to_owned(),
                id: self.id.clone(),
                node: self.node.node_id().to_owned(),
                token,
            },
        )?);
        *local = Some(db.clone());
        Ok(db)
    }
}

/// Runs one call on the owner's copy.
fn run(db: &D1Database, call: &D1Call) -> D1Answer {
    let session = match &call.session {
        None => None,
        Some(s) => {
            let start = Some(s.as_str()).filter(|s| !s.is_empty());
            match db.with_session(start) {
                Ok(session) => Some(session),
                Err(e) => return D1Answer::error(e.to_string()),
            }
        }
    };
    if let Some(b) = call
        .session
        .as_deref()
        .filter(|b| hearth_d1::is_bookmark(b))
        && let Err(e) = db.check_bookmark(b)
    {
        return D1Answer::error(e.to_string());
    }
    let result = match run_op(db, session.as_ref(), call.op.clone()) {
        Ok(r) => r,
        Err(message) => return D1Answer::error(message),
    };
    D1Answer {
        result: result.map_err(|e| e.to_string()),
        bookmark: session.and_then(|s| s.get_bookmark()),
    }
}

fn run_op(
    db: &D1Database,
    session: Option<&D1DatabaseSession>,
    op: D1Op,
) -> Result<Result<String, D1Error>, String> {
    let prepare = |sql: String, params: Vec<WireValue>| -> Result<_, String> {
        let params = values(params)?;
        Ok(match session {
            Some(s) => s.prepare(sql).bind(params),
            None => db.prepare(sql).bind(params),
        })
    };
    Ok(match op {
        D1Op::All { sql, params } => json(prepare(sql, params)?.all()),
        D1Op::First {
            sql,
            params,
            column: Some(c),
        } => json(prepare(sql, params)?.first_column(&c)),
        D1Op::First {
            sql,
            params,
            column: None,
        } => json(prepare(sql, params)?.first()),
        D1Op::Raw {
            sql,
            params,
            column_names,
        } => json(prepare(sql, params)?.raw(column_names)),
        D1Op::Batch { statements } => {
            let mut prepared = Vec::with_capacity(statements.len());
            for (sql, params) in statements {
                prepared.push(prepare(sql, params)?);
            }
            json(match session {
                Some(s) => s.batch(&prepared),
                None => db.batch(&prepared),
            })
        }
        D1Op::Exec { sql } => json(db.exec(&sql)),
    })
}
