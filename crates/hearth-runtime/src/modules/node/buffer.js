import { received } from 'hearth:node-internal';
// node:buffer — Buffer as a Uint8Array subclass. base64 goes through the
// runtime's atob/btoa and UTF-8 through TextEncoder/TextDecoder.
export const kMaxLength = 2 ** 32;
export const kStringMaxLength = 2 ** 29 - 24;
export const constants = { MAX_LENGTH: kMaxLength, MAX_STRING_LENGTH: kStringMaxLength };
export const INSPECT_MAX_BYTES = 50;

const encoder = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8');

function typeError(code, message) {
  const e = new TypeError(message);
  e.code = code;
  return e;
}
function rangeError(code, message) {
  const e = new RangeError(message);
  e.code = code;
  return e;
}

function normalizeEncoding(enc) {
  if (enc === undefined || enc === null || enc === '') return 'utf8';
  switch (String(enc).toLowerCase()) {
    case 'utf8': case 'utf-8': return 'utf8';
    case 'hex': return 'hex';
    case 'base64': return 'base64';
    case 'base64url': return 'base64url';
    case 'latin1': case 'binary': return 'latin1';
    case 'ascii': return 'ascii';
    case 'ucs2': case 'ucs-2': case 'utf16le': case 'utf-16le': return 'utf16le';
    default: return undefined;
  }
}
function encodingOrThrow(enc) {
  const e = normalizeEncoding(enc);
  if (e === undefined) throw typeError('ERR_UNKNOWN_ENCODING', 'Unknown encoding: ' + enc);
  return e;
}

export function isEncoding(enc) {
  return typeof enc === 'string' && enc !== '' && normalizeEncoding(enc) !== undefined;
}

function base64ToBytes(str) {
  // Node accepts both alphabets, whitespace, and missing padding; it stops at the first '='.
  let s = String(str).replace(/[-_]/g, (c) => (c === '-' ? '+' : '/')).replace(/[^A-Za-z0-9+/=]/g, '');
  const eq = s.indexOf('=');
  if (eq >= 0) s = s.slice(0, eq);
  if (s.length % 4 === 1) s = s.slice(0, -1);
  while (s.length % 4) s += '=';
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
function bytesToBinaryString(bytes) {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return s;
}
function hexToBytes(str) {
  const s = String(str);
  const n = s.length >>> 1;
  const out = new Uint8Array(n);
  let i = 0;
  for (; i < n; i++) {
    const v = parseInt(s.substr(i * 2, 2), 16);
    if (Number.isNaN(v) || !/^[0-9a-fA-F]{2}$/.test(s.substr(i * 2, 2))) break;
    out[i] = v;
  }
  return i === n ? out : out.subarray(0, i);
}

function stringToBytes(string, encoding) {
  switch (encoding) {
    case 'utf8': return encoder.encode(string);
    case 'hex': return hexToBytes(string);
    case 'base64': case 'base64url': return base64ToBytes(string);
    case 'latin1': case 'ascii': {
      const out = new Uint8Array(string.length);
      for (let i = 0; i < string.length; i++) out[i] = string.charCodeAt(i) & 0xff;
      return out;
    }
    case 'utf16le': {
      const out = new Uint8Array(string.length * 2);
      for (let i = 0; i < string.length; i++) {
        const c = string.charCodeAt(i);
        out[i * 2] = c & 0xff;
        out[i * 2 + 1] = c >>> 8;
      }
      return out;
    }
  }
  throw typeError('ERR_UNKNOWN_ENCODING', 'Unknown encoding: ' + encoding);
}

function bytesToString(bytes, encoding) {
  switch (encoding) {
    case 'utf8': return utf8Decoder.decode(bytes);
    case 'hex': {
      let s = '';
      for (let i = 0; i < bytes.length; i++) s += (bytes[i] < 16 ? '0' : '') + bytes[i].toString(16);
      return s;
    }
    case 'base64': return btoa(bytesToBinaryString(bytes));
    case 'base64url': return btoa(bytesToBinaryString(bytes)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
    case 'latin1': return bytesToBinaryString(bytes);
    case 'ascii': {
      let s = '';
      for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i] & 0x7f);
      return s;
    }
    case 'utf16le': {
      let s = '';
      for (let i = 0; i + 1 < bytes.length; i += 2) s += String.fromCharCode(bytes[i] | (bytes[i + 1] << 8));
      return s;
    }
  }
  throw typeError('ERR_UNKNOWN_ENCODING', 'Unknown encoding: ' + encoding);
}

