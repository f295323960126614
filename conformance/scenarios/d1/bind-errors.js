// D1 bind: parameter counts and styles.
import { Transcript } from "../../lib/transcript.js";

export default async function ({ env }) {
  // rows_read / rows_written are compared in changes-rowid.js only.
  const t = new Transcript({ omit: ["rows_read", "rows_written"] });
  const db = env.DB;
  await t.step("too few", () => db.prepare("SELECT ?, ?").bind(1).all());
  await t.step("too many", () => db.prepare("SELECT ?").bind(1, 2).all());
  await t.step("none bound", () => db.prepare("SELECT ?").all());
  await t.step("numbered reuse", () => db.prepare("SELECT ?2 AS b, ?1 AS a, ?2 AS c").bind("one", "two").first());
  await t.step("named param", () => db.prepare("SELECT :name AS n").bind("x").first());
  await t.step("100 params", async () => {
    const marks = Array.from({ length: 100 }, () => "?").join(",");
    return (await db.prepare(`SELECT ${marks}`).bind(...Array(100).fill(1)).raw())[0].length;
  });
  await t.step("101 params", () => {
    const marks = Array.from({ length: 101 }, () => "?").join(",");
    return db.prepare(`SELECT ${marks}`).bind(...Array(101).fill(1)).raw();
  });
  return t;
}
