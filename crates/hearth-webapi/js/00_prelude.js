// Shared helpers. This file and the ones after it are concatenated into one
// function body `(function (native) { ... })`, evaluated once per context.
const global = globalThis;
const ObjectDefineProperty = Object.defineProperty;
const kState = Symbol("state");

function defineGlobal(name, value) {
  ObjectDefineProperty(global, name, { value, writable: true, configurable: true, enumerable: false });
}

// JSON.parse and JSON.stringify go to the natives (crates/hearth-json) first and
// to QuickJS's originals for what those leave (a reviver, a replacer,
// indentation, toJSON, getters, cycles...). The bodies' json() and
// Response.json() keep these, whatever a script does to the globals.
// JSON.stringify of a BigInt: code written for Workers may match V8's text,
// so QuickJS's wording is replaced (the error itself is unchanged).
const jsonParse = (() => {
  const parse = JSON.parse;
  const nativeParse = native.jsonParse;
  const wrapped = {
    parse(text, reviver) {
      if (typeof text === "string" && typeof reviver !== "function") {
        const v = nativeParse(text);
        if (v !== undefined) return v;
      }
      return parse(text, reviver);
    },
  }.parse;
  ObjectDefineProperty(JSON, "parse", { value: wrapped, writable: true, configurable: true, enumerable: false });
  return wrapped;
})();
const jsonStringify = (() => {
  const stringify = JSON.stringify;
  const nativeStringify = native.jsonStringify;
  const wrapped = {
    stringify(value, replacer, space) {
      if (replacer == null && space == null) {
        const text = nativeStringify(value);
        if (text !== null) return text;
      }
      try {
        return stringify(value, replacer, space);
      } catch (e) {
        if (e instanceof TypeError && e.message === "BigInt are forbidden in JSON.stringify") {
          e.message = "Do not know how to serialize a BigInt";
        }
        throw e;
      }
    },
  }.stringify;
  ObjectDefineProperty(JSON, "stringify", { value: wrapped, writable: true, configurable: true, enumerable: false });
  return wrapped;
})();

// Body.json() on bytes: the native parser, or (for a BOM, invalid UTF-8 or
// anything else it leaves) the decoded text through JSON.parse.
function jsonFromBytes(bytes) {
  const v = native.jsonParseBytes(bytes);
  return v !== undefined ? v : jsonParse(utf8Decode(bytes));
}

// Classes get a Symbol.toStringTag like the platform's.
function tag(cls, name) {
  ObjectDefineProperty(cls.prototype, Symbol.toStringTag, { value: name || cls.name, configurable: true });
}

if (typeof global.DOMException !== "function") {
  const codes = {
    IndexSizeError: 1, HierarchyRequestError: 3, WrongDocumentError: 4, InvalidCharacterError: 5,
    NoModificationAllowedError: 7, NotFoundError: 8, NotSupportedError: 9, InvalidStateError: 11,
    SyntaxError: 12, InvalidModificationError: 13, NamespaceError: 14, InvalidAccessError: 15,
    TypeMismatchError: 17, SecurityError: 18, NetworkError: 19, AbortError: 20, URLMismatchError: 21,
    QuotaExceededError: 22, TimeoutError: 23, InvalidNodeTypeError: 24, DataCloneError: 25,
  };
  class DOMException extends Error {
    constructor(message = "", name = "Error") {
      super(String(message));
      ObjectDefineProperty(this, "name", { value: String(name), configurable: true, writable: true });
    }
    get code() { return codes[this.name] || 0; }
  }
  defineGlobal("DOMException", DOMException);
}
const DOMExceptionCtor = global.DOMException;
function domError(message, name) { return new DOMExceptionCtor(message, name); }

function isObject(v) { return v !== null && (typeof v === "object" || typeof v === "function"); }

// BufferSource -> Uint8Array view over the same memory (no copy).
function asBytes(v) {
  if (v instanceof Uint8Array) return v;
  if (v instanceof ArrayBuffer) return new Uint8Array(v);
  if (ArrayBuffer.isView(v)) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  if (typeof SharedArrayBuffer !== "undefined" && v instanceof SharedArrayBuffer) return new Uint8Array(v);
  return null;
}
function isBufferSource(v) {
  return v instanceof ArrayBuffer || ArrayBuffer.isView(v);
}
function requireBytes(v, what) {
  const b = asBytes(v);
  if (b === null) throw new TypeError(`${what} must be an ArrayBuffer or ArrayBufferView.`);
  return b;
}
function copyBytes(v) { return asBytes(v).slice(); }

function concatBytes(chunks, total) {
  if (chunks.length === 1) return chunks[0];
  if (total === undefined) { total = 0; for (const c of chunks) total += c.byteLength; }
  const out = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) { out.set(c, off); off += c.byteLength; }
  return out;
}

function utf8Encode(s) { return native.utf8Encode(String(s)); }
function utf8Decode(bytes) { return native.decode("utf-8", bytes, false, false); }

const PromiseResolve = (v) => Promise.resolve(v);
function deferred() {
  let resolve, reject;
  const promise = new Promise((a, b) => { resolve = a; reject = b; });
  return { promise, resolve, reject };
}
function markHandled(p) { p.then(undefined, () => {}); return p; }

function queueTask(fn) {
  if (typeof global.queueMicrotask === "function") global.queueMicrotask(fn);
  else Promise.resolve().then(fn);
}
if (typeof global.queueMicrotask !== "function") {
  defineGlobal("queueMicrotask", function queueMicrotask(cb) {
    if (typeof cb !== "function") throw new TypeError("The callback provided as parameter 1 is not a function.");
    Promise.resolve().then(cb);
  });
}

function reportError(e) {
  if (typeof global.reportError === "function") global.reportError(e);
  else if (global.console && typeof global.console.error === "function") global.console.error(e);
}