function checkSize(size) {
  if (typeof size !== 'number') {
    throw typeError('ERR_INVALID_ARG_TYPE', 'The "size" argument must be of type number.' + received(size));
  }
  if (!(size >= 0 && size <= kMaxLength)) {
    throw rangeError('ERR_OUT_OF_RANGE', 'The value of "size" is out of range. It must be >= 0 && <= ' + kMaxLength + '. Received ' + size);
  }
}

export class Buffer extends Uint8Array {
  // `new Buffer()` is deprecated in Node but still works.
  constructor(arg, encodingOrOffset, length) {
    if (typeof arg === 'number') {
      super(arg);
    } else if (arg instanceof ArrayBuffer || (typeof SharedArrayBuffer !== 'undefined' && arg instanceof SharedArrayBuffer)) {
      super(arg, encodingOrOffset, length);
    } else {
      super(fromAny(arg, encodingOrOffset));
    }
  }

  static from(value, encodingOrOffset, length) {
    if (typeof value === 'string') {
      const b = stringToBytes(value, encodingOrThrow(encodingOrOffset));
      return new Buffer(b.buffer, b.byteOffset, b.length);
    }
    if (value instanceof ArrayBuffer || (typeof SharedArrayBuffer !== 'undefined' && value instanceof SharedArrayBuffer)) {
      const offset = encodingOrOffset === undefined ? 0 : Number(encodingOrOffset) || 0;
      if (offset > value.byteLength) throw rangeError('ERR_BUFFER_OUT_OF_BOUNDS', '"offset" is outside of buffer bounds');
      const len = length === undefined ? value.byteLength - offset : Number(length) || 0;
      if (offset + len > value.byteLength) throw rangeError('ERR_BUFFER_OUT_OF_BOUNDS', '"length" is outside of buffer bounds');
      return new Buffer(value, offset, len);
    }
    if (value === null || value === undefined || typeof value === 'number' || typeof value === 'boolean' || typeof value === 'symbol' || typeof value === 'bigint') {
      throw typeError('ERR_INVALID_ARG_TYPE', 'The first argument must be of type string or an instance of Buffer, TypedArray, ArrayBuffer, SharedArrayBuffer, or Array or an Array-like Object.' + received(value));
    }
    if (typeof value.valueOf === 'function') {
      const prim = value.valueOf();
      if (prim !== value && prim !== null && prim !== undefined && (typeof prim === 'string' || typeof prim === 'object')) {
        return Buffer.from(prim, encodingOrOffset, length);
      }
    }
    const bytes = fromAny(value);
    const b = Buffer.alloc(bytes.length);
    b.set(bytes);
    return b;
  }

