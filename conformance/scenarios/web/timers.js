// Timers and the microtask / task order.
import { Transcript } from "../../lib/transcript.js";

export default async function () {
  const t = new Transcript();
  const order = [];
  await new Promise((resolve) => {
    setTimeout(() => order.push("timeout 20"), 20);
    setTimeout(() => order.push("timeout 0"), 0);
    const cancelled = setTimeout(() => order.push("cancelled"), 5);
    clearTimeout(cancelled);
    queueMicrotask(() => order.push("microtask"));
    Promise.resolve().then(() => order.push("then"));
    let n = 0;
    const iv = setInterval(() => {
      order.push(`interval ${++n}`);
      if (n === 3) clearInterval(iv);
    }, 1);
    setTimeout(resolve, 60);
    order.push("sync");
  });
  t.note("order", order.filter((x) => !x.startsWith("interval")));
  t.note("intervals", order.filter((x) => x.startsWith("interval")));
  t.note("id type", typeof setTimeout(() => {}, 0));
  t.note("clear unknown", clearTimeout(123456));
  t.note("scheduler.wait", typeof globalThis.scheduler?.wait);
  return t;
}
