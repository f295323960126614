// Alarms: setAlarm/getAlarm/deleteAlarm and bad alarm times (SQLite- and KV-backed).
import { Transcript } from "../../lib/transcript.js";

export default async function ({ env }) {
  const t = new Transcript();
  t.note("sqlite", await env.DO.getByName("alarm-api:sql").alarmApi());
  t.note("kv", await env.KVDO.getByName("alarm-api:kv").alarmApi());
  return t;
}
