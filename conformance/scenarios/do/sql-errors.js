// SQL API errors: bad SQL, refused transaction statements, reserved tables; SQL on a KV-backed class.
import { Transcript } from "../../lib/transcript.js";

export default async function ({ env }) {
  const t = new Transcript();
  t.note("sqlite", await env.DO.getByName("sql-errors:one").sqlErrors());
  t.note("kv-backed", await env.KVDO.getByName("sql-errors:kv").sqlUnavailable());
  return t;
}
