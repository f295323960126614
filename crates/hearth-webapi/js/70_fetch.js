// Headers, Request, Response and the shared Body methods.
const kHeaders = Symbol("headers");
const kBody = Symbol("body");
const kReq = Symbol("request");
const kRes = Symbol("response");

const TOKEN_RE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const BODY_USED = "Body has already been used. It can only be used once. Use tee() first if you need to read it twice.";

function normalizeHeaderValue(v) {
  v = String(v);
  // Strip leading/trailing HTTP whitespace (tab, space, CR, LF).
  let s = 0, e = v.length;
  while (s < e && (v.charCodeAt(s) === 32 || v.charCodeAt(s) === 9 || v.charCodeAt(s) === 10 || v.charCodeAt(s) === 13)) s++;
  while (e > s && (v.charCodeAt(e - 1) === 32 || v.charCodeAt(e - 1) === 9 || v.charCodeAt(e - 1) === 10 || v.charCodeAt(e - 1) === 13)) e--;
  if (s !== 0 || e !== v.length) v = v.slice(s, e);
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c === 0 || c === 10 || c === 13 || c > 0xff) throw new TypeError("Invalid header value.");
  }
  return v;
}
function normalizeHeaderName(n) {
  n = String(n);
  if (!TOKEN_RE.test(n)) throw new TypeError("Invalid header name.");
  return n.toLowerCase();
}

class Headers {
  constructor(init = undefined) {
    this[kHeaders] = { map: new Map(), guard: "none" };
    if (init === undefined || init === null) return;
    headersFill(this, init);
  }
  append(name, value) {
    headersCheckMutable(this);
    headersAppend(this[kHeaders].map, normalizeHeaderName(name), normalizeHeaderValue(value));
  }
  delete(name) {
    headersCheckMutable(this);
    this[kHeaders].map.delete(normalizeHeaderName(name));
  }
  get(name) {
    const vals = this[kHeaders].map.get(normalizeHeaderName(name));
    return vals === undefined ? null : vals.join(", ");
  }
  getAll(name) {
    name = normalizeHeaderName(name);
    if (name !== "set-cookie") throw new TypeError("getAll() can only be used with the header name \"Set-Cookie\".");
    return this.getSetCookie();
  }
  getSetCookie() {
    const v = this[kHeaders].map.get("set-cookie");
    return v === undefined ? [] : v.slice();
  }
  has(name) { return this[kHeaders].map.has(normalizeHeaderName(name)); }
  set(name, value) {
    headersCheckMutable(this);
    this[kHeaders].map.set(normalizeHeaderName(name), [normalizeHeaderValue(value)]);
  }
  forEach(cb, thisArg) {
    if (typeof cb !== "function") throw new TypeError("The \"callback\" argument must be of type function.");
    for (const [k, v] of headersSorted(this)) cb.call(thisArg, v, k, this);
  }
  *entries() { yield* headersSorted(this); }
  *keys() { for (const e of headersSorted(this)) yield e[0]; }
  *values() { for (const e of headersSorted(this)) yield e[1]; }
  [Symbol.iterator]() { return this.entries(); }
}
tag(Headers);

function headersAppend(map, name, value) {
  const vals = map.get(name);
  if (vals === undefined) map.set(name, [value]);
  else vals.push(value);
}
function headersCheckMutable(h) {
  if (h[kHeaders].guard === "immutable") throw new TypeError("Can't modify immutable headers.");
}
function headersFill(h, init) {
  const map = h[kHeaders].map;
  if (init instanceof Headers) {
    for (const [k, v] of init[kHeaders].map) map.set(k, v.slice());
    return;
  }
  if (typeof init !== "object" && typeof init !== "function") throw new TypeError("Failed to construct 'Headers': The provided value is not of type '(record<ByteString, ByteString> or sequence<sequence<ByteString>>)'.");
  if (typeof init[Symbol.iterator] === "function") {
    for (const pair of init) {
      const arr = typeof pair === "string" ? [pair] : Array.from(pair);
      if (arr.length !== 2) throw new TypeError("To initialize a Headers object from a sequence, each inner sequence must have exactly two elements.");
      headersAppend(map, normalizeHeaderName(arr[0]), normalizeHeaderValue(arr[1]));
    }
    return;
  }
  for (const key of Object.keys(init)) headersAppend(map, normalizeHeaderName(key), normalizeHeaderValue(init[key]));
}
// Sorted, combined view; Set-Cookie values stay separate.
function headersSorted(h) {
  const names = Array.from(h[kHeaders].map.keys()).sort();
  const out = [];
  for (const n of names) {
    const vals = h[kHeaders].map.get(n);
    if (n === "set-cookie") for (const v of vals) out.push([n, v]);
    else out.push([n, vals.join(", ")]);
  }
  return out;
}
function headersFromFlat(flat, guard) {
  const h = Object.create(Headers.prototype);
  const map = new Map();
  for (let i = 0; i + 1 < flat.length; i += 2) headersAppend(map, String(flat[i]).toLowerCase(), flat[i + 1]);
  h[kHeaders] = { map, guard };
  return h;
}
function headersToFlat(h) {
  const out = [];
  for (const [k, vals] of h[kHeaders].map) {
    if (k === "set-cookie") for (const v of vals) out.push(k, v);
    else out.push(k, vals.join(", "));
  }
  return out;
}

