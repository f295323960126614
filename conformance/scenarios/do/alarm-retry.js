// Alarms: a run that throws is retried, and the retry sees isRetry true and retryCount 1.
import { Transcript } from "../../lib/transcript.js";

export default async function ({ env }) {
  const t = new Transcript();
  const stub = env.DO.getByName("alarm-retry:one");
  await t.step("arm", () => stub.armAlarm(50, "throw-once"));
  const deadline = Date.now() + 11000;
  let state = await stub.alarmState();
  while (state.runs.length < 1 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    state = await stub.alarmState();
  }
  t.note("after retry", state);
  return t;
}
