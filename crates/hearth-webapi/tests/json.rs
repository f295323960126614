//! The native `JSON.parse`/`JSON.stringify` (src/json.rs) against QuickJS's
//! own, and against ECMA-262's JSON section.
//!
//! The differential tests run every case in two contexts of one runtime: one
//! with the Web APIs installed (the natives) and one without (QuickJS's
//! original JSON). Parse results are compared through a description that
//! does not use JSON at all (types, own keys in order, attributes, string
//! code units, number bits); failures by error class and message.

mod common;

use common::Js;
use rquickjs::{CatchResultExt, Context};

/// Describes a value without JSON: every key in order, every attribute,
/// every string's code units, every number's bits.
const DESCRIBE: &str = r#"
globalThis.describe = function describe(v) {
  if (v === null) return "null";
  switch (typeof v) {
    case "undefined": return "undefined";
    case "boolean": return "b:" + v;
    case "number": {
      const bytes = new Uint8Array(new Float64Array([v]).buffer);
      return "n:" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    }
    case "string": return "s:" + units(v);
    case "object": {
      const array = Array.isArray(v);
      const proto = Object.getPrototypeOf(v);
      if (proto !== (array ? Array.prototype : Object.prototype)) return "wrong prototype";
      const parts = Reflect.ownKeys(v).map((k) => {
        const d = Object.getOwnPropertyDescriptor(v, k);
        const attrs = array && k === "length" ? "" : (d.enumerable ? "e" : "") + (d.writable ? "w" : "") + (d.configurable ? "c" : "") + ("get" in d ? "accessor" : "");
        return (typeof k === "symbol" ? "symbol" : units(k)) + "/" + attrs + "=" + describe(d.value);
      });
      return (array ? "[" : "{") + parts.join(";") + (array ? "]" : "}");
    }
    default: return typeof v;
  }
};
function units(s) {
  let out = "";
  for (let i = 0; i < s.length; i++) out += s.charCodeAt(i).toString(16) + ",";
  return out;
}
globalThis.outcome = function outcome(f) {
  try {
    return "ok " + describe(f());
  } catch (e) {
    return "throw " + (e && e.constructor && e.constructor.name) + ": " + (e && e.message);
  }
};
"#;

struct Pair {
    js: Js,
    plain: Context,
}

impl Pair {
    fn new() -> Self {
        let js = Js::new();
        let plain = Context::full(&js.rt).unwrap();
        for ctx in [&js.ctx, &plain] {
            ctx.with(|ctx| ctx.eval::<(), _>(DESCRIBE).catch(&ctx).unwrap());
        }
        Pair { js, plain }
    }

    /// `outcome(() => <expr>)` with the global `input` set, in a context.
    fn run(ctx: &Context, input: &str, expr: &str) -> String {
        ctx.with(|ctx| {
            ctx.globals().set("input", input).unwrap();
            ctx.eval::<String, _>(format!("outcome(() => {expr})"))
                .catch(&ctx)
                .unwrap()
        })
    }

    fn native(&self, input: &str, expr: &str) -> String {
        Self::run(&self.js.ctx, input, expr)
    }

    fn original(&self, input: &str, expr: &str) -> String {
        Self::run(&self.plain, input, expr)
    }

    /// Asserts both contexts agree; returns the native outcome.
    fn same(&self, input: &str, expr: &str) -> String {
        let native = self.native(input, expr);
        let original = self.original(input, expr);
        assert_eq!(native, original, "{expr} with input {input:?}");
        native
    }
}

