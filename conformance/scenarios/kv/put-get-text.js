// KV put then get: text by default, overwrite, missing keys.
import { Transcript } from "../../lib/transcript.js";

export default async function ({ env }) {
  const t = new Transcript();
  await t.step("put", () => env.KV.put("pgt:a", "first"));
  await t.step("get", () => env.KV.get("pgt:a"));
  await t.step("overwrite", () => env.KV.put("pgt:a", "second"));
  await t.step("get again", () => env.KV.get("pgt:a"));
  await t.step("get text option", () => env.KV.get("pgt:a", "text"));
  await t.step("get missing", () => env.KV.get("pgt:missing"));
  await t.step("unicode key", async () => {
    await env.KV.put("pgt:ключ/🔑", "v");
    return env.KV.get("pgt:ключ/🔑");
  });
  await t.step("empty value", async () => {
    await env.KV.put("pgt:empty", "");
    return env.KV.get("pgt:empty");
  });
  return t;
}
