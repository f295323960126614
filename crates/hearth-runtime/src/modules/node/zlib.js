import { received } from 'hearth:node-internal';
// node:zlib — deflate/inflate (zlib, raw and gzip formats, and unzip that
// detects which) and brotli, in Node's three forms: *Sync functions,
// callback functions, and Transform streams (createGzip() ...), over the
// runtime's Rust codecs. The compressed bytes are valid streams of each
// format but need not equal zlib's byte for byte (a different compressor).
// maxOutputLength defaults to 128 MiB per call (Node: 4 GiB), a bound on
// what hostile input can make one call allocate.
import { Buffer } from 'node:buffer';
import { Transform } from 'node:stream';

const newCodec = globalThis.__hearth_webapi.zlibCodec;

export const constants = Object.freeze({
  Z_NO_FLUSH: 0, Z_PARTIAL_FLUSH: 1, Z_SYNC_FLUSH: 2, Z_FULL_FLUSH: 3, Z_FINISH: 4, Z_BLOCK: 5,
  Z_OK: 0, Z_STREAM_END: 1, Z_NEED_DICT: 2, Z_ERRNO: -1, Z_STREAM_ERROR: -2, Z_DATA_ERROR: -3,
  Z_MEM_ERROR: -4, Z_BUF_ERROR: -5, Z_VERSION_ERROR: -6,
  Z_NO_COMPRESSION: 0, Z_BEST_SPEED: 1, Z_BEST_COMPRESSION: 9, Z_DEFAULT_COMPRESSION: -1,
  Z_FILTERED: 1, Z_HUFFMAN_ONLY: 2, Z_RLE: 3, Z_FIXED: 4, Z_DEFAULT_STRATEGY: 0, ZLIB_VERNUM: 4865,
  DEFLATE: 1, INFLATE: 2, GZIP: 3, GUNZIP: 4, DEFLATERAW: 5, INFLATERAW: 6, UNZIP: 7,
  BROTLI_DECODE: 8, BROTLI_ENCODE: 9,
  Z_MIN_WINDOWBITS: 8, Z_MAX_WINDOWBITS: 15, Z_DEFAULT_WINDOWBITS: 15,
  Z_MIN_CHUNK: 64, Z_MAX_CHUNK: Infinity, Z_DEFAULT_CHUNK: 16384,
  Z_MIN_MEMLEVEL: 1, Z_MAX_MEMLEVEL: 9, Z_DEFAULT_MEMLEVEL: 8,
  Z_MIN_LEVEL: -1, Z_MAX_LEVEL: 9, Z_DEFAULT_LEVEL: -1,
  BROTLI_OPERATION_PROCESS: 0, BROTLI_OPERATION_FLUSH: 1, BROTLI_OPERATION_FINISH: 2, BROTLI_OPERATION_EMIT_METADATA: 3,
  BROTLI_PARAM_MODE: 0, BROTLI_MODE_GENERIC: 0, BROTLI_MODE_TEXT: 1, BROTLI_MODE_FONT: 2, BROTLI_DEFAULT_MODE: 0,
  BROTLI_PARAM_QUALITY: 1, BROTLI_MIN_QUALITY: 0, BROTLI_MAX_QUALITY: 11, BROTLI_DEFAULT_QUALITY: 11,
  BROTLI_PARAM_LGWIN: 2, BROTLI_MIN_WINDOW_BITS: 10, BROTLI_MAX_WINDOW_BITS: 24, BROTLI_LARGE_MAX_WINDOW_BITS: 30,
  BROTLI_DEFAULT_WINDOW: 22, BROTLI_PARAM_LGBLOCK: 3, BROTLI_MIN_INPUT_BLOCK_BITS: 16, BROTLI_MAX_INPUT_BLOCK_BITS: 24,
  BROTLI_PARAM_DISABLE_LITERAL_CONTEXT_MODELING: 4, BROTLI_PARAM_SIZE_HINT: 5, BROTLI_PARAM_LARGE_WINDOW: 6,
  BROTLI_PARAM_NPOSTFIX: 7, BROTLI_PARAM_NDIRECT: 8,
  BROTLI_DECODER_PARAM_DISABLE_RING_BUFFER_REALLOCATION: 0, BROTLI_DECODER_PARAM_LARGE_WINDOW: 1,
});

