// Durable Objects inside one isolate: namespaces and stubs (the calling
// side), and the live objects this isolate hosts (the called side). Every
// object id is routed to one isolate, so the registry below holds the only
// live instance of each object in the process.
//
// Evaluated once per isolate as a function of its natives (see
// src/isolate/durable/): `outbound` (calls to objects and services), `store`
// (storage of the objects hosted here) and `hosted` (answering their
// events); returns the functions the host calls.
(function (outbound, store, hosted) {
  "use strict";
  const G = globalThis;
  const W = G.__hearth_webapi;
  const setTimer = G.setTimeout;
  // The built-in Promise's, whatever a worker later puts at globalThis.Promise.
  const resolved = Promise.resolve.bind(Promise);
  const rejected = Promise.reject.bind(Promise);
  const ERROR_HEADER = "x-hearth-durable-error";

  // ---- the value codec ---------------------------------------------------
  // Storage values, RPC arguments and results, WebSocket attachments: the
  // versioned structured-clone format of hearth-webapi (41_serialize.js),
  // which also reads storage values written before it was versioned.
  const ERRORS = { Error, EvalError, RangeError, ReferenceError, SyntaxError, TypeError, URIError };
  const codec = W.codec.text;
  const utf8 = new TextEncoder();

  // The size of `v` in V8's serialization format, which the storage value
  // limit measures; follows the format's tags, so it is close, not exact.
  function v8Size(v) {
    switch (typeof v) {
      case "undefined": case "boolean": case "number": case "bigint": case "string":
        return 2 + v8Walk(v, null);
    }
    return 2 + v8Walk(v, new Set());
  }
  function v8Varint(n) { let b = 1; while (n >= 128) { n = Math.floor(n / 128); b++; } return b; }
  function v8Str(x) {
    let wide = false;
    for (let i = 0; i < x.length; i++) if (x.charCodeAt(i) > 255) { wide = true; break; }
    const n = wide ? x.length * 2 : x.length;
    return 1 + v8Varint(n) + n;
  }
  // `seen`: the objects met so far (null for a primitive, which has none).
  function v8Walk(x, seen) {
    const varint = v8Varint, str = v8Str;
    switch (typeof x) {
      case "undefined": case "boolean": return 1;
      case "number": return Number.isInteger(x) && Math.abs(x) < 2 ** 30 ? 1 + varint(Math.abs(x) * 2) : 9;
      case "bigint": return 2 + varint(x.toString(16).length) + Math.ceil(x.toString(16).length / 2);
      case "string": return str(x);
    }
    if (x === null) return 1;
    if (seen.has(x)) return 2;
    seen.add(x);
    if (x instanceof ArrayBuffer) return 1 + varint(x.byteLength) + x.byteLength;
    if (ArrayBuffer.isView(x)) return 1 + varint(x.buffer.byteLength) + x.buffer.byteLength + 3 + varint(x.byteOffset) + varint(x.byteLength);
    if (x instanceof Date) return 9;
    if (x instanceof RegExp) return 1 + str(x.source) + 1;
    if (x instanceof Map) { let n = 2 + varint(x.size * 2); for (const [k, y] of x) n += v8Walk(k, seen) + v8Walk(y, seen); return n; }
    if (x instanceof Set) { let n = 2 + varint(x.size); for (const y of x) n += v8Walk(y, seen); return n; }
    if (x instanceof Error) return 2 + str(String(x.message)) + (typeof x.stack === "string" ? str(x.stack) : 0);
    if (Array.isArray(x)) { let n = 3 + 2 * varint(x.length); for (let i = 0; i < x.length; i++) n += i in x ? v8Walk(x[i], seen) : 1; return n; }
    let n = 2;
    const keys = Object.keys(x);
    n += varint(keys.length);
    for (const k of keys) n += str(k) + v8Walk(x[k], seen);
    return n;
  }
  const serialize = codec.serialize;
  const serializeRpc = codec.serializeRpc;
  const deserialize = codec.deserialize;

  // ---- ids and namespaces (calling side) ------------------------------------
  const ID = Symbol("id");
  class DurableObjectId {
    constructor(token, hex, name) {
      if (token !== ID) throw new TypeError("Illegal constructor");
      Object.defineProperty(this, "__hex", { value: hex });
      if (name !== null && name !== undefined) Object.defineProperty(this, "name", { value: name, enumerable: true });
    }
    toString() { return this.__hex; }
    equals(other) { return other instanceof DurableObjectId && other.__hex === this.__hex; }
  }
  if (!("name" in DurableObjectId.prototype)) Object.defineProperty(DurableObjectId.prototype, "name", { value: undefined });

  // Calls in flight from this isolate to an object or a service:
  // call number -> {resolve, reject}.
  const calls = new Map();
  function track(start) {
    return new Promise((resolve, reject) => {
      const n = start();
      calls.set(n, { resolve, reject });
    });
  }
  // `script`: the worker hosting the class (a `script_name` binding), or null.
  function call(kind, className, id, args, script) {
    return track(() => outbound.call(kind, className, id.__hex, id.name === undefined ? null : id.name, args, script));
  }
  function rebuildError(body) {
    let e;
    try { e = deserialize(body); } catch (_) { e = new Error("Durable Object call failed"); }
    if (!(e instanceof Error)) {
      const wrapped = new Error(String(e && e.message !== undefined ? e.message : e));
      return wrapped;
    }
    // An exception crosses as text: only the built-in error classes come
    // back as themselves; another name is folded into the message.
    if (!Object.prototype.hasOwnProperty.call(ERRORS, e.name) && e.name !== "DataCloneError") {
      const plain = new Error(e.name + ": " + e.message);
      if (typeof e.stack === "string") Object.defineProperty(plain, "stack", { value: e.stack, writable: true, configurable: true });
      return plain;
    }
    return e;
  }
  // The host hands back an object's answer to call `n`.
  function reply(n, status, statusText, headers, body, remoteSocket) {
    const c = calls.get(n);
    if (c === undefined) return;
    calls.delete(n);
    for (let i = 0; i < headers.length; i += 2) {
      if (headers[i] === ERROR_HEADER) { c.reject(rebuildError(body)); return; }
    }
    c.resolve([status, statusText, headers, body, remoteSocket]);
  }
  function replyError(n, message) {
    const c = calls.get(n);
    if (c === undefined) return;
    calls.delete(n);
    c.reject(new Error(message));
  }

  // The client end of a WebSocket held by another isolate. Returned in a
  // 101 response it is handed on to the front whole; accept()ed here, it is
  // joined to a local pair: the caller holds one end, the other is attached
  // to the host, which carries its traffic to and from the object.
  function remoteWebSocket(hostId) {
    const [local, relay] = new G.WebSocketPair();
    let joined = false;
    Object.defineProperty(local, "__attach", {
      value: () => {
        if (joined) throw new TypeError("Can't return a WebSocket in a Response after calling accept() on it.");
        joined = true;
        return hostId;
      },
    });
    Object.defineProperty(local, "__flush", { value: () => {} });
    Object.defineProperty(local, "accept", {
      value: () => {
        if (joined) throw new TypeError("Can't accept() WebSocket more than once.");
        outbound.remoteAccept(hostId, relay.__attach());
        joined = true;
        G.WebSocket.prototype.accept.call(local);
      },
    });
    return local;
  }

  const RESERVED = new Set(["fetch", "id", "name", "then", "connect", "constructor"]);
  // `fetch()` on a stub or a service binding; `send(kind, args)` starts the
  // call and resolves with the callee's answer.
  async function remoteFetch(send, input, init) {
    const req = new G.Request(input, init);
    const body = req.body === null || req.body === undefined ? null : await req.arrayBuffer();
    const headers = [];
    for (const [k, v] of req.headers) headers.push(k, v);
    // The request's `cf` travels with it, as JSON, as workerd sends it.
    const cf = req.cf === undefined || req.cf === null ? null : JSON.stringify(req.cf);
    const [status, statusText, rh, rb, ws] = await send("fetch", [req.method, String(req.url), headers, body, cf]);
    const hs = new G.Headers();
    for (let i = 0; i + 1 < rh.length; i += 2) hs.append(rh[i], rh[i + 1]);
    if (ws !== 0) return new G.Response(null, { status: 101, statusText, headers: hs, webSocket: remoteWebSocket(ws) });
    const nullBody = status === 204 || status === 205 || status === 304 || req.method === "HEAD";
    return new G.Response(nullBody ? null : rb, { status, statusText, headers: hs });
  }
  // Any other property is an RPC method of the callee. One handler for
  // every stub and service binding; each target's `send` is in `senders`.
  const senders = new WeakMap();
  const decodeRpc = (answer) => deserialize(answer[3]);
  function rpcMethod(send, prop) {
    return (...args) => {
      let encoded;
      try {
        encoded = serializeRpc(args);
      } catch (e) {
        return rejected(e);
      }
      return send("rpc", [prop, encoded]).then(decodeRpc);
    };
  }
  const rpcHandler = {
    get(t, prop) {
      if (typeof prop === "symbol") return undefined;
      if (prop in t) return t[prop];
      if (RESERVED.has(prop)) return undefined;
      return rpcMethod(senders.get(t), prop);
    },
    set() { return false; },
  };
  function rpcProxy(target, send) {
    senders.set(target, send);
    return new Proxy(target, rpcHandler);
  }
  // A function, not a class, so that calling it without `new` reaches the
  // check and says what workerd says.
  function DurableObjectStub(token) { if (token !== ID) throw new TypeError("Illegal constructor"); }
  function makeStub(className, id, script) {
    const send = (kind, args) => call(kind, className, id, args, script);
    const target = new DurableObjectStub(ID);
    target.id = id;
    target.name = id.name;
    // An arrow (named by the const): a `function` would get a prototype
    // object made for every stub.
    const fetch = (input, init) => remoteFetch(send, input, init);
    target.fetch = fetch;
    return rpcProxy(target, send);
  }

  // ---- service bindings (calling side) ---------------------------------------
  function makeService(binding) {
    const send = (kind, args) => track(() => outbound.serviceCall(binding, kind, args));
    const target = {
      fetch(input, init) { return remoteFetch(send, input, init); },
      connect() { throw new Error("connect() is not supported on service bindings by Hearth."); },
    };
    Object.defineProperty(target, Symbol.toStringTag, { value: "Fetcher" });
    return rpcProxy(target, send);
  }

  // Bounds of each namespace's idFromName() cache (oldest out first).
  const NAMED_MAX = 1024;
  const NAMED_KEY_MAX = 256;
  class DurableObjectNamespace {
    #native; #className;
    // Ids this namespace made or already checked: their MAC is not checked
    // again on every get() (an id's hex cannot change).
    #valid = new WeakSet();
    constructor(n, className) { this.#native = n; this.#className = className; }
    #mine(id) { this.#valid.add(id); return id; }
    // name -> hex of names seen lately: a name's id never changes, and the
    // MAC that derives it costs more than the rest of idFromName().
    #named = new Map();
    idFromName(name) {
      name = String(name);
      let hex = this.#named.get(name);
      if (hex === undefined) {
        hex = this.#native.idFromName(name);
        if (name.length <= NAMED_KEY_MAX) {
          if (this.#named.size >= NAMED_MAX) this.#named.delete(this.#named.keys().next().value);
          this.#named.set(name, hex);
        }
      }
      return this.#mine(new DurableObjectId(ID, hex, name));
    }
    newUniqueId(_options) { return this.#mine(new DurableObjectId(ID, this.#native.newUniqueId(), null)); }
    idFromString(s) { return this.#mine(new DurableObjectId(ID, this.#native.idFromString(String(s)), null)); }
    get(id, _options) {
      if (!(id instanceof DurableObjectId)) throw new TypeError("Failed to execute 'get' on 'DurableObjectNamespace': parameter 1 is not of type 'DurableObjectId'.");
      if (!this.#valid.has(id)) {
        this.#native.check(id.__hex);
        this.#valid.add(id);
      }
      const script = this.#native.script;
      return makeStub(this.#className, id, script === undefined ? null : script);
    }
    getByName(name, options) { return this.get(this.idFromName(name), options); }
    jurisdiction(_j) { return this; }
  }
  Object.defineProperty(DurableObjectNamespace.prototype, Symbol.toStringTag, { value: "DurableObjectNamespace" });
  function makeNamespace(n, className) { return new DurableObjectNamespace(n, className); }

  // ---- live objects (called side) --------------------------------------------
  let exportsNs = null;
  let env = {};
  let idleMs = 10000;
  const live = new Map();           // key -> Entry
  const sockets = new Map();        // key -> Set of hibernatable WebSockets
  const socketMeta = new WeakMap(); // ws -> {key, className, hex, name, tags, attachment}
  const attachments = new WeakMap();// ws -> serialized attachment (non-hibernated sockets)
  const autoResponses = new Map();  // key -> WebSocketRequestResponsePair
  const autoTimes = new WeakMap();  // ws -> Date of the last auto-response
  const peers = new WeakMap();      // one end of a WebSocketPair -> the other

  function keyOf(className, hex) { return className + "\u0000" + hex; }

  class Entry {
    constructor(className, hex, name) {
      this.className = className; this.hex = hex; this.name = name;
      this.key = keyOf(className, hex);
      this.handle = 0; this.instance = null; this.state = null;
      this.blocked = 0; this.queue = []; this.active = 0;
      this.pinned = []; this.last = Date.now(); this.dead = false;
      this.runningAlarm = null; // scheduled time of the alarm being delivered
      // Answers waiting for the commit of the writes before them (output
      // gate), each [rid, parts, finish]; see commitHeld().
      this.held = [];
    }
  }

  // ---- group commit ----------------------------------------------------------
  // An answer that follows writes not yet durable is held instead of
  // committing at once, and the object takes its next event meanwhile (the
  // input gate is open, as on Workers while a write is in flight). The host
  // calls commitHeld() once no event is ready to run: one commit makes every
  // held answer's writes durable, then they all leave. A failed commit fails
  // them all and resets the object. Bounded by MAX_HELD answers per object.
  const MAX_HELD = 64;
  const holding = new Set();
  function releaseHeld(entry, error) {
    const held = entry.held.splice(0);
    holding.delete(entry);
    for (let i = 0; i < held.length; i++) {
      const h = held[i]; // [rid, parts, finish]
      if (error === undefined) hosted.respond(h[0], h[1], 0);
      else errorOut(h[0], error);
      h[2]();
    }
  }
  // Commits an object's writes now; the held answers leave with them, or
  // fail with them (the error is thrown on).
  function flushNow(entry) {
    try {
      store.flush(entry.handle);
    } catch (e) {
      if (entry.held.length > 0) releaseHeld(entry, e);
      throw e;
    }
    if (entry.held.length > 0) releaseHeld(entry);
  }
  // Commits an object's writes and settles its held answers.
  function commitEntry(entry) {
    if (entry.held.length === 0) return;
    if (entry.dead) { releaseHeld(entry, new Error("Durable Object reset")); return; }
    try {
      flushNow(entry);
    } catch (e) {
      reset(entry, e);
    }
  }
  function commitHeld() {
    for (const entry of [...holding]) commitEntry(entry);
  }
  // The output gate for an answer: sent now when nothing is waiting to be
  // committed, else held for the group commit (answers leave in order).
  function gateOut(entry, rid, parts, finish) {
    if (entry.held.length === 0 && !store.pending(entry.handle)) {
      hosted.respond(rid, parts, 0);
      finish();
      return;
    }
    entry.held.push([rid, parts, finish]);
    if (!holding.has(entry)) { holding.add(entry); hosted.hold(); }
    if (entry.held.length >= MAX_HELD) commitEntry(entry);
  }

  function classOf(className) {
    const cls = exportsNs === null ? undefined : exportsNs[className];
    if (typeof cls !== "function") {
      throw new Error("Durable Object class \"" + className + "\" is not exported by the worker's main module.");
    }
    return cls;
  }

  // Drops the instance; the next event builds a new one. Storage stays.
  function reset(entry, why) {
    if (entry.dead) return;
    entry.dead = true;
    if (live.get(entry.key) === entry) live.delete(entry.key);
    let closeError;
    if (entry.handle !== 0) { try { store.close(entry.handle); } catch (e) { closeError = e; } }
    // Closing committed the writes the held answers follow, or lost them.
    if (entry.held.length > 0) releaseHeld(entry, closeError);
    if (why !== undefined) console.error("Durable Object " + entry.className + " " + entry.hex + " was reset:", why);
    const queued = entry.queue.splice(0);
    for (const q of queued) q.fail(why === undefined ? new Error("Durable Object reset") : why);
  }

  function entryFor(className, hex, name) {
    const key = keyOf(className, hex);
    let entry = live.get(key);
    if (entry !== undefined) return entry;
    const cls = classOf(className);
    entry = new Entry(className, hex, name);
    entry.handle = store.open(className, hex);
    live.set(key, entry);
    entry.state = new DurableObjectState(entry);
    entry.blocked++;
    try {
      entry.instance = new cls(entry.state, env);
    } catch (e) {
      entry.blocked--;
      reset(entry, e);
      throw e;
    }
    entry.blocked--;
    scheduleEviction();
    return entry;
  }

  // Delivers `job` ({run, fail}) through the input gate: queued while the
  // object blocks concurrency, and queued events go out one per turn of the
  // event loop so each one's storage work settles before the next starts.
  function deliver(entry, job) {
    entry.active++;
    const run = () => {
      if (entry.dead) { entry.active--; job.fail(new Error("Durable Object reset")); return; }
      // Writes of earlier events wait for a group commit: this event's
      // writes start a segment of their own (or those commit first).
      if (entry.held.length > 0) {
        let separate = false;
        try { separate = store.segment(entry.handle); } catch (_) { separate = false; }
        if (!separate) commitEntry(entry);
        if (entry.dead) { entry.active--; job.fail(new Error("Durable Object reset")); return; }
      }
      let p;
      try { p = job.run(); } catch (e) { p = Promise.reject(e); }
      // then() rather than finally(): the same order, fewer promises.
      const settled = () => { entry.active--; entry.last = Date.now(); scheduleEviction(); };
      Promise.resolve(p).then(settled, (e) => { settled(); throw e; });
    };
    if (entry.blocked > 0 || entry.queue.length > 0) entry.queue.push({ run, fail: (e) => { entry.active--; job.fail(e); } });
    else run();
  }
  function drain(entry) {
    if (entry.dead || entry.blocked > 0 || entry.queue.length === 0) return;
    const next = entry.queue.shift();
    next.run();
    if (entry.queue.length > 0) setTimer(() => drain(entry), 0);
  }

  function errorOut(rid, e) {
    const body = utf8.encode(serialize(e instanceof Error ? e : new Error(String(e))));
    hosted.respond(rid, [500, "Internal Server Error", [ERROR_HEADER, "1"], body], 0);
  }
  function okOut(rid, text) {
    hosted.respond(rid, [200, "OK", [], utf8.encode(text)], 0);
  }

  // Called by the host for every event to an object hosted here.
  function dispatch(rid, className, hex, name, kind, args) {
    // Indexed, not destructured: the host's array needs no iterator.
    const a = args[0], b = args[1], c = args[2], d = args[3], e = args[4];
    let entry;
    try {
      entry = entryFor(className, hex, name);
    } catch (e) {
      errorOut(rid, e);
      hosted.done(rid);
      return;
    }
    const finish = () => hosted.done(rid);
    // fetch and rpc call finish() themselves: a held answer ends its event
    // only when it leaves.
    if (kind === "fetch") {
      deliver(entry, { run: () => runFetch(entry, rid, a, b, c, d, e, finish), fail: (e) => { errorOut(rid, e); finish(); } });
    } else if (kind === "rpc") {
      deliver(entry, { run: () => runRpc(entry, rid, a, b, finish), fail: (e) => { errorOut(rid, e); finish(); } });
    } else if (kind === "alarm") {
      deliver(entry, { run: () => { commitEntry(entry); return runAlarm(entry, rid, a).finally(finish); }, fail: (e) => { hosted.alarmDone(rid, entry.handle, false); errorOut(rid, e); finish(); } });
    }
  }

  async function runFetch(entry, rid, method, url, headers, body, cf, finish) {
    try {
      const request = W.makeRequest(method, url, headers, body === null ? null : new Uint8Array(body), cf);
      const inst = entry.instance;
      if (inst === null || typeof inst.fetch !== "function") throw new Error("Handler does not export a fetch() function.");
      const r = await inst.fetch(request);
      if (!(r instanceof G.Response)) throw new TypeError("Incorrect type for Promise: the Promise did not resolve to 'Response'.");
      const parts = W.responseParts(r);
      const client = parts[5] ?? null;
      // parts[3]: 0 no body, 1 string, 2 bytes, 3 stream (read whole here).
      let bytes = null;
      if (parts[3] === 1 || parts[3] === 2) bytes = parts[4];
      else if (parts[3] === 3) bytes = await new G.Response(parts[4]).arrayBuffer();
      if (client !== null) {
        // A socket carries messages at once: commit before it opens.
        flushNow(entry);
        if (!(client instanceof G.WebSocket)) throw new TypeError("webSocket must be the client end of a WebSocketPair.");
        const server = peers.get(client);
        if (server !== undefined && !socketMeta.has(server)) entry.pinned.push(server);
        const hostId = client.__attach();
        hosted.respond(rid, [parts[0], parts[1], parts[2], null], hostId);
        client.__flush();
        finish();
      } else {
        gateOut(entry, rid, [parts[0], parts[1], parts[2], bytes], finish);
      }
    } catch (e) {
      reset(entry, e);
      errorOut(rid, e);
      finish();
    }
  }

  async function runRpc(entry, rid, method, args, finish) {
    let out;
    try {
      const inst = entry.instance;
      const fn = inst === null ? undefined : inst[method];
      if (typeof fn !== "function" || method.startsWith("#") || Object.prototype.hasOwnProperty.call(Object.prototype, method)) {
        throw new TypeError("The RPC receiver does not implement the method \"" + method + "\".");
      }
      const result = await fn.apply(inst, deserialize(args));
      out = serializeRpc(result);
    } catch (e) {
      try { flushNow(entry); } catch (_) { reset(entry); }
      errorOut(rid, e);
      finish();
      return;
    }
    try {
      // The host takes the text as its UTF-8 bytes.
      gateOut(entry, rid, [200, "OK", [], out], finish);
    } catch (e) {
      errorOut(rid, e);
      finish();
    }
  }

  async function runAlarm(entry, rid, retryCount) {
    if (!hosted.alarmCurrent(rid, entry.handle)) { okOut(rid, "skipped"); return; }
    let failure = null;
    entry.runningAlarm = store.getAlarm(entry.handle) ?? null;
    try {
      const inst = entry.instance;
      if (inst !== null && typeof inst.alarm === "function") {
        await inst.alarm({ retryCount, isRetry: retryCount > 0 });
      }
    } catch (e) {
      failure = e;
    } finally {
      entry.runningAlarm = null;
    }
    hosted.alarmDone(rid, entry.handle, failure === null);
    if (failure !== null) reset(entry, failure);
    okOut(rid, failure === null ? "ok" : "failed");
  }

  // ---- eviction ------------------------------------------------------------
  let evictionTimer = false;
  function scheduleEviction() {
    if (evictionTimer || live.size === 0) return;
    evictionTimer = true;
    setTimer(evictIdle, idleMs);
  }
  function evictIdle() {
    evictionTimer = false;
    const now = Date.now();
    for (const entry of [...live.values()]) {
      // Only an open socket keeps the object in memory; once a close frame
      // has gone either way, what is left is the handshake's reply.
      entry.pinned = entry.pinned.filter((ws) => ws.readyState === 1);
      const idle = entry.active === 0 && entry.blocked === 0 && entry.queue.length === 0 && entry.pinned.length === 0 && entry.held.length === 0;
      if (idle && now - entry.last >= idleMs) {
        live.delete(entry.key);
        entry.dead = true;
        try { store.close(entry.handle); } catch (e) { console.error("Durable Object storage flush failed at eviction:", e); }
      }
    }
    scheduleEviction();
  }

  // ---- state and storage -----------------------------------------------------
  function keyString(k) { return String(k); }

  class SqlStorageCursor {
    #columns; #rows; #read; #written;
    constructor(columns, rows, read, written) { this.#columns = columns; this.#rows = rows; this.#read = read; this.#written = written; }
    get columnNames() { return this.#columns.slice(); }
    get rowsRead() { return this.#read; }
    get rowsWritten() { return this.#written; }
    #object(row) {
      const o = {};
      for (let i = 0; i < this.#columns.length; i++) o[this.#columns[i]] = row[i];
      return o;
    }
    next() {
      if (this.#rows.length === 0) return { done: true };
      return { done: false, value: this.#object(this.#rows.shift()) };
    }
    toArray() { const out = []; while (this.#rows.length) out.push(this.#object(this.#rows.shift())); return out; }
    one() {
      if (this.#rows.length === 0) throw new Error("Expected exactly one result from SQL query, but got no results.");
      if (this.#rows.length > 1) { this.#rows.length = 0; throw new Error("Expected exactly one result from SQL query, but got multiple results."); }
      return this.#object(this.#rows.shift());
    }
    raw() {
      const rows = this.#rows;
      return { next: () => rows.length === 0 ? { done: true } : { done: false, value: rows.shift() }, [Symbol.iterator]() { return this; }, toArray() { return rows.splice(0); } };
    }
    [Symbol.iterator]() { return this; }
  }
  // A binding is null, a number, a string or bytes; undefined binds NULL,
  // a bigint is refused and anything else binds as its string form.
  function sqlBinding(v) {
    if (v === undefined || v === null) return null;
    if (typeof v === "number" || typeof v === "string" || v instanceof ArrayBuffer) return v;
    if (typeof v === "bigint") throw new TypeError("Cannot convert a BigInt value to a number");
    if (ArrayBuffer.isView(v)) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength).slice().buffer;
    return String(v);
  }
  class SqlStorage {
    #h;
    constructor(h) { this.#h = h; }
    exec(query, ...bindings) {
      const [columns, rows, read, written] = store.sqlExec(this.#h, String(query), bindings.map(sqlBinding));
      return new SqlStorageCursor(columns, rows, read, written);
    }
    get databaseSize() { return store.databaseSize(this.#h); }
  }

  function listOptions(o) {
    o = o === undefined || o === null ? {} : o;
    const s = (v) => (v === undefined || v === null ? null : String(v));
    const limit = o.limit === undefined || o.limit === null ? null : Number(o.limit);
    return [s(o.start), s(o.startAfter), s(o.end), s(o.prefix), !!o.reverse, limit];
  }
  function toMap(pairs) {
    const m = new Map();
    for (const [k, v] of pairs) m.set(k, deserialize(v));
    return m;
  }

  class DurableObjectStorage {
    #entry; #sql;
    constructor(entry) { this.#entry = entry; this.#sql = null; }
    get #h() { return this.#entry.handle; }
    // get() and put() settle at once: plain functions returning a settled
    // promise cost less than async functions and behave the same.
    get(key, _options) {
      try {
        return resolved(this.getSync(key));
      } catch (e) {
        return rejected(e);
      }
    }
    getSync(key) {
      if (Array.isArray(key)) return toMap(store.kvGet(this.#h, key.map(keyString), true));
      const found = store.kvGet(this.#h, [keyString(key)], false);
      return found.length === 0 ? undefined : deserialize(found[0][1]);
    }
    put(key, value, _options) {
      try {
        this.putSync(key, value);
        return resolved(undefined);
      } catch (e) {
        return rejected(e);
      }
    }
    putSync(key, value) {
      if (key !== null && typeof key === "object" && !Array.isArray(key)) {
        const pairs = Object.keys(key).map((k) => [k, serialize(key[k]), String(v8Size(key[k]))]);
        store.kvPut(this.#h, pairs, true);
        return;
      }
      if (value === undefined) throw new TypeError("put() called with undefined value.");
      store.kvPut(this.#h, [[keyString(key), serialize(value), String(v8Size(value))]], false);
    }
    async delete(key, _options) { return this.deleteSync(key); }
    deleteSync(key) {
      if (Array.isArray(key)) return store.kvDelete(this.#h, key.map(keyString), true);
      return store.kvDelete(this.#h, [keyString(key)], false) > 0;
    }
    async list(options) { return toMap(store.kvList(this.#h, listOptions(options))); }
    async deleteAll(_options) { store.kvDeleteAll(this.#h); }
    async getAlarm(_options) {
      const at = store.getAlarm(this.#h) ?? null;
      // The alarm being delivered counts as consumed (it stays stored until
      // alarm() succeeds, so that a failure or a crash retries it).
      if (at !== null && this.#entry.runningAlarm === at) return null;
      return at;
    }
    async setAlarm(time, _options) {
      if (!(time instanceof Date) && typeof time !== "number") {
        throw new TypeError("Failed to execute 'setAlarm' on 'DurableObjectStorage': parameter 1 is not of type 'date'.");
      }
      const ms = time instanceof Date ? time.getTime() : time;
      if (!Number.isFinite(ms)) throw new TypeError("The value cannot be converted because it is not a valid Date.");
      store.setAlarm(this.#h, ms);
      this.#entry.runningAlarm = null;
    }
    async deleteAlarm(_options) { store.deleteAlarm(this.#h); this.#entry.runningAlarm = null; }
    async sync() { flushNow(this.#entry); }
    get sql() {
      if (this.#sql === null) this.#sql = new SqlStorage(this.#h);
      return this.#sql;
    }
    transactionSync(fn) {
      if (typeof fn !== "function") throw new TypeError("Failed to execute 'transactionSync' on 'DurableObjectStorage': parameter 1 is not of type 'function'.");
      return store.txnSync(this.#h, fn);
    }
    async transaction(fn) {
      if (typeof fn !== "function") throw new TypeError("Failed to execute 'transaction' on 'DurableObjectStorage': parameter 1 is not of type 'function'.");
      // The transaction object has the storage API plus rollback().
      const txn = new DurableObjectStorage(this.#entry);
      let rolledBack = false;
      let value;
      txn.rollback = () => { rolledBack = true; };
      try {
        return store.txnAsync(this.#h, async () => {
          value = await fn(txn);
          if (rolledBack) throw ROLLBACK;
          return value;
        });
      } catch (e) {
        // rollback() undoes the writes, not the callback's result.
        if (e === ROLLBACK) return value;
        throw e;
      }
    }
    // The synchronous key-value API of SQLite-backed objects.
    get kv() {
      const s = this;
      return {
        get: (key) => s.getSync(key),
        put: (key, value) => s.putSync(key, value),
        delete: (key) => s.deleteSync(key),
        list: (options) => store.kvList(s.#h, listOptions(options)).map(([k, v]) => [k, deserialize(v)])[Symbol.iterator](),
      };
    }
  }
  const ROLLBACK = Symbol("rollback");

  class DurableObjectState {
    #entry; #storage; #id;
    constructor(entry) {
      this.#entry = entry;
      this.#storage = new DurableObjectStorage(entry);
      this.#id = new DurableObjectId(ID, entry.hex, entry.name);
    }
    get id() { return this.#id; }
    get storage() { return this.#storage; }
    get props() { return {}; }
    waitUntil(p) {
      const entry = this.#entry;
      entry.active++;
      Promise.resolve(p).catch((e) => console.error("Uncaught (in waitUntil)", e)).finally(() => {
        entry.active--; entry.last = Date.now();
        try { if (!entry.dead) flushNow(entry); } catch (_) { reset(entry); }
      });
    }
    async blockConcurrencyWhile(cb) {
      const entry = this.#entry;
      entry.blocked++;
      try {
        return await cb();
      } catch (e) {
        entry.blocked--;
        reset(entry, e);
        throw e;
      } finally {
        if (!entry.dead) {
          entry.blocked--;
          setTimer(() => drain(entry), 0);
        }
      }
    }
    abort(reason) { reset(this.#entry, reason === undefined ? new Error("Durable Object aborted") : reason); }
    acceptWebSocket(ws, tags) {
      if (!(ws instanceof G.WebSocket)) throw new TypeError("acceptWebSocket() requires a WebSocket");
      if (socketMeta.has(ws)) throw new TypeError("This WebSocket was already accepted for hibernation.");
      tags = tags === undefined ? [] : Array.from(tags, String);
      if (tags.length > 10) throw new Error("A WebSocket cannot have more than 10 tags.");
      for (const t of tags) if (t.length > 256) throw new Error("A WebSocket tag cannot be longer than 256 characters.");
      const entry = this.#entry;
      const meta = { key: entry.key, className: entry.className, hex: entry.hex, name: entry.name, tags };
      socketMeta.set(ws, meta);
      let set = sockets.get(entry.key);
      if (set === undefined) { set = new Set(); sockets.set(entry.key, set); }
      set.add(ws);
      entry.pinned = entry.pinned.filter((s) => s !== ws);
      ws.addEventListener("message", (e) => hibernatedEvent(ws, "message", [e.data]));
      ws.addEventListener("close", (e) => hibernatedEvent(ws, "close", [e.code, e.reason, e.wasClean]));
      ws.accept();
    }
    getWebSockets(tag) {
      const set = sockets.get(this.#entry.key);
      if (set === undefined) return [];
      const out = [];
      for (const ws of set) {
        if (ws.readyState === 3) continue;
        if (tag === undefined || socketMeta.get(ws).tags.includes(String(tag))) out.push(ws);
      }
      return out;
    }
    getTags(ws) {
      const meta = socketMeta.get(ws);
      if (meta === undefined) throw new TypeError("getTags() can only be called on a WebSocket accepted with acceptWebSocket()");
      return meta.tags.slice();
    }
    setWebSocketAutoResponse(pair) {
      if (pair === undefined || pair === null) { autoResponses.delete(this.#entry.key); return; }
      if (!(pair instanceof WebSocketRequestResponsePair)) throw new TypeError("setWebSocketAutoResponse() requires a WebSocketRequestResponsePair");
      autoResponses.set(this.#entry.key, pair);
    }
    getWebSocketAutoResponse() { return autoResponses.get(this.#entry.key) ?? null; }
    getWebSocketAutoResponseTimestamp(ws) { return autoTimes.get(ws) ?? null; }
    setHibernatableWebSocketEventTimeout(_ms) {}
    getHibernatableWebSocketEventTimeout() { return null; }
  }

  // A message or close on a hibernatable socket: answered by the automatic
  // response if it matches, else delivered to the object (rebuilt if it was
  // evicted meanwhile) through its input gate.
  function hibernatedEvent(ws, type, args) {
    const meta = socketMeta.get(ws);
    if (type === "message") {
      const pair = autoResponses.get(meta.key);
      if (pair !== undefined && args[0] === pair.request) {
        ws.send(pair.response);
        autoTimes.set(ws, new Date());
        return;
      }
    } else {
      const set = sockets.get(meta.key);
      if (set !== undefined) { set.delete(ws); if (set.size === 0) sockets.delete(meta.key); }
    }
    let entry;
    try {
      entry = entryFor(meta.className, meta.hex, meta.name);
    } catch (e) {
      console.error("Durable Object constructor threw:", e);
      return;
    }
    const handler = type === "message" ? "webSocketMessage" : "webSocketClose";
    deliver(entry, {
      run: async () => {
        // Messages this handler sends leave at once: earlier answers'
        // writes commit first.
        commitEntry(entry);
        try {
          const inst = entry.instance;
          if (inst !== null && typeof inst[handler] === "function") await inst[handler](ws, ...args);
          flushNow(entry);
        } catch (e) {
          console.error("Durable Object " + handler + "() threw:", e);
          try { if (inst_has(entry, "webSocketError")) await entry.instance.webSocketError(ws, e); } catch (_) { /* reported above */ }
          reset(entry, e);
        }
      },
      fail: (e) => console.error("Durable Object event dropped:", e),
    });
  }
  function inst_has(entry, name) { return entry.instance !== null && typeof entry.instance[name] === "function"; }

  class WebSocketRequestResponsePair {
    #request; #response;
    constructor(request, response) { this.#request = String(request); this.#response = String(response); }
    get request() { return this.#request; }
    get response() { return this.#response; }
  }

  // WebSocket attachments and pair bookkeeping.
  const MAX_ATTACHMENT = 2048;
  function installWebSocketExtras() {
    const WS = G.WebSocket;
    if (typeof WS !== "function") return;
    Object.defineProperty(WS.prototype, "serializeAttachment", {
      configurable: true, writable: true,
      value: function (value) {
        const s = serialize(value);
        const size = new TextEncoder().encode(s).byteLength;
        if (size > MAX_ATTACHMENT) throw new Error("A WebSocket 'serializeAttachment()' value cannot be larger than " + MAX_ATTACHMENT + " bytes");
        attachments.set(this, s);
      },
    });
    Object.defineProperty(WS.prototype, "deserializeAttachment", {
      configurable: true, writable: true,
      value: function () { const s = attachments.get(this); return s === undefined ? null : deserialize(s); },
    });
    const Pair = G.WebSocketPair;
    if (typeof Pair === "function") {
      class WebSocketPair extends Pair {
        constructor() { super(); peers.set(this[0], this[1]); peers.set(this[1], this[0]); }
      }
      Object.defineProperty(G, "WebSocketPair", { value: WebSocketPair, writable: true, configurable: true, enumerable: false });
    }
    Object.defineProperty(G, "WebSocketRequestResponsePair", { value: WebSocketRequestResponsePair, writable: true, configurable: true, enumerable: false });
  }
  installWebSocketExtras();

  function setExports(ns, e, idle) { exportsNs = ns; env = e; idleMs = idle; }

  // ---- service bindings (called side) -----------------------------------------
  let serviceEnv = {};
  function setServiceEnv(e) { serviceEnv = e; }
  const serviceCtx = {
    waitUntil(p) { Promise.resolve(p).catch((e) => console.error("Uncaught (in waitUntil)", e)); },
    passThroughOnException() {},
    props: {},
  };
  // The object a call to `entrypoint` (null: the default export) runs on: a
  // WorkerEntrypoint class gets a fresh instance per call, as on Workers.
  function serviceTarget(entrypoint) {
    const name = entrypoint === null || entrypoint === undefined ? "default" : entrypoint;
    const exported = exportsNs === null ? undefined : exportsNs[name];
    if (typeof exported === "function") return new exported(serviceCtx, serviceEnv);
    if (exported !== null && typeof exported === "object") return exported;
    throw new Error("Worker has no entrypoint named \"" + name + "\" to call.");
  }
  function dispatchService(rid, entrypoint, method, args) {
    const finish = () => hosted.done(rid);
    (async () => {
      try {
        const target = serviceTarget(entrypoint);
        const fn = target[method];
        if (typeof fn !== "function" || method === "constructor" || Object.prototype.hasOwnProperty.call(Object.prototype, method)) {
          throw new TypeError("The RPC receiver does not implement the method \"" + method + "\".");
        }
        const decoded = deserialize(args);
        const result = await fn.apply(target, decoded);
        okOut(rid, serializeRpc(result));
      } catch (e) {
        errorOut(rid, e);
      }
    })().finally(finish);
  }

  return { makeNamespace, makeService, setExports, setServiceEnv, dispatch, dispatchService, reply, replyError, serialize, deserialize, commitHeld };
})
