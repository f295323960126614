// node:stream: Readable/Writable/Transform, pipeline, event order, errors, web interop.
import { Readable, Writable, Transform, PassThrough, pipeline, finished } from "node:stream";
import { pipeline as pipelineP } from "node:stream/promises";
import { Transcript } from "../../lib/transcript.js";

export default async function () {
  const t = new Transcript();
  const chunks = [];
  for await (const c of Readable.from(["a", "b", "c"])) chunks.push(c);
  t.note("from + async iteration", chunks);
  const events = [];
  const r = new Readable({ read() {} });
  r.on("data", (c) => events.push(["data", c.toString()]));
  r.on("end", () => events.push(["end"]));
  r.on("close", () => events.push(["close"]));
  r.push("x");
  r.push(null);
  await new Promise((res) => r.on("close", res));
  t.note("readable events", events);
  const upper = new Transform({ transform(c, _e, cb) { cb(null, c.toString().toUpperCase()); } });
  const out = [];
  const sink = new Writable({ write(c, _e, cb) { out.push(c.toString()); cb(); } });
  await pipelineP(Readable.from(["ab", "cd"]), upper, sink);
  t.note("pipeline", out);
  const failing = new Transform({ transform(_c, _e, cb) { cb(new Error("transform failed")); } });
  const err = await new Promise((res) => pipeline(Readable.from(["z"]), failing, new PassThrough(), (e) => res(e)));
  t.note("pipeline error", err && { name: err.name, message: err.message });
  const w = new Writable({ highWaterMark: 3, write(_c, _e, cb) { setTimeout(cb, 1); } });
  t.note("backpressure", [w.write("ab"), w.write("cd"), w.writableLength, w.writableHighWaterMark]);
  await new Promise((res) => w.on("drain", res));
  t.note("drained", w.writableLength);
  w.end();
  await t.step("write after end", () => new Promise((res, rej) => w.write("x", (e) => (e ? rej(e) : res("no error")))));
  const obj = Readable.from([{ a: 1 }, { b: 2 }]);
  t.note("objectMode", [obj.readableObjectMode, (await obj.toArray()).length]);
  const web = Readable.toWeb(Readable.from([new Uint8Array([1, 2])]));
  const reader = web.getReader();
  t.note("toWeb", [(await reader.read()).value, (await reader.read()).done]);
  const fromWeb = Readable.fromWeb(new ReadableStream({ start(c) { c.enqueue(new Uint8Array([9])); c.close(); } }));
  t.note("fromWeb", Buffer.concat(await fromWeb.toArray()));
  const done = await new Promise((res) => {
    const p = new PassThrough();
    finished(p, (e) => res(e ?? "finished"));
    p.resume();
    p.end("q");
  });
  t.note("finished", done);
  const d = new Readable({ read() {} });
  d.destroy(new Error("destroyed"));
  t.note("destroy", await new Promise((res) => d.on("error", (e) => res([e.message, d.destroyed]))));
  return t;
}
