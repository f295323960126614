// An event whose cron is not among triggers.crons (or is empty) still runs scheduled() with that cron.
import { Transcript } from "../../lib/transcript.js";

export default async function ({ env }) {
  const t = new Transcript();
  for (const time of [1700000500000]) {
    const { keys } = await env.KV.list({ prefix: `${time}:` });
    t.note(String(time), keys.map((k) => k.name));
    for (const k of keys) t.note(k.name, JSON.parse(await env.KV.get(k.name)));
  }
  return t;
}
