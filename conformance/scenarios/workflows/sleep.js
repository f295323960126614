// step.sleep with a number of milliseconds and with a duration string.
import { Transcript } from "../../lib/transcript.js";
import { settle, statusOf } from "../../handlers/workflows.js";

export default async function ({ env }) {
  const t = new Transcript();
  const a = await env.FLOW.create({ id: "sleep-ms", params: { mode: "sleep", duration: 200 } });
  const b = await env.FLOW.create({ id: "sleep-str", params: { mode: "sleep", duration: "1 second" } });
  await t.step("200 ms", async () => statusOf(await settle(a)));
  await t.step("1 second", async () => statusOf(await settle(b)));
  return t;
}
