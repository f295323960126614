// message.retry({delaySeconds: 0}) redelivers that message alone with
// attempts + 1; an acknowledged neighbour is not redelivered.
import { Transcript } from "../../lib/transcript.js";
import { records } from "../../handlers/queues.js";

export default async function ({ env }) {
  const t = new Transcript();
  await t.step("send", () =>
    env.QUEUE.sendBatch([{ body: { s: "retry-ack", tag: "once" } }, { body: { s: "retry-ack", tag: "acked" } }]),
  );
  const seen = await records(env, "retry-ack:", 3);
  t.note("deliveries", Object.keys(seen).sort());
  t.note("same id on redelivery", seen["once:1"]?.id === seen["once:2"]?.id);
  t.note("same timestamp on redelivery", seen["once:1"]?.timestampMs === seen["once:2"]?.timestampMs);
  return t;
}