  static alloc(size, fill, encoding) {
    checkSize(size);
    const b = new Buffer(size);
    if (fill !== undefined && fill !== 0 && size > 0) b.fill(fill, encoding);
    return b;
  }
  static allocUnsafe(size) {
    checkSize(size);
    return new Buffer(size);
  }
  static allocUnsafeSlow(size) {
    checkSize(size);
    return new Buffer(size);
  }
  static isBuffer(b) {
    return b instanceof Buffer;
  }
  static isEncoding(enc) {
    return isEncoding(enc);
  }
  static byteLength(value, encoding) {
    if (typeof value !== 'string') {
      if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) return value.byteLength;
      throw typeError('ERR_INVALID_ARG_TYPE', 'The "string" argument must be of type string or an instance of Buffer or ArrayBuffer.' + received(value));
    }
    const enc = normalizeEncoding(encoding) || 'utf8';
    if (enc === 'utf8') return encoder.encode(value).length;
    if (enc === 'utf16le') return value.length * 2;
    if (enc === 'latin1' || enc === 'ascii') return value.length;
    if (enc === 'hex') return value.length >>> 1;
    return stringToBytes(value, enc).length;
  }
  static compare(a, b) {
    if (!(a instanceof Uint8Array) || !(b instanceof Uint8Array)) {
      throw typeError('ERR_INVALID_ARG_TYPE', 'The "buf1" and "buf2" arguments must be one of type Buffer or Uint8Array');
    }
    const n = Math.min(a.length, b.length);
    for (let i = 0; i < n; i++) {
      if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
    }
    return a.length < b.length ? -1 : a.length > b.length ? 1 : 0;
  }
  static concat(list, totalLength) {
    if (!Array.isArray(list)) {
      throw typeError('ERR_INVALID_ARG_TYPE', 'The "list" argument must be an instance of Array.' + received(list));
    }
    if (totalLength === undefined) {
      totalLength = 0;
      for (const b of list) totalLength += b.length;
    }
    const out = Buffer.alloc(totalLength);
    let pos = 0;
    for (const b of list) {
      if (!(b instanceof Uint8Array)) {
        throw typeError('ERR_INVALID_ARG_TYPE', 'The "list" argument must contain only Buffer or Uint8Array instances');
      }
      if (pos >= totalLength) break;
      const n = Math.min(b.length, totalLength - pos);
      out.set(n === b.length ? b : b.subarray(0, n), pos);
      pos += n;
    }
    return out;
  }
  static copyBytesFrom(view, offset = 0, length) {
    const bytes = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
    const size = view.BYTES_PER_ELEMENT || 1;
    const end = length === undefined ? bytes.length : (offset + length) * size;
    return Buffer.from(bytes.slice(offset * size, end));
  }

  get parent() { return this.buffer; }
  get offset() { return this.byteOffset; }

  toString(encoding, start, end) {
    if (arguments.length === 0) return utf8Decoder.decode(this);
    const len = this.length;
    start = start === undefined || start < 0 ? 0 : Math.min(start | 0, len);
    end = end === undefined || end > len ? len : end | 0;
    if (end <= start) return '';
    return bytesToString(start === 0 && end === len ? this : this.subarray(start, end), encodingOrThrow(encoding));
  }
  toLocaleString(encoding, start, end) {
    return this.toString(encoding, start, end);
  }
  toJSON() {
    return { type: 'Buffer', data: Array.from(this) };
  }
  equals(other) {
    if (!(other instanceof Uint8Array)) {
      throw typeError('ERR_INVALID_ARG_TYPE', 'The "otherBuffer" argument must be an instance of Buffer or Uint8Array');
    }
    return Buffer.compare(this, other) === 0;
  }
  compare(target, targetStart = 0, targetEnd = target.length, sourceStart = 0, sourceEnd = this.length) {
    return Buffer.compare(this.subarray(sourceStart, sourceEnd), target.subarray(targetStart, targetEnd));
  }
  copy(target, targetStart = 0, sourceStart = 0, sourceEnd = this.length) {
    if (sourceEnd > this.length) sourceEnd = this.length;
    if (targetStart >= target.length || sourceStart >= sourceEnd) return 0;
    const n = Math.min(sourceEnd - sourceStart, target.length - targetStart);
    target.set(this.subarray(sourceStart, sourceStart + n), targetStart);
    return n;
  }
  // Node's slice shares memory, unlike TypedArray.prototype.slice.
  slice(start, end) {
    return this.subarray(start, end);
  }
  subarray(start, end) {
    const u = Uint8Array.prototype.subarray.call(this, start, end);
    return new Buffer(u.buffer, u.byteOffset, u.length);
  }
  write(string, offset, length, encoding) {
    if (typeof offset === 'string') {
      encoding = offset;
      offset = 0;
      length = this.length;
    } else if (typeof length === 'string') {
      encoding = length;
      length = this.length - (offset || 0);
    }
    offset = offset === undefined ? 0 : offset >>> 0;
    const remaining = this.length - offset;
    length = length === undefined || length > remaining ? remaining : length >>> 0;
    const enc = encodingOrThrow(encoding);
    let bytes = stringToBytes(string, enc);
    if (bytes.length > length) {
      if (enc === 'utf8') {
        // Never write a partial character.
        let n = length;
        while (n > 0 && (bytes[n] & 0xc0) === 0x80) n--;
        bytes = bytes.subarray(0, n);
      } else {
        bytes = bytes.subarray(0, length);
      }
    }
    this.set(bytes, offset);
    return bytes.length;
  }
  fill(value, offset, end, encoding) {
    if (typeof offset === 'string') {
      encoding = offset;
      offset = 0;
      end = this.length;
    } else if (typeof end === 'string') {
      encoding = end;
      end = this.length;
    }
    offset = offset === undefined ? 0 : offset;
    end = end === undefined ? this.length : end;
    if (offset < 0 || end > this.length) throw rangeError('ERR_OUT_OF_RANGE', 'The value of "offset" is out of range.');
    if (typeof value === 'number') {
      Uint8Array.prototype.fill.call(this, value & 255, offset, end);
      return this;
    }
    if (typeof value === 'boolean') {
      Uint8Array.prototype.fill.call(this, Number(value), offset, end);
      return this;
    }
    const bytes = typeof value === 'string' ? stringToBytes(value, encodingOrThrow(encoding)) : fromAny(value);
    if (bytes.length === 0) {
      if (typeof value === 'string' && value.length > 0) throw typeError('ERR_INVALID_ARG_VALUE', 'The argument \'value\' is invalid. Received \'' + value + '\'');
      Uint8Array.prototype.fill.call(this, 0, offset, end);
      return this;
    }
    for (let i = offset, j = 0; i < end; i++, j++) this[i] = bytes[j % bytes.length];
    return this;
  }
  indexOf(value, byteOffset, encoding) {
    return indexOf(this, value, byteOffset, encoding, true);
  }
  lastIndexOf(value, byteOffset, encoding) {
    return indexOf(this, value, byteOffset, encoding, false);
  }
  includes(value, byteOffset, encoding) {
    return this.indexOf(value, byteOffset, encoding) !== -1;
  }
  swap16() { return swap(this, 2); }
  swap32() { return swap(this, 4); }
  swap64() { return swap(this, 8); }
}

