// Work left to ctx.waitUntil() finishes before the event reports; a rejected waitUntil promise fails the event.
import { recordedRuns } from "../../lib/cron.js";

export default async function ({ env }) {
  return recordedRuns(env, [1700000300000, 1700000400000]);
}
