// Blob and File: parts, types, slicing, readers.
import { Transcript } from "../../lib/transcript.js";

export default async function () {
  const t = new Transcript();
  const b = new Blob(["ab", new Uint8Array([99]), new Blob(["d"])], { type: "Text/Plain" });
  t.note("blob", [b.size, b.type, await b.text()]);
  t.note("slice", [await b.slice(1, 3).text(), await b.slice(-2).text(), b.slice(0, 1, "x/y").type]);
  t.note("arrayBuffer", await b.arrayBuffer());
  t.note("stream", await new Response(b.stream()).text());
  t.note("bytes", typeof b.bytes === "function" ? await b.bytes() : "<no bytes()>");
  const f = new File(["content"], "name.txt", { type: "text/plain", lastModified: 42 });
  t.note("file", [f.name, f.size, f.type, f.lastModified, f instanceof Blob]);
  t.note("bad type dropped", new Blob([], { type: "a\u0001b" }).type);
  await t.step("file no name", () => new File(["x"]));
  t.note("number part", await new Blob([12, true]).text());
  return t;
}
