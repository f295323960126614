// caches.open(name): named caches are separate from each other and from
// caches.default.
import { Transcript } from "../../lib/transcript.js";

const URL = "https://cache.test/named/a";

export default async function () {
  const t = new Transcript();
  t.note("default is stable", caches.default === caches.default);
  t.note("default is a Cache", caches.default instanceof Cache);
  t.note("caches is a CacheStorage", caches instanceof CacheStorage);
  const a = await caches.open("named-a");
  const b = await caches.open("named-b");
  const def = await caches.open("default");
  t.note("open gives a Cache", a instanceof Cache);
  await a.put(URL, new Response("in a", { headers: { "cache-control": "max-age=600" } }));
  await t.step("a has it", async () => (await a.match(URL)).text());
  await t.step("reopened a has it", async () => (await (await caches.open("named-a")).match(URL)).text());
  await t.step("b does not", () => b.match(URL));
  await t.step("default does not", () => caches.default.match(URL));
  await t.step("open('default') does not", () => def.match(URL));
  await t.step("name of 1023 bytes", async () => (await caches.open("n".repeat(1023))) instanceof Cache);
  await t.step("name of 1024 bytes", () => caches.open("n".repeat(1024)));
  await t.step("new Cache()", () => new Cache());
  return t;
}
