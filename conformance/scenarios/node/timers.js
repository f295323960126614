// node:timers and node:timers/promises: order, setImmediate, promise timers, abort.
import timers from "node:timers";
import { setTimeout as sleep, setImmediate as immediate } from "node:timers/promises";
import { Transcript } from "../../lib/transcript.js";

export default async function () {
  const t = new Transcript();
  const order = [];
  await new Promise((done) => {
    timers.setTimeout(() => order.push("timeout"), 5);
    timers.setImmediate((a) => order.push("immediate " + a), "arg");
    queueMicrotask(() => order.push("microtask"));
    timers.setTimeout(done, 20);
  });
  t.note("order", order);
  const cleared = [];
  const h = timers.setTimeout(() => cleared.push("fired"), 1);
  timers.clearTimeout(h);
  const i = timers.setImmediate(() => cleared.push("imm"));
  timers.clearImmediate(i);
  await sleep(10);
  t.note("cleared", cleared);
  t.note("promises value", [await sleep(1, "v"), await immediate("w")]);
  const ac = new AbortController();
  const p = sleep(1000, null, { signal: ac.signal });
  ac.abort();
  await t.step("aborted", () => p);
  await t.step("setImmediate non-function", () => timers.setImmediate(5));
  t.note("globals", [typeof setImmediate, typeof clearImmediate]);
  return t;
}
