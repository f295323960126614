// R2 storageClass as put, head, get and list report it.
import { Transcript } from "../../lib/transcript.js";

export default async function ({ env }) {
  const t = new Transcript();
  const b = env.BUCKET;
  await t.step("put", async () => (await b.put("sc/x", "v")).storageClass);
  await t.step("head", async () => (await b.head("sc/x")).storageClass);
  await t.step("get", async () => (await b.get("sc/x")).storageClass);
  await t.step("list", async () => (await b.list({ prefix: "sc/" })).objects.map((o) => o.storageClass));
  await t.step("explicit Standard", async () => (await b.put("sc/y", "v", { storageClass: "Standard" })).storageClass);
  await t.step("unknown class", () => b.put("sc/z", "v", { storageClass: "Glacier" }));
  return t;
}
