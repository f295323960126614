// The persisted structured-clone format: the one encoding for Durable Object
// storage values and RPC, service-binding RPC, queue messages sent with
// contentType "v8" and Workflow params, step outputs and event payloads.
//
// JavaScript over QuickJS's native JSON rather than Rust natives: the walk
// asks a JS value instanceof, own keys and getters at every node, which costs
// as much through the FFI as in bytecode, while JSON.stringify/parse and the
// base64 natives already run the byte-heavy parts in C and Rust.
//
// Format version 1. A value is UTF-8 JSON text
//   {"$sc":1,"v":TREE}
// where TREE is one of
//   string | true | false | null | finite number other than -0
//   {"$":"n","v":"NaN"|"Infinity"|"-Infinity"|"-0"}
//   {"$":"u"}                                undefined
//   {"$":"bi","v":"-12"}                     BigInt, decimal
//   {"$":"ref","i":N}                        the N-th object met (from 0)
//   {"$":"o","v":{KEY:TREE,...}}             plain object, own enumerable keys
//   {"$":"a","v":[TREE|HOLES,...],"p":{..}}  array; HOLES = {"$":"h","n":count};
//                                            "p": non-index keys, when any
//   {"$":"d","v":NUMBER-TREE}                Date (time value; NaN if invalid)
//   {"$":"re","s":source,"f":flags}          RegExp (lastIndex is not kept)
//   {"$":"w","v":PRIMITIVE-TREE}             Boolean/Number/String/BigInt object
//   {"$":"m","v":[[K,V],...]}  {"$":"s","v":[TREE,...]}   Map, Set
//   {"$":"ab","v":base64}                    ArrayBuffer
//   {"$":"v","t":type,"b":BUFFER,"o":byteOffset,"l":length}
//                                            typed array (length in elements)
//                                            or DataView (in bytes); BUFFER is
//                                            an "ab" or a "ref" to one
//   {"$":"e","n":name,"m":message,"st":stack,"c":CAUSE}   Error ("st", "c"
//                                            only when present)
//   {"$":"de","n":name,"m":message,"st":stack}            DOMException
// Objects are numbered in the order the walk first meets them (pre-order;
// a view before its buffer), so shared and cyclic references come back as
// one object. Plain objects and arrays are always tagged, so a "$" key in user
// data is never read as a tag. A value without the "$sc" marker was written
// before versioning and is read by the decoder of the store it came from.
const SC_VERSION = 1;
const SC_VIEWS = (() => {
  const out = Object.create(null);
  for (const n of ["Int8Array", "Uint8Array", "Uint8ClampedArray", "Int16Array", "Uint16Array", "Int32Array",
    "Uint32Array", "Float16Array", "Float32Array", "Float64Array", "BigInt64Array", "BigUint64Array", "DataView"]) {
    if (typeof global[n] === "function") out[n] = global[n];
  }
  return out;
})();
const scUtf8 = new TextEncoder();
const scUtf8Decoder = new TextDecoder();

function scCorrupt(what) {
  return new TypeError("corrupt structured-clone value: " + what);
}

// Objects that carry hidden host state and so have no serialized form.
function scPlatformObject(v) {
  return v instanceof Promise || v instanceof WeakMap || v instanceof WeakSet ||
    (typeof WeakRef === "function" && v instanceof WeakRef) ||
    (typeof FinalizationRegistry === "function" && v instanceof FinalizationRegistry) ||
    kState in v || kHeaders in v || kReq in v || kRes in v || kListeners in v || kUrl in v || kBlob in v ||
    (typeof global.WebSocket === "function" && v instanceof global.WebSocket);
}

function scNumber(n) {
  if (n === n && n !== Infinity && n !== -Infinity && (n !== 0 || 1 / n > 0)) return n;
  return { $: "n", v: n !== n ? "NaN" : n === 0 ? "-0" : String(n) };
}

function scFields(v, keys, seen, rpc) {
  const out = {};
  for (const k of keys) scSet(out, k, scEncode(v[k], seen, rpc));
  return out;
}

