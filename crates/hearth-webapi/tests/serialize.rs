//! The persisted structured-clone format (`js/41_serialize.js`): the exact
//! text of every tag, round trips of every kind of value, the values stored
//! by the encodings that came before the version marker, and the refusals.

mod common;

use common::Js;
use rquickjs::CatchResultExt;

const VALUES: &str = include_str!("fixtures/values.js");
const LEGACY_DURABLE: &str = include_str!("fixtures/legacy-durable-storage.json");
const LEGACY_V8: &str = include_str!("fixtures/legacy-structured-v8.json");

/// `same(expected, actual, path, pairs, loose)`: see the file.
const SAME_JS: &str = include_str!("fixtures/same.js");

fn js() -> Js {
    let js = Js::new();
    js.ctx.with(|ctx| {
        ctx.eval::<(), _>(SAME_JS).catch(&ctx).unwrap();
        ctx.eval::<(), _>("globalThis.SC = globalThis.__hearth_webapi.codec;")
            .catch(&ctx)
            .unwrap();
        let v: rquickjs::Value = ctx.eval(VALUES).catch(&ctx).unwrap();
        ctx.globals().set("V", v).unwrap();
    });
    js
}

fn eval(js: &Js, src: &str) -> String {
    js.ctx
        .with(|ctx| match ctx.eval::<String, _>(src).catch(&ctx) {
            Ok(s) => s,
            Err(e) => format!("THROW {e}"),
        })
}

fn text(js: &Js, expr: &str) -> String {
    eval(js, &format!("SC.text.serialize({expr})"))
}

