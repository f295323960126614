// KV bulk get: a Map for up to 100 keys, text or json only.
import { Transcript } from "../../lib/transcript.js";

export default async function ({ env }) {
  const t = new Transcript();
  await env.KV.put("bg:a", '{"n":1}');
  await env.KV.put("bg:b", "plain", { metadata: { m: true } });
  await t.step("text", () => env.KV.get(["bg:a", "bg:b", "bg:missing"]));
  await t.step("json", () => env.KV.get(["bg:a"], "json"));
  await t.step("json bad", () => env.KV.get(["bg:a", "bg:b"], "json"));
  await t.step("with metadata", () => env.KV.getWithMetadata(["bg:a", "bg:b"]));
  await t.step("arrayBuffer refused", () => env.KV.get(["bg:a"], "arrayBuffer"));
  await t.step("stream refused", () => env.KV.get(["bg:a"], { type: "stream" }));
  await t.step("100 keys", async () => (await env.KV.get(Array.from({ length: 100 }, (_, i) => `bg:${i}`))).size);
  await t.step("101 keys", () => env.KV.get(Array.from({ length: 101 }, (_, i) => `bg:${i}`)));
  await t.step("empty list", () => env.KV.get([]));
  await t.step("duplicate keys", () => env.KV.get(["bg:a", "bg:a"]));
  return t;
}
