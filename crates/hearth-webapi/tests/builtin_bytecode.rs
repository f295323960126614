//! Built-in scripts are compiled once per process and loaded from bytecode
//! by every later context, with the same results, flags and stacks.

use hearth_webapi::builtin::{eval_script, stats};
use rquickjs::context::EvalOptions;
use rquickjs::{CatchResultExt, Context, Ctx, Function, Runtime};

/// A factory whose returned function throws from line 4.
const THROWER: &str = "(function (base) {\n  'use strict';\n  return function boom(n) {\n    if (n > base) throw new RangeError('too big: ' + n);\n    return n * 2;\n  };\n})";

/// Behaves differently in sloppy and strict mode.
const SLOPPY: &str = "undeclaredGlobal = 5; typeof undeclaredGlobal";

const BROKEN: &str = "(function () { return 1 +; })";

fn options(name: &str, strict: bool) -> EvalOptions {
    let mut o = EvalOptions::default();
    o.global = true;
    o.strict = strict;
    o.filename = Some(name.into());
    o
}

fn with_context<R>(f: impl FnOnce(&Ctx<'_>) -> R) -> R {
    let rt = Runtime::new().expect("runtime");
    let context = Context::full(&rt).expect("context");
    context.with(|ctx| f(&ctx))
}

/// Calls THROWER's function with `n` and returns its result or the stack.
fn call_thrower(n: i32) -> Result<i32, String> {
    with_context(|ctx| {
        let factory: Function =
            eval_script(ctx, THROWER, options("hearth:test/thrower.js", false)).expect("factory");
        let boom: Function = factory.call((10,)).expect("boom");
        boom.call::<_, i32>((n,)).catch(ctx).map_err(|e| match e {
            rquickjs::CaughtError::Exception(ex) => {
                format!(
                    "{}\n{}",
                    ex.message().unwrap_or_default(),
                    ex.stack().unwrap_or_default()
                )
            }
            other => other.to_string(),
        })
    })
}

fn sloppy(strict: bool) -> String {
    with_context(|ctx| {
        match eval_script::<String>(ctx, SLOPPY, options("hearth:test/sloppy.js", strict))
            .catch(ctx)
        {
            Ok(s) => s,
            Err(rquickjs::CaughtError::Exception(ex)) => {
                format!("THROW {}", ex.message().unwrap_or_default())
            }
            Err(other) => format!("THROW {other}"),
        }
    })
}

// One test: the cache is process-wide, so its counts are checked in one place.
#[test]
fn builtins_compile_once_and_behave_the_same_from_bytecode() {
    // The Web APIs install from bytecode in a second context.
    for _ in 0..2 {
        let out = with_context(|ctx| {
            hearth_webapi::install(ctx).expect("install");
            ctx.eval::<String, _>(
                "new URL('https://a.example/b?c=1').searchParams.get('c') + typeof Response + typeof ReadableStream",
            )
            .expect("eval")
        });
        assert_eq!(out, "1functionfunction");
    }

    let (before, _) = stats();

    // First context compiles, the next ones load bytecode.
    assert_eq!(call_thrower(3), Ok(6));
    let (after_first, bytes) = stats();
    assert_eq!(after_first, before + 1, "the compiled script is kept");
    assert!(bytes > 0);
    assert_eq!(call_thrower(4), Ok(8));
    assert_eq!(stats().0, after_first, "a second context adds no entry");

    // A stack from bytecode still names the file, line and function.
    let err = call_thrower(11).expect_err("throws");
    assert!(err.starts_with("too big: 11"), "{err}");
    assert!(err.contains("boom"), "{err}");
    assert!(err.contains("hearth:test/thrower.js:4"), "{err}");

    // The flags are part of the key: sloppy and strict compile separately
    // and keep their meaning when loaded again.
    for _ in 0..2 {
        assert_eq!(sloppy(false), "number");
        assert!(sloppy(true).starts_with("THROW"), "{}", sloppy(true));
    }
    assert_eq!(stats().0, after_first + 2);

    // A syntax error is reported as from source, and nothing is kept.
    for _ in 0..2 {
        let message = with_context(|ctx| {
            match eval_script::<rquickjs::Value>(
                ctx,
                BROKEN,
                options("hearth:test/broken.js", true),
            )
            .catch(ctx)
            {
                Ok(_) => "compiled".to_string(),
                Err(rquickjs::CaughtError::Exception(ex)) => {
                    ex.get::<_, String>("name").unwrap_or_default()
                }
                Err(other) => other.to_string(),
            }
        });
        assert!(message.contains("SyntaxError"), "{message}");
    }
    assert_eq!(stats().0, after_first + 2);
}
