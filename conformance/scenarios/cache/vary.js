// A response with Vary is matched by the request headers it names.
import { Transcript } from "../../lib/transcript.js";

const URL = "https://cache.test/vary/a";

async function get(lang) {
  const headers = lang === null ? {} : { "accept-language": lang };
  const r = await caches.default.match(new Request(URL, { headers }));
  return r === undefined ? "miss" : r.text();
}

export default async function () {
  const t = new Transcript();
  await caches.default.put(
    new Request(URL, { headers: { "accept-language": "en" } }),
    new Response("hello", { headers: { "cache-control": "max-age=600", vary: "Accept-Language" } }),
  );
  await t.step("same header", () => get("en"));
  await t.step("other value", () => get("fr"));
  await t.step("header absent", () => get(null));
  return t;
}
