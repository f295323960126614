// node:async_hooks: AsyncLocalStorage across awaits, timers, promise callbacks, nesting.
import { AsyncLocalStorage, AsyncResource } from "node:async_hooks";
import { Transcript } from "../../lib/transcript.js";

const als = new AsyncLocalStorage();

export default async function () {
  const t = new Transcript();
  t.note("outside", als.getStore());
  const seen = await als.run({ id: 1 }, async () => {
    const out = [als.getStore()];
    await null;
    out.push(als.getStore());
    await new Promise((r) => setTimeout(r, 1));
    out.push(als.getStore());
    out.push(await new Promise((r) => setTimeout(() => r(als.getStore()), 1)));
    out.push(await Promise.resolve().then(() => als.getStore()));
    out.push(await als.run({ id: 2 }, async () => { await null; return als.getStore(); }));
    out.push(als.getStore());
    return out;
  });
  t.note("run", seen);
  t.note("after run", als.getStore());
  t.note("run return", als.run(5, (a, b) => [als.getStore(), a, b], "x", "y"));
  t.note("exit", als.run(6, () => als.exit(() => als.getStore())));
  const bound = als.run(7, () => AsyncLocalStorage.bind(() => als.getStore()));
  t.note("bind", bound());
  const snap = als.run(8, () => AsyncLocalStorage.snapshot());
  t.note("snapshot", snap(() => als.getStore()));
  const res = als.run(9, () => new AsyncResource("X"));
  t.note("AsyncResource", res.runInAsyncScope(() => als.getStore()));
  const both = await Promise.all([
    als.run("a", async () => { await new Promise((r) => setTimeout(r, 2)); return als.getStore(); }),
    als.run("b", async () => { await new Promise((r) => setTimeout(r, 1)); return als.getStore(); }),
  ]);
  t.note("concurrent", both);
  return t;
}
