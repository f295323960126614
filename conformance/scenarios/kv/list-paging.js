// KV list: order, prefix, limit, cursor paging, list_complete.
import { Transcript } from "../../lib/transcript.js";

export default async function ({ env }) {
  const t = new Transcript();
  for (const k of ["lp:b", "lp:a", "lp:c/1", "lp:c/2", "lp:d", "lpx"]) await env.KV.put(k, k);
  await t.step("prefix", () => env.KV.list({ prefix: "lp:" }));
  const first = await t.step("limit 2", () => env.KV.list({ prefix: "lp:", limit: 2 }));
  const page1 = await env.KV.list({ prefix: "lp:", limit: 2 });
  await t.step("page 2", () => env.KV.list({ prefix: "lp:", limit: 2, cursor: page1.cursor }));
  const page2 = await env.KV.list({ prefix: "lp:", limit: 2, cursor: page1.cursor });
  await t.step("page 3", () => env.KV.list({ prefix: "lp:", limit: 2, cursor: page2.cursor }));
  t.note("cursor is string", [typeof first.cursor, typeof page1.cursor]);
  await t.step("no match", () => env.KV.list({ prefix: "zz-none" }));
  await t.step("no options names", async () => (await env.KV.list()).keys.map((k) => k.name).filter((n) => n.startsWith("lp")));
  return t;
}