/// xorshift64*: a fixed seed, so a failure repeats.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const NUMBERS: &[&str] = &[
    "0",
    "-0",
    "1",
    "-1",
    "0.5",
    "-0.0",
    "1e21",
    "1E21",
    "1e+21",
    "5e-7",
    "5E-7",
    "1e-7",
    "0.000001",
    "0.0000001",
    "123456789",
    "2147483647",
    "2147483648",
    "-2147483648",
    "-2147483649",
    "4294967295",
    "4294967296",
    "9007199254740991",
    "9007199254740992",
    "9007199254740993",
    "18446744073709551615",
    "18446744073709551616",
    "123456789012345678901234567890",
    "-123456789012345678901234567890",
    "1e308",
    "1.7976931348623157e308",
    "1.7976931348623158e308",
    "1e309",
    "-1e309",
    "1e-323",
    "5e-324",
    "2e-324",
    "1e-400",
    "2.2250738585072011e-308",
    "2.2250738585072014e-308",
    "0.1",
    "0.2",
    "0.30000000000000004",
    "3.141592653589793",
    "1.0",
    "100.00",
    "1e0",
    "1e-0",
    "0e5",
    "-0e-5",
    "12345678901234567890e-10",
    "7.0e+2",
    "8.98846567431158e307",
];

const STRINGS: &[&str] = &[
    "",
    "a",
    "hello world",
    "\\\"",
    "\\\\",
    "\\/",
    "\\b",
    "\\f",
    "\\n",
    "\\r",
    "\\t",
    "\\u0000",
    "\\u001f",
    "\\u0020",
    "\\u007f",
    "\\u0080",
    "\\u00e9",
    "\\u00E9",
    "\\u2028",
    "\\u2029",
    "\\ud800",
    "\\udbff",
    "\\udc00",
    "\\udfff",
    "\\ud83d\\ude00",
    "\\ude00\\ud83d",
    "\\ud800x",
    "x\\udc00",
    "\u{e9}",
    "\u{20ac}",
    "\u{1f600}",
    "\u{7f}",
    "\u{80}",
    "\u{ff}",
    "\u{ffff}",
    "\u{fffd}",
    "a\\u0000b",
    "\u{2028}",
    "__proto__",
    "0",
    "1",
    "01",
    "-1",
    "4294967294",
    "4294967295",
    "2147483647",
    "2147483648",
    "1.5",
    "constructor",
    "toJSON",
    "\u{c3}\u{a9}",
    "\\u00c3\\u00a9",
];

const WHITESPACE: &[&str] = &["", "", "", " ", "\t", "\n", "\r\n", "  \t "];

fn gen_value(rng: &mut Rng, depth: usize, out: &mut String) {
    let ws = |rng: &mut Rng, out: &mut String| out.push_str(rng.pick(WHITESPACE));
    let kind = if depth > 5 {
        rng.below(5)
    } else {
        rng.below(8)
    };
    match kind {
        0 => out.push_str(rng.pick(&["null", "true", "false"])),
        1 => out.push_str(rng.pick(NUMBERS)),
        2 => {
            // A number from random bits, written with Rust's shortest form.
            let x = f64::from_bits(rng.next());
            if x.is_finite() {
                out.push_str(&format!("{x:e}"));
            } else {
                out.push_str(&format!("{}", rng.next() as i64));
            }
        }
        3 | 4 => {
            out.push('"');
            for _ in 0..rng.below(4) {
                out.push_str(rng.pick(STRINGS));
            }
            out.push('"');
        }
        5 => {
            out.push('[');
            let n = rng.below(5);
            for i in 0..n {
                if i > 0 {
                    out.push(',');
                }
                ws(rng, out);
                gen_value(rng, depth + 1, out);
                ws(rng, out);
            }
            out.push(']');
        }
        _ => {
            out.push('{');
            let n = rng.below(6);
            for i in 0..n {
                if i > 0 {
                    out.push(',');
                }
                ws(rng, out);
                out.push('"');
                out.push_str(rng.pick(STRINGS));
                out.push('"');
                ws(rng, out);
                out.push(':');
                ws(rng, out);
                gen_value(rng, depth + 1, out);
            }
            out.push('}');
        }
    }
}

/// Breaks a valid text: drops, inserts or swaps a character, or cuts it.
fn mutate(rng: &mut Rng, text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let at = rng.below(chars.len().max(1));
    let noise = [
        '{', '}', '[', ']', ',', ':', '"', '\\', 'x', '0', '-', '.', 'e', '\u{0}', '\t', '\u{a0}',
        '\u{feff}', '\'', 'n', 't', 'u',
    ];
    let mut out: Vec<char> = chars.clone();
    match rng.below(4) {
        0 if !out.is_empty() => {
            out.remove(at);
        }
        1 => out.insert(at.min(out.len()), noise[rng.below(noise.len())]),
        2 if !out.is_empty() => out[at] = noise[rng.below(noise.len())],
        _ => out.truncate(at),
    }
    out.into_iter().collect()
}

