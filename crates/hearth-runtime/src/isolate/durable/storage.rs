//! The storage natives `js/durable.js` calls for the objects this isolate
//! hosts: opening an object's storage, its key-value, SQL and alarm APIs,
//! and transactions. Storage is addressed by the handle `open` returns.

use std::rc::Rc;

use hearth_do::{DoError, ListOptions, SqlValue};
use rquickjs::class::Trace;
use rquickjs::promise::{MaybePromise, PromiseState};
use rquickjs::{Array, ArrayBuffer, Ctx, Exception, Function, JsLifetime, Value};

use super::super::host::Host;
use super::{err_msg, objects};
use crate::durable::adapter::raise;

/// `store` in `durable.js`.
#[derive(Trace, JsLifetime)]
#[rquickjs::class(rename = "DurableObjectStorageNatives")]
pub(super) struct StorageNatives {
    #[qjs(skip_trace)]
    host: Rc<Host>,
}

impl StorageNatives {
    pub(super) fn new(host: Rc<Host>) -> Self {
        Self { host }
    }
}

#[rquickjs::methods]
impl StorageNatives {
    /// Opens the storage of object `id` of `class`; returns its handle.
    fn open(&self, ctx: Ctx<'_>, class: String, id: String) -> rquickjs::Result<u32> {
        let h = &self.host;
        let objects = objects(&ctx, h)?;
        let ns = objects.storage_namespace(&class).ok_or_else(|| {
            err_msg(
                &ctx,
                &format!("Durable Object class \"{class}\" is not configured"),
            )
        })?;
        let id = ns.id_from_string(&id).map_err(|e| raise(&ctx, &e))?;
        let storage = ns.storage(&id).map_err(|e| raise(&ctx, &e))?;
        let handle = h.durable.next_handle.get();
        h.durable.next_handle.set(handle.wrapping_add(1).max(1));
        h.durable
            .storages
            .borrow_mut()
            .insert(handle, Rc::new(storage));
        Ok(handle)
    }

    fn close(&self, ctx: Ctx<'_>, handle: u32) -> rquickjs::Result<()> {
        let h = &self.host;
        let storage = h.durable.storages.borrow_mut().remove(&handle);
        if let Some(s) = storage {
            h.durable
                .flush_handle(handle, &s)
                .map_err(|e| raise(&ctx, &e))?;
        }
        Ok(())
    }

    fn flush(&self, ctx: Ctx<'_>, handle: u32) -> rquickjs::Result<()> {
        let s = self.host.durable.storage(&ctx, handle)?;
        self.host
            .durable
            .flush_handle(handle, &s)
            .map_err(|e| raise(&ctx, &e))
    }

    /// Whether an answer now must wait for a commit.
    fn pending(&self, ctx: Ctx<'_>, handle: u32) -> rquickjs::Result<bool> {
        let s = self.host.durable.storage(&ctx, handle)?;
        Ok(self.host.durable.pending(handle, &s))
    }

    /// A new event starts while answers are held: see
    /// `DurableObjectStorage::begin_segment`. `false`: commit them first.
    fn segment(&self, ctx: Ctx<'_>, handle: u32) -> rquickjs::Result<bool> {
        let s = self.host.durable.storage(&ctx, handle)?;
        if self.host.durable.failed.borrow().contains_key(&handle) {
            return Ok(false);
        }
        s.begin_segment().map_err(|e| raise(&ctx, &e))
    }

