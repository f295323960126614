// R2 put, get, head: object fields and body readers.
import { Transcript, r2object } from "../../lib/transcript.js";

export default async function ({ env }) {
  const t = new Transcript();
  const b = env.BUCKET;
  await t.step("put", async () => r2object(await b.put("pgh/a.txt", "hello world")));
  await t.step("head", async () => r2object(await b.head("pgh/a.txt")));
  await t.step("get", async () => {
    const o = await b.get("pgh/a.txt");
    return { object: r2object(o), text: await o.text(), bodyUsed: o.bodyUsed };
  });
  await t.step("get arrayBuffer", async () => (await b.get("pgh/a.txt")).arrayBuffer());
  await t.step("get json", async () => {
    await b.put("pgh/j", '{"a":1}');
    return (await b.get("pgh/j")).json();
  });
  await t.step("get blob", async () => {
    const blob = await (await b.get("pgh/a.txt")).blob();
    return [blob.size, blob.type];
  });
  await t.step("get stream", async () => new Response((await b.get("pgh/a.txt")).body).text());
  await t.step("missing get", () => b.get("pgh/missing"));
  await t.step("missing head", () => b.head("pgh/missing"));
  await t.step("empty object", async () => {
    await b.put("pgh/empty", "");
    const o = await b.get("pgh/empty");
    return [o.size, await o.text()];
  });
  return t;
}