const DEFAULT_MAX_OUTPUT = 128 * 1024 * 1024;
const Z_FINISH = 4;

function argError(name, value, want) {
  const e = new TypeError('The "' + name + '" argument must be ' + want + '.' + received(value));
  e.code = 'ERR_INVALID_ARG_TYPE';
  return e;
}

function rangeError(name, value, range) {
  const e = new RangeError('The value of "' + name + '" is out of range. It must be ' + range + '. Received ' + value);
  e.code = 'ERR_OUT_OF_RANGE';
  return e;
}

function inputBytes(buffer) {
  if (typeof buffer === 'string') return Buffer.from(buffer);
  if (buffer instanceof ArrayBuffer) return new Uint8Array(buffer);
  if (ArrayBuffer.isView(buffer)) return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  throw argError('buffer', buffer, 'of type string or an instance of Buffer, TypedArray, DataView, or ArrayBuffer');
}

function isBrotli(kind) {
  return kind === 'brotliCompress' || kind === 'brotliDecompress';
}

// The codec for `kind` with Node's option checks.
function codecFor(kind, opts) {
  const o = opts || {};
  let level = -1;
  let window = 15;
  if (isBrotli(kind)) {
    const params = o.params || {};
    level = params[constants.BROTLI_PARAM_QUALITY] ?? constants.BROTLI_DEFAULT_QUALITY;
    window = params[constants.BROTLI_PARAM_LGWIN] ?? constants.BROTLI_DEFAULT_WINDOW;
    if (!Number.isInteger(level) || level < 0 || level > 11) throw rangeError('params[BROTLI_PARAM_QUALITY]', level, '>= 0 and <= 11');
  } else if (o.level !== undefined) {
    level = o.level;
    if (!Number.isInteger(level) || level < -1 || level > 9) throw rangeError('options.level', level, '>= -1 and <= 9');
  }
  if (o.windowBits !== undefined && !isBrotli(kind)) {
    const wb = o.windowBits;
    if (!Number.isInteger(wb) || ((wb < 8 || wb > 15) && !(wb === 0 && kind !== 'deflate' && kind !== 'gzip' && kind !== 'deflateRaw'))) {
      throw rangeError('options.windowBits', wb, '>= 8 and <= 15');
    }
  }
  if (o.maxOutputLength !== undefined && (!Number.isInteger(o.maxOutputLength) || o.maxOutputLength < 1)) {
    throw rangeError('options.maxOutputLength', o.maxOutputLength, '>= 1 and <= 4294967296');
  }
  return newCodec(kind, level, window);
}

function processSync(kind, buffer, opts) {
  const codec = codecFor(kind, opts);
  const limit = (opts && opts.maxOutputLength) || DEFAULT_MAX_OUTPUT;
  const raw = codec.push(inputBytes(buffer), Z_FINISH, limit);
  const out = Buffer.from(raw.buffer, raw.byteOffset, raw.length);
  return opts && opts.info ? { buffer: out, engine: codec } : out;
}

function processAsync(kind, buffer, opts, callback) {
  if (typeof opts === 'function') {
    callback = opts;
    opts = {};
  }
  if (typeof callback !== 'function') throw argError('callback', callback, 'of type function');
  let result;
  try {
    result = processSync(kind, buffer, opts);
  } catch (err) {
    queueMicrotask(() => callback(err));
    return;
  }
  queueMicrotask(() => callback(null, result));
}

const kFlush = Symbol('kFlush');