#[test]
fn parse_agrees_with_quickjs_on_a_generated_corpus() {
    let pair = Pair::new();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let (mut valid, mut invalid) = (0, 0);
    let before = hearth_json::counts();
    for _ in 0..3000 {
        let mut text = String::new();
        gen_value(&mut rng, 0, &mut text);
        let outcome = pair.same(&text, "JSON.parse(input)");
        if outcome.starts_with("ok") {
            valid += 1;
        }
        let broken = mutate(&mut rng, &text);
        if pair.same(&broken, "JSON.parse(input)").starts_with("throw") {
            invalid += 1;
        }
    }
    // The corpus really exercises both sides.
    assert!(valid > 2500, "only {valid} valid texts");
    assert!(invalid > 1500, "only {invalid} invalid texts");
    // Most valid texts took the native path (lone surrogate escapes and
    // numbers past f64's range are the original's).
    let after = hearth_json::counts();
    let native = after.native - before.native;
    assert!(native > 2000, "only {native} parsed natively");
}

#[test]
fn parse_errors_keep_quickjs_messages() {
    let pair = Pair::new();
    let bad = [
        "",
        " ",
        "{",
        "}",
        "[",
        "]",
        "[1,]",
        "[,1]",
        "{\"a\":1,}",
        "{,}",
        "{\"a\"}",
        "{\"a\" 1}",
        "{a:1}",
        "{'a':1}",
        "'a'",
        "\"abc",
        "\"\\x41\"",
        "\"\\u12\"",
        "\"\\u12G4\"",
        "\"\t\"",
        "\"\n\"",
        "\"\u{0}\"",
        "01",
        "-01",
        "1.",
        ".1",
        "+1",
        "-",
        "1e",
        "1e+",
        "0x10",
        "NaN",
        "Infinity",
        "-Infinity",
        "undefined",
        "nul",
        "tru",
        "falsey",
        "1 2",
        "[1] [2]",
        "\u{a0}1",
        "\u{feff}1",
        "\u{2028}1",
        "1\u{b}",
        "{\"a\":1}}",
        "[[[]]",
        "\"\\",
        "\"\\u",
        "/* c */ 1",
        "1 // c",
        "[\"a\" \"b\"]",
        "{\"a\":1 \"b\":2}",
        "--1",
        "1e1.5",
    ];
    for text in bad {
        let outcome = pair.same(text, "JSON.parse(input)");
        assert!(
            outcome.starts_with("throw SyntaxError: "),
            "{text:?}: {outcome}"
        );
    }
    // Non-string inputs are converted with ToString first, as the original does.
    for expr in [
        "JSON.parse(123)",
        "JSON.parse(null)",
        "JSON.parse(true)",
        "JSON.parse(undefined)",
        "JSON.parse()",
        "JSON.parse({ toString() { return '[1]'; } })",
        "JSON.parse(['7'])",
        "JSON.parse(Symbol())",
        "JSON.parse(1n)",
    ] {
        pair.same("", expr);
    }
}

