import { received } from 'hearth:node-internal';
// node:util — promisify/callbackify, format and inspect (readable, close to
// Node's layout but not byte-exact), types, deep equality, inherits.
import types from 'node:util/types';

export { types };
export const TextEncoder = globalThis.TextEncoder;
export const TextDecoder = globalThis.TextDecoder;

const kCustomPromisify = Symbol.for('nodejs.util.promisify.custom');
const kInspectCustom = Symbol.for('nodejs.util.inspect.custom');

function invalidArg(name, expected, value) {
  const e = new TypeError('The "' + name + '" argument must be ' + expected + '.' + received(value));
  e.code = 'ERR_INVALID_ARG_TYPE';
  return e;
}

export function promisify(original) {
  if (typeof original !== 'function') throw invalidArg('original', 'of type function', original);
  if (original[kCustomPromisify]) {
    const fn = original[kCustomPromisify];
    if (typeof fn !== 'function') throw invalidArg('util.promisify.custom', 'of type function', fn);
    return Object.defineProperty(fn, kCustomPromisify, { value: fn, enumerable: false, writable: false, configurable: true });
  }
  function fn(...args) {
    return new Promise((resolve, reject) => {
      Reflect.apply(original, this, [...args, (err, ...values) => {
        if (err) return reject(err);
        resolve(values[0]);
      }]);
    });
  }
  Object.setPrototypeOf(fn, Object.getPrototypeOf(original));
  Object.defineProperty(fn, kCustomPromisify, { value: fn, enumerable: false, writable: false, configurable: true });
  return Object.defineProperties(fn, Object.getOwnPropertyDescriptors(original));
}
promisify.custom = kCustomPromisify;

export function callbackify(original) {
  if (typeof original !== 'function') throw invalidArg('original', 'of type function', original);
  function callbackified(...args) {
    const cb = args.pop();
    if (typeof cb !== 'function') throw invalidArg('last argument', 'of type function', cb);
    const onRejected = (reason) => {
      if (!reason) {
        const e = new Error('Promise was rejected with a falsy value');
        e.code = 'ERR_FALSY_VALUE_REJECTION';
        e.reason = reason;
        reason = e;
      }
      cb(reason);
    };
    Reflect.apply(original, this, args).then((v) => queueMicrotask(() => cb(null, v)), (r) => queueMicrotask(() => onRejected(r)));
  }
  Object.defineProperties(callbackified, Object.getOwnPropertyDescriptors(original));
  return callbackified;
}

export function inherits(ctor, superCtor) {
  if (typeof ctor !== 'function') throw invalidArg('ctor', 'of type function', ctor);
  if (typeof superCtor !== 'function') throw invalidArg('superCtor', 'of type function', superCtor);
  if (superCtor.prototype === undefined) throw invalidArg('superCtor.prototype', 'of type object', undefined);
  Object.defineProperty(ctor, 'super_', { value: superCtor, writable: true, configurable: true });
  Object.setPrototypeOf(ctor.prototype, superCtor.prototype);
}

const warned = new Set();
export function deprecate(fn, msg, code) {
  let done = false;
  function deprecated(...args) {
    if (!done && !(code && warned.has(code))) {
      done = true;
      if (code) warned.add(code);
      console.warn('[' + (code || 'DEP0000') + '] DeprecationWarning: ' + msg);
    }
    return new.target ? Reflect.construct(fn, args, new.target) : Reflect.apply(fn, this, args);
  }
  Object.setPrototypeOf(deprecated, fn);
  if (fn.prototype) deprecated.prototype = fn.prototype;
  return deprecated;
}

const styles = {
  special: 'cyan', number: 'yellow', bigint: 'yellow', boolean: 'yellow', undefined: 'grey',
  null: 'bold', string: 'green', symbol: 'green', date: 'magenta', regexp: 'red', module: 'underline',
};
const colors = {
  bold: [1, 22], italic: [3, 23], underline: [4, 24], inverse: [7, 27], white: [37, 39], grey: [90, 39],
  black: [30, 39], blue: [34, 39], cyan: [36, 39], green: [32, 39], magenta: [35, 39], red: [31, 39], yellow: [33, 39],
};