// The stream form: each written chunk goes through the codec; end()
// finishes the stream; flush() pushes out what is buffered.
function ZlibBase(kind, opts) {
  this._kind = kind;
  this._codec = codecFor(kind, opts);
  this._limit = (opts && opts.maxOutputLength) || DEFAULT_MAX_OUTPUT;
  this._finishFlush = opts && opts.finishFlush !== undefined ? opts.finishFlush : Z_FINISH;
  this._defaultFlush = opts && opts.flush !== undefined ? opts.flush : 0;
  this.bytesWritten = 0;
  this._closed = false;
  Transform.call(this, { ...opts, objectMode: false, readableObjectMode: false, writableObjectMode: false });
}
Object.setPrototypeOf(ZlibBase.prototype, Transform.prototype);

ZlibBase.prototype._run = function (chunk, flush) {
  const out = this._codec.push(chunk, flush, this._limit);
  if (out.length) this.push(Buffer.from(out.buffer, out.byteOffset, out.length));
};

ZlibBase.prototype._transform = function (chunk, encoding, callback) {
  try {
    if (chunk[kFlush] !== undefined) {
      this._run(new Uint8Array(0), chunk[kFlush]);
    } else {
      this.bytesWritten += chunk.length;
      this._run(chunk, this._defaultFlush);
    }
  } catch (err) {
    callback(err);
    return;
  }
  callback();
};

ZlibBase.prototype._flush = function (callback) {
  try {
    this._run(new Uint8Array(0), this._finishFlush === Z_FINISH ? Z_FINISH : this._finishFlush);
  } catch (err) {
    callback(err);
    return;
  }
  callback();
};

ZlibBase.prototype.flush = function (kind, callback) {
  if (typeof kind === 'function' || kind === undefined) {
    callback = kind;
    kind = constants.Z_FULL_FLUSH;
  }
  if (this.writableEnded) {
    if (typeof callback === 'function') queueMicrotask(callback);
    return;
  }
  const marker = Buffer.alloc(0);
  marker[kFlush] = isBrotli(this._kind) ? constants.Z_SYNC_FLUSH : kind;
  this.write(marker, callback ? () => callback() : undefined);
};

ZlibBase.prototype.params = function (level, strategy, callback) {
  const e = new Error('zlib params() is not supported in Hearth');
  e.code = 'ERR_METHOD_NOT_IMPLEMENTED';
  if (typeof callback === 'function') queueMicrotask(() => callback(e));
  else throw e;
};

ZlibBase.prototype.reset = function () {
  this._codec = newCodec(this._kind, -1, 15);
};

ZlibBase.prototype.close = function (callback) {
  if (typeof callback === 'function') this.once('close', callback);
  this._closed = true;
  this.destroy();
};

Object.defineProperty(ZlibBase.prototype, '_handle', {
  get() {
    return this._closed ? null : this._codec;
  },
  configurable: true,
});

function defineCodecClass(name, kind) {
  const C = {
    [name]: function (opts) {
      if (!(this instanceof C)) return new C(opts);
      ZlibBase.call(this, kind, opts);
    },
  }[name];
  Object.setPrototypeOf(C.prototype, ZlibBase.prototype);
  return C;
}

export const Deflate = defineCodecClass('Deflate', 'deflate');
export const Inflate = defineCodecClass('Inflate', 'inflate');
export const Gzip = defineCodecClass('Gzip', 'gzip');
export const Gunzip = defineCodecClass('Gunzip', 'gunzip');
export const DeflateRaw = defineCodecClass('DeflateRaw', 'deflateRaw');
export const InflateRaw = defineCodecClass('InflateRaw', 'inflateRaw');
export const Unzip = defineCodecClass('Unzip', 'unzip');
export const BrotliCompress = defineCodecClass('BrotliCompress', 'brotliCompress');
export const BrotliDecompress = defineCodecClass('BrotliDecompress', 'brotliDecompress');

