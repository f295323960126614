// D1 batch: results per statement, all-or-nothing on failure.
import { Transcript } from "../../lib/transcript.js";

export default async function ({ env }) {
  // rows_read / rows_written are compared in changes-rowid.js only.
  const t = new Transcript({ omit: ["rows_read", "rows_written"] });
  const db = env.DB;
  await db.prepare("DROP TABLE IF EXISTS bt").run();
  await db.prepare("CREATE TABLE bt (k TEXT PRIMARY KEY, v INTEGER)").run();
  await t.step("batch", () =>
    db.batch([
      db.prepare("INSERT INTO bt VALUES (?, ?)").bind("a", 1),
      db.prepare("INSERT INTO bt VALUES (?, ?)").bind("b", 2),
      db.prepare("SELECT * FROM bt ORDER BY k"),
    ]),
  );
  await t.step("failing batch", () =>
    db.batch([
      db.prepare("INSERT INTO bt VALUES ('c', 3)"),
      db.prepare("INSERT INTO bt VALUES ('a', 9)"),
    ]),
  );
  await t.step("rolled back", () => db.prepare("SELECT k FROM bt ORDER BY k").raw());
  await t.step("empty batch", () => db.batch([]));
  return t;
}
