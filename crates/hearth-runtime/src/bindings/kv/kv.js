// The KVNamespace object a worker sees. `native` runs the contract calls
// (hearth-kv); this file gives the methods Workers' argument forms and
// result shapes. Every method is async, so a contract error rejects the
// promise, as on Workers.
(function (native, util) {
  "use strict";

  // `type` may be given as a string or as `{type, cacheTtl}`.
  function readOptions(options, fallbackType) {
    if (options === undefined || options === null) return { type: fallbackType, cacheTtl: null };
    if (typeof options === "string") return { type: options, cacheTtl: null };
    if (typeof options !== "object") return { type: String(options), cacheTtl: null };
    const type = options.type === undefined || options.type === null ? fallbackType : String(options.type);
    const cacheTtl = options.cacheTtl === undefined || options.cacheTtl === null ? null : Number(options.cacheTtl);
    return { type, cacheTtl };
  }

  function decode(value, type) {
    switch (type) {
      case "json": return JSON.parse(value);
      case "stream": return util.streamOf(value);
      default: return value;
    }
  }

  function getOne(key, options) {
    const { type, cacheTtl } = readOptions(options, "text");
    const found = native.get(String(key), type, cacheTtl);
    if (found === null) return { value: null, metadata: null, cacheStatus: null };
    const [value, metadata] = found;
    return {
      value: decode(value, type),
      metadata: metadata === null ? null : JSON.parse(metadata),
      cacheStatus: null,
    };
  }

  function getBulk(keys, options, withMetadata) {
    const { type, cacheTtl } = readOptions(options, "text");
    const rows = JSON.parse(native.getBulk(keys.map(String), type, cacheTtl, withMetadata));
    const out = new Map();
    for (const [key, entry] of rows) out.set(key, entry);
    return out;
  }

  // workerd takes strings, buffers and streams; any other object is refused,
  // and every other primitive (null and undefined included) is stored as its
  // string form.
  async function valueBytes(value) {
    if (typeof value === "string") return value;
    if (value instanceof ArrayBuffer) return value;
    if (ArrayBuffer.isView(value)) return util.viewBytes(value);
    if (util.isStream(value)) return util.readStream(value);
    if ((typeof value === "object" && value !== null) || typeof value === "function") {
      throw new TypeError("KV put() accepts only strings, ArrayBuffers, ArrayBufferViews, and ReadableStreams as values.");
    }
    return String(value);
  }

  // expiration and expirationTtl are 32-bit integers on Workers: only an
  // absent option is absent; null and non-numbers coerce (NaN becomes 0) and
  // fractions are truncated, so the API's own range checks see the result.
  function seconds(v) {
    if (v === undefined) return null;
    const n = Number(v);
    if (Number.isNaN(n)) return 0;
    const whole = Math.trunc(n) + 0;
    if (!(whole >= -2147483648 && whole <= 2147483647)) {
      throw new TypeError("Value out of range. Must be between -2147483648 and 2147483647 (inclusive).");
    }
    return whole;
  }

  class KVNamespace {
    async get(key, options) {
      if (Array.isArray(key)) return getBulk(key, options, false);
      return getOne(key, options).value;
    }

    async getWithMetadata(key, options) {
      if (Array.isArray(key)) return getBulk(key, options, true);
      return getOne(key, options);
    }

    async put(key, value, options) {
      key = String(key);
      const bytes = await valueBytes(value);
      const o = options === undefined || options === null ? {} : options;
      const expiration = seconds(o.expiration);
      const expirationTtl = seconds(o.expirationTtl);
      const metadata = o.metadata === undefined || o.metadata === null ? null : JSON.stringify(o.metadata);
      native.put(key, bytes, expiration, expirationTtl, metadata === undefined ? null : metadata);
    }

    async delete(key) {
      native.delete(String(key));
    }

    async list(options) {
      const o = options === undefined || options === null ? {} : options;
      const str = (v) => (v === undefined || v === null ? null : String(v));
      const limit = o.limit === undefined || o.limit === null ? null : Number(o.limit);
      return JSON.parse(native.list(str(o.prefix), limit, str(o.cursor)));
    }
  }

  Object.defineProperty(KVNamespace.prototype, Symbol.toStringTag, { value: "KvNamespace" });
  return new KVNamespace();
})
