// sendBatch() refusals: more than 100 messages, a message over 128 KB, more
// than 256 KB in all, bad delays, an empty or non-iterable batch.
import { Transcript } from "../../lib/transcript.js";

export default async function ({ env }) {
  const t = new Transcript();
  const q = env.QUEUE;
  const text = (n) => ({ body: "batch-errors|x|".padEnd(n, "x"), contentType: "text" });
  await t.step("101 messages", () => q.sendBatch(Array.from({ length: 101 }, () => text(20))));
  await t.step("one message over 128000", () => q.sendBatch([text(10), text(128001)]));
  await t.step("three of 100000 bytes", () => q.sendBatch([text(100000), text(100000), text(100000)]));
  await t.step("two of 128000 bytes", () => q.sendBatch([text(128000), text(128000)]));
  await t.step("260000 bytes in all", () => q.sendBatch([text(128000), text(128000), text(4000)]));
  await t.step("a string", () => q.sendBatch("ab"));
  await t.step("message null", () => q.sendBatch([null]));
  await t.step("message delay outside int32", () => q.sendBatch([{ ...text(20), delaySeconds: 2 ** 31 }]));
  await t.step("empty batch", () => q.sendBatch([]));
  await t.step("not iterable", () => q.sendBatch({ body: "x" }));
  await t.step("no argument", () => q.sendBatch());
  await t.step("batch delay 86401", () => q.sendBatch([text(20)], { delaySeconds: 86401 }));
  await t.step("batch delay -1", () => q.sendBatch([text(20)], { delaySeconds: -1 }));
  await t.step("message delay -1", () => q.sendBatch([{ ...text(20), delaySeconds: -1 }]));
  await t.step("message content type xml", () => q.sendBatch([{ body: "x", contentType: "xml" }]));
  await t.step("message without body", () => q.sendBatch([{ contentType: "v8" }]));
  await t.step("message not an object", () => q.sendBatch(["batch-errors|x|"]));
  await t.step("json body with a BigInt", () => q.sendBatch([{ body: 1n, contentType: "json" }]));
  return t;
}