// ---------- Body ----------

function isStream(v) { return v instanceof ReadableStream; }

// -> [src, contentType|null]; src is null | string | Uint8Array | ReadableStream.
function extractBody(body) {
  if (body === null || body === undefined) return [null, null];
  if (typeof body === "string") return [body, "text/plain;charset=UTF-8"];
  if (body instanceof ReadableStream) {
    if (body.locked || body[kState].disturbed) throw new TypeError("This ReadableStream is disturbed (has already been read from), and cannot be used as a body.");
    return [body, null];
  }
  const bytes = asBytes(body);
  if (bytes !== null) return [bytes.slice(), null];
  if (body instanceof Blob) return [body[kBlob].bytes, body.type || null];
  if (body instanceof URLSearchParams) return [body.toString(), "application/x-www-form-urlencoded;charset=UTF-8"];
  if (body instanceof FormData) { const m = encodeMultipart(body); return [m.bytes, m.contentType]; }
  return [String(body), "text/plain;charset=UTF-8"];
}

function bodyUsed(obj) {
  const b = obj[kBody];
  return b.used || (isStream(b.src) && b.src[kState].disturbed);
}

// Takes the body for consumption; throws when it was used already.
function takeBody(obj) {
  const b = obj[kBody];
  if (bodyUsed(obj)) throw new TypeError(BODY_USED);
  if (isStream(b.src) && b.src.locked) throw new TypeError("This ReadableStream is currently locked to a reader.");
  b.used = true;
  return b.src;
}

function bodyBytes(obj) {
  let src;
  try { src = takeBody(obj); } catch (e) { return Promise.reject(e); }
  if (src === null) return Promise.resolve(new Uint8Array(0));
  if (typeof src === "string") return Promise.resolve(native.utf8Encode(src));
  if (src instanceof Uint8Array) return Promise.resolve(obj[kBody].owned ? src : src.slice());
  return readAllBytes(src);
}

function bodyText(obj) {
  let src;
  try { src = takeBody(obj); } catch (e) { return Promise.reject(e); }
  if (src === null) return Promise.resolve("");
  if (typeof src === "string") return Promise.resolve(src);
  if (src instanceof Uint8Array) return Promise.resolve(utf8Decode(src));
  return readAllBytes(src).then(utf8Decode);
}

function contentTypeOf(obj) {
  const v = obj.headers.get("content-type");
  return v === null ? "" : v;
}

