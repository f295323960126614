// node:tls without a network: exports, constants and what cannot be done in a Worker.
import * as tls from "node:tls";
import { Transcript } from "../../lib/transcript.js";

export default async function () {
  const t = new Transcript();
  t.note("exports", Object.keys(tls).sort().map((n) => [n, typeof tls[n]]));
  t.note("constants", [tls.DEFAULT_MIN_VERSION, tls.DEFAULT_MAX_VERSION, tls.DEFAULT_ECDH_CURVE, tls.CLIENT_RENEG_LIMIT, tls.CLIENT_RENEG_WINDOW, tls.rootCertificates]);
  await t.step("createServer", () => tls.createServer());
  await t.step("checkServerIdentity", () => tls.checkServerIdentity("a.test", { subject: { CN: "a.test" } }));
  await t.step("TLSSocket is a net.Socket", async () => {
    const net = await import("node:net");
    return Object.getPrototypeOf(tls.TLSSocket.prototype) === net.Socket.prototype;
  });
  await t.step("createSecureContext", () => typeof tls.createSecureContext({}));
  return t;
}