#[test]
fn parse_follows_ecma_262() {
    let pair = Pair::new();
    let cases = [
        // Duplicate names: the last value, in the first one's position.
        (
            "{\"a\":1,\"b\":2,\"a\":3}",
            "(v => Object.keys(v).join() + '=' + v.a)(JSON.parse(input))",
            "ok s:61,2c,62,3d,33,",
        ),
        // __proto__ is an own data property; the prototype stays Object.prototype.
        (
            "{\"__proto__\":[1]}",
            "(v => Object.getPrototypeOf(v) === Object.prototype && Object.hasOwn(v, '__proto__') && Array.isArray(v.__proto__))(JSON.parse(input))",
            "ok b:true",
        ),
        // Integer-like names come first, ascending; others keep their order.
        (
            "{\"b\":1,\"10\":2,\"a\":3,\"2\":4,\"01\":5,\"-1\":6}",
            "Object.keys(JSON.parse(input)).join(' ')",
            "ok s:32,20,31,30,20,62,20,61,20,30,31,20,2d,31,",
        ),
        ("-0", "Object.is(JSON.parse(input), -0)", "ok b:true"),
        ("[-0.0]", "Object.is(JSON.parse(input)[0], -0)", "ok b:true"),
        ("1E2", "JSON.parse(input) === 100", "ok b:true"),
        (
            "123456789012345678901234567890",
            "JSON.parse(input) === 1.2345678901234568e29",
            "ok b:true",
        ),
        (
            "9007199254740993",
            "JSON.parse(input) === 9007199254740992",
            "ok b:true",
        ),
        ("1e400", "JSON.parse(input) === Infinity", "ok b:true"),
        ("-1e-400", "Object.is(JSON.parse(input), -0)", "ok b:true"),
        (
            "\"\\ud800\"",
            "(s => s.length === 1 && s.charCodeAt(0) === 0xd800)(JSON.parse(input))",
            "ok b:true",
        ),
        (
            "\"\\udc00\\ud800\"",
            "JSON.parse(input).length",
            "ok n:0000000000000040",
        ),
        (
            "\"a\\u0000b\"",
            "(s => s.length === 3 && s.charCodeAt(1) === 0)(JSON.parse(input))",
            "ok b:true",
        ),
        ("\"\\/\"", "JSON.parse(input)", "ok s:2f,"),
        (
            " \t\r\n[ 1 ,\t2 ]\n",
            "JSON.parse(input).length",
            "ok n:0000000000000040",
        ),
        (
            "{\"\u{e9}\":1}",
            "Object.keys(JSON.parse(input))[0]",
            "ok s:e9,",
        ),
        (
            "{\"0\":1}",
            "(v => Array.isArray(v) === false && v[0] === 1)(JSON.parse(input))",
            "ok b:true",
        ),
        ("[]", "JSON.parse(input).length", "ok n:0000000000000000"),
    ];
    for (input, expr, want) in cases {
        assert_eq!(pair.same(input, expr), want, "{expr} with {input:?}");
    }
}

#[test]
fn a_utf8_key_is_not_confused_with_a_latin1_name() {
    // "é" as UTF-8 bytes is C3 A9, the same bytes as the Latin-1 name "Ã©".
    let pair = Pair::new();
    let out = pair.same(
        "{\"\u{e9}\":1}",
        "(globalThis['\\u00c3\\u00a9'] = 2, Object.keys(JSON.parse(input))[0].length)",
    );
    assert_eq!(out, "ok n:000000000000f03f");
}

#[test]
fn revivers_and_deep_nesting_go_to_the_original() {
    let pair = Pair::new();
    let revived = pair.same(
        "{\"a\":[1,{\"b\":2}],\"c\":3}",
        "(() => { const seen = []; const v = JSON.parse(input, function (k, v) { seen.push(k + ':' + typeof v + ':' + (this === undefined)); return typeof v === 'number' ? v * 10 : v; }); return seen.join(' ') + ' ' + v.a[1].b; })()",
    );
    assert!(revived.starts_with("ok s:"), "{revived}");
    // A non-callable reviver is ignored.
    pair.same("[1]", "JSON.parse(input, 5).length");
    for depth in [100, 127, 128, 129, 1000, 100_000] {
        let text = "[".repeat(depth) + &"]".repeat(depth);
        let outcome = pair.same(&text, "(() => { let v = JSON.parse(input), n = 0; while (Array.isArray(v) && v.length) { v = v[0]; n++; } return n; })()");
        assert!(
            outcome.starts_with("ok") || outcome.contains("stack"),
            "{depth}: {outcome}"
        );
        let text = "{\"a\":".repeat(depth) + "1" + &"}".repeat(depth);
        pair.same(&text, "typeof JSON.parse(input)");
    }
}

