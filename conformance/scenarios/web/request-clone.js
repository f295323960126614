// Request clone(), body reuse through new Request(request), and bodyUsed.
import { Transcript } from "../../lib/transcript.js";

export default async function () {
  const t = new Transcript();
  const post = () => new Request("https://example.com/p", { method: "POST", body: "payload", headers: { "x-a": "1" } });
  await t.step("clone reads both", async () => {
    const a = post();
    const b = a.clone();
    return [await a.text(), await b.text(), a.bodyUsed, b.bodyUsed];
  });
  await t.step("clone keeps fields", () => {
    const c = post().clone();
    return [c.method, c.url, [...c.headers], c.redirect];
  });
  await t.step("re-wrap takes the body", async () => {
    const a = post();
    const b = new Request(a);
    return [a.bodyUsed, await b.text()];
  });
  await t.step("re-wrap with new method", async () => {
    const b = new Request(post(), { method: "PUT", headers: { "x-b": "2" } });
    return [b.method, [...b.headers], await b.text()];
  });
  await t.step("re-wrap used body", async () => {
    const a = post();
    await a.text();
    return new Request(a);
  });
  await t.step("GET clone no body", () => {
    const c = new Request("https://example.com/").clone();
    return [c.body, c.bodyUsed];
  });
  await t.step("arrayBuffer after clone", async () => {
    const a = post();
    a.clone();
    return new Uint8Array(await a.arrayBuffer()).length;
  });
  return t;
}
