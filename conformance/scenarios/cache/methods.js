// Only GET matches and deletes, unless ignoreMethod is set.
import { Transcript } from "../../lib/transcript.js";

const URL = "https://cache.test/methods/a";

export default async function () {
  const t = new Transcript();
  const cache = caches.default;
  await cache.put(URL, new Response("m", { headers: { "cache-control": "max-age=600" } }));
  const head = new Request(URL, { method: "HEAD" });
  const post = new Request(URL, { method: "POST", body: "x" });
  await t.step("match HEAD", () => cache.match(head));
  await t.step("match POST", () => cache.match(post));
  await t.step("match HEAD ignoreMethod", async () => (await cache.match(head, { ignoreMethod: true })).text());
  await t.step("match POST ignoreMethod", async () => (await cache.match(post, { ignoreMethod: true })).text());
  await t.step("delete POST", () => cache.delete(post));
  await t.step("still there", async () => (await cache.match(URL)) !== undefined);
  await t.step("delete POST ignoreMethod", () => cache.delete(post, { ignoreMethod: true }));
  await t.step("gone", () => cache.match(URL));
  return t;
}
