// Records the goldens from Miniflare (workerd with simulated bindings) and
// compares Hearth against them. Run through record.sh, which installs the
// pinned peers first.
//
//   node conformance/record.mjs [--hearth-only] [--area NAME]
//
// --hearth-only skips recording and compares Hearth with the committed goldens.

import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "..");
const args = process.argv.slice(2);
const hearthOnly = args.includes("--hearth-only");
const onlyArea = args.includes("--area") ? args[args.indexOf("--area") + 1] : null;

// Stable JSON: sorted keys, two-space indent, trailing newline.
function sortKeys(v) {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === "object") {
    const out = {};
    for (const k of Object.keys(v).sort()) out[k] = sortKeys(v[k]);
    return out;
  }
  return v;
}
const stable = (v) => JSON.stringify(sortKeys(v), null, 2) + "\n";

// Every place where two JSON values differ, as [pointer, left, right]
// (pointer in RFC 6901 form, "/steps/3/threw/message"). A key present on one
// side only, or a change of type, is one difference at that key.
const escapeKey = (k) => String(k).replace(/~/g, "~0").replace(/\//g, "~1");
function allDiffs(a, b, at = "", out = []) {
  const isObj = (x) => x !== null && typeof x === "object" && !Array.isArray(x);
  if (Array.isArray(a) && Array.isArray(b)) {
    for (let i = 0; i < Math.max(a.length, b.length); i++) {
      if (i >= a.length) out.push([`${at}/${i}`, undefined, b[i]]);
      else if (i >= b.length) out.push([`${at}/${i}`, a[i], undefined]);
      else allDiffs(a[i], b[i], `${at}/${i}`, out);
    }
  } else if (isObj(a) && isObj(b)) {
    for (const k of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) {
      const here = `${at}/${escapeKey(k)}`;
      if (!(k in a)) out.push([here, undefined, b[k]]);
      else if (!(k in b)) out.push([here, a[k], undefined]);
      else allDiffs(a[k], b[k], here, out);
    }
  } else if (JSON.stringify(a) !== JSON.stringify(b)) {
    out.push([at, a, b]);
  }
  return out;
}

// A listed pointer covers itself and everything below it.
const covers = (listed, pointer) => pointer === listed || pointer.startsWith(listed + "/");

// Splits a scenario's differences into accepted ones (grouped by the listed
// pointer that covers them), unlisted ones, and listed pointers that no
// longer differ.
function classify(diffs, listed) {
  const accepted = new Map();
  const unlisted = [];
  for (const d of diffs) {
    const by = Object.keys(listed).find((p) => covers(p, d[0]));
    if (by === undefined) unlisted.push(d);
    else accepted.set(by, [...(accepted.get(by) ?? []), d]);
  }
  const stale = Object.keys(listed).filter((p) => !accepted.has(p));
  return { accepted, unlisted, stale };
}

const short = (v) => {
  if (v === undefined) return "(absent)";
  const s = JSON.stringify(v);
  return s.length > 160 ? s.slice(0, 157) + "..." : s;
};

function areas() {
  return fs
    .readdirSync(here)
    .map((f) => /^wrangler\.(.+)\.json$/.exec(f))
    .filter(Boolean)
    .map((m) => m[1])
    .filter((a) => !onlyArea || a === onlyArea)
    .sort();
}

const config = (area) => JSON.parse(fs.readFileSync(path.join(here, `wrangler.${area}.json`), "utf8"));
const inputs = JSON.parse(fs.readFileSync(path.join(here, "inputs.json"), "utf8"));
const known = JSON.parse(fs.readFileSync(path.join(here, "known-differences.json"), "utf8"));

function scenarioFiles(area) {
  return fs
    .readdirSync(path.join(here, "scenarios", area))
    .filter((f) => f.endsWith(".js"))
    .map((f) => f.slice(0, -3))
    .sort();
}

// The request for one scenario: a GET, or a POST of its input file.
function requestFor(area, name) {
  const input = inputs[`${area}/${name}`];
  if (!input) return { method: "GET" };
  return { method: "POST", body: fs.readFileSync(path.resolve(repo, input)) };
}

// Classes declared SQLite-backed by the config's migrations.
function sqliteClasses(cfg) {
  return new Set((cfg.migrations ?? []).flatMap((m) => m.new_sqlite_classes ?? []));
}

// Scheduled events fired before a scenario runs, so the scenario can read
// what its scheduled() handler recorded: {"area/name": [{cron, time}]}.
const scheduledEvents = JSON.parse(fs.readFileSync(path.join(here, "scheduled.json"), "utf8"));

// `fire(cron, time)` runs scheduled() once and resolves to "ok" or
// "exception"; the outcomes are recorded under the transcript's "scheduled".
async function runAll(area, fetchScenario, fire) {
  const listed = JSON.parse(await (await fetchScenario("", { method: "GET" })).text());
  const files = scenarioFiles(area);
  if (JSON.stringify(listed) !== JSON.stringify(files)) {
    throw new Error(
      `${area}: areas/${area}/index.js serves [${listed}] but scenarios/${area}/ holds [${files}]`,
    );
  }
  const out = {};
  for (const name of files) {
    const outcomes = [];
    for (const { cron, time } of scheduledEvents[`${area}/${name}`] ?? []) {
      outcomes.push({ cron, outcome: await fire(cron, time) });
    }
    let res;
    let text;
    try {
      res = await fetchScenario(name, { ...requestFor(area, name), signal: AbortSignal.timeout(20000) });
      text = await res.text();
    } catch (e) {
      out[name] = { no_response: String(e.cause ?? e) };
      continue;
    }
    try {
      out[name] = JSON.parse(text);
      if (outcomes.length) out[name].scheduled = outcomes;
    } catch {
      out[name] = { not_json: { status: res.status, body: text.slice(0, 500) } };
    }
  }
  return out;
}

async function recordMiniflare(area) {
  const require = createRequire(path.join(here, ".peers", "package.json"));
  const { Miniflare } = require("miniflare");
  const cfg = config(area);
  const persist = fs.mkdtempSync(path.join(os.tmpdir(), `conformance-mf-${area}-`));
  const mf = new Miniflare({
    modules: true,
    modulesRoot: here,
    modulesRules: [{ type: "ESModule", include: ["**/*.js"] }],
    scriptPath: path.join(here, cfg.main),
    compatibilityDate: cfg.compatibility_date,
    compatibilityFlags: cfg.compatibility_flags ?? [],
    bindings: cfg.vars ?? {},
    kvNamespaces: Object.fromEntries((cfg.kv_namespaces ?? []).map((n) => [n.binding, n.id])),
    d1Databases: Object.fromEntries((cfg.d1_databases ?? []).map((d) => [d.binding, d.database_id])),
    r2Buckets: Object.fromEntries((cfg.r2_buckets ?? []).map((b) => [b.binding, b.bucket_name])),
    durableObjects: Object.fromEntries(
      (cfg.durable_objects?.bindings ?? []).map((b) => [
        b.name,
        { className: b.class_name, useSQLite: sqliteClasses(cfg).has(b.class_name) },
      ]),
    ),
    queueProducers: Object.fromEntries((cfg.queues?.producers ?? []).map((p) => [p.binding, { queueName: p.queue }])),
    queueConsumers: Object.fromEntries(
      (cfg.queues?.consumers ?? []).map((c) => [
        c.queue,
        {
          maxBatchSize: c.max_batch_size,
          maxBatchTimeout: c.max_batch_timeout,
          maxRetries: c.max_retries,
          deadLetterQueue: c.dead_letter_queue,
          retryDelay: c.retry_delay,
        },
      ]),
    ),
    workflows: Object.fromEntries(
      (cfg.workflows ?? []).map((w) => [w.binding, { name: w.name, className: w.class_name }]),
    ),
    kvPersist: path.join(persist, "kv"),
    d1Persist: path.join(persist, "d1"),
    r2Persist: path.join(persist, "r2"),
    durableObjectsPersist: path.join(persist, "do"),
    workflowsPersist: path.join(persist, "workflows"),
  });
  try {
    await mf.ready;
    const worker = await mf.getWorker();
    const fire = async (cron, time) => (await worker.scheduled({ cron, scheduledTime: new Date(time) })).outcome;
    return await runAll(area, (name, init) => mf.dispatchFetch(`http://conformance.test/${name}`, init), fire);
  } finally {
    await mf.dispose();
    fs.rmSync(persist, { recursive: true, force: true });
  }
}

function hearthBinary() {
  const bin = process.env.HEARTH_BIN ?? path.join(repo, "target", "release", "hearth");
  if (!fs.existsSync(bin)) throw new Error(`${bin} is missing; record.sh builds it`);
  return bin;
}

const INTERNAL_TOKEN = "conformance-internal-token";

async function runHearth(area) {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `conformance-hearth-${area}-`));
  const child = spawn(
    hearthBinary(),
    [
      "serve", path.join(here, `wrangler.${area}.json`), "--listen", "127.0.0.1:0", "--data-dir", dataDir,
      // The scheduled endpoint answers only with the internal token.
      "--internal-token", INTERNAL_TOKEN,
    ],
    { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, HEARTH_LOG: "info" } },
  );
  try {
    const addr = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${area}: hearth did not start`)), 60000);
      const lines = readline.createInterface({ input: child.stderr });
      lines.on("line", (line) => {
        const m = / on http:\/\/(\S+)/.exec(line);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      });
      child.on("exit", (code) => reject(new Error(`${area}: hearth exited with ${code}`)));
    });
    const fire = async (cron, time) => {
      const q = new URLSearchParams({ cron, time: String(time) });
      const res = await fetch(`http://${addr}/cdn-cgi/handler/scheduled?${q}`, {
        headers: { authorization: `Bearer ${INTERNAL_TOKEN}` },
      });
      await res.text();
      return res.ok ? "ok" : "exception";
    };
    return await runAll(area, (name, init) => fetch(`http://${addr}/${name}`, init), fire);
  } finally {
    child.kill("SIGKILL");
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

function writeGoldens(area, results) {
  const dir = path.join(here, "expected", area);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  for (const [name, value] of Object.entries(results)) {
    fs.writeFileSync(path.join(dir, `${name}.json`), stable(value));
  }
}

function readGoldens(area) {
  const dir = path.join(here, "expected", area);
  const out = {};
  for (const f of fs.readdirSync(dir).filter((f) => f.endsWith(".json")).sort()) {
    out[f.slice(0, -5)] = JSON.parse(fs.readFileSync(path.join(dir, f), "utf8"));
  }
  return out;
}

// Each area's index.js imports every scenario of the area; it is generated
// so that adding a scenario is adding a file.
// An area may also have handlers/<area>.js: its exported classes (Durable
// Objects, WorkflowEntrypoints) are re-exported, and its exported queue and
// scheduled functions become the area worker's handlers.
function writeIndex(area) {
  const names = scenarioFiles(area);
  const ident = (n) => "s_" + n.replace(/[^A-Za-z0-9]/g, "_");
  const handlersFile = path.join(here, "handlers", `${area}.js`);
  const source = fs.existsSync(handlersFile) ? fs.readFileSync(handlersFile, "utf8") : "";
  const classes = [...source.matchAll(/^export class (\w+)/gm)].map((m) => m[1]);
  const events = [...source.matchAll(/^export (?:async )?function (\w+)/gm)]
    .map((m) => m[1])
    .filter((f) => f === "queue" || f === "scheduled");
  const from = `"../../handlers/${area}.js"`;
  const lines = [
    "// Generated by conformance/record.mjs from scenarios/" + area + "/; do not edit.",
    'import { areaWorker } from "../../lib/transcript.js";',
    ...(events.length ? [`import { ${events.join(", ")} } from ${from};`] : []),
    ...names.map((n) => `import ${ident(n)} from "../../scenarios/${area}/${n}.js";`),
    ...(classes.length ? ["", `export { ${classes.join(", ")} } from ${from};`] : []),
    "",
    "export default areaWorker({",
    ...names.map((n) => `  ${JSON.stringify(n)}: ${ident(n)},`),
    events.length ? `}, { ${events.join(", ")} });` : "});",
    "",
  ];
  fs.mkdirSync(path.join(here, "areas", area), { recursive: true });
  fs.writeFileSync(path.join(here, "areas", area, "index.js"), lines.join("\n"));
}

async function main() {
  const report = [];
  let unexpected = 0;
  for (const area of areas()) {
    if (!hearthOnly) {
      writeIndex(area);
      console.log(`${area}: recording with miniflare`);
      writeGoldens(area, await recordMiniflare(area));
    }
    console.log(`${area}: running on hearth`);
    const golden = readGoldens(area);
    const got = await runHearth(area);
    // Hearth's transcripts, for diffing by hand (gitignored).
    const outDir = path.join(here, ".out", "hearth", area);
    fs.rmSync(outDir, { recursive: true, force: true });
    fs.mkdirSync(outDir, { recursive: true });
    for (const [name, value] of Object.entries(got)) fs.writeFileSync(path.join(outDir, `${name}.json`), stable(value));
    const rows = [];
    let matching = 0;
    let knownCount = 0;
    for (const name of Object.keys(golden).sort()) {
      const id = `${area}/${name}`;
      const listed = known[id] ?? {};
      const diffs = allDiffs(golden[name], got[name] ?? { missing: true });
      const { accepted, unlisted, stale } = classify(diffs, listed);
      if (diffs.length === 0) matching++;
      else if (unlisted.length === 0) knownCount++;
      const lines = [];
      for (const [p, ds] of accepted) {
        const [at, want, have] = ds[0];
        const more = ds.length > 1 ? ` (and ${ds.length - 1} more below \`${p}\`)` : "";
        lines.push(`  - known \`${p}\` (${listed[p]}): at \`${at}\` miniflare ${short(want)}, hearth ${short(have)}${more}`);
      }
      for (const [at, want, have] of unlisted) {
        unexpected++;
        lines.push(`  - **unexpected** at \`${at}\`: miniflare ${short(want)}, hearth ${short(have)}`);
      }
      for (const p of stale) {
        unexpected++;
        lines.push(`  - **stale**: \`${p}\` is listed in known-differences.json but no longer differs; remove it`);
      }
      if (lines.length) rows.push(`- \`${name}\`\n${lines.join("\n")}`);
    }
    const total = Object.keys(golden).length;
    const summary = `${area}: ${matching}/${total} match, ${knownCount} known differences`;
    console.log(summary);
    for (const row of rows) console.log("  " + row);
    report.push(`## ${area}\n\n${matching}/${total} scenarios match, ${knownCount} known differences.\n`);
    if (rows.length) report.push(rows.join("\n") + "\n");
  }
  if (!onlyArea) {
    const lock = JSON.parse(fs.readFileSync(path.join(here, ".peers", "package.json"), "utf8"));
    const head = [
      "# Conformance report",
      "",
      "Hearth compared with Miniflare " +
        `${lock.dependencies.miniflare} (workerd ${lock.dependencies.workerd}); ` +
        "written by `conformance/record.sh`. Every differing JSON pointer is listed " +
        "with both values; a known difference is accepted in `known-differences.json` " +
        "for that scenario and pointer (a listed pointer covers everything below it).",
      "",
    ];
    // Bindings Miniflare cannot run locally have no goldens: the documented
    // behaviour is their reference, checked by Hearth's own tests.
    const undocumented = [
      "## ai (no scenarios)",
      "",
      "Miniflare has no local Workers AI: its `ai` binding proxies every call to " +
        "Cloudflare's API and needs an account. Cloudflare's documented behaviour " +
        "(the model schemas, output shapes, event stream and error table) is the " +
        "reference, checked by `crates/hearth/tests/serve_ai.rs` and " +
        "`crates/hearth-runtime/tests/bindings_ai.rs`.",
      "",
      "## vectorize (no scenarios)",
      "",
      "Miniflare has no local Vectorize: Cloudflare's list of bindings per " +
        "development mode gives it remote connections only, so a local run needs " +
        "an account. Cloudflare's Vectorize client API, metadata filtering and " +
        "limits pages are the reference, checked by " +
        "`crates/hearth-vectorize/tests/contract.rs`, " +
        "`crates/hearth-runtime/tests/bindings_vectorize.rs` and " +
        "`crates/hearth/tests/serve_vectorize.rs`.",
      "",
    ];
    fs.writeFileSync(
      path.join(here, "REPORT.md"),
      head.join("\n") + "\n" + report.join("\n") + "\n" + undocumented.join("\n"),
    );
  }
  if (unexpected) {
    console.log(`${unexpected} unexpected difference(s); see conformance/REPORT.md`);
    process.exitCode = 1;
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(2);
});
