//! Web platform globals for QuickJS: the APIs a Cloudflare Workers script
//! expects to find on `globalThis` (URL, encoding, events, streams, Blob,
//! FormData, Headers/Request/Response, WebCrypto, structuredClone).
//!
//! Most of it is JavaScript in `js/*.js`, evaluated once per context by
//! [`install`]; parsing, encoding, base64, randomness and cryptography are
//! Rust natives handed to that script and never exposed as globals.
//!
//! # Host contract
//!
//! The runtime moves requests and responses across the boundary with the
//! functions in this module rather than by running user-visible JS:
//!
//! * [`new_request`] builds a `Request` from the method, absolute URL, header
//!   pairs, optional body bytes and optional `cf` object the HTTP front
//!   parsed. It skips URL parsing and header validation (the host already did
//!   both) and creates the `Headers` object and body stream lazily, so a
//!   handler that never touches them pays nothing for them. Its headers are
//!   immutable, as on Workers (`new Request(req)` makes a mutable copy).
//! * [`response_parts`] reads status, status text, header pairs, the
//!   `webSocket` from `ResponseInit`, and the body. A body built from a
//!   string, `ArrayBuffer`, typed array, `Blob`, `URLSearchParams` or
//!   `FormData` comes back as [`ResponseBody::Bytes`] without any stream
//!   machinery; only a body that really is a `ReadableStream` comes back as
//!   [`ResponseBody::Stream`]. For those, call [`read_chunk`] repeatedly: it
//!   returns a Promise of a `Uint8Array` chunk or `null` at the end (string
//!   chunks are encoded as UTF-8), to be resolved by the host's event loop.
//! * [`is_response`] tells whether a value returned by a handler is a
//!   `Response`.
//!
//! For outbound `fetch()` the direction reverses:
//!
//! * [`request_parts`] reads method, URL, header pairs, body, `redirect` mode
//!   and `signal` of a `Request` (build it in JS with `new Request(input,
//!   init)`, which applies all of fetch's argument rules).
//! * [`new_response`] wraps what came back: status, status text, header
//!   pairs, final URL, `redirected`, and a [`Body`]. For a streamed reply,
//!   [`new_body_stream`] gives a `ReadableStream` plus its controller; call
//!   `controller.enqueue(Uint8Array)`, `close()` or `error(e)` as data
//!   arrives, and watch `controller.desiredSize` for backpressure. Fetched
//!   responses have immutable headers, as on Workers.
//!
//! The same functions live in JS on a non-enumerable global object,
//! `globalThis.__hearth_webapi` (`makeRequest`, `responseParts`,
//! `readChunk`, `isResponse`, `requestParts`, `makeResponse`, `newStream`),
//! for hosts that prefer to call JS directly. Their argument and result
//! shapes are the ones the Rust wrappers below pass and unpack.
//!
//! Timers: `AbortSignal.timeout()` calls the global `setTimeout` at call time;
//! the runtime installs it. Nothing else here needs a clock.

pub mod builtin;
mod crypto;
mod encoding;
mod url;
mod util;
mod zlib;

use rquickjs::{Array, Ctx, Function, Object, Result, Value};

pub use encoding::MAX_RANDOM_BYTES;

/// Name of the hidden global that carries the host hooks.
pub const HOST_GLOBAL: &str = "__hearth_webapi";

const BOOTSTRAP: &str = concat!(
    "(function (native) {\n'use strict';\n",
    include_str!("../js/00_prelude.js"),
    include_str!("../js/10_events.js"),
    include_str!("../js/20_url.js"),
    include_str!("../js/30_encoding.js"),
    include_str!("../js/40_clone.js"),
    include_str!("../js/41_serialize.js"),
    include_str!("../js/50_streams.js"),
    include_str!("../js/60_blob.js"),
    include_str!("../js/70_fetch.js"),
    include_str!("../js/80_crypto.js"),
    include_str!("../js/90_host.js"),
    "\n})"
);

