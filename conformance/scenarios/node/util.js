// node:util: format, inspect basics, promisify, types, deprecate, inherits.
import util, { format, promisify, types, inspect, isDeepStrictEqual } from "node:util";
import { Transcript } from "../../lib/transcript.js";

export default async function () {
  const t = new Transcript();
  t.note("format", [
    format("%s=%d", "a", 42),
    format("%i|%f", "42.9", "1.5"),
    format("%j", { a: 1 }),
    format("%o", [1]),
    format("%%", 1),
    format("extra", 1, "two"),
  ]);
  t.note("inspect", [
    inspect({ a: 1, b: "x", c: [1, 2], d: { e: null } }),
    inspect("str"),
    inspect(new Map([[1, 2]])),
    inspect([1, , 3]),
    inspect({ a: { b: { c: { d: 1 } } } }),
  ]);
  const cb = (x, done) => (x < 0 ? done(new Error("negative")) : done(null, x * 2));
  const p = promisify(cb);
  t.note("promisify", await p(21));
  await t.step("promisify rejects", () => p(-1));
  t.note("types", [
    types.isPromise(Promise.resolve()),
    types.isDate(new Date()),
    types.isRegExp(/x/),
    types.isUint8Array(new Uint8Array()),
    types.isArrayBuffer(new ArrayBuffer(1)),
    types.isAsyncFunction(async () => {}),
    types.isMap(new Map()),
  ]);
  t.note("isDeepStrictEqual", [isDeepStrictEqual({ a: [1] }, { a: [1] }), isDeepStrictEqual({ a: 1 }, { a: "1" })]);
  function A() {}
  function B() {}
  util.inherits(B, A);
  t.note("inherits", new B() instanceof A);
  t.note("callbackify", await new Promise((res) => util.callbackify(async () => 7)((e, v) => res([e, v]))));
  t.note("TextEncoder", typeof util.TextEncoder);
  await t.step("promisify non-function", () => promisify(1));
  return t;
}