/// JS source for a random value (strings as escapes, so lone surrogates and
/// every control character appear).
fn gen_source(rng: &mut Rng, depth: usize, out: &mut String) {
    let kind = if depth > 4 {
        rng.below(6)
    } else {
        rng.below(9)
    };
    match kind {
        0 => out.push_str(rng.pick(&[
            "null",
            "true",
            "false",
            "undefined",
            "NaN",
            "Infinity",
            "-Infinity",
            "-0",
            "0",
        ])),
        1 => {
            let x = f64::from_bits(rng.next());
            if x.is_finite() {
                out.push_str(&format!("({x:e})"));
            } else {
                out.push_str("-1.5");
            }
        }
        2 => {
            let pick = rng.pick(NUMBERS);
            out.push('(');
            out.push_str(pick);
            out.push(')');
        }
        3 => out.push_str(&format!("{}", (rng.next() as i64) >> rng.below(64))),
        4 | 5 => {
            out.push('"');
            for _ in 0..rng.below(6) {
                let unit = match rng.below(4) {
                    0 => rng.below(0x80) as u32,
                    1 => 0xd800 + rng.below(0x800) as u32,
                    2 => rng.below(0x10000) as u32,
                    _ => u32::from(b'a') + rng.below(26) as u32,
                };
                out.push_str(&format!("\\u{unit:04x}"));
            }
            out.push('"');
        }
        6 => {
            out.push('[');
            for _ in 0..rng.below(5) {
                gen_source(rng, depth + 1, out);
                out.push(',');
            }
            out.push(']');
        }
        _ => {
            out.push('{');
            for _ in 0..rng.below(6) {
                // Computed, so "__proto__" names a property, not the prototype.
                out.push_str("[\"");
                out.push_str(rng.pick(STRINGS));
                out.push_str("\"]:");
                gen_source(rng, depth + 1, out);
                out.push(',');
            }
            out.push('}');
        }
    }
}

#[test]
fn stringify_agrees_with_quickjs_on_a_generated_corpus() {
    let pair = Pair::new();
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    let before = hearth_json::counts();
    for _ in 0..3000 {
        let mut source = String::new();
        gen_source(&mut rng, 0, &mut source);
        // Objects with a "__proto__" key in a literal set the prototype;
        // both sides see the same value, whatever it is.
        pair.same("", &format!("JSON.stringify({source})"));
    }
    let after = hearth_json::counts();
    let (native, fallback) = (
        after.native - before.native,
        after.fallback - before.fallback,
    );
    // Left to the original: objects with an own "toJSON" key.
    assert!(
        native > 2800 && fallback < 200,
        "{native} native, {fallback} left to the original"
    );
    // Every code unit on its own, and each between two letters.
    let before = hearth_json::counts();
    for unit in 0..0x10000u32 {
        let expr = format!(
            "JSON.stringify('\\u{unit:04x}') + JSON.stringify({{ 'k\\u{unit:04x}': 'a\\u{unit:04x}b' }})"
        );
        pair.same("", &expr);
    }
    let after = hearth_json::counts();
    assert_eq!(after.native - before.native, 2 * 0x10000);
}

