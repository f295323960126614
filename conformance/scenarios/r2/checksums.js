// R2 checksums: computed MD5, supplied hashes that match or do not.
import { Transcript } from "../../lib/transcript.js";

const hex = async (alg, s) => [...new Uint8Array(await crypto.subtle.digest(alg, new TextEncoder().encode(s)))].map((b) => b.toString(16).padStart(2, "0")).join("");

export default async function ({ env }) {
  const t = new Transcript();
  const b = env.BUCKET;
  await t.step("default checksums", async () => (await b.put("ck/a", "data")).checksums.toJSON());
  await t.step("md5 match", async () => (await b.put("ck/b", "data", { md5: await hex("MD5", "data") })).checksums.toJSON());
  await t.step("md5 mismatch", async () => b.put("ck/c", "data", { md5: await hex("MD5", "other") }));
  await t.step("sha256 match", async () => (await b.put("ck/d", "data", { sha256: await hex("SHA-256", "data") })).checksums.toJSON());
  await t.step("sha256 mismatch", async () => b.put("ck/e", "data", { sha256: await hex("SHA-256", "other") }));
  await t.step("sha1 as buffer", async () => {
    const raw = await crypto.subtle.digest("SHA-1", new TextEncoder().encode("data"));
    return (await b.put("ck/f", "data", { sha1: raw })).checksums.toJSON();
  });
  await t.step("two hashes", async () => b.put("ck/g", "data", { md5: await hex("MD5", "data"), sha1: await hex("SHA-1", "data") }));
  await t.step("bad hex", () => b.put("ck/h", "data", { md5: "zz" }));
  await t.step("head checksums", async () => (await b.head("ck/d")).checksums.toJSON());
  return t;
}
