// D1 raw(): arrays of values, optionally headed by the column names.
import { Transcript } from "../../lib/transcript.js";

export default async function ({ env }) {
  // rows_read / rows_written are compared in changes-rowid.js only.
  const t = new Transcript({ omit: ["rows_read", "rows_written"] });
  const db = env.DB;
  await db.prepare("DROP TABLE IF EXISTS rw").run();
  await db.prepare("CREATE TABLE rw (x INTEGER, y TEXT)").run();
  await db.prepare("INSERT INTO rw VALUES (1, 'a'), (2, 'b')").run();
  await t.step("raw", () => db.prepare("SELECT x, y FROM rw ORDER BY x").raw());
  await t.step("columnNames", () => db.prepare("SELECT x, y AS why FROM rw ORDER BY x").raw({ columnNames: true }));
  await t.step("empty with names", () => db.prepare("SELECT x FROM rw WHERE x > 5").raw({ columnNames: true }));
  await t.step("duplicate names all()", () => db.prepare("SELECT 1 AS c, 2 AS c").all());
  await t.step("duplicate names raw()", () => db.prepare("SELECT 1 AS c, 2 AS c").raw());
  return t;
}
