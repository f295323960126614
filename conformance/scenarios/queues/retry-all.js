// batch.retryAll({delaySeconds: 0}) redelivers every message with attempts + 1.
import { Transcript } from "../../lib/transcript.js";
import { records } from "../../handlers/queues.js";

export default async function ({ env }) {
  const t = new Transcript();
  await t.step("send", () =>
    env.QUEUE.sendBatch([
      { body: "retry-all|a|", contentType: "text" },
      { body: { s: "retry-all", tag: "b" }, contentType: "json" },
    ]),
  );
  const seen = await records(env, "retry-all:", 4);
  for (const [key, r] of Object.entries(seen).sort()) t.note(key, { body: r.body, attempts: r.attempts });
  return t;
}
