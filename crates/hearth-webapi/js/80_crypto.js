// crypto.getRandomValues, crypto.randomUUID and crypto.subtle.
const kKey = Symbol("key");

const ALG_NAMES = {};
for (const n of ["SHA-1", "SHA-256", "SHA-384", "SHA-512", "MD5", "HMAC", "AES-GCM", "ECDSA",
  "RSASSA-PKCS1-v1_5", "RSA-PSS", "PBKDF2", "HKDF", "AES-CBC", "AES-CTR", "AES-KW", "ECDH", "Ed25519", "X25519", "RSA-OAEP"]) {
  ALG_NAMES[n.toUpperCase()] = n;
}
const SUPPORTED = {
  digest: new Set(["SHA-1", "SHA-256", "SHA-384", "SHA-512", "MD5"]),
  importKey: new Set(["HMAC", "AES-GCM", "AES-CBC", "AES-CTR", "ECDSA", "RSASSA-PKCS1-v1_5", "RSA-PSS", "PBKDF2", "HKDF"]),
  sign: new Set(["HMAC", "ECDSA", "RSASSA-PKCS1-v1_5", "RSA-PSS"]),
  encrypt: new Set(["AES-GCM", "AES-CBC", "AES-CTR"]),
  generateKey: new Set(["HMAC", "AES-GCM", "AES-CBC", "AES-CTR", "ECDSA", "RSASSA-PKCS1-v1_5", "RSA-PSS"]),
  deriveBits: new Set(["PBKDF2", "HKDF"]),
  get: new Set(["HMAC", "AES-GCM", "AES-CBC", "AES-CTR"]),
};

function notSupported(msg) { return domError(msg, "NotSupportedError"); }
function dataError(msg) { return domError(msg, "DataError"); }
function accessError(msg) { return domError(msg, "InvalidAccessError"); }
function syntaxError(msg) { return domError(msg, "SyntaxError"); }

function normalizeAlgorithm(alg, op) {
  if (typeof alg === "string") alg = { name: alg };
  if (!isObject(alg) || alg.name === undefined) throw new TypeError("Algorithm must be a string or an object with a name.");
  const raw = String(alg.name);
  const name = ALG_NAMES[raw.toUpperCase()];
  if (name === undefined || !SUPPORTED[op].has(name)) {
    // workerd words the digest case without naming the algorithm.
    if (op === "digest") throw notSupported("Unrecognized or unimplemented digest algorithm requested.");
    if (op === "generateKey") throw notSupported(`Unrecognized key generation algorithm "${raw}" requested.`);
    if (op === "importKey") throw notSupported(`Unrecognized key import algorithm "${raw}" requested.`);
    throw notSupported(`Unrecognized or unimplemented algorithm "${raw}" for ${op}.`);
  }
  const out = { ...alg, name };
  if (alg.hash !== undefined) out.hash = normalizeAlgorithm(alg.hash, "digest");
  return out;
}

function bufferArg(v, what) {
  const b = asBytes(v);
  if (b === null) throw new TypeError(`${what} must be an ArrayBuffer or ArrayBufferView.`);
  return b;
}

let allowKeyConstruct = false;
class CryptoKey {
  constructor() { if (!allowKeyConstruct) throw new TypeError("Illegal constructor"); }
  get type() { return this[kKey].type; }
  get extractable() { return this[kKey].extractable; }
  get algorithm() { return this[kKey].algorithm; }
  get usages() { return this[kKey].usages.slice(); }
}
tag(CryptoKey);

function makeKey(type, extractable, algorithm, usages, handle) {
  allowKeyConstruct = true;
  let k;
  try { k = new CryptoKey(); } finally { allowKeyConstruct = false; }
  k[kKey] = { type, extractable: !!extractable, algorithm: Object.freeze(algorithm), usages, handle };
  return k;
}

