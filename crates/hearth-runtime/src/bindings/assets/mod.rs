//! `env.<assets binding>`: `env.ASSETS.fetch(request)` over
//! [`hearth_assets::AssetServer`], the same code that serves assets in
//! front of the worker, so both answer alike.
//!
//! The JS half (`assets.js`) turns the argument into a
//! `Request` and the answer into a `Response` whose body streams the file
//! from disk as the worker reads it.

mod kind;

pub use kind::AssetsKind;

use std::fs::File;
use std::io::Read;
use std::sync::Arc;

use hearth_assets::{AssetRequest, AssetServer};
use hearth_core::ErrorClass;
use rquickjs::class::Trace;
use rquickjs::{Array, Class, Ctx, Function, JsLifetime, Object, Value};

use super::BindingAdapter;
use super::support::{array_buffer, install_factory, throw};

const ASSETS_JS: &str = include_str!("assets.js");

/// Largest chunk an asset body hands to JS in one read.
pub const ASSET_CHUNK_BYTES: usize = 64 * 1024;

/// Exposes the assets directory as `env[name]` (the `assets.binding`).
pub struct AssetsAdapter {
    name: String,
    server: Arc<AssetServer>,
}

impl AssetsAdapter {
    pub fn new(binding_name: impl Into<String>, server: Arc<AssetServer>) -> Self {
        Self {
            name: binding_name.into(),
            server,
        }
    }
}

impl std::fmt::Debug for AssetsAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AssetsAdapter")
            .field("name", &self.name)
            .field("dir", &self.server.root())
            .finish()
    }
}

/// An asset body not yet read to its end.
#[derive(Trace, JsLifetime)]
#[rquickjs::class(rename = "AssetBodyHandle")]
pub(crate) struct AssetBody {
    #[qjs(skip_trace)]
    file: Option<(File, u64)>,
}

impl BindingAdapter for AssetsAdapter {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &str {
        "assets"
    }

    fn backend(&self) -> String {
        format!("fs:{}", self.server.root().display())
    }

    fn install<'js>(&self, ctx: &Ctx<'js>, env: &Object<'js>) -> rquickjs::Result<()> {
        let native = Object::new(ctx.clone())?;

        // fetch(method, path, query, [[name, value]...]) -> [status, [[name, value]...], body | null]
        let server = self.server.clone();
        native.set(
            "fetch",
            Function::new(
                ctx.clone(),
                move |ctx: Ctx<'js>,
                      method: String,
                      path: String,
                      query: Option<String>,
                      headers: Vec<Vec<String>>|
                      -> rquickjs::Result<Value<'js>> {
                    let headers: Vec<(String, String)> = headers
                        .into_iter()
                        .filter_map(|mut pair| {
                            let value = pair.pop()?;
                            let name = pair.pop()?;
                            Some((name, value))
                        })
                        .collect();
                    let request = AssetRequest {
                        method: &method,
                        path: &path,
                        query: query.as_deref(),
                        headers: &headers,
                    };
                    let response = server
                        .fetch(&request)
                        .map_err(|e| throw(&ctx, ErrorClass::Error, &e.to_string()))?;
                    let out = Array::new(ctx.clone())?;
                    out.set(0, response.status)?;
                    let list = Array::new(ctx.clone())?;
                    for (i, (k, v)) in response.headers.iter().enumerate() {
                        let pair = Array::new(ctx.clone())?;
                        pair.set(0, k.as_str())?;
                        pair.set(1, v.as_str())?;
                        list.set(i, pair)?;
                    }
                    out.set(1, list)?;
                    match response.body {
                        Some(file) => out.set(
                            2,
                            Class::instance(ctx.clone(), AssetBody { file: Some(file) })?,
                        )?,
                        None => out.set(2, Value::new_null(ctx.clone()))?,
                    }
                    Ok(out.into_value())
                },
            )?,
        )?;

        // read(body) -> ArrayBuffer (up to ASSET_CHUNK_BYTES) | null at the end
        native.set(
            "read",
            Function::new(
                ctx.clone(),
                |ctx: Ctx<'js>, handle: Class<'js, AssetBody>| -> rquickjs::Result<Value<'js>> {
                    let mut h = handle.borrow_mut();
                    let Some((file, left)) = h.file.as_mut() else {
                        return Ok(Value::new_null(ctx));
                    };
                    let want = ASSET_CHUNK_BYTES.min(*left as usize);
                    let mut buf = vec![0u8; want];
                    let n = if want == 0 {
                        0
                    } else {
                        file.read(&mut buf).map_err(|e| {
                            throw(&ctx, ErrorClass::Error, &format!("reading an asset: {e}"))
                        })?
                    };
                    if n == 0 {
                        h.file = None;
                        return Ok(Value::new_null(ctx));
                    }
                    *left -= n as u64;
                    buf.truncate(n);
                    array_buffer(&ctx, buf)
                },
            )?,
        )?;

        native.set(
            "cancel",
            Function::new(ctx.clone(), |handle: Class<'js, AssetBody>| {
                handle.borrow_mut().file = None;
            })?,
        )?;

        install_factory(ctx, env, &self.name, "assets.js", ASSETS_JS, native)
    }
}
