// SQL API: exec with bindings and the cursor (toArray, one, raw, columnNames, rowsRead, rowsWritten).
import { Transcript } from "../../lib/transcript.js";

export default async function ({ env }) {
  const t = new Transcript();
  t.note("steps", await env.DO.getByName("sql-cursor:one").sqlCursor());
  return t;
}
