// URL: parse failures.
import { Transcript } from "../../lib/transcript.js";

export default async function () {
  const t = new Transcript();
  await t.step("no scheme", () => new URL("nope").href);
  await t.step("bad base", () => new URL("x", "also nope").href);
  await t.step("bad port", () => new URL("http://e.com:99999/").href);
  await t.step("bad host", () => new URL("http://a b/").href);
  await t.step("no args", () => new URL().href);
  await t.step("port setter ignored", () => {
    const u = new URL("https://e.com/");
    u.port = "abc";
    return u.href;
  });
  await t.step("protocol setter to special", () => {
    const u = new URL("foo://e.com/");
    u.protocol = "https";
    return u.href;
  });
  return t;
}
