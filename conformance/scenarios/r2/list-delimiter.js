// R2 list with a delimiter and include options.
import { Transcript } from "../../lib/transcript.js";

export default async function ({ env }) {
  const t = new Transcript();
  const b = env.BUCKET;
  for (const k of ["dl/a.txt", "dl/dir1/x", "dl/dir1/y", "dl/dir2/z", "dl/b.txt"]) {
    await b.put(k, k, { httpMetadata: { contentType: "text/plain" }, customMetadata: { k } });
  }
  const summary = (l) => ({ keys: l.objects.map((o) => o.key), prefixes: l.delimitedPrefixes, truncated: l.truncated });
  await t.step("delimiter", async () => summary(await b.list({ prefix: "dl/", delimiter: "/" })));
  await t.step("delimiter limit", async () => summary(await b.list({ prefix: "dl/", delimiter: "/", limit: 2 })));
  await t.step("no include", async () => {
    const o = (await b.list({ prefix: "dl/a" })).objects[0];
    return { http: o.httpMetadata, custom: o.customMetadata };
  });
  await t.step("include both", async () => {
    const o = (await b.list({ prefix: "dl/a", include: ["httpMetadata", "customMetadata"] })).objects[0];
    return { http: o.httpMetadata, custom: o.customMetadata };
  });
  await t.step("bad include", () => b.list({ include: ["nope"] }));
  return t;
}
