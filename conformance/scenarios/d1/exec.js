// D1 exec: several statements in one string, and a failing one.
import { Transcript } from "../../lib/transcript.js";

export default async function ({ env }) {
  // rows_read / rows_written are compared in changes-rowid.js only.
  const t = new Transcript({ omit: ["rows_read", "rows_written"] });
  const db = env.DB;
  await t.step("exec", () =>
    db.exec("DROP TABLE IF EXISTS ex;\nCREATE TABLE ex (a);\nINSERT INTO ex VALUES (1);\nINSERT INTO ex VALUES (2);"),
  );
  await t.step("count rows", () => db.prepare("SELECT count(*) AS n FROM ex").first("n"));
  await t.step("failing", () => db.exec("INSERT INTO ex VALUES (3);\nSELEC nope;"));
  await t.step("after failure", () => db.prepare("SELECT count(*) AS n FROM ex").first("n"));
  await t.step("empty", () => db.exec(""));
  return t;
}
