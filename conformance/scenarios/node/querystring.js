// node:querystring: parse/stringify, arrays, escapes, custom separators.
import qs from "node:querystring";
import { Transcript } from "../../lib/transcript.js";

export default async function () {
  const t = new Transcript();
  t.note("parse", { ...qs.parse("a=1&b=2&a=3&c&d=&e=x%20y+z") });
  t.note("parse sep", { ...qs.parse("a:1;b:2", ";", ":") });
  t.note("stringify", qs.stringify({ a: [1, 2], b: "x y", c: "", d: true, e: null, f: undefined }));
  t.note("escape", [qs.escape("a b&c/é"), qs.unescape("a%20b%zz")]);
  t.note("maxKeys", Object.keys(qs.parse("a=1&b=2&c=3", null, null, { maxKeys: 2 })));
  t.note("aliases", [qs.decode === qs.parse, qs.encode === qs.stringify]);
  return t;
}
