// ECDSA P-256 and Ed25519: generate, sign, verify, export shapes.
import { Transcript } from "../../lib/transcript.js";

export default async function () {
  const t = new Transcript();
  const pair = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"]);
  t.note("public", [pair.publicKey.type, pair.publicKey.algorithm, pair.publicKey.usages]);
  t.note("private", [pair.privateKey.type, pair.privateKey.usages]);
  const msg = new TextEncoder().encode("signed");
  const sig = await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, pair.privateKey, msg);
  t.note("signature length", sig.byteLength);
  t.note("verify", await crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, pair.publicKey, sig, msg));
  const jwk = await crypto.subtle.exportKey("jwk", pair.publicKey);
  t.note("jwk fields", Object.keys(jwk).sort());
  t.note("raw public length", (await crypto.subtle.exportKey("raw", pair.publicKey)).byteLength);
  await t.step("sign with public", () => crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, pair.publicKey, msg));
  await t.step("unknown curve", () => crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-999" }, true, ["sign"]));
  await t.step("unknown algorithm", () => crypto.subtle.generateKey({ name: "NOPE" }, true, ["sign"]));
  return t;
}
