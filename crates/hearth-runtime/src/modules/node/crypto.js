import { received } from 'hearth:node-internal';
// node:crypto — hashes and HMAC (also as streams), PBKDF2, scrypt, HKDF,
// random values, timingSafeEqual, AES ciphers (CBC, CTR, GCM), RSA and
// P-256 ECDSA signing with PEM/DER/JWK key objects, over the runtime's Rust
// crypto; webcrypto is the global one. Diffie-Hellman, Ed25519, RSA
// encryption and the other curves are not provided yet and say so.
import { Buffer } from 'node:buffer';
import { Transform, Writable } from 'node:stream';

const native = globalThis.__hearth_webapi.nodeCrypto;

const HASHES = {
  md5: 'MD5',
  sha1: 'SHA-1',
  sha256: 'SHA-256',
  sha384: 'SHA-384',
  sha512: 'SHA-512',
};

function hashName(algorithm) {
  const key = String(algorithm).toLowerCase().replace(/^rsa-/, '').replace('-', '');
  const name = HASHES[key];
  if (!name) {
    const e = new Error('Digest method not supported');
    e.code = 'ERR_CRYPTO_INVALID_DIGEST';
    throw e;
  }
  return name;
}

function toBytes(data, encoding, name = 'data') {
  if (typeof data === 'string') return Buffer.from(data, encoding);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const e = new TypeError('The "' + name + '" argument must be of type string or an instance of Buffer, TypedArray, or DataView.' + received(data));
  e.code = 'ERR_INVALID_ARG_TYPE';
  throw e;
}

function output(bytes, encoding) {
  const b = Buffer.from(bytes);
  return encoding === undefined || encoding === 'buffer' ? b : b.toString(encoding);
}

function finalized() {
  const e = new Error('Digest already called');
  e.code = 'ERR_CRYPTO_HASH_FINALIZED';
  return e;
}

// Hash and Hmac are also Transform streams: written data is hashed and
// the digest is the one chunk read out after end().
function digestStream(self, options) {
  Transform.call(self, options);
}
function hashTransform(chunk, encoding, callback) {
  this.update(chunk, encoding);
  callback();
}
function hashFlush(callback) {
  this.push(this.digest());
  callback();
}

export function Hash(algorithm, options) {
  if (!(this instanceof Hash)) return new Hash(algorithm, options);
  this._name = hashName(algorithm);
  this._chunks = [];
  this._done = false;
  digestStream(this, options);
}
Object.setPrototypeOf(Hash.prototype, Transform.prototype);
Hash.prototype._transform = hashTransform;
Hash.prototype._flush = hashFlush;
Object.assign(Hash.prototype, {
  update(data, encoding) {
    if (this._done) throw finalized();
    this._chunks.push(Buffer.from(toBytes(data, encoding)));
    return this;
  },
  digest(encoding) {
    if (this._done) throw finalized();
    this._done = true;
    return output(native.digest(this._name, Buffer.concat(this._chunks)), encoding);
  },
  copy() {
    if (this._done) throw finalized();
    const h = new Hash(this._name.replace('-', ''));
    h._chunks = this._chunks.slice();
    return h;
  },
});

export function Hmac(algorithm, key, options) {
  if (!(this instanceof Hmac)) return new Hmac(algorithm, key, options);
  this._name = hashName(algorithm);
  this._key = key instanceof KeyObject ? key._secret() : Buffer.from(toBytes(key, undefined, 'key'));
  this._chunks = [];
  this._done = false;
  digestStream(this, options);
}
Object.setPrototypeOf(Hmac.prototype, Transform.prototype);
Hmac.prototype._transform = hashTransform;
Hmac.prototype._flush = hashFlush;
Object.assign(Hmac.prototype, {
  update: Hash.prototype.update,
  digest(encoding) {
    if (this._done) throw finalized();
    this._done = true;
    return output(native.hmac(this._name, this._key, Buffer.concat(this._chunks)), encoding);
  },
});

export function createHash(algorithm, options) {
  return new Hash(algorithm, options);
}

export function createHmac(algorithm, key, options) {
  return new Hmac(algorithm, key, options);
}

// Node 21's one-shot form: hash(algorithm, data, outputEncoding = 'hex').
export function hash(algorithm, data, outputEncoding = 'hex') {
  return output(native.digest(hashName(algorithm), toBytes(data)), outputEncoding);
}

export function getHashes() {
  return ['md5', 'sha1', 'sha256', 'sha384', 'sha512'];
}

export function getCiphers() {
  return Object.keys(CIPHERS);
}

export function getCurves() {
  return ['prime256v1'];
}

const MAX_RANDOM_CHUNK = 65536;

export function randomFillSync(buf, offset = 0, size) {
  const bytes = toBytes(buf, undefined, 'buf');
  const end = size === undefined ? bytes.length : offset + size;
  if (offset < 0 || end > bytes.length) {
    const e = new RangeError('The value of "offset + size" is out of range. It must be <= ' + bytes.length + '. Received ' + end);
    e.code = 'ERR_OUT_OF_RANGE';
    throw e;
  }
  for (let i = offset; i < end; i += MAX_RANDOM_CHUNK) {
    globalThis.crypto.getRandomValues(bytes.subarray(i, Math.min(end, i + MAX_RANDOM_CHUNK)));
  }
  return buf;
}

export function randomFill(buf, offset, size, callback) {
  if (typeof offset === 'function') {
    callback = offset;
    offset = 0;
    size = undefined;
  } else if (typeof size === 'function') {
    callback = size;
    size = undefined;
  }
  let result;
  try {
    result = randomFillSync(buf, offset, size);
  } catch (err) {
    queueMicrotask(() => callback(err));
    return;
  }
  queueMicrotask(() => callback(null, result));
}

export function randomBytes(size, callback) {
  if (typeof size !== 'number' || !(size >= 0) || size > 2 ** 31 - 1) {
    const e = new RangeError('The value of "size" is out of range. It must be >= 0 && <= 2147483647. Received ' + size);
    e.code = typeof size === 'number' ? 'ERR_OUT_OF_RANGE' : 'ERR_INVALID_ARG_TYPE';
    throw e;
  }
  const buf = randomFillSync(Buffer.alloc(size));
  if (typeof callback === 'function') {
    queueMicrotask(() => callback(null, buf));
    return;
  }
  return buf;
}
export const pseudoRandomBytes = randomBytes;
export const prng = randomBytes;
export const rng = randomBytes;