const USAGES = {
  HMAC: { secret: ["sign", "verify"] },
  "AES-GCM": { secret: ["encrypt", "decrypt", "wrapKey", "unwrapKey"] },
  "AES-CBC": { secret: ["encrypt", "decrypt", "wrapKey", "unwrapKey"] },
  "AES-CTR": { secret: ["encrypt", "decrypt", "wrapKey", "unwrapKey"] },
  ECDSA: { public: ["verify"], private: ["sign"] },
  "RSASSA-PKCS1-v1_5": { public: ["verify"], private: ["sign"] },
  "RSA-PSS": { public: ["verify"], private: ["sign"] },
  PBKDF2: { secret: ["deriveBits", "deriveKey"] },
  HKDF: { secret: ["deriveBits", "deriveKey"] },
};
function checkUsages(name, type, usages) {
  usages = Array.from(usages || [], String);
  const allowed = USAGES[name][type] || [];
  for (const u of usages) {
    if (!allowed.includes(u)) throw syntaxError(`Unsupported key usage for a ${name} ${type} key: ${u}`);
  }
  if (usages.length === 0 && (type === "secret" || type === "private")) throw syntaxError("Secret/private CryptoKeys must have at least one usage.");
  return Array.from(new Set(usages));
}
// workerd compares the requested algorithm name with the key's before it
// looks the name up, so an unknown name on a valid key is an access error.
function keyAlgorithmMatches(algorithm, key) {
  if (!(key instanceof CryptoKey)) return;
  const raw = typeof algorithm === "string" ? algorithm : isObject(algorithm) && algorithm.name !== undefined ? String(algorithm.name) : null;
  const have = key[kKey].algorithm.name;
  if (raw !== null && raw.toUpperCase() !== have.toUpperCase()) {
    throw accessError(`Requested algorithm "${raw}" does not match this CryptoKey's algorithm "${have}".`);
  }
}
function requireUsage(key, usage, alg) {
  if (!(key instanceof CryptoKey)) throw new TypeError("Expected a CryptoKey.");
  const k = key[kKey];
  if (alg && k.algorithm.name !== alg.name) throw accessError(`The requested operation is not valid for the provided key (algorithm ${k.algorithm.name}, requested ${alg.name}).`);
  if (!k.usages.includes(usage)) throw accessError(`Requested key usage "${usage}" does not match any usage listed in this CryptoKey.`);
  return k;
}

const HASH_BLOCK_BITS = { "SHA-1": 512, "SHA-256": 512, "SHA-384": 1024, "SHA-512": 1024, MD5: 512 };
const JWK_HMAC_ALG = { "SHA-1": "HS1", "SHA-256": "HS256", "SHA-384": "HS384", "SHA-512": "HS512" };
const JWK_RSA_ALG = {
  "RSASSA-PKCS1-v1_5": { "SHA-1": "RS1", "SHA-256": "RS256", "SHA-384": "RS384", "SHA-512": "RS512" },
  "RSA-PSS": { "SHA-1": "PS1", "SHA-256": "PS256", "SHA-384": "PS384", "SHA-512": "PS512" },
};

function b64u(bytes) { return native.b64urlEncode(bytes); }
function unb64u(s, field) {
  if (typeof s !== "string") throw dataError(`Invalid JWK: "${field}" is missing or not a string.`);
  const b = native.b64urlDecode(s);
  if (b === null) throw dataError(`Invalid JWK: "${field}" is not valid base64url.`);
  return b;
}
function checkJwk(jwk, kty, extractable, usages) {
  if (!isObject(jwk)) throw new TypeError("JWK key data must be an object.");
  if (jwk.kty !== kty) throw dataError(`Invalid JWK: "kty" must be "${kty}".`);
  if (jwk.ext === false && extractable) throw dataError("Invalid JWK: \"ext\" is false but the key is requested to be extractable.");
  if (Array.isArray(jwk.key_ops)) {
    for (const u of usages) if (!jwk.key_ops.includes(u)) throw dataError(`Invalid JWK: "key_ops" does not include "${u}".`);
  }
}

