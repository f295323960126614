// RPC: thrown errors come back with class and message; missing, private and non-function members.
import { Transcript } from "../../lib/transcript.js";

export default async function ({ env }) {
  const t = new Transcript();
  const stub = env.DO.getByName("rpc-errors:one");
  for (const kind of ["plain", "type", "range", "custom", "string"]) {
    await t.step(`throws ${kind}`, () => stub.throws(kind));
  }
  await t.step("async rejection", () => stub.rejects());
  await t.step("thrown error is an Error", async () => {
    try {
      await stub.throws("type");
      return "no throw";
    } catch (e) {
      return { isError: e instanceof Error, isTypeError: e instanceof TypeError };
    }
  });
  await t.step("alive after throw", () => stub.echo("still"));
  await t.step("missing method", () => stub.noSuchMethod(1));
  await t.step("missing method typeof", () => typeof stub.noSuchMethod);
  await t.step("private method", () => stub["#secret"]());
  await t.step("method using private", () => stub.usesSecret());
  await t.step("non-function property", () => stub.notAMethod());
  await t.step("constructor", () => stub.constructor());
  await t.step("kv class throws", () => env.KVDO.getByName("rpc-errors:kv").throws("range"));
  return t;
}
