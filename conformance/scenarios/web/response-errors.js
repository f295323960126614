// Response: refused statuses and bodies.
import { Transcript } from "../../lib/transcript.js";

export default async function () {
  const t = new Transcript();
  await t.step("status 99", () => new Response("x", { status: 99 }));
  await t.step("status 600", () => new Response("x", { status: 600 }));
  await t.step("204 with body", () => new Response("x", { status: 204 }));
  await t.step("redirect bad status", () => Response.redirect("https://e.com", 200));
  await t.step("redirect relative", () => Response.redirect("/x", 302));
  await t.step("json of bigint", () => Response.json({ a: 1n }));
  await t.step("bad json body", async () => new Response("{nope").json());
  await t.step("read twice", async () => {
    const r = new Response("x");
    await r.text();
    return await r.arrayBuffer();
  });
  return t;
}
