// ack() on one message, then retryAll(), then ack() on another: which
// messages come back.
import { Transcript } from "../../lib/transcript.js";
import { records } from "../../handlers/queues.js";

export default async function ({ env }) {
  const t = new Transcript();
  const s = "precedence-ack-then-retryall";
  await t.step("send", () =>
    env.QUEUE.sendBatch([{ body: { s, tag: "acked" } }, { body: { s, tag: "late-ack" } }, { body: { s, tag: "plain" } }]),
  );
  const seen = await records(env, `${s}:`, 5);
  t.note("deliveries", Object.keys(seen).sort());
  return t;
}
