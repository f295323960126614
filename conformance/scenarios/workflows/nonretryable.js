// NonRetryableError: one attempt only; uncaught it errors the instance, caught run sees it.
import { Transcript } from "../../lib/transcript.js";
import { settle, statusOf } from "../../handlers/workflows.js";

export default async function ({ env }) {
  const t = new Transcript();
  const a = await env.FLOW.create({ id: "nonretryable-uncaught", params: { mode: "nonretryable" } });
  await t.step("uncaught", async () => statusOf(await settle(a)));
  t.note("uncaught attempts", await env.KV.get("nonretryable-uncaught:refuse"));
  const b = await env.FLOW.create({ id: "nonretryable-caught", params: { mode: "nonretryable", catch: true } });
  await t.step("caught", async () => statusOf(await settle(b)));
  return t;
}
