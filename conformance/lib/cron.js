// The cron area's scenarios read back what scheduled() recorded in KV for
// the events fired before them (keys "<scheduledTime>:<what>").
import { Transcript } from "./transcript.js";

export async function recordedRuns(env, times) {
  const t = new Transcript();
  for (const time of times) {
    const { keys } = await env.KV.list({ prefix: `${time}:` });
    t.note(String(time), keys.map((k) => k.name));
    for (const k of keys) t.note(k.name, JSON.parse(await env.KV.get(k.name)));
  }
  return t;
}
