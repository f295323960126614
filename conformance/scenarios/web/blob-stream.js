// Blob.slice, stream(), arrayBuffer/bytes/text and types.
import { Transcript } from "../../lib/transcript.js";

export default async function () {
  const t = new Transcript();
  const blob = new Blob(["héllo ", new Uint8Array([119, 111]), new Blob(["rld"])], { type: "Text/Plain" });
  t.note("size and type", [blob.size, blob.type]);
  await t.step("text", () => blob.text());
  await t.step("slice", () => blob.slice(1, 4).text());
  await t.step("slice negative", () => blob.slice(-3).text());
  await t.step("slice type", () => blob.slice(0, 1, "x/y").type);
  await t.step("slice reversed", () => blob.slice(4, 1).size);
  await t.step("stream chunks", async () => {
    const out = [];
    for await (const c of blob.stream()) out.push(c.constructor.name);
    return [out.length > 0, [...new Set(out)]];
  });
  await t.step("bytes", async () => (await blob.bytes()).length);
  await t.step("arrayBuffer", async () => (await blob.arrayBuffer()).byteLength);
  await t.step("bad type chars", () => new Blob(["x"], { type: "a\u00e9" }).type);
  await t.step("endings", () => new Blob(["a\nb"], { endings: "native" }).size);
  await t.step("not a sequence", () => new Blob("abc"));
  return t;
}
