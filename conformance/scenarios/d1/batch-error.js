// D1 batch(): a failing statement rolls back the whole batch; bad arguments.
import { Transcript } from "../../lib/transcript.js";

export default async function ({ env }) {
  const t = new Transcript();
  const db = env.DB;
  await db.exec("CREATE TABLE be (id INTEGER PRIMARY KEY, v TEXT NOT NULL)");
  await t.step("last fails", () =>
    db.batch([
      db.prepare("INSERT INTO be (id, v) VALUES (?, ?)").bind(1, "a"),
      db.prepare("UPDATE be SET v = ? WHERE id = 1").bind("b"),
      db.prepare("INSERT INTO be (id, v) VALUES (?, ?)").bind(2, null),
    ]),
  );
  await t.step("nothing kept", () => db.prepare("SELECT count(*) AS n FROM be").first("n"));
  await t.step("syntax error in middle", () =>
    db.batch([db.prepare("INSERT INTO be (id, v) VALUES (3, 'c')"), db.prepare("INSER nope"), db.prepare("SELECT 1")]),
  );
  await t.step("still nothing", () => db.prepare("SELECT count(*) AS n FROM be").first("n"));
  await t.step("wrong bind count", () => db.batch([db.prepare("SELECT ?1 + ?2 AS s").bind(1)]));
  await t.step("results per statement", async () => {
    const r = await db.batch([db.prepare("INSERT INTO be (id, v) VALUES (5, 'e')"), db.prepare("SELECT v FROM be")]);
    return r.map((x) => [x.success, x.results, x.meta.changes]);
  });
  return t;
}