function importSecret(format, keyData, alg, extractable, usages) {
  let bytes;
  if (format === "raw") bytes = bufferArg(keyData, "Key data").slice();
  else if (format === "jwk") {
    checkJwk(keyData, "oct", extractable, usages);
    bytes = unb64u(keyData.k, "k");
  } else throw notSupported(`Unsupported key format "${format}" for ${alg.name}.`);
  return bytes;
}

async function importKey(format, keyData, algorithm, extractable, usages) {
  format = String(format);
  const alg = normalizeAlgorithm(algorithm, "importKey");
  switch (alg.name) {
    case "HMAC": {
      if (!alg.hash) throw new TypeError("HMAC key import requires a hash algorithm.");
      usages = checkUsages("HMAC", "secret", usages);
      const bytes = importSecret(format, keyData, alg, extractable, usages);
      if (format === "jwk" && keyData.alg !== undefined && keyData.alg !== JWK_HMAC_ALG[alg.hash.name]) {
        throw dataError(`Invalid JWK: "alg" ${keyData.alg} does not match hash ${alg.hash.name}.`);
      }
      if (bytes.byteLength === 0) throw dataError("HMAC key data must not be empty.");
      let length = bytes.byteLength * 8;
      if (alg.length !== undefined) {
        length = Number(alg.length);
        if (length > bytes.byteLength * 8 || length <= (bytes.byteLength - 1) * 8) throw dataError("HMAC key length does not match the key data.");
      }
      return makeKey("secret", extractable, { name: "HMAC", hash: { name: alg.hash.name }, length }, usages, bytes);
    }
    case "AES-GCM":
    case "AES-CBC":
    case "AES-CTR": {
      usages = checkUsages(alg.name, "secret", usages);
      const bytes = importSecret(format, keyData, alg, extractable, usages);
      if (![16, 24, 32].includes(bytes.byteLength)) {
        throw dataError(`Imported AES key length must be 128, 192, or 256 bits but provided ${bytes.byteLength * 8}.`);
      }
      return makeKey("secret", extractable, { name: alg.name, length: bytes.byteLength * 8 }, usages, bytes);
    }
    case "PBKDF2":
    case "HKDF": {
      if (extractable) throw syntaxError(`${alg.name} keys cannot be extractable.`);
      if (format !== "raw") throw notSupported(`Unsupported key format "${format}" for ${alg.name}.`);
      usages = checkUsages(alg.name, "secret", usages);
      return makeKey("secret", false, { name: alg.name }, usages, bufferArg(keyData, "Key data").slice());
    }
    case "ECDSA": {
      if (alg.namedCurve !== "P-256") throw notSupported(`Unrecognized or unimplemented EC curve "${alg.namedCurve}" requested.`);
      let parts;
      if (format === "jwk") {
        if (!isObject(keyData)) throw new TypeError("JWK key data must be an object.");
        const type = keyData.d !== undefined ? "private" : "public";
        usages = checkUsages("ECDSA", type, usages);
        checkJwk(keyData, "EC", extractable, usages);
        if (keyData.crv !== "P-256") throw dataError("Invalid JWK: \"crv\" must be \"P-256\".");
        parts = native.ecFromJwk(unb64u(keyData.x, "x"), unb64u(keyData.y, "y"), type === "private" ? unb64u(keyData.d, "d") : null);
      } else if (format === "raw" || format === "spki" || format === "pkcs8") {
        usages = checkUsages("ECDSA", format === "pkcs8" ? "private" : "public", usages);
        parts = native.ecImport(format, bufferArg(keyData, "Key data"));
      } else throw notSupported(`Unsupported key format "${format}" for ECDSA.`);
      const type = parts[1] === null ? "public" : "private";
      return makeKey(type, extractable, { name: "ECDSA", namedCurve: "P-256" }, usages, { point: parts[0], d: parts[1] });
    }
    case "RSASSA-PKCS1-v1_5":
    case "RSA-PSS": {
      if (!alg.hash) throw new TypeError(`${alg.name} key import requires a hash algorithm.`);
      let parts;
      if (format === "jwk") {
        if (!isObject(keyData)) throw new TypeError("JWK key data must be an object.");
        const type = keyData.d !== undefined ? "private" : "public";
        usages = checkUsages(alg.name, type, usages);
        checkJwk(keyData, "RSA", extractable, usages);
        const expect = JWK_RSA_ALG[alg.name][alg.hash.name];
        if (keyData.alg !== undefined && keyData.alg !== expect) throw dataError(`Invalid JWK: "alg" ${keyData.alg} does not match ${expect}.`);
        const priv = type === "private";
        parts = native.rsaFromJwk(unb64u(keyData.n, "n"), unb64u(keyData.e, "e"),
          priv ? unb64u(keyData.d, "d") : null,
          priv && keyData.p !== undefined ? unb64u(keyData.p, "p") : null,
          priv && keyData.q !== undefined ? unb64u(keyData.q, "q") : null);
      } else if (format === "spki" || format === "pkcs8") {
        usages = checkUsages(alg.name, format === "pkcs8" ? "private" : "public", usages);
        parts = native.rsaImport(format, bufferArg(keyData, "Key data"));
      } else throw notSupported(`Unsupported key format "${format}" for ${alg.name}.`);
      const type = parts[2] === null ? "public" : "private";
      const algorithm = { name: alg.name, modulusLength: rsaBits(parts[0]), publicExponent: parts[1].slice(), hash: { name: alg.hash.name } };
      return makeKey(type, extractable, algorithm, usages, { n: parts[0], e: parts[1], der: parts[2] });
    }
  }
  throw notSupported(`Unrecognized algorithm ${alg.name}`);
}

