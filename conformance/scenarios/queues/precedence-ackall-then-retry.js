// retry() on one message, then ackAll(), then retry() on another and
// retryAll(): which messages come back.
import { Transcript } from "../../lib/transcript.js";
import { records } from "../../handlers/queues.js";

export default async function ({ env }) {
  const t = new Transcript();
  const s = "precedence-ackall-then-retry";
  await t.step("send", () =>
    env.QUEUE.sendBatch([{ body: { s, tag: "retried" } }, { body: { s, tag: "late-retry" } }, { body: { s, tag: "plain" } }]),
  );
  const seen = await records(env, `${s}:`, 4);
  t.note("deliveries", Object.keys(seen).sort());
  return t;
}