const BodyMethods = {
  get body() {
    const b = this[kBody];
    if (b.src === null) return b.used ? readableFromBytes(new Uint8Array(0)) : null;
    if (!isStream(b.src)) {
      const src = b.src;
      b.src = readableFromBytes(typeof src === "string" ? native.utf8Encode(src) : src);
      if (b.used) b.src[kState].disturbed = true;
    }
    return b.src;
  },
  get bodyUsed() { return bodyUsed(this); },
  text() { return bodyText(this); },
  json() {
    let src;
    try { src = takeBody(this); } catch (e) { return Promise.reject(e); }
    if (src === null || typeof src === "string") return Promise.resolve(src === null ? "" : src).then((t) => jsonParse(t));
    if (src instanceof Uint8Array) return Promise.resolve(src).then(jsonFromBytes);
    return readAllBytes(src).then(jsonFromBytes);
  },
  arrayBuffer() { return bodyBytes(this).then((b) => (b.byteOffset === 0 && b.byteLength === b.buffer.byteLength ? b.buffer : b.slice().buffer)); },
  bytes() { return bodyBytes(this); },
  blob() {
    const type = contentTypeOf(this);
    return bodyBytes(this).then((b) => makeBlob(Blob.prototype, b, normalizeType(type)));
  },
  formData() {
    const ct = contentTypeOf(this);
    const ess = essence(ct);
    if (ess === "multipart/form-data") {
      const boundary = contentTypeParam(ct, "boundary");
      if (!boundary) return Promise.reject(new TypeError("Failed to parse body as FormData: no boundary in Content-Type."));
      return bodyBytes(this).then((b) => decodeMultipart(b, boundary));
    }
    if (ess === "application/x-www-form-urlencoded") {
      return bodyText(this).then((t) => {
        const form = new FormData();
        const list = native.formParse(t);
        for (let i = 0; i < list.length; i += 2) form.append(list[i], list[i + 1]);
        return form;
      });
    }
    return Promise.reject(new TypeError("Unrecognized Content-Type header value. FormData can only parse the following MIME types: multipart/form-data, application/x-www-form-urlencoded"));
  },
};
function mixinBody(cls) {
  for (const key of Object.getOwnPropertyNames(BodyMethods)) {
    ObjectDefineProperty(cls.prototype, key, { ...Object.getOwnPropertyDescriptor(BodyMethods, key), enumerable: false });
  }
}

function cloneBody(obj) {
  const b = obj[kBody];
  // workerd's wording (sic) for cloning a consumed or locked body.
  if (bodyUsed(obj) || (isStream(b.src) && b.src.locked)) throw new TypeError("This ReadableStream is currently locked to a reader,");
  if (isStream(b.src)) {
    const [a, c] = b.src.tee();
    b.src = a;
    return { src: c, used: false };
  }
  b.owned = false;
  return { src: b.src, used: false };
}

// ---------- Request ----------

const METHODS = new Set(["DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH"]);
const REDIRECTS = new Set(["follow", "manual", "error"]);

function normalizeMethod(m) {
  m = String(m);
  const up = m.toUpperCase();
  if (METHODS.has(up)) return up;
  if (!TOKEN_RE.test(m)) throw new TypeError(`Invalid HTTP method string: ${m}`);
  if (up === "CONNECT" || up === "TRACE" || up === "TRACK") throw new TypeError(`Forbidden HTTP method: ${m}`);
  return m;
}