fn natives<'js>(ctx: &Ctx<'js>) -> Result<Object<'js>> {
    let native = Object::new(ctx.clone())?;
    // Joins the chunks of a body the host streamed in (a request body) into
    // one Uint8Array held outside the heap QuickJS counts, as the whole
    // body would have been.
    native.set(
        "concatExternal",
        Function::new(
            ctx.clone(),
            |ctx: Ctx<'js>, chunks: Array<'js>, total: usize| -> Result<Value<'js>> {
                let mut out = Vec::with_capacity(total);
                for chunk in chunks.iter::<Value>() {
                    out.extend_from_slice(&util::bytes(&ctx, &chunk?)?);
                }
                util::u8array(&ctx, out)
            },
        )?,
    )?;
    url::install(ctx, &native)?;
    encoding::install(ctx, &native)?;
    crypto::install(ctx, &native)?;
    zlib::install(ctx, &native)?;
    hearth_json::install(ctx, &native)?;
    Ok(native)
}

/// Installs every Web API global into the context. Call once per context,
/// before any user code runs.
pub fn install(ctx: &Ctx<'_>) -> Result<()> {
    let native = natives(ctx)?;
    let boot: Function = builtin::eval_script(ctx, BOOTSTRAP, Default::default())?;
    boot.call::<_, ()>((native,))?;
    Ok(())
}

fn host<'js>(ctx: &Ctx<'js>) -> Result<Object<'js>> {
    ctx.globals().get(HOST_GLOBAL)
}

/// Builds a `Request` for an incoming HTTP request. `url` must be absolute
/// and already valid; header names are expected lowercase or not, as
/// received (lookups are case-insensitive either way).
pub fn new_request<'js>(
    ctx: &Ctx<'js>,
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: Option<&[u8]>,
    cf: Option<Value<'js>>,
) -> Result<Object<'js>> {
    let flat = flat_array(ctx, headers)?;
    let body = match body {
        Some(b) => util::u8array(ctx, b.to_vec())?,
        None => Value::new_null(ctx.clone()),
    };
    let cf = cf.unwrap_or_else(|| Value::new_undefined(ctx.clone()));
    let make: Function = host(ctx)?.get("makeRequest")?;
    make.call((method, url, flat, body, cf))
}

/// A request or response body as the host sees it.
pub enum Body<'js> {
    /// `null` body (e.g. 204, or `new Response()`).
    None,
    /// The whole body, already in memory.
    Bytes(Vec<u8>),
    /// A `ReadableStream`; drain it with [`read_chunk`].
    Stream(Object<'js>),
}

/// The name the response path used first; same type as [`Body`].
pub type ResponseBody<'js> = Body<'js>;

/// Everything the host needs to send a `Response`.
pub struct ResponseParts<'js> {
    pub status: u16,
    pub status_text: String,
    pub headers: Vec<(String, String)>,
    pub body: Body<'js>,
    /// The `webSocket` passed in `ResponseInit` (status 101), if any.
    pub web_socket: Option<Value<'js>>,
}

/// True when `value` is a `Response` created by these globals.
pub fn is_response<'js>(ctx: &Ctx<'js>, value: &Value<'js>) -> Result<bool> {
    let f: Function = host(ctx)?.get("isResponse")?;
    f.call((value.clone(),))
}

/// Reads a `Response` for sending. Marks its body used. Throws a TypeError
/// if `value` is not a `Response` or its body was already consumed.
pub fn response_parts<'js>(ctx: &Ctx<'js>, value: &Value<'js>) -> Result<ResponseParts<'js>> {
    let f: Function = host(ctx)?.get("responseParts")?;
    let parts: Array = f.call((value.clone(),))?;
    let status: u16 = parts.get(0)?;
    let status_text: String = parts.get(1)?;
    let headers = flat_pairs(&parts.get(2)?)?;
    let body = body_of(ctx, parts.get(3)?, parts.get(4)?)?;
    let ws: Value = parts.get(5)?;
    let web_socket = if ws.is_undefined() || ws.is_null() {
        None
    } else {
        Some(ws)
    };
    Ok(ResponseParts {
        status,
        status_text,
        headers,
        body,
        web_socket,
    })
}

/// Starts reading the next chunk of a body stream from [`ResponseBody::Stream`].
/// Returns a Promise of `Uint8Array | null` (null = end of stream); the
/// stream stays locked to the host until it ends or errors.
pub fn read_chunk<'js>(ctx: &Ctx<'js>, stream: &Object<'js>) -> Result<Value<'js>> {
    let f: Function = host(ctx)?.get("readChunk")?;
    f.call((stream.clone(),))
}