// An array index below `len`, or -1 for any other key.
function scIndex(k, len) {
  const c = k.charCodeAt(0);
  if (c < 48 || c > 57) return -1;
  const i = Number(k);
  return i < len && String(i) === k ? i : -1;
}

function scArray(v, seen, rpc) {
  const len = v.length;
  const keys = Object.keys(v);
  const items = [];
  // Index keys come first in ascending order, so `len` keys ending in
  // len-1 mean a dense array with no other keys.
  if (keys.length === len && (len === 0 || keys[len - 1] === String(len - 1))) {
    for (let i = 0; i < len; i++) items.push(scEncode(v[i], seen, rpc));
    return { $: "a", v: items };
  }
  let next = 0;
  let extra = null;
  for (const k of keys) {
    const i = scIndex(k, len);
    if (i < 0) {
      if (extra === null) extra = [];
      extra.push(k);
      continue;
    }
    if (i > next) items.push({ $: "h", n: i - next });
    items.push(scEncode(v[i], seen, rpc));
    next = i + 1;
  }
  if (len > next) items.push({ $: "h", n: len - next });
  const out = { $: "a", v: items };
  if (extra !== null) out.p = scFields(v, extra, seen, rpc);
  return out;
}

function scErrorTree(v, tag, seen, rpc) {
  const out = { $: tag, n: String(v.name), m: String(v.message) };
  if (typeof v.stack === "string") out.st = v.stack;
  if (tag === "e" && "cause" in v) out.c = scEncode(v.cause, seen, rpc);
  return out;
}

// `rpc`: RPC arguments and results, where an instance of a class is refused
// (storage, queues and Workflows keep its own fields, as structuredClone does).
function scEncode(v, seen, rpc) {
  switch (typeof v) {
    case "string": case "boolean": return v;
    case "number": return scNumber(v);
    case "undefined": return { $: "u" };
    case "bigint": return { $: "bi", v: v.toString() };
    case "symbol": case "function": throw cloneError(v);
  }
  if (v === null) return null;
  const known = seen.get(v);
  if (known !== undefined) return { $: "ref", i: known };
  seen.set(v, seen.size);
  if (Array.isArray(v)) return scArray(v, seen, rpc);
  const proto = Object.getPrototypeOf(v);
  // Most values are plain objects: skip the instanceof chain for them.
  if (proto === Object.prototype || proto === null) return { $: "o", v: scFields(v, Object.keys(v), seen, rpc) };
  if (v instanceof Date) return { $: "d", v: scNumber(v.getTime()) };
  if (v instanceof RegExp) return { $: "re", s: v.source, f: v.flags };
  if (v instanceof Boolean || v instanceof Number || v instanceof String ||
      (typeof BigInt === "function" && v instanceof BigInt)) {
    return { $: "w", v: scEncode(v.valueOf(), seen, rpc) };
  }
  if (v instanceof Map) {
    const items = [];
    for (const [k, x] of v) items.push([scEncode(k, seen, rpc), scEncode(x, seen, rpc)]);
    return { $: "m", v: items };
  }
  if (v instanceof Set) {
    const items = [];
    for (const x of v) items.push(scEncode(x, seen, rpc));
    return { $: "s", v: items };
  }
  if (v instanceof ArrayBuffer) return { $: "ab", v: native.b64Encode(v) };
  if (ArrayBuffer.isView(v)) {
    const t = v instanceof DataView ? "DataView" : v[Symbol.toStringTag];
    if (SC_VIEWS[t] === undefined) throw cloneError(v);
    return { $: "v", t, b: scEncode(v.buffer, seen, rpc), o: v.byteOffset, l: t === "DataView" ? v.byteLength : v.length };
  }
  if (v instanceof DOMExceptionCtor) return scErrorTree(v, "de", seen, rpc);
  if (v instanceof Error) return scErrorTree(v, "e", seen, rpc);
  if (typeof v.then === "function" || scPlatformObject(v)) throw cloneError(v);
  if (rpc) {
    const ctor = proto.constructor;
    const name = ctor && typeof ctor.name === "string" ? ctor.name : "Object";
    throw domError(`Could not serialize object of type "${name}". This type does not support serialization.`, "DataCloneError");
  }
  return { $: "o", v: scFields(v, Object.keys(v), seen, rpc) };
}

