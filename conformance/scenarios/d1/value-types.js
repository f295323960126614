// D1 column values: integers, reals, text, blobs, NULL as JS values.
import { Transcript } from "../../lib/transcript.js";

export default async function ({ env }) {
  // rows_read / rows_written are compared in changes-rowid.js only.
  const t = new Transcript({ omit: ["rows_read", "rows_written"] });
  const db = env.DB;
  await db.prepare("DROP TABLE IF EXISTS vt").run();
  await db.prepare("CREATE TABLE vt (i INTEGER, r REAL, s TEXT, b BLOB, n)").run();
  await db.prepare("INSERT INTO vt VALUES (9007199254740991, 0.1, 'ü\u0000x', x'00ff', NULL)").run();
  await t.step("all", () => db.prepare("SELECT * FROM vt").all());
  await t.step("raw", () => db.prepare("SELECT * FROM vt").raw());
  await t.step("large int", () => db.prepare("SELECT 9223372036854775807 AS big").first("big"));
  await t.step("float int", () => db.prepare("SELECT 2.0 AS f, 10/4 AS d, 10/4.0 AS e").first());
  await t.step("json function", () => db.prepare("SELECT json_object('a', 1) AS j").first("j"));
  return t;
}
