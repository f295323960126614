// RPC: structured-clone arguments and results (both as returned and as the callee saw them).
import { Transcript } from "../../lib/transcript.js";
import { sampleValues } from "../../handlers/do.js";

export default async function ({ env }) {
  const t = new Transcript();
  const stub = env.DO.getByName("rpc-values:one");
  const values = sampleValues();
  for (const [k, v] of Object.entries(values)) {
    await t.step(`echo ${k}`, async () => {
      const [got] = await stub.echo(v);
      return { got, ctor: got === null || got === undefined ? null : got.constructor.name };
    });
    await t.step(`callee saw ${k}`, () => stub.inspect(v));
  }
  await t.step("no arguments", () => stub.echo());
  await t.step("several arguments", () => stub.echo(1, "two", [3]));
  await t.step("shared reference", async () => {
    const [got] = await stub.echo(values.shared);
    return got[0] === got[1];
  });
  await t.step("cycle", async () => {
    const o = { name: "loop" };
    o.self = o;
    const [got] = await stub.echo(o);
    return got.self === got;
  });
  await t.step("array with hole", async () => {
    const [got] = await stub.echo([1, , 3]);
    return { length: got.length, has1: 1 in got };
  });
  await t.step("class instance", async () => {
    class Point {
      constructor() {
        this.x = 1;
      }
    }
    return stub.echo(new Point());
  });
  await t.step("symbol argument", () => stub.echo(Symbol("s")));
  await t.step("kv class echo", () => env.KVDO.getByName("rpc-values:kv").echo(new Map([[1, new Set([2])]])));
  return t;
}
