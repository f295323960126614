// KV list: refused limits and cursors.
import { Transcript } from "../../lib/transcript.js";

export default async function ({ env }) {
  const t = new Transcript();
  await env.KV.put("le:a", "1");
  await t.step("limit 0", () => env.KV.list({ prefix: "le:", limit: 0 }));
  await t.step("limit 1001", () => env.KV.list({ prefix: "le:", limit: 1001 }));
  await t.step("limit 1000", async () => (await env.KV.list({ prefix: "le:", limit: 1000 })).keys.length);
  await t.step("limit string", () => env.KV.list({ limit: "2", prefix: "le:" }));
  await t.step("bogus cursor", () => env.KV.list({ prefix: "le:", cursor: "not-a-cursor" }));
  await t.step("null prefix", async () => (await env.KV.list({ prefix: null })).list_complete);
  return t;
}
