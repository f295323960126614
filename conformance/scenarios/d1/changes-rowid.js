// D1 meta.changes and last_row_id across statement kinds.
import { Transcript } from "../../lib/transcript.js";

const pick = (r) => ({ changes: r.meta.changes, last_row_id: r.meta.last_row_id, changed_db: r.meta.changed_db, rows_read: r.meta.rows_read, rows_written: r.meta.rows_written });

export default async function ({ env }) {
  const t = new Transcript();
  const db = env.DB;
  await db.prepare("DROP TABLE IF EXISTS cr").run();
  await db.prepare("CREATE TABLE cr (id INTEGER PRIMARY KEY, v)").run();
  await t.step("insert 3", async () => pick(await db.prepare("INSERT INTO cr (v) VALUES (1), (2), (3)").run()));
  await t.step("update 2", async () => pick(await db.prepare("UPDATE cr SET v = v * 10 WHERE id >= 2").run()));
  await t.step("select", async () => pick(await db.prepare("SELECT * FROM cr").all()));
  await t.step("delete all", async () => pick(await db.prepare("DELETE FROM cr").run()));
  await t.step("insert explicit id", async () => pick(await db.prepare("INSERT INTO cr (id, v) VALUES (100, 'x')").run()));
  return t;
}
