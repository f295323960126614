// A multi-step run: results of earlier steps feed later ones, configs with retries and timeout, a repeated name.
import { Transcript } from "../../lib/transcript.js";
import { settle, statusOf } from "../../handlers/workflows.js";

export default async function ({ env }) {
  const t = new Transcript();
  const i = await env.FLOW.create({ id: "steps-1", params: { mode: "steps", start: 5, label: "lbl" } });
  await t.step("status", async () => statusOf(await settle(i)));
  return t;
}
