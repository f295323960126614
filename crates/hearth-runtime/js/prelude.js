// Host side of the worker's global scope: timers, console, ctx, fetch() and
// request dispatch. Evaluated once per isolate as a function of the native
// `host` object, which stays private to this closure.
(function (host) {
  "use strict";
  const G = globalThis;
  const define = (name, value) =>
    Object.defineProperty(G, name, { value, writable: true, configurable: true, enumerable: false });

  // ---- Error.prototype.stack ---------------------------------------------
  // V8's `stack` begins with the error's `Name: message` line, which loggers
  // print as they find it; QuickJS keeps only the frames. The line is added
  // when `stack` is first read, as V8 formats it lazily: a subclass that sets
  // `this.name` after super() is named, and an error never read costs nothing.
  function errorHeader(e) {
    const name = e.name === undefined ? "Error" : String(e.name);
    const message = e.message === undefined ? "" : String(e.message);
    if (name === "") return message;
    if (message === "") return name;
    return name + ": " + message;
  }
  // The frames of a stack read from JS, without the line added above.
  function stackFrames(e, stack) {
    let h;
    try { h = errorHeader(e); } catch { return stack; }
    if (stack === h) return "";
    return stack.startsWith(h + "\n") ? stack.slice(h.length + 1) : stack;
  }
  (function () {
    const EP = G.Error.prototype;
    const d = Object.getOwnPropertyDescriptor(EP, "stack");
    if (d === undefined || typeof d.get !== "function") return;
    const frames = d.get;
    Object.defineProperty(EP, "stack", {
      configurable: true,
      enumerable: false,
      get: { stack() {
        const raw = frames.call(this);
        // What a worker's own Error.prepareStackTrace made is used as is.
        if (typeof raw !== "string" || typeof G.Error.prepareStackTrace === "function") return raw;
        let full;
        try {
          const h = errorHeader(this);
          const f = raw.endsWith("\n") ? raw.slice(0, -1) : raw;
          full = f === "" ? h : h + "\n" + f;
        } catch {
          return raw;
        }
        // Formatted once: from here on an own value, as on V8.
        if (Object.isExtensible(this)) {
          Object.defineProperty(this, "stack", { value: full, writable: true, configurable: true, enumerable: false });
        }
        return full;
      } }.stack,
      set: d.set,
    });
    // Error.captureStackTrace(target) gives the target an own `stack`; V8's
    // also starts with the head line, read when first asked for.
    const capture = G.Error.captureStackTrace;
    if (typeof capture !== "function") return;
    Object.defineProperty(G.Error, "captureStackTrace", {
      configurable: true,
      writable: true,
      enumerable: false,
      value: { captureStackTrace(target, fn) {
        capture(target, fn);
        if (typeof G.Error.prepareStackTrace === "function") return;
        const own = Object.getOwnPropertyDescriptor(target, "stack");
        if (own === undefined || typeof own.value !== "string" || !own.configurable) return;
        const raw = own.value.endsWith("\n") ? own.value.slice(0, -1) : own.value;
        const put = (v) => Object.defineProperty(target, "stack", { value: v, writable: true, configurable: true, enumerable: false });
        Object.defineProperty(target, "stack", {
          configurable: true,
          enumerable: false,
          get() {
            let full;
            try { const h = errorHeader(target); full = raw === "" ? h : h + "\n" + raw; } catch { full = raw; }
            put(full);
            return full;
          },
          set(v) { put(v); },
        });
      } }.captureStackTrace,
    });
  })();

  // ---- console -----------------------------------------------------------
  function inspect(v, seen, depth) {
    switch (typeof v) {
      case "string": return depth === 0 ? v : JSON.stringify(v);
      case "undefined": return "undefined";
      case "function": return "[Function: " + (v.name || "anonymous") + "]";
      case "symbol": return v.toString();
      case "bigint": return v.toString() + "n";
      case "number": case "boolean": return String(v);
    }
    if (v === null) return "null";
    if (v instanceof Error) {
      const frames = typeof v.stack === "string" ? stackFrames(v, v.stack).trimEnd() : "";
      return frames ? v.name + ": " + v.message + "\n" + frames : v.name + ": " + v.message;
    }
    if (seen.has(v)) return "[Circular]";
    if (depth > 3) return Array.isArray(v) ? "[Array]" : "[Object]";
    seen.add(v);
    try {
      if (Array.isArray(v)) return "[ " + v.map((x) => inspect(x, seen, depth + 1)).join(", ") + " ]";
      if (v instanceof Map) return "Map(" + v.size + ") { " + [...v].map(([k, x]) => inspect(k, seen, depth + 1) + " => " + inspect(x, seen, depth + 1)).join(", ") + " }";
      if (v instanceof Set) return "Set(" + v.size + ") { " + [...v].map((x) => inspect(x, seen, depth + 1)).join(", ") + " }";
      if (v instanceof Date) return v.toISOString();
      if (ArrayBuffer.isView(v)) return v.constructor.name + "(" + v.length + ") [ " + Array.prototype.slice.call(v, 0, 32).join(", ") + (v.length > 32 ? ", ..." : "") + " ]";
      const keys = Object.keys(v);
      const name = v.constructor && v.constructor !== Object && v.constructor.name ? v.constructor.name + " " : "";
      if (keys.length === 0) return name + "{}";
      return name + "{ " + keys.map((k) => k + ": " + inspect(v[k], seen, depth + 1)).join(", ") + " }";
    } finally {
      seen.delete(v);
    }
  }
  function format(args) {
    let out = "";
    for (let i = 0; i < args.length; i++) {
      if (i > 0) out += " ";
      out += inspect(args[i], new Set(), 0);
    }
    return out;
  }
  const counts = new Map();
  const timersByLabel = new Map();
  const console = {
    log: (...a) => host.log(2, format(a)),
    info: (...a) => host.log(2, format(a)),
    debug: (...a) => host.log(1, format(a)),
    trace: (...a) => { const e = new Error(); host.log(0, format(a) + "\n" + stackFrames(e, e.stack || "")); },
    warn: (...a) => host.log(3, format(a)),
    error: (...a) => host.log(4, format(a)),
    assert: (cond, ...a) => { if (!cond) host.log(4, "Assertion failed" + (a.length ? ": " + format(a) : "")); },
    dir: (v) => host.log(2, inspect(v, new Set(), 1)),
    table: (...a) => host.log(2, format(a)),
    count: (label = "default") => { const n = (counts.get(label) || 0) + 1; counts.set(label, n); host.log(2, label + ": " + n); },
    countReset: (label = "default") => counts.delete(label),
    time: (label = "default") => timersByLabel.set(label, host.now()),
    timeLog: (label = "default", ...a) => host.log(2, label + ": " + (host.now() - (timersByLabel.get(label) ?? host.now())) + "ms" + (a.length ? " " + format(a) : "")),
    timeEnd: (label = "default") => { host.log(2, label + ": " + (host.now() - (timersByLabel.get(label) ?? host.now())) + "ms"); timersByLabel.delete(label); },
    group: (...a) => { if (a.length) host.log(2, format(a)); },
    groupCollapsed: (...a) => { if (a.length) host.log(2, format(a)); },
    groupEnd: () => {},
  };
  define("console", console);

  // ---- async context (node:async_hooks' AsyncLocalStorage) -------------------
  // `frame` is the current context: a Map from each AsyncLocalStorage to its
  // store, or undefined. Module code puts it back after each `await` (the
  // loader rewrites awaits to call `r`, see modules/async_context.rs);
  // `.then()` callbacks and timers run in the frame current when they were
  // registered. Nothing is wrapped until a context is first entered, and
  // the host clears the frame after each turn of the event loop.
  let frame;
  let contextOn = false;
  function inFrame(fn, f) {
    return function () {
      const prev = frame;
      frame = f;
      try { return fn.apply(this, arguments); } finally { frame = prev; }
    };
  }
  function enableContext() {
    if (contextOn) return;
    contextOn = true;
    host.asyncContextOn();
    const then = G.Promise.prototype.then;
    Object.defineProperty(G.Promise.prototype, "then", {
      value: function then_(onFulfilled, onRejected) {
        const f = frame;
        return then.call(this,
          typeof onFulfilled === "function" ? inFrame(onFulfilled, f) : onFulfilled,
          typeof onRejected === "function" ? inFrame(onRejected, f) : onRejected);
      },
      writable: true, configurable: true, enumerable: false,
    });
  }
  define("__hearth_ac", Object.freeze({
    c: () => frame,
    r: (f, value) => { frame = f; return value; },
    enable: enableContext,
    bind: (fn) => (contextOn ? inFrame(fn, frame) : fn),
  }));
  function resetContext() { frame = undefined; }

  // ---- node:fs's hooks: the request running, the bundle, request ends --------
  const requestEndHooks = [];
  define("__hearth_io", Object.freeze({
    requestId: () => host.requestId(),
    tmpUsed: () => host.tmpUsed(),
    bundleFiles: () => host.bundleFiles(),
    bundleRead: (name) => host.bundleRead(name),
    onRequestEnd: (fn) => { requestEndHooks.push(fn); },
  }));

  // ---- timers --------------------------------------------------------------
  // Callbacks live here; the host only keeps deadlines and calls fireTimer.
  const timers = new Map();
  let nextTimerId = 1;
  function toDelay(ms) {
    ms = Number(ms);
    return ms > 0 && ms < 2147483648 ? Math.floor(ms) : 0;
  }
  function addTimer(fn, ms, args, repeat) {
    if (typeof fn !== "function") {
      throw new TypeError("The callback provided as parameter 1 is not a function.");
    }
    const id = nextTimerId++;
    const delay = toDelay(ms);
    if (contextOn) fn = inFrame(fn, frame);
    timers.set(id, { fn, args, repeat, delay });
    host.timerStart(id, delay);
    return id;
  }
  function fireTimer(id) {
    const t = timers.get(id);
    if (t === undefined) return;
    if (t.repeat) host.timerStart(id, t.delay);
    else timers.delete(id);
    t.fn.apply(undefined, t.args);
  }
  define("setTimeout", (fn, ms, ...args) => addTimer(fn, ms, args, false));
  define("setInterval", (fn, ms, ...args) => addTimer(fn, ms, args, true));
  define("clearTimeout", (id) => { timers.delete(Number(id)); });
  define("clearInterval", (id) => { timers.delete(Number(id)); });
  // The host ended these requests: their timers are cancelled and a body
  // they did not read is gone.
  function endIo(timerIds, rids) {
    for (const id of timerIds) timers.delete(id);
    for (const rid of rids) {
      for (const hook of requestEndHooks) hook(rid);
      const h = requestBodies.get(rid);
      if (h === undefined) continue;
      requestBodies.delete(rid);
      try { h.error(new TypeError("The request body is no longer available: its request has ended.")); } catch (_) { /* closed */ }
    }
  }
  define("queueMicrotask", (fn) => {
    if (typeof fn !== "function") throw new TypeError("The callback provided as parameter 1 is not a function.");
    Promise.resolve().then(() => fn());
  });
  define("scheduler", { wait: (ms) => new Promise((resolve) => addTimer(resolve, ms, [], false)) });

  // ---- misc globals ----------------------------------------------------------
  const performance = { now: () => host.now(), timeOrigin: 0, toJSON() { return { timeOrigin: 0 }; } };
  define("performance", performance);
  define("navigator", Object.freeze({ userAgent: "Cloudflare-Workers", hardwareConcurrency: 1, language: "en" }));
  if (G.self === undefined) define("self", G);

  // ---- bodies between host and JS -------------------------------------------
  function headerPairs(headers) {
    const out = [];
    for (const [k, v] of headers) out.push(k, v);
    return out;
  }
  // The Web platform's host hooks, when installed (see hearth-webapi).
  const W = G.__hearth_webapi;
  if (W === undefined || typeof W.makeRequest !== "function" || typeof W.responseParts !== "function") {
    throw new Error("the Web platform globals must be installed before the host prelude");
  }

  // Turns a Response into [status, statusText, flatHeaders, body, webSocket,
  // isStream] where body is null, a string, bytes, or a ReadableStream.
  function readResponse(r) {
    const p = W.responseParts(r);
    const kind = p[3];
    const body = kind === 0 ? null : p[4];
    return [p[0], p[1], p[2], body, p[5] ?? null, kind === 3];
  }
  // Request bodies still arriving, by request: the stream controllers the
  // host's chunks go to.
  const requestBodies = new Map();
  function makeRequest(method, url, headers, body, cf) {
    if (typeof body === "number") {
      // A streamed body: the host sends a chunk each time the stream pulls.
      const rid = body;
      const pair = W.newStream(() => host.bodyPull(rid), true);
      requestBodies.set(rid, pair[1]);
      return W.makeRequest(method, url, headers, pair[0], cf);
    }
    return W.makeRequest(method, url, headers, body === null ? null : new Uint8Array(body), cf);
  }
  function bodyChunk(rid, buf, message) {
    const h = requestBodies.get(rid);
    if (h === undefined) return;
    if (buf !== undefined && buf !== null) {
      try { h.enqueue(new Uint8Array(buf)); } catch (_) { requestBodies.delete(rid); }
      return;
    }
    requestBodies.delete(rid);
    try {
      if (message === undefined || message === null) h.close();
      else h.error(new TypeError(message));
    } catch (_) { /* cancelled */ }
  }

  // ---- dispatch --------------------------------------------------------------
  let handler = null;
  let env = {};
  let isClass = false;
  const noResponse = "Incorrect type for Promise: the Promise did not resolve to 'Response'.";

  class ExecutionContext {
    #rid; #waits;
    constructor(rid) { this.#rid = rid; this.#waits = null; this.props = {}; }
    waitUntil(p) {
      const rid = this.#rid;
      const tracked = Promise.resolve(p).catch((e) => host.uncaught(rid, e));
      if (this.#waits === null) this.#waits = [];
      this.#waits.push(tracked);
    }
    passThroughOnException() { host.passThrough(this.#rid); }
    __drain() {
      const waits = this.#waits;
      if (waits === null || waits.length === 0) return null;
      const rid = this.#rid;
      return (async () => {
        while (waits.length) await Promise.allSettled(waits.splice(0));
        host.done(rid);
      })();
    }
  }

  function finish(rid, ctx, r) {
    if (!(r instanceof G.Response)) {
      host.fail(rid, new TypeError(noResponse));
      settle(rid, ctx);
      return;
    }
    let out;
    try {
      out = readResponse(r);
    } catch (e) {
      host.fail(rid, e);
      settle(rid, ctx);
      return;
    }
    if (out[4] !== null) {
      let id;
      try {
        if (!(out[4] instanceof WebSocket)) throw new TypeError("webSocket must be the client end of a WebSocketPair.");
        id = out[4].__attach();
      } catch (e) {
        host.fail(rid, e);
        settle(rid, ctx);
        return;
      }
      host.respondWebSocket(rid, out, id);
      out[4].__flush();
      settle(rid, ctx);
      return;
    }
    if (out[5]) {
      // A ReadableStream body: send the head now, then pump the chunks.
      host.respondStream(rid, out);
      pump(rid, out[3]).then(() => settle(rid, ctx));
      return;
    }
    host.respond(rid, out);
    settle(rid, ctx);
  }
  // Streams waiting for the client to take a chunk, by request.
  const streamWaits = new Map();
  function streamReady(rid, open) {
    const resolve = streamWaits.get(rid);
    if (resolve === undefined) return;
    streamWaits.delete(rid);
    resolve(open);
  }
  async function pump(rid, stream) {
    try {
      for (;;) {
        const chunk = await W.readChunk(stream);
        if (chunk === null) break;
        let sent = host.streamChunk(rid, chunk);
        if (sent === 1) {
          // The host's buffer is full: read no further until it drains.
          sent = (await new Promise((resolve) => streamWaits.set(rid, resolve))) ? 0 : 2;
        }
        if (sent === 2) {
          // The client went away: stop producing.
          host.streamEnd(rid, null);
          W.cancelChunks(stream);
          return;
        }
      }
      host.streamEnd(rid, null);
    } catch (e) {
      host.streamEnd(rid, e);
    }
  }
  function settle(rid, ctx) {
    if (ctx.__drain() === null) host.done(rid);
  }

  // `request.cf` for a request served locally: only what the server knows.
  // Hearth serves HTTP/1.x without TLS and knows no geography or bot score,
  // so those fields are absent rather than made up (a check on cf.country or
  // a bot score must not pass by accident). A fresh object per request, as
  // on Workers, so one request's edits do not leak into the next.
  function localCf(headers) {
    const cf = { httpProtocol: "HTTP/1.1" };
    for (let i = 0; i + 1 < headers.length; i += 2) {
      // Names from the HTTP front are lower case already; the length test
      // spares every other header a lower-casing copy.
      const name = headers[i];
      if (name.length === 15 && (name === "accept-encoding" || String(name).toLowerCase() === "accept-encoding")) {
        cf.clientAcceptEncoding = headers[i + 1];
      }
    }
    return cf;
  }

  function dispatch(rid, method, url, headers, body, cf) {
    const ctx = new ExecutionContext(rid);
    let result;
    try {
      const request = makeRequest(method, url, headers, body, cf === undefined ? localCf(headers) : cf);
      if (handler === null) throw new Error("Handler does not export a fetch() function.");
      if (isClass) {
        result = new handler(ctx, env).fetch(request);
      } else {
        result = handler.fetch(request, env, ctx);
      }
    } catch (e) {
      host.fail(rid, e);
      settle(rid, ctx);
      return;
    }
    if (result instanceof G.Response) {
      finish(rid, ctx, result);
    } else if (result !== null && typeof result === "object" && typeof result.then === "function") {
      result.then((r) => finish(rid, ctx, r), (e) => { host.fail(rid, e); settle(rid, ctx); });
    } else {
      finish(rid, ctx, result);
    }
  }

  function setEnv(e) { env = e; }
  function setHandler(def) {
    if (typeof def === "function" && def.prototype && typeof def.prototype.fetch === "function") {
      handler = def;
      isClass = true;
    } else if (def !== null && typeof def === "object" && typeof def.fetch === "function") {
      handler = def;
    } else {
      handler = null;
    }
    return handler !== null;
  }

  // ---- fetch() ----------------------------------------------------------------
  // `inflight` holds fetches waiting for their response head; `bodies` the
  // stream controllers of responses whose body is still arriving.
  const inflight = new Map();
  const bodies = new Map();
  let nextFetchId = 1;
  function abortError(signal) {
    if (signal.reason !== undefined) return signal.reason;
    return typeof G.DOMException === "function"
      ? new G.DOMException("The operation was aborted.", "AbortError")
      : Object.assign(new Error("The operation was aborted."), { name: "AbortError" });
  }
  async function fetch(input, init) {
    // `init.cf` (Cloudflare's per-request cache/image options) is accepted
    // by Request and has no effect here: there is no edge cache in front.
    const req = new G.Request(input, init);
    const redirect = req.redirect || "follow";
    const signal = req.signal || (init && init.signal) || null;
    if (signal && signal.aborted) throw abortError(signal);
    const scheme = String(req.url).split(":", 1)[0].toLowerCase();
    if (scheme !== "http" && scheme !== "https") {
      throw new TypeError("Fetch API cannot load: " + req.url);
    }
    // A stream (a request body passed through, say) is sent as it is
    // read, never gathered; a string or bytes are sent whole.
    const parts = W.requestParts(req);
    const stream = parts[3] === 3 ? parts[4] : null;
    const body = parts[3] === 1 || parts[3] === 2 ? parts[4] : null;
    const id = nextFetchId++;
    return new Promise((resolve, reject) => {
      let onAbort = null;
      if (signal) {
        onAbort = () => {
          if (inflight.delete(id)) {
            host.fetchAbort(id);
            reject(abortError(signal));
            return;
          }
          const b = bodies.get(id);
          if (b !== undefined) {
            bodies.delete(id);
            host.fetchAbort(id);
            try { b.handle.error(abortError(signal)); } catch (_) { /* already closed */ }
          }
        };
        signal.addEventListener("abort", onAbort);
      }
      inflight.set(id, { resolve, reject, signal, onAbort, head: req.method === "HEAD" });
      host.fetchStart(id, req.method, String(req.url), headerPairs(req.headers), body, redirect, stream !== null);
      if (stream !== null) pumpFetchBody(id, stream);
    });
  }
  // Fetches whose request body channel is full, by fetch.
  const fetchBodyWaits = new Map();
  function fetchBodyReady(id, open) {
    const resolve = fetchBodyWaits.get(id);
    if (resolve === undefined) return;
    fetchBodyWaits.delete(id);
    resolve(open);
  }
  async function pumpFetchBody(id, stream) {
    try {
      for (;;) {
        const chunk = await W.readChunk(stream);
        if (chunk === null) break;
        let sent = host.fetchBodyChunk(id, chunk);
        if (sent === 1) sent = (await new Promise((resolve) => fetchBodyWaits.set(id, resolve))) ? 0 : 2;
        if (sent === 2) {
          // The fetch no longer reads it: release the source.
          W.cancelChunks(stream);
          return;
        }
      }
      host.fetchBodyEnd(id);
    } catch (e) {
      host.fetchBodyEnd(id, String(e && e.message !== undefined ? e.message : e));
    }
  }
  function unlisten(f) {
    if (f.signal && f.onAbort) f.signal.removeEventListener("abort", f.onAbort);
  }
  function fetchDone(id, status, statusText, headers, url, redirected) {
    const f = inflight.get(id);
    if (f === undefined) return;
    inflight.delete(id);
    try {
      const nullBody = f.head || status === 101 || status === 204 || status === 205 || status === 304;
      let stream = null;
      if (nullBody) {
        unlisten(f);
        // The host still reports the (empty) body's end; nobody waits for it.
      } else {
        const pair = W.newStream(() => host.fetchPull(id));
        stream = pair[0];
        bodies.set(id, { handle: pair[1], signal: f.signal, onAbort: f.onAbort });
      }
      f.resolve(W.makeResponse(status, statusText, headers, stream, url, redirected));
    } catch (e) {
      f.reject(e);
    }
  }
  function fetchFailed(id, message) {
    const f = inflight.get(id);
    if (f === undefined) return;
    inflight.delete(id);
    unlisten(f);
    f.reject(new TypeError(message));
  }
  function fetchChunk(id, buf) {
    const b = bodies.get(id);
    if (b === undefined) return;
    try {
      b.handle.enqueue(new Uint8Array(buf));
    } catch (_) {
      // The reader cancelled the body: stop receiving it.
      bodies.delete(id);
      unlisten(b);
      host.fetchAbort(id);
    }
  }
  function fetchEnd(id, message) {
    const b = bodies.get(id);
    if (b === undefined) return;
    bodies.delete(id);
    unlisten(b);
    try {
      if (message === null || message === undefined) b.handle.close();
      else b.handle.error(new TypeError(message));
    } catch (_) { /* the reader cancelled it already */ }
  }
  define("fetch", fetch);
  // A binding's glue calling one of the worker's in-process services
  // (Workers AI's gateway calls): answered like a fetch, without a socket.
  function localFetch(service, method, path, headers, body) {
    const id = nextFetchId++;
    return new Promise((resolve, reject) => {
      inflight.set(id, { resolve, reject, signal: null, onAbort: null, head: false });
      try {
        host.localFetchStart(id, String(service), String(method), String(path), headers, body);
      } catch (e) {
        inflight.delete(id);
        reject(e);
      }
    });
  }
  Object.defineProperty(G, Symbol.for("hearth.localFetch"), { value: localFetch });


  // ---- WebSocketPair ---------------------------------------------------------
  // Two linked ends. The end returned in a 101 Response is handed to the
  // host, which carries its traffic over the client's connection.
  const WS_OPEN = 1, WS_CLOSING = 2, WS_CLOSED = 3;
  const sockets = new Map();
  let nextSocketId = 1;
  function makeEvent(type, props) {
    const e = new G.Event(type);
    for (const k of Object.keys(props)) Object.defineProperty(e, k, { value: props[k], enumerable: true });
    return e;
  }
  class WebSocket extends G.EventTarget {
    // #queue holds ["m", data] / ["c", code, reason] that arrived before
    // accept() (fired then as events) or before the host took this end
    // over (forwarded then to the client).
    #peer = null; #accepted = false; #queue = []; #hostId = 0; #state = WS_OPEN;
    // A close frame each way: closing after one, closed after both.
    #sentClose = false; #gotClose = false;
    static get READY_STATE_CONNECTING() { return 0; }
    static get READY_STATE_OPEN() { return 1; }
    static get READY_STATE_CLOSING() { return 2; }
    static get READY_STATE_CLOSED() { return 3; }
    constructor() {
      super();
      if (!WebSocket.__constructing) {
        throw new TypeError("Illegal constructor: outgoing WebSockets are not supported; use WebSocketPair.");
      }
    }
    get readyState() { return this.#state; }
    get url() { return null; }
    get protocol() { return ""; }
    get extensions() { return ""; }
    accept() {
      if (this.#accepted) throw new TypeError("Can't accept() WebSocket more than once.");
      if (this.#hostId !== 0) throw new TypeError("Can't accept() WebSocket that was already used in a response.");
      this.#accepted = true;
      const queued = this.#queue;
      this.#queue = [];
      for (const m of queued) this.__take(m);
    }
    send(data) {
      if (!this.#accepted) throw new TypeError("You must call accept() on this WebSocket before sending messages.");
      if (this.#state !== WS_OPEN) throw new TypeError("Can't call WebSocket send() after close().");
      let payload;
      if (typeof data === "string") payload = data;
      else if (data instanceof ArrayBuffer) payload = data.slice(0);
      else if (ArrayBuffer.isView(data)) payload = data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength);
      else payload = String(data);
      this.#peer.__take(["m", payload]);
    }
    close(code = 1000, reason = "") {
      if (!this.#accepted) throw new TypeError("You must call accept() on this WebSocket before sending messages.");
      if (this.#sentClose) return;
      code = Number(code);
      if (code !== 1000 && !(code >= 3000 && code <= 4999)) throw new TypeError("Invalid WebSocket close code: " + code + ".");
      this.#sentClose = true;
      this.#state = this.#gotClose ? WS_CLOSED : WS_CLOSING;
      this.#peer.__take(["c", code, String(reason)]);
    }
    #fire(e) {
      const handler = this["on" + e.type];
      if (typeof handler === "function") handler.call(this, e);
      this.dispatchEvent(e);
    }
    // A message or close for this end, from its peer or from the client.
    __take(m) {
      if (this.#hostId !== 0) {
        if (m[0] === "m") host.wsSend(this.#hostId, m[1]);
        else { host.wsClose(this.#hostId, m[1], m[2]); this.#state = WS_CLOSED; }
      } else if (!this.#accepted) {
        this.#queue.push(m);
      } else if (m[0] === "m") {
        this.#fire(makeEvent("message", { data: m[1] }));
      } else {
        // The other side's close: this end is closed if it had closed too,
        // else closing until the worker answers with close().
        this.#gotClose = true;
        this.#state = this.#sentClose ? WS_CLOSED : WS_CLOSING;
        this.#fire(makeEvent("close", { code: m[1], reason: m[2], wasClean: true }));
      }
    }
    __link(peer) { this.#peer = peer; }
    // The host takes this end over; returns its connection id.
    __attach() {
      if (this.#accepted) throw new TypeError("Can't return a WebSocket in a Response after calling accept() on it.");
      if (this.#hostId !== 0) throw new TypeError("This WebSocket was already used in a response.");
      const id = nextSocketId++;
      this.#hostId = id;
      sockets.set(id, this.#peer);
      return id;
    }
    // After the host has registered the connection: send what was queued.
    __flush() {
      const queued = this.#queue;
      this.#queue = [];
      for (const m of queued) this.__take(m);
    }
  }
  class WebSocketPair {
    constructor() {
      WebSocket.__constructing = true;
      let a, b;
      try { a = new WebSocket(); b = new WebSocket(); } finally { WebSocket.__constructing = false; }
      a.__link(b); b.__link(a);
      this[0] = a; this[1] = b;
    }
    *[Symbol.iterator]() { yield this[0]; yield this[1]; }
  }
  define("WebSocket", WebSocket);
  define("WebSocketPair", WebSocketPair);
  // From the client's connection to the worker's end: kind 0 text, 1 binary, 2 close.
  function wsDeliver(id, kind, data, code, reason) {
    const end = sockets.get(id);
    if (end === undefined) return;
    if (kind === 2) {
      sockets.delete(id);
      end.__take(["c", code, reason]);
    } else {
      end.__take(["m", data]);
    }
  }

  // ---- cloudflare:workers ----------------------------------------------------
  class DurableObject {
    constructor(ctx, env) { this.ctx = ctx; this.env = env; }
  }
  class WorkerEntrypoint {
    constructor(ctx, env) { this.ctx = ctx; this.env = env; }
  }
  class WorkflowEntrypoint {
    constructor(ctx, env) { this.ctx = ctx; this.env = env; }
  }
  class RpcTarget {}
  const cloudflareWorkers = {
    DurableObject, WorkerEntrypoint, WorkflowEntrypoint, RpcTarget,
    get env() { return env; },
  };

  Object.defineProperty(G, Symbol.for("hearth.cloudflare:workers"), { value: cloudflareWorkers });

  // ---- cloudflare:sockets ------------------------------------------------------
  // connect() opens an outbound TCP socket (host side: isolate/tcp.rs). Its
  // readable stream asks the host for more as it is read; its writable
  // sends one chunk at a time, each resolved once written.
  const tcpSockets = new Map();
  let nextTcpId = 1;
  function socketAddress(address) {
    let hostname;
    let port;
    if (typeof address === "string") {
      const i = address.lastIndexOf(":");
      hostname = i > 0 ? address.slice(0, i) : address;
      port = i > 0 ? Number(address.slice(i + 1)) : NaN;
      if (hostname.startsWith("[") && hostname.endsWith("]")) hostname = hostname.slice(1, -1);
    } else if (address !== null && typeof address === "object") {
      hostname = address.hostname;
      port = Number(address.port);
    }
    if (typeof hostname !== "string" || hostname === "") throw new TypeError("connect(): the address needs a hostname");
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new TypeError("connect(): the address needs a port between 1 and 65535");
    return { hostname, port };
  }
  function socketBytes(chunk) {
    if (typeof chunk === "string") return new TextEncoder().encode(chunk);
    if (chunk instanceof ArrayBuffer) return new Uint8Array(chunk);
    if (ArrayBuffer.isView(chunk)) return new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    throw new TypeError("A socket's writable stream takes ArrayBuffer or ArrayBufferView chunks");
  }
  class Socket {
    constructor(id, hostname, secureTransport, allowHalfOpen, upgraded) {
      const s = { id, hostname, secureTransport, allowHalfOpen, socket: this, controller: null, readEnded: false, write: null, done: false };
      this.opened = new Promise((res, rej) => { s.openedResolve = res; s.openedReject = rej; });
      this.closed = new Promise((res, rej) => { s.closedResolve = res; s.closedReject = rej; });
      this.opened.catch(() => {});
      this.closed.catch(() => {});
      this.readable = new G.ReadableStream({
        start(c) { s.controller = c; },
        pull() { host.tcpPull(id); },
        cancel() { s.readEnded = true; if (!s.done) host.tcpClose(id); },
      });
      this.writable = new G.WritableStream({
        write(chunk) {
          const bytes = socketBytes(chunk);
          return new Promise((res, rej) => {
            if (s.done || !host.tcpWrite(id, bytes)) { rej(new Error("The socket is closed.")); return; }
            s.write = { res, rej };
          });
        },
        // Half-closes: the other side's data can still be read.
        close() { if (!s.done) host.tcpShutdown(id); },
        abort() { if (!s.done) host.tcpClose(id); },
      });
      this.upgraded = upgraded;
      this.secureTransport = secureTransport;
      this._s = s;
      tcpSockets.set(id, s);
    }
    close() {
      if (!this._s.done) host.tcpClose(this._s.id);
      return this.closed;
    }
    startTls(options) {
      const s = this._s;
      if (s.secureTransport !== "starttls") throw new TypeError("startTls() needs a socket opened with secureTransport: \"starttls\"");
      if (this.upgraded) throw new TypeError("startTls() can only be called once");
      this.upgraded = true;
      const name = options && options.expectedServerHostname ? String(options.expectedServerHostname) : s.hostname;
      try { s.controller.close(); } catch (_) { /* already closed */ }
      const next = new Socket(s.id, s.hostname, "on", s.allowHalfOpen, true);
      next._s.startingTls = true;
      if (!host.tcpStartTls(s.id, name)) next._s.openedReject(new Error("The socket is closed."));
      return next;
    }
  }
  function connect(address, options) {
    const { hostname, port } = socketAddress(address);
    const o = options || {};
    const secureTransport = o.secureTransport === undefined ? "off" : String(o.secureTransport);
    if (!["off", "on", "starttls"].includes(secureTransport)) throw new TypeError("secureTransport must be \"off\", \"on\" or \"starttls\"");
    const id = nextTcpId++;
    host.tcpConnect(id, hostname, port, secureTransport === "on");
    return new Socket(id, hostname, secureTransport, !!o.allowHalfOpen, false);
  }
  function tcpEvent(id, kind, a, b) {
    const s = tcpSockets.get(id);
    if (s === undefined) return;
    switch (kind) {
      case "opened":
        s.info = { remoteAddress: a, localAddress: b };
        s.openedResolve(s.info);
        break;
      case "tls":
        s.openedResolve({});
        break;
      case "data":
        if (!s.readEnded) s.controller.enqueue(new Uint8Array(a));
        break;
      case "readEnd":
        if (!s.readEnded) { s.readEnded = true; try { s.controller.close(); } catch (_) { /* cancelled */ } }
        if (!s.allowHalfOpen && !s.done) host.tcpClose(id);
        break;
      case "written": {
        const w = s.write;
        s.write = null;
        if (w) w.res();
        break;
      }
      case "closed": {
        s.done = true;
        tcpSockets.delete(id);
        const err = a === null || a === undefined ? null : new Error(a);
        if (err) {
          s.openedReject(err);
          s.closedReject(err);
          if (!s.readEnded) { try { s.controller.error(err); } catch (_) { /* closed */ } }
          if (s.write) s.write.rej(err);
        } else {
          s.openedReject(new Error("The socket closed before it opened."));
          s.closedResolve();
          if (!s.readEnded) { try { s.controller.close(); } catch (_) { /* closed */ } }
          if (s.write) s.write.rej(new Error("The socket is closed."));
        }
        s.readEnded = true;
        break;
      }
    }
  }
  Object.defineProperty(G, Symbol.for("hearth.sockets.connect"), { value: connect });

  return { dispatch, wsDeliver, setEnv, setHandler, fireTimer, fetchDone, fetchFailed, fetchChunk, fetchEnd, streamReady, fetchBodyReady, bodyChunk, endIo, resetContext, tcpEvent, cloudflareWorkers };
})
