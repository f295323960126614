// A step that fails twice and succeeds on its third attempt (retries.limit 2).
import { Transcript } from "../../lib/transcript.js";
import { settle, statusOf } from "../../handlers/workflows.js";

export default async function ({ env }) {
  const t = new Transcript();
  const i = await env.FLOW.create({ id: "retries-1", params: { mode: "flaky" } });
  await t.step("status", async () => statusOf(await settle(i)));
  t.note("attempts counted", await env.KV.get("retries-1:flaky"));
  return t;
}