function rsaBits(n) {
  let i = 0;
  while (i < n.length && n[i] === 0) i++;
  if (i === n.length) return 0;
  return (n.length - i - 1) * 8 + (32 - Math.clz32(n[i]));
}

async function exportKey(format, key) {
  format = String(format);
  if (!(key instanceof CryptoKey)) throw new TypeError("Expected a CryptoKey.");
  const k = key[kKey];
  if (!k.extractable) throw accessError(`Attempt to export non-extractable ${k.algorithm.name} key.`);
  const name = k.algorithm.name;
  const jwkCommon = (o) => { o.key_ops = k.usages.slice(); o.ext = true; return o; };
  if (name === "HMAC" || name.startsWith("AES-")) {
    if (format === "raw") return k.handle.slice().buffer;
    if (format === "jwk") {
      const alg = name === "HMAC" ? JWK_HMAC_ALG[k.algorithm.hash.name] : `A${k.algorithm.length}${name.slice(4)}`;
      return jwkCommon({ kty: "oct", k: b64u(k.handle), alg });
    }
  } else if (name === "ECDSA") {
    const h = k.handle;
    if (format === "raw" && k.type === "public") return native.ecExport("raw", h.point, null).slice(0);
    if (format === "spki" && k.type === "public") return native.ecExport("spki", h.point, null);
    if (format === "pkcs8" && k.type === "private") return native.ecExport("pkcs8", h.point, h.d);
    if (format === "jwk") {
      const o = { kty: "EC", crv: "P-256", x: b64u(h.point.subarray(1, 33)), y: b64u(h.point.subarray(33, 65)) };
      if (k.type === "private") o.d = b64u(h.d);
      return jwkCommon(o);
    }
  } else if (name === "RSASSA-PKCS1-v1_5" || name === "RSA-PSS") {
    const h = k.handle;
    if (format === "spki" && k.type === "public") return native.rsaExportSpki(h.n, h.e);
    if (format === "pkcs8" && k.type === "private") return h.der.slice().buffer;
    if (format === "jwk") {
      const o = { kty: "RSA", n: b64u(h.n), e: b64u(h.e), alg: JWK_RSA_ALG[name][k.algorithm.hash.name] };
      if (k.type === "private") {
        const p = native.rsaPrivateJwk(h.der);
        o.d = b64u(p[0]);
        if (p[1]) { o.p = b64u(p[1]); o.q = b64u(p[2]); }
        if (p[3]) { o.dp = b64u(p[3]); o.dq = b64u(p[4]); o.qi = b64u(p[5]); }
      }
      return jwkCommon(o);
    }
  }
  throw notSupported(`Unsupported export format "${format}" for a ${name} ${k.type} key.`);
}

