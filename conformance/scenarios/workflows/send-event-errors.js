// sendEvent: invalid types refused, and events to finished instances.
import { Transcript } from "../../lib/transcript.js";
import { settle } from "../../handlers/workflows.js";

export default async function ({ env }) {
  const t = new Transcript();
  const i = await env.FLOW.create({ id: "see-wait", params: { mode: "wait", type: "ok-type", timeout: "10 seconds" } });
  await t.step("type with a space", () => i.sendEvent({ type: "bad type", payload: 1 }));
  await t.step("type with a dot", () => i.sendEvent({ type: "bad.type", payload: 1 }));
  await t.step("type of 101 characters", () => i.sendEvent({ type: "t".repeat(101), payload: 1 }));
  await t.step("valid type", () => i.sendEvent({ type: "ok-type", payload: "finally" }));
  await t.step("settled", async () => (await settle(i)).output);
  const done = await env.ECHO.create({ id: "see-done", params: 1 });
  await settle(done);
  await t.step("event to a finished instance", () => done.sendEvent({ type: "late", payload: 1 }));
  return t;
}
