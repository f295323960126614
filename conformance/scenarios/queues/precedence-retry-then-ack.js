// retry() then ack() on the same message: the first call wins.
import { Transcript } from "../../lib/transcript.js";
import { records } from "../../handlers/queues.js";

export default async function ({ env }) {
  const t = new Transcript();
  const s = "precedence-retry-then-ack";
  await t.step("send", () => env.QUEUE.sendBatch([{ body: { s, tag: "a" } }, { body: { s, tag: "b" } }]));
  const seen = await records(env, `${s}:`, 4);
  t.note("deliveries", Object.keys(seen).sort());
  return t;
}