function scSerialize(value, rpc) {
  // A string, boolean, null or plain number stands for itself: no walk.
  const type = typeof value;
  if (type === "string" || type === "boolean" || value === null ||
      (type === "number" && scNumber(value) === value)) {
    return '{"$sc":' + SC_VERSION + ',"v":' + JSON.stringify(value) + "}";
  }
  return '{"$sc":' + SC_VERSION + ',"v":' + JSON.stringify(scEncode(value, new Map(), rpc)) + "}";
}

// ---- decoding -------------------------------------------------------------

function scSpecial(s) {
  switch (s) {
    case "NaN": return NaN;
    case "Infinity": return Infinity;
    case "-Infinity": return -Infinity;
    case "-0": return -0;
  }
  throw scCorrupt("bad number " + String(s));
}
function scNum(t) {
  if (typeof t === "number") return t;
  if (t !== null && typeof t === "object" && t.$ === "n") return scSpecial(t.v);
  throw scCorrupt("expected a number");
}
function scBigInt(s) {
  if (typeof s !== "string" || !/^-?[0-9]+$/.test(s)) throw scCorrupt("bad BigInt");
  return BigInt(s);
}
// Own data property even for "__proto__", which plain assignment would not make.
function scSet(o, k, x) {
  if (k === "__proto__") ObjectDefineProperty(o, k, { value: x, writable: true, enumerable: true, configurable: true });
  else o[k] = x;
}
function scBuffer(b64) {
  const bytes = typeof b64 === "string" ? native.b64urlDecode(b64) : null;
  if (bytes === null) throw scCorrupt("bad base64");
  return bytes.byteOffset === 0 && bytes.buffer.byteLength === bytes.byteLength ? bytes.buffer : bytes.slice().buffer;
}
function scView(t, buf, offset, length) {
  const Ctor = SC_VIEWS[t];
  if (Ctor === undefined) throw scCorrupt("unknown view type " + String(t));
  if (!(buf instanceof ArrayBuffer)) throw scCorrupt("a view over something other than an ArrayBuffer");
  try {
    return new Ctor(buf, offset, length);
  } catch (_) {
    throw scCorrupt("view out of its buffer's bounds");
  }
}
function scError(name, message, stack) {
  name = String(name);
  const Ctor = Object.prototype.hasOwnProperty.call(ERROR_CTORS, name) ? ERROR_CTORS[name] : Error;
  const out = new Ctor(String(message));
  if (out.name !== name) ObjectDefineProperty(out, "name", { value: name, writable: true, configurable: true });
  if (stack !== undefined) ObjectDefineProperty(out, "stack", { value: stack, writable: true, configurable: true });
  return out;
}
function scDefineCause(e, cause) {
  ObjectDefineProperty(e, "cause", { value: cause, writable: true, configurable: true });
}