class Request {
  constructor(input, init = undefined) {
    if (arguments.length === 0) throw new TypeError("Failed to construct 'Request': constructor parameter 1 is not of type 'Request or string'.");
    init = init === undefined || init === null ? {} : init;
    let st;
    let inputBody = null;
    if (input instanceof Request) {
      const src = input[kReq];
      st = {
        method: src.method, url: src.url, headers: null, headersInit: null, redirect: src.redirect,
        signal: src.signal, cf: src.cf, cache: src.cache, integrity: src.integrity, keepalive: src.keepalive,
      };
      if (init.headers === undefined) st.headers = headersFromFlat(headersToFlat(input.headers), "request");
      inputBody = input;
    } else {
      const s = String(input);
      const href = native.urlHref(s);
      if (href === null) throw new TypeError(`Invalid URL: ${s}`);
      st = {
        method: "GET", url: href, headers: null, headersInit: null, redirect: "follow", signal: null,
        cf: undefined, cache: undefined, integrity: "", keepalive: false,
      };
    }
    if (init.method !== undefined) st.method = normalizeMethod(init.method);
    if (init.redirect !== undefined) {
      const r = String(init.redirect);
      if (!REDIRECTS.has(r)) throw new TypeError(`Invalid redirect value, must be one of "follow" or "manual" ("error" won't be implemented since it does not make sense at the edge; use "manual" and check the response status code).`);
      st.redirect = r;
    }
    if (init.signal !== undefined) {
      if (init.signal !== null && !(init.signal instanceof AbortSignal)) throw new TypeError("Failed to construct 'Request': member signal is not of type AbortSignal.");
      st.signal = init.signal;
    }
    if (init.cf !== undefined) st.cf = init.cf;
    if (init.cache !== undefined) {
      const c = String(init.cache);
      if (c !== "no-store" && c !== "no-cache" && c !== "default") throw new TypeError(`Unsupported cache mode: ${c}`);
      st.cache = c;
    }
    if (init.integrity !== undefined) st.integrity = String(init.integrity);
    if (init.keepalive !== undefined) st.keepalive = !!init.keepalive;
    if (init.headers !== undefined) {
      const h = new Headers(init.headers);
      h[kHeaders].guard = "request";
      st.headers = h;
    }
    let src = null, type = null, owned = false;
    if (init.body !== undefined && init.body !== null) {
      [src, type] = extractBody(init.body);
    } else if (inputBody !== null && init.body === undefined && inputBody[kBody].src !== null) {
      if (bodyUsed(inputBody)) throw new TypeError("Cannot reconstruct a Request with a used body.");
      src = inputBody[kBody].src;
      owned = inputBody[kBody].owned === true;
      // The body moves to the new request; the old one reads as used.
      inputBody[kBody] = { src: null, used: true };
    }
    if (src !== null && (st.method === "GET" || st.method === "HEAD")) {
      throw new TypeError("Request with a GET or HEAD method cannot have a body.");
    }
    this[kReq] = st;
    this[kBody] = { src, used: false, owned };
    if (type !== null) {
      const h = this.headers;
      if (!h.has("content-type")) h[kHeaders].map.set("content-type", [type]);
    }
  }
  get method() { return this[kReq].method; }
  get url() { return this[kReq].url; }
  get headers() {
    const st = this[kReq];
    if (st.headers === null) {
      st.headers = headersFromFlat(st.headersInit || [], st.guard || "request");
      st.headersInit = null;
    }
    return st.headers;
  }
  get redirect() { return this[kReq].redirect; }
  get signal() {
    const st = this[kReq];
    if (st.signal === null) st.signal = newSignal();
    return st.signal;
  }
  get cf() { return this[kReq].cf; }
  get cache() { return this[kReq].cache; }
  get integrity() { return this[kReq].integrity; }
  get keepalive() { return this[kReq].keepalive; }
  get fetcher() { return null; }
  clone() {
    const body = cloneBody(this);
    const r = Object.create(Request.prototype);
    const st = { ...this[kReq] };
    st.headers = headersFromFlat(headersToFlat(this.headers), this.headers[kHeaders].guard);
    st.headersInit = null;
    r[kReq] = st;
    r[kBody] = body;
    return r;
  }
}
mixinBody(Request);
tag(Request);

// ---------- Response ----------

const NULL_BODY_STATUS = new Set([101, 204, 205, 304]);
// Reason phrases used when no statusText is given, as Workers does.
const STATUS_TEXT = {
  100: "Continue", 101: "Switching Protocols", 102: "Processing", 103: "Early Hints",
  200: "OK", 201: "Created", 202: "Accepted", 203: "Non-Authoritative Information", 204: "No Content",
  205: "Reset Content", 206: "Partial Content", 207: "Multi-Status", 208: "Already Reported", 226: "IM Used",
  300: "Multiple Choices", 301: "Moved Permanently", 302: "Found", 303: "See Other", 304: "Not Modified",
  305: "Use Proxy", 307: "Temporary Redirect", 308: "Permanent Redirect",
  400: "Bad Request", 401: "Unauthorized", 402: "Payment Required", 403: "Forbidden", 404: "Not Found",
  405: "Method Not Allowed", 406: "Not Acceptable", 407: "Proxy Authentication Required", 408: "Request Timeout",
  409: "Conflict", 410: "Gone", 411: "Length Required", 412: "Precondition Failed", 413: "Payload Too Large",
  414: "URI Too Long", 415: "Unsupported Media Type", 416: "Range Not Satisfiable", 417: "Expectation Failed",
  418: "I'm a teapot", 421: "Misdirected Request", 422: "Unprocessable Entity", 423: "Locked", 424: "Failed Dependency",
  425: "Too Early", 426: "Upgrade Required", 428: "Precondition Required", 429: "Too Many Requests",
  431: "Request Header Fields Too Large", 451: "Unavailable For Legal Reasons",
  500: "Internal Server Error", 501: "Not Implemented", 502: "Bad Gateway", 503: "Service Unavailable",
  504: "Gateway Timeout", 505: "HTTP Version Not Supported", 506: "Variant Also Negotiates", 507: "Insufficient Storage",
  508: "Loop Detected", 510: "Not Extended", 511: "Network Authentication Required",
};
const REDIRECT_STATUS = new Set([301, 302, 303, 307, 308]);

