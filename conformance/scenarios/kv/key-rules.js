// KV key rules: empty, dot keys, length in bytes.
import { Transcript } from "../../lib/transcript.js";

export default async function ({ env }) {
  const t = new Transcript();
  await t.step("put empty key", () => env.KV.put("", "v"));
  await t.step("put dot", () => env.KV.put(".", "v"));
  await t.step("put dot dot", () => env.KV.put("..", "v"));
  await t.step("get empty key", () => env.KV.get(""));
  await t.step("get dot", () => env.KV.get("."));
  await t.step("delete empty key", () => env.KV.delete(""));
  await t.step("512 bytes ok", () => env.KV.put("k".repeat(512), "v"));
  await t.step("513 bytes", () => env.KV.put("k".repeat(513), "v"));
  await t.step("get 513 bytes", () => env.KV.get("k".repeat(513)));
  await t.step("multibyte over limit", () => env.KV.put("é".repeat(257), "v"));
  await t.step("number key", async () => {
    await env.KV.put(12345, "numeric");
    return env.KV.get("12345");
  });
  return t;
}