export const createDeflate = (o) => new Deflate(o);
export const createInflate = (o) => new Inflate(o);
export const createGzip = (o) => new Gzip(o);
export const createGunzip = (o) => new Gunzip(o);
export const createDeflateRaw = (o) => new DeflateRaw(o);
export const createInflateRaw = (o) => new InflateRaw(o);
export const createUnzip = (o) => new Unzip(o);
export const createBrotliCompress = (o) => new BrotliCompress(o);
export const createBrotliDecompress = (o) => new BrotliDecompress(o);

export const deflateSync = (b, o) => processSync('deflate', b, o);
export const inflateSync = (b, o) => processSync('inflate', b, o);
export const gzipSync = (b, o) => processSync('gzip', b, o);
export const gunzipSync = (b, o) => processSync('gunzip', b, o);
export const deflateRawSync = (b, o) => processSync('deflateRaw', b, o);
export const inflateRawSync = (b, o) => processSync('inflateRaw', b, o);
export const unzipSync = (b, o) => processSync('unzip', b, o);
export const brotliCompressSync = (b, o) => processSync('brotliCompress', b, o);
export const brotliDecompressSync = (b, o) => processSync('brotliDecompress', b, o);

export const deflate = (b, o, cb) => processAsync('deflate', b, o, cb);
export const inflate = (b, o, cb) => processAsync('inflate', b, o, cb);
export const gzip = (b, o, cb) => processAsync('gzip', b, o, cb);
export const gunzip = (b, o, cb) => processAsync('gunzip', b, o, cb);
export const deflateRaw = (b, o, cb) => processAsync('deflateRaw', b, o, cb);
export const inflateRaw = (b, o, cb) => processAsync('inflateRaw', b, o, cb);
export const unzip = (b, o, cb) => processAsync('unzip', b, o, cb);
export const brotliCompress = (b, o, cb) => processAsync('brotliCompress', b, o, cb);
export const brotliDecompress = (b, o, cb) => processAsync('brotliDecompress', b, o, cb);

// util.promisify(zlib.gzip) etc. work through the callback form.

let crcTable;
// CRC-32 (ISO-HDLC, as gzip), continuing from `value` (Node 22).
export function crc32(data, value = 0) {
  if (!crcTable) {
    crcTable = new Int32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c;
    }
  }
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) throw rangeError('value', value, '>= 0 and <= 4294967295');
  const bytes = inputBytes(data);
  let c = ~value;
  for (let i = 0; i < bytes.length; i++) c = crcTable[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

export const codes = Object.freeze({
  Z_OK: 0, Z_STREAM_END: 1, Z_NEED_DICT: 2, Z_ERRNO: -1, Z_STREAM_ERROR: -2, Z_DATA_ERROR: -3,
  Z_MEM_ERROR: -4, Z_BUF_ERROR: -5, Z_VERSION_ERROR: -6,
  0: 'Z_OK', 1: 'Z_STREAM_END', 2: 'Z_NEED_DICT', '-1': 'Z_ERRNO', '-2': 'Z_STREAM_ERROR', '-3': 'Z_DATA_ERROR',
  '-4': 'Z_MEM_ERROR', '-5': 'Z_BUF_ERROR', '-6': 'Z_VERSION_ERROR',
});

const zlib = {
  constants, codes, crc32, Deflate, Inflate, Gzip, Gunzip, DeflateRaw, InflateRaw, Unzip, BrotliCompress,
  BrotliDecompress, createDeflate, createInflate, createGzip, createGunzip, createDeflateRaw, createInflateRaw,
  createUnzip, createBrotliCompress, createBrotliDecompress, deflateSync, inflateSync, gzipSync, gunzipSync,
  deflateRawSync, inflateRawSync, unzipSync, brotliCompressSync, brotliDecompressSync, deflate, inflate, gzip,
  gunzip, deflateRaw, inflateRaw, unzip, brotliCompress, brotliDecompress,
};
for (const [k, v] of Object.entries(constants)) {
  if (k.startsWith('Z_') && !(k in zlib)) zlib[k] = v;
}
export default zlib;
export { zlib as 'module.exports' };