#[test]
fn stringify_leaves_every_special_case_to_the_original() {
    let pair = Pair::new();
    let cases = [
        "JSON.stringify({ toJSON(k) { return 'key:' + k; } })",
        "JSON.stringify({ a: { toJSON(k) { return k + '!'; } } })",
        "JSON.stringify([new Date(0)])",
        "JSON.stringify({ get a() { return 1; }, b: 2 })",
        "JSON.stringify(Object.defineProperty({}, 'a', { get() { return 5; }, enumerable: true }))",
        "JSON.stringify(Object.defineProperty({ b: 1 }, 'a', { value: 5, enumerable: false }))",
        "JSON.stringify(new Proxy({ a: 1 }, {}))",
        "JSON.stringify(new Proxy([1, 2], {}))",
        "JSON.stringify([new Number(3), new String('s'), new Boolean(false), Object(Symbol())])",
        "JSON.stringify({ f() {}, g: () => 1, s: Symbol('x'), u: undefined })",
        "JSON.stringify([function () {}, Symbol(), undefined])",
        "JSON.stringify(function () {})",
        "JSON.stringify(Symbol())",
        "JSON.stringify(undefined)",
        "JSON.stringify()",
        "(() => { const a = {}; a.self = a; return JSON.stringify(a); })()",
        "(() => { const a = []; a.push([a]); return JSON.stringify(a); })()",
        "(() => { const x = { v: 1 }; return JSON.stringify([x, x, { x }]); })()",
        "JSON.stringify([1, , 3])",
        "JSON.stringify(Object.assign([1, 2], { extra: 3 }))",
        "JSON.stringify({ [Symbol('s')]: 1, a: 2 })",
        "JSON.stringify(Object.create(null, { a: { value: 1, enumerable: true } }))",
        "JSON.stringify(Object.create({ inherited: 1 }, { own: { value: 2, enumerable: true } }))",
        "JSON.stringify(new (class P { constructor() { this.x = 1; } })())",
        "JSON.stringify(new (class Q { constructor() { this.x = 1; } toJSON() { return 'q'; } })())",
        "JSON.stringify(Object.create(new Proxy({}, {})))",
        "JSON.stringify({ b: 1, 2: 2, a: 3, 1: 4 })",
        "JSON.stringify({ a: 1 }, ['a'])",
        "JSON.stringify({ a: 1, b: [1, 2] }, null, 2)",
        "JSON.stringify({ a: 1, b: [1, 2] }, null, '--')",
        "JSON.stringify({ a: 1 }, (k, v) => (typeof v === 'number' ? v + 1 : v))",
        "JSON.stringify({ a: 1 }, null, 0)",
        "JSON.stringify({ a: 1 }, null, '')",
        "JSON.stringify({ a: 1 }, null, new Number(3))",
        "JSON.stringify({ a: [] }, undefined, undefined)",
        "JSON.stringify(new Map([[1, 2]]))",
        "JSON.stringify({ a: JSON.rawJSON('1e1000'), b: [JSON.rawJSON('\"x\"')] })",
        "JSON.stringify(JSON.rawJSON('null'))",
        "JSON.stringify(new Uint8Array([1, 2]))",
        "JSON.stringify(new Error('e'))",
        "JSON.stringify(/re/g)",
        "JSON.stringify({ __proto__: [1], own: 1 })",
        "JSON.stringify({ __proto__: null, own: 1 })",
        "(function () { return JSON.stringify(arguments); })(1, 2)",
        "JSON.stringify('\\ud800\\udc00\\udc00\\ud800')",
        "JSON.stringify({ '\\ud800': '\\udfff' })",
        "JSON.stringify([1e21, 1e-7, 5e-7, -0, 0.1, 123e-20, 2 ** 60, -(2 ** 53), 2 ** 31])",
        "JSON.stringify([Number.MAX_VALUE, Number.MIN_VALUE, Number.EPSILON, NaN, -Infinity])",
    ];
    for expr in cases {
        pair.same("", expr);
    }
    // A deep value: the original's own limit, whatever it is.
    for depth in [127, 128, 129, 5000] {
        let expr = format!(
            "(() => {{ let v = 1; for (let i = 0; i < {depth}; i++) v = i % 2 ? [v] : {{ v }}; return JSON.stringify(v).length; }})()"
        );
        pair.same("", &expr);
    }
}

