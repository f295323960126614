// AbortController / AbortSignal: reasons, events, statics.
import { Transcript } from "../../lib/transcript.js";

export default async function () {
  const t = new Transcript();
  const c = new AbortController();
  const events = [];
  c.signal.addEventListener("abort", (e) => events.push(e.type));
  c.signal.onabort = () => events.push("onabort");
  t.note("before", [c.signal.aborted, c.signal.reason]);
  c.abort();
  c.abort("again");
  t.note("after", [c.signal.aborted, c.signal.reason, events]);
  await t.step("throwIfAborted", () => c.signal.throwIfAborted());
  const c2 = new AbortController();
  c2.abort(new TypeError("custom"));
  t.note("custom reason", c2.signal.reason);
  const s = AbortSignal.abort("why");
  t.note("static abort", [s.aborted, s.reason]);
  const any = AbortSignal.any([new AbortController().signal, s]);
  t.note("any", [any.aborted, any.reason]);
  const timeout = AbortSignal.timeout(10);
  await new Promise((r) => setTimeout(r, 40));
  t.note("timeout", [timeout.aborted, timeout.reason]);
  await t.step("constructor", () => new AbortSignal());
  return t;
}
