// caches.default: put() then match() returns the stored response marked HIT.
import { Transcript, response as describeResponse } from "../../lib/transcript.js";

// The Date a cache adds is the time of the put.
async function response(res) {
  const out = await describeResponse(res);
  out.headers = out.headers.map(([k, v]) => [k, k === "date" ? "<masked date>" : v]);
  return out;
}

const URL = "https://cache.test/put-match/a";

export default async function () {
  const t = new Transcript();
  const cache = caches.default;
  const stored = new Response("hello cache", {
    status: 200,
    headers: { "cache-control": "max-age=600", "content-type": "text/plain", "x-custom": "1" },
  });
  await t.step("put resolves", () => cache.put(URL, stored));
  t.note("body used after put", stored.bodyUsed);
  await t.step("match", async () => response(await cache.match(URL)));
  await t.step("match by Request", async () => response(await cache.match(new Request(URL))));
  await t.step("match missing", () => cache.match("https://cache.test/put-match/none"));
  await t.step("put replaces", async () => {
    await cache.put(URL, new Response("second", { headers: { "cache-control": "max-age=600" } }));
    return (await cache.match(URL)).text();
  });
  await t.step("empty body", async () => {
    await cache.put(URL + "/empty", new Response(null, { headers: { "cache-control": "max-age=600" } }));
    return response(await cache.match(URL + "/empty"));
  });
  await t.step("status kept", async () => {
    await cache.put(URL + "/404", new Response("nf", { status: 404, headers: { "cache-control": "max-age=600" } }));
    const r = await cache.match(URL + "/404");
    return [r.status, await r.text()];
  });
  return t;
}
