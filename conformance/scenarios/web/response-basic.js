// Response: defaults, status text, static constructors.
import { Transcript, response } from "../../lib/transcript.js";

export default async function () {
  const t = new Transcript();
  t.note("string body", await response(new Response("hi")));
  t.note("custom", await response(new Response("x", { status: 201, statusText: "Made", headers: { a: "b" } })));
  const r = new Response(null, { status: 404 });
  t.note("404", [r.status, r.ok, r.statusText, r.body, r.bodyUsed]);
  t.note("json", await response(Response.json({ a: [1, 2] }, { status: 202 })));
  const red = Response.redirect("https://example.com/next", 301);
  t.note("redirect", [red.status, red.headers.get("location")]);
  t.note("redirect default", Response.redirect("https://example.com/").status);
  t.note("empty", await response(new Response()));
  t.note("bytes body", await response(new Response(new Uint8Array([104, 105]))));
  t.note("urlsearchparams body", await response(new Response(new URLSearchParams("a=1&b=2"))));
  t.note("blob body", await response(new Response(new Blob(["b"], { type: "text/x-test" }))));
  t.note("ok range", [200, 299, 300].map((s) => new Response(null, { status: s }).ok));
  return t;
}
