// Headers iteration order, combining of repeated names, and getSetCookie().
import { Transcript } from "../../lib/transcript.js";

export default async function () {
  const t = new Transcript();
  const h = new Headers([["B", "2"], ["a", "1"], ["b", "3"], ["Set-Cookie", "x=1"], ["set-cookie", "y=2"], ["c", ""]]);
  t.note("entries", [...h]);
  t.note("keys", [...h.keys()]);
  t.note("values", [...h.values()]);
  const seen = [];
  h.forEach((v, k, self) => seen.push([k, v, self === h]));
  t.note("forEach", seen);
  t.note("get combined", h.get("b"));
  t.note("get set-cookie", h.get("set-cookie"));
  await t.step("getSetCookie", () => h.getSetCookie());
  await t.step("getSetCookie none", () => new Headers({ a: "1" }).getSetCookie());
  h.delete("B");
  t.note("after delete", [...h.keys()]);
  const live = [];
  const h2 = new Headers({ a: "1", b: "2" });
  for (const [k] of h2) {
    live.push(k);
    if (k === "a") h2.set("c", "3");
  }
  t.note("mutated while iterating", live);
  await t.step("values trimmed", () => new Headers({ x: "  padded \t" }).get("x"));
  await t.step("append invalid value", () => new Headers().append("x", "a\nb"));
  return t;
}
