// Request: refused constructions.
import { Transcript } from "../../lib/transcript.js";

export default async function () {
  const t = new Transcript();
  await t.step("GET with body", () => new Request("https://e.com", { method: "GET", body: "x" }));
  await t.step("HEAD with body", () => new Request("https://e.com", { method: "HEAD", body: "x" }));
  await t.step("relative url", () => new Request("/relative"));
  await t.step("bad method", () => new Request("https://e.com", { method: "BAD METHOD" }));
  await t.step("read twice", async () => {
    const r = new Request("https://e.com", { method: "POST", body: "x" });
    await r.text();
    return await r.text();
  });
  await t.step("clone used", async () => {
    const r = new Request("https://e.com", { method: "POST", body: "x" });
    await r.text();
    return r.clone();
  });
  return t;
}