function signatureHash(alg, k) {
  if (alg.name === "ECDSA") {
    if (!alg.hash) throw new TypeError("ECDSA requires a hash algorithm.");
    return alg.hash.name;
  }
  return k.algorithm.hash.name;
}

async function sign(algorithm, key, data) {
  keyAlgorithmMatches(algorithm, key);
  const alg = normalizeAlgorithm(algorithm, "sign");
  const k = requireUsage(key, "sign", alg);
  data = bufferArg(data, "Data");
  switch (alg.name) {
    case "HMAC": return native.hmac(k.algorithm.hash.name, k.handle, data);
    case "ECDSA": return native.ecSign(signatureHash(alg, k), k.handle.d, data);
    case "RSASSA-PKCS1-v1_5": return native.rsaSign(alg.name, k.algorithm.hash.name, k.handle.der, data, 0);
    case "RSA-PSS": return native.rsaSign(alg.name, k.algorithm.hash.name, k.handle.der, data, pssSalt(alg));
  }
  throw notSupported(`Unrecognized algorithm ${alg.name}`);
}

function pssSalt(alg) {
  const s = Number(alg.saltLength);
  if (!Number.isInteger(s) || s < 0) throw new TypeError("RSA-PSS requires a non-negative integer saltLength.");
  return s;
}

async function verify(algorithm, key, signature, data) {
  keyAlgorithmMatches(algorithm, key);
  const alg = normalizeAlgorithm(algorithm, "sign");
  const k = requireUsage(key, "verify", alg);
  signature = bufferArg(signature, "Signature");
  data = bufferArg(data, "Data");
  switch (alg.name) {
    case "HMAC": return native.timingSafeEqual(new Uint8Array(native.hmac(k.algorithm.hash.name, k.handle, data)), signature);
    case "ECDSA": return native.ecVerify(signatureHash(alg, k), k.handle.point, signature, data);
    case "RSASSA-PKCS1-v1_5": return native.rsaVerify(alg.name, k.algorithm.hash.name, [k.handle.n, k.handle.e], signature, data, 0);
    case "RSA-PSS": return native.rsaVerify(alg.name, k.algorithm.hash.name, [k.handle.n, k.handle.e], signature, data, pssSalt(alg));
  }
  throw notSupported(`Unrecognized algorithm ${alg.name}`);
}

function gcmParams(alg) {
  if (alg.iv === undefined) throw new TypeError("AES-GCM requires an iv.");
  const iv = bufferArg(alg.iv, "iv");
  const aad = alg.additionalData === undefined ? new Uint8Array(0) : bufferArg(alg.additionalData, "additionalData");
  const tagLength = alg.tagLength === undefined ? 128 : Number(alg.tagLength);
  if (![32, 64, 96, 104, 112, 120, 128].includes(tagLength)) throw domError(`Invalid AES-GCM tag length ${tagLength}.`, "OperationError");
  if (tagLength < 96) throw notSupported(`AES-GCM tag length ${tagLength} is not supported; use 96 to 128 bits.`);
  return { iv, aad, tag: tagLength / 8 };
}

