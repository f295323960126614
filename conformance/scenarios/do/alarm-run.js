// Alarms run: alarm() sees retryCount 0 / isRetry false, and the alarm is cleared once it ran.
import { Transcript } from "../../lib/transcript.js";

async function waitForRuns(stub, count) {
  const deadline = Date.now() + 5000;
  let state = await stub.alarmState();
  while (state.runs.length < count && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    state = await stub.alarmState();
  }
  return state;
}

export default async function ({ env }) {
  const t = new Transcript();
  for (const [label, ns] of [["sqlite", env.DO], ["kv", env.KVDO]]) {
    const stub = ns.getByName("alarm-run:" + label);
    await t.step(`${label} arm`, () => stub.armAlarm(100, "normal"));
    await t.step(`${label} ran`, () => waitForRuns(stub, 1));
  }
  return t;
}
