// Response.redirect, Response.json and Response.error.
import { Transcript, response } from "../../lib/transcript.js";

export default async function () {
  const t = new Transcript();
  await t.step("redirect default", () => response(Response.redirect("https://example.com/a")));
  await t.step("redirect 301", () => response(Response.redirect("https://example.com/b", 301)));
  for (const s of [303, 307, 308]) await t.step(`redirect ${s}`, async () => (await Response.redirect("https://example.com/", s)).status);
  await t.step("redirect 200", () => Response.redirect("https://example.com/", 200));
  await t.step("redirect relative", () => Response.redirect("/relative"));
  await t.step("redirect headers immutable", () => Response.redirect("https://example.com/").headers.set("x", "1"));
  await t.step("json", () => response(Response.json({ a: [1, "two"] }, { status: 201, headers: { "x-extra": "1" } })));
  await t.step("json content-type kept", () => response(Response.json(null, { headers: { "content-type": "text/plain" } })));
  await t.step("error", () => {
    const e = Response.error();
    return [e.type, e.status, e.ok, e.body === null];
  });
  await t.step("status out of range", () => new Response("x", { status: 99 }));
  await t.step("null body status with body", () => new Response("x", { status: 204 }));
  return t;
}