/// Every tag written once, byte for byte. A change here is a change of the
/// persisted format: it needs a new version number and a reader for this one.
#[test]
fn golden_text_of_every_tag() {
    let js = js();
    let cases: &[(&str, &str)] = &[
        ("'hello'", r#"{"$sc":1,"v":"hello"}"#),
        (
            "'h\\u00e9 \\ud83d\\ude00'",
            "{\"$sc\":1,\"v\":\"h\u{e9} \u{1f600}\"}",
        ),
        ("42", r#"{"$sc":1,"v":42}"#),
        ("-3.5", r#"{"$sc":1,"v":-3.5}"#),
        ("true", r#"{"$sc":1,"v":true}"#),
        ("null", r#"{"$sc":1,"v":null}"#),
        ("NaN", r#"{"$sc":1,"v":{"$":"n","v":"NaN"}}"#),
        ("Infinity", r#"{"$sc":1,"v":{"$":"n","v":"Infinity"}}"#),
        ("-Infinity", r#"{"$sc":1,"v":{"$":"n","v":"-Infinity"}}"#),
        ("-0", r#"{"$sc":1,"v":{"$":"n","v":"-0"}}"#),
        ("undefined", r#"{"$sc":1,"v":{"$":"u"}}"#),
        (
            "-12345678901234567890n",
            r#"{"$sc":1,"v":{"$":"bi","v":"-12345678901234567890"}}"#,
        ),
        (
            "({a: 1, $: 'u', '0': null})",
            r#"{"$sc":1,"v":{"$":"o","v":{"0":null,"a":1,"$":"u"}}}"#,
        ),
        (
            "JSON.parse('{\"__proto__\": 1}')",
            r#"{"$sc":1,"v":{"$":"o","v":{"__proto__":1}}}"#,
        ),
        ("[1, 'x']", r#"{"$sc":1,"v":{"$":"a","v":[1,"x"]}}"#),
        (
            "[1, , 3, , ]",
            r#"{"$sc":1,"v":{"$":"a","v":[1,{"$":"h","n":1},3,{"$":"h","n":1}]}}"#,
        ),
        (
            "(() => { const a = []; a[1000000] = 1; return a; })()",
            r#"{"$sc":1,"v":{"$":"a","v":[{"$":"h","n":1000000},1]}}"#,
        ),
        (
            "Object.assign([1], {k: 2})",
            r#"{"$sc":1,"v":{"$":"a","v":[1],"p":{"k":2}}}"#,
        ),
        (
            "new Date(1700000000123)",
            r#"{"$sc":1,"v":{"$":"d","v":1700000000123}}"#,
        ),
        (
            "new Date(NaN)",
            r#"{"$sc":1,"v":{"$":"d","v":{"$":"n","v":"NaN"}}}"#,
        ),
        (
            "Object.assign(/a+\\/b/gi, {lastIndex: 3})",
            r#"{"$sc":1,"v":{"$":"re","s":"a+\\/b","f":"gi"}}"#,
        ),
        ("new Boolean(false)", r#"{"$sc":1,"v":{"$":"w","v":false}}"#),
        (
            "new Number(-0)",
            r#"{"$sc":1,"v":{"$":"w","v":{"$":"n","v":"-0"}}}"#,
        ),
        ("new String('s')", r#"{"$sc":1,"v":{"$":"w","v":"s"}}"#),
        (
            "Object(9n)",
            r#"{"$sc":1,"v":{"$":"w","v":{"$":"bi","v":"9"}}}"#,
        ),
        (
            "new Map([[1, 'a'], [{}, null]])",
            r#"{"$sc":1,"v":{"$":"m","v":[[1,"a"],[{"$":"o","v":{}},null]]}}"#,
        ),
        (
            "new Set([1, 2n])",
            r#"{"$sc":1,"v":{"$":"s","v":[1,{"$":"bi","v":"2"}]}}"#,
        ),
        (
            "new Uint8Array([0, 1, 2, 255]).buffer",
            r#"{"$sc":1,"v":{"$":"ab","v":"AAEC/w=="}}"#,
        ),
        (
            "new Uint16Array(new Uint8Array([9, 1, 2, 3, 4, 9]).buffer, 2, 2)",
            r#"{"$sc":1,"v":{"$":"v","t":"Uint16Array","b":{"$":"ab","v":"CQECAwQJ"},"o":2,"l":2}}"#,
        ),
        (
            "new DataView(new ArrayBuffer(4), 1, 2)",
            r#"{"$sc":1,"v":{"$":"v","t":"DataView","b":{"$":"ab","v":"AAAAAA=="},"o":1,"l":2}}"#,
        ),
        (
            "(() => { const b = new ArrayBuffer(2); return [new Int8Array(b), b]; })()",
            r#"{"$sc":1,"v":{"$":"a","v":[{"$":"v","t":"Int8Array","b":{"$":"ab","v":"AAA="},"o":0,"l":2},{"$":"ref","i":2}]}}"#,
        ),
        (
            "Object.defineProperty(new TypeError('bad', {cause: 1}), 'stack', {value: 'TypeError: bad\\n    at x'})",
            r#"{"$sc":1,"v":{"$":"e","n":"TypeError","m":"bad","st":"TypeError: bad\n    at x","c":1}}"#,
        ),
        (
            "(() => { const e = new Error('odd'); e.name = 'MyError'; Object.defineProperty(e, 'stack', {value: undefined}); return e; })()",
            r#"{"$sc":1,"v":{"$":"e","n":"MyError","m":"odd"}}"#,
        ),
        (
            "(() => { const e = new DOMException('no', 'DataCloneError'); Object.defineProperty(e, 'stack', {value: undefined}); return e; })()",
            r#"{"$sc":1,"v":{"$":"de","n":"DataCloneError","m":"no"}}"#,
        ),
        (
            "(() => { const o = {}; o.self = o; return o; })()",
            r#"{"$sc":1,"v":{"$":"o","v":{"self":{"$":"ref","i":0}}}}"#,
        ),
        (
            "(() => { const s = {}; return [s, new Map([[s, s]])]; })()",
            r#"{"$sc":1,"v":{"$":"a","v":[{"$":"o","v":{}},{"$":"m","v":[[{"$":"ref","i":1},{"$":"ref","i":1}]]}]}}"#,
        ),
        (
            "new (class Point { constructor() { this.x = 1; } })()",
            r#"{"$sc":1,"v":{"$":"o","v":{"x":1}}}"#,
        ),
    ];
    let mut failures = Vec::new();
    for (expr, want) in cases {
        let got = text(&js, expr);
        if got != *want {
            failures.push(format!("{expr}\n  want {want}\n  got  {got}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every typed-array type has its name written as the view tag's `t`.
#[test]
fn golden_text_of_every_view_type() {
    let js = js();
    for t in [
        "Int8Array",
        "Uint8Array",
        "Uint8ClampedArray",
        "Int16Array",
        "Uint16Array",
        "Int32Array",
        "Uint32Array",
        "Float32Array",
        "Float64Array",
        "BigInt64Array",
        "BigUint64Array",
    ] {
        let got = text(&js, &format!("new {t}(new ArrayBuffer(16), 8, 1)"));
        let want = format!(
            r#"{{"$sc":1,"v":{{"$":"v","t":"{t}","b":{{"$":"ab","v":"AAAAAAAAAAAAAAAAAAAAAA=="}},"o":8,"l":1}}}}"#
        );
        assert_eq!(got, want, "{t}");
    }
}

/// Queue messages and Workflow values are the same text as UTF-8 bytes.
#[test]
fn bytes_flavour_is_the_text_in_utf8() {
    let js = js();
    let got = eval(
        &js,
        "new TextDecoder().decode(SC.bytes.serialize({k: [1n, '\\u00e9']}))",
    );
    assert_eq!(
        got,
        "{\"$sc\":1,\"v\":{\"$\":\"o\",\"v\":{\"k\":{\"$\":\"a\",\"v\":[{\"$\":\"bi\",\"v\":\"1\"},\"\u{e9}\"]}}}}"
    );
}

/// The comparison itself sees the differences the tests rely on it for.
#[test]
fn comparison_sees_differences() {
    let js = js();
    for (a, b) in [
        ("({a: 1})", "({a: 2})"),
        (
            "new Uint8Array(new ArrayBuffer(4), 1, 1)",
            "new Uint8Array(1)",
        ),
        ("(() => { const s = {}; return [s, s]; })()", "[{}, {}]"),
        ("[1, , 3]", "[1, undefined, 3]"),
        ("new Error('x')", "new TypeError('x')"),
        ("new Date(NaN)", "new Date(0)"),
        ("-0", "0"),
    ] {
        let d = eval(&js, &format!("same({a}, {b}, 'v', new Map(), false)"));
        assert!(!d.is_empty(), "{a} vs {b} compared equal");
    }
}

/// Every value of the fixture comes back equal, with offsets, shared buffers,
/// cycles and shared references kept.
#[test]
fn every_kind_round_trips() {
    let js = js();
    let got = eval(
        &js,
        r#"(() => {
          const bad = [];
          for (const k of Object.keys(V)) {
            for (const [name, c] of [["text", SC.text], ["bytes", SC.bytes]]) {
              const d = same(V[k], c.deserialize(c.serialize(V[k])), name + ":" + k, new Map(), false);
              if (d) bad.push(d);
            }
          }
          return bad.join("\n");
        })()"#,
    );
    assert_eq!(got, "");
}

/// The values written by the encodings before the version marker (fixtures
/// written by that code) read back as the values they were made from, less
/// what those encodings never kept.
#[test]
fn reads_values_written_before_the_version_marker() {
    let js = js();
    js.set_global("LEGACY_DURABLE", LEGACY_DURABLE);
    js.set_global("LEGACY_V8", LEGACY_V8);
    let got = eval(
        &js,
        r#"(() => {
          const bad = [];
          for (const [name, file, c] of [["durable", LEGACY_DURABLE, SC.text], ["v8", LEGACY_V8, SC.bytes]]) {
            const stored = JSON.parse(file);
            if (Object.keys(stored).join() !== Object.keys(V).join()) bad.push(name + ": fixture cases differ from values.js");
            for (const k of Object.keys(stored)) {
              const input = name === "v8" ? new TextEncoder().encode(stored[k]) : stored[k];
              let value;
              try { value = c.deserialize(input); } catch (e) { bad.push(name + ":" + k + ": threw " + e); continue; }
              const want = legacyExpected(name, k, V);
              const d = same(want, value, name + ":" + k, new Map(), name === "durable");
              if (d) bad.push(d);
            }
          }
          return bad.join("\n");
        })()"#,
    );
    assert_eq!(got, "");
}

/// Only the store a value came from decides which old encoding it is read
/// as; a value without the marker is refused where no old encoding existed.
#[test]
fn version_marker_is_checked() {
    let js = js();
    let cases: &[(&str, &str)] = &[
        (
            r#"SC.text.deserialize('{"$sc":2,"v":1}')"#,
            "THROW TypeError: structured-clone value is in format version 2; this version of Hearth reads version 1",
        ),
        (
            r#"SC.text.deserialize('{"$sc":1,"v":{"$":"zz"}}')"#,
            "THROW TypeError: corrupt structured-clone value: unknown tag zz",
        ),
        (
            r#"SC.text.deserialize('{"$sc":1,"v":{"$":"ref","i":4}}')"#,
            "THROW TypeError: corrupt structured-clone value: dangling reference",
        ),
        (
            "SC.text.deserialize('{')",
            "THROW TypeError: corrupt structured-clone value: not JSON",
        ),
        // A "__proto__" key comes back as a key, not as the prototype.
        (
            r#"(() => { const o = SC.text.deserialize(SC.text.serialize(JSON.parse('{"__proto__": {"x": 1}}'))); return String(Object.getPrototypeOf(o) === Object.prototype && Object.hasOwn(o, "__proto__") && o.x === undefined); })()"#,
            "true",
        ),
        (
            r#"(() => { const o = SC.bytes.deserialize(new TextEncoder().encode('{"$":"o","e":[["__proto__",{"$":"o","e":[["x",1]]}]]}')); return String(Object.getPrototypeOf(o) === Object.prototype && Object.hasOwn(o, "__proto__")); })()"#,
            "true",
        ),
        // "r" is a RegExp in the old Durable Object encoding ...
        (
            r#"String(SC.text.deserialize('{"$":"r","i":0,"s":"x","f":"g"}'))"#,
            "/x/g",
        ),
        // ... and a back-reference in the old queue encoding.
        (
            r#"(() => { const o = SC.bytes.deserialize(new TextEncoder().encode('{"$":"o","e":[["me",{"$":"r","i":0}]]}')); return String(o.me === o); })()"#,
            "true",
        ),
    ];
    for (src, want) in cases {
        let caught = format!(
            "(() => {{ try {{ return {src}; }} catch (e) {{ return 'THROW ' + e.name + ': ' + e.message; }} }})()"
        );
        assert_eq!(eval(&js, &caught), *want, "{src}");
    }
}

/// What cannot be serialized is refused with the DataCloneError texts
/// workerd uses; RPC also refuses class instances.
#[test]
fn refusals_name_the_value() {
    let js = js();
    let refused = |expr: &str, rpc: bool| {
        let f = if rpc { "serializeRpc" } else { "serialize" };
        eval(
            &js,
            &format!(
                "(() => {{ try {{ SC.text.{f}({expr}); return 'ok'; }} catch (e) {{ return e.name + ': ' + e.message; }} }})()"
            ),
        )
    };
    let cases: &[(&str, bool, &str)] = &[
        (
            "function f() {}",
            false,
            "DataCloneError: function f() {} could not be cloned.",
        ),
        (
            "{k: () => 1}",
            false,
            "DataCloneError: () => 1 could not be cloned.",
        ),
        (
            "Symbol('s')",
            false,
            "DataCloneError: Symbol(s) could not be cloned.",
        ),
        (
            "Promise.resolve()",
            false,
            "DataCloneError: [object Promise] could not be cloned.",
        ),
        (
            "new WeakMap()",
            false,
            "DataCloneError: [object WeakMap] could not be cloned.",
        ),
        (
            "new Request('https://x/')",
            false,
            "DataCloneError: [object Request] could not be cloned.",
        ),
        (
            "new Response('x')",
            false,
            "DataCloneError: [object Response] could not be cloned.",
        ),
        (
            "new Blob(['x'])",
            false,
            "DataCloneError: [object Blob] could not be cloned.",
        ),
        (
            "new ReadableStream()",
            false,
            "DataCloneError: [object ReadableStream] could not be cloned.",
        ),
        (
            "new (class Point {})()",
            true,
            "DataCloneError: Could not serialize object of type \"Point\". This type does not support serialization.",
        ),
        ("new (class Point {})()", false, "ok"),
        (
            "Symbol('s')",
            true,
            "DataCloneError: Symbol(s) could not be cloned.",
        ),
    ];
    for (expr, rpc, want) in cases {
        assert_eq!(refused(expr, *rpc), *want, "{expr} (rpc: {rpc})");
    }
    // The bytes flavour refuses alike.
    assert_eq!(
        eval(
            &js,
            "(() => { try { SC.bytes.serialize(Symbol('q')); } catch (e) { return e.name + ': ' + e.message; } })()"
        ),
        "DataCloneError: Symbol(q) could not be cloned."
    );
}
