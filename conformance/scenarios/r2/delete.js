// R2 delete: one key, many keys, missing keys.
import { Transcript } from "../../lib/transcript.js";

export default async function ({ env }) {
  const t = new Transcript();
  const b = env.BUCKET;
  for (const k of ["del/a", "del/b", "del/c"]) await b.put(k, "x");
  await t.step("delete one", () => b.delete("del/a"));
  await t.step("gone", () => b.head("del/a"));
  await t.step("delete many", () => b.delete(["del/b", "del/c", "del/none"]));
  await t.step("left", async () => (await b.list({ prefix: "del/" })).objects.length);
  await t.step("delete missing", () => b.delete("del/none"));
  await t.step("delete 1001", () => b.delete(Array.from({ length: 1001 }, (_, i) => `del/${i}`)));
  return t;
}
