// Serves one benchmark worker with Miniflare's API until SIGTERM.
//
//   node miniflare-serve.mjs <peers dir> '<options as JSON>'
//
// The options go to `new Miniflare(...)` as they are (scriptPath, port,
// kvNamespaces, kvPersist, d1Databases, d1Persist, ...). Prints "ready" on
// stdout once the port accepts requests.
import { createRequire } from "node:module";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [peers, json] = process.argv.slice(2);
const require = createRequire(join(peers, "package.json"));
const { Miniflare, Log, LogLevel } = await import(
  pathToFileURL(require.resolve("miniflare")).href
);

const options = JSON.parse(json);
const mf = new Miniflare({
  modules: true,
  host: "127.0.0.1",
  log: new Log(LogLevel.WARN),
  ...options,
});
await mf.ready;
console.log("ready");

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await mf.dispose();
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
