// URL: components, setters and the live searchParams.
import { Transcript } from "../../lib/transcript.js";

const parts = (u) => ({
  href: u.href, origin: u.origin, protocol: u.protocol, username: u.username, password: u.password,
  host: u.host, hostname: u.hostname, port: u.port, pathname: u.pathname, search: u.search, hash: u.hash,
});

export default async function () {
  const t = new Transcript();
  const u = new URL("HTTPS://user:pw@Example.COM:443/a/./b/../c?x=1&y=2#h");
  t.note("parsed", parts(u));
  u.pathname = "/new path";
  u.searchParams.append("z", "a b");
  u.hash = "";
  u.port = "8443";
  t.note("after setters", parts(u));
  t.note("relative", new URL("../up?q", "https://e.com/a/b/c").href);
  t.note("idna", new URL("https://bücher.example/").hostname);
  t.note("ipv4", new URL("http://0x7f.1/").hostname);
  t.note("ipv6", new URL("http://[::1]:80/").host);
  t.note("file", parts(new URL("file:///C:/x/../y")));
  t.note("toJSON", JSON.stringify({ u: new URL("https://e.com/p") }));
  t.note("canParse", [URL.canParse("https://e.com"), URL.canParse("nope"), URL.canParse("x", "https://e.com")]);
  t.note("blob protocol origin", new URL("blob:https://e.com/uuid").origin);
  return t;
}