function quote(s) {
  const q = !s.includes("'") ? "'" : !s.includes('"') ? '"' : !s.includes('`') ? '`' : "'";
  const escaped = s.replace(/[\\\n\t\r\b\f\v]/g, (c) => ({ '\\': '\\\\', '\n': '\\n', '\t': '\\t', '\r': '\\r', '\b': '\\b', '\f': '\\f', '\v': '\\v' })[c]);
  return q + (q === "'" ? escaped.replace(/'/g, "\\'") : escaped) + q;
}

function keyString(k) {
  if (typeof k === 'symbol') return '[' + k.toString() + ']';
  return /^[A-Za-z_$][\w$]*$/.test(k) ? k : quote(k);
}

function className(v) {
  const proto = Object.getPrototypeOf(v);
  if (proto === null) return '[Object: null prototype]';
  const ctor = proto && proto.constructor;
  return ctor && typeof ctor.name === 'string' ? ctor.name : 'Object';
}

function formatValue(ctx, v, depth) {
  const stylize = (s, t) => ctx.stylize(s, t);
  if (v === null) return stylize('null', 'null');
  if (v === undefined) return stylize('undefined', 'undefined');
  switch (typeof v) {
    case 'string': return stylize(depth === 0 && !ctx.quoteTop ? v : quote(v), 'string');
    case 'number': return stylize(Object.is(v, -0) ? '-0' : String(v), 'number');
    case 'bigint': return stylize(v + 'n', 'bigint');
    case 'boolean': return stylize(String(v), 'boolean');
    case 'symbol': return stylize(v.toString(), 'symbol');
  }
  if (ctx.customInspect && typeof v[kInspectCustom] === 'function' && v[kInspectCustom] !== inspect) {
    const r = v[kInspectCustom](ctx.depth - depth, { ...ctx.opts, stylize }, inspect);
    if (r !== v) return typeof r === 'string' ? r : formatValue(ctx, r, depth);
  }
  if (ctx.seen.includes(v)) return stylize('[Circular *1]', 'special');
  if (typeof v === 'function') {
    const base = (types.isAsyncFunction(v) ? 'AsyncFunction' : types.isGeneratorFunction(v) ? 'GeneratorFunction' :
      /^class\s/.test(Function.prototype.toString.call(v)) ? 'class' : 'Function');
    const label = base === 'class' ? '[class ' + (v.name || '(anonymous)') + ']' : '[' + base + (v.name ? ': ' + v.name : ' (anonymous)') + ']';
    const keys = Object.keys(v);
    if (keys.length === 0 || depth > ctx.depth) return stylize(label, 'special');
    return formatObject(ctx, v, depth, keys, stylize(label, 'special') + ' {', '}');
  }
  if (v instanceof Date) return stylize(Number.isNaN(v.getTime()) ? 'Invalid Date' : v.toISOString(), 'date');
  if (v instanceof RegExp) return stylize(String(v), 'regexp');
  if (v instanceof Error) {
    const stack = v.stack && String(v.stack);
    let head = (v.name || 'Error') + (v.message ? ': ' + v.message : '');
    if (stack) head = stack.startsWith(head) ? stack : head + '\n' + stack.replace(/\n$/, '');
    const keys = Object.keys(v).filter((k) => k !== 'stack' && k !== 'message');
    if (keys.length === 0 || depth > ctx.depth) return head;
    return formatObject(ctx, v, depth, keys, head + ' {', '}');
  }
  if (depth > ctx.depth) {
    return stylize(Array.isArray(v) ? '[Array]' : '[' + className(v) + ']', 'special');
  }
  if (types.isPromise(v)) return 'Promise { ' + stylize('<unknown>', 'special') + ' }';
  if (types.isWeakMap(v) || types.isWeakSet(v)) return className(v) + ' { ' + stylize('<items unknown>', 'special') + ' }';
  ctx.seen.push(v);
  try {
    if (Array.isArray(v)) {
      const items = [];
      const n = Math.min(v.length, ctx.maxArrayLength);
      for (let i = 0; i < n; i++) items.push(i in v ? formatValue(ctx, v[i], depth + 1) : '<1 empty item>');
      if (v.length > n) items.push('... ' + (v.length - n) + ' more item' + (v.length - n > 1 ? 's' : ''));
      for (const k of Object.keys(v)) if (!/^\d+$/.test(k)) items.push(keyString(k) + ': ' + formatValue(ctx, v[k], depth + 1));
      if (ctx.showHidden) items.push('[length]: ' + formatValue(ctx, v.length, depth + 1));
      const prefix = className(v) === 'Array' ? '' : className(v) + '(' + v.length + ') ';
      return wrap(ctx, items, prefix + '[', ']', depth);
    }
    if (ArrayBuffer.isView(v) && !(v instanceof DataView)) {
      const items = [];
      const n = Math.min(v.length, ctx.maxArrayLength);
      for (let i = 0; i < n; i++) items.push(formatValue(ctx, v[i], depth + 1));
      if (v.length > n) items.push('... ' + (v.length - n) + ' more item' + (v.length - n > 1 ? 's' : ''));
      return wrap(ctx, items, className(v) + '(' + v.length + ') [', ']', depth);
    }
    if (v instanceof ArrayBuffer) {
      const bytes = new Uint8Array(v, 0, Math.min(v.byteLength, 50));
      const hex = Array.from(bytes, (b) => (b < 16 ? '0' : '') + b.toString(16)).join(' ');
      return 'ArrayBuffer { [Uint8Contents]: <' + hex + (v.byteLength > 50 ? ' ... ' + (v.byteLength - 50) + ' more bytes' : '') + '>, byteLength: ' + v.byteLength + ' }';
    }
    if (v instanceof Map) {
      const items = [];
      for (const [k, val] of v) items.push(formatValue(ctx, k, depth + 1) + ' => ' + formatValue(ctx, val, depth + 1));
      return wrap(ctx, items, className(v) + '(' + v.size + ') {', '}', depth);
    }
    if (v instanceof Set) {
      const items = [];
      for (const k of v) items.push(formatValue(ctx, k, depth + 1));
      return wrap(ctx, items, className(v) + '(' + v.size + ') {', '}', depth);
    }
    const keys = ctx.showHidden ? Reflect.ownKeys(v) : [...Object.keys(v), ...Object.getOwnPropertySymbols(v).filter((s) => Object.prototype.propertyIsEnumerable.call(v, s))];
    const name = className(v);
    let open = name === 'Object' ? '{' : name + ' {';
    if (v instanceof Number || v instanceof String || v instanceof Boolean) {
      open = '[' + name + ': ' + formatValue(ctx, v.valueOf(), depth + 1) + ']' + (keys.length ? ' {' : '');
      if (v instanceof String) keys.splice(0, keys.length, ...keys.filter((k) => !/^\d+$/.test(k)));
      if (!keys.length) return open;
    }
    return formatObject(ctx, v, depth, keys, open, '}', true);
  } finally {
    ctx.seen.pop();
  }
}

function formatObject(ctx, v, depth, keys, open, close, pushed) {
  if (!pushed) ctx.seen.push(v);
  try {
    const items = keys.map((k) => {
      const desc = Object.getOwnPropertyDescriptor(v, k);
      let val;
      if (desc && desc.get) val = ctx.stylize(desc.set ? '[Getter/Setter]' : '[Getter]', 'special');
      else if (desc && desc.set) val = ctx.stylize('[Setter]', 'special');
      else val = formatValue(ctx, v[k], depth + 1);
      const key = desc && !desc.enumerable ? '[' + (typeof k === 'symbol' ? k.toString() : k) + ']' : keyString(k);
      return key + ': ' + val;
    });
    return wrap(ctx, items, open, close, depth);
  } finally {
    if (!pushed) ctx.seen.pop();
  }
}

function wrap(ctx, items, open, close, depth) {
  if (items.length === 0) {
    if (open.endsWith('{') && open.length > 1) return open + close;
    return open + close;
  }
  const single = open + ' ' + items.join(', ') + ' ' + close;
  const indent = '  '.repeat(depth);
  if (ctx.compact !== false && single.length + indent.length <= ctx.breakLength && !items.some((i) => i.includes('\n'))) {
    return open === '[' ? '[ ' + items.join(', ') + ' ]' : single;
  }
  return open + '\n' + items.map((i) => indent + '  ' + i.replace(/\n/g, '\n' + indent + '  ')).join(',\n') + '\n' + indent + close;
}

export function inspect(value, opts) {
  let options = {};
  if (typeof opts === 'boolean') options = { showHidden: opts, depth: arguments[2], colors: arguments[3] };
  else if (opts) options = opts;
  const ctx = {
    opts: options,
    depth: options.depth === undefined ? 2 : options.depth === null ? Infinity : options.depth,
    showHidden: !!options.showHidden,
    customInspect: options.customInspect !== false,
    maxArrayLength: options.maxArrayLength === undefined ? 100 : options.maxArrayLength === null ? Infinity : options.maxArrayLength,
    breakLength: options.breakLength === undefined ? 80 : options.breakLength,
    compact: options.compact === undefined ? 3 : options.compact,
    quoteTop: true,
    seen: [],
    stylize: options.colors
      ? (s, t) => {
          const c = colors[inspect.styles[t]];
          return c ? '\u001b[' + c[0] + 'm' + s + '\u001b[' + c[1] + 'm' : s;
        }
      : (s) => s,
  };
  return formatValue(ctx, value, 0);
}
inspect.custom = kInspectCustom;
inspect.styles = styles;
inspect.colors = colors;
inspect.defaultOptions = { depth: 2, colors: false, showHidden: false, customInspect: true, maxArrayLength: 100, breakLength: 80, compact: 3 };

export function formatWithOptions(inspectOptions, ...args) {
  const first = args[0];
  let a = 0;
  let out = '';
  if (typeof first === 'string') {
    if (args.length === 1) return first;
    let last = 0;
    a = 1;
    for (let i = 0; i < first.length - 1; i++) {
      if (first.charCodeAt(i) !== 37) continue; // '%'
      const c = first[i + 1];
      if (c === '%') {
        out += first.slice(last, i) + '%';
        last = i + 2;
        i++;
        continue;
      }
      if (a >= args.length || !'sdifjoOc'.includes(c)) continue;
      const arg = args[a];
      let s;
      switch (c) {
        case 's':
          if (typeof arg === 'bigint') s = arg + 'n';
          else if (typeof arg === 'symbol') s = String(arg);
          else if (typeof arg === 'object' && arg !== null && !(arg instanceof Error && false)) {
            s = inspect(arg, { ...inspectOptions, depth: 0, colors: false, compact: 3 });
          } else s = String(arg);
          break;
        case 'd':
          s = typeof arg === 'bigint' ? arg + 'n' : typeof arg === 'symbol' ? 'NaN' : formatNumber(Number(arg));
          break;
        case 'i':
          s = typeof arg === 'bigint' ? arg + 'n' : typeof arg === 'symbol' ? 'NaN' : formatNumber(parseInt(arg));
          break;
        case 'f':
          s = typeof arg === 'symbol' ? 'NaN' : String(parseFloat(arg));
          break;
        case 'j':
          try {
            s = JSON.stringify(arg);
          } catch (e) {
            s = '[Circular]';
          }
          break;
        case 'o':
          s = inspect(arg, { ...inspectOptions, showHidden: true, depth: 4 });
          break;
        case 'O':
          s = inspect(arg, inspectOptions);
          break;
        case 'c':
          s = '';
          break;
      }
      out += first.slice(last, i) + s;
      last = i + 2;
      i++;
      a++;
    }
    out += first.slice(last);
  }
  for (; a < args.length; a++) {
    const v = args[a];
    out += (out || a > 0 ? ' ' : '') + (typeof v === 'string' ? v : inspect(v, inspectOptions));
  }
  return out;
}
function formatNumber(n) {
  return Object.is(n, -0) ? '-0' : String(n);
}

export function format(...args) {
  return formatWithOptions(undefined, ...args);
}

export function isDeepStrictEqual(a, b) {
  return deepEqual(a, b, true, []);
}

export function deepEqual(a, b, strict, memo) {
  if (strict ? Object.is(a, b) : a == b || (a !== a && b !== b)) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) {
    return false;
  }
  if (strict && Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false;
  const ta = Object.prototype.toString.call(a);
  if (ta !== Object.prototype.toString.call(b)) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  for (const [x, y] of memo) if (x === a && y === b) return true;
  memo.push([a, b]);
  try {
    if (a instanceof Date) {
      if (a.getTime() !== b.getTime()) return false;
    } else if (a instanceof RegExp) {
      if (String(a) !== String(b) || a.lastIndex !== b.lastIndex) return false;
    } else if (a instanceof Error) {
      if (a.message !== b.message || a.name !== b.name) return false;
    } else if (ArrayBuffer.isView(a)) {
      if (a.byteLength !== b.byteLength) return false;
      const x = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
      const y = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
      for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
      if (!(a instanceof DataView)) {
        const ka = Object.keys(a).filter((k) => !/^\d+$/.test(k));
        const kb = Object.keys(b).filter((k) => !/^\d+$/.test(k));
        if (ka.length !== kb.length) return false;
        return ka.every((k) => deepEqual(a[k], b[k], strict, memo));
      }
      return true;
    } else if (a instanceof ArrayBuffer) {
      if (a.byteLength !== b.byteLength) return false;
      return deepEqual(new Uint8Array(a), new Uint8Array(b), strict, memo);
    } else if (a instanceof Number || a instanceof String || a instanceof Boolean) {
      if (!Object.is(a.valueOf(), b.valueOf())) return false;
    }
    if (a instanceof Map) {
      if (a.size !== b.size) return false;
      for (const [k, v] of a) {
        if (b.has(k)) {
          if (!deepEqual(v, b.get(k), strict, memo)) return false;
        } else {
          let found = false;
          for (const [k2, v2] of b) {
            if (deepEqual(k, k2, strict, memo) && deepEqual(v, v2, strict, memo)) {
              found = true;
              break;
            }
          }
          if (!found) return false;
        }
      }
    } else if (a instanceof Set) {
      if (a.size !== b.size) return false;
      for (const v of a) {
        if (b.has(v)) continue;
        if (typeof v !== 'object' || v === null) {
          if (strict) return false;
        }
        let found = false;
        for (const w of b) {
          if (deepEqual(v, w, strict, memo)) {
            found = true;
            break;
          }
        }
        if (!found) return false;
      }
    }
    const ka = Object.keys(a);
    const kb = Object.keys(b);
    if (ka.length !== kb.length) return false;
    for (const k of ka) {
      if (!Object.prototype.hasOwnProperty.call(b, k)) return false;
      if (!deepEqual(a[k], b[k], strict, memo)) return false;
    }
    if (strict) {
      const sa = Object.getOwnPropertySymbols(a).filter((s) => Object.prototype.propertyIsEnumerable.call(a, s));
      const sb = Object.getOwnPropertySymbols(b).filter((s) => Object.prototype.propertyIsEnumerable.call(b, s));
      if (sa.length !== sb.length) return false;
      for (const s of sa) if (!deepEqual(a[s], b[s], strict, memo)) return false;
    }
    return true;
  } finally {
    memo.pop();
  }
}

export function isArray(v) { return Array.isArray(v); }
export function isBoolean(v) { return typeof v === 'boolean'; }
export function isNull(v) { return v === null; }
export function isNullOrUndefined(v) { return v === null || v === undefined; }
export function isNumber(v) { return typeof v === 'number'; }
export function isString(v) { return typeof v === 'string'; }
export function isSymbol(v) { return typeof v === 'symbol'; }
export function isUndefined(v) { return v === undefined; }
export function isRegExp(v) { return v instanceof RegExp; }
export function isObject(v) { return v !== null && typeof v === 'object'; }
export function isDate(v) { return v instanceof Date; }
export function isError(v) { return v instanceof Error; }
export function isFunction(v) { return typeof v === 'function'; }
export function isPrimitive(v) { return v === null || (typeof v !== 'object' && typeof v !== 'function'); }

export function debuglog() {
  const log = () => {};
  log.enabled = false;
  return log;
}
export const debug = debuglog;

export function toUSVString(s) {
  return typeof String.prototype.toWellFormed === 'function' ? String(s).toWellFormed() : String(s).replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd');
}

export function stripVTControlCharacters(s) {
  return String(s).replace(/\u001b\[[0-9;]*[A-Za-z]/g, '');
}

export function getSystemErrorName(code) {
  return 'Unknown system error ' + code;
}

export function aborted(signal, resource) {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
}

export class MIMEType {
  constructor(input) {
    const m = /^\s*([^\s/;]+)\/([^\s;]+)\s*(;.*)?$/.exec(String(input));
    if (!m) {
      const e = new TypeError('The MIME syntax for a type in "' + input + '" is invalid');
      e.code = 'ERR_INVALID_MIME_SYNTAX';
      throw e;
    }
    this.type = m[1].toLowerCase();
    this.subtype = m[2].toLowerCase();
    this.params = new Map();
    for (const p of (m[3] || '').split(';').slice(1)) {
      const i = p.indexOf('=');
      if (i > 0) this.params.set(p.slice(0, i).trim().toLowerCase(), p.slice(i + 1).trim().replace(/^"(.*)"$/, '$1'));
    }
  }
  get essence() { return this.type + '/' + this.subtype; }
  toString() {
    let s = this.essence;
    for (const [k, v] of this.params) s += ';' + k + '=' + v;
    return s;
  }
  toJSON() { return this.toString(); }
}

const util = {
  types, TextEncoder, TextDecoder, promisify, callbackify, inherits, deprecate, inspect, format,
  formatWithOptions, isDeepStrictEqual, isArray, isBoolean, isNull, isNullOrUndefined, isNumber,
  isString, isSymbol, isUndefined, isRegExp, isObject, isDate, isError, isFunction, isPrimitive,
  debuglog, debug, toUSVString, stripVTControlCharacters, getSystemErrorName, aborted, MIMEType,
};
export default util;
export { util as 'module.exports' };
