// EventTarget / Event: dispatch, once, stopImmediatePropagation, CustomEvent.
import { Transcript } from "../../lib/transcript.js";

export default async function () {
  const t = new Transcript();
  const target = new EventTarget();
  const log = [];
  target.addEventListener("x", () => log.push("once"), { once: true });
  target.addEventListener("x", (e) => { log.push("first"); e.stopImmediatePropagation(); });
  target.addEventListener("x", () => log.push("never"));
  target.addEventListener("y", { handleEvent: (e) => log.push(`object ${e.type}`) });
  target.dispatchEvent(new Event("x"));
  target.dispatchEvent(new Event("x"));
  target.dispatchEvent(new Event("y"));
  t.note("log", log);
  const e = new Event("z", { cancelable: true });
  target.addEventListener("z", (ev) => ev.preventDefault());
  t.note("dispatch result", [target.dispatchEvent(e), e.defaultPrevented, e.cancelable, e.bubbles]);
  const ce = new CustomEvent("c", { detail: { a: 1 } });
  t.note("custom", [ce.type, ce.detail]);
  await t.step("no type", () => new Event());
  await t.step("redispatch", () => {
    const ev = new Event("r");
    target.addEventListener("r", () => target.dispatchEvent(ev));
    return target.dispatchEvent(ev);
  });
  return t;
}