    #[qjs(rename = "kvGet")]
    fn kv_get<'js>(
        &self,
        ctx: Ctx<'js>,
        handle: u32,
        keys: Vec<String>,
        multi: bool,
    ) -> rquickjs::Result<Array<'js>> {
        let s = self.host.durable.storage(&ctx, handle)?;
        let found = if multi {
            s.get_many(&keys).map_err(|e| raise(&ctx, &e))?
        } else {
            let key = keys.into_iter().next().unwrap_or_default();
            match s.get(&key).map_err(|e| raise(&ctx, &e))? {
                Some(v) => vec![(key, v)],
                None => Vec::new(),
            }
        };
        pairs_to_js(&ctx, found)
    }

    #[qjs(rename = "kvPut")]
    fn kv_put(
        &self,
        ctx: Ctx<'_>,
        handle: u32,
        pairs: Vec<Vec<String>>,
        multi: bool,
    ) -> rquickjs::Result<()> {
        let s = self.host.durable.storage(&ctx, handle)?;
        // Each entry is [key, encoded value, size]: the size is the value's
        // V8-serialized size, which Cloudflare's limits measure (the JSON
        // encoding carries bytes as base64, so it is larger).
        let mut entries: Vec<(String, Vec<u8>)> = Vec::with_capacity(pairs.len());
        let mut sizes: Vec<usize> = Vec::with_capacity(pairs.len());
        for p in pairs {
            let mut p = p.into_iter();
            let (Some(k), Some(v)) = (p.next(), p.next()) else {
                continue;
            };
            let size = p.next().and_then(|n| n.parse::<usize>().ok());
            sizes.push(size.unwrap_or(v.len()));
            entries.push((k, v.into_bytes()));
        }
        if !multi {
            entries.truncate(1);
            sizes.truncate(1);
        }
        s.put_many_measured(&entries, &sizes)
            .map_err(|e| raise(&ctx, &e))
    }

    #[qjs(rename = "kvDelete")]
    fn kv_delete(
        &self,
        ctx: Ctx<'_>,
        handle: u32,
        keys: Vec<String>,
        multi: bool,
    ) -> rquickjs::Result<f64> {
        let s = self.host.durable.storage(&ctx, handle)?;
        if multi {
            let n = s.delete_many(&keys).map_err(|e| raise(&ctx, &e))?;
            Ok(n as f64)
        } else {
            let key = keys.into_iter().next().unwrap_or_default();
            let found = s.delete(&key).map_err(|e| raise(&ctx, &e))?;
            Ok(if found { 1.0 } else { 0.0 })
        }
    }

    /// kvList(handle, [start, startAfter, end, prefix, reverse, limit])
    #[qjs(rename = "kvList")]
    fn kv_list<'js>(
        &self,
        ctx: Ctx<'js>,
        handle: u32,
        opts: Array<'js>,
    ) -> rquickjs::Result<Array<'js>> {
        let start: Option<String> = opts.get(0)?;
        let start_after: Option<String> = opts.get(1)?;
        let end: Option<String> = opts.get(2)?;
        let prefix: Option<String> = opts.get(3)?;
        let reverse: bool = opts.get(4)?;
        let limit: Option<f64> = opts.get(5)?;
        let s = self.host.durable.storage(&ctx, handle)?;
        let limit = match limit {
            Some(l) if l.is_nan() || l < 1.0 => {
                return Err(raise(&ctx, &DoError::ListLimitNotPositive));
            }
            Some(l) => Some(l as u64),
            None => None,
        };
        let options = ListOptions {
            start,
            start_after,
            end,
            prefix,
            reverse,
            limit,
        };
        let found = s.list(&options).map_err(|e| raise(&ctx, &e))?;
        pairs_to_js(&ctx, found)
    }

    #[qjs(rename = "kvDeleteAll")]
    fn kv_delete_all(&self, ctx: Ctx<'_>, handle: u32) -> rquickjs::Result<()> {
        let s = self.host.durable.storage(&ctx, handle)?;
        s.delete_all(false).map_err(|e| raise(&ctx, &e))
    }

    #[qjs(rename = "getAlarm")]
    fn get_alarm(&self, ctx: Ctx<'_>, handle: u32) -> rquickjs::Result<Option<f64>> {
        let s = self.host.durable.storage(&ctx, handle)?;
        let at = s.get_alarm().map_err(|e| raise(&ctx, &e))?;
        Ok(at.map(|v| v as f64))
    }

    #[qjs(rename = "setAlarm")]
    fn set_alarm(&self, ctx: Ctx<'_>, handle: u32, ms: f64) -> rquickjs::Result<()> {
        let s = self.host.durable.storage(&ctx, handle)?;
        s.set_alarm(ms as i64).map_err(|e| raise(&ctx, &e))
    }

    #[qjs(rename = "deleteAlarm")]
    fn delete_alarm(&self, ctx: Ctx<'_>, handle: u32) -> rquickjs::Result<()> {
        let s = self.host.durable.storage(&ctx, handle)?;
        s.delete_alarm().map_err(|e| raise(&ctx, &e))
    }

    /// sqlExec(handle, query, bindings) -> [columns, rows, rowsRead, rowsWritten]
    #[qjs(rename = "sqlExec")]
    fn sql_exec<'js>(
        &self,
        ctx: Ctx<'js>,
        handle: u32,
        query: String,
        bindings: Vec<Value<'js>>,
    ) -> rquickjs::Result<Array<'js>> {
        let s = self.host.durable.storage(&ctx, handle)?;
        let params = bindings
            .iter()
            .map(|v| sql_value(&ctx, v))
            .collect::<rquickjs::Result<Vec<_>>>()?;
        let mut cursor = s.sql_exec(&query, &params).map_err(|e| raise(&ctx, &e))?;
        let columns = cursor.column_names().to_vec();
        let read = cursor.rows_read() as f64;
        let written = cursor.rows_written() as f64;
        let rows = Array::new(ctx.clone())?;
        for (i, row) in cursor.raw().enumerate() {
            let r = Array::new(ctx.clone())?;
            for (j, v) in row.into_iter().enumerate() {
                r.set(j, js_sql_value(&ctx, v)?)?;
            }
            rows.set(i, r)?;
        }
        let out = Array::new(ctx.clone())?;
        out.set(0, columns)?;
        out.set(1, rows)?;
        out.set(2, read)?;
        out.set(3, written)?;
        Ok(out)
    }

    #[qjs(rename = "databaseSize")]
    fn database_size(&self, ctx: Ctx<'_>, handle: u32) -> rquickjs::Result<f64> {
        let s = self.host.durable.storage(&ctx, handle)?;
        let size = s.database_size().map_err(|e| raise(&ctx, &e))?;
        Ok(size as f64)
    }

    /// transactionSync(fn)
    #[qjs(rename = "txnSync")]
    fn txn_sync<'js>(
        &self,
        ctx: Ctx<'js>,
        handle: u32,
        f: Function<'js>,
    ) -> rquickjs::Result<Value<'js>> {
        let s = self.host.durable.storage(&ctx, handle)?;
        let result = s.transaction_sync(|_| f.call::<_, Value>(()).map_err(TxError::Js));
        finish_txn(&ctx, result)
    }

    /// transaction(async fn): the callback runs to completion inside the
    /// transaction, its storage awaits settling as microtasks here.
    #[qjs(rename = "txnAsync")]
    fn txn_async<'js>(
        &self,
        ctx: Ctx<'js>,
        handle: u32,
        f: Function<'js>,
    ) -> rquickjs::Result<Value<'js>> {
        let s = self.host.durable.storage(&ctx, handle)?;
        let result = s.transaction(|_| {
            let p = MaybePromise::from_value(f.call::<_, Value>(()).map_err(TxError::Js)?);
            settle_in_transaction(&ctx, p)
        });
        finish_txn(&ctx, result)
    }
}

