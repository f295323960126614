// An event whose cron is not among triggers.crons (or is empty) still runs scheduled() with that cron.
import { recordedRuns } from "../../lib/cron.js";

export default async function ({ env }) {
  return recordedRuns(env, [1700000500000]);
}
