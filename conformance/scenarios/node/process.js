// node:process: env from vars, nextTick order, platform fields, getBuiltinModule, emitter.
import process from "node:process";
import path from "node:path";
import fs from "node:fs";
import { Transcript } from "../../lib/transcript.js";

export default async function () {
  const t = new Transcript();
  t.note("global is module", globalThis.process === process);
  t.note("env var", [process.env.CONF_VAR, process.env.NODE_ENV, process.env.MISSING]);
  process.env.SET_NUM = 5;
  t.note("env string coercion", typeof process.env.SET_NUM);
  const order = [];
  await new Promise((done) => {
    Promise.resolve().then(() => order.push("promise"));
    process.nextTick((a) => order.push("tick " + a), "x");
    setTimeout(done, 1);
  });
  t.note("nextTick order", order);
  t.note("fields", {
    platform: process.platform,
    argv: process.argv,
    exitCode: process.exitCode,
    cwd: typeof process.cwd === "function" ? process.cwd() : "absent",
    versionsNode: typeof process.versions?.node,
    hrtime: typeof process.hrtime,
    hrtimeBigint: typeof process.hrtime?.bigint?.(),
    uptime: typeof process.uptime,
    features: typeof process.features,
  });
  t.note("getBuiltinModule", [
    typeof process.getBuiltinModule("node:buffer")?.Buffer,
    typeof process.getBuiltinModule("events"),
    process.getBuiltinModule("node:nope"),
  ]);
  t.note("emitter", typeof process.on);
  await t.step("nextTick non-function", () => process.nextTick(1));
  t.note("path.resolve of a relative path", path.resolve("a/b"));
  await t.step("fs relative write lands in", () => {
    process.chdir?.("/tmp");
    fs.writeFileSync("rel-probe.txt", "x");
    return ["/tmp/rel-probe.txt", "/bundle/rel-probe.txt", "/rel-probe.txt"].map((p) => fs.existsSync(p));
  });
  t.note("cwd after chdir", process.cwd());
  process.chdir?.("/bundle");
  return t;
}
