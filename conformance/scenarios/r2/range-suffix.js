// R2 suffix ranges and Range headers at the edges of the object.
import { Transcript, r2object } from "../../lib/transcript.js";

export default async function ({ env }) {
  const t = new Transcript();
  const b = env.BUCKET;
  await b.put("rs/x", "0123456789");
  await b.put("rs/empty", "");
  const read = async (key, opts) => {
    const o = await b.get(key, opts);
    return o === null ? null : [o.range, await o.text()];
  };
  await t.step("suffix equal size", () => read("rs/x", { range: { suffix: 10 } }));
  await t.step("suffix 1", () => read("rs/x", { range: { suffix: 1 } }));
  await t.step("suffix 0", () => read("rs/x", { range: { suffix: 0 } }));
  await t.step("suffix on empty", () => read("rs/empty", { range: { suffix: 3 } }));
  await t.step("header suffix", () => read("rs/x", { range: new Headers({ range: "bytes=-3" }) }));
  await t.step("header open end", () => read("rs/x", { range: new Headers({ range: "bytes=7-" }) }));
  await t.step("header past end", () => read("rs/x", { range: new Headers({ range: "bytes=20-30" }) }));
  await t.step("suffix with offset", () => read("rs/x", { range: { suffix: 2, offset: 1 } }));
  await t.step("fractional suffix", () => read("rs/x", { range: { suffix: 1.5 } }));
  await t.step("range object fields", async () => r2object(await b.get("rs/x", { range: { suffix: 2 } })));
  return t;
}
