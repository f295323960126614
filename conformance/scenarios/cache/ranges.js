// A Range request to a cached body is answered 206 (416 when out of range).
import { Transcript } from "../../lib/transcript.js";

const URL = "https://cache.test/ranges/a";

async function ranged(range) {
  const r = await caches.default.match(new Request(URL, { headers: { range } }));
  return {
    status: r.status,
    contentRange: r.headers.get("content-range"),
    contentLength: r.headers.get("content-length"),
    cacheStatus: r.headers.get("cf-cache-status"),
    body: r.status === 206 && r.headers.get("content-range") !== null ? await r.text() : (await r.text()).length,
  };
}

export default async function () {
  const t = new Transcript();
  await caches.default.put(
    URL,
    new Response("0123456789", { headers: { "cache-control": "max-age=600", "content-type": "text/plain" } }),
  );
  await t.step("first bytes", () => ranged("bytes=0-3"));
  await t.step("middle", () => ranged("bytes=4-6"));
  await t.step("open end", () => ranged("bytes=7-"));
  await t.step("suffix", () => ranged("bytes=-2"));
  await t.step("past the end", () => ranged("bytes=8-100"));
  await t.step("unsatisfiable", () => ranged("bytes=50-60"));
  await t.step("multiple", async () => {
    const r = await caches.default.match(new Request(URL, { headers: { range: "bytes=0-0,9-9" } }));
    const body = await r.text();
    return {
      status: r.status,
      multipart: (r.headers.get("content-type") || "").startsWith("multipart/byteranges"),
      parts: (body.match(/Content-Range: bytes \d+-\d+\/10/gi) || []).length,
    };
  });
  return t;
}
