// R2 ranged reads: offset/length, suffix, Headers ranges, bad ranges.
import { Transcript, r2object } from "../../lib/transcript.js";

export default async function ({ env }) {
  const t = new Transcript();
  const b = env.BUCKET;
  await b.put("rg/x", "0123456789");
  const read = async (opts) => {
    const o = await b.get("rg/x", opts);
    return { range: o.range, text: await o.text(), size: o.size };
  };
  await t.step("offset+length", () => read({ range: { offset: 2, length: 3 } }));
  await t.step("offset only", () => read({ range: { offset: 7 } }));
  await t.step("length only", () => read({ range: { length: 4 } }));
  await t.step("suffix", () => read({ range: { suffix: 3 } }));
  await t.step("headers range", () => read({ range: new Headers({ range: "bytes=1-2" }) }));
  await t.step("length past end", () => read({ range: { offset: 8, length: 10 } }));
  await t.step("offset past end", () => read({ range: { offset: 20 } }));
  await t.step("negative offset", () => read({ range: { offset: -1 } }));
  await t.step("empty object", () => read({ range: {} }));
  await t.step("suffix too big", () => read({ range: { suffix: 50 } }));
  await t.step("object fields", async () => r2object(await b.get("rg/x", { range: { offset: 1, length: 1 } })));
  return t;
}