function swap(buf, size) {
  if (buf.length % size !== 0) {
    throw rangeError('ERR_INVALID_BUFFER_SIZE', 'Buffer size must be a multiple of ' + size * 8 + '-bits');
  }
  for (let i = 0; i < buf.length; i += size) {
    for (let a = i, b = i + size - 1; a < b; a++, b--) {
      const t = buf[a];
      buf[a] = buf[b];
      buf[b] = t;
    }
  }
  return buf;
}

function fromAny(value, encoding) {
  if (typeof value === 'string') return stringToBytes(value, encodingOrThrow(encoding));
  if (value instanceof Uint8Array) return value;
  if (ArrayBuffer.isView(value)) {
    // Node copies element values (truncated to bytes), not the memory.
    return Uint8Array.from(value, (v) => Number(v) & 255);
  }
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (value && value.type === 'Buffer' && Array.isArray(value.data)) return Uint8Array.from(value.data);
  if (value && typeof value.length === 'number') return Uint8Array.from(value, (v) => Number(v) & 255);
  if (Array.isArray(value)) return Uint8Array.from(value);
  return new Uint8Array(0);
}

function indexOf(buf, value, byteOffset, encoding, first) {
  if (typeof byteOffset === 'string') {
    encoding = byteOffset;
    byteOffset = undefined;
  }
  const len = buf.length;
  let start = byteOffset === undefined ? (first ? 0 : len) : Number(byteOffset);
  if (Number.isNaN(start)) start = first ? 0 : len;
  if (start < 0) start = len + start;
  if (typeof value === 'number') {
    value &= 255;
    if (first) {
      for (let i = Math.max(0, start); i < len; i++) if (buf[i] === value) return i;
    } else {
      for (let i = Math.min(start, len - 1); i >= 0; i--) if (buf[i] === value) return i;
    }
    return -1;
  }
  const needle = typeof value === 'string' ? stringToBytes(value, encodingOrThrow(encoding)) : value;
  if (!(needle instanceof Uint8Array)) {
    throw typeError('ERR_INVALID_ARG_TYPE', 'The "value" argument must be one of type number or string or an instance of Buffer or Uint8Array.');
  }
  if (needle.length === 0) return first ? Math.min(Math.max(start, 0), len) : Math.min(start, len);
  const match = (i) => {
    for (let j = 0; j < needle.length; j++) if (buf[i + j] !== needle[j]) return false;
    return true;
  };
  if (first) {
    for (let i = Math.max(0, start); i <= len - needle.length; i++) if (match(i)) return i;
  } else {
    for (let i = Math.min(start, len - needle.length); i >= 0; i--) if (match(i)) return i;
  }
  return -1;
}