export function randomInt(min, max, callback) {
  if (typeof max !== 'number' || typeof max === 'function') {
    callback = max;
    max = min;
    min = 0;
  }
  if (!Number.isSafeInteger(min) || !Number.isSafeInteger(max) || max <= min) {
    const e = new RangeError('The value of "max" is out of range. It must be greater than the value of "min" (' + min + '). Received ' + max);
    e.code = 'ERR_OUT_OF_RANGE';
    throw e;
  }
  const range = max - min;
  // Rejection sampling over 48 random bits keeps the result unbiased.
  const limit = 2 ** 48 - (2 ** 48 % range);
  let x;
  do {
    x = randomBytes(6).readUIntBE(0, 6);
  } while (x >= limit);
  const n = min + (x % range);
  if (typeof callback === 'function') {
    queueMicrotask(() => callback(null, n));
    return;
  }
  return n;
}

export function randomUUID() {
  return globalThis.crypto.randomUUID();
}

export function getRandomValues(array) {
  return globalThis.crypto.getRandomValues(array);
}

export function timingSafeEqual(a, b) {
  const x = toBytes(a, undefined, 'buf1');
  const y = toBytes(b, undefined, 'buf2');
  if (x.byteLength !== y.byteLength) {
    // workerd's wording and class (Node's is a RangeError without the period).
    const e = new TypeError('Input buffers must have the same byte length.');
    e.code = 'ERR_CRYPTO_TIMING_SAFE_EQUAL_LENGTH';
    throw e;
  }
  return native.timingSafeEqual(x, y);
}

export function pbkdf2Sync(password, salt, iterations, keylen, digest) {
  if (!Number.isInteger(iterations) || iterations < 1) {
    const e = new RangeError('The value of "iterations" is out of range. It must be >= 1 && <= 2147483647. Received ' + iterations);
    e.code = 'ERR_OUT_OF_RANGE';
    throw e;
  }
  if (!Number.isInteger(keylen) || keylen < 0) {
    const e = new RangeError('The value of "keylen" is out of range. It must be >= 0 && <= 2147483647. Received ' + keylen);
    e.code = 'ERR_OUT_OF_RANGE';
    throw e;
  }
  let name;
  try {
    name = hashName(digest);
  } catch {
    // workerd's wording for pbkdf2.
    const e = new TypeError('Invalid Pbkdf2 digest: ' + digest + '.');
    e.code = 'ERR_CRYPTO_INVALID_DIGEST';
    throw e;
  }
  if (keylen === 0) return Buffer.alloc(0);
  return Buffer.from(native.pbkdf2(name, toBytes(password, undefined, 'password'), toBytes(salt, undefined, 'salt'), iterations, keylen * 8));
}

export function pbkdf2(password, salt, iterations, keylen, digest, callback) {
  if (typeof callback !== 'function') {
    const e = new TypeError('The "callback" argument must be of type function.' + received(callback));
    e.code = 'ERR_INVALID_ARG_TYPE';
    throw e;
  }
  const key = pbkdf2Sync(password, salt, iterations, keylen, digest);
  queueMicrotask(() => callback(null, key));
}

function codeError(Ctor, code, message) {
  const e = new Ctor(message);
  e.code = code;
  return e;
}

// ---- scrypt and HKDF ----

const SCRYPT_DEFAULTS = { N: 16384, r: 8, p: 1, maxmem: 32 << 20 };

function scryptParams(keylen, options) {
  const o = { ...SCRYPT_DEFAULTS };
  if (options) {
    for (const [long, short] of [['cost', 'N'], ['blockSize', 'r'], ['parallelization', 'p']]) {
      if (options[long] !== undefined && options[short] !== undefined) throw codeError(TypeError, 'ERR_INCOMPATIBLE_OPTION_PAIR', 'Option "' + long + '" cannot be used in combination with option "' + short + '"');
      const v = options[long] ?? options[short];
      if (v !== undefined) o[short] = v;
    }
    if (options.maxmem !== undefined) o.maxmem = options.maxmem;
  }
  if (!Number.isInteger(keylen) || keylen < 0) throw codeError(RangeError, 'ERR_OUT_OF_RANGE', 'The value of "keylen" is out of range. It must be >= 0 && <= 2147483647. Received ' + keylen);
  const { N, r, p } = o;
  const logN = Math.log2(N);
  if (!Number.isInteger(N) || N < 2 || !Number.isInteger(logN) || !Number.isInteger(r) || r < 1 || !Number.isInteger(p) || p < 1) {
    throw codeError(RangeError, 'ERR_CRYPTO_INVALID_SCRYPT_PARAMS', 'Invalid scrypt params: N must be a power of two greater than 1, r and p positive integers');
  }
  // As in Node (OpenSSL): the work area of 128 * N * r bytes must fit maxmem.
  if (128 * N * r > o.maxmem) throw codeError(RangeError, 'ERR_CRYPTO_INVALID_SCRYPT_PARAMS', 'Invalid scrypt params: memory limit exceeded');
  return { logN, r, p };
}

export function scryptSync(password, salt, keylen, options) {
  const { logN, r, p } = scryptParams(keylen, options);
  if (keylen === 0) return Buffer.alloc(0);
  return Buffer.from(native.scrypt(toBytes(password, undefined, 'password'), toBytes(salt, undefined, 'salt'), logN, r, p, keylen));
}

export function scrypt(password, salt, keylen, options, callback) {
  if (typeof options === 'function') {
    callback = options;
    options = undefined;
  }
  if (typeof callback !== 'function') throw codeError(TypeError, 'ERR_INVALID_ARG_TYPE', 'The "callback" argument must be of type function.' + received(callback));
  const key = scryptSync(password, salt, keylen, options);
  queueMicrotask(() => callback(null, key));
}

export function hkdfSync(digest, ikm, salt, info, keylen) {
  const name = hashName(digest);
  const secret = ikm instanceof KeyObject ? ikm._secret() : toBytes(ikm, undefined, 'ikm');
  if (!Number.isInteger(keylen) || keylen < 0) throw codeError(RangeError, 'ERR_OUT_OF_RANGE', 'The value of "keylen" is out of range. Received ' + keylen);
  const hashLen = native.digest(name, new Uint8Array(0)).byteLength;
  if (keylen > 255 * hashLen) throw codeError(RangeError, 'ERR_CRYPTO_INVALID_KEYLEN', 'Invalid key length');
  return native.hkdf(name, secret, toBytes(salt, undefined, 'salt'), toBytes(info, undefined, 'info'), keylen * 8);
}

