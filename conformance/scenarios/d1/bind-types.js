// D1 bind: every JS type D1 accepts, and what comes back.
import { Transcript } from "../../lib/transcript.js";

export default async function ({ env }) {
  // rows_read / rows_written are compared in changes-rowid.js only.
  const t = new Transcript({ omit: ["rows_read", "rows_written"] });
  const q = (v) => env.DB.prepare("SELECT ? AS v, typeof(?1) AS t").bind(v).first();
  await t.step("null", () => q(null));
  await t.step("integer", () => q(42));
  await t.step("float", () => q(1.25));
  await t.step("big integer", () => q(2 ** 53 - 1));
  await t.step("string", () => q("héllo"));
  await t.step("true", () => q(true));
  await t.step("false", () => q(false));
  await t.step("Uint8Array", () => q(new Uint8Array([1, 2, 3])));
  await t.step("ArrayBuffer", () => q(new Uint8Array([4, 5]).buffer));
  await t.step("undefined", () => q(undefined));
  await t.step("object", () => q({ a: 1 }));
  await t.step("bigint", () => q(5n));
  await t.step("Date", () => q(new Date(0)));
  await t.step("NaN", () => q(NaN));
  return t;
}
