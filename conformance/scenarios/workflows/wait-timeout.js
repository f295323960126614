// waitForEvent with nothing sent: the timeout error, caught by run.
import { Transcript } from "../../lib/transcript.js";
import { settle, statusOf } from "../../handlers/workflows.js";

export default async function ({ env }) {
  const t = new Transcript();
  const a = await env.FLOW.create({ id: "wto-ms", params: { mode: "wait-timeout", timeout: 300 } });
  const b = await env.FLOW.create({ id: "wto-str", params: { mode: "wait-timeout", timeout: "1 second" } });
  await t.step("300 ms", async () => statusOf(await settle(a)));
  await t.step("1 second", async () => statusOf(await settle(b)));
  return t;
}
