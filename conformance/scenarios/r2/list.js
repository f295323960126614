// R2 list: prefix, limit, cursor, truncated, startAfter.
import { Transcript, r2object } from "../../lib/transcript.js";

const summary = (l) => ({
  keys: l.objects.map((o) => o.key),
  truncated: l.truncated,
  hasCursor: typeof l.cursor === "string" && l.cursor.length > 0,
  delimitedPrefixes: l.delimitedPrefixes,
});

export default async function ({ env }) {
  const t = new Transcript();
  const b = env.BUCKET;
  for (const k of ["ls/c", "ls/a", "ls/b", "ls/d/1", "ls/d/2", "lsx"]) await b.put(k, k);
  await t.step("prefix", async () => summary(await b.list({ prefix: "ls/" })));
  const p1 = await b.list({ prefix: "ls/", limit: 2 });
  t.note("page 1", summary(p1));
  const p2 = await b.list({ prefix: "ls/", limit: 2, cursor: p1.cursor });
  t.note("page 2", summary(p2));
  await t.step("page 3", async () => summary(await b.list({ prefix: "ls/", limit: 2, cursor: p2.cursor })));
  await t.step("startAfter", async () => summary(await b.list({ prefix: "ls/", startAfter: "ls/b" })));
  await t.step("object shape", async () => r2object((await b.list({ prefix: "ls/a" })).objects[0]));
  await t.step("limit 0", () => b.list({ limit: 0 }));
  await t.step("limit 1001", () => b.list({ limit: 1001 }));
  await t.step("bad cursor", () => b.list({ cursor: "garbage" }));
  return t;
}
