// node:events: EventEmitter ordering, once, errors, listener counts, once().
import EventEmitter, { once } from "node:events";
import { Transcript } from "../../lib/transcript.js";

export default async function () {
  const t = new Transcript();
  const e = new EventEmitter();
  const seen = [];
  e.on("x", (a) => seen.push(["on", a]));
  e.prependListener("x", (a) => seen.push(["prepend", a]));
  e.once("x", (a) => seen.push(["once", a]));
  t.note("emit returns", [e.emit("x", 1), e.emit("x", 2), e.emit("nobody")]);
  t.note("order", seen);
  t.note("counts", [e.listenerCount("x"), e.eventNames()]);
  e.removeAllListeners("x");
  t.note("after removeAll", e.listenerCount("x"));
  await t.step("unhandled error", () => e.emit("error", new Error("boom")));
  await t.step("error non-Error", () => e.emit("error", "text"));
  t.note("maxListeners", [e.getMaxListeners(), EventEmitter.defaultMaxListeners]);
  const p = once(e, "ready");
  e.emit("ready", "a", "b");
  t.note("once()", await p);
  const r = once(e, "later");
  e.emit("error", new Error("rejects once"));
  await t.step("once() rejects on error", () => r);
  const meta = [];
  const f = new EventEmitter();
  f.on("newListener", (n) => meta.push(n));
  f.on("a", () => {});
  t.note("newListener", meta);
  await t.step("bad listener", () => f.on("a", 5));
  return t;
}
