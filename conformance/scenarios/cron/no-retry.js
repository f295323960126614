// noRetry() then a throw: still "exception"; noRetry only stops Cloudflare's retries.
import { recordedRuns } from "../../lib/cron.js";

export default async function ({ env }) {
  return recordedRuns(env, [1700000200000]);
}