function checkOffset(buf, offset, size) {
  if (offset === undefined) offset = 0;
  if (typeof offset !== 'number') {
    throw typeError('ERR_INVALID_ARG_TYPE', 'The "offset" argument must be of type number.' + received(offset));
  }
  if (!Number.isInteger(offset) || offset < 0 || offset + size > buf.length) {
    if (buf.length - size < 0) throw rangeError('ERR_BUFFER_OUT_OF_BOUNDS', 'Attempt to access memory outside buffer bounds');
    throw rangeError('ERR_OUT_OF_RANGE', 'The value of "offset" is out of range. It must be >= 0 and <= ' + (buf.length - size) + '. Received ' + offset);
  }
  return offset;
}
function view(buf) {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
}
function checkValue(value, min, max, size) {
  if (typeof value === 'bigint') {
    if (value < min || value > max) {
      throw rangeError('ERR_OUT_OF_RANGE', 'The value of "value" is out of range. It must be >= ' + min + 'n and <= ' + max + 'n. Received ' + value + 'n');
    }
    return;
  }
  if (value > max || value < min) {
    const range = min === 0 ? '>= 0 and <= ' + max : '>= ' + min + ' and <= ' + max;
    throw rangeError('ERR_OUT_OF_RANGE', 'The value of "value" is out of range. It must be ' + range + '. Received ' + value);
  }
}

// [method suffix, size, DataView getter/setter, min, max]
const numeric = [
  ['Int8', 1, 'Int8', -128, 127],
  ['UInt8', 1, 'Uint8', 0, 255],
  ['Int16LE', 2, 'Int16', -32768, 32767, true],
  ['Int16BE', 2, 'Int16', -32768, 32767, false],
  ['UInt16LE', 2, 'Uint16', 0, 65535, true],
  ['UInt16BE', 2, 'Uint16', 0, 65535, false],
  ['Int32LE', 4, 'Int32', -(2 ** 31), 2 ** 31 - 1, true],
  ['Int32BE', 4, 'Int32', -(2 ** 31), 2 ** 31 - 1, false],
  ['UInt32LE', 4, 'Uint32', 0, 2 ** 32 - 1, true],
  ['UInt32BE', 4, 'Uint32', 0, 2 ** 32 - 1, false],
  ['FloatLE', 4, 'Float32', -Infinity, Infinity, true],
  ['FloatBE', 4, 'Float32', -Infinity, Infinity, false],
  ['DoubleLE', 8, 'Float64', -Infinity, Infinity, true],
  ['DoubleBE', 8, 'Float64', -Infinity, Infinity, false],
  ['BigInt64LE', 8, 'BigInt64', -(2n ** 63n), 2n ** 63n - 1n, true],
  ['BigInt64BE', 8, 'BigInt64', -(2n ** 63n), 2n ** 63n - 1n, false],
  ['BigUInt64LE', 8, 'BigUint64', 0n, 2n ** 64n - 1n, true],
  ['BigUInt64BE', 8, 'BigUint64', 0n, 2n ** 64n - 1n, false],
];
for (const [suffix, size, dv, min, max, little] of numeric) {
  const isFloat = dv.startsWith('Float');
  const isBig = dv.startsWith('Big');
  const read = function (offset) {
    offset = checkOffset(this, offset, size);
    return view(this)['get' + dv](offset, little);
  };
  const write = function (value, offset) {
    offset = checkOffset(this, offset, size);
    if (isBig) {
      if (typeof value !== 'bigint') {
        throw typeError('ERR_INVALID_ARG_TYPE', 'The "value" argument must be of type bigint.' + received(value));
      }
      checkValue(value, min, max, size);
    } else {
      value = +value;
      if (!isFloat) checkValue(value, min, max, size);
    }
    view(this)['set' + dv](offset, value, little);
    return offset + size;
  };
  Buffer.prototype['read' + suffix] = read;
  Buffer.prototype['write' + suffix] = write;
  if (suffix.includes('UInt')) {
    // Node's lowercase aliases (readUint8, writeBigUint64LE, ...).
    Buffer.prototype['read' + suffix.replace('UInt', 'Uint')] = read;
    Buffer.prototype['write' + suffix.replace('UInt', 'Uint')] = write;
  }
}

