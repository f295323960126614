// node:os: every export's type and what each function returns or throws.
import * as os from "node:os";
import osDefault from "node:os";
import { Transcript } from "../../lib/transcript.js";

export default async function () {
  const t = new Transcript();
  const names = Object.keys(os).sort();
  t.note("exports", names.map((n) => [n, typeof os[n]]));
  t.note("default matches", Object.keys(osDefault).sort());
  for (const n of names) {
    if (typeof os[n] !== "function" || n === "default") continue;
    await t.step(n + "()", () => os[n]());
  }
  t.note("EOL", os.EOL);
  t.note("devNull", os.devNull);
  t.note("constants keys", Object.keys(os.constants ?? {}).sort());
  t.note("signals", os.constants?.signals && [os.constants.signals.SIGINT, os.constants.signals.SIGTERM, Object.keys(os.constants.signals).length]);
  t.note("errno", os.constants?.errno && [os.constants.errno.ENOENT, os.constants.errno.EACCES]);
  t.note("priority", os.constants?.priority);
  await t.step("setPriority(0, 1)", () => os.setPriority(0, 1));
  await t.step("getPriority(1)", () => os.getPriority(1));
  await t.step("userInfo({encoding:'buffer'})", () => os.userInfo({ encoding: "buffer" }));
  return t;
}
