// Work left to ctx.waitUntil() finishes before the event reports; a rejected waitUntil promise fails the event.
import { Transcript } from "../../lib/transcript.js";

export default async function ({ env }) {
  const t = new Transcript();
  for (const time of [1700000300000, 1700000400000]) {
    const { keys } = await env.KV.list({ prefix: `${time}:` });
    t.note(String(time), keys.map((k) => k.name));
    for (const k of keys) t.note(k.name, JSON.parse(await env.KV.get(k.name)));
  }
  return t;
}
