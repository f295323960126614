// Request: method normalisation, url, headers, body reading, clone.
import { Transcript } from "../../lib/transcript.js";

export default async function () {
  const t = new Transcript();
  const r = new Request("https://example.com/a/../b?x=1#frag", {
    method: "post",
    headers: { "X-Test": "yes" },
    body: "hello",
  });
  t.note("method", r.method);
  t.note("url", r.url);
  t.note("header", r.headers.get("x-test"));
  t.note("content-type", r.headers.get("content-type"));
  t.note("redirect", r.redirect);
  const c = r.clone();
  t.note("text", await r.text());
  t.note("bodyUsed", r.bodyUsed);
  t.note("clone text", await c.text());
  t.note("patch stays", new Request("https://e.com", { method: "patch" }).method);
  t.note("delete upper", new Request("https://e.com", { method: "delete" }).method);
  const copy = new Request(new Request("https://e.com/x", { method: "PUT", body: "b" }), { headers: { a: "1" } });
  t.note("copy", [copy.method, copy.url, [...copy.headers], await copy.text()]);
  t.note("no body", new Request("https://e.com").body);
  return t;
}
