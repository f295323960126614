// ReadableStream: pull sources, readers, tee, async iteration, cancel.
import { Transcript } from "../../lib/transcript.js";

async function drain(stream) {
  const out = [];
  for await (const chunk of stream) out.push(chunk);
  return out;
}

export default async function () {
  const t = new Transcript();
  let n = 0;
  const s = new ReadableStream({
    pull(c) {
      n++;
      if (n > 3) c.close();
      else c.enqueue(`chunk ${n}`);
    },
  });
  const [a, b] = s.tee();
  t.note("tee a", await drain(a));
  t.note("tee b", await drain(b));
  const r = new ReadableStream({ start(c) { c.enqueue(1); c.enqueue(2); c.close(); } }).getReader();
  t.note("reads", [await r.read(), await r.read(), await r.read()]);
  const log = [];
  const cancelable = new ReadableStream({ cancel(reason) { log.push(`cancel ${reason}`); } });
  await cancelable.cancel("stop");
  t.note("cancel", log);
  const errored = new ReadableStream({ start(c) { c.error(new TypeError("bad source")); } });
  await t.step("read errored", () => errored.getReader().read());
  const locked = new ReadableStream();
  locked.getReader();
  t.note("locked", locked.locked);
  await t.step("second reader", () => locked.getReader());
  await t.step("enqueue after close", () => new ReadableStream({ start(c) { c.close(); c.enqueue("x"); } }));
  t.note("from bytes response", (await drain(new Response("ab").body)).map((c) => c.constructor.name));
  return t;
}
