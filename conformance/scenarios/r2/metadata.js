// R2 httpMetadata and customMetadata: stored, returned, written to Headers.
import { Transcript, r2object } from "../../lib/transcript.js";

export default async function ({ env }) {
  const t = new Transcript();
  const b = env.BUCKET;
  await t.step("put", async () =>
    r2object(
      await b.put("md/x", "body", {
        httpMetadata: {
          contentType: "text/plain",
          contentLanguage: "en",
          contentDisposition: "inline",
          contentEncoding: "identity",
          cacheControl: "no-cache",
          cacheExpiry: new Date(Date.UTC(2030, 0, 1)),
        },
        customMetadata: { owner: "me", "x-y": "z" },
      }),
    ),
  );
  await t.step("head", async () => r2object(await b.head("md/x")));
  await t.step("writeHttpMetadata", async () => {
    const h = new Headers();
    (await b.head("md/x")).writeHttpMetadata(h);
    return [...h];
  });
  await t.step("from Headers", async () => {
    await b.put("md/h", "b", { httpMetadata: new Headers({ "content-type": "image/png", "cache-control": "max-age=1" }) });
    return (await b.head("md/h")).httpMetadata;
  });
  await t.step("custom too large", () => b.put("md/big", "b", { customMetadata: { k: "v".repeat(2048) } }));
  await t.step("custom non-string", async () => {
    await b.put("md/n", "b", { customMetadata: { n: 5 } });
    return (await b.head("md/n")).customMetadata;
  });
  return t;
}
