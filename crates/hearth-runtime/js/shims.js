// Minimal Headers / Request / Response, installed only where the full Web
// platform classes are absent, so the host can serve requests on its own.
(function (host) {
  "use strict";
  const G = globalThis;
  const hostBody = Symbol.for("hearth.hostBody");
  const hostRequest = Symbol.for("hearth.requestFromHost");
  const define = (name, value) =>
    Object.defineProperty(G, name, { value, writable: true, configurable: true, enumerable: false });

  if (typeof G.Headers !== "function") {
    class Headers {
      #map = new Map();
      constructor(init) {
        if (init === undefined || init === null) return;
        if (init instanceof Headers || Array.isArray(init) || typeof init[Symbol.iterator] === "function") {
          for (const [k, v] of init) this.append(k, v);
        } else if (typeof init === "object") {
          for (const k of Object.keys(init)) this.append(k, init[k]);
        } else {
          throw new TypeError("Failed to construct 'Headers': The provided value is not of type '(record<ByteString, ByteString> or sequence<sequence<ByteString>>)'.");
        }
      }
      append(k, v) {
        k = String(k).toLowerCase(); v = String(v).trim();
        const old = this.#map.get(k);
        this.#map.set(k, old === undefined ? v : old + ", " + v);
      }
      set(k, v) { this.#map.set(String(k).toLowerCase(), String(v).trim()); }
      get(k) { const v = this.#map.get(String(k).toLowerCase()); return v === undefined ? null : v; }
      has(k) { return this.#map.has(String(k).toLowerCase()); }
      delete(k) { this.#map.delete(String(k).toLowerCase()); }
      forEach(cb, thisArg) { for (const [k, v] of this) cb.call(thisArg, v, k, this); }
      *entries() { yield* [...this.#map.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)); }
      *keys() { for (const [k] of this.entries()) yield k; }
      *values() { for (const [, v] of this.entries()) yield v; }
      [Symbol.iterator]() { return this.entries(); }
    }
    define("Headers", Headers);
  }

  function toBytes(body) {
    if (body === null || body === undefined) return null;
    if (typeof body === "string") return body;
    if (body instanceof ArrayBuffer) return body;
    if (ArrayBuffer.isView(body)) return body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength);
    return String(body);
  }
  class Body {
    constructor(body) { this._body = toBytes(body); this._used = false; }
    get body() { return this._body; }
    get bodyUsed() { return this._used; }
    _take() {
      if (this._used) throw new TypeError("Body has already been used. It can only be used once. Use tee() first if you need to read it twice.");
      this._used = true;
      return this._body;
    }
    async text() { const b = this._take(); return b === null ? "" : typeof b === "string" ? b : host.utf8Decode(b); }
    async json() { return JSON.parse(await this.text()); }
    async arrayBuffer() { const b = this._take(); return b === null ? new ArrayBuffer(0) : typeof b === "string" ? host.utf8Encode(b) : b; }
    async bytes() { return new Uint8Array(await this.arrayBuffer()); }
    [hostBody]() { return this._body; }
  }

  if (typeof G.Request !== "function") {
    class Request extends Body {
      constructor(input, init = {}) {
        const src = input instanceof Request ? input : null;
        super(init.body !== undefined ? init.body : src ? src._body : null);
        this.method = String(init.method || (src ? src.method : "GET")).toUpperCase();
        this.url = src ? src.url : String(input);
        this.headers = new G.Headers(init.headers || (src ? src.headers : undefined));
        this.redirect = init.redirect || (src ? src.redirect : "follow");
        this.signal = init.signal || (src ? src.signal : null);
        this.cf = init.cf || (src ? src.cf : undefined);
      }
      clone() { return new Request(this); }
      static [hostRequest](method, url, flat, body, cf) {
        const r = Object.create(Request.prototype);
        r._body = body; r._used = false;
        r.method = method; r.url = url; r.redirect = "follow"; r.signal = null; r.cf = cf;
        const h = new G.Headers();
        for (let i = 0; i < flat.length; i += 2) h.append(flat[i], flat[i + 1]);
        r.headers = h;
        return r;
      }
    }
    define("Request", Request);
  }

  if (typeof G.Response !== "function") {
    class Response extends Body {
      constructor(body = null, init = {}) {
        super(body);
        const status = init.status === undefined ? 200 : Number(init.status);
        if (!(status >= 200 && status <= 599) && status !== 101) {
          throw new RangeError("Responses may only be constructed with status codes in the range 200 to 599, inclusive.");
        }
        this.status = status;
        this.statusText = init.statusText || "";
        this.headers = new G.Headers(init.headers);
        this.webSocket = init.webSocket || null;
        if (typeof body === "string" && !this.headers.has("content-type")) {
          this.headers.set("content-type", "text/plain;charset=UTF-8");
        }
      }
      get ok() { return this.status >= 200 && this.status < 300; }
      clone() { return new Response(this._body, this); }
      static json(data, init = {}) {
        const r = new Response(JSON.stringify(data), init);
        if (!(init.headers && new G.Headers(init.headers).has("content-type"))) r.headers.set("content-type", "application/json");
        return r;
      }
      static redirect(url, status = 302) {
        return new Response(null, { status, headers: { location: String(url) } });
      }
    }
    define("Response", Response);
  }
})
