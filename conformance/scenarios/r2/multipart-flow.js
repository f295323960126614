// R2 multipart: parts out of order, listing while in progress, completing twice, empty part lists.
import { Transcript, r2object } from "../../lib/transcript.js";

const MB5 = 5 * 1024 * 1024;

export default async function ({ env }) {
  const t = new Transcript();
  const b = env.BUCKET;
  const up = await b.createMultipartUpload("mpf/x", { customMetadata: { a: "1" }, httpMetadata: { contentType: "text/plain" } });
  t.note("upload fields", [up.key, typeof up.uploadId]);
  const p2 = await up.uploadPart(2, "tail");
  const p1 = await up.uploadPart(1, new Uint8Array(MB5).fill(97).buffer);
  t.note("part shapes", [p1.partNumber, typeof p1.etag, p2.partNumber]);
  await t.step("not listed while in progress", async () => (await b.list({ prefix: "mpf/" })).objects.length);
  await t.step("head while in progress", () => b.head("mpf/x"));
  // Every part but the last listed must be at least 5 MiB, so this order fails.
  await t.step("complete out of order", () => up.complete([p2, p1]));
  await t.step("still pending", async () => (await b.head("mpf/x")) === null);
  await t.step("complete", async () => {
    const o = await up.complete([p1, p2]);
    return [o.size, o.customMetadata, o.httpMetadata.contentType, o.etag.endsWith("-2")];
  });
  await t.step("tail bytes", async () => (await b.get("mpf/x", { range: { suffix: 4 } })).text());
  await t.step("complete twice", () => up.complete([p1, p2]));
  await t.step("abort completed", () => up.abort());
  const empty = await b.createMultipartUpload("mpf/empty");
  await t.step("complete no parts", async () => r2object(await empty.complete([])));
  const ab = await b.createMultipartUpload("mpf/ab");
  await t.step("abort twice", async () => { await ab.abort(); return ab.abort(); });
  return t;
}
