//! The `caches` global (the Workers Cache API) over
//! [`hearth_cache::Cache`] (the data directory's store, or Redis in
//! cluster mode).
//!
//! The JS half (`cache.js`) gives `Cache` and `CacheStorage` workerd's
//! argument forms and checks; the natives here run the contract call to
//! completion on the isolate thread, as the KV adapter does. Every isolate
//! of every worker sharing a data directory shares one store, as a zone's
//! workers share its cache.

mod kind;

pub use kind::CacheKind;

use std::sync::Arc;

use hearth_cache::{Cache, CacheName, CachedResponse, RequestKey};
use hearth_core::ErrorClass;
use rquickjs::class::Trace;
use rquickjs::{Class, Ctx, Function, JsLifetime, Value};

use crate::bindings::support::{array_buffer, bytes_of, raise, throw};

const CACHE_JS: &str = include_str!("cache.js");

/// Installs `caches`, `Cache` and `CacheStorage` on the global object.
/// Without a store the API is present but stores nothing.
pub(crate) fn install<'js>(ctx: &Ctx<'js>, store: Option<&Arc<dyn Cache>>) -> rquickjs::Result<()> {
    let mut options = rquickjs::context::EvalOptions::default();
    options.global = true;
    options.strict = true;
    options.filename = Some("hearth:internal/cache.js".into());
    let factory: Function = hearth_webapi::builtin::eval_script(ctx, CACHE_JS, options)?;
    let native = match store {
        Some(store) => Class::instance(
            ctx.clone(),
            CacheNatives {
                store: store.clone(),
            },
        )?
        .into_value(),
        None => Value::new_null(ctx.clone()),
    };
    factory.call::<_, ()>((native,))
}

fn pairs(ctx: &Ctx<'_>, json: &str) -> rquickjs::Result<Vec<(String, String)>> {
    serde_json::from_str(json)
        .map_err(|e| throw(ctx, ErrorClass::TypeError, &format!("cache: headers: {e}")))
}

fn cache_name(name: &Option<String>) -> CacheName<'_> {
    match name {
        Some(n) => CacheName::Named(n),
        None => CacheName::Default,
    }
}

/// The natives `cache.js` calls.
#[derive(Trace, JsLifetime)]
#[rquickjs::class(rename = "CacheNatives")]
pub(crate) struct CacheNatives {
    #[qjs(skip_trace)]
    store: Arc<dyn Cache>,
}

#[rquickjs::methods]
impl CacheNatives {
    /// put(name, url, method, requestHeadersJson, status, statusText, headersJson, body)
    #[allow(clippy::too_many_arguments)]
    fn put<'js>(
        &self,
        ctx: Ctx<'js>,
        name: Option<String>,
        url: String,
        method: String,
        request_headers: String,
        status: u16,
        status_text: String,
        headers: String,
        body: Value<'js>,
    ) -> rquickjs::Result<()> {
        let request_headers = pairs(&ctx, &request_headers)?;
        let response = CachedResponse {
            status,
            status_text,
            headers: pairs(&ctx, &headers)?,
            body: bytes_of(&body)?.unwrap_or_default(),
        };
        let key = RequestKey {
            method: &method,
            url: &url,
            headers: &request_headers,
        };
        self.store
            .put(cache_name(&name), &key, response)
            .map(|_| ())
            .map_err(|e| raise(&ctx, e))
    }

    /// match(name, url, method, requestHeadersJson, ignoreMethod)
    ///   -> null | [status, statusText, headersJson, body]
    #[qjs(rename = "match")]
    fn lookup<'js>(
        &self,
        ctx: Ctx<'js>,
        name: Option<String>,
        url: String,
        method: String,
        request_headers: String,
        ignore_method: bool,
    ) -> rquickjs::Result<Value<'js>> {
        let request_headers = pairs(&ctx, &request_headers)?;
        let key = RequestKey {
            method: &method,
            url: &url,
            headers: &request_headers,
        };
        let found = self
            .store
            .lookup(cache_name(&name), &key, ignore_method)
            .map_err(|e| raise(&ctx, e))?;
        let Some(hit) = found else {
            return Ok(Value::new_null(ctx));
        };
        let out = rquickjs::Array::new(ctx.clone())?;
        out.set(0, hit.status)?;
        out.set(1, hit.status_text)?;
        out.set(
            2,
            serde_json::to_string(&hit.headers).unwrap_or_else(|_| "[]".into()),
        )?;
        out.set(3, array_buffer(&ctx, hit.body)?)?;
        Ok(out.into_value())
    }

    /// delete(name, url, method, requestHeadersJson, ignoreMethod) -> bool
    fn delete(
        &self,
        ctx: Ctx<'_>,
        name: Option<String>,
        url: String,
        method: String,
        request_headers: String,
        ignore_method: bool,
    ) -> rquickjs::Result<bool> {
        let request_headers = pairs(&ctx, &request_headers)?;
        let key = RequestKey {
            method: &method,
            url: &url,
            headers: &request_headers,
        };
        self.store
            .delete(cache_name(&name), &key, ignore_method)
            .map_err(|e| raise(&ctx, e))
    }
}
