// A handler that throws: every message of the batch is redelivered with
// attempts + 1 (retry_delay 0), even the ones nobody called ack() on.
import { Transcript } from "../../lib/transcript.js";
import { records } from "../../handlers/queues.js";

export default async function ({ env }) {
  const t = new Transcript();
  await t.step("send", () =>
    env.QUEUE.sendBatch([{ body: { s: "throws", tag: "a" } }, { body: { s: "throws", tag: "b" } }]),
  );
  const seen = await records(env, "throws:", 4);
  for (const [key, r] of Object.entries(seen).sort()) t.note(key, { body: r.body, attempts: r.attempts });
  return t;
}
