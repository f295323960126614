// R2 key rules: length limit in bytes, unusual characters.
import { Transcript, r2object } from "../../lib/transcript.js";

export default async function ({ env }) {
  const t = new Transcript();
  const b = env.BUCKET;
  await t.step("1024 bytes", async () => (await b.put("k".repeat(1024), "v")).key.length);
  await t.step("1025 bytes", () => b.put("k".repeat(1025), "v"));
  await t.step("get 1025 bytes", () => b.get("k".repeat(1025)));
  await t.step("head 1025 bytes", () => b.head("k".repeat(1025)));
  await t.step("empty key", async () => r2object(await b.put("", "v")));
  await t.step("odd characters", async () => {
    await b.put("kr/ sp%20ace/../ü?#", "v");
    return (await b.list({ prefix: "kr/" })).objects.map((o) => o.key);
  });
  return t;
}
