// A handler that throws after recording: the event's outcome is "exception".
import { recordedRuns } from "../../lib/cron.js";

export default async function ({ env }) {
  return recordedRuns(env, [1700000100000]);
}