class Response {
  constructor(body = null, init = undefined) {
    init = init === undefined || init === null ? {} : init;
    if (typeof init !== "object") throw new TypeError("Failed to construct 'Response': cannot convert init to a dictionary.");
    const ws = init.webSocket === undefined || init.webSocket === null ? null : init.webSocket;
    const status = init.status === undefined ? 200 : Number(init.status) | 0;
    if (ws === null) {
      if (!(status >= 200 && status <= 599)) {
        throw new RangeError("Responses may only be constructed with status codes in the range 200 to 599, inclusive.");
      }
    } else if (status !== 101) {
      throw new RangeError("Responses with a WebSocket must have status code 101.");
    }
    let statusText = null;
    if (init.statusText !== undefined) {
      statusText = String(init.statusText);
      // Control characters could smuggle header lines.
      for (let i = 0; i < statusText.length; i++) if (statusText.charCodeAt(i) < 0x20) throw new TypeError("Invalid statusText");
    }
    let [src, type] = extractBody(body);
    if (src !== null && NULL_BODY_STATUS.has(status)) {
      // Workers accepts an empty in-memory body here and treats it as null.
      if (isStream(src) || (src.length !== 0 && src.byteLength !== 0)) {
        throw new TypeError("Response with null body status (101, 204, 205, or 304) cannot have a body.");
      }
      src = null;
    }
    let headers = null, headersInit = null;
    if (init.headers !== undefined) {
      headers = new Headers(init.headers);
      headers[kHeaders].guard = "response";
      if (type !== null && !headers[kHeaders].map.has("content-type")) headers[kHeaders].map.set("content-type", [type]);
    } else if (type !== null) {
      headersInit = ["content-type", type];
    }
    this[kRes] = {
      status, statusText, headers, headersInit, type: "default", url: "", redirected: false,
      webSocket: ws, cf: init.cf, encodeBody: init.encodeBody === undefined ? "automatic" : String(init.encodeBody),
    };
    this[kBody] = { src, used: false };
  }
  static json(data, init = undefined) {
    const text = jsonStringify(data);
    if (text === undefined) throw new TypeError("The data is not JSON serializable.");
    init = init === undefined || init === null ? {} : init;
    const r = new Response(text, { ...init, headers: init.headers });
    const h = r.headers;
    if (init.headers === undefined || !new Headers(init.headers).has("content-type")) h[kHeaders].map.set("content-type", ["application/json"]);
    return r;
  }
  static redirect(url, status = 302) {
    status = Number(status) | 0;
    if (!REDIRECT_STATUS.has(status)) throw new RangeError(`${status} is not a redirect status code. It must be one of: 301, 302, 303, 307, or 308.`);
    const href = native.urlHref(String(url));
    if (href === null) throw new TypeError(`Unable to parse URL: ${url}`);
    const r = new Response(null, { status });
    r[kRes].headersInit = ["location", href];
    r.headers[kHeaders].guard = "immutable";
    return r;
  }
  static error() {
    const r = new Response(null, { status: 200 });
    r[kRes].status = 0;
    r[kRes].type = "error";
    r.headers[kHeaders].guard = "immutable";
    return r;
  }
  get status() { return this[kRes].status; }
  get statusText() {
    const t = this[kRes].statusText;
    return t === null ? STATUS_TEXT[this[kRes].status] || "" : t;
  }
  get ok() { return this[kRes].status >= 200 && this[kRes].status <= 299; }
  get redirected() { return this[kRes].redirected; }
  get type() { return this[kRes].type; }
  get url() { return this[kRes].url; }
  get webSocket() { return this[kRes].webSocket; }
  get cf() { return this[kRes].cf; }
  get encodeBody() { return this[kRes].encodeBody; }
  get headers() {
    const st = this[kRes];
    if (st.headers === null) {
      st.headers = headersFromFlat(st.headersInit || [], st.guard || "response");
      st.headersInit = null;
    }
    return st.headers;
  }
  clone() {
    if (this[kRes].webSocket !== null) throw new TypeError("Cannot clone a response to a WebSocket handshake.");
    const body = cloneBody(this);
    const r = Object.create(Response.prototype);
    const st = { ...this[kRes] };
    st.headers = headersFromFlat(headersToFlat(this.headers), this.headers[kHeaders].guard);
    st.headersInit = null;
    r[kRes] = st;
    r[kBody] = body;
    return r;
  }
}
mixinBody(Response);
tag(Response);

