// The R2Bucket object a worker sees. `native` runs the contract calls
// (hearth-r2); this file builds Workers' R2Object / R2ObjectBody / R2Objects
// / R2MultipartUpload, checks arguments with the runtime's messages, and
// turns Headers, Dates, Blobs and streams into plain values for `native`.
(function (native, util) {
  "use strict";

  const HASHES = ["md5", "sha1", "sha256", "sha384", "sha512"];

  function hexToBuffer(hex) {
    const out = new Uint8Array(hex.length / 2);
    for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(i * 2, 2), 16);
    return out.buffer;
  }

  class R2Checksums {
    #hex;
    constructor(hex) {
      this.#hex = hex;
      // Every hash is an own property, undefined when not stored, as on Workers.
      for (const name of HASHES) {
        this[name] = typeof hex[name] === "string" ? hexToBuffer(hex[name]) : undefined;
      }
    }
    toJSON() {
      const out = {};
      for (const name of HASHES) if (typeof this.#hex[name] === "string") out[name] = this.#hex[name];
      return out;
    }
  }

  function httpMetadataOf(m) {
    const out = {};
    if (m === null || m === undefined) return out;
    for (const k of ["contentType", "contentLanguage", "contentDisposition", "contentEncoding", "cacheControl"]) {
      if (typeof m[k] === "string") out[k] = m[k];
    }
    if (typeof m.cacheExpiry === "number") out.cacheExpiry = new Date(m.cacheExpiry);
    return out;
  }

  const HEADER_OF = {
    contentType: "content-type",
    contentLanguage: "content-language",
    contentDisposition: "content-disposition",
    contentEncoding: "content-encoding",
    cacheControl: "cache-control",
  };

  class R2Object {
    constructor(d) {
      this.key = d.key;
      this.version = d.version;
      this.size = d.size;
      this.etag = d.etag;
      this.httpEtag = d.httpEtag;
      this.checksums = new R2Checksums(d.checksums || {});
      this.uploaded = new Date(d.uploaded);
      this.httpMetadata = httpMetadataOf(d.httpMetadata);
      this.customMetadata = d.customMetadata === null || d.customMetadata === undefined ? {} : d.customMetadata;
      this.range = d.range === null ? undefined : d.range;
      this.storageClass = d.storageClass;
      // Objects are never stored with a customer-supplied key here.
      this.ssecKeyMd5 = undefined;
    }
    writeHttpMetadata(headers) {
      if (!util.isHeaders(headers)) {
        throw new TypeError("Failed to execute 'writeHttpMetadata' on 'R2Object': parameter 1 is not of type 'Headers'.");
      }
      const m = this.httpMetadata || {};
      for (const k of Object.keys(HEADER_OF)) if (m[k] !== undefined) headers.set(HEADER_OF[k], m[k]);
      if (m.cacheExpiry !== undefined) headers.set("expires", m.cacheExpiry.toUTCString());
    }
  }

  const USED = "Body has already been used. It can only be used once. Use tee() first if you need to read it twice.";

  class R2ObjectBody extends R2Object {
    #handle;
    #stream = null;
    #used = false;
    // Set once the stream is read or cancelled (the stream's "disturbed").
    #disturbed = { value: false };
    constructor(d, handle) {
      super(d);
      this.#handle = handle;
    }
    get body() {
      if (this.#stream === null) {
        const handle = this.#handle;
        const disturbed = this.#disturbed;
        this.#stream = new ReadableStream({
          type: "bytes",
          pull(c) {
            disturbed.value = true;
            const chunk = handle.read();
            if (chunk === null) c.close();
            else c.enqueue(new Uint8Array(chunk));
          },
          cancel() { disturbed.value = true; handle.cancel(); },
        });
      }
      return this.#stream;
    }
    get bodyUsed() {
      return this.#used || this.#disturbed.value;
    }
    async #take() {
      if (this.bodyUsed || (this.#stream !== null && this.#stream.locked)) throw new TypeError(USED);
      this.#used = true;
      // Untouched: read straight from disk without the stream machinery.
      if (this.#stream === null) return new Uint8Array(this.#handle.readAll());
      return util.readStream(this.#stream);
    }
    async arrayBuffer() {
      const b = await this.#take();
      return b.byteOffset === 0 && b.byteLength === b.buffer.byteLength ? b.buffer : b.slice().buffer;
    }
    async bytes() { return new Uint8Array(await this.arrayBuffer()); }
    async text() { return new TextDecoder().decode(await this.#take()); }
    async json() { return JSON.parse(await this.text()); }
    async blob() {
      const type = this.httpMetadata && this.httpMetadata.contentType;
      return new Blob([await this.#take()], type === undefined ? {} : { type });
    }
  }

  const wrongType = (field, on, type) =>
    new TypeError(`Incorrect type for the '${field}' field on '${on}': the provided value is not of type '${type}'.`);

  // onlyIf as workerd types it: Headers, or a Conditional whose etags are
  // strings and whose times are Dates (or epoch milliseconds).
  function conditionalSpec(onlyIf, on) {
    if (onlyIf === undefined || onlyIf === null) return null;
    if (util.isHeaders(onlyIf)) {
      const headers = {};
      for (const name of ["if-match", "if-none-match", "if-modified-since", "if-unmodified-since"]) {
        const v = onlyIf.get(name);
        if (v !== null) headers[name] = v;
      }
      return { headers };
    }
    if (typeof onlyIf !== "object") throw wrongType("onlyIf", on, "Conditional or Headers");
    const str = (field) => {
      const v = onlyIf[field];
      if (v === undefined) return null;
      if (typeof v !== "string") throw wrongType(field, "Conditional", "string");
      return v;
    };
    const time = (field) => {
      const v = onlyIf[field];
      if (v === undefined) return null;
      if (v instanceof Date) return v.getTime();
      if (typeof v === "number") return v;
      throw wrongType(field, "Conditional", "date");
    };
    return {
      etagMatches: str("etagMatches"),
      etagDoesNotMatch: str("etagDoesNotMatch"),
      uploadedBefore: time("uploadedBefore"),
      uploadedAfter: time("uploadedAfter"),
      secondsGranularity: !!onlyIf.secondsGranularity,
    };
  }

  const INCLUDES = ["httpMetadata", "customMetadata"];

  function includeSpec(include) {
    if (include === undefined || include === null) return null;
    if (!Array.isArray(include)) throw wrongType("include", "ListOptions", "Array");
    include.forEach((v, i) => {
      if (typeof v !== "string") {
        throw new TypeError(`Incorrect type for array element ${i}: the provided value is not of type 'string'.`);
      }
    });
    const unknown = include.find((v) => !INCLUDES.includes(v));
    if (unknown !== undefined) throw new RangeError(`Unsupported include value ${unknown}`);
    return include.slice();
  }

  function checkWhole(what, label, v) {
    if (!(v >= 0)) throw new RangeError(`Invalid ${what}. ${label} (${v}) must be greater than or equal to 0.`);
    if (!Number.isInteger(v)) throw new RangeError(`Invalid range. ${label} (${v}) must be an integer, not floating point.`);
  }

  function rangeSpec(range) {
    if (range === undefined || range === null) return null;
    if (util.isHeaders(range)) {
      const h = range.get("range");
      return h === null ? null : { header: h };
    }
    const num = (v) => (v === undefined || v === null ? undefined : Number(v));
    const offset = num(range.offset), length = num(range.length), suffix = num(range.suffix);
    if (offset !== undefined) checkWhole("range", "Starting offset", offset);
    if (length !== undefined) checkWhole("range", "Length", length);
    if (suffix !== undefined) {
      if (offset !== undefined) throw new TypeError("Suffix is incompatible with offset.");
      if (length !== undefined) throw new TypeError("Suffix is incompatible with length.");
      checkWhole("suffix", "Suffix", suffix);
    }
    return { offset: offset ?? null, length: length ?? null, suffix: suffix ?? null };
  }

  function httpMetadataSpec(m) {
    if (m === undefined || m === null) return null;
    if (util.isHeaders(m)) return { headers: [...m] };
    const out = {};
    for (const k of Object.keys(HEADER_OF)) if (m[k] !== undefined && m[k] !== null) out[k] = String(m[k]);
    if (m.cacheExpiry !== undefined && m.cacheExpiry !== null) {
      out.cacheExpiry = m.cacheExpiry instanceof Date ? m.cacheExpiry.getTime() : new Date(m.cacheExpiry).getTime();
    }
    return out;
  }

  function customMetadataSpec(m) {
    if (m === undefined || m === null) return null;
    const out = {};
    for (const k of Object.keys(m)) out[k] = String(m[k]);
    return out;
  }

  function checksumSpec(options) {
    let spec = null;
    for (const algorithm of HASHES) {
      const v = options[algorithm];
      if (v === undefined || v === null) continue;
      if (spec !== null) throw new TypeError("You cannot specify multiple hashing algorithms.");
      let value;
      if (typeof v === "string") value = v;
      else if (v instanceof ArrayBuffer) value = new Uint8Array(v);
      else if (ArrayBuffer.isView(v)) value = util.viewBytes(v);
      else throw new TypeError(`Failed to execute 'put' on 'R2Bucket': ${algorithm} must be an ArrayBuffer or a string.`);
      spec = { algorithm, value };
    }
    return spec;
  }

  async function valueBytes(value, method) {
    if (value === undefined || value === null) return null;
    if (typeof value === "string") return value;
    if (value instanceof ArrayBuffer) return value;
    if (ArrayBuffer.isView(value)) return util.viewBytes(value);
    if (util.isBlob(value)) return new Uint8Array(await value.arrayBuffer());
    if (util.isStream(value)) return util.readStream(value);
    throw new TypeError(`Failed to execute '${method}' on 'R2Bucket': parameter 2 is not of type 'ReadableStream or ArrayBuffer or ArrayBufferView or string or Blob'.`);
  }

  // Feeds a stream to disk chunk by chunk as it yields (never whole in
  // memory); a stream that fails fails the put and leaves the old object.
  async function putStream(key, stream, spec) {
    if (stream.locked) throw new TypeError("This ReadableStream is currently locked to a reader.");
    const reader = stream.getReader();
    const writer = native.putStream(key, spec);
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        let bytes;
        if (typeof value === "string") bytes = new TextEncoder().encode(value);
        else if (value instanceof ArrayBuffer) bytes = new Uint8Array(value);
        else if (ArrayBuffer.isView(value)) bytes = util.viewBytes(value);
        else throw new TypeError("This TransformStream is being used as a byte stream, but received an object of non-ArrayBuffer/ArrayBufferView type on its writable side.");
        if (!writer.write(bytes)) {
          // The put ended early (a failed condition, an error): finish says which.
          reader.cancel().catch(() => {});
          break;
        }
      }
    } catch (e) {
      writer.abort(String(e && e.message !== undefined ? e.message : e));
      throw e;
    }
    return writer.finish();
  }

  const objectOf = (json) => new R2Object(JSON.parse(json));

  class R2MultipartUpload {
    #key;
    #uploadId;
    constructor(key, uploadId) {
      this.#key = key;
      this.#uploadId = uploadId;
    }
    get key() { return this.#key; }
    get uploadId() { return this.#uploadId; }
    async uploadPart(partNumber, value) {
      const bytes = await valueBytes(value, "uploadPart");
      const etag = native.uploadPart(this.#key, this.#uploadId, Number(partNumber), bytes);
      return { partNumber: Number(partNumber), etag };
    }
    async abort() {
      native.abort(this.#key, this.#uploadId);
    }
    async complete(uploadedParts) {
      const parts = Array.from(uploadedParts, (p) => [Number(p.partNumber), String(p.etag)]);
      return objectOf(native.complete(this.#key, this.#uploadId, parts));
    }
  }

  class R2Bucket {
    async head(key) {
      const json = native.head(String(key));
      return json == null ? null : objectOf(json);
    }

    async get(key, options) {
      const o = options === undefined || options === null ? {} : options;
      const found = native.get(String(key), conditionalSpec(o.onlyIf, "GetOptions"), rangeSpec(o.range));
      if (found === null) return null;
      const [json, handle] = found;
      const d = JSON.parse(json);
      // A failed precondition gives the object without a body.
      return handle === null ? new R2Object(d) : new R2ObjectBody(d, handle);
    }

    async put(key, value, options) {
      key = String(key);
      const o = options === undefined || options === null ? {} : options;
      const spec = {
        onlyIf: conditionalSpec(o.onlyIf, "PutOptions"),
        httpMetadata: httpMetadataSpec(o.httpMetadata),
        customMetadata: customMetadataSpec(o.customMetadata),
        checksum: checksumSpec(o),
      };
      const json = util.isStream(value) ? await putStream(key, value, spec) : native.put(key, await valueBytes(value, "put"), spec);
      return json == null ? null : objectOf(json);
    }

    async delete(keys) {
      native.delete(Array.isArray(keys) ? keys.map(String) : String(keys));
    }

    async list(options) {
      const o = options === undefined || options === null ? {} : options;
      const str = (v) => (v === undefined || v === null ? null : String(v));
      const page = JSON.parse(native.list({
        limit: o.limit === undefined || o.limit === null ? null : Number(o.limit),
        prefix: str(o.prefix),
        cursor: str(o.cursor),
        delimiter: str(o.delimiter),
        startAfter: str(o.startAfter),
        include: includeSpec(o.include),
      }));
      const out = {
        objects: page.objects.map(objectOf),
        delimitedPrefixes: page.delimitedPrefixes,
        truncated: page.truncated,
      };
      if (page.truncated) out.cursor = page.cursor;
      return out;
    }

    async createMultipartUpload(key, options) {
      key = String(key);
      const o = options === undefined || options === null ? {} : options;
      const uploadId = native.createMultipartUpload(key, {
        httpMetadata: httpMetadataSpec(o.httpMetadata),
        customMetadata: customMetadataSpec(o.customMetadata),
      });
      return new R2MultipartUpload(key, uploadId);
    }

    resumeMultipartUpload(key, uploadId) {
      return new R2MultipartUpload(String(key), String(uploadId));
    }
  }

  return new R2Bucket();
})
