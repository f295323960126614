// D1 sessions: queries through a session and its bookmark.
import { Transcript } from "../../lib/transcript.js";

export default async function ({ env }) {
  // rows_read / rows_written are compared in changes-rowid.js only.
  const t = new Transcript({ omit: ["rows_read", "rows_written"] });
  const s = env.DB.withSession("first-primary");
  await t.step("bookmark before", () => typeof s.getBookmark());
  await t.step("query", () => s.prepare("SELECT 1 AS one").first());
  await t.step("bookmark after", () => typeof s.getBookmark());
  await t.step("batch", async () => (await s.batch([s.prepare("SELECT 2 AS two")]))[0].results);
  await t.step("unconstrained", () => env.DB.withSession("first-unconstrained").prepare("SELECT 3 AS x").first("x"));
  await t.step("bad constraint", () => env.DB.withSession("nonsense").prepare("SELECT 1").first());
  return t;
}