export function hkdf(digest, ikm, salt, info, keylen, callback) {
  if (typeof callback !== 'function') throw codeError(TypeError, 'ERR_INVALID_ARG_TYPE', 'The "callback" argument must be of type function.' + received(callback));
  const key = hkdfSync(digest, ikm, salt, info, keylen);
  queueMicrotask(() => callback(null, key));
}

// ---- AES ciphers ----

const CIPHERS = {};
for (const bits of [128, 192, 256]) {
  for (const mode of ['cbc', 'ctr', 'gcm']) CIPHERS['aes-' + bits + '-' + mode] = { mode, keyLen: bits / 8 };
  CIPHERS['aes' + bits] = { mode: 'cbc', keyLen: bits / 8 };
  CIPHERS['id-aes' + bits + '-gcm'] = { mode: 'gcm', keyLen: bits / 8 };
}

function cipherSpec(name) {
  const spec = CIPHERS[String(name).toLowerCase()];
  if (!spec) throw codeError(TypeError, 'ERR_CRYPTO_UNKNOWN_CIPHER', 'Unknown cipher');
  return spec;
}

function secretBytes(key, name) {
  if (key instanceof KeyObject) {
    if (key.type !== 'secret') throw codeError(TypeError, 'ERR_CRYPTO_INVALID_KEY_OBJECT_TYPE', 'Invalid key object type ' + key.type + ', expected secret.');
    return key._secret();
  }
  return Buffer.from(toBytes(key, undefined, name));
}

function badDecrypt() {
  const e = new Error('error:1C800064:Provider routines::bad decrypt');
  e.code = 'ERR_OSSL_BAD_DECRYPT';
  e.reason = 'bad decrypt';
  return e;
}

// The 128-bit big-endian counter block `iv + n`.
function addCounter(iv, n, bits) {
  const out = Buffer.from(iv);
  let carry = n;
  const stop = 16 - bits / 8;
  for (let i = 15; i >= stop && carry > 0; i--) {
    const v = out[i] + (carry % 256);
    out[i] = v & 0xff;
    carry = Math.floor(carry / 256) + (v > 0xff ? 1 : 0);
  }
  return out;
}

function CipherBase(encrypt, algorithm, key, iv, options) {
  const spec = cipherSpec(algorithm);
  const k = secretBytes(key, 'key');
  if (k.length !== spec.keyLen) throw codeError(RangeError, 'ERR_CRYPTO_INVALID_KEYLEN', 'Invalid key length');
  const ivBytes = iv === null || iv === undefined ? null : Buffer.from(toBytes(iv, undefined, 'iv'));
  if (spec.mode === 'gcm' ? !ivBytes || ivBytes.length === 0 : !ivBytes || ivBytes.length !== 16) {
    throw codeError(TypeError, 'ERR_CRYPTO_INVALID_IV', 'Invalid initialization vector');
  }
  this._encrypt = encrypt;
  this._mode = spec.mode;
  this._key = k;
  this._iv = ivBytes;
  this._pending = Buffer.alloc(0);
  this._pos = 0;
  this._autoPadding = true;
  this._done = false;
  if (spec.mode === 'gcm') {
    this._aad = Buffer.alloc(0);
    this._all = [];
    this._tagLength = options && options.authTagLength !== undefined ? options.authTagLength : 16;
    if (![12, 13, 14, 15, 16].includes(this._tagLength) && !(options && options.authTagLength === undefined)) {
      throw codeError(TypeError, 'ERR_CRYPTO_INVALID_AUTH_TAG', 'Invalid authentication tag length: ' + this._tagLength);
    }
    this._tag = null;
    // Only 12-byte IVs stream (J0 = IV || 1); others produce all output at final().
    this._streams = ivBytes.length === 12;
  }
  Transform.call(this, options);
}
Object.setPrototypeOf(CipherBase.prototype, Transform.prototype);

CipherBase.prototype._transform = function (chunk, encoding, callback) {
  this.push(this.update(chunk, encoding));
  callback();
};
CipherBase.prototype._flush = function (callback) {
  try {
    this.push(this.final());
    callback();
  } catch (e) {
    callback(e);
  }
};

CipherBase.prototype.update = function (data, inputEncoding, outputEncoding) {
  if (this._done) throw codeError(Error, 'ERR_CRYPTO_INVALID_STATE', 'Invalid state for operation update');
  const input = Buffer.from(toBytes(data, inputEncoding));
  return output(this._process(input), outputEncoding);
};

CipherBase.prototype._process = function (input) {
  if (this._mode === 'ctr') {
    const out = this._ctr(input, 128, this._iv);
    return out;
  }
  if (this._mode === 'gcm') {
    this._all.push(input);
    if (!this._streams) return Buffer.alloc(0);
    const j1 = Buffer.concat([this._iv, Buffer.from([0, 0, 0, 2])]);
    return this._ctr(input, 32, j1);
  }
  const all = Buffer.concat([this._pending, input]);
  let n = all.length - (all.length % 16);
  if (!this._encrypt && this._autoPadding && n === all.length && n > 0) n -= 16;
  this._pending = all.subarray(n);
  if (n === 0) return Buffer.alloc(0);
  const blocks = all.subarray(0, n);
  const out = Buffer.from(native.aesCbcRaw(this._encrypt, this._key, this._iv, blocks));
  this._iv = Buffer.from((this._encrypt ? out : blocks).subarray(n - 16, n));
  return out;
};

CipherBase.prototype._ctr = function (input, bits, start) {
  const off = this._pos % 16;
  const counter = addCounter(start, Math.floor(this._pos / 16), bits);
  const padded = off ? Buffer.concat([Buffer.alloc(off), input]) : input;
  this._pos += input.length;
  return Buffer.from(native.aesCtr(this._key, counter, bits, padded)).subarray(off);
};

