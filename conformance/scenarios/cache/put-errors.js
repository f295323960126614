// put() refuses non-GET requests, 206 responses, Vary: *, error responses.
import { Transcript } from "../../lib/transcript.js";

const BASE = "https://cache.test/put-errors/";
const ok = () => new Response("x", { headers: { "cache-control": "max-age=600" } });

export default async function () {
  const t = new Transcript();
  const cache = caches.default;
  await t.step("POST request", () => cache.put(new Request(BASE + "post", { method: "POST", body: "b" }), ok()));
  await t.step("HEAD request", () => cache.put(new Request(BASE + "head", { method: "HEAD" }), ok()));
  await t.step("206 response", () =>
    cache.put(BASE + "206", new Response("x", { status: 206, headers: { "content-range": "bytes 0-0/2" } })),
  );
  await t.step("Vary *", () => cache.put(BASE + "vary", new Response("x", { headers: { vary: "*" } })));
  await t.step("Vary list with *", () =>
    cache.put(BASE + "vary2", new Response("x", { headers: { vary: "Accept, *" } })),
  );
  await t.step("error response", () => cache.put(BASE + "err", Response.error()));
  await t.step("not a response", () => cache.put(BASE + "obj", { body: "x" }));
  await t.step("relative URL", () => cache.put("/relative", ok()));
  await t.step("304 is discarded", async () => {
    await cache.put(BASE + "304", new Response(null, { status: 304, headers: { "cache-control": "max-age=600" } }));
    return cache.match(BASE + "304");
  });
  await t.step("nothing stored by the refusals", async () =>
    Promise.all(["post", "206", "vary", "err"].map(async (k) => (await cache.match(BASE + k)) === undefined)),
  );
  return t;
}
