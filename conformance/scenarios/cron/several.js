// Several events before one scenario, the same cron at different times: each runs once with its own scheduledTime.
import { Transcript } from "../../lib/transcript.js";

export default async function ({ env }) {
  const t = new Transcript();
  for (const time of [1700000600000, 1700000660000, 1700000720000]) {
    const { keys } = await env.KV.list({ prefix: `${time}:` });
    t.note(String(time), keys.map((k) => k.name));
    for (const k of keys) t.note(k.name, JSON.parse(await env.KV.get(k.name)));
  }
  return t;
}