CipherBase.prototype.final = function (outputEncoding) {
  if (this._done) throw codeError(Error, 'ERR_CRYPTO_INVALID_STATE', 'Invalid state for operation final');
  this._done = true;
  let out = Buffer.alloc(0);
  if (this._mode === 'cbc') {
    const rest = this._pending;
    if (this._encrypt) {
      if (this._autoPadding) {
        const pad = 16 - (rest.length % 16);
        out = Buffer.from(native.aesCbcRaw(true, this._key, this._iv, Buffer.concat([rest, Buffer.alloc(pad, pad)])));
      } else if (rest.length) {
        throw codeError(Error, 'ERR_OSSL_WRONG_FINAL_BLOCK_LENGTH', 'error:1C80006B:Provider routines::wrong final block length');
      }
    } else if (this._autoPadding) {
      if (rest.length !== 16) throw codeError(Error, 'ERR_OSSL_WRONG_FINAL_BLOCK_LENGTH', 'error:1C80006B:Provider routines::wrong final block length');
      const plain = Buffer.from(native.aesCbcRaw(false, this._key, this._iv, rest));
      const pad = plain[15];
      if (pad < 1 || pad > 16 || plain.subarray(16 - pad).some((b) => b !== pad)) throw badDecrypt();
      out = plain.subarray(0, 16 - pad);
    } else if (rest.length) {
      throw codeError(Error, 'ERR_OSSL_WRONG_FINAL_BLOCK_LENGTH', 'error:1C80006B:Provider routines::wrong final block length');
    }
  } else if (this._mode === 'gcm') {
    const all = Buffer.concat(this._all);
    if (this._encrypt) {
      const sealed = Buffer.from(native.aesGcm(true, this._key, this._iv, this._aad, this._tagLength, all));
      this._tag = sealed.subarray(sealed.length - this._tagLength);
      if (!this._streams) out = sealed.subarray(0, sealed.length - this._tagLength);
    } else {
      if (!this._tag) throw codeError(Error, 'ERR_CRYPTO_INVALID_STATE', 'Unsupported state or unable to authenticate data');
      let plain;
      try {
        plain = Buffer.from(native.aesGcm(false, this._key, this._iv, this._aad, this._tag.length, Buffer.concat([all, this._tag])));
      } catch {
        throw new Error('Unsupported state or unable to authenticate data');
      }
      if (!this._streams) out = plain;
    }
  }
  return output(out, outputEncoding);
};

CipherBase.prototype.setAutoPadding = function (autoPadding = true) {
  this._autoPadding = !!autoPadding;
  return this;
};
CipherBase.prototype.setAAD = function (aad) {
  if (this._mode !== 'gcm' || this._all.length) throw codeError(Error, 'ERR_CRYPTO_INVALID_STATE', 'Invalid state for operation setAAD');
  this._aad = Buffer.from(toBytes(aad, undefined, 'buffer'));
  return this;
};
CipherBase.prototype.getAuthTag = function () {
  if (!this._encrypt || this._mode !== 'gcm' || !this._done) throw codeError(Error, 'ERR_CRYPTO_INVALID_STATE', 'Invalid state for operation getAuthTag');
  return Buffer.from(this._tag);
};
CipherBase.prototype.setAuthTag = function (tag) {
  if (this._encrypt || this._mode !== 'gcm' || this._done) throw codeError(Error, 'ERR_CRYPTO_INVALID_STATE', 'Invalid state for operation setAuthTag');
  const t = Buffer.from(toBytes(tag, undefined, 'buffer'));
  if (t.length < 12 || t.length > 16) throw codeError(TypeError, 'ERR_CRYPTO_INVALID_AUTH_TAG', 'Invalid authentication tag length: ' + t.length);
  this._tag = t;
  return this;
};

export function Cipheriv(algorithm, key, iv, options) {
  if (!(this instanceof Cipheriv)) return new Cipheriv(algorithm, key, iv, options);
  CipherBase.call(this, true, algorithm, key, iv, options);
}
Object.setPrototypeOf(Cipheriv.prototype, CipherBase.prototype);
export function Decipheriv(algorithm, key, iv, options) {
  if (!(this instanceof Decipheriv)) return new Decipheriv(algorithm, key, iv, options);
  CipherBase.call(this, false, algorithm, key, iv, options);
}
Object.setPrototypeOf(Decipheriv.prototype, CipherBase.prototype);

export function createCipheriv(algorithm, key, iv, options) {
  return new Cipheriv(algorithm, key, iv, options);
}
export function createDecipheriv(algorithm, key, iv, options) {
  return new Decipheriv(algorithm, key, iv, options);
}

// ---- keys: PEM/DER parsing and KeyObject ----

function derLength(n) {
  if (n < 0x80) return [n];
  const bytes = [];
  while (n > 0) {
    bytes.unshift(n & 0xff);
    n = Math.floor(n / 256);
  }
  return [0x80 | bytes.length, ...bytes];
}
function der(tag, body) {
  return Buffer.concat([Buffer.from([tag, ...derLength(body.length)]), body]);
}
// Reads one TLV at `pos`: [tag, start of value, end of value].
function derRead(buf, pos) {
  const tag = buf[pos];
  let len = buf[pos + 1];
  let start = pos + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[start + i];
    start += n;
  }
  if (start + len > buf.length) throw invalidKey('truncated DER');
  return [tag, start, start + len];
}

const RSA_ALG = Buffer.from('300d06092a864886f70d0101010500', 'hex');
const EC_P256_ALG = Buffer.from('301306072a8648ce3d020106082a8648ce3d030107', 'hex');

function invalidKey(why) {
  const e = new Error('error:1E08010C:DECODER routines::unsupported' + (why ? ' (' + why + ')' : ''));
  e.code = 'ERR_OSSL_UNSUPPORTED';
  return e;
}

function fromPem(text) {
  const m = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/.exec(text);
  if (!m) return null;
  if (/Proc-Type:\s*4,ENCRYPTED/.test(m[2]) || m[1] === 'ENCRYPTED PRIVATE KEY') {
    throw codeError(Error, 'ERR_METHOD_NOT_IMPLEMENTED', 'Encrypted private keys are not supported in Hearth');
  }
  return { label: m[1], der: Buffer.from(m[2].replace(/[^A-Za-z0-9+/=]/g, ''), 'base64') };
}

function toPem(label, bytes) {
  const b64 = Buffer.from(bytes).toString('base64');
  return '-----BEGIN ' + label + '-----\n' + b64.replace(/(.{64})/g, '$1\n').replace(/\n?$/, '\n') + '-----END ' + label + '-----\n';
}

