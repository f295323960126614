// createBatch: instances created in order, each runs; empty and invalid batches refused.
import { Transcript } from "../../lib/transcript.js";
import { settle, statusOf } from "../../handlers/workflows.js";

export default async function ({ env }) {
  const t = new Transcript();
  const batch = await t.step("createBatch", async () =>
    (
      await env.FLOW.createBatch([
        { id: "cb-a", params: { mode: "echo", i: 0 } },
        { id: "cb-b", params: { mode: "echo", i: 1 } },
        { id: "cb-c", params: { mode: "echo", i: 2 } },
      ])
    ).map((i) => i.id),
  );
  for (const id of batch ?? []) {
    await t.step(`settle ${id}`, async () => statusOf(await settle(await env.FLOW.get(id))));
  }
  await t.step("batch without ids", async () => {
    const made = await env.ECHO.createBatch([{ params: { k: 1 } }, { params: { k: 2 } }]);
    const done = [];
    for (const i of made) done.push((await settle(i)).output?.echoed);
    return { count: made.length, distinct: new Set(made.map((i) => i.id)).size, echoed: done };
  });
  await t.step("empty batch", () => env.FLOW.createBatch([]));
  await t.step("invalid id in batch", () => env.ECHO.createBatch([{ id: "cb-ok" }, { id: "cb bad" }]));
  return t;
}
