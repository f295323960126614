// KV expiration: absolute times, TTLs and their minimums.
import { Transcript } from "../../lib/transcript.js";

const FAR = 2000000000; // 2033-05-18, within the 32-bit range the API takes

export default async function ({ env }) {
  const t = new Transcript();
  await t.step("absolute", () => env.KV.put("ex:abs", "v", { expiration: FAR }));
  await t.step("list shows expiration", () => env.KV.list({ prefix: "ex:abs" }));
  await t.step("getWithMetadata", () => env.KV.getWithMetadata("ex:abs"));
  await t.step("ttl 60", () => env.KV.put("ex:ttl", "v", { expirationTtl: 60 }));
  await t.step("ttl listed", async () => {
    const { keys } = await env.KV.list({ prefix: "ex:ttl" });
    return keys.map((k) => [k.name, typeof k.expiration]);
  });
  await t.step("ttl 59", () => env.KV.put("ex:short", "v", { expirationTtl: 59 }));
  await t.step("ttl 0", () => env.KV.put("ex:zero", "v", { expirationTtl: 0 }));
  await t.step("ttl NaN", () => env.KV.put("ex:nan", "v", { expirationTtl: "abc" }));
  await t.step("in the past", () => env.KV.put("ex:past", "v", { expiration: 1000 }));
  await t.step("string expiration", () => env.KV.put("ex:str", "v", { expiration: String(FAR) }));
  await t.step("fractional", () => env.KV.put("ex:frac", "v", { expiration: FAR + 0.5 }));
  await t.step("fractional listed", () => env.KV.list({ prefix: "ex:frac" }));
  return t;
}
