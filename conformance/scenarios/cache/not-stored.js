// Responses Cloudflare does not store: no-store, private, no-cache, max-age=0,
// Set-Cookie; private=Set-Cookie stores without the cookie.
import { Transcript } from "../../lib/transcript.js";

const BASE = "https://cache.test/not-stored/";

async function stored(name, headers, status = 200) {
  const url = BASE + name;
  await caches.default.put(url, new Response(status === 204 ? null : "body", { status, headers }));
  const hit = await caches.default.match(url);
  return hit === undefined ? "not stored" : { status: hit.status, cookie: hit.headers.get("set-cookie") };
}

export default async function () {
  const t = new Transcript();
  await t.step("no-store", () => stored("no-store", { "cache-control": "no-store" }));
  await t.step("private", () => stored("private", { "cache-control": "private, max-age=600" }));
  await t.step("no-cache", () => stored("no-cache", { "cache-control": "no-cache" }));
  await t.step("max-age=0", () => stored("max-age-0", { "cache-control": "max-age=0" }));
  await t.step("s-maxage=0 beats max-age", () => stored("s-maxage-0", { "cache-control": "s-maxage=0, max-age=600" }));
  await t.step("s-maxage alone", () => stored("s-maxage", { "cache-control": "s-maxage=600" }));
  await t.step("expires in the past", () => stored("expired", { expires: "Thu, 01 Jan 1970 00:00:00 GMT" }));
  await t.step("expires in the future", () => stored("expires", { expires: "Fri, 01 Jan 2100 00:00:00 GMT" }));
  await t.step("set-cookie", () => stored("cookie", { "cache-control": "max-age=600", "set-cookie": "a=1" }));
  await t.step("private=set-cookie", () =>
    stored("cookie-private", { "cache-control": "max-age=600, private=set-cookie", "set-cookie": "a=1" }),
  );
  await t.step("200 without headers", () => stored("plain-200", {}));
  await t.step("500 without headers", () => stored("plain-500", {}, 500));
  await t.step("500 with max-age", () => stored("500-max-age", { "cache-control": "max-age=600" }, 500));
  return t;
}