function scDecode(t, refs) {
  if (t === null || typeof t !== "object") return t;
  let out;
  switch (t.$) {
    case "n": return scSpecial(t.v);
    case "u": return undefined;
    case "bi": return scBigInt(t.v);
    case "ref":
      if (!(t.i >= 0 && t.i < refs.length) || refs[t.i] === null) throw scCorrupt("dangling reference");
      return refs[t.i];
    case "o":
      out = {};
      refs.push(out);
      for (const k of Object.keys(t.v)) scSet(out, k, scDecode(t.v[k], refs));
      return out;
    case "a": {
      out = [];
      refs.push(out);
      let i = 0;
      // Indexed: JSON gives a dense array, and no iterator is made for it
      // (anything else is iterated as before).
      const items = Array.isArray(t.v) ? t.v : [...t.v];
      for (let j = 0; j < items.length; j++) {
        const x = items[j];
        if (x !== null && typeof x === "object" && x.$ === "h") { i += x.n; continue; }
        out[i++] = scDecode(x, refs);
      }
      out.length = i;
      if (t.p !== undefined) for (const k of Object.keys(t.p)) scSet(out, k, scDecode(t.p[k], refs));
      return out;
    }
    case "d": out = new Date(scNum(t.v)); break;
    case "re": out = new RegExp(t.s, t.f); break;
    case "w": {
      const p = scDecode(t.v, refs);
      if (p === null || p === undefined || typeof p === "object") throw scCorrupt("bad wrapped primitive");
      out = Object(p);
      break;
    }
    case "m":
      out = new Map();
      refs.push(out);
      for (const [k, x] of t.v) out.set(scDecode(k, refs), scDecode(x, refs));
      return out;
    case "s":
      out = new Set();
      refs.push(out);
      for (const x of t.v) out.add(scDecode(x, refs));
      return out;
    case "ab": out = scBuffer(t.v); break;
    case "v": {
      const slot = refs.length;
      refs.push(null);
      out = scView(t.t, scDecode(t.b, refs), t.o, t.l);
      refs[slot] = out;
      return out;
    }
    case "e":
      out = scError(t.n, t.m, t.st);
      refs.push(out);
      if (t.c !== undefined) scDefineCause(out, scDecode(t.c, refs));
      return out;
    case "de":
      out = domError(String(t.m), String(t.n));
      if (t.st !== undefined) ObjectDefineProperty(out, "stack", { value: t.st, writable: true, configurable: true });
      break;
    default: throw scCorrupt("unknown tag " + String(t.$));
  }
  refs.push(out);
  return out;
}

// ---- the encodings written before the version marker ----------------------

// Durable Object storage (and RPC) before version 1: every object carries
// its id ("i"), "b" is a BigInt, "r" a RegExp, "ref" a back-reference, and a
// view carries only its own bytes.
function scLegacyDurable(t, refs) {
  if (t === null || typeof t !== "object") return t;
  let out;
  switch (t.$) {
    case "u": return undefined;
    case "n": return t.v === "-0" ? -0 : Number(t.v);
    case "b": return scBigInt(t.v);
    case "ref":
      if (!refs.has(t.i)) throw scCorrupt("dangling reference");
      return refs.get(t.i);
    case "a":
      out = new Array(t.v.length);
      refs.set(t.i, out);
      for (let k = 0; k < t.v.length; k++) {
        const x = t.v[k];
        if (x !== null && typeof x === "object" && x.$ === "h") continue;
        out[k] = scLegacyDurable(x, refs);
      }
      return out;
    // An invalid Date was written as null (JSON has no NaN).
    case "d": out = new Date(t.v === null ? NaN : t.v); break;
    case "r": out = new RegExp(t.s, t.f); break;
    case "m":
      out = new Map();
      refs.set(t.i, out);
      for (const [k, x] of t.v) out.set(scLegacyDurable(k, refs), scLegacyDurable(x, refs));
      return out;
    case "s":
      out = new Set();
      refs.set(t.i, out);
      for (const x of t.v) out.add(scLegacyDurable(x, refs));
      return out;
    case "ab": out = scBuffer(t.v); break;
    case "v": {
      // The view's own bytes in a buffer of their own; an unknown type
      // was read as bytes.
      const buf = scBuffer(t.v);
      const name = SC_VIEWS[t.t] === undefined ? "Uint8Array" : t.t;
      const size = name === "DataView" ? 1 : SC_VIEWS[name].BYTES_PER_ELEMENT;
      out = scView(name, buf, 0, buf.byteLength / size);
      break;
    }
    case "w": out = Object(scLegacyDurable(t.v, new Map())); break;
    case "e":
      out = scError(t.n, t.m, t.st);
      refs.set(t.i, out);
      if (t.c !== undefined) scDefineCause(out, scLegacyDurable(t.c, refs));
      return out;
    case "o":
      out = {};
      refs.set(t.i, out);
      for (const k of Object.keys(t.v)) scSet(out, k, scLegacyDurable(t.v[k], refs));
      return out;
    default: throw scCorrupt("unknown tag " + String(t.$));
  }
  refs.set(t.i, out);
  return out;
}

