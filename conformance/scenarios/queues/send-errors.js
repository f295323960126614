// send() refusals: message size, delaySeconds range, content types and
// bodies that do not fit their content type.
import { Transcript } from "../../lib/transcript.js";
import { records } from "../../handlers/queues.js";

export default async function ({ env }) {
  const t = new Transcript();
  const q = env.QUEUE;
  const pad = (tag, n) => `send-errors|${tag}|`.padEnd(n, "x");
  await t.step("text at 128000 bytes", () => q.send(pad("max", 128000), { contentType: "text" }));
  await t.step("text over 128000 bytes", () => q.send(pad("over", 128001), { contentType: "text" }));
  await t.step("bytes over 128000 bytes", () => q.send(new Uint8Array(128001), { contentType: "bytes" }));
  await t.step("multibyte text over the limit", () => q.send("☃".repeat(42667), { contentType: "text" }));
  await t.step("delay 43200", () => q.send("send-errors|delay-max|", { contentType: "text", delaySeconds: 43200 }));
  await t.step("delay 86401", () => q.send("send-errors|x|", { contentType: "text", delaySeconds: 86401 }));
  await t.step("delay -1", () => q.send("send-errors|x|", { contentType: "text", delaySeconds: -1 }));
  await t.step("delay 1.5", () => q.send("send-errors|fraction|", { contentType: "text", delaySeconds: 1.5 }));
  await t.step("delay NaN", () => q.send("send-errors|nan|", { contentType: "text", delaySeconds: NaN }));
  await t.step("delay outside int32", () => q.send("send-errors|x|", { contentType: "text", delaySeconds: 2 ** 31 }));
  await t.step("content type null", () => q.send("send-errors|x|", { contentType: null }));
  await t.step("options not an object", () => q.send("send-errors|x|", "text"));
  await t.step("content type xml", () => q.send("send-errors|x|", { contentType: "xml" }));
  await t.step("content type TEXT", () => q.send("send-errors|upper|", { contentType: "TEXT" }));
  await t.step("text with a number", () => q.send(42, { contentType: "text" }));
  await t.step("bytes with a string", () => q.send("send-errors|x|", { contentType: "bytes" }));
  await t.step("bytes with an ArrayBuffer", () => q.send(new ArrayBuffer(4), { contentType: "bytes" }));
  await t.step("json with a BigInt", () => q.send({ n: 1n }, { contentType: "json" }));
  await t.step("json with a function", () => q.send(() => 1, { contentType: "json" }));
  await t.step("json with undefined", () => q.send(undefined, { contentType: "json" }));
  await t.step("v8 with a function", () => q.send({ f() {} }, { contentType: "v8" }));
  await t.step("v8 with a symbol", () => q.send(Symbol("s"), { contentType: "v8" }));
  await t.step("default (json) with a function inside", () => q.send({ s: "send-errors", tag: "default-fn", f() {} }));
  await t.step("v8 with undefined", () => q.send(undefined));
  await t.step("no arguments", () => q.send());
  const seen = await records(env, "send-errors:", 5);
  for (const [key, r] of Object.entries(seen).sort()) t.note(key, { body: r.body, attempts: r.attempts });
  return t;
}
