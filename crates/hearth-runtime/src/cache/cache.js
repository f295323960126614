// The Cache API a worker sees: `caches.default`, `caches.open(name)` and
// the `Cache` / `CacheStorage` classes. `native` runs the contract
// (hearth-cache), or is null when the worker was built without a cache
// store: then every operation behaves as on a workers.dev deployment
// (put() checks its arguments and stores nothing, match() finds nothing,
// delete() deletes nothing).
(function (native) {
  "use strict";

  const kName = Symbol("cacheName");
  const kToken = Symbol("construct");
  const MAX_NAME = 1023;

  function toRequest(input, what) {
    if (input instanceof Request) return input;
    if (input instanceof URL || typeof input === "string") return new Request(String(input));
    throw new TypeError(`Failed to execute '${what}' on 'Cache': parameter 1 is not of type 'Request or string'.`);
  }

  const headerPairs = (headers) => JSON.stringify([...headers]);
  const webapi = globalThis.__hearth_webapi;

  async function readAll(stream) {
    const reader = stream.getReader();
    const chunks = [];
    let total = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      const bytes = typeof value === "string" ? new TextEncoder().encode(value)
        : value instanceof ArrayBuffer ? new Uint8Array(value)
        : ArrayBuffer.isView(value) ? new Uint8Array(value.buffer, value.byteOffset, value.byteLength)
        : null;
      if (bytes === null) throw new TypeError("This ReadableStream did not return bytes.");
      chunks.push(bytes);
      total += bytes.byteLength;
    }
    const out = new Uint8Array(total);
    let at = 0;
    for (const c of chunks) { out.set(c, at); at += c.byteLength; }
    return out;
  }

  function ignoreMethod(options) {
    return options !== undefined && options !== null && !!options.ignoreMethod;
  }

  class Cache {
    constructor(token, name) {
      if (token !== kToken) throw new TypeError("Illegal constructor");
      this[kName] = name;
    }

    async match(request, options) {
      const req = toRequest(request, "match");
      if (native === null) return undefined;
      const found = native.match(this[kName], req.url, req.method, headerPairs(req.headers), ignoreMethod(options));
      if (found === null) return undefined;
      const [status, statusText, headers, body] = found;
      return new Response(body, { status, statusText, headers: JSON.parse(headers) });
    }

    async put(request, response) {
      const req = toRequest(request, "put");
      if (!(response instanceof Response)) {
        throw new TypeError("Failed to execute 'put' on 'Cache': parameter 2 is not of type 'Response'.");
      }
      if (response.type === "error") throw new TypeError("Cache is unable to store an error response");
      if (req.method !== "GET") throw new TypeError("Cannot cache response to non-GET request.");
      if (response.status === 206) throw new TypeError("Cannot cache response to a range request (206 Partial Content).");
      const vary = response.headers.get("vary");
      if (vary !== null && vary.includes("*")) throw new TypeError("Cannot cache response with 'Vary: *' header.");
      if (response.webSocket !== null && response.webSocket !== undefined) {
        throw new TypeError("Cannot cache WebSocket upgrade response.");
      }
      // A 304 is discarded, as workerd does, without reading its body.
      if (response.status === 304) return undefined;
      // The body is taken now, so it is disturbed when put() returns.
      const [status, statusText, flat, kind, src] = webapi.responseParts(response);
      const headers = [];
      for (let i = 0; i < flat.length; i += 2) headers.push([flat[i], flat[i + 1]]);
      // A body of known length is stored with its Content-Length (which
      // range requests need); a stream without one is stored without, as
      // workerd sends it to the cache chunked.
      let body;
      if (kind === 3) body = await readAll(src);
      else body = src === null ? new Uint8Array(0) : typeof src === "string" ? new TextEncoder().encode(src) : src;
      if (kind !== 3 && !headers.some(([n]) => n === "content-length")) {
        headers.push(["content-length", String(body.byteLength)]);
      }
      if (native === null) return undefined;
      native.put(this[kName], req.url, req.method, headerPairs(req.headers),
        status, statusText, JSON.stringify(headers), body);
      return undefined;
    }

    async delete(request, options) {
      const req = toRequest(request, "delete");
      if (native === null) return false;
      return native.delete(this[kName], req.url, req.method, headerPairs(req.headers), ignoreMethod(options));
    }

    async add() { throw new TypeError("Failed to execute 'add' on 'Cache': the method is not implemented."); }
    async addAll() { throw new TypeError("Failed to execute 'addAll' on 'Cache': the method is not implemented."); }
    async matchAll() { throw new TypeError("Failed to execute 'matchAll' on 'Cache': the method is not implemented."); }
    async keys() { throw new TypeError("Failed to execute 'keys' on 'Cache': the method is not implemented."); }
  }

  const defaultCache = new Cache(kToken, null);

  class CacheStorage {
    constructor(token) {
      if (token !== kToken) throw new TypeError("Illegal constructor");
    }
    get default() { return defaultCache; }
    async open(name) {
      const cacheName = String(name);
      if (new TextEncoder().encode(cacheName).length > MAX_NAME) throw new TypeError("Cache name is too long.");
      return new Cache(kToken, cacheName);
    }
  }

  const caches = new CacheStorage(kToken);
  for (const [name, value] of [["Cache", Cache], ["CacheStorage", CacheStorage], ["caches", caches]]) {
    Object.defineProperty(globalThis, name, { value, writable: true, configurable: true, enumerable: false });
  }
})
