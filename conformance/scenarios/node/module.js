// node:module: exports, builtinModules, createRequire and isBuiltin.
import * as mod from "node:module";
import { Transcript } from "../../lib/transcript.js";

export default async function () {
  const t = new Transcript();
  const names = Object.keys(mod).sort();
  t.note("exports", names.map((n) => [n, typeof mod[n]]));
  const M = mod.default ?? mod.Module;
  t.note("default", [typeof M, M === mod.Module]);
  t.note("isBuiltin", ["fs", "node:fs", "node:nope", "events", "nope", "node:test", "cloudflare:sockets", "fs/promises"].map((n) => [n, mod.isBuiltin?.(n)]));
  const b = mod.builtinModules;
  t.note("builtinModules", Array.isArray(b) ? [...b].sort() : b);
  const req = await t.step("createRequire", () => typeof mod.createRequire(import.meta.url ?? "file:///bundle/worker.js"));
  if (req) {
    const require = mod.createRequire("file:///bundle/worker.js");
    await t.step("require node:buffer", () => typeof require("node:buffer").Buffer);
    await t.step("require events", () => typeof require("events"));
    await t.step("require missing", () => require("./does-not-exist.js"));
    await t.step("require.resolve", () => require.resolve?.("node:buffer"));
    t.note("require.cache", typeof require.cache);
  }
  await t.step("createRequire bad", () => mod.createRequire(5));
  for (const n of ["findSourceMap", "register", "syncBuiltinESMExports", "enableCompileCache", "getCompileCacheDir", "findPackageJSON", "stripTypeScriptTypes"]) {
    if (typeof mod[n] === "function") await t.step(n + "()", () => mod[n]());
  }
  return t;
}
