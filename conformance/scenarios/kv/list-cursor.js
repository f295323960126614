// KV list paged one key at a time until list_complete, with metadata and ordering.
import { Transcript } from "../../lib/transcript.js";

export default async function ({ env }) {
  const t = new Transcript();
  const keys = ["lc:b", "lc:a", "lc:\u00e9", "lc:Z", "lc:a/1", "lc:10", "lc:9"];
  for (const k of keys) await env.KV.put(k, "v", { metadata: { k } });
  const pages = [];
  let cursor;
  for (let i = 0; i < 10; i++) {
    const page = await env.KV.list({ prefix: "lc:", limit: 3, cursor });
    pages.push([page.keys.map((k) => [k.name, k.metadata]), page.list_complete, typeof page.cursor]);
    if (page.list_complete) break;
    cursor = page.cursor;
  }
  t.note("pages", pages);
  await t.step("exact limit", async () => {
    const p = await env.KV.list({ prefix: "lc:", limit: keys.length });
    return [p.keys.length, p.list_complete];
  });
  await t.step("limit above 1000", () => env.KV.list({ prefix: "lc:", limit: 1001 }));
  await t.step("cursor with other prefix", async () => {
    const first = await env.KV.list({ prefix: "lc:", limit: 1 });
    return (await env.KV.list({ prefix: "lc:", cursor: first.cursor })).keys.length;
  });
  return t;
}
