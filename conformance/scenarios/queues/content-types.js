// What a consumer sees for each content type: text, bytes, json (the
// default for this compatibility date) and v8, including Map, Date, typed arrays
// and nested values under v8.
import { Transcript } from "../../lib/transcript.js";
import { records } from "../../handlers/queues.js";

export default async function ({ env }) {
  const t = new Transcript();
  const sentAt = Date.now();
  const bytes = new TextEncoder().encode("content-types|bytes|");
  const withTail = new Uint8Array(bytes.length + 3);
  withTail.set(bytes);
  withTail.set([0, 255, 7], bytes.length);
  await t.step("text", () => env.QUEUE.send("content-types|text|héllo ☃", { contentType: "text" }));
  await t.step("bytes", () => env.QUEUE.send(withTail, { contentType: "bytes" }));
  await t.step("json", () =>
    env.QUEUE.send({ s: "content-types", tag: "json", n: 1.5, list: [1, "two", null], when: new Date(0) }, { contentType: "json" }),
  );
  await t.step("v8", () =>
    env.QUEUE.send(
      {
        s: "content-types",
        tag: "v8",
        map: new Map([["k", 1], [2, { deep: true }]]),
        set: new Set(["a"]),
        when: new Date(86400000),
        bytes: new Uint8Array([1, 2, 3]),
        big: 12345678901234567890n,
        undef: undefined,
        nan: NaN,
        re: /ab+c/gi,
      },
      { contentType: "v8" },
    ),
  );
  // Without contentType the body is JSON (compatibility date from 2024-03-18).
  await t.step("default type", () => env.QUEUE.send({ s: "content-types", tag: "default", when: new Date(1000) }));
  await t.step("v8 map at top", () => env.QUEUE.send(new Map([["s", "content-types"], ["tag", "map"], ["x", [1]]]), { contentType: "v8" }));
  await t.step("json string", () => env.QUEUE.send("content-types|json-string|x", { contentType: "json" }));
  await t.step("v8 string", () => env.QUEUE.send("content-types|v8-string|x", { contentType: "v8" }));
  await t.step("to the dead-letter queue's producer", () =>
    env.DLQ.send({ s: "content-types", tag: "direct-dlq" }),
  );
  const seen = await records(env, "content-types:", 10);
  for (const [key, r] of Object.entries(seen).sort()) {
    const { id, timestampMs, ...rest } = r;
    rest.timestampRecent = typeof timestampMs === "number" && timestampMs >= sentAt - 2000 && timestampMs <= Date.now() + 2000;
    t.note(key, rest);
  }
  return t;
}