/// Copies the bytes out of a chunk resolved by [`read_chunk`].
pub fn chunk_bytes<'js>(ctx: &Ctx<'js>, chunk: &Value<'js>) -> Result<Option<Vec<u8>>> {
    if chunk.is_null() || chunk.is_undefined() {
        return Ok(None);
    }
    util::bytes(ctx, chunk).map(Some)
}

fn flat_pairs(flat: &Array<'_>) -> Result<Vec<(String, String)>> {
    let mut headers = Vec::with_capacity(flat.len() / 2);
    let mut i = 0;
    while i + 1 < flat.len() {
        headers.push((flat.get::<String>(i)?, flat.get::<String>(i + 1)?));
        i += 2;
    }
    Ok(headers)
}

fn body_of<'js>(ctx: &Ctx<'js>, kind: u8, raw: Value<'js>) -> Result<Body<'js>> {
    Ok(match kind {
        1 => Body::Bytes(util::usv(ctx, &raw)?.into_bytes()),
        2 => Body::Bytes(util::bytes(ctx, &raw)?),
        3 => Body::Stream(Object::from_value(raw)?),
        _ => Body::None,
    })
}

fn flat_array<'js>(ctx: &Ctx<'js>, headers: &[(String, String)]) -> Result<Array<'js>> {
    let flat = Array::new(ctx.clone())?;
    for (i, (k, v)) in headers.iter().enumerate() {
        flat.set(2 * i, k.as_str())?;
        flat.set(2 * i + 1, v.as_str())?;
    }
    Ok(flat)
}

/// Everything the host needs to send an outbound request.
pub struct RequestParts<'js> {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Body<'js>,
    /// "follow", "manual" or "error".
    pub redirect: String,
    /// The request's `AbortSignal`, when one was given or read.
    pub signal: Option<Object<'js>>,
}

/// Reads a `Request` for sending; marks its body used. Throws a TypeError if
/// `value` is not a `Request` or its body was already consumed.
pub fn request_parts<'js>(ctx: &Ctx<'js>, value: &Value<'js>) -> Result<RequestParts<'js>> {
    let f: Function = host(ctx)?.get("requestParts")?;
    let parts: Array = f.call((value.clone(),))?;
    let signal: Value = parts.get(6)?;
    Ok(RequestParts {
        method: parts.get(0)?,
        url: parts.get(1)?,
        headers: flat_pairs(&parts.get(2)?)?,
        body: body_of(ctx, parts.get(3)?, parts.get(4)?)?,
        redirect: parts.get(5)?,
        signal: signal.into_object(),
    })
}

/// What a fetched response looked like on the wire.
pub struct ResponseInit<'a> {
    pub status: u16,
    pub status_text: &'a str,
    pub headers: &'a [(String, String)],
    /// The final URL after redirects.
    pub url: &'a str,
    pub redirected: bool,
}

/// Builds a `Response` for the result of an outbound fetch, without the
/// validation `new Response()` applies (any status the wire carried is kept).
pub fn new_response<'js>(
    ctx: &Ctx<'js>,
    init: &ResponseInit<'_>,
    body: Body<'js>,
) -> Result<Object<'js>> {
    let body = match body {
        Body::None => Value::new_null(ctx.clone()),
        Body::Bytes(b) => util::u8array(ctx, b)?,
        Body::Stream(s) => s.into_value(),
    };
    let f: Function = host(ctx)?.get("makeResponse")?;
    f.call((
        init.status,
        init.status_text,
        flat_array(ctx, init.headers)?,
        body,
        init.url,
        init.redirected,
    ))
}

/// A `ReadableStream` of bytes fed by the host, and its controller
/// (`enqueue(Uint8Array)`, `close()`, `error(e)`, `desiredSize`).
pub fn new_body_stream<'js>(ctx: &Ctx<'js>) -> Result<(Object<'js>, Object<'js>)> {
    let f: Function = host(ctx)?.get("newStream")?;
    let pair: Array = f.call(())?;
    Ok((pair.get(0)?, pair.get(1)?))
}
