// D1 refuses transactions and some pragmas; it allows others.
import { Transcript } from "../../lib/transcript.js";

export default async function ({ env }) {
  // rows_read / rows_written are compared in changes-rowid.js only.
  const t = new Transcript({ omit: ["rows_read", "rows_written"] });
  const db = env.DB;
  await t.step("BEGIN", () => db.prepare("BEGIN TRANSACTION").run());
  await t.step("SAVEPOINT", () => db.prepare("SAVEPOINT sp").run());
  await t.step("ATTACH", () => db.prepare("ATTACH DATABASE 'x.db' AS x").run());
  await t.step("pragma table_list", async () => (await db.prepare("PRAGMA table_list").all()).success);
  await t.step("pragma foreign_keys", () => db.prepare("PRAGMA foreign_keys").first());
  await t.step("pragma journal_mode", () => db.prepare("PRAGMA journal_mode = DELETE").all());
  return t;
}
