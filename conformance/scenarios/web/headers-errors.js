// Headers: refused names, values and init shapes.
import { Transcript } from "../../lib/transcript.js";

export default async function () {
  const t = new Transcript();
  await t.step("bad name", () => new Headers({ "bad name": "x" }));
  await t.step("bad value newline", () => new Headers({ ok: "a\nb" }));
  await t.step("append bad name", () => new Headers().append("a:b", "x"));
  await t.step("pair of three", () => new Headers([["a", "b", "c"]]));
  await t.step("empty name", () => new Headers().set("", "x"));
  await t.step("get bad name", () => new Headers().get("bad name"));
  return t;
}
