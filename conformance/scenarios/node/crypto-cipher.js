// node:crypto AES ciphers: CBC, CTR, GCM with auth tags, padding, and their errors.
import crypto from "node:crypto";
import { Transcript } from "../../lib/transcript.js";

const key16 = Buffer.alloc(16, 7);
const key32 = Buffer.alloc(32, 9);
const iv = Buffer.alloc(16, 1);

function enc(alg, key, iv, data, opts) {
  const c = crypto.createCipheriv(alg, key, iv, opts);
  return Buffer.concat([c.update(data), c.final()]);
}
function dec(alg, key, iv, data) {
  const d = crypto.createDecipheriv(alg, key, iv);
  return Buffer.concat([d.update(data), d.final()]);
}

export default async function () {
  const t = new Transcript();
  const cbc = enc("aes-128-cbc", key16, iv, Buffer.from("attack at dawn, attack at dawn!"));
  t.note("aes-128-cbc", cbc.toString("hex"));
  t.note("aes-128-cbc decrypt", dec("aes-128-cbc", key16, iv, cbc).toString());
  t.note("aes-256-cbc", enc("aes-256-cbc", key32, iv, Buffer.from("x")).toString("base64"));
  t.note("aes-256-ctr", enc("aes-256-ctr", key32, iv, Buffer.from("counter mode text")).toString("hex"));
  const g = crypto.createCipheriv("aes-256-gcm", key32, Buffer.alloc(12, 2));
  g.setAAD(Buffer.from("header"));
  const gct = Buffer.concat([g.update("gcm secret", "utf8"), g.final()]);
  const tag = g.getAuthTag();
  t.note("aes-256-gcm", [gct.toString("hex"), tag.toString("hex")]);
  const gd = crypto.createDecipheriv("aes-256-gcm", key32, Buffer.alloc(12, 2));
  gd.setAAD(Buffer.from("header"));
  gd.setAuthTag(tag);
  t.note("gcm decrypt", Buffer.concat([gd.update(gct), gd.final()]).toString());
  const bad = crypto.createDecipheriv("aes-256-gcm", key32, Buffer.alloc(12, 2));
  bad.setAuthTag(Buffer.alloc(16));
  bad.update(gct);
  await t.step("gcm wrong tag", () => bad.final());
  const np = crypto.createCipheriv("aes-128-cbc", key16, iv);
  np.setAutoPadding(false);
  await t.step("no padding partial block", () => Buffer.concat([np.update(Buffer.from("short")), np.final()]));
  await t.step("wrong key length", () => crypto.createCipheriv("aes-128-cbc", key32, iv));
  await t.step("wrong iv length", () => crypto.createCipheriv("aes-128-cbc", key16, Buffer.alloc(8)));
  await t.step("unknown cipher", () => crypto.createCipheriv("nope-128", key16, iv));
  await t.step("bad decrypt", () => dec("aes-128-cbc", Buffer.alloc(16, 8), iv, cbc));
  await t.step("update string without encoding", () => crypto.createCipheriv("aes-128-cbc", key16, iv).update("text").length);
  await t.step("update with output encoding", () => {
    const c = crypto.createCipheriv("aes-128-ctr", key16, iv);
    return c.update("text", "utf8", "hex") + c.final("hex");
  });
  t.note("getCiphers has aes-256-gcm", crypto.getCiphers().includes("aes-256-gcm"));
  return t;
}
