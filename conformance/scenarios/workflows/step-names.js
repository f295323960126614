// Step names: 256 characters allowed, 257 and control characters refused.
import { Transcript } from "../../lib/transcript.js";
import { settle, statusOf } from "../../handlers/workflows.js";

export default async function ({ env }) {
  const t = new Transcript();
  const a = await env.FLOW.create({ id: "step-names-1", params: { mode: "step-names" } });
  await t.step("status", async () => statusOf(await settle(a)));
  return t;
}