// A key object's material: RSA keeps PKCS#8/SPKI DER plus n and e; EC
// keeps the uncompressed point and the private scalar.
function importAsymmetric(kind, derBytes) {
  if (kind === 'pkcs8') {
    try {
      const [n, e, pkcs8] = native.rsaImport('pkcs8', derBytes);
      return { type: 'private', asym: 'rsa', n: Buffer.from(n), e: Buffer.from(e), der: Buffer.from(pkcs8) };
    } catch {}
    try {
      const [point, d] = native.ecImport('pkcs8', derBytes);
      return { type: 'private', asym: 'ec', point: Buffer.from(point), d: Buffer.from(d) };
    } catch {}
    throw invalidKey('PKCS#8 key that is neither RSA nor P-256');
  }
  try {
    const [n, e] = native.rsaImport('spki', derBytes);
    return { type: 'public', asym: 'rsa', n: Buffer.from(n), e: Buffer.from(e) };
  } catch {}
  try {
    const [point] = native.ecImport('spki', derBytes);
    return { type: 'public', asym: 'ec', point: Buffer.from(point) };
  } catch {}
  throw invalidKey('SPKI key that is neither RSA nor P-256');
}

// The SubjectPublicKeyInfo inside an X.509 certificate.
function spkiFromCertificate(cert) {
  const [, tbsStart] = derRead(cert, 0);
  let pos = derRead(cert, tbsStart)[1];
  // An explicit [0] version comes first when present.
  const [tag, , versionEnd] = derRead(cert, pos);
  if (tag === 0xa0) pos = versionEnd;
  // serialNumber, signature, issuer, validity, subject; then the key.
  for (let i = 0; i < 5; i++) pos = derRead(cert, pos)[2];
  return cert.subarray(pos, derRead(cert, pos)[2]);
}

function parseKeyMaterial(input, wantPrivate) {
  let data = input;
  let format = 'pem';
  let type;
  if (input && typeof input === 'object' && !ArrayBuffer.isView(input) && !(input instanceof ArrayBuffer) && !(input instanceof KeyObject)) {
    data = input.key;
    format = input.format || 'pem';
    type = input.type;
    if (format === 'jwk') return jwkMaterial(data);
    if (input.passphrase !== undefined && input.passphrase !== '') {
      throw codeError(Error, 'ERR_METHOD_NOT_IMPLEMENTED', 'Encrypted private keys are not supported in Hearth');
    }
  }
  if (data instanceof KeyObject) return data._m;
  if (format === 'pem') {
    const pem = fromPem(typeof data === 'string' ? data : Buffer.from(toBytes(data, undefined, 'key')).toString('latin1'));
    if (!pem) throw codeError(TypeError, 'ERR_INVALID_ARG_VALUE', 'The "key" argument is not a PEM-encoded key');
    switch (pem.label) {
      case 'PRIVATE KEY':
        return importAsymmetric('pkcs8', pem.der);
      case 'RSA PRIVATE KEY':
        return importAsymmetric('pkcs8', der(0x30, Buffer.concat([Buffer.from([2, 1, 0]), RSA_ALG, der(0x04, pem.der)])));
      case 'EC PRIVATE KEY':
        return importAsymmetric('pkcs8', der(0x30, Buffer.concat([Buffer.from([2, 1, 0]), EC_P256_ALG, der(0x04, pem.der)])));
      case 'PUBLIC KEY':
        return importAsymmetric('spki', pem.der);
      case 'RSA PUBLIC KEY':
        return importAsymmetric('spki', der(0x30, Buffer.concat([RSA_ALG, der(0x03, Buffer.concat([Buffer.from([0]), pem.der]))])));
      case 'CERTIFICATE':
        return importAsymmetric('spki', spkiFromCertificate(pem.der));
      default:
        throw invalidKey('PEM "' + pem.label + '"');
    }
  }
  if (format === 'der') {
    const bytes = Buffer.from(toBytes(data, undefined, 'key'));
    if (type === 'pkcs8') return importAsymmetric('pkcs8', bytes);
    if (type === 'spki') return importAsymmetric('spki', bytes);
    if (type === 'pkcs1') return wantPrivate
      ? importAsymmetric('pkcs8', der(0x30, Buffer.concat([Buffer.from([2, 1, 0]), RSA_ALG, der(0x04, bytes)])))
      : importAsymmetric('spki', der(0x30, Buffer.concat([RSA_ALG, der(0x03, Buffer.concat([Buffer.from([0]), bytes]))])));
    if (type === 'sec1') return importAsymmetric('pkcs8', der(0x30, Buffer.concat([Buffer.from([2, 1, 0]), EC_P256_ALG, der(0x04, bytes)])));
    throw codeError(TypeError, 'ERR_INVALID_ARG_VALUE', "The property 'options.type' is invalid. Received " + type);
  }
  throw codeError(TypeError, 'ERR_INVALID_ARG_VALUE', "The property 'options.format' is invalid. Received " + format);
}

function b64u(bytes) {
  return Buffer.from(bytes).toString('base64url');
}
function unb64u(s, what) {
  if (typeof s !== 'string') throw codeError(TypeError, 'ERR_CRYPTO_INVALID_JWK', 'Invalid JWK ' + what);
  return Buffer.from(s, 'base64url');
}

function jwkMaterial(jwk) {
  if (!jwk || typeof jwk !== 'object') throw codeError(TypeError, 'ERR_INVALID_ARG_TYPE', 'The "key.key" property must be of type object');
  if (jwk.kty === 'oct') return { type: 'secret', secret: unb64u(jwk.k, 'oct key') };
  if (jwk.kty === 'EC') {
    if (jwk.crv !== 'P-256') throw codeError(TypeError, 'ERR_CRYPTO_INVALID_JWK', 'Unsupported JWK EC curve: ' + jwk.crv);
    const point = Buffer.concat([Buffer.from([4]), unb64u(jwk.x, 'EC key'), unb64u(jwk.y, 'EC key')]);
    if (jwk.d === undefined) return importAsymmetric('spki', Buffer.from(native.ecExport('spki', point, null)));
    return { type: 'private', asym: 'ec', point, d: unb64u(jwk.d, 'EC key') };
  }
  if (jwk.kty === 'RSA') {
    if (jwk.d !== undefined) {
      throw codeError(Error, 'ERR_METHOD_NOT_IMPLEMENTED', 'Importing a private RSA JWK is not supported in Hearth; use PEM');
    }
    return importAsymmetric('spki', Buffer.from(native.rsaExportSpki(unb64u(jwk.n, 'RSA key'), unb64u(jwk.e, 'RSA key'))));
  }
  throw codeError(TypeError, 'ERR_CRYPTO_INVALID_JWK', 'Invalid JWK key type: ' + jwk.kty);
}

