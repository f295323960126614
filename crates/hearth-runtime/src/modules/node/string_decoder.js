// node:string_decoder — decodes byte chunks without splitting characters.
import { Buffer } from 'node:buffer';

function normalize(enc) {
  const e = String(enc === undefined || enc === null ? 'utf8' : enc).toLowerCase();
  switch (e) {
    case 'utf8': case 'utf-8': return 'utf8';
    case 'ucs2': case 'ucs-2': case 'utf16le': case 'utf-16le': return 'utf16le';
    case 'latin1': case 'binary': return 'latin1';
    case 'base64': case 'base64url': case 'ascii': case 'hex': return e;
  }
  const err = new TypeError('Unknown encoding: ' + enc);
  err.code = 'ERR_UNKNOWN_ENCODING';
  throw err;
}

export class StringDecoder {
  constructor(encoding) {
    this.encoding = normalize(encoding);
    this._pending = new Uint8Array(0);
    if (this.encoding === 'utf8') this._utf8 = new TextDecoder('utf-8');
  }

  write(buf) {
    if (typeof buf === 'string') return buf;
    const bytes = buf instanceof Uint8Array ? buf : new Uint8Array(buf.buffer || buf, buf.byteOffset || 0, buf.byteLength);
    if (this._utf8) return this._utf8.decode(bytes, { stream: true });
    const all = concat(this._pending, bytes);
    const unit = this.encoding === 'utf16le' ? 2 : this.encoding === 'base64' || this.encoding === 'base64url' ? 3 : 1;
    let keep = all.length % unit;
    if (this.encoding === 'utf16le' && keep === 0 && all.length >= 2) {
      // Keep a lone high surrogate for the next chunk.
      const last = all[all.length - 2] | (all[all.length - 1] << 8);
      if (last >= 0xd800 && last <= 0xdbff) keep = 2;
    }
    this._pending = all.slice(all.length - keep);
    return Buffer.from(all.buffer, all.byteOffset, all.length - keep).toString(this.encoding);
  }

  end(buf) {
    let out = buf === undefined ? '' : this.write(buf);
    if (this._utf8) {
      out += this._utf8.decode();
      return out;
    }
    if (this._pending.length) {
      out += Buffer.from(this._pending).toString(this.encoding);
      this._pending = new Uint8Array(0);
    }
    return out;
  }

  text(buf, offset) {
    return this.write(buf.subarray(offset));
  }

  get lastNeed() { return 0; }
  get lastTotal() { return this._pending.length; }
}

function concat(a, b) {
  if (a.length === 0) return b;
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

const stringDecoder = { StringDecoder };
export default stringDecoder;
export { stringDecoder as 'module.exports' };
