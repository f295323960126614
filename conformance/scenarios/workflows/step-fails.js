// A step that always throws: errored after limit+1 attempts; caught, later steps still run.
import { Transcript } from "../../lib/transcript.js";
import { settle, statusOf } from "../../handlers/workflows.js";

export default async function ({ env }) {
  const t = new Transcript();
  const a = await env.FLOW.create({ id: "step-fails-uncaught", params: { mode: "always-throws" } });
  await t.step("uncaught", async () => statusOf(await settle(a)));
  t.note("uncaught attempts", await env.KV.get("step-fails-uncaught:doomed"));
  const b = await env.FLOW.create({ id: "step-fails-caught", params: { mode: "always-throws", catch: true } });
  await t.step("caught", async () => statusOf(await settle(b)));
  const c = await env.FLOW.create({ id: "step-fails-run", params: { mode: "throws-outside-step" } });
  await t.step("run throws", async () => statusOf(await settle(c)));
  return t;
}
