// waitForEvent resolved by sendEvent (sent before and after the wait starts).
import { Transcript } from "../../lib/transcript.js";
import { settle, statusOf } from "../../handlers/workflows.js";

export default async function ({ env }) {
  const t = new Transcript();
  const a = await env.FLOW.create({ id: "wfe-later", params: { mode: "wait", type: "go", timeout: "10 seconds" } });
  await new Promise((r) => setTimeout(r, 300));
  await t.step("sendEvent", () => a.sendEvent({ type: "go", payload: { answer: 42, list: ["x"] } }));
  await t.step("after event", async () => statusOf(await settle(a)));
  const b = await env.FLOW.create({ id: "wfe-early", params: { mode: "wait", type: "early-bird", timeout: 10000 } });
  await t.step("sendEvent at once", () => b.sendEvent({ type: "early-bird", payload: "text payload" }));
  await t.step("early event", async () => statusOf(await settle(b)));
  return t;
}
