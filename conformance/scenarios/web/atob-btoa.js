// atob/btoa: round trips and the errors they throw.
import { Transcript } from "../../lib/transcript.js";

export default async function () {
  const t = new Transcript();
  t.note("btoa", btoa("hello\u00ff"));
  t.note("atob", atob("aGVsbG//"));
  t.note("atob whitespace", atob(" aGk = "));
  t.note("atob no padding", atob("aGk"));
  t.note("btoa number", btoa(12));
  await t.step("btoa non latin1", () => btoa("€"));
  await t.step("atob bad char", () => atob("a*b"));
  await t.step("atob bad length", () => atob("abcde"));
  await t.step("atob no args", () => atob());
  return t;
}
