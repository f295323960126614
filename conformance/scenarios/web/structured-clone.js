// structuredClone: supported types, cycles, refusals.
import { Transcript } from "../../lib/transcript.js";

export default async function () {
  const t = new Transcript();
  const src = { d: new Date(0), m: new Map([[1, "a"]]), s: new Set([1, 2]), r: /x/gi, u: new Uint8Array([1, 2]), n: null, big: 5n };
  src.self = src;
  const c = structuredClone(src);
  t.note("values", { d: c.d, m: c.m, s: c.s, r: c.r, u: c.u, n: c.n, big: c.big });
  t.note("cycle kept", c.self === c);
  t.note("distinct", c !== src && c.m !== src.m);
  t.note("error clone", structuredClone(new RangeError("boom")));
  t.note("arraybuffer", structuredClone(new Uint8Array([9]).buffer));
  await t.step("function", () => structuredClone({ f() {} }));
  await t.step("symbol", () => structuredClone(Symbol("s")));
  class K { constructor() { this.x = 1; } }
  const k = structuredClone(new K());
  t.note("class instance", [k.constructor === Object, k.x]);
  const buf = new ArrayBuffer(4);
  const moved = structuredClone(buf, { transfer: [buf] });
  t.note("transfer", [buf.byteLength, moved.byteLength]);
  return t;
}
