// Bodies of every kind round-trip: streams, binary bytes, a large body, and
// each match() gives a fresh, unread body.
import { Transcript } from "../../lib/transcript.js";

const BASE = "https://cache.test/bodies/";
const cc = { "cache-control": "max-age=600" };

async function digest(buffer) {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", buffer));
  return [...d.slice(0, 8)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

export default async function () {
  const t = new Transcript();
  const cache = caches.default;
  await t.step("stream body", async () => {
    const body = new ReadableStream({
      start(c) {
        c.enqueue(new TextEncoder().encode("chunk one, "));
        c.enqueue(new TextEncoder().encode("chunk two"));
        c.close();
      },
    });
    await cache.put(BASE + "stream", new Response(body, { headers: cc }));
    const hit = await cache.match(BASE + "stream");
    return [hit.headers.get("content-length"), await hit.text()];
  });
  await t.step("binary body", async () => {
    const bytes = new Uint8Array(256).map((_, i) => i);
    await cache.put(BASE + "binary", new Response(bytes, { headers: cc }));
    const back = new Uint8Array(await (await cache.match(BASE + "binary")).arrayBuffer());
    return [back.length, back[0], back[255], back.every((b, i) => b === i)];
  });
  await t.step("one MiB body", async () => {
    const big = new Uint8Array(1 << 20).map((_, i) => (i * 31) & 255);
    await cache.put(BASE + "big", new Response(big, { headers: cc }));
    const back = await (await cache.match(BASE + "big")).arrayBuffer();
    return [back.byteLength, await digest(back) === await digest(big)];
  });
  await t.step("each match is a fresh body", async () => {
    await cache.put(BASE + "twice", new Response("again", { headers: cc }));
    const a = await cache.match(BASE + "twice");
    const b = await cache.match(BASE + "twice");
    return [a === b, await a.text(), await b.text(), a.bodyUsed, b.bodyUsed];
  });
  await t.step("used body refused", async () => {
    const res = new Response("x", { headers: cc });
    await res.text();
    return cache.put(BASE + "used", res);
  });
  return t;
}
