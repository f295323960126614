// delete() resolves true when an entry was removed, false otherwise.
import { Transcript } from "../../lib/transcript.js";

const URL = "https://cache.test/delete/a";

export default async function () {
  const t = new Transcript();
  const cache = caches.default;
  await t.step("delete missing", () => cache.delete(URL));
  await cache.put(URL, new Response("d", { headers: { "cache-control": "max-age=600" } }));
  await t.step("delete present", () => cache.delete(new Request(URL)));
  await t.step("match after delete", () => cache.match(URL));
  await t.step("delete again", () => cache.delete(URL));
  return t;
}
