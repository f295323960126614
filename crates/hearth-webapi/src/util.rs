//! Small conversions shared by the native helpers.

use rquickjs::{ArrayBuffer, Ctx, Exception, Result, TypedArray, Value};

/// Converts a JS string to Rust, replacing lone surrogates with U+FFFD (the
/// USVString conversion WebIDL asks for). QuickJS hands lone surrogates out as
/// WTF-8, which is not UTF-8, so the slow path asks JS for `toWellFormed()`.
pub fn usv<'js>(ctx: &Ctx<'js>, v: &Value<'js>) -> Result<String> {
    let s = match v.as_string() {
        Some(s) => s.clone(),
        None => rquickjs::String::from_value(v.clone())?,
    };
    match s.to_string() {
        Ok(s) => Ok(s),
        Err(_) => {
            let f: rquickjs::Function = ctx.eval("(s) => String(s).toWellFormed()")?;
            let fixed: rquickjs::String = f.call((s,))?;
            fixed.to_string()
        }
    }
}

/// Copies the bytes of a Uint8Array (the JS glue normalises every
/// BufferSource to one before calling a native).
pub fn bytes<'js>(ctx: &Ctx<'js>, v: &Value<'js>) -> Result<Vec<u8>> {
    if let Ok(ta) = TypedArray::<u8>::from_value(v.clone()) {
        return match ta.as_raw() {
            // SAFETY: copied out before any further JS runs.
            Some(raw) => Ok(unsafe { raw.as_ref() }.to_vec()),
            None => Ok(Vec::new()),
        };
    }
    if let Some(ab) = ArrayBuffer::from_value(v.clone()) {
        return match ab.as_raw() {
            // SAFETY: copied out before any further JS runs.
            Some(raw) => Ok(unsafe { raw.as_ref() }.to_vec()),
            None => Ok(Vec::new()),
        };
    }
    Err(Exception::throw_type(ctx, "Expected a Uint8Array"))
}

pub fn u8array<'js>(ctx: &Ctx<'js>, data: Vec<u8>) -> Result<Value<'js>> {
    Ok(TypedArray::<u8>::new(ctx.clone(), data)?.into_value())
}

pub fn array_buffer<'js>(ctx: &Ctx<'js>, data: Vec<u8>) -> Result<Value<'js>> {
    Ok(ArrayBuffer::new(ctx.clone(), data)?.into_value())
}

/// Throws a `DOMException` with the given name (e.g. `DataError`).
pub fn throw_dom(ctx: &Ctx<'_>, name: &str, message: &str) -> rquickjs::Error {
    let ctor: Result<rquickjs::function::Constructor> = ctx.globals().get("DOMException");
    match ctor.and_then(|c| c.construct::<_, Value>((message, name))) {
        Ok(v) => ctx.throw(v),
        Err(e) => e,
    }
}
