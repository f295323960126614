// HMAC: import, sign, verify, export, generate.
import { Transcript } from "../../lib/transcript.js";

export default async function () {
  const t = new Transcript();
  const raw = new TextEncoder().encode("secret key");
  const key = await crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, true, ["sign", "verify"]);
  t.note("key", [key.type, key.extractable, key.algorithm, [...key.usages].sort()]);
  const sig = await crypto.subtle.sign("HMAC", key, new TextEncoder().encode("message"));
  t.note("signature", sig);
  t.note("verify", await crypto.subtle.verify("HMAC", key, sig, new TextEncoder().encode("message")));
  t.note("verify wrong", await crypto.subtle.verify("HMAC", key, sig, new TextEncoder().encode("other")));
  t.note("jwk", await crypto.subtle.exportKey("jwk", key));
  t.note("raw", await crypto.subtle.exportKey("raw", key));
  const gen = await crypto.subtle.generateKey({ name: "HMAC", hash: "SHA-512" }, false, ["sign"]);
  t.note("generated", [gen.algorithm, gen.extractable]);
  await t.step("export non-extractable", () => crypto.subtle.exportKey("raw", gen));
  await t.step("verify with sign-only key", () => crypto.subtle.verify("HMAC", gen, new Uint8Array(64), new Uint8Array()));
  await t.step("empty usages", () => crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, true, []));
  return t;
}
