// The web-platform-tests URL parsing vectors (POSTed by the runner):
// counts of passing cases and the inputs that fail.
import { Transcript } from "../../lib/transcript.js";

const FIELDS = ["href", "protocol", "username", "password", "host", "hostname", "port", "pathname", "search", "hash"];

export default async function ({ request }) {
  const t = new Transcript();
  const cases = (await request.json()).filter((c) => typeof c === "object");
  let pass = 0;
  const failing = [];
  for (const c of cases) {
    let ok;
    try {
      const u = c.base === null ? new URL(c.input) : new URL(c.input, c.base);
      ok = !c.failure && FIELDS.every((f) => u[f] === c[f]);
    } catch {
      ok = !!c.failure;
    }
    if (ok) pass++;
    else failing.push(c.base === null ? c.input : [c.input, c.base]);
  }
  t.note("cases", cases.length);
  t.note("pass", pass);
  t.note("failing", failing);
  return t;
}