// Encryption and decryption for the three AES modes; `alg` is normalized.
function aesCipher(encrypt, alg, k, data) {
  switch (alg.name) {
    case "AES-GCM": {
      const p = gcmParams(alg);
      if (!encrypt && data.byteLength < p.tag) {
        throw domError(`Ciphertext length of ${data.byteLength * 8} bits must be greater than or equal to the size of the AES-GCM tag length of ${p.tag * 8} bits.`, "OperationError");
      }
      return native.aesGcm(encrypt, k.handle, p.iv, p.aad, p.tag, data);
    }
    case "AES-CBC": {
      if (alg.iv === undefined) throw new TypeError('Missing field "iv" in "algorithm".');
      const iv = bufferArg(alg.iv, "iv");
      if (iv.byteLength !== 16) throw domError(`AES-CBC IV must be 16 bytes long (provided ${iv.byteLength} bytes).`, "OperationError");
      return native.aesCbc(encrypt, k.handle, iv, data);
    }
    case "AES-CTR": {
      if (alg.counter === undefined) throw new TypeError('Missing field "counter" in "algorithm".');
      if (alg.length === undefined) throw new TypeError('Missing "length" member in "algorithm".');
      const counter = bufferArg(alg.counter, "counter");
      if (counter.byteLength !== 16) throw domError(`Counter must have length of 16 bytes (provided ${counter.byteLength}).`, "OperationError");
      const bits = Number(alg.length);
      if (!(bits >= 1 && bits <= 128) || !Number.isInteger(bits)) throw domError(`Invalid counter of ${alg.length} bits length provided.`, "OperationError");
      return native.aesCtr(k.handle, counter, bits, data);
    }
  }
  throw notSupported(`Unrecognized algorithm ${alg.name}`);
}

async function encrypt(algorithm, key, data) {
  keyAlgorithmMatches(algorithm, key);
  const alg = normalizeAlgorithm(algorithm, "encrypt");
  const k = requireUsage(key, "encrypt", alg);
  return aesCipher(true, alg, k, bufferArg(data, "Data"));
}

async function decrypt(algorithm, key, data) {
  keyAlgorithmMatches(algorithm, key);
  const alg = normalizeAlgorithm(algorithm, "encrypt");
  const k = requireUsage(key, "decrypt", alg);
  return aesCipher(false, alg, k, bufferArg(data, "Data"));
}

async function generateKey(algorithm, extractable, usages) {
  const alg = normalizeAlgorithm(algorithm, "generateKey");
  switch (alg.name) {
    case "HMAC": {
      if (!alg.hash) throw new TypeError("HMAC key generation requires a hash algorithm.");
      usages = checkUsages("HMAC", "secret", usages);
      const length = alg.length === undefined ? HASH_BLOCK_BITS[alg.hash.name] : Number(alg.length);
      if (!(length > 0)) throw domError("HMAC key length must be positive.", "OperationError");
      const bytes = native.random(Math.ceil(length / 8));
      return makeKey("secret", extractable, { name: "HMAC", hash: { name: alg.hash.name }, length }, usages, bytes);
    }
    case "AES-GCM":
    case "AES-CBC":
    case "AES-CTR": {
      usages = checkUsages(alg.name, "secret", usages);
      const length = Number(alg.length);
      if (![128, 192, 256].includes(length)) throw domError("AES key length must be 128, 192 or 256 bits.", "OperationError");
      return makeKey("secret", extractable, { name: alg.name, length }, usages, native.random(length / 8));
    }
    case "ECDSA": {
      if (alg.namedCurve !== "P-256") throw notSupported(`Unrecognized or unimplemented EC curve "${alg.namedCurve}" requested.`);
      const priv = checkUsages("ECDSA", "private", Array.from(usages || []).filter((u) => u === "sign"));
      const pub = checkUsages("ECDSA", "public", Array.from(usages || []).filter((u) => u === "verify"));
      for (const u of usages || []) if (u !== "sign" && u !== "verify") throw syntaxError(`Unsupported key usage for an ECDSA key: ${u}`);
      const [point, d] = native.ecGenerate();
      const algorithm = { name: "ECDSA", namedCurve: "P-256" };
      return {
        publicKey: makeKey("public", true, algorithm, pub, { point, d: null }),
        privateKey: makeKey("private", extractable, algorithm, priv, { point, d }),
      };
    }
    case "RSASSA-PKCS1-v1_5":
    case "RSA-PSS": {
      if (!alg.hash) throw new TypeError(`${alg.name} key generation requires a hash algorithm.`);
      const bits = Number(alg.modulusLength);
      if (!Number.isInteger(bits) || bits < 1024 || bits > 8192 || bits % 8 !== 0) throw domError("RSA modulusLength must be a multiple of 8 between 1024 and 8192.", "OperationError");
      const e = alg.publicExponent === undefined ? new Uint8Array([1, 0, 1]) : bufferArg(alg.publicExponent, "publicExponent");
      const priv = checkUsages(alg.name, "private", Array.from(usages || []).filter((u) => u === "sign"));
      const pub = checkUsages(alg.name, "public", Array.from(usages || []).filter((u) => u === "verify"));
      for (const u of usages || []) if (u !== "sign" && u !== "verify") throw syntaxError(`Unsupported key usage for an RSA key: ${u}`);
      const [n, ee, der] = native.rsaGenerate(bits, e);
      const algorithm = { name: alg.name, modulusLength: bits, publicExponent: ee.slice(), hash: { name: alg.hash.name } };
      return {
        publicKey: makeKey("public", true, algorithm, pub, { n, e: ee, der: null }),
        privateKey: makeKey("private", extractable, algorithm, priv, { n, e: ee, der }),
      };
    }
  }
  throw notSupported(`Unrecognized algorithm ${alg.name}`);
}

