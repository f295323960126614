// node:crypto — hashes, HMAC, PBKDF2, random values and timingSafeEqual
// over the runtime's Rust crypto; webcrypto is the global one. Ciphers,
// signing, key objects and scrypt are not provided yet and say so.
import { Buffer } from 'node:buffer';

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
  const e = new TypeError('The "' + name + '" argument must be of type string or an instance of Buffer, TypedArray, or DataView. Received ' + (data === null ? 'null' : typeof data));
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

export class Hash {
  constructor(algorithm, _options) {
    this._name = hashName(algorithm);
    this._chunks = [];
    this._done = false;
  }
  update(data, encoding) {
    if (this._done) throw finalized();
    this._chunks.push(Buffer.from(toBytes(data, encoding)));
    return this;
  }
  digest(encoding) {
    if (this._done) throw finalized();
    this._done = true;
    return output(native.digest(this._name, Buffer.concat(this._chunks)), encoding);
  }
  copy() {
    if (this._done) throw finalized();
    const h = new Hash(this._name.replace('-', ''));
    h._chunks = this._chunks.slice();
    return h;
  }
}

export class Hmac {
  constructor(algorithm, key, _options) {
    this._name = hashName(algorithm);
    this._key = Buffer.from(toBytes(key, undefined, 'key'));
    this._chunks = [];
    this._done = false;
  }
  update(data, encoding) {
    if (this._done) throw finalized();
    this._chunks.push(Buffer.from(toBytes(data, encoding)));
    return this;
  }
  digest(encoding) {
    if (this._done) throw finalized();
    this._done = true;
    return output(native.hmac(this._name, this._key, Buffer.concat(this._chunks)), encoding);
  }
}

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
  return [];
}

export function getCurves() {
  return [];
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
    const e = new RangeError('Input buffers must have the same byte length');
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
  const name = hashName(digest);
  if (keylen === 0) return Buffer.alloc(0);
  return Buffer.from(native.pbkdf2(name, toBytes(password, undefined, 'password'), toBytes(salt, undefined, 'salt'), iterations, keylen * 8));
}

export function pbkdf2(password, salt, iterations, keylen, digest, callback) {
  if (typeof callback !== 'function') {
    const e = new TypeError('The "callback" argument must be of type function. Received ' + typeof callback);
    e.code = 'ERR_INVALID_ARG_TYPE';
    throw e;
  }
  const key = pbkdf2Sync(password, salt, iterations, keylen, digest);
  queueMicrotask(() => callback(null, key));
}

export const webcrypto = globalThis.crypto;
export const subtle = globalThis.crypto.subtle;
export const constants = {};

function notImplemented(name) {
  return function () {
    const e = new Error('crypto.' + name + ' is not implemented yet in Hearth');
    e.code = 'ERR_METHOD_NOT_IMPLEMENTED';
    throw e;
  };
}
export const createCipheriv = notImplemented('createCipheriv');
export const createDecipheriv = notImplemented('createDecipheriv');
export const createSign = notImplemented('createSign');
export const createVerify = notImplemented('createVerify');
export const sign = notImplemented('sign');
export const verify = notImplemented('verify');
export const scrypt = notImplemented('scrypt');
export const scryptSync = notImplemented('scryptSync');
export const hkdf = notImplemented('hkdf');
export const hkdfSync = notImplemented('hkdfSync');
export const generateKeyPair = notImplemented('generateKeyPair');
export const generateKeyPairSync = notImplemented('generateKeyPairSync');
export const generateKey = notImplemented('generateKey');
export const generateKeySync = notImplemented('generateKeySync');
export const createPrivateKey = notImplemented('createPrivateKey');
export const createPublicKey = notImplemented('createPublicKey');
export const createSecretKey = notImplemented('createSecretKey');
export const createECDH = notImplemented('createECDH');
export const createDiffieHellman = notImplemented('createDiffieHellman');
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
export class KeyObject {
  constructor() {
    notImplemented('KeyObject')();
  }
}

const crypto = {
  Hash, Hmac, createHash, createHmac, hash, getHashes, getCiphers, getCurves, randomFillSync, randomFill,
  randomBytes, pseudoRandomBytes, prng, rng, randomInt, randomUUID, getRandomValues, timingSafeEqual,
  pbkdf2Sync, pbkdf2, webcrypto, subtle, constants, createCipheriv, createDecipheriv, createSign,
  createVerify, sign, verify, scrypt, scryptSync, hkdf, hkdfSync, generateKeyPair, generateKeyPairSync,
  generateKey, generateKeySync, createPrivateKey, createPublicKey, createSecretKey, createECDH,
  createDiffieHellman, getDiffieHellman, diffieHellman, publicEncrypt, privateDecrypt, privateEncrypt,
  publicDecrypt, generatePrime, generatePrimeSync, checkPrime, checkPrimeSync, KeyObject,
};
export default crypto;
export { crypto as 'module.exports' };
