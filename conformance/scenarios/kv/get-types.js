// KV get with each value type, and an unknown one.
import { Transcript } from "../../lib/transcript.js";

export default async function ({ env }) {
  const t = new Transcript();
  await env.KV.put("gt:json", JSON.stringify({ a: [1, "two"], b: null }));
  await env.KV.put("gt:text", "not json");
  await t.step("json", () => env.KV.get("gt:json", "json"));
  await t.step("json object form", () => env.KV.get("gt:json", { type: "json" }));
  await t.step("arrayBuffer", () => env.KV.get("gt:text", "arrayBuffer"));
  await t.step("stream", async () => new Response(await env.KV.get("gt:text", "stream")).text());
  await t.step("json of text", () => env.KV.get("gt:text", "json"));
  await t.step("unknown type", () => env.KV.get("gt:text", "blob"));
  await t.step("missing as json", () => env.KV.get("gt:none", "json"));
  await t.step("missing as stream", () => env.KV.get("gt:none", "stream"));
  await t.step("cacheTtl ok", () => env.KV.get("gt:text", { cacheTtl: 60 }));
  await t.step("cacheTtl too small", () => env.KV.get("gt:text", { cacheTtl: 10 }));
  return t;
}
