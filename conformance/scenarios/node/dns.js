// node:dns and node:dns/promises: exports, lookups (over DNS-over-HTTPS on Workers), and errors.
import * as dns from "node:dns";
import * as dnsp from "node:dns/promises";
import { Transcript } from "../../lib/transcript.js";

export default async function () {
  const t = new Transcript();
  t.note("exports", Object.keys(dns).sort().map((n) => [n, typeof dns[n]]));
  t.note("promises exports", Object.keys(dnsp).sort().map((n) => [n, typeof dnsp[n]]));
  t.note("promises same", dns.promises === dnsp.default || dns.promises === dnsp);
  t.note("constants", [dns.NODATA, dns.NOTFOUND, dns.ADDRCONFIG, dns.V4MAPPED, dns.ALL]);
  await t.step("getServers", () => dns.getServers());
  await t.step("setServers", () => dns.setServers(["1.1.1.1"]));
  await t.step("getDefaultResultOrder", () => dns.getDefaultResultOrder?.());
  await t.step("setDefaultResultOrder", () => dns.setDefaultResultOrder?.("ipv4first"));
  await t.step("lookup ip literal", () => new Promise((res) => dns.lookup("127.0.0.1", (e, a, f) => res(e ? { error: e.code ?? e.message, name: e.name } : [a, f]))));
  await t.step("lookup no callback", () => dns.lookup("localhost"));
  await t.step("lookupService", () => new Promise((res) => dns.lookupService("127.0.0.1", 22, (e, h, s) => res(e ? { error: e.code ?? e.message, name: e.name } : [h, s]))));
  await t.step("resolve4 non-string", () => dnsp.resolve4(5));
  await t.step("lookup empty name", () => new Promise((res) => dns.lookup("", (e, a, f) => res([e, a, f]))));
  await t.step("lookup all literal", () => dnsp.lookup("::1", { all: true }));
  await t.step("lookup bad family", () => dnsp.lookup("x", { family: 5 }));
  await t.step("setDefaultResultOrder bad", () => dns.setDefaultResultOrder("nope"));
  await t.step("resolve bad type", () => dnsp.resolve("example.com", "NOPE"));
  const r = dns.Resolver ? new dns.Resolver() : null;
  t.note("Resolver", r && Object.getOwnPropertyNames(Object.getPrototypeOf(r)).sort());
  await t.step("Resolver getServers", () => r?.getServers());
  return t;
}
