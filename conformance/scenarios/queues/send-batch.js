// sendBatch: mixed content types and delays in one call, and what arrives.
import { Transcript } from "../../lib/transcript.js";
import { records } from "../../handlers/queues.js";

export default async function ({ env }) {
  const t = new Transcript();
  await t.step("mixed batch", () =>
    env.QUEUE.sendBatch([
      { body: "send-batch|text|a", contentType: "text" },
      { body: { s: "send-batch", tag: "json" }, contentType: "json" },
      { body: { s: "send-batch", tag: "v8", when: new Date(5) } },
      { body: new TextEncoder().encode("send-batch|bytes|z"), contentType: "bytes" },
      { body: { s: "send-batch", tag: "delayed" }, delaySeconds: 1 },
    ]),
  );
  await t.step("batch-wide delay", () =>
    env.QUEUE.sendBatch([{ body: { s: "send-batch", tag: "batch-delay" } }], { delaySeconds: 1 }),
  );
  await t.step("a generator of messages", () =>
    env.QUEUE.sendBatch(
      (function* () {
        yield { body: { s: "send-batch", tag: "generated" } };
      })(),
    ),
  );
  const seen = await records(env, "send-batch:", 7);
  for (const [key, r] of Object.entries(seen).sort()) t.note(key, { queue: r.queue, body: r.body, attempts: r.attempts });
  return t;
}