function spkiOf(m) {
  if (m.asym === 'rsa') return Buffer.from(native.rsaExportSpki(m.n, m.e));
  return Buffer.from(native.ecExport('spki', m.point, null));
}

const kMaterial = Symbol('kMaterial');

export class KeyObject {
  constructor(type, material) {
    if (material === undefined || material[kMaterial] !== true) {
      throw codeError(TypeError, 'ERR_ILLEGAL_CONSTRUCTOR', 'Illegal constructor');
    }
    this._m = material.m;
    Object.defineProperty(this, '_m', { enumerable: false });
  }
  get type() {
    return this._m.type;
  }
  get asymmetricKeyType() {
    return this._m.asym;
  }
  get asymmetricKeyDetails() {
    const m = this._m;
    if (m.asym === 'rsa') {
      let bits = m.n.length * 8;
      for (let b = m.n[0]; b < 0x80 && bits > 0; b <<= 1) bits--;
      return { modulusLength: bits, publicExponent: BigInt('0x' + m.e.toString('hex')) };
    }
    if (m.asym === 'ec') return { namedCurve: 'prime256v1' };
    return undefined;
  }
  get symmetricKeySize() {
    return this._m.type === 'secret' ? this._m.secret.length : undefined;
  }
  _secret() {
    return this._m.secret;
  }
  equals(other) {
    if (!(other instanceof KeyObject) || other.type !== this.type) return false;
    const a = this._m;
    const b = other._m;
    if (a.type === 'secret') return a.secret.length === b.secret.length && native.timingSafeEqual(a.secret, b.secret);
    return spkiOf(a).equals(spkiOf(b)) && (a.type === 'public' || (a.asym === 'rsa' ? a.der.equals(b.der) : a.d.equals(b.d)));
  }
  export(options) {
    const m = this._m;
    const format = options && options.format;
    if (m.type === 'secret') {
      if (format === 'jwk') return { kty: 'oct', k: b64u(m.secret) };
      return Buffer.from(m.secret);
    }
    if (format === 'jwk') return exportJwk(m);
    if (format !== 'pem' && format !== 'der') throw codeError(TypeError, 'ERR_INVALID_ARG_VALUE', "The property 'options.format' is invalid. Received " + format);
    const type = options.type;
    let bytes;
    let label;
    if (m.type === 'public') {
      if (type === 'spki') {
        bytes = spkiOf(m);
        label = 'PUBLIC KEY';
      } else if (type === 'pkcs1' && m.asym === 'rsa') {
        const spki = spkiOf(m);
        const [, s] = derRead(spki, 0);
        const [, , algEnd] = derRead(spki, s);
        const [, bs, be] = derRead(spki, algEnd);
        bytes = spki.subarray(bs + 1, be);
        label = 'RSA PUBLIC KEY';
      } else {
        throw codeError(TypeError, 'ERR_INVALID_ARG_VALUE', "The property 'options.type' is invalid. Received " + type);
      }
    } else {
      if (options.cipher !== undefined) throw codeError(Error, 'ERR_METHOD_NOT_IMPLEMENTED', 'Encrypted private key export is not supported in Hearth');
      const pkcs8 = m.asym === 'rsa' ? m.der : Buffer.from(native.ecExport('pkcs8', m.point, m.d));
      if (type === 'pkcs8') {
        bytes = pkcs8;
        label = 'PRIVATE KEY';
      } else if (type === 'sec1' && m.asym === 'ec') {
        // RFC 5915 with the curve and public key, as OpenSSL writes it.
        bytes = der(0x30, Buffer.concat([
          Buffer.from([2, 1, 1]),
          der(0x04, m.d),
          der(0xa0, EC_P256_ALG.subarray(11)),
          der(0xa1, der(0x03, Buffer.concat([Buffer.from([0]), m.point]))),
        ]));
        label = 'EC PRIVATE KEY';
      } else if (type === 'pkcs1' && m.asym === 'rsa') {
        // The private key inside PKCS#8: its OCTET STRING after the algorithm.
        const [, s] = derRead(pkcs8, 0);
        const [, , verEnd] = derRead(pkcs8, s);
        const [, , algEnd] = derRead(pkcs8, verEnd);
        const [, os, oe] = derRead(pkcs8, algEnd);
        bytes = pkcs8.subarray(os, oe);
        label = 'RSA PRIVATE KEY';
      } else {
        throw codeError(TypeError, 'ERR_INVALID_ARG_VALUE', "The property 'options.type' is invalid. Received " + type);
      }
    }
    return format === 'pem' ? toPem(label, bytes) : Buffer.from(bytes);
  }
  toCryptoKey() {
    throw codeError(Error, 'ERR_METHOD_NOT_IMPLEMENTED', 'KeyObject.toCryptoKey is not implemented yet in Hearth');
  }
}

function exportJwk(m) {
  if (m.asym === 'ec') {
    const jwk = { kty: 'EC', x: b64u(m.point.subarray(1, 33)), y: b64u(m.point.subarray(33, 65)), crv: 'P-256' };
    if (m.type === 'private') jwk.d = b64u(m.d);
    return jwk;
  }
  const jwk = { kty: 'RSA', n: b64u(m.n), e: b64u(m.e) };
  if (m.type === 'private') {
    const [d, p, q, dp, dq, qi] = native.rsaPrivateJwk(m.der);
    Object.assign(jwk, { d: b64u(d), p: b64u(p), q: b64u(q), dp: b64u(dp), dq: b64u(dq), qi: b64u(qi) });
  }
  return jwk;
}

function keyObject(m) {
  return new KeyObject(m.type, { [kMaterial]: true, m });
}

export function createSecretKey(key, encoding) {
  return keyObject({ type: 'secret', secret: Buffer.from(toBytes(key, encoding, 'key')) });
}

export function createPrivateKey(key) {
  const m = parseKeyMaterial(key, true);
  if (m.type !== 'private') throw codeError(TypeError, 'ERR_CRYPTO_INVALID_KEY_OBJECT_TYPE', 'Invalid key object type ' + m.type + ', expected private.');
  return keyObject(m);
}

export function createPublicKey(key) {
  const m = parseKeyMaterial(key, false);
  if (m.type === 'secret') throw codeError(TypeError, 'ERR_CRYPTO_INVALID_KEY_OBJECT_TYPE', 'Invalid key object type secret, expected private or public.');
  if (m.type === 'private') return keyObject(importAsymmetric('spki', spkiOf(m)));
  return keyObject(m);
}

