// Responses with stream bodies: text, clone, and a failing source.
import { Transcript } from "../../lib/transcript.js";

export default async function () {
  const t = new Transcript();
  const body = new ReadableStream({ start(c) { c.enqueue(new TextEncoder().encode("one ")); c.enqueue(new TextEncoder().encode("two")); c.close(); } });
  const r = new Response(body);
  const c = r.clone();
  t.note("text", await r.text());
  t.note("clone", await c.text());
  const bad = new Response(new ReadableStream({ start(ctl) { ctl.error(new Error("source failed")); } }));
  await t.step("errored body", () => bad.text());
  await t.step("string chunks", () => new Response(new ReadableStream({ start(ctl) { ctl.enqueue("str"); ctl.close(); } })).text());
  const locked = new Response("x");
  locked.body.getReader();
  await t.step("locked body", () => locked.text());
  return t;
}