function readVar(buf, offset, byteLength, little, signed) {
  if (!Number.isInteger(byteLength) || byteLength < 1 || byteLength > 6) {
    throw rangeError('ERR_OUT_OF_RANGE', 'The value of "byteLength" is out of range. It must be >= 1 and <= 6. Received ' + byteLength);
  }
  offset = checkOffset(buf, offset, byteLength);
  let val = 0;
  for (let i = 0; i < byteLength; i++) {
    const b = buf[offset + (little ? i : byteLength - 1 - i)];
    val += b * 2 ** (8 * i);
  }
  if (signed && val >= 2 ** (8 * byteLength - 1)) val -= 2 ** (8 * byteLength);
  return val;
}
function writeVar(buf, value, offset, byteLength, little, signed) {
  if (!Number.isInteger(byteLength) || byteLength < 1 || byteLength > 6) {
    throw rangeError('ERR_OUT_OF_RANGE', 'The value of "byteLength" is out of range. It must be >= 1 and <= 6. Received ' + byteLength);
  }
  offset = checkOffset(buf, offset, byteLength);
  const bits = 8 * byteLength;
  if (signed) checkValue(value, -(2 ** (bits - 1)), 2 ** (bits - 1) - 1);
  else checkValue(value, 0, 2 ** bits - 1);
  let v = value < 0 ? value + 2 ** bits : value;
  for (let i = 0; i < byteLength; i++) {
    buf[offset + (little ? i : byteLength - 1 - i)] = v % 256;
    v = Math.floor(v / 256);
  }
  return offset + byteLength;
}
Buffer.prototype.readUIntLE = function (o, n) { return readVar(this, o, n, true, false); };
Buffer.prototype.readUIntBE = function (o, n) { return readVar(this, o, n, false, false); };
Buffer.prototype.readIntLE = function (o, n) { return readVar(this, o, n, true, true); };
Buffer.prototype.readIntBE = function (o, n) { return readVar(this, o, n, false, true); };
Buffer.prototype.writeUIntLE = function (v, o, n) { return writeVar(this, v, o, n, true, false); };
Buffer.prototype.writeUIntBE = function (v, o, n) { return writeVar(this, v, o, n, false, false); };
Buffer.prototype.writeIntLE = function (v, o, n) { return writeVar(this, v, o, n, true, true); };
Buffer.prototype.writeIntBE = function (v, o, n) { return writeVar(this, v, o, n, false, true); };
Buffer.prototype.readUintLE = Buffer.prototype.readUIntLE;
Buffer.prototype.readUintBE = Buffer.prototype.readUIntBE;
Buffer.prototype.writeUintLE = Buffer.prototype.writeUIntLE;
Buffer.prototype.writeUintBE = Buffer.prototype.writeUIntBE;

// Buffer.prototype.inspect output, as util.inspect shows it.
Buffer.prototype[Symbol.for('nodejs.util.inspect.custom')] = function () {
  let hex = '';
  const n = Math.min(this.length, INSPECT_MAX_BYTES);
  for (let i = 0; i < n; i++) hex += (i ? ' ' : '') + (this[i] < 16 ? '0' : '') + this[i].toString(16);
  const more = this.length > n ? ' ... ' + (this.length - n) + ' more byte' + (this.length - n > 1 ? 's' : '') : '';
  return '<Buffer' + (hex ? ' ' + hex : '') + more + '>';
};

export const SlowBuffer = function SlowBuffer(size) {
  return Buffer.allocUnsafeSlow(size);
};
export const Blob = globalThis.Blob;
export const File = globalThis.File;
export const atob = (s) => globalThis.atob(s);
export const btoa = (s) => globalThis.btoa(s);
export function isUtf8(input) {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(input);
    return true;
  } catch {
    return false;
  }
}
export function isAscii(input) {
  const bytes = input instanceof ArrayBuffer ? new Uint8Array(input) : new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
  for (let i = 0; i < bytes.length; i++) if (bytes[i] > 127) return false;
  return true;
}
export function transcode(source, fromEnc, toEnc) {
  const s = bytesToString(source, encodingOrThrow(fromEnc));
  return Buffer.from(s, toEnc);
}

const buffer = {
  Buffer, SlowBuffer, Blob, File, atob, btoa, constants, kMaxLength, kStringMaxLength,
  INSPECT_MAX_BYTES, isUtf8, isAscii, transcode, isEncoding,
};
export default buffer;
export { buffer as 'module.exports' };
