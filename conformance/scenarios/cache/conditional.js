// If-None-Match and If-Modified-Since against a cached response give 304.
import { Transcript } from "../../lib/transcript.js";

const URL = "https://cache.test/conditional/a";

async function ask(headers) {
  const r = await caches.default.match(new Request(URL, { headers }));
  return { status: r.status, etag: r.headers.get("etag"), body: await r.text() };
}

export default async function () {
  const t = new Transcript();
  await caches.default.put(
    URL,
    new Response("cond", {
      headers: {
        "cache-control": "max-age=600",
        etag: '"v1"',
        "last-modified": "Wed, 21 Oct 2015 07:28:00 GMT",
      },
    }),
  );
  await t.step("matching etag", () => ask({ "if-none-match": '"v1"' }));
  await t.step("other etag", () => ask({ "if-none-match": '"v2"' }));
  await t.step("modified since earlier", () => ask({ "if-modified-since": "Tue, 20 Oct 2015 07:28:00 GMT" }));
  await t.step("not modified since later", () => ask({ "if-modified-since": "Thu, 22 Oct 2015 07:28:00 GMT" }));
  return t;
}
