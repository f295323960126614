// node:url: legacy parse/format/resolve, fileURLToPath/pathToFileURL, domainTo*.
import url from "node:url";
import { Transcript } from "../../lib/transcript.js";

export default async function () {
  const t = new Transcript();
  const p = url.parse("https://user:pw@Example.com:8080/p/a?x=1&y=2#h", true);
  t.note("parse", {
    protocol: p.protocol, auth: p.auth, host: p.host, hostname: p.hostname, port: p.port,
    pathname: p.pathname, search: p.search, query: { ...p.query }, hash: p.hash, href: p.href,
  });
  t.note("format", url.format({ protocol: "http", hostname: "a.b", pathname: "/x", query: { q: "1 2" } }));
  t.note("resolve", [url.resolve("http://a/b/c", "../d"), url.resolve("/one/two", "three")]);
  t.note("fileURLToPath", url.fileURLToPath("file:///tmp/a%20b"));
  t.note("pathToFileURL", url.pathToFileURL("/tmp/a b#c").href);
  t.note("URL global", url.URL === globalThis.URL);
  t.note("format URL", url.format(new URL("https://a.b/c?d#e"), { fragment: false }));
  await t.step("fileURLToPath http", () => url.fileURLToPath("http://x/y"));
  return t;
}
