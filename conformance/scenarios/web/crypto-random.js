// getRandomValues and randomUUID: shapes and limits (values are random).
import { Transcript } from "../../lib/transcript.js";

export default async function () {
  const t = new Transcript();
  const a = crypto.getRandomValues(new Uint8Array(16));
  t.note("returns same array", [a.constructor.name, a.length]);
  t.note("uuid shape", /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(crypto.randomUUID()));
  await t.step("too large", () => crypto.getRandomValues(new Uint8Array(65537)).length);
  await t.step("max size", () => crypto.getRandomValues(new Uint8Array(65536)).length);
  await t.step("float array", () => crypto.getRandomValues(new Float32Array(4)));
  await t.step("bigint array", () => crypto.getRandomValues(new BigUint64Array(2)).length);
  return t;
}