#[test]
fn stringify_follows_ecma_262() {
    let pair = Pair::new();
    let text = |expr: &str| -> String {
        pair.js
            .ctx
            .with(|ctx| ctx.eval::<String, _>(expr.to_string()).catch(&ctx).unwrap())
    };
    assert_eq!(
        text("JSON.stringify([1e21, 1e20, 5e-7, 1e-6, -0, 0.1 + 0.2, 2 ** 60])"),
        "[1e+21,100000000000000000000,5e-7,0.000001,0,0.30000000000000004,1152921504606847000]"
    );
    assert_eq!(
        text("JSON.stringify([NaN, Infinity, -Infinity, undefined, () => 1, Symbol()])"),
        "[null,null,null,null,null,null]"
    );
    assert_eq!(
        text("JSON.stringify({ a: undefined, b: () => 1, c: Symbol(), d: null })"),
        "{\"d\":null}"
    );
    assert_eq!(
        text("JSON.stringify({ z: 1, 10: 2, a: 3, 2: 4 })"),
        "{\"2\":4,\"10\":2,\"z\":1,\"a\":3}"
    );
    assert_eq!(
        text("JSON.stringify('\\u0000\\u0008\\u0009\\u000a\\u000c\\u000d\\u001f\"\\\\/\\u007f')"),
        "\"\\u0000\\b\\t\\n\\f\\r\\u001f\\\"\\\\/\u{7f}\""
    );
    assert_eq!(
        text("JSON.stringify('\\ud800 \\udfff \\ud83d\\ude00 \\u2028')"),
        "\"\\ud800 \\udfff \u{1f600} \u{2028}\""
    );
    assert_eq!(text("JSON.stringify({ k: 'v' }, null)"), "{\"k\":\"v\"}");
    assert_eq!(
        text("JSON.stringify({ toJSON(key) { return [key, typeof this]; } })"),
        "[\"\",\"object\"]"
    );
    assert_eq!(
        text("JSON.stringify({ a: new Date(0) })"),
        "{\"a\":\"1970-01-01T00:00:00.000Z\"}"
    );
    assert_eq!(
        text("JSON.stringify({ get g() { return 'got'; } })"),
        "{\"g\":\"got\"}"
    );
    let cycle = text(
        "(() => { const a = [{}]; a[0].back = a; try { JSON.stringify(a); return 'no error'; } catch (e) { return e.constructor.name; } })()",
    );
    assert_eq!(cycle, "TypeError");
    let bigint = text(
        "(() => { try { JSON.stringify({ n: 1n }); return 'no error'; } catch (e) { return e.constructor.name + ': ' + e.message; } })()",
    );
    assert_eq!(bigint, "TypeError: Do not know how to serialize a BigInt");
    // A toJSON added to Object.prototype later is honoured.
    assert_eq!(
        text(
            "(() => { Object.prototype.toJSON = function () { return 'P'; }; try { return JSON.stringify({ a: 1 }) + JSON.stringify([1]); } finally { delete Object.prototype.toJSON; } })()"
        ),
        "\"P\"\"P\""
    );
    assert_eq!(
        text(
            "(() => { Array.prototype.toJSON = function () { return 'A'; }; try { return JSON.stringify({ a: [1] }); } finally { delete Array.prototype.toJSON; } })()"
        ),
        "{\"a\":\"A\"}"
    );
    // The functions look like the built-ins they replace.
    assert_eq!(
        text(
            "[JSON.parse.name, JSON.parse.length, JSON.stringify.length, Object.keys(JSON).length].join()"
        ),
        "parse,2,3,0"
    );
}

