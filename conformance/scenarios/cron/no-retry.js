// noRetry() then a throw: still "exception"; noRetry only stops Cloudflare's retries.
import { Transcript } from "../../lib/transcript.js";

export default async function ({ env }) {
  const t = new Transcript();
  for (const time of [1700000200000]) {
    const { keys } = await env.KV.list({ prefix: `${time}:` });
    t.note(String(time), keys.map((k) => k.name));
    for (const k of keys) t.note(k.name, JSON.parse(await env.KV.get(k.name)));
  }
  return t;
}
