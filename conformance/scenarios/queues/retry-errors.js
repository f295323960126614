// retry() / retryAll() with delaySeconds out of range or of the wrong type:
// only a value outside int32 throws; the last delay given is the one used.
import { Transcript } from "../../lib/transcript.js";
import { records } from "../../handlers/queues.js";

export default async function ({ env }) {
  const t = new Transcript();
  await t.step("send", () => env.QUEUE.send({ s: "retry-errors", tag: "a" }));
  const seen = await records(env, "retry-errors:", 3);
  for (const [key, r] of Object.entries(seen).sort()) {
    t.note(key, key === "observed" ? r : { body: r.body, attempts: r.attempts });
  }
  return t;
}
