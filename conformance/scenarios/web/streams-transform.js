// TransformStream, pipeThrough / pipeTo, WritableStream, encoder streams.
import { Transcript } from "../../lib/transcript.js";

export default async function () {
  const t = new Transcript();
  const upper = new TransformStream({
    transform(chunk, c) { c.enqueue(chunk.toUpperCase()); },
    flush(c) { c.enqueue("!"); },
  });
  const src = new ReadableStream({ start(c) { c.enqueue("ab"); c.enqueue("cd"); c.close(); } });
  const out = [];
  await src.pipeThrough(upper).pipeTo(new WritableStream({ write(chunk) { out.push(chunk); } }));
  t.note("piped", out);
  const { readable, writable } = new TransformStream();
  const w = writable.getWriter();
  w.write(new TextEncoder().encode("identity"));
  w.close();
  t.note("identity", await new Response(readable).text());
  const dec = new ReadableStream({ start(c) { c.enqueue(new Uint8Array([0xe2, 0x82])); c.enqueue(new Uint8Array([0xac])); c.close(); } })
    .pipeThrough(new TextDecoderStream());
  const parts = [];
  for await (const p of dec) parts.push(p);
  t.note("decoder stream", parts.join(""));
  const enc = new ReadableStream({ start(c) { c.enqueue("é"); c.close(); } }).pipeThrough(new TextEncoderStream());
  t.note("encoder stream", await new Response(enc).arrayBuffer());
  const failing = new TransformStream({ transform() { throw new RangeError("no"); } });
  const fw = failing.writable.getWriter();
  // The readable side pulls, so the write reaches the transformer.
  const pending = failing.readable.getReader().read().catch((e) => e.message);
  await t.step("transform throws", () => fw.write("x"));
  t.note("readable after throw", await pending);
  await t.step("write closed", async () => {
    const ws = new WritableStream();
    const wr = ws.getWriter();
    await wr.close();
    return await wr.write("late");
  });
  return t;
}
