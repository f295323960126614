// AES-GCM and AES-CBC with fixed keys and IVs (deterministic output).
import { Transcript } from "../../lib/transcript.js";

export default async function () {
  const t = new Transcript();
  const keyBytes = new Uint8Array(16).map((_, i) => i);
  const iv = new Uint8Array(12).fill(7);
  const data = new TextEncoder().encode("attack at dawn");
  const gcm = await crypto.subtle.importKey("raw", keyBytes, "AES-GCM", true, ["encrypt", "decrypt"]);
  t.note("gcm key", [gcm.algorithm, [...gcm.usages].sort()]);
  await t.step("gcm encrypt", () => crypto.subtle.encrypt({ name: "AES-GCM", iv }, gcm, data));
  const ctBytes = await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: new Uint8Array([1]) }, gcm, data);
  t.note("gcm aad", ctBytes);
  await t.step("gcm decrypt", async () => new TextDecoder().decode(await crypto.subtle.decrypt({ name: "AES-GCM", iv, additionalData: new Uint8Array([1]) }, gcm, ctBytes)));
  await t.step("gcm tampered", () => {
    const bad = new Uint8Array(ctBytes);
    bad[0] ^= 1;
    return crypto.subtle.decrypt({ name: "AES-GCM", iv, additionalData: new Uint8Array([1]) }, gcm, bad);
  });
  const cbc = await crypto.subtle.importKey("raw", keyBytes, { name: "AES-CBC" }, false, ["encrypt", "decrypt"]);
  await t.step("cbc encrypt", () => crypto.subtle.encrypt({ name: "AES-CBC", iv: new Uint8Array(16) }, cbc, data));
  await t.step("cbc bad iv", () => crypto.subtle.encrypt({ name: "AES-CBC", iv: new Uint8Array(8) }, cbc, data));
  await t.step("bad key length", () => crypto.subtle.importKey("raw", new Uint8Array(5), "AES-GCM", true, ["encrypt"]));
  const encOnly = await crypto.subtle.importKey("raw", keyBytes, "AES-GCM", false, ["encrypt"]);
  await t.step("wrong usage", () => crypto.subtle.decrypt({ name: "AES-GCM", iv }, encOnly, ctBytes));
  return t;
}
