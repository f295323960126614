// A message retried on every attempt: max_retries 2 gives three attempts,
// then it moves to the dead-letter queue (same id, body and timestamp,
// attempts starting again at 1), whose consumer sees batch.queue = the DLQ.
import { Transcript } from "../../lib/transcript.js";
import { records } from "../../handlers/queues.js";

export default async function ({ env }) {
  const t = new Transcript();
  await t.step("send", () =>
    env.QUEUE.sendBatch([{ body: { s: "dead-letter", tag: "doomed" } }, { body: { s: "dead-letter", tag: "fine" } }]),
  );
  const seen = await records(env, "dead-letter:", 5, { quietMs: 2000 });
  for (const [key, r] of Object.entries(seen).sort()) t.note(key, { queue: r.queue, body: r.body, attempts: r.attempts });
  const first = seen["doomed:1"];
  const moved = seen["doomed:dlq"];
  t.note("dead-lettered with the same id", first !== undefined && moved?.id === first.id);
  t.note("dead-lettered with the same timestamp", first !== undefined && moved?.timestampMs === first.timestampMs);
  return t;
}