/// Runs microtasks until a transaction callback's promise settles.
fn settle_in_transaction<'js>(
    ctx: &Ctx<'js>,
    p: MaybePromise<'js>,
) -> Result<Value<'js>, TxError<'js>> {
    loop {
        match p.state() {
            PromiseState::Pending => {
                if !ctx.execute_pending_job() {
                    return Err(TxError::Stuck);
                }
            }
            PromiseState::Resolved => {
                return match p.result::<Value>() {
                    Some(Ok(v)) => Ok(v),
                    Some(Err(e)) => Err(TxError::Js(e)),
                    None => Err(TxError::Stuck),
                };
            }
            PromiseState::Rejected => {
                let reason = match p.result::<Value>() {
                    Some(Err(rquickjs::Error::Exception)) => ctx.catch(),
                    Some(Ok(v)) => v,
                    _ => Value::new_undefined(ctx.clone()),
                };
                return Err(TxError::Rejected(reason));
            }
        }
    }
}

fn sql_value<'js>(ctx: &Ctx<'js>, v: &Value<'js>) -> rquickjs::Result<SqlValue> {
    if v.is_null() || v.is_undefined() {
        return Ok(SqlValue::Null);
    }
    if let Some(n) = v.as_int() {
        return Ok(SqlValue::Integer(i64::from(n)));
    }
    if let Some(f) = v.as_float() {
        if f.fract() == 0.0 && f.abs() < 9.007_199_254_740_992e15 {
            return Ok(SqlValue::Integer(f as i64));
        }
        return Ok(SqlValue::Real(f));
    }
    if let Some(s) = v.as_string() {
        return Ok(SqlValue::Text(s.to_string()?));
    }
    if let Some(b) = v.as_big_int() {
        return Ok(SqlValue::Integer(b.clone().to_i64()?));
    }
    if let Some(buf) = crate::bindings::support::as_array_buffer(v) {
        // SAFETY: copied before control returns to JS.
        let bytes = unsafe { buf.as_bytes() }
            .map(<[u8]>::to_vec)
            .unwrap_or_default();
        return Ok(SqlValue::Blob(bytes));
    }
    Err(Exception::throw_type(
        ctx,
        "Unsupported type for SQL binding: expected null, a number, a bigint, a string or an ArrayBuffer",
    ))
}

