// The `v8` queue message encoding: every value structuredClone() can copy,
// written as UTF-8 JSON in which each non-JSON value is a tagged object
// ({"$": tag, ...}). Objects are numbered in the order first met, so shared
// and circular references come back as the same object. Plain strings,
// finite numbers, booleans and null are written as themselves; plain objects
// and arrays are always tagged, so a "$" key in user data is never ambiguous.
(function () {
  "use strict";
  const ERRORS = { Error, EvalError, RangeError, ReferenceError, SyntaxError, TypeError, URIError };
  const VIEWS = {
    Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array,
    Float32Array, Float64Array, BigInt64Array, BigUint64Array, DataView,
  };

  function cloneError(v) {
    let what;
    try {
      what = typeof v === "symbol" || typeof v === "function" ? String(v) : Object.prototype.toString.call(v);
    } catch (_) {
      what = "value";
    }
    const message = what + " could not be cloned.";
    return typeof DOMException === "function"
      ? new DOMException(message, "DataCloneError")
      : Object.assign(new Error(message), { name: "DataCloneError" });
  }

  const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  function toBase64(bytes) {
    let out = "";
    let i = 0;
    for (; i + 2 < bytes.length; i += 3) {
      const n = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
      out += B64[n >> 18] + B64[(n >> 12) & 63] + B64[(n >> 6) & 63] + B64[n & 63];
    }
    if (i < bytes.length) {
      const n = (bytes[i] << 16) | ((i + 1 < bytes.length ? bytes[i + 1] : 0) << 8);
      out += B64[n >> 18] + B64[(n >> 12) & 63] + (i + 1 < bytes.length ? B64[(n >> 6) & 63] : "=") + "=";
    }
    return out;
  }
  function fromBase64(s) {
    const clean = s.replace(/=+$/, "");
    const out = new Uint8Array(Math.floor((clean.length * 3) / 4));
    let bits = 0, acc = 0, o = 0;
    for (let i = 0; i < clean.length; i++) {
      const v = B64.indexOf(clean[i]);
      if (v < 0) throw new TypeError("corrupt v8 queue message: bad base64");
      acc = (acc << 6) | v;
      bits += 6;
      if (bits >= 8) { bits -= 8; out[o++] = (acc >> bits) & 255; }
    }
    return out.buffer;
  }

  function number(n) {
    if (Number.isNaN(n)) return { $: "n", v: "NaN" };
    if (n === Infinity) return { $: "n", v: "Infinity" };
    if (n === -Infinity) return { $: "n", v: "-Infinity" };
    if (Object.is(n, -0)) return { $: "n", v: "-0" };
    return n;
  }

  function encode(v, seen) {
    switch (typeof v) {
      case "string": case "boolean": return v;
      case "number": return number(v);
      case "undefined": return { $: "u" };
      case "bigint": return { $: "bi", v: v.toString() };
      case "symbol": case "function": throw cloneError(v);
    }
    if (v === null) return null;
    if (seen.has(v)) return { $: "r", i: seen.get(v) };
    const id = seen.size;
    seen.set(v, id);
    const entries = (o) => Object.keys(o).map((k) => [k, encode(o[k], seen)]);
    if (Array.isArray(v)) return { $: "a", l: v.length, e: entries(v) };
    if (v instanceof Date) return { $: "d", v: number(v.getTime()) };
    if (v instanceof RegExp) return { $: "re", s: v.source, f: v.flags };
    if (v instanceof Boolean) return { $: "bo", v: v.valueOf() };
    if (v instanceof Number) return { $: "no", v: number(v.valueOf()) };
    if (v instanceof String) return { $: "so", v: v.valueOf() };
    if (typeof BigInt === "function" && v instanceof BigInt) return { $: "bio", v: v.valueOf().toString() };
    if (v instanceof ArrayBuffer) return { $: "ab", v: toBase64(new Uint8Array(v)) };
    if (ArrayBuffer.isView(v)) {
      const t = v.constructor && v.constructor.name;
      if (!Object.prototype.hasOwnProperty.call(VIEWS, t)) throw cloneError(v);
      const len = v instanceof DataView ? v.byteLength : v.length;
      return { $: "v", t, b: encode(v.buffer, seen), o: v.byteOffset, l: len };
    }
    if (v instanceof Map) return { $: "m", e: [...v].map(([k, x]) => [encode(k, seen), encode(x, seen)]) };
    if (v instanceof Set) return { $: "s", e: [...v].map((x) => encode(x, seen)) };
    if (v instanceof Error) {
      const out = { $: "er", n: String(v.name), m: String(v.message) };
      if (typeof v.stack === "string") out.st = v.stack;
      if ("cause" in v) out.c = encode(v.cause, seen);
      return out;
    }
    if (v instanceof Promise || v instanceof WeakMap || v instanceof WeakSet ||
        (typeof WeakRef === "function" && v instanceof WeakRef)) {
      throw cloneError(v);
    }
    return { $: "o", e: entries(v) };
  }

  function serialize(value) {
    return new TextEncoder().encode(JSON.stringify(encode(value, new Map())));
  }

  function num(x) {
    if (typeof x === "number") return x;
    switch (x && x.v) {
      case "NaN": return NaN;
      case "Infinity": return Infinity;
      case "-Infinity": return -Infinity;
      case "-0": return -0;
    }
    throw new TypeError("corrupt v8 queue message: bad number");
  }

  function decode(x, refs) {
    if (x === null || typeof x !== "object") return x;
    let out;
    const keep = (o) => { refs.push(o); return o; };
    switch (x.$) {
      case "u": return undefined;
      case "n": return num(x);
      case "bi": return BigInt(x.v);
      case "r": return refs[x.i];
      case "a":
        out = keep(new Array(x.l));
        for (const [k, v] of x.e) out[k] = decode(v, refs);
        return out;
      case "o":
        out = keep({});
        for (const [k, v] of x.e) out[k] = decode(v, refs);
        return out;
      case "d": return keep(new Date(num(x.v)));
      case "re": return keep(new RegExp(x.s, x.f));
      case "bo": return keep(new Boolean(x.v));
      case "no": return keep(new Number(num(x.v)));
      case "so": return keep(new String(x.v));
      case "bio": return keep(Object(BigInt(x.v)));
      case "ab": return keep(fromBase64(x.v));
      case "v": {
        const slot = refs.length;
        refs.push(null);
        const buf = decode(x.b, refs);
        const Ctor = VIEWS[x.t];
        if (Ctor === undefined) throw new TypeError("corrupt v8 queue message: unknown view " + x.t);
        out = new Ctor(buf, x.o, x.l);
        refs[slot] = out;
        return out;
      }
      case "m":
        out = keep(new Map());
        for (const [k, v] of x.e) out.set(decode(k, refs), decode(v, refs));
        return out;
      case "s":
        out = keep(new Set());
        for (const v of x.e) out.add(decode(v, refs));
        return out;
      case "er": {
        const Ctor = Object.prototype.hasOwnProperty.call(ERRORS, x.n) ? ERRORS[x.n] : Error;
        out = keep(new Ctor(x.m));
        if (x.n !== out.name) out.name = x.n;
        if (x.st !== undefined) Object.defineProperty(out, "stack", { value: x.st, writable: true, configurable: true });
        if (x.c !== undefined) out.cause = decode(x.c, refs);
        return out;
      }
    }
    throw new TypeError("corrupt v8 queue message: unknown tag " + String(x.$));
  }

  function deserialize(buffer) {
    const bytes = buffer instanceof Uint8Array ? buffer : new Uint8Array(buffer);
    return decode(JSON.parse(new TextDecoder().decode(bytes)), []);
  }

  return { serialize, deserialize };
})
