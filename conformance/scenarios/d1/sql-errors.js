// D1 errors: syntax, missing table, constraints, empty statements.
import { Transcript } from "../../lib/transcript.js";

export default async function ({ env }) {
  // rows_read / rows_written are compared in changes-rowid.js only.
  const t = new Transcript({ omit: ["rows_read", "rows_written"] });
  const db = env.DB;
  await db.prepare("DROP TABLE IF EXISTS sqe").run();
  await db.prepare("CREATE TABLE sqe (id INTEGER PRIMARY KEY, u TEXT UNIQUE NOT NULL)").run();
  await db.prepare("INSERT INTO sqe (u) VALUES ('a')").run();
  await t.step("syntax", () => db.prepare("SELEC 1").all());
  await t.step("no such table", () => db.prepare("SELECT * FROM nope_table").all());
  await t.step("no such column", () => db.prepare("SELECT nope FROM sqe").all());
  await t.step("unique", () => db.prepare("INSERT INTO sqe (u) VALUES ('a')").run());
  await t.step("not null", () => db.prepare("INSERT INTO sqe (u) VALUES (NULL)").run());
  await t.step("empty", () => db.prepare("").all());
  await t.step("only comment", () => db.prepare("-- nothing").all());
  await t.step("two statements", () => db.prepare("SELECT 1; SELECT 2").all());
  await t.step("error cause", async () => {
    try {
      await db.prepare("SELEC 1").all();
    } catch (e) {
      return { cause: e.cause ? { name: e.cause.name, message: e.cause.message } : null };
    }
  });
  return t;
}
