// R2 put accepts strings, buffers, Blobs, null and sized streams.
import { Transcript } from "../../lib/transcript.js";

export default async function ({ env }) {
  const t = new Transcript();
  const b = env.BUCKET;
  const sizeOf = async (key) => (await b.head(key)).size;
  await t.step("ArrayBuffer", async () => (await b.put("pvt/ab", new Uint8Array([1, 2, 3]).buffer)).size);
  await t.step("Uint8Array", async () => (await b.put("pvt/u8", new Uint8Array([1, 2]))).size);
  await t.step("Blob", async () => (await b.put("pvt/blob", new Blob(["blob!"]))).size);
  await t.step("null", async () => (await b.put("pvt/null", null)).size);
  await t.step("fixed length stream", async () => {
    const { readable, writable } = new FixedLengthStream(4);
    const w = writable.getWriter();
    w.write(new TextEncoder().encode("abcd"));
    w.close();
    await b.put("pvt/fls", readable);
    return sizeOf("pvt/fls");
  });
  await t.step("unsized stream", () => b.put("pvt/stream", new ReadableStream({ start(c) { c.enqueue(new Uint8Array([1])); c.close(); } })));
  await t.step("number", () => b.put("pvt/num", 5));
  return t;
}
