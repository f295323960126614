// node:querystring — Node's legacy query-string codec.
const noEscape = /[A-Za-z0-9\-_.!~*'()]/;

export function escape(str) {
  if (typeof str !== 'string') str = typeof str === 'object' ? String(str) : str + '';
  let out = '';
  for (const ch of str) {
    if (noEscape.test(ch)) out += ch;
    else out += encodeURIComponent(ch);
  }
  return out;
}

export function unescape(s) {
  try {
    return decodeURIComponent(s);
  } catch {
    return unescapeBuffer(s);
  }
}

function unescapeBuffer(s) {
  // Decode the valid %XX runs byte-wise, leaving malformed ones as they are.
  const bytes = [];
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '%' && /^[0-9a-fA-F]{2}$/.test(s.substr(i + 1, 2))) {
      bytes.push(parseInt(s.substr(i + 1, 2), 16));
      i += 2;
    } else {
      for (const b of new TextEncoder().encode(s[i])) bytes.push(b);
    }
  }
  return new TextDecoder().decode(new Uint8Array(bytes));
}

function stringifyPrimitive(v) {
  if (typeof v === 'string') return v;
  if ((typeof v === 'number' && isFinite(v)) || typeof v === 'bigint') return '' + v;
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  return '';
}

export function stringify(obj, sep = '&', eq = '=', options) {
  const encode = (options && options.encodeURIComponent) || escape;
  if (obj === null || typeof obj !== 'object') return '';
  const parts = [];
  for (const k of Object.keys(obj)) {
    const v = obj[k];
    const ks = encode(stringifyPrimitive(k)) + eq;
    if (Array.isArray(v)) {
      for (const item of v) parts.push(ks + encode(stringifyPrimitive(item)));
    } else {
      parts.push(ks + encode(stringifyPrimitive(v)));
    }
  }
  return parts.join(sep);
}

export function parse(qs, sep = '&', eq = '=', options) {
  const obj = Object.create(null);
  if (typeof qs !== 'string' || qs.length === 0) return obj;
  const maxKeys = options && typeof options.maxKeys === 'number' ? options.maxKeys : 1000;
  const decode = (options && options.decodeURIComponent) || unescape;
  let parts = qs.split(sep || '&');
  if (maxKeys > 0) parts = parts.slice(0, maxKeys);
  for (const part of parts) {
    if (part.length === 0) continue;
    const i = part.indexOf(eq || '=');
    const rawKey = i >= 0 ? part.slice(0, i) : part;
    const rawVal = i >= 0 ? part.slice(i + (eq || '=').length) : '';
    const k = decode(rawKey.replace(/\+/g, ' '));
    const v = decode(rawVal.replace(/\+/g, ' '));
    if (!(k in obj)) obj[k] = v;
    else if (Array.isArray(obj[k])) obj[k].push(v);
    else obj[k] = [obj[k], v];
  }
  return obj;
}

export const decode = parse;
export const encode = stringify;

const querystring = { escape, unescape, stringify, parse, decode, encode, unescapeBuffer };
export default querystring;
export { querystring as 'module.exports' };
