// crypto.subtle.digest over every supported hash, and the refusals.
import { Transcript } from "../../lib/transcript.js";

export default async function () {
  const t = new Transcript();
  const data = new TextEncoder().encode("The quick brown fox");
  for (const alg of ["SHA-1", "SHA-256", "SHA-384", "SHA-512", "MD5", { name: "sha-256" }]) {
    await t.step(JSON.stringify(alg), () => crypto.subtle.digest(alg, data));
  }
  await t.step("empty", () => crypto.subtle.digest("SHA-256", new Uint8Array()));
  await t.step("unknown", () => crypto.subtle.digest("SHA-3", data));
  await t.step("string data", () => crypto.subtle.digest("SHA-256", "text"));
  return t;
}