#[test]
fn body_json_uses_the_native_parser_with_the_same_results() {
    let js = Js::new();
    let out = js.run(
        "const r = new Request('http://x/', { method: 'POST', body: '{\"a\":[1,2],\"__proto__\":3}' });
         const v = await r.json();
         return [v.a, Object.hasOwn(v, '__proto__'), v.__proto__];",
    );
    assert_eq!(out, "[[1,2],true,3]");
    // A BOM is removed and invalid UTF-8 replaced before parsing, as text() does.
    let out = js.run(
        "const bytes = new Uint8Array([0xef, 0xbb, 0xbf, 0x22, 0xff, 0x22]);
         const v = await new Response(bytes).json();
         return [v.length, v.charCodeAt(0)];",
    );
    assert_eq!(out, "[1,65533]");
    let out = js.run("return await new Response(new Uint8Array([0x7b])).json();");
    let direct = js.run("return JSON.parse('{');");
    assert_eq!(out, direct);
    assert!(out.starts_with("THROW SyntaxError: "), "{out}");
    // Overriding the globals does not change what bodies do.
    let out = js.run(
        "const P = JSON.parse, S = JSON.stringify;
         JSON.parse = () => 'hijacked'; JSON.stringify = () => 'hijacked';
         try {
           const v = await new Response('[1]').json();
           const t = await Response.json({ b: v }).text();
           globalThis.result = v[0] + '|' + t;
         } finally { JSON.parse = P; JSON.stringify = S; }
         return globalThis.result;",
    );
    assert_eq!(out, r#""1|{\"b\":[1]}""#);
    let out = js.run(
        "const r = Response.json({ n: 1n });
         return 'no error';",
    );
    assert_eq!(
        out,
        "THROW TypeError: Do not know how to serialize a BigInt"
    );
}

/// nst/JSONTestSuite's parsing corpus, where a machine has it under
/// ../shared/testdata/json-test-suite/test_parsing:
/// every `y_` file parses, every `n_` file throws (a SyntaxError, or
/// QuickJS's stack RangeError for 100,000 open brackets), and for all
/// of them the native path gives exactly QuickJS's outcome, through
/// `JSON.parse` of the decoded text and through `Response.json()` of the
/// bytes.
#[test]
fn json_test_suite_parsing_corpus() {
    let dir = format!(
        "{}/../../../shared/testdata/json-test-suite/test_parsing",
        env!("CARGO_MANIFEST_DIR")
    );
    // The corpus is not part of the shared test data every machine has;
    // where it is absent the generated cases above are the evidence.
    if !std::path::Path::new(&dir).is_dir() {
        assert!(
            std::env::var("HEARTH_TEST_REQUIRE_JSON_SUITE").as_deref() != Ok("1"),
            "{dir} is missing (HEARTH_TEST_REQUIRE_JSON_SUITE=1)"
        );
        eprintln!("skipped: {dir} is missing");
        return;
    }
    let pair = Pair::new();
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {dir}: {e}"))
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert!(names.len() >= 318, "{} files", names.len());
    let mut counted = (0, 0);
    for name in &names {
        let bytes = std::fs::read(format!("{dir}/{name}")).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        let outcome = pair.same(&text, "JSON.parse(input)");
        if name.starts_with("y_") {
            assert!(outcome.starts_with("ok "), "{name}: {outcome}");
            counted.0 += 1;
        }
        if name.starts_with("n_") {
            // 100,000 open brackets exhaust QuickJS's stack before the
            // missing closers are found: its RangeError, on both sides.
            let deep = outcome == "throw RangeError: Maximum call stack size exceeded";
            assert!(
                outcome.starts_with("throw SyntaxError: ") || deep,
                "{name}: {outcome}"
            );
            counted.1 += 1;
        }
        // The body path: the native parser on the bytes, or the decoded
        // text through JSON.parse, gives what JSON.parse of the text does.
        pair.js.ctx.with(|ctx| {
            let array = rquickjs::TypedArray::<u8>::new(ctx.clone(), bytes.clone()).unwrap();
            ctx.globals().set("bytes", array).unwrap();
        });
        let body = pair.js.run(
            "try { return 'ok ' + describe(await new Response(bytes).json()); }
             catch (e) { return 'throw ' + e.constructor.name + ': ' + e.message; }",
        );
        let direct = pair
            .js
            .run("return outcome(() => JSON.parse(new TextDecoder().decode(bytes)));");
        assert_eq!(body, direct, "{name}");
    }
    assert_eq!(counted, (95, 188));
}

#[test]
fn long_arrays_and_objects_agree() {
    let pair = Pair::new();
    for n in [1023, 1024, 1025, 5000] {
        let items: Vec<String> = (0..n)
            .map(|i| format!("{{\"i\":{i},\"s\":\"v{i}\"}}"))
            .collect();
        let text = format!("[{}]", items.join(","));
        let outcome = pair.same(&text, "JSON.parse(input)");
        assert!(outcome.starts_with("ok ["), "{n}");
        pair.same(&text, "JSON.stringify(JSON.parse(input)) === input");
        let keys: Vec<String> = (0..n).map(|i| format!("\"k{}\":{i}", n - i)).collect();
        pair.same(&format!("{{{}}}", keys.join(",")), "JSON.parse(input)");
    }
}
