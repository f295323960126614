// R2 onlyIf on get and put: etag matches / does not match, dates, Headers.
import { Transcript, r2object } from "../../lib/transcript.js";

export default async function ({ env }) {
  const t = new Transcript();
  const b = env.BUCKET;
  const put = await b.put("cd/x", "v1");
  const etag = put.etag;
  const brief = (o) => (o === null ? null : { key: o.key, hasBody: "body" in o && o.body !== undefined && o.body !== null });
  await t.step("get etagMatches", async () => brief(await b.get("cd/x", { onlyIf: { etagMatches: etag } })));
  await t.step("get etagMatches miss", async () => brief(await b.get("cd/x", { onlyIf: { etagMatches: "nope" } })));
  await t.step("get etagDoesNotMatch hit", async () => brief(await b.get("cd/x", { onlyIf: { etagDoesNotMatch: etag } })));
  await t.step("get uploadedBefore past", async () => brief(await b.get("cd/x", { onlyIf: { uploadedBefore: new Date(0) } })));
  await t.step("get uploadedAfter past", async () => brief(await b.get("cd/x", { onlyIf: { uploadedAfter: new Date(0) } })));
  await t.step("get headers if-none-match", async () => brief(await b.get("cd/x", { onlyIf: new Headers({ "if-none-match": `"${etag}"` }) })));
  await t.step("put etagMatches miss", () => b.put("cd/x", "v2", { onlyIf: { etagMatches: "nope" } }));
  await t.step("unchanged", async () => (await b.get("cd/x")).text());
  await t.step("put etagMatches hit", async () => r2object(await b.put("cd/x", "v3", { onlyIf: { etagMatches: etag } })));
  await t.step("put onlyIf missing object", () => b.put("cd/new", "v", { onlyIf: { etagMatches: etag } }));
  await t.step("wildcard etag", async () => brief(await b.get("cd/x", { onlyIf: { etagMatches: "*" } })));
  await t.step("bad onlyIf type", () => b.get("cd/x", { onlyIf: { etagMatches: 5 } }));
  return t;
}
