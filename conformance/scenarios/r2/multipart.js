// R2 multipart uploads: create, upload, complete, abort, part rules.
import { Transcript, r2object } from "../../lib/transcript.js";

export default async function ({ env }) {
  const t = new Transcript();
  const b = env.BUCKET;
  const MiB = 1024 * 1024;
  const up = await b.createMultipartUpload("mp/x", { customMetadata: { m: "1" }, httpMetadata: { contentType: "application/x-test" } });
  t.note("upload", { key: up.key, uploadId: typeof up.uploadId });
  // Part etags are opaque (random on the reference), so only their type is kept.
  const part = (p) => ({ partNumber: p.partNumber, etag: typeof p.etag });
  const p1 = await up.uploadPart(1, new Uint8Array(5 * MiB).fill(97));
  t.note("part 1", part(p1));
  const p2 = await up.uploadPart(2, "tail");
  t.note("part 2", part(p2));
  const parts = [
    { partNumber: 1, etag: p1.etag },
    { partNumber: 2, etag: p2.etag },
  ];
  await t.step("complete", async () => r2object(await up.complete(parts)));
  await t.step("read back", async () => {
    const o = await b.get("mp/x", { range: { suffix: 6 } });
    return [o.size, await o.text(), o.httpMetadata, o.customMetadata];
  });
  await t.step("resume", async () => part(await b.resumeMultipartUpload("mp/x", up.uploadId).uploadPart(3, "late")));
  const small = await b.createMultipartUpload("mp/small");
  const s1 = await small.uploadPart(1, "too small");
  const s2 = await small.uploadPart(2, "end");
  await t.step("small first part", () => small.complete([{ partNumber: 1, etag: s1.etag }, { partNumber: 2, etag: s2.etag }]));
  const ab = await b.createMultipartUpload("mp/aborted");
  await t.step("abort", () => ab.abort());
  await t.step("part after abort", () => ab.uploadPart(1, "x"));
  await t.step("part number 0", async () => (await b.createMultipartUpload("mp/z")).uploadPart(0, "x"));
  await t.step("wrong etag", async () => {
    const u = await b.createMultipartUpload("mp/w");
    await u.uploadPart(1, "only");
    return u.complete([{ partNumber: 1, etag: "bogus" }]);
  });
  return t;
}