function encodeKeyPair(publicKey, privateKey, options) {
  const pub = options && options.publicKeyEncoding ? publicKey.export(options.publicKeyEncoding) : publicKey;
  const priv = options && options.privateKeyEncoding ? privateKey.export(options.privateKeyEncoding) : privateKey;
  return { publicKey: pub, privateKey: priv };
}

export function generateKeyPairSync(type, options) {
  if (type === 'rsa') {
    const bits = options && options.modulusLength;
    if (!Number.isInteger(bits) || bits < 512) throw codeError(TypeError, 'ERR_INVALID_ARG_VALUE', "The property 'options.modulusLength' is invalid. Received " + bits);
    const exp = (options && options.publicExponent) || 0x10001;
    const e = Buffer.from(exp.toString(16).padStart(exp.toString(16).length + (exp.toString(16).length % 2), '0'), 'hex');
    const [n, ee, pkcs8] = native.rsaGenerate(bits, e);
    const priv = { type: 'private', asym: 'rsa', n: Buffer.from(n), e: Buffer.from(ee), der: Buffer.from(pkcs8) };
    return encodeKeyPair(keyObject({ type: 'public', asym: 'rsa', n: priv.n, e: priv.e }), keyObject(priv), options);
  }
  if (type === 'ec') {
    const curve = options && options.namedCurve;
    if (curve !== 'P-256' && curve !== 'prime256v1') throw codeError(TypeError, 'ERR_CRYPTO_INVALID_CURVE', 'Invalid EC curve name' + (curve ? ': ' + curve + ' (Hearth provides P-256)' : ''));
    const [point, d] = native.ecGenerate();
    const m = { type: 'private', asym: 'ec', point: Buffer.from(point), d: Buffer.from(d) };
    return encodeKeyPair(keyObject({ type: 'public', asym: 'ec', point: m.point }), keyObject(m), options);
  }
  throw codeError(Error, 'ERR_METHOD_NOT_IMPLEMENTED', 'generateKeyPair("' + type + '") is not implemented yet in Hearth (rsa and ec are)');
}

export function generateKeyPair(type, options, callback) {
  if (typeof options === 'function') {
    callback = options;
    options = undefined;
  }
  const { publicKey, privateKey } = generateKeyPairSync(type, options);
  queueMicrotask(() => callback(null, publicKey, privateKey));
}

export function generateKeySync(type, options) {
  const length = options && options.length;
  if ((type !== 'hmac' && type !== 'aes') || !Number.isInteger(length) || length % 8 !== 0) {
    throw codeError(TypeError, 'ERR_INVALID_ARG_VALUE', 'generateKeySync needs type "hmac" or "aes" and a length in bits');
  }
  return createSecretKey(randomBytes(length / 8));
}

export function generateKey(type, options, callback) {
  const key = generateKeySync(type, options);
  queueMicrotask(() => callback(null, key));
}

// ---- signatures ----

function rawToDer(raw) {
  const int = (b) => {
    let i = 0;
    while (i < b.length - 1 && b[i] === 0) i++;
    let v = b.subarray(i);
    if (v[0] & 0x80) v = Buffer.concat([Buffer.from([0]), v]);
    return der(0x02, v);
  };
  return der(0x30, Buffer.concat([int(raw.subarray(0, 32)), int(raw.subarray(32))]));
}
function derToRaw(sig) {
  try {
    const [tag, s] = derRead(sig, 0);
    if (tag !== 0x30) return null;
    const [t1, rs, re] = derRead(sig, s);
    const [t2, ss, se] = derRead(sig, re);
    if (t1 !== 2 || t2 !== 2) return null;
    const fix = (b) => {
      while (b.length > 32 && b[0] === 0) b = b.subarray(1);
      return b.length > 32 ? null : Buffer.concat([Buffer.alloc(32 - b.length), b]);
    };
    const r = fix(sig.subarray(rs, re));
    const sv = fix(sig.subarray(ss, se));
    return r && sv ? Buffer.concat([r, sv]) : null;
  } catch {
    return null;
  }
}

export const constants = {
  RSA_PKCS1_PADDING: 1,
  RSA_NO_PADDING: 3,
  RSA_PKCS1_OAEP_PADDING: 4,
  RSA_PKCS1_PSS_PADDING: 6,
  RSA_PSS_SALTLEN_DIGEST: -1,
  RSA_PSS_SALTLEN_MAX_SIGN: -2,
  RSA_PSS_SALTLEN_AUTO: -2,
  POINT_CONVERSION_COMPRESSED: 2,
  POINT_CONVERSION_UNCOMPRESSED: 4,
};

function keyBytes(m) {
  return m.n.length - (m.n[0] === 0 ? 1 : 0);
}

function signWith(hash, data, key) {
  const m = parseKeyMaterial(key, true);
  if (m.type !== 'private') throw codeError(TypeError, 'ERR_CRYPTO_INVALID_KEY_OBJECT_TYPE', 'Invalid key object type ' + m.type + ', expected private.');
  const opts = key && typeof key === 'object' && !(key instanceof KeyObject) && !ArrayBuffer.isView(key) ? key : {};
  if (m.asym === 'ec') {
    const raw = Buffer.from(native.ecSign(hash, m.d, data));
    return opts.dsaEncoding === 'ieee-p1363' ? raw : rawToDer(raw);
  }
  if (opts.padding === constants.RSA_PKCS1_PSS_PADDING) {
    const hLen = native.digest(hash, new Uint8Array(0)).byteLength;
    let salt = opts.saltLength ?? constants.RSA_PSS_SALTLEN_MAX_SIGN;
    if (salt === constants.RSA_PSS_SALTLEN_DIGEST) salt = hLen;
    else if (salt === constants.RSA_PSS_SALTLEN_MAX_SIGN) salt = keyBytes(m) - hLen - 2;
    return Buffer.from(native.rsaSign('RSA-PSS', hash, m.der, data, salt));
  }
  return Buffer.from(native.rsaSign('RSASSA-PKCS1-v1_5', hash, m.der, data, 0));
}