fn js_sql_value<'js>(ctx: &Ctx<'js>, v: SqlValue) -> rquickjs::Result<Value<'js>> {
    Ok(match v {
        SqlValue::Null => Value::new_null(ctx.clone()),
        SqlValue::Integer(i) => Value::new_number(ctx.clone(), i as f64),
        SqlValue::Real(f) => Value::new_number(ctx.clone(), f),
        SqlValue::Text(s) => rquickjs::String::from_str(ctx.clone(), &s)?.into_value(),
        SqlValue::Blob(b) => ArrayBuffer::new(ctx.clone(), b)?.into_value(),
    })
}

fn pairs_to_js<'js>(ctx: &Ctx<'js>, pairs: Vec<(String, Vec<u8>)>) -> rquickjs::Result<Array<'js>> {
    let out = Array::new(ctx.clone())?;
    for (i, (k, v)) in pairs.into_iter().enumerate() {
        let pair = Array::new(ctx.clone())?;
        pair.set(0, k)?;
        pair.set(1, String::from_utf8_lossy(&v).into_owned())?;
        out.set(i, pair)?;
    }
    Ok(out)
}

/// What a transaction callback failed with.
enum TxError<'js> {
    Storage(DoError),
    Js(rquickjs::Error),
    Rejected(Value<'js>),
    Stuck,
}

impl From<DoError> for TxError<'_> {
    fn from(e: DoError) -> Self {
        TxError::Storage(e)
    }
}

fn finish_txn<'js>(
    ctx: &Ctx<'js>,
    result: Result<Value<'js>, TxError<'js>>,
) -> rquickjs::Result<Value<'js>> {
    match result {
        Ok(v) => Ok(v),
        Err(TxError::Storage(e)) => Err(raise(ctx, &e)),
        Err(TxError::Js(e)) => Err(e),
        Err(TxError::Rejected(reason)) => Err(ctx.throw(reason)),
        Err(TxError::Stuck) => Err(err_msg(
            ctx,
            "transaction() callback awaited something other than this object's storage; it was rolled back",
        )),
    }
}
