//! `env.<KV binding>`: a Workers KV namespace over [`hearth_kv::KvNamespace`].
//!
//! The JS half (`kv.js`) gives the object Workers' exact shape
//! (argument forms, `Map` results, streams, `JSON.parse` for `json`); this
//! file holds the natives it calls. Each native runs the contract call to
//! completion on the isolate thread, so every method's promise settles in
//! the same turn; a slow disk therefore stalls the isolate for that time.

mod kind;

pub use kind::{KvKind, open_namespace};

use std::sync::Arc;

use hearth_core::ErrorClass;
use hearth_kv::{GetOptions, KvNamespace, KvValue, KvValueType, ListOptions, PutOptions};
use rquickjs::class::Trace;
use rquickjs::{Class, Ctx, JsLifetime, Object, Value};
use serde_json::json;

use super::BindingAdapter;
use super::support::{array_buffer, bytes_of, install_factory, raise, throw};

const KV_JS: &str = include_str!("kv.js");

/// Exposes one KV namespace as `env[name]`.
pub struct KvAdapter {
    name: String,
    namespace: Arc<KvNamespace>,
    backend: String,
}

impl KvAdapter {
    pub fn new(binding_name: impl Into<String>, namespace: Arc<KvNamespace>) -> Self {
        Self {
            name: binding_name.into(),
            namespace,
            backend: "sqlite".into(),
        }
    }

    /// Sets what the health report says about where the data lives, e.g.
    /// `sqlite:/data/kv/MY_KV.sqlite`.
    pub fn with_backend(mut self, backend: impl Into<String>) -> Self {
        self.backend = backend.into();
        self
    }

    pub fn namespace(&self) -> &Arc<KvNamespace> {
        &self.namespace
    }
}

impl std::fmt::Debug for KvAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvAdapter")
            .field("name", &self.name)
            .field("backend", &self.backend)
            .finish()
    }
}

impl BindingAdapter for KvAdapter {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &str {
        "kv_namespace"
    }

    fn backend(&self) -> String {
        self.backend.clone()
    }

    fn install<'js>(&self, ctx: &Ctx<'js>, env: &Object<'js>) -> rquickjs::Result<()> {
        let native = Class::instance(
            ctx.clone(),
            KvNatives {
                namespace: self.namespace.clone(),
            },
        )?;
        install_factory(ctx, env, &self.name, "kv.js", KV_JS, native.into_inner())
    }
}

/// The natives `kv.js` calls, one method per namespace operation. Each
/// runs the contract call to completion and raises its error as Workers does.
#[derive(Trace, JsLifetime)]
#[rquickjs::class(rename = "KvNatives")]
pub(crate) struct KvNatives {
    #[qjs(skip_trace)]
    namespace: Arc<KvNamespace>,
}

#[rquickjs::methods]
impl KvNatives {
    /// get(key, type, cacheTtl) -> null | [value, metadataJson | null]
    fn get<'js>(
        &self,
        ctx: Ctx<'js>,
        key: String,
        value_type: String,
        cache_ttl: Option<f64>,
    ) -> rquickjs::Result<Value<'js>> {
        let entry = self
            .namespace
            .get_entry(&key, cache_ttl)
            .map_err(|e| raise(&ctx, e))?;
        let Some(entry) = entry else {
            return Ok(Value::new_null(ctx));
        };
        // Like Workers, the type is looked at only once a value was found.
        let value_type = KvValueType::parse(&value_type).map_err(|e| raise(&ctx, e))?;
        let metadata = match &entry.metadata {
            Some(m) => Value::from_string(rquickjs::String::from_str(ctx.clone(), &m.to_string())?),
            None => Value::new_null(ctx.clone()),
        };
        let value = match value_type {
            // `json` is parsed by the JS half so a bad value raises the
            // engine's own SyntaxError.
            KvValueType::Text | KvValueType::Json => {
                rquickjs::String::from_str(ctx.clone(), &entry.text())?.into_value()
            }
            KvValueType::ArrayBuffer | KvValueType::Stream => array_buffer(&ctx, entry.value)?,
        };
        let out = rquickjs::Array::new(ctx.clone())?;
        out.set(0, value)?;
        out.set(1, metadata)?;
        Ok(out.into_value())
    }

    /// getBulk(keys, type, cacheTtl, withMetadata) -> JSON [[key, entry | null], ...]
    #[qjs(rename = "getBulk")]
    fn get_bulk(
        &self,
        ctx: Ctx<'_>,
        keys: Vec<String>,
        value_type: String,
        cache_ttl: Option<f64>,
        with_metadata: bool,
    ) -> rquickjs::Result<String> {
        let value_type = KvValueType::parse_bulk(&value_type).map_err(|e| raise(&ctx, e))?;
        let mut options = GetOptions::of_type(value_type);
        options.cache_ttl = cache_ttl;
        let found = self
            .namespace
            .get_bulk_with_metadata(&keys, &options)
            .map_err(|e| raise(&ctx, e))?;
        let rows: Vec<serde_json::Value> = found
            .into_iter()
            .map(|(key, entry)| {
                let entry = entry.map(|e| {
                    let value = match e.value {
                        KvValue::Json(v) => v,
                        KvValue::Text(s) => serde_json::Value::String(s),
                        // Bulk reads decode only text and json.
                        _ => serde_json::Value::Null,
                    };
                    if with_metadata {
                        json!({ "value": value, "metadata": e.metadata })
                    } else {
                        value
                    }
                });
                json!([key, entry])
            })
            .collect();
        Ok(serde_json::Value::Array(rows).to_string())
    }

    /// put(key, bytes | string, expiration, expirationTtl, metadataJson)
    fn put<'js>(
        &self,
        ctx: Ctx<'js>,
        key: String,
        value: Value<'js>,
        expiration: Option<f64>,
        expiration_ttl: Option<f64>,
        metadata: Option<String>,
    ) -> rquickjs::Result<()> {
        let Some(bytes) = bytes_of(&value)? else {
            return Err(throw(
                &ctx,
                ErrorClass::TypeError,
                "KV put() value must be a string, ArrayBuffer, ArrayBufferView or ReadableStream.",
            ));
        };
        let metadata = match metadata {
            Some(m) => Some(serde_json::from_str(&m).map_err(|e| {
                throw(
                    &ctx,
                    ErrorClass::TypeError,
                    &format!("KV put() metadata is not serializable: {e}"),
                )
            })?),
            None => None,
        };
        let options = PutOptions {
            expiration,
            expiration_ttl,
            metadata,
        };
        self.namespace
            .put(&key, bytes, &options)
            .map_err(|e| raise(&ctx, e))
    }

    fn delete(&self, ctx: Ctx<'_>, key: String) -> rquickjs::Result<()> {
        self.namespace.delete(&key).map_err(|e| raise(&ctx, e))
    }

    /// list(prefix, limit, cursor) -> JSON of the Workers result
    fn list(
        &self,
        ctx: Ctx<'_>,
        prefix: Option<String>,
        limit: Option<f64>,
        cursor: Option<String>,
    ) -> rquickjs::Result<String> {
        let options = ListOptions {
            prefix,
            limit,
            cursor,
        };
        let result = self.namespace.list(&options).map_err(|e| raise(&ctx, e))?;
        serde_json::to_string(&result)
            .map_err(|e| throw(&ctx, ErrorClass::Error, &format!("KV list result: {e}")))
    }
}
