// pause, resume and terminate of a sleeping instance, and the status after each.
import { Transcript } from "../../lib/transcript.js";
import { settle, statusOf } from "../../handlers/workflows.js";

const tick = (ms) => new Promise((r) => setTimeout(r, ms));

export default async function ({ env }) {
  const t = new Transcript();
  const i = await env.FLOW.create({ id: "prt-long", params: { mode: "long", duration: "3 seconds" } });
  await tick(300);
  await t.step("pause", () => i.pause());
  await tick(100);
  await t.step("status after pause", async () => statusOf(await i.status()));
  await t.step("resume", () => i.resume());
  await t.step("terminate", () => i.terminate());
  await t.step("status after terminate", async () => statusOf(await i.status()));
  await t.step("terminate again", () => i.terminate());
  const done = await env.ECHO.create({ id: "prt-done", params: 1 });
  await settle(done);
  await t.step("terminate a complete instance", () => done.terminate());
  await t.step("complete instance status", async () => statusOf(await done.status()));
  return t;
}
