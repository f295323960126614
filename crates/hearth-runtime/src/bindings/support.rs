//! Pieces the KV, D1 and R2 adapters share: raising a contract error as the
//! JS exception class Workers raises, moving bytes across the boundary, and
//! installing a binding whose JS half is a factory script.

use hearth_core::{ContractError, ErrorClass};
use hearth_webapi::builtin::eval_script;
use rquickjs::{ArrayBuffer, Ctx, Exception, Function, Object, TypedArray, Value};

thread_local! {
    /// The invocation (request slot) whose JS runs on this isolate thread
    /// now; 0 between slices.
    static INVOCATION: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Set by the isolate as it enters and leaves JS for an invocation, so a
/// binding can keep per-invocation limits (Analytics Engine's 250 points).
pub(crate) fn set_invocation(id: u64) {
    INVOCATION.with(|c| c.set(id));
}

/// The invocation whose JS is running on this thread.
pub(crate) fn current_invocation() -> u64 {
    INVOCATION.with(std::cell::Cell::get)
}

/// Throws `message` as an exception of `class` in `ctx`.
pub(crate) fn throw(ctx: &Ctx<'_>, class: ErrorClass, message: &str) -> rquickjs::Error {
    match class {
        ErrorClass::Error => Exception::throw_message(ctx, message),
        ErrorClass::TypeError => Exception::throw_type(ctx, message),
        ErrorClass::RangeError => Exception::throw_range(ctx, message),
        ErrorClass::SyntaxError => Exception::throw_syntax(ctx, message),
        ErrorClass::Named(name) => match Exception::from_message(ctx.clone(), message) {
            Ok(ex) => {
                if let Err(e) = ex.as_object().set("name", name) {
                    return e;
                }
                ctx.throw(ex.into_value())
            }
            Err(e) => e,
        },
    }
}

/// Throws a contract error as the exception its type declares, with its
/// `Display` text as the message: the one way every binding raises.
pub(crate) fn raise(ctx: &Ctx<'_>, e: impl ContractError) -> rquickjs::Error {
    throw(ctx, e.class(), &e.to_string())
}

/// `v` as an `ArrayBuffer`, or `None`, leaving no exception behind.
///
/// `ArrayBuffer::from_value` asks the engine for the buffer of any object,
/// and for one that is not an `ArrayBuffer` (a `Uint8Array`, say) the engine
/// records a pending "ArrayBuffer object expected" TypeError that nothing
/// clears: it then surfaces in whatever JavaScript runs next, even in a
/// later request. So the class is checked first.
pub(crate) fn as_array_buffer<'js>(v: &Value<'js>) -> Option<ArrayBuffer<'js>> {
    // SAFETY: JS_IsArrayBuffer only reads the class id of a live value of
    // this context; it neither throws nor runs JavaScript.
    let is_buffer = unsafe { rquickjs::qjs::JS_IsArrayBuffer(v.as_raw()) };
    if is_buffer {
        ArrayBuffer::from_value(v.clone())
    } else {
        None
    }
}

/// Copies the bytes of a string, `ArrayBuffer` or `Uint8Array`; `None` for
/// anything else. The JS halves normalise other views to `Uint8Array`.
pub(crate) fn bytes_of(v: &Value<'_>) -> rquickjs::Result<Option<Vec<u8>>> {
    if let Some(s) = v.as_string() {
        return Ok(Some(s.to_string()?.into_bytes()));
    }
    if let Some(buf) = as_array_buffer(v) {
        // SAFETY: copied before control returns to JS, so the buffer cannot
        // be detached or resized while borrowed.
        let bytes = unsafe { buf.as_bytes() };
        return Ok(Some(bytes.map(<[u8]>::to_vec).unwrap_or_default()));
    }
    if let Ok(arr) = TypedArray::<u8>::from_value(v.clone()) {
        // SAFETY: as above, copied at once.
        let bytes = unsafe { arr.as_bytes() };
        return Ok(Some(bytes.map(<[u8]>::to_vec).unwrap_or_default()));
    }
    Ok(None)
}

/// A fresh `ArrayBuffer` holding `bytes`.
pub(crate) fn array_buffer<'js>(ctx: &Ctx<'js>, bytes: Vec<u8>) -> rquickjs::Result<Value<'js>> {
    Ok(ArrayBuffer::new(ctx.clone(), bytes)?.into_value())
}

const COMMON_JS: &str = include_str!("common.js");

/// Evaluates `source` (a `(function (native, util) { ... })` expression),
/// calls it with `native` and the shared helpers of `common.js`, and sets
/// the object it returns as `env[name]`.
pub(crate) fn install_factory<'js>(
    ctx: &Ctx<'js>,
    env: &Object<'js>,
    name: &str,
    script_name: &str,
    source: &'static str,
    native: Object<'js>,
) -> rquickjs::Result<()> {
    let common: Function = eval_script(ctx, COMMON_JS, eval_options("common.js"))?;
    let util: Value = common.call(())?;
    let factory: Function = eval_script(ctx, source, eval_options(script_name))?;
    let binding: Value = factory.call((native, util))?;
    env.set(name, binding)
}

/// Script names start with the runtime's internal prefix so stack traces
/// shown to the worker leave the binding's own frames out.
fn eval_options(script_name: &str) -> rquickjs::context::EvalOptions {
    let mut options = rquickjs::context::EvalOptions::default();
    options.global = true;
    options.strict = true;
    options.filename = Some(format!("hearth:internal/bindings/{script_name}"));
    options
}

#[cfg(test)]
mod tests {
    use super::*;
    use rquickjs::{Context, Runtime};

    /// Whether the context holds an exception nobody caught.
    fn pending_exception(ctx: &Ctx<'_>) -> bool {
        ctx.catch().is_object()
    }

    #[test]
    fn reading_a_uint8array_leaves_no_pending_exception() {
        let rt = Runtime::new().unwrap();
        let context = Context::full(&rt).unwrap();
        context.with(|ctx| {
            let view: Value = ctx.eval("new Uint8Array([1, 2, 3])").unwrap();
            assert!(as_array_buffer(&view).is_none());
            assert!(!pending_exception(&ctx));
            assert_eq!(bytes_of(&view).unwrap(), Some(vec![1, 2, 3]));
            assert!(!pending_exception(&ctx));
            let plain: Value = ctx.eval("({})").unwrap();
            assert_eq!(bytes_of(&plain).unwrap(), None);
            assert!(!pending_exception(&ctx));
            let buffer: Value = ctx.eval("new Uint8Array([4, 5]).buffer").unwrap();
            assert_eq!(bytes_of(&buffer).unwrap(), Some(vec![4, 5]));
            // The engine call this guards against: asking a view for an
            // ArrayBuffer records a TypeError.
            assert!(ArrayBuffer::from_value(view.clone()).is_none());
            assert!(
                pending_exception(&ctx),
                "rquickjs now clears it: as_array_buffer may go"
            );
        });
    }
}
