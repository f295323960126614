// Headers: case-insensitive names, combining, iteration order, Set-Cookie.
import { Transcript } from "../../lib/transcript.js";

export default async function () {
  const t = new Transcript();
  const h = new Headers({ "X-B": "2", "x-a": "1" });
  h.append("X-A", "again");
  h.set("Content-Type", "text/plain");
  t.note("get combined", h.get("x-a"));
  t.note("has", [h.has("X-B"), h.has("nope")]);
  t.note("entries sorted", [...h]);
  h.delete("x-b");
  t.note("after delete", [...h.keys()]);
  t.note("missing", h.get("missing"));
  h.append("Set-Cookie", "a=1");
  h.append("Set-Cookie", "b=2");
  t.note("getSetCookie", h.getSetCookie());
  t.note("entries with cookies", [...h]);
  t.note("from array", [...new Headers([["k", " padded value\t"]])]);
  t.note("from headers", [...new Headers(h)].length);
  const seen = [];
  h.forEach((v, k) => seen.push(`${k}=${v}`));
  t.note("forEach", seen);
  return t;
}
