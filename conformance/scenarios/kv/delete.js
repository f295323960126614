// KV delete: existing and missing keys.
import { Transcript } from "../../lib/transcript.js";

export default async function ({ env }) {
  const t = new Transcript();
  await env.KV.put("del:a", "1");
  await t.step("delete", () => env.KV.delete("del:a"));
  await t.step("gone", () => env.KV.get("del:a"));
  await t.step("delete missing", () => env.KV.delete("del:missing"));
  await t.step("list after", () => env.KV.list({ prefix: "del:" }));
  await t.step("delete too long", () => env.KV.delete("x".repeat(513)));
  return t;
}
