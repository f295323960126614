//! Built-in scripts compiled once per process.
//!
//! Every new context evaluates the same host scripts (the Web APIs, the
//! prelude, the Cache API, the bindings' JS). Parsing them is most of a
//! context's start-up, so the first context compiles each script, keeps
//! its QuickJS bytecode, and every later context loads the bytecode
//! instead.
//!
//! Invariants:
//! - A script is a `&'static str` baked into the binary, so its text never
//!   changes; the key is its address and length together with the file
//!   name and flags it is compiled under.
//! - Only bytecode this process wrote is ever loaded; nothing is read from
//!   disk.
//! - Debug information is kept, so stacks still name `file:line:column`.
//! - Bounded: at most [`MAX_ENTRIES`] scripts; the set of built-ins is
//!   fixed, so the bound is never reached in practice.

use std::collections::HashMap;
use std::ffi::CString;
use std::mem::MaybeUninit;
use std::sync::{Arc, LazyLock, Mutex};

use rquickjs::context::EvalOptions;
use rquickjs::{Ctx, Error, FromJs, Result, Value, qjs};

/// Most scripts the cache holds.
pub const MAX_ENTRIES: usize = 256;

#[derive(PartialEq, Eq, Hash)]
struct Key {
    addr: usize,
    len: usize,
    flags: i32,
    filename: Option<String>,
}

static CACHE: LazyLock<Mutex<HashMap<Key, Arc<[u8]>>>> = LazyLock::new(Mutex::default);

fn flags(options: &EvalOptions) -> i32 {
    let mut flags = qjs::JS_EVAL_TYPE_GLOBAL;
    if options.strict {
        flags |= qjs::JS_EVAL_FLAG_STRICT;
    }
    if options.backtrace_barrier {
        flags |= qjs::JS_EVAL_FLAG_BACKTRACE_BARRIER;
    }
    flags as i32
}

/// Evaluates a built-in global script as `Ctx::eval_with_options` does,
/// from bytecode when this process has compiled the same script before.
/// Module code and top-level await go the ordinary way.
pub fn eval_script<'js, V: FromJs<'js>>(
    ctx: &Ctx<'js>,
    source: &'static str,
    options: EvalOptions,
) -> Result<V> {
    if !options.global || options.promise {
        return ctx.eval_with_options(source, options);
    }
    let key = Key {
        addr: source.as_ptr() as usize,
        len: source.len(),
        flags: flags(&options),
        filename: options.filename.clone(),
    };
    let cached = CACHE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&key)
        .cloned();
    let function = match cached {
        Some(bytecode) => {
            // SAFETY: the bytes were written by `JS_WriteObject` in this
            // process from this exact script (the key names a static string).
            unsafe { read(ctx, &bytecode)? }
        }
        None => {
            let function = compile(ctx, source, &key)?;
            match write(ctx, function) {
                Ok(bytecode) => {
                    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
                    if cache.len() < MAX_ENTRIES {
                        cache.insert(key, bytecode.into());
                    }
                }
                // Not kept; the script still runs from this compile.
                Err(_) => drop(ctx.catch()),
            }
            function
        }
    };
    // SAFETY: `JS_EvalFunction` takes ownership of the compiled function
    // and returns an owned value or an exception.
    let result = unsafe {
        let raw = qjs::JS_EvalFunction(ctx.as_raw().as_ptr(), function);
        owned(ctx, raw)?
    };
    V::from_js(ctx, result)
}

/// Scripts and bytecode bytes held, for tests and the health report.
pub fn stats() -> (usize, usize) {
    let cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    (cache.len(), cache.values().map(|b| b.len()).sum())
}

fn is_exception(raw: qjs::JSValue) -> bool {
    // SAFETY: reading a value's tag.
    unsafe { qjs::JS_VALUE_GET_NORM_TAG(raw) == qjs::JS_TAG_EXCEPTION }
}

/// Wraps a value QuickJS handed over, or reports its pending exception.
///
/// # Safety
/// `raw` must be an owned value of `ctx`.
unsafe fn owned<'js>(ctx: &Ctx<'js>, raw: qjs::JSValue) -> Result<Value<'js>> {
    if is_exception(raw) {
        return Err(Error::Exception);
    }
    // SAFETY: the caller hands over ownership of a value of `ctx`.
    Ok(unsafe { Value::from_raw(ctx.clone(), raw) })
}

/// The compiled, not yet evaluated function: an owned raw value (a
/// `Value` would hold a context reference that `JS_EvalFunction`, which
/// consumes the function, cannot release).
fn compile(ctx: &Ctx<'_>, source: &str, key: &Key) -> Result<qjs::JSValue> {
    let src = CString::new(source)?;
    let filename = CString::new(key.filename.as_deref().unwrap_or("eval_script"))?;
    // SAFETY: both strings are NUL-terminated and outlive the call; the
    // result is owned by us.
    unsafe {
        let raw = qjs::JS_Eval(
            ctx.as_raw().as_ptr(),
            src.as_ptr(),
            source.len() as _,
            filename.as_ptr(),
            key.flags | qjs::JS_EVAL_FLAG_COMPILE_ONLY as i32,
        );
        if is_exception(raw) {
            return Err(Error::Exception);
        }
        Ok(raw)
    }
}

fn write(ctx: &Ctx<'_>, function: qjs::JSValue) -> Result<Vec<u8>> {
    let mut len = MaybeUninit::uninit();
    // SAFETY: `function` is a live compiled function of `ctx`; the buffer
    // QuickJS returns is copied and then freed with its allocator.
    unsafe {
        let buf = qjs::JS_WriteObject(
            ctx.as_raw().as_ptr(),
            len.as_mut_ptr(),
            function,
            qjs::JS_WRITE_OBJ_BYTECODE as i32,
        );
        if buf.is_null() {
            return Err(Error::Exception);
        }
        let out = std::slice::from_raw_parts(buf, len.assume_init() as usize).to_vec();
        qjs::js_free(ctx.as_raw().as_ptr(), buf.cast());
        Ok(out)
    }
}

/// # Safety
/// `bytecode` must have been written by [`write`] in this process.
unsafe fn read(ctx: &Ctx<'_>, bytecode: &[u8]) -> Result<qjs::JSValue> {
    // SAFETY: the caller vouches for the bytes; the result is owned by us.
    let raw = unsafe {
        qjs::JS_ReadObject(
            ctx.as_raw().as_ptr(),
            bytecode.as_ptr(),
            bytecode.len() as _,
            qjs::JS_READ_OBJ_BYTECODE as i32,
        )
    };
    if is_exception(raw) {
        return Err(Error::Exception);
    }
    Ok(raw)
}
