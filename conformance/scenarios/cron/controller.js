// What scheduled() sees: controller.cron, scheduledTime (a number), type, noRetry, and (controller, env, ctx) as its arguments.
import { recordedRuns } from "../../lib/cron.js";

export default async function ({ env }) {
  return recordedRuns(env, [1700000000000]);
}