// ---------- host hooks (see lib.rs) ----------

function hostMakeRequest(method, url, flatHeaders, body, cf) {
  const r = Object.create(Request.prototype);
  // Incoming requests carry immutable headers, as on Workers.
  r[kReq] = {
    method, url, headers: null, headersInit: flatHeaders, guard: "immutable", redirect: "follow", signal: null,
    cf, cache: undefined, integrity: "", keepalive: false,
  };
  // The host's bytes belong to this body alone: read whole, they are handed
  // over without a copy.
  r[kBody] = { src: body, used: false, owned: body !== null };
  return r;
}

function hostIsResponse(v) { return v instanceof Response; }

// A Response for bytes the host received (fetch results). `body` is null, a
// Uint8Array or a ReadableStream made by hostNewStream.
function hostMakeResponse(status, statusText, flatHeaders, body, url, redirected) {
  const r = Object.create(Response.prototype);
  r[kRes] = {
    status, statusText, headers: null, headersInit: flatHeaders, guard: "immutable", type: "basic", url: url || "", redirected: !!redirected,
    webSocket: null, cf: undefined, encodeBody: "automatic",
  };
  r[kBody] = { src: body, used: false };
  return r;
}

// -> [method, url, flatHeaders, kind, body, redirect, signal|null]; marks the body used.
function hostRequestParts(req) {
  if (!(req instanceof Request)) throw new TypeError("Expected a Request.");
  const st = req[kReq];
  const flat = st.headers !== null ? headersToFlat(st.headers) : st.headersInit || [];
  const src = takeBody(req);
  const kind = src === null ? 0 : typeof src === "string" ? 1 : src instanceof Uint8Array ? 2 : 3;
  return [st.method, st.url, flat, kind, src, st.redirect, st.signal];
}

// A byte stream the host feeds: [stream, controller]. The controller has
// enqueue(Uint8Array), close() and error(e). `onPull` is called each time the
// stream wants another chunk, so the host reads its source only as fast as
// the worker consumes it. `external` marks a request body: read whole, it is
// joined outside the counted heap.
function hostNewStream(onPull, external) {
  let controller;
  const source = { start(c) { controller = c; } };
  if (typeof onPull === "function") source.pull = () => { onPull(); };
  const stream = new ReadableStream(source, { highWaterMark: 65536, size: (c) => c.byteLength });
  if (external === true) stream[kExternal] = true;
  // Plain functions, so the host can call them without binding `this`.
  const handle = {
    enqueue: (chunk) => controller.enqueue(chunk),
    close: () => controller.close(),
    error: (e) => controller.error(e),
    get desiredSize() { return controller.desiredSize; },
  };
  return [stream, handle];
}

// -> [status, statusText, flatHeaders, kind (0 none, 1 string, 2 bytes, 3 stream), body, webSocket]
function hostResponseParts(res) {
  if (!(res instanceof Response)) throw new TypeError("Incorrect type for the 'handler' return value: expected a Response.");
  const st = res[kRes];
  const flat = st.headers !== null ? headersToFlat(st.headers) : st.headersInit || [];
  const src = takeBody(res);
  const kind = src === null ? 0 : typeof src === "string" ? 1 : src instanceof Uint8Array ? 2 : 3;
  return [st.status, res.statusText, flat, kind, src, st.webSocket];
}

const kHostReader = Symbol("hostReader");
// Cancels a stream read by hostReadChunk whose destination went away, so
// its source (a file, a socket) is released.
function hostCancelChunks(stream) {
  const reader = stream[kHostReader];
  if (reader) reader.cancel().catch(() => {});
}

function hostReadChunk(stream) {
  let reader = stream[kHostReader];
  if (!reader) { reader = stream.getReader(); stream[kHostReader] = reader; }
  return reader.read().then((r) => {
    if (r.done) { reader.releaseLock(); return null; }
    const v = r.value;
    if (typeof v === "string") return native.utf8Encode(v);
    const b = asBytes(v);
    if (b === null) throw new TypeError("This ReadableStream did not return bytes.");
    return b;
  }, (e) => { reader.releaseLock(); throw e; });
}

defineGlobal("Headers", Headers);
defineGlobal("Request", Request);
defineGlobal("Response", Response);
