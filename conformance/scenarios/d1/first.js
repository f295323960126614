// D1 first(): whole row, one column, no row, unknown column.
import { Transcript } from "../../lib/transcript.js";

export default async function ({ env }) {
  // rows_read / rows_written are compared in changes-rowid.js only.
  const t = new Transcript({ omit: ["rows_read", "rows_written"] });
  const db = env.DB;
  await db.prepare("DROP TABLE IF EXISTS fst").run();
  await db.prepare("CREATE TABLE fst (a INTEGER, b TEXT)").run();
  await db.prepare("INSERT INTO fst VALUES (1, 'one'), (2, 'two')").run();
  await t.step("row", () => db.prepare("SELECT * FROM fst ORDER BY a").first());
  await t.step("column", () => db.prepare("SELECT * FROM fst ORDER BY a DESC").first("b"));
  await t.step("no row", () => db.prepare("SELECT * FROM fst WHERE a = 9").first());
  await t.step("no row column", () => db.prepare("SELECT * FROM fst WHERE a = 9").first("b"));
  await t.step("unknown column", () => db.prepare("SELECT * FROM fst").first("zzz"));
  await t.step("expression", () => db.prepare("SELECT count(*) AS n, 1 + 1").first());
  return t;
}