function deriveBitsImpl(alg, k, length) {
  if (length === null || length === undefined || !(Number(length) > 0) || Number(length) % 8 !== 0) {
    throw domError("The length for deriveBits must be a positive multiple of 8.", "OperationError");
  }
  length = Number(length);
  if (!alg.hash) throw new TypeError(`${alg.name} requires a hash algorithm.`);
  if (alg.name === "PBKDF2") {
    const iterations = Number(alg.iterations);
    if (!(iterations > 0)) throw domError("PBKDF2 iterations must be greater than 0.", "OperationError");
    return native.pbkdf2(alg.hash.name, k.handle, bufferArg(alg.salt, "salt"), iterations, length);
  }
  return native.hkdf(alg.hash.name, k.handle, bufferArg(alg.salt, "salt"), bufferArg(alg.info, "info"), length);
}

async function deriveBits(algorithm, key, length) {
  const alg = normalizeAlgorithm(algorithm, "deriveBits");
  const k = requireUsage(key, "deriveBits", alg);
  return deriveBitsImpl(alg, k, length);
}

async function deriveKey(algorithm, baseKey, derivedKeyType, extractable, usages) {
  const alg = normalizeAlgorithm(algorithm, "deriveBits");
  const k = requireUsage(baseKey, "deriveKey", alg);
  const target = normalizeAlgorithm(derivedKeyType, "get");
  let length;
  if (target.name === "HMAC") {
    if (!target.hash) throw new TypeError("HMAC requires a hash algorithm.");
    length = target.length === undefined ? HASH_BLOCK_BITS[target.hash.name] : Number(target.length);
  } else length = Number(target.length);
  const bits = deriveBitsImpl(alg, k, length);
  return importKey("raw", bits, derivedKeyType, extractable, usages);
}

async function digest(algorithm, data) {
  const alg = normalizeAlgorithm(algorithm, "digest");
  const bytes = asBytes(data);
  if (bytes === null) throw new TypeError("Failed to execute 'digest' on 'SubtleCrypto': parameter 2 is not of type 'Array'.");
  return native.digest(alg.name, bytes);
}

async function wrapKey(format, key, wrappingKey, wrapAlgorithm) {
  const alg = normalizeAlgorithm(wrapAlgorithm, "encrypt");
  const wk = requireUsage(wrappingKey, "wrapKey", alg);
  const exported = await exportKey(format, key);
  const bytes = format === "jwk" ? native.utf8Encode(JSON.stringify(exported)) : new Uint8Array(exported);
  return aesCipher(true, alg, wk, bytes);
}

