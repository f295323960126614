// Instance ids: duplicates, bad characters, length, unknown ids; params that cannot be stored.
import { Transcript } from "../../lib/transcript.js";
import { settle } from "../../handlers/workflows.js";

export default async function ({ env }) {
  const t = new Transcript();
  const first = await env.ECHO.create({ id: "id-errors-dup", params: { n: 1 } });
  await settle(first);
  await t.step("duplicate id", async () => (await env.ECHO.create({ id: "id-errors-dup", params: { n: 2 } })).id);
  await t.step("original kept", async () => (await (await env.ECHO.get("id-errors-dup")).status()).output);
  await t.step("space in id", () => env.ECHO.create({ id: "id errors" }));
  await t.step("dot in id", () => env.ECHO.create({ id: "id.errors" }));
  await t.step("leading dash", () => env.ECHO.create({ id: "-id-errors" }));
  await t.step("empty id", () => env.ECHO.create({ id: "" }));
  await t.step("101 characters", () => env.ECHO.create({ id: "i".repeat(101) }));
  await t.step("100 characters", async () => (await env.ECHO.create({ id: "i".repeat(100) })).id.length);
  await t.step("get unknown", async () => (await env.ECHO.get("id-errors-missing")).id);
  await t.step("get invalid", async () => (await env.ECHO.get("id errors")).id);
  await t.step("params with a function", async () => (await env.ECHO.create({ id: "id-errors-fn", params: { f() {} } })).id);
  await t.step("params with a symbol", async () => (await env.ECHO.create({ id: "id-errors-sym", params: { s: Symbol("x") } })).id);
  await t.step("get after refused params", async () => (await env.ECHO.get("id-errors-fn")).id);
  return t;
}
