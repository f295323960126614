// create with an id and params, get(id), status() once complete, create without an id.
import { Transcript } from "../../lib/transcript.js";
import { settle, statusOf } from "../../handlers/workflows.js";

export default async function ({ env }) {
  const t = new Transcript();
  const params = { mode: "echo", n: 1, nested: { list: [1, "two", null, true] } };
  const inst = await t.step("create", async () => (await env.FLOW.create({ id: "cgs-one", params })).id);
  void inst;
  const created = await env.FLOW.get("cgs-one");
  t.note("get id", created.id);
  await t.step("status when complete", async () => statusOf(await settle(created)));
  await t.step("get again, status", async () => statusOf(await (await env.FLOW.get("cgs-one")).status()));
  await t.step("create without id", async () => {
    const i = await env.FLOW.create({ params: { mode: "echo" } });
    const s = await settle(i);
    return {
      idType: typeof i.id,
      idShape: /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(i.id),
      status: s.status,
      sameInstanceId: s.output?.instanceId === i.id,
    };
  });
  await t.step("create without options", async () => {
    // The echo workflow gets no params: its payload is then {} on both.
    const i = await env.ECHO.create();
    const s = await settle(i);
    return { status: s.status, echoed: s.output?.echoed, idType: typeof i.id };
  });
  await t.step("same id in another workflow", async () => {
    const i = await env.ECHO.create({ id: "cgs-one", params: { from: "echo" } });
    return statusOf(await settle(i));
  });
  await t.step("first workflow unchanged", async () => statusOf(await (await env.FLOW.get("cgs-one")).status()));
  return t;
}