async function unwrapKey(format, wrappedKey, unwrappingKey, unwrapAlgorithm, unwrappedKeyAlgorithm, extractable, usages) {
  const alg = normalizeAlgorithm(unwrapAlgorithm, "encrypt");
  const wk = requireUsage(unwrappingKey, "unwrapKey", alg);
  const bytes = aesCipher(false, alg, wk, bufferArg(wrappedKey, "Wrapped key"));
  const keyData = format === "jwk" ? JSON.parse(utf8Decode(new Uint8Array(bytes))) : bytes;
  return importKey(format, keyData, unwrappedKeyAlgorithm, extractable, usages);
}

class SubtleCrypto {
  constructor() { throw new TypeError("Illegal constructor"); }
  digest(algorithm, data) { return digest(algorithm, data); }
  importKey(format, keyData, algorithm, extractable, usages) { return importKey(format, keyData, algorithm, extractable, usages); }
  exportKey(format, key) { return exportKey(format, key); }
  sign(algorithm, key, data) { return sign(algorithm, key, data); }
  verify(algorithm, key, signature, data) { return verify(algorithm, key, signature, data); }
  encrypt(algorithm, key, data) { return encrypt(algorithm, key, data); }
  decrypt(algorithm, key, data) { return decrypt(algorithm, key, data); }
  generateKey(algorithm, extractable, usages) { return generateKey(algorithm, extractable, usages); }
  deriveBits(algorithm, key, length) { return deriveBits(algorithm, key, length); }
  deriveKey(algorithm, baseKey, derivedKeyType, extractable, usages) { return deriveKey(algorithm, baseKey, derivedKeyType, extractable, usages); }
  wrapKey(format, key, wrappingKey, wrapAlgorithm) { return wrapKey(format, key, wrappingKey, wrapAlgorithm); }
  unwrapKey(format, wrappedKey, unwrappingKey, unwrapAlgorithm, unwrappedKeyAlgorithm, extractable, usages) {
    return unwrapKey(format, wrappedKey, unwrappingKey, unwrapAlgorithm, unwrappedKeyAlgorithm, extractable, usages);
  }
  // Workers extension: constant-time comparison of equal-length buffers.
  timingSafeEqual(a, b) {
    a = bufferArg(a, "First argument"); b = bufferArg(b, "Second argument");
    if (a.byteLength !== b.byteLength) throw new TypeError("Input buffers must have the same byte length.");
    return native.timingSafeEqual(a, b);
  }
}
tag(SubtleCrypto);

const INTEGER_ARRAYS = [Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array,
  typeof BigInt64Array !== "undefined" ? BigInt64Array : Int8Array, typeof BigUint64Array !== "undefined" ? BigUint64Array : Int8Array];

class Crypto {
  constructor() { throw new TypeError("Illegal constructor"); }
  get subtle() { return subtle; }
  getRandomValues(array) {
    if (!ArrayBuffer.isView(array)) {
      throw new TypeError("Failed to execute 'getRandomValues' on 'Crypto': parameter 1 is not of type 'BufferSource'.");
    }
    if (!INTEGER_ARRAYS.some((T) => array instanceof T)) {
      throw domError("ArrayBufferView argument to getRandomValues() must be an integer-typed view.", "TypeMismatchError");
    }
    if (array.byteLength > 65536) {
      throw domError(`getRandomValues() only accepts buffers of size <= 64K but provided ${array.byteLength} bytes.`, "QuotaExceededError");
    }
    const view = new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
    view.set(native.random(array.byteLength));
    return array;
  }
  randomUUID() { return native.randomUUID(); }
}
tag(Crypto);

const subtle = Object.create(SubtleCrypto.prototype);
const crypto = Object.create(Crypto.prototype);
defineGlobal("CryptoKey", CryptoKey);
defineGlobal("SubtleCrypto", SubtleCrypto);
defineGlobal("Crypto", Crypto);
defineGlobal("crypto", crypto);
