// node:crypto keys, sign and verify with fixed PEM keys: RSA PKCS#1 v1.5 (deterministic) and PSS, P-256 ECDSA.
import crypto from "node:crypto";
import { Transcript } from "../../lib/transcript.js";
import { RSA_PRIVATE_PEM, RSA_PUBLIC_PEM, EC_PRIVATE_PEM, EC_PUBLIC_PEM } from "../../lib/node-keys.js";

export default async function () {
  const t = new Transcript();
  const data = Buffer.from("message");
  await t.step("createPrivateKey rsa", () => {
    const k = crypto.createPrivateKey(RSA_PRIVATE_PEM);
    return [k.type, k.asymmetricKeyType, k.asymmetricKeyDetails];
  });
  await t.step("createPublicKey rsa", () => {
    const k = crypto.createPublicKey(RSA_PUBLIC_PEM);
    return [k.type, k.asymmetricKeyType, k.export({ type: "spki", format: "pem" }) === RSA_PUBLIC_PEM];
  });
  await t.step("public from private", () => crypto.createPublicKey(RSA_PRIVATE_PEM).export({ type: "spki", format: "pem" }) === RSA_PUBLIC_PEM);
  const sig = await t.step("sign pkcs1 (pem)", () => crypto.sign("sha256", data, RSA_PRIVATE_PEM).toString("base64"));
  await t.step("verify pkcs1 (pem)", () => [
    crypto.verify("sha256", data, RSA_PUBLIC_PEM, Buffer.from(sig ?? "", "base64")),
    crypto.verify("sha256", Buffer.from("other"), RSA_PUBLIC_PEM, Buffer.from(sig ?? "", "base64")),
  ]);
  await t.step("sign with KeyObject", () => crypto.sign("sha256", data, crypto.createPrivateKey(RSA_PRIVATE_PEM)).toString("base64") === sig);
  await t.step("createSign/createVerify", () => {
    const s = crypto.createSign("RSA-SHA256");
    s.update("streamed");
    const out = s.sign(RSA_PRIVATE_PEM, "base64");
    const v = crypto.createVerify("RSA-SHA256");
    v.update("streamed");
    return [out.length, v.verify(RSA_PUBLIC_PEM, out, "base64")];
  });
  await t.step("pss round trip", () => {
    const o = { padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 };
    const s = crypto.sign("sha256", data, { key: RSA_PRIVATE_PEM, ...o });
    return [s.length, crypto.verify("sha256", data, { key: RSA_PUBLIC_PEM, ...o }, s)];
  });
  await t.step("ec key", () => {
    const k = crypto.createPublicKey(EC_PUBLIC_PEM);
    return [k.asymmetricKeyType, k.asymmetricKeyDetails];
  });
  // ECDSA signatures are random: a fixed one made by Node is verified, and
  // a fresh one is only checked for its DER shape.
  await t.step("ec sign/verify", () => {
    const fixed = Buffer.from("MEQCIArPMXL164/cLAaJrmWgsSdhaAGCN5sq78VUaUc88QK6AiAzvbg2pp5MEVV2WhOLv0YNEY2KMMZRowYlbK3nRHbJIg==", "base64");
    const s = crypto.sign("sha256", data, EC_PRIVATE_PEM);
    return [crypto.verify("sha256", data, EC_PUBLIC_PEM, fixed), crypto.verify("sha256", Buffer.from("x"), EC_PUBLIC_PEM, fixed), s[0] === 0x30 && s.length >= 68 && s.length <= 72];
  });
  await t.step("ec jwk", () => {
    const jwk = crypto.createPublicKey(EC_PUBLIC_PEM).export({ format: "jwk" });
    const back = crypto.createPublicKey({ key: jwk, format: "jwk" });
    return [jwk.kty, jwk.crv, jwk.x.length, "d" in jwk, back.export({ type: "spki", format: "pem" }) === EC_PUBLIC_PEM];
  });
  await t.step("secret key", () => {
    const k = crypto.createSecretKey(Buffer.from("k"));
    return [k.type, k.symmetricKeySize, k.export()];
  });
  await t.step("bad pem", () => crypto.createPublicKey("not a key"));
  await t.step("sign with public key", () => crypto.sign("sha256", data, RSA_PUBLIC_PEM));
  await t.step("unknown digest", () => crypto.sign("nope", data, RSA_PRIVATE_PEM));
  return t;
}
