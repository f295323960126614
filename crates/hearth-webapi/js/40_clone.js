// structuredClone: the HTML structured clone algorithm for the types a
// script can build (no transfer of ownership; `transfer` only detaches-by-copy).
const ERROR_CTORS = { Error, EvalError, RangeError, ReferenceError, SyntaxError, TypeError, URIError };

function cloneError(v) {
  return domError(`${describeForClone(v)} could not be cloned.`, "DataCloneError");
}
function describeForClone(v) {
  try {
    if (typeof v === "symbol") return v.toString();
    if (typeof v === "function") return String(v);
    return Object.prototype.toString.call(v);
  } catch { return "value"; }
}

function structuredCloneImpl(value, memory) {
  if (value === null || (typeof value !== "object" && typeof value !== "function")) {
    if (typeof value === "symbol") throw cloneError(value);
    return value;
  }
  if (typeof value === "function") throw cloneError(value);
  if (memory.has(value)) return memory.get(value);
  let out;
  if (Array.isArray(value)) {
    out = new Array(value.length);
    memory.set(value, out);
    for (const k of Object.keys(value)) out[k] = structuredCloneImpl(value[k], memory);
    return out;
  }
  if (value instanceof Date) { out = new Date(value.getTime()); memory.set(value, out); return out; }
  if (value instanceof RegExp) { out = new RegExp(value.source, value.flags); memory.set(value, out); return out; }
  if (value instanceof Boolean) { out = new Boolean(value.valueOf()); memory.set(value, out); return out; }
  if (value instanceof Number) { out = new Number(value.valueOf()); memory.set(value, out); return out; }
  if (value instanceof String) { out = new String(value.valueOf()); memory.set(value, out); return out; }
  if (typeof BigInt !== "undefined" && value instanceof BigInt) { out = Object(value.valueOf()); memory.set(value, out); return out; }
  if (value instanceof ArrayBuffer) { out = value.slice(0); memory.set(value, out); return out; }
  if (ArrayBuffer.isView(value)) {
    const buf = structuredCloneImpl(value.buffer, memory);
    if (value instanceof DataView) out = new DataView(buf, value.byteOffset, value.byteLength);
    else out = new value.constructor(buf, value.byteOffset, value.length);
    memory.set(value, out);
    return out;
  }
  if (value instanceof Map) {
    out = new Map();
    memory.set(value, out);
    for (const [k, v] of value) out.set(structuredCloneImpl(k, memory), structuredCloneImpl(v, memory));
    return out;
  }
  if (value instanceof Set) {
    out = new Set();
    memory.set(value, out);
    for (const v of value) out.add(structuredCloneImpl(v, memory));
    return out;
  }
  if (value instanceof DOMExceptionCtor) {
    out = domError(value.message, value.name);
    memory.set(value, out);
    return out;
  }
  if (value instanceof Error) {
    const name = value.name;
    const Ctor = Object.prototype.hasOwnProperty.call(ERROR_CTORS, name) ? ERROR_CTORS[name] : Error;
    out = new Ctor(value.message);
    memory.set(value, out);
    if (typeof value.stack === "string") ObjectDefineProperty(out, "stack", { value: value.stack, writable: true, configurable: true });
    if ("cause" in value) out.cause = structuredCloneImpl(value.cause, memory);
    return out;
  }
  if (value instanceof Blob) {
    out = value instanceof File
      ? makeFile(value[kBlob].bytes, value.name, value.type, value.lastModified)
      : makeBlob(Blob.prototype, value[kBlob].bytes, value.type);
    memory.set(value, out);
    return out;
  }
  if (value instanceof File) return value;
  // Platform objects and exotic built-ins are not serializable (the same
  // rule as the persisted format's, 41_serialize.js).
  if (scPlatformObject(value)) throw cloneError(value);
  out = {};
  memory.set(value, out);
  for (const k of Object.keys(value)) out[k] = structuredCloneImpl(value[k], memory);
  return out;
}

defineGlobal("structuredClone", function structuredClone(value, options = undefined) {
  if (arguments.length === 0) {
    throw new TypeError("Failed to execute 'structuredClone' on 'ServiceWorkerGlobalScope': parameter 1 is not of type 'JsValue'.");
  }
  const transfer = options === undefined || options === null ? undefined : options.transfer;
  if (transfer !== undefined && !Array.isArray(transfer)) {
    throw new TypeError("Incorrect type for the 'transfer' field on 'StructuredCloneOptions': the provided value is not of type 'Array'.");
  }
  const memory = new Map();
  for (const t of transfer || []) {
    if (!(t instanceof ArrayBuffer)) throw new TypeError("Object is not transferable");
  }
  // A transferred buffer moves into the clone: the clone (and any view over
  // it) takes the contents and the original is left detached.
  for (const t of transfer || []) {
    if (!memory.has(t)) memory.set(t, t.transfer());
  }
  return structuredCloneImpl(value, memory);
});
