// D1 run / all: results and meta after inserts, updates and selects.
import { Transcript } from "../../lib/transcript.js";

export default async function ({ env }) {
  // rows_read / rows_written are compared in changes-rowid.js only.
  const t = new Transcript({ omit: ["rows_read", "rows_written"] });
  const db = env.DB;
  await db.prepare("DROP TABLE IF EXISTS arm").run();
  // last_row_id after DDL is whatever the connection inserted last; not compared.
  await t.step("create", async () => (await db.prepare("CREATE TABLE arm (id INTEGER PRIMARY KEY, name TEXT, score REAL)").run()).success);
  await t.step("insert", () => db.prepare("INSERT INTO arm (name, score) VALUES (?, ?)").bind("ada", 1.5).run());
  await t.step("insert 2", () => db.prepare("INSERT INTO arm (name, score) VALUES (?1, ?2), (?1, ?2)").bind("bob", 2).run());
  await t.step("select all", () => db.prepare("SELECT * FROM arm ORDER BY id").all());
  await t.step("update", () => db.prepare("UPDATE arm SET score = score + 1 WHERE name = ?").bind("bob").run());
  await t.step("run select", () => db.prepare("SELECT name FROM arm WHERE id = 1").run());
  await t.step("delete", () => db.prepare("DELETE FROM arm WHERE id > ?").bind(1).run());
  await t.step("empty result", () => db.prepare("SELECT * FROM arm WHERE id = 99").all());
  return t;
}