// Queue v8 messages and Workflow values before version 1: ids are implicit
// in first-met order, "bi" is a BigInt, "r" a back-reference, "re" a RegExp,
// arrays and objects are [key, value] entry lists.
function scLegacyV8(t, refs) {
  if (t === null || typeof t !== "object") return t;
  let out;
  const keep = (o) => { refs.push(o); return o; };
  switch (t.$) {
    case "u": return undefined;
    case "n": return scSpecial(t.v);
    case "bi": return scBigInt(t.v);
    case "r":
      if (!(t.i >= 0 && t.i < refs.length) || refs[t.i] === null) throw scCorrupt("dangling reference");
      return refs[t.i];
    case "a":
      out = keep(new Array(t.l));
      for (const [k, x] of t.e) scSet(out, k, scLegacyV8(x, refs));
      return out;
    case "o":
      out = keep({});
      for (const [k, x] of t.e) scSet(out, k, scLegacyV8(x, refs));
      return out;
    case "d": return keep(new Date(scNum(t.v)));
    case "re": return keep(new RegExp(t.s, t.f));
    case "bo": return keep(new Boolean(t.v));
    case "no": return keep(new Number(scNum(t.v)));
    case "so": return keep(new String(t.v));
    case "bio": return keep(Object(scBigInt(t.v)));
    case "ab": return keep(scBuffer(t.v));
    case "v": {
      const slot = refs.length;
      refs.push(null);
      out = scView(t.t, scLegacyV8(t.b, refs), t.o, t.l);
      refs[slot] = out;
      return out;
    }
    case "m":
      out = keep(new Map());
      for (const [k, x] of t.e) out.set(scLegacyV8(k, refs), scLegacyV8(x, refs));
      return out;
    case "s":
      out = keep(new Set());
      for (const x of t.e) out.add(scLegacyV8(x, refs));
      return out;
    case "er":
      out = keep(scError(t.n, t.m, t.st));
      if (t.c !== undefined) scDefineCause(out, scLegacyV8(t.c, refs));
      return out;
  }
  throw scCorrupt("unknown tag " + String(t.$));
}

// `legacy`: which pre-version encoding a value without the marker is in
// ("durable" or "v8"), or null to refuse such a value.
function scDeserialize(text, legacy) {
  let doc;
  try {
    doc = JSON.parse(text);
  } catch (_) {
    throw scCorrupt("not JSON");
  }
  try {
    if (doc !== null && typeof doc === "object" && Object.prototype.hasOwnProperty.call(doc, "$sc")) {
      if (doc.$sc !== SC_VERSION) {
        throw new TypeError(`structured-clone value is in format version ${String(doc.$sc)}; this version of Hearth reads version ${SC_VERSION}`);
      }
      return scDecode(doc.v, []);
    }
    if (legacy === "durable") return scLegacyDurable(doc, new Map());
    if (legacy === "v8") return scLegacyV8(doc, []);
  } catch (e) {
    // A tree of the wrong shape fails inside the walk with QuickJS's words.
    if (e instanceof TypeError && !e.message.startsWith("corrupt") && !e.message.startsWith("structured-clone")) {
      throw scCorrupt(e.message);
    }
    throw e;
  }
  throw scCorrupt("no format version marker");
}

function scText(bytes) {
  return typeof bytes === "string" ? bytes : scUtf8Decoder.decode(bytes);
}

// Handed to the runtime through the host object (90_host.js).
const structuredCodec = Object.freeze({
  version: SC_VERSION,
  // Durable Object storage values and RPC (objects and services), as text;
  // reads values stored before version 1 by the Durable Object codec.
  text: Object.freeze({
    serialize: (v) => scSerialize(v, false),
    serializeRpc: (v) => scSerialize(v, true),
    deserialize: (s) => scDeserialize(scText(s), "durable"),
  }),
  // Queue message bodies (contentType "v8") and Workflow values, as UTF-8
  // bytes; reads values written before version 1 by the v8 queue codec.
  bytes: Object.freeze({
    serialize: (v) => scUtf8.encode(scSerialize(v, false)),
    deserialize: (b) => scDeserialize(scText(b), "v8"),
  }),
});
