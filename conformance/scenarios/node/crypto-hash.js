// node:crypto hashes, HMAC, pbkdf2, scrypt, hkdf, timingSafeEqual and their errors.
import crypto from "node:crypto";
import { Transcript } from "../../lib/transcript.js";

export default async function () {
  const t = new Transcript();
  for (const alg of ["md5", "sha1", "sha256", "sha384", "sha512"]) {
    t.note(`hash ${alg}`, crypto.createHash(alg).update("hello ").update(Buffer.from("world")).digest("hex"));
  }
  t.note("hash base64", crypto.createHash("sha256").update("").digest("base64"));
  t.note("hash buffer", crypto.createHash("sha1").update("x").digest());
  const h = crypto.createHash("sha256").update("a");
  t.note("hash copy", [h.copy().update("b").digest("hex"), h.digest("hex")]);
  await t.step("digest twice", () => h.digest());
  await t.step("unknown hash", () => crypto.createHash("nope"));
  t.note("hmac", crypto.createHmac("sha256", "key").update("data").digest("hex"));
  t.note("hmac key buffer", crypto.createHmac("sha512", Buffer.alloc(200, 1)).update("data").digest("base64"));
  t.note("pbkdf2Sync", crypto.pbkdf2Sync("pw", "salt", 1000, 32, "sha256").toString("hex"));
  t.note("pbkdf2", await new Promise((res, rej) => crypto.pbkdf2("pw", "salt", 10, 16, "sha1", (e, k) => (e ? rej(e) : res(k.toString("hex"))))));
  t.note("scryptSync", crypto.scryptSync("pw", "salt", 16, { N: 1024 }).toString("hex"));
  t.note("hkdfSync", Buffer.from(crypto.hkdfSync("sha256", "key", "salt", "info", 16)).toString("hex"));
  t.note("timingSafeEqual", [crypto.timingSafeEqual(Buffer.from("ab"), Buffer.from("ab")), crypto.timingSafeEqual(Buffer.from("ab"), Buffer.from("ac"))]);
  await t.step("timingSafeEqual lengths", () => crypto.timingSafeEqual(Buffer.from("a"), Buffer.from("ab")));
  t.note("randomBytes", [crypto.randomBytes(8).length, typeof crypto.randomUUID(), crypto.randomUUID().length]);
  t.note("randomInt range", [0, 1, 2, 3].map(() => { const n = crypto.randomInt(5, 7); return n >= 5 && n < 7; }));
  t.note("getHashes has sha256", crypto.getHashes().includes("sha256"));
  t.note("webcrypto", [crypto.webcrypto === globalThis.crypto, typeof crypto.subtle.digest]);
  await t.step("pbkdf2 bad digest", () => crypto.pbkdf2Sync("pw", "salt", 1, 8, "nope"));
  return t;
}
