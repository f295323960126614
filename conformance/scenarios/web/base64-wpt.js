// The web-platform-tests forgiving-base64 vectors through atob (POSTed by
// the runner): counts of passing cases and the inputs that fail.
import { Transcript } from "../../lib/transcript.js";

export default async function ({ request }) {
  const t = new Transcript();
  const cases = await request.json();
  let pass = 0;
  const failing = [];
  for (const [input, bytes] of cases) {
    let ok;
    try {
      const out = atob(input);
      ok = bytes !== null && out.length === bytes.length && [...out].every((ch, i) => ch.charCodeAt(0) === bytes[i]);
    } catch (e) {
      ok = bytes === null && e.name === "InvalidCharacterError";
    }
    if (ok) pass++;
    else failing.push(input);
  }
  t.note("cases", cases.length);
  t.note("pass", pass);
  t.note("failing", failing);
  return t;
}