function verifyWith(hash, data, key, signature) {
  let m = parseKeyMaterial(key, false);
  if (m.type === 'secret') throw codeError(TypeError, 'ERR_CRYPTO_INVALID_KEY_OBJECT_TYPE', 'Invalid key object type secret, expected public.');
  if (m.type === 'private') m = importAsymmetric('spki', spkiOf(m));
  const opts = key && typeof key === 'object' && !(key instanceof KeyObject) && !ArrayBuffer.isView(key) ? key : {};
  const sig = Buffer.from(toBytes(signature, undefined, 'signature'));
  if (m.asym === 'ec') {
    const raw = opts.dsaEncoding === 'ieee-p1363' ? sig : derToRaw(sig);
    return !!raw && native.ecVerify(hash, m.point, raw, data);
  }
  const pub = [m.n, m.e];
  if (opts.padding === constants.RSA_PKCS1_PSS_PADDING) {
    const hLen = native.digest(hash, new Uint8Array(0)).byteLength;
    const salt = opts.saltLength ?? constants.RSA_PSS_SALTLEN_AUTO;
    const tries = salt === constants.RSA_PSS_SALTLEN_AUTO ? [keyBytes(m) - hLen - 2, hLen, 0] : [salt === constants.RSA_PSS_SALTLEN_DIGEST ? hLen : salt];
    return tries.some((s) => s >= 0 && native.rsaVerify('RSA-PSS', hash, pub, sig, data, s));
  }
  return native.rsaVerify('RSASSA-PKCS1-v1_5', hash, pub, sig, data, 0);
}

function signatureHash(algorithm) {
  if (algorithm === null || algorithm === undefined) return 'SHA-256';
  const name = String(algorithm).toLowerCase().replace(/^(rsa-|ecdsa-with-)/, '').replace(/withrsaencryption$/, '');
  return hashName(name);
}

export function Sign(algorithm, options) {
  if (!(this instanceof Sign)) return new Sign(algorithm, options);
  this._hash = signatureHash(algorithm);
  this._chunks = [];
  Writable.call(this, options);
}
Object.setPrototypeOf(Sign.prototype, Writable.prototype);
Sign.prototype._write = function (chunk, encoding, callback) {
  this.update(chunk, encoding);
  callback();
};
Sign.prototype.update = function (data, encoding) {
  this._chunks.push(Buffer.from(toBytes(data, encoding)));
  return this;
};
Sign.prototype.sign = function (privateKey, outputEncoding) {
  return output(signWith(this._hash, Buffer.concat(this._chunks), privateKey), outputEncoding);
};

export function Verify(algorithm, options) {
  if (!(this instanceof Verify)) return new Verify(algorithm, options);
  this._hash = signatureHash(algorithm);
  this._chunks = [];
  Writable.call(this, options);
}
Object.setPrototypeOf(Verify.prototype, Writable.prototype);
Verify.prototype._write = Sign.prototype._write;
Verify.prototype.update = Sign.prototype.update;
Verify.prototype.verify = function (publicKey, signature, signatureEncoding) {
  const sig = typeof signature === 'string' ? Buffer.from(signature, signatureEncoding) : signature;
  return verifyWith(this._hash, Buffer.concat(this._chunks), publicKey, sig);
};

export function createSign(algorithm, options) {
  return new Sign(algorithm, options);
}
export function createVerify(algorithm, options) {
  return new Verify(algorithm, options);
}

export function sign(algorithm, data, key, callback) {
  const sig = signWith(signatureHash(algorithm), toBytes(data), key);
  if (typeof callback === 'function') {
    queueMicrotask(() => callback(null, sig));
    return;
  }
  return sig;
}
export function verify(algorithm, data, key, signature, callback) {
  const ok = verifyWith(signatureHash(algorithm), toBytes(data), key, signature);
  if (typeof callback === 'function') {
    queueMicrotask(() => callback(null, ok));
    return;
  }
  return ok;
}

export const webcrypto = globalThis.crypto;
export const subtle = globalThis.crypto.subtle;

function notImplemented(name) {
  return function () {
    const e = new Error('crypto.' + name + ' is not implemented yet in Hearth');
    e.code = 'ERR_METHOD_NOT_IMPLEMENTED';
    throw e;
  };
}
export const createECDH = notImplemented('createECDH');
export const createDiffieHellman = notImplemented('createDiffieHellman');
export const createDiffieHellmanGroup = notImplemented('createDiffieHellmanGroup');
export const getDiffieHellman = notImplemented('getDiffieHellman');
export const diffieHellman = notImplemented('diffieHellman');
export const publicEncrypt = notImplemented('publicEncrypt');
export const privateDecrypt = notImplemented('privateDecrypt');
export const privateEncrypt = notImplemented('privateEncrypt');
export const publicDecrypt = notImplemented('publicDecrypt');
export const generatePrime = notImplemented('generatePrime');
export const generatePrimeSync = notImplemented('generatePrimeSync');
export const checkPrime = notImplemented('checkPrime');
export const checkPrimeSync = notImplemented('checkPrimeSync');
export const createCipher = notImplemented('createCipher');
export const createDecipher = notImplemented('createDecipher');

export function getCipherInfo(name) {
  const spec = CIPHERS[String(name).toLowerCase()];
  if (!spec) return undefined;
  return { name: String(name).toLowerCase(), keyLength: spec.keyLen, ivLength: spec.mode === 'gcm' ? 12 : 16, blockSize: spec.mode === 'cbc' ? 16 : 1, mode: spec.mode };
}

export function getFips() {
  return 0;
}
export function setFips() {}
export function secureHeapUsed() {
  return { total: 0, min: 0, used: 0, utilization: 0 };
}

const crypto = {
  Hash, Hmac, createHash, createHmac, hash, getHashes, getCiphers, getCurves, getCipherInfo, randomFillSync,
  randomFill, randomBytes, pseudoRandomBytes, prng, rng, randomInt, randomUUID, getRandomValues, timingSafeEqual,
  pbkdf2Sync, pbkdf2, scrypt, scryptSync, hkdf, hkdfSync, webcrypto, subtle, constants, Cipheriv, Decipheriv,
  createCipheriv, createDecipheriv, Sign, Verify, createSign, createVerify, sign, verify, KeyObject,
  createSecretKey, createPrivateKey, createPublicKey, generateKeyPair, generateKeyPairSync, generateKey,
  generateKeySync, createECDH, createDiffieHellman, createDiffieHellmanGroup, getDiffieHellman, diffieHellman,
  publicEncrypt, privateDecrypt, privateEncrypt, publicDecrypt, generatePrime, generatePrimeSync, checkPrime,
  checkPrimeSync, createCipher, createDecipher, getFips, setFips, secureHeapUsed,
};
export default crypto;
export { crypto as 'module.exports' };
