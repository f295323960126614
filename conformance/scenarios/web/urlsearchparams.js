// URLSearchParams: init forms, ordering, encoding.
import { Transcript } from "../../lib/transcript.js";

export default async function () {
  const t = new Transcript();
  const p = new URLSearchParams("?b=2&a=1&a=3&c=%20x+y&d");
  t.note("get", [p.get("a"), p.get("c"), p.get("d"), p.get("none")]);
  t.note("getAll", p.getAll("a"));
  t.note("has value", [p.has("a", "3"), p.has("a", "9")]);
  p.sort();
  t.note("sorted", p.toString());
  p.delete("a", "1");
  t.note("delete value", p.toString());
  p.set("e", "ü & =");
  t.note("encode", p.toString());
  t.note("size", p.size);
  t.note("from object", new URLSearchParams({ x: "1", y: "two" }).toString());
  t.note("from pairs", new URLSearchParams([["k", "v"], ["k", "w"]]).toString());
  t.note("entries", [...new URLSearchParams("q=1&r=%zz")]);
  await t.step("bad pair", () => new URLSearchParams([["only"]]));
  return t;
}
