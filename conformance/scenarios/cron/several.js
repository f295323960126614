// Several events before one scenario, the same cron at different times: each runs once with its own scheduledTime.
import { recordedRuns } from "../../lib/cron.js";

export default async function ({ env }) {
  return recordedRuns(env, [1700000600000, 1700000660000, 1700000720000]);
}
