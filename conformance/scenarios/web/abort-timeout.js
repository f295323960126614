// AbortSignal.timeout and AbortSignal.any: reasons, timing and argument checks.
import { Transcript } from "../../lib/transcript.js";

const wait = (ms) => new Promise((r) => setTimeout(r, ms));

export default async function () {
  const t = new Transcript();
  const s = AbortSignal.timeout(20);
  t.note("before", [s.aborted, s.reason]);
  const fired = [];
  s.addEventListener("abort", (e) => fired.push(e.type));
  await wait(60);
  t.note("after", [s.aborted, s.reason instanceof DOMException, s.reason.name, s.reason.message, fired]);
  await t.step("throwIfAborted", () => s.throwIfAborted());
  await t.step("timeout 0", async () => {
    const z = AbortSignal.timeout(0);
    const early = z.aborted;
    await wait(20);
    return [early, z.aborted];
  });
  await t.step("any of timeouts", async () => {
    const a = AbortSignal.any([AbortSignal.timeout(10), AbortSignal.timeout(10000)]);
    await wait(50);
    return [a.aborted, a.reason.name];
  });
  await t.step("any empty", () => AbortSignal.any([]).aborted);
  await t.step("negative", () => AbortSignal.timeout(-1));
  await t.step("abort static reason", () => [AbortSignal.abort().reason.name, AbortSignal.abort().reason.message]);
  return t;
}
