// KV metadata: stored with the value, returned by getWithMetadata and list.
import { Transcript } from "../../lib/transcript.js";

export default async function ({ env }) {
  const t = new Transcript();
  await t.step("put", () => env.KV.put("md:a", "value", { metadata: { owner: "x", n: [1, 2] } }));
  await t.step("getWithMetadata", () => env.KV.getWithMetadata("md:a"));
  await t.step("getWithMetadata json", async () => {
    await env.KV.put("md:j", '{"v":1}', { metadata: "plain string" });
    return env.KV.getWithMetadata("md:j", "json");
  });
  await t.step("without metadata", async () => {
    await env.KV.put("md:none", "v");
    return env.KV.getWithMetadata("md:none");
  });
  await t.step("missing", () => env.KV.getWithMetadata("md:missing"));
  await t.step("list", () => env.KV.list({ prefix: "md:" }));
  await t.step("overwrite drops metadata", async () => {
    await env.KV.put("md:a", "again");
    return env.KV.getWithMetadata("md:a");
  });
  await t.step("1024 bytes ok", () => env.KV.put("md:big", "v", { metadata: "x".repeat(1022) }));
  await t.step("too large", () => env.KV.put("md:big", "v", { metadata: "x".repeat(1023) }));
  await t.step("not serialisable", () => env.KV.put("md:bad", "v", { metadata: { f: 1n } }));
  return t;
}
