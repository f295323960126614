// KV value size limit (25 MiB).
import { Transcript } from "../../lib/transcript.js";

export default async function ({ env }) {
  const t = new Transcript();
  const max = 25 * 1024 * 1024;
  await t.step("at limit", async () => {
    await env.KV.put("vl:max", new Uint8Array(max));
    return (await env.KV.get("vl:max", "arrayBuffer")).byteLength;
  });
  await t.step("over limit", () => env.KV.put("vl:over", new Uint8Array(max + 1)));
  await t.step("over limit absent", () => env.KV.get("vl:over"));
  return t;
}
