// ReadableStream, WritableStream, TransformStream and friends. A compact
// implementation of the WHATWG Streams model: queues with high-water marks,
// pull-based sources, sequential sinks, backpressure through `ready`.
const kRS = Symbol("readable");
const kWS = Symbol("writable");
const kReader = Symbol("reader");
const kWriter = Symbol("writer");
const kCtrl = Symbol("controller");

function sizeAlgorithm(strategy) {
  const size = strategy && strategy.size;
  if (size === undefined) return () => 1;
  if (typeof size !== "function") throw new TypeError("The strategy's size must be a function.");
  return (chunk) => size(chunk);
}
function highWaterMark(strategy, dflt) {
  const hwm = strategy && strategy.highWaterMark;
  if (hwm === undefined) return dflt;
  const n = Number(hwm);
  if (Number.isNaN(n) || n < 0) throw new RangeError("The highWaterMark must be a non-negative number.");
  return n;
}

class CountQueuingStrategy {
  constructor(init) { this[kState] = Number(init.highWaterMark); }
  get highWaterMark() { return this[kState]; }
  get size() { return () => 1; }
}
class ByteLengthQueuingStrategy {
  constructor(init) { this[kState] = Number(init.highWaterMark); }
  get highWaterMark() { return this[kState]; }
  get size() { return (chunk) => chunk.byteLength; }
}
tag(CountQueuingStrategy); tag(ByteLengthQueuingStrategy);

// ---------- ReadableStream ----------

class ReadableStreamDefaultController {
  constructor() { throw new TypeError("Illegal constructor"); }
  get desiredSize() { return rsDesiredSize(this[kRS]); }
  enqueue(chunk) {
    const s = this[kRS][kState];
    if (s.closeRequested || s.state !== "readable") throw new TypeError("Cannot enqueue a chunk into a closed or errored stream.");
    rsEnqueue(this[kRS], chunk);
  }
  close() {
    const s = this[kRS][kState];
    if (s.closeRequested || s.state !== "readable") throw new TypeError("Cannot close a stream that is already closed or errored.");
    s.closeRequested = true;
    if (s.queue.length === 0) rsClose(this[kRS]);
  }
  error(e) { rsError(this[kRS], e); }
  get byobRequest() { return null; }
}
tag(ReadableStreamDefaultController);
// The byte-stream controller shares the default controller's behaviour;
// BYOB reads are served by copying out of the queue.
class ReadableByteStreamController extends ReadableStreamDefaultController {}
tag(ReadableByteStreamController);

function newController(proto, stream) {
  const c = Object.create(proto);
  c[kRS] = stream;
  return c;
}

class ReadableStream {
  constructor(source = undefined, strategy = undefined) {
    source = source === null ? undefined : source;
    const type = source && source.type;
    const bytes = type !== undefined && String(type) === "bytes";
    if (type !== undefined && !bytes) throw new RangeError(`Invalid type: ${type}`);
    const s = rsInitState(this, bytes ? 0 : highWaterMark(strategy, 1), bytes ? (c) => c.byteLength : sizeAlgorithm(strategy));
    s.bytes = bytes;
    s.source = source;
    s.controller = newController(bytes ? ReadableByteStreamController.prototype : ReadableStreamDefaultController.prototype, this);
    if (bytes && strategy && strategy.highWaterMark !== undefined) s.hwm = highWaterMark(strategy, 0);
    if (source && source.autoAllocateChunkSize !== undefined && !(Number(source.autoAllocateChunkSize) > 0)) {
      throw new TypeError("autoAllocateChunkSize must be greater than 0.");
    }
    let start;
    // workerd errors the stream when start() throws instead of throwing from
    // the constructor; code written for Workers relies on that.
    try {
      start = source && typeof source.start === "function" ? source.start(s.controller) : undefined;
    } catch (e) { start = Promise.reject(e); }
    Promise.resolve(start).then(() => { s.started = true; rsPullIfNeeded(this); }, (e) => rsError(this, e));
  }
  get locked() { return this[kState].reader !== null; }
  cancel(reason) {
    if (this[kState].reader !== null) return Promise.reject(new TypeError("This ReadableStream is currently locked to a reader."));
    return rsCancel(this, reason);
  }
  getReader(options = undefined) {
    const mode = options && options.mode;
    if (mode === undefined) return new ReadableStreamDefaultReader(this);
    if (String(mode) === "byob") return new ReadableStreamBYOBReader(this);
    throw new RangeError(`Invalid reader mode: ${mode}`);
  }
  pipeThrough(transform, options = {}) {
    if (!transform || !(transform.writable instanceof WritableStream) || !(transform.readable instanceof ReadableStream)) {
      throw new TypeError("pipeThrough() expects an object with readable and writable streams.");
    }
    if (this.locked) throw new TypeError("This ReadableStream is currently locked to a reader.");
    if (transform.writable.locked) throw new TypeError("This WritableStream is currently locked to a writer.");
    markHandled(pipeTo(this, transform.writable, options || {}));
    return transform.readable;
  }
  pipeTo(dest, options = {}) {
    if (!(dest instanceof WritableStream)) return Promise.reject(new TypeError("pipeTo() expects a WritableStream."));
    if (this.locked) return Promise.reject(new TypeError("This ReadableStream is currently locked to a reader."));
    if (dest.locked) return Promise.reject(new TypeError("This WritableStream is currently locked to a writer."));
    return pipeTo(this, dest, options || {});
  }
  tee() { return rsTee(this); }
  values(options = undefined) {
    const reader = this.getReader();
    const preventCancel = !!(options && options.preventCancel);
    const iter = Object.create(ReadableStreamAsyncIteratorPrototype);
    iter[kReader] = reader;
    iter[kState] = { preventCancel, done: false };
    return iter;
  }
  [Symbol.asyncIterator](options) { return this.values(options); }
  static from(iterable) {
    if (iterable instanceof ReadableStream) return iterable;
    let iter;
    if (iterable != null && typeof iterable[Symbol.asyncIterator] === "function") iter = iterable[Symbol.asyncIterator]();
    else if (iterable != null && typeof iterable[Symbol.iterator] === "function") iter = iterable[Symbol.iterator]();
    else throw new TypeError("ReadableStream.from() expects an iterable or async iterable.");
    return new ReadableStream({
      async pull(c) {
        const r = await iter.next();
        if (r.done) c.close(); else c.enqueue(await r.value);
      },
      async cancel(reason) { if (typeof iter.return === "function") await iter.return(reason); },
    }, { highWaterMark: 0 });
  }
}
tag(ReadableStream);

const ReadableStreamAsyncIteratorPrototype = Object.setPrototypeOf({
  next() {
    const st = this[kState];
    if (st.done) return Promise.resolve({ done: true });
    return this[kReader].read().then((r) => {
      if (r.done) { st.done = true; this[kReader].releaseLock(); }
      return r;
    }, (e) => { st.done = true; this[kReader].releaseLock(); throw e; });
  },
  return(value) {
    const st = this[kState];
    if (st.done) return Promise.resolve({ value, done: true });
    st.done = true;
    const reader = this[kReader];
    if (!st.preventCancel) {
      const p = reader.cancel(value);
      reader.releaseLock();
      return p.then(() => ({ value, done: true }));
    }
    reader.releaseLock();
    return Promise.resolve({ value, done: true });
  },
}, Object.getPrototypeOf(Object.getPrototypeOf((async function* () {})())));

function rsInitState(stream, hwm, size) {
  const s = {
    state: "readable", queue: [], queueSize: 0, hwm, size, started: false, pulling: false, pullAgain: false,
    closeRequested: false, disturbed: false, reader: null, storedError: undefined, source: undefined, controller: null,
    bytes: false,
  };
  stream[kState] = s;
  return s;
}

// A stream over bytes already in memory: no source object, no start promise.
// Used for Request/Response bodies so `.body` stays cheap.
function readableFromBytes(bytes) {
  const stream = Object.create(ReadableStream.prototype);
  const s = rsInitState(stream, 0, (c) => c.byteLength);
  s.bytes = true;
  s.started = true;
  s.controller = newController(ReadableByteStreamController.prototype, stream);
  if (bytes.byteLength > 0) { s.queue.push({ chunk: bytes, size: bytes.byteLength }); s.queueSize = bytes.byteLength; }
  s.closeRequested = true;
  if (s.queue.length === 0) s.state = "closed";
  return stream;
}

function rsDesiredSize(stream) {
  const s = stream[kState];
  if (s.state === "errored") return null;
  if (s.state === "closed") return 0;
  return s.hwm - s.queueSize;
}

function rsEnqueue(stream, chunk) {
  const s = stream[kState];
  if (s.bytes) {
    const b = asBytes(chunk);
    if (b === null) throw new TypeError("This ReadableStream only accepts ArrayBuffer or ArrayBufferView chunks.");
    if (b.byteLength === 0) throw new TypeError("Cannot enqueue an empty chunk.");
    chunk = b.slice();
  }
  const reader = s.reader;
  if (reader && reader[kState].requests.length > 0 && s.queue.length === 0) {
    readerFulfill(reader, chunk, false);
  } else {
    let size;
    try { size = s.size(chunk); } catch (e) { rsError(stream, e); throw e; }
    size = Number(size);
    if (!(size >= 0) || size === Infinity) { const e = new RangeError("The chunk size must be a finite, non-negative number."); rsError(stream, e); throw e; }
    s.queue.push({ chunk, size });
    s.queueSize += size;
  }
  rsPullIfNeeded(stream);
}

function rsPullIfNeeded(stream) {
  const s = stream[kState];
  if (!s.started || s.closeRequested || s.state !== "readable") return;
  const wanted = (s.reader && s.reader[kState].requests.length > 0) || s.hwm - s.queueSize > 0;
  if (!wanted) return;
  if (s.pulling) { s.pullAgain = true; return; }
  const pull = s.source && s.source.pull;
  if (typeof pull !== "function") return;
  s.pulling = true;
  let p;
  try { p = Promise.resolve(pull.call(s.source, s.controller)); } catch (e) { p = Promise.reject(e); }
  p.then(() => {
    s.pulling = false;
    if (s.pullAgain) { s.pullAgain = false; rsPullIfNeeded(stream); }
  }, (e) => rsError(stream, e));
}

function rsClose(stream) {
  const s = stream[kState];
  if (s.state !== "readable") return;
  s.state = "closed";
  const reader = s.reader;
  if (reader) {
    const rs = reader[kState];
    // workerd's end-of-stream result has no value key.
    for (const req of rs.requests) req.resolve({ done: true });
    rs.requests = [];
    rs.closed.resolve(undefined);
  }
}

function rsError(stream, e) {
  const s = stream[kState];
  if (s.state !== "readable") return;
  s.state = "errored";
  s.storedError = e;
  s.queue = []; s.queueSize = 0;
  const reader = s.reader;
  if (reader) {
    const rs = reader[kState];
    for (const req of rs.requests) req.reject(e);
    rs.requests = [];
    rs.closed.reject(e);
    markHandled(rs.closed.promise);
  }
}

function rsCancel(stream, reason) {
  const s = stream[kState];
  s.disturbed = true;
  if (s.state === "closed") return Promise.resolve();
  if (s.state === "errored") return Promise.reject(s.storedError);
  s.queue = []; s.queueSize = 0;
  rsClose(stream);
  const cancel = s.source && s.source.cancel;
  if (typeof cancel !== "function") return Promise.resolve();
  try {
    return Promise.resolve(cancel.call(s.source, reason)).then(() => undefined);
  } catch (e) { return Promise.reject(e); }
}

function readerFulfill(reader, chunk, done) {
  const req = reader[kState].requests.shift();
  req.resolve({ value: chunk, done });
}

function readerInit(reader, stream) {
  if (!(stream instanceof ReadableStream)) throw new TypeError("Expected a ReadableStream.");
  const s = stream[kState];
  if (s.reader !== null) throw new TypeError("This ReadableStream is currently locked to a reader.");
  const closed = deferred();
  reader[kState] = { stream, requests: [], closed };
  s.reader = reader;
  if (s.state === "closed") closed.resolve(undefined);
  else if (s.state === "errored") { closed.reject(s.storedError); markHandled(closed.promise); }
}

function readerRead(reader) {
  const rs = reader[kState];
  if (!rs.stream) return Promise.reject(new TypeError("This reader has been released."));
  const stream = rs.stream;
  const s = stream[kState];
  s.disturbed = true;
  if (s.state === "closed" && s.queue.length === 0) return Promise.resolve({ done: true });
  if (s.state === "errored") return Promise.reject(s.storedError);
  if (s.queue.length > 0) {
    const { chunk, size } = s.queue.shift();
    s.queueSize -= size;
    if (s.queue.length === 0) s.queueSize = 0;
    if (s.closeRequested && s.queue.length === 0) rsClose(stream);
    else rsPullIfNeeded(stream);
    return Promise.resolve({ value: chunk, done: false });
  }
  const d = deferred();
  rs.requests.push(d);
  rsPullIfNeeded(stream);
  return d.promise;
}

function readerRelease(reader) {
  const rs = reader[kState];
  if (!rs.stream) return;
  const err = new TypeError("This reader has been released.");
  for (const req of rs.requests) req.reject(err);
  rs.requests = [];
  if (rs.stream[kState].state === "readable") rs.closed.reject(err);
  else { rs.closed = deferred(); rs.closed.reject(err); }
  markHandled(rs.closed.promise);
  rs.stream[kState].reader = null;
  rs.stream = null;
}

class ReadableStreamDefaultReader {
  constructor(stream) { readerInit(this, stream); }
  get closed() { return this[kState].closed.promise; }
  read() { return readerRead(this); }
  cancel(reason) {
    const rs = this[kState];
    if (!rs.stream) return Promise.reject(new TypeError("This reader has been released."));
    return rsCancel(rs.stream, reason);
  }
  releaseLock() { readerRelease(this); }
}
tag(ReadableStreamDefaultReader);

class ReadableStreamBYOBReader {
  constructor(stream) {
    if (!(stream instanceof ReadableStream) || !stream[kState].bytes) throw new TypeError("A BYOB reader needs a byte stream (type: 'bytes').");
    readerInit(this, stream);
  }
  get closed() { return this[kState].closed.promise; }
  read(view, options = undefined) {
    if (!ArrayBuffer.isView(view)) return Promise.reject(new TypeError("read() expects an ArrayBufferView."));
    if (view.byteLength === 0) return Promise.reject(new TypeError("read() needs a view with a non-zero byteLength."));
    const rs = this[kState];
    const elem = view.BYTES_PER_ELEMENT || 1;
    const min = options && options.min !== undefined ? Number(options.min) * elem : 1;
    const target = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
    const make = (n) => new view.constructor(view.buffer, view.byteOffset, Math.floor(n / elem));
    let filled = 0;
    const step = () => {
      if (!rs.stream) return Promise.reject(new TypeError("This reader has been released."));
      const s = rs.stream[kState];
      // Take from the queue, splitting the head chunk when it is larger than the view.
      if (s.queue.length > 0) {
        const head = s.queue[0];
        const n = Math.min(head.chunk.byteLength, target.byteLength - filled);
        target.set(head.chunk.subarray(0, n), filled);
        filled += n;
        if (n === head.chunk.byteLength) { s.queue.shift(); s.queueSize -= head.size; }
        else { head.chunk = head.chunk.subarray(n); head.size -= n; s.queueSize -= n; }
        if (s.closeRequested && s.queue.length === 0) rsClose(rs.stream);
        if (filled >= min || filled === target.byteLength || s.state !== "readable") { rsPullIfNeeded(rs.stream); return Promise.resolve({ value: make(filled), done: false }); }
      }
      return readerRead(this).then((r) => {
        if (r.done) return { value: filled > 0 ? make(filled) : make(0), done: filled === 0 };
        s.queue.unshift({ chunk: r.value, size: r.value.byteLength });
        s.queueSize += r.value.byteLength;
        return step();
      });
    };
    return step();
  }
  cancel(reason) {
    const rs = this[kState];
    if (!rs.stream) return Promise.reject(new TypeError("This reader has been released."));
    return rsCancel(rs.stream, reason);
  }
  releaseLock() { readerRelease(this); }
}
tag(ReadableStreamBYOBReader);

function rsTee(stream) {
  const reader = stream.getReader();
  let reading = false, readAgain = false, canceled1 = false, canceled2 = false, reason1, reason2;
  const cancelDone = deferred();
  let c1, c2;
  const pull = () => {
    if (reading) { readAgain = true; return Promise.resolve(); }
    reading = true;
    reader.read().then((r) => {
      reading = false;
      if (r.done) {
        if (!canceled1) c1.close();
        if (!canceled2) c2.close();
        if (!canceled1 || !canceled2) cancelDone.resolve(undefined);
        return;
      }
      const v = r.value;
      // Each branch gets its own copy of byte chunks so readers can't observe each other.
      const v2 = isBufferSource(v) && !canceled1 ? copyBytes(v) : v;
      if (!canceled1) c1.enqueue(v);
      if (!canceled2) c2.enqueue(v2);
      if (readAgain) { readAgain = false; pull(); }
    }, (e) => { reading = false; c1.error(e); c2.error(e); cancelDone.resolve(undefined); });
    return Promise.resolve();
  };
  const cancelBoth = () => {
    if (canceled1 && canceled2) reader.cancel([reason1, reason2]).then(cancelDone.resolve, cancelDone.reject);
    return cancelDone.promise;
  };
  const b1 = new ReadableStream({ start(c) { c1 = c; }, pull, cancel(r) { canceled1 = true; reason1 = r; return cancelBoth(); } }, { highWaterMark: 0 });
  const b2 = new ReadableStream({ start(c) { c2 = c; }, pull, cancel(r) { canceled2 = true; reason2 = r; return cancelBoth(); } }, { highWaterMark: 0 });
  reader.closed.then(undefined, (e) => { c1.error(e); c2.error(e); });
  return [b1, b2];
}

async function pipeTo(source, dest, options) {
  const { preventClose, preventAbort, preventCancel, signal } = options;
  const reader = source.getReader();
  const writer = dest.getWriter();
  let abortListener = null;
  const aborted = new Promise((_, reject) => {
    if (signal) {
      if (signal.aborted) { reject(signal.reason); return; }
      abortListener = () => reject(signal.reason);
      signal.addEventListener("abort", abortListener);
    }
  });
  markHandled(aborted);
  const destClosed = writer.closed;
  markHandled(destClosed);
  try {
    for (;;) {
      await Promise.race([writer.ready, aborted, destClosed.then(() => { throw new TypeError("The destination stream was closed."); })]);
      const r = await Promise.race([reader.read(), aborted]);
      if (r.done) {
        if (!preventClose) await writer.close();
        break;
      }
      markHandled(writer.write(r.value));
    }
  } catch (e) {
    const s = source[kState];
    const ws = dest[kState];
    if (s.state === "errored") {
      if (!preventAbort && ws.state === "writable") await writer.abort(e).catch(() => {});
    } else if (ws.state === "errored" || ws.state === "erroring" || ws.state === "closed") {
      if (!preventCancel) await reader.cancel(e).catch(() => {});
    } else {
      // Aborted through the signal.
      if (!preventAbort) await writer.abort(e).catch(() => {});
      if (!preventCancel) await reader.cancel(e).catch(() => {});
    }
    throw e;
  } finally {
    if (signal && abortListener) signal.removeEventListener("abort", abortListener);
    reader.releaseLock();
    writer.releaseLock();
  }
}

// ---------- WritableStream ----------

class WritableStreamDefaultController {
  constructor() { throw new TypeError("Illegal constructor"); }
  get signal() { return this[kWS][kState].abortController.signal; }
  error(e) { wsError(this[kWS], e); }
}
tag(WritableStreamDefaultController);

class WritableStream {
  constructor(sink = undefined, strategy = undefined) {
    sink = sink === null ? undefined : sink;
    if (sink && sink.type !== undefined) throw new RangeError("Invalid type is specified");
    const s = {
      state: "writable", sink, hwm: highWaterMark(strategy, 1), size: sizeAlgorithm(strategy),
      queue: [], queueSize: 0, inFlight: false, started: false, writer: null, storedError: undefined,
      closeRequest: null, backpressure: false, abortController: new AbortController(), pendingAbort: null,
    };
    this[kState] = s;
    s.controller = newController(WritableStreamDefaultController.prototype, null);
    s.controller[kWS] = this;
    s.backpressure = s.hwm <= 0;
    let start;
    start = sink && typeof sink.start === "function" ? sink.start(s.controller) : undefined;
    Promise.resolve(start).then(() => { s.started = true; wsAdvance(this); }, (e) => { s.started = true; wsError(this, e); wsFinishErroring(this); });
  }
  get locked() { return this[kState].writer !== null; }
  abort(reason) {
    if (this.locked) return Promise.reject(new TypeError("This WritableStream is currently locked to a writer."));
    return wsAbort(this, reason);
  }
  close() {
    if (this.locked) return Promise.reject(new TypeError("This WritableStream is currently locked to a writer."));
    return wsClose(this);
  }
  getWriter() { return new WritableStreamDefaultWriter(this); }
}
tag(WritableStream);

function wsDesiredSize(stream) {
  const s = stream[kState];
  if (s.state === "errored" || s.state === "erroring") return null;
  if (s.state === "closed") return 0;
  return s.hwm - s.queueSize;
}

function wsUpdateBackpressure(stream) {
  const s = stream[kState];
  if (s.state !== "writable" || s.closeRequest) return;
  const bp = s.hwm - s.queueSize <= 0;
  if (bp === s.backpressure) return;
  s.backpressure = bp;
  const w = s.writer;
  if (!w) return;
  if (bp) w[kState].ready = deferred();
  else w[kState].ready.resolve(undefined);
}

function wsWrite(stream, chunk) {
  const s = stream[kState];
  if (s.state === "errored" || s.state === "erroring") return Promise.reject(s.storedError);
  if (s.state === "closed" || s.closeRequest) return Promise.reject(new TypeError("This WritableStream has been closed."));
  let size;
  try { size = s.size(chunk); } catch (e) { wsError(stream, e); return Promise.reject(e); }
  const d = deferred();
  s.queue.push({ kind: "write", chunk, size, d });
  s.queueSize += size;
  wsUpdateBackpressure(stream);
  wsAdvance(stream);
  return d.promise;
}

function wsClose(stream) {
  const s = stream[kState];
  if (s.state === "closed" || s.state === "errored") return Promise.reject(new TypeError("This WritableStream is closed or errored."));
  if (s.closeRequest) return Promise.reject(new TypeError("This WritableStream is already closing."));
  const d = deferred();
  s.closeRequest = d;
  if (s.writer && s.backpressure && s.state === "writable") s.writer[kState].ready.resolve(undefined);
  s.queue.push({ kind: "close", size: 0, d });
  wsAdvance(stream);
  return d.promise;
}

function wsAdvance(stream) {
  const s = stream[kState];
  if (!s.started || s.inFlight) return;
  if (s.state === "erroring") { wsFinishErroring(stream); return; }
  if (s.state !== "writable" || s.queue.length === 0) return;
  const op = s.queue.shift();
  s.inFlight = true;
  const sink = s.sink;
  let p;
  try {
    if (op.kind === "write") p = sink && typeof sink.write === "function" ? sink.write(op.chunk, s.controller) : undefined;
    else p = sink && typeof sink.close === "function" ? sink.close() : undefined;
    p = Promise.resolve(p);
  } catch (e) { p = Promise.reject(e); }
  p.then(() => {
    s.inFlight = false;
    if (op.kind === "write") {
      s.queueSize -= op.size;
      if (s.queue.length === 0) s.queueSize = 0;
      op.d.resolve(undefined);
      wsUpdateBackpressure(stream);
      wsAdvance(stream);
    } else {
      s.state = "closed";
      op.d.resolve(undefined);
      if (s.writer) s.writer[kState].closed.resolve(undefined);
      if (s.pendingAbort) s.pendingAbort.resolve(undefined);
    }
  }, (e) => {
    s.inFlight = false;
    op.d.reject(e);
    wsError(stream, e);
    wsFinishErroring(stream);
  });
}

function wsError(stream, e) {
  const s = stream[kState];
  if (s.state !== "writable") return;
  s.state = "erroring";
  s.storedError = e;
  const w = s.writer;
  if (w) {
    if (s.backpressure) { w[kState].ready.reject(e); }
    else { w[kState].ready = deferred(); w[kState].ready.reject(e); }
    markHandled(w[kState].ready.promise);
  }
  if (!s.inFlight && s.started) wsFinishErroring(stream);
}

function wsFinishErroring(stream) {
  const s = stream[kState];
  if (s.state !== "erroring") return;
  s.state = "errored";
  for (const op of s.queue) op.d.reject(s.storedError);
  s.queue = []; s.queueSize = 0;
  if (s.writer) { s.writer[kState].closed.reject(s.storedError); markHandled(s.writer[kState].closed.promise); }
  const pa = s.pendingAbort;
  if (pa) {
    s.pendingAbort = null;
    const abort = s.sink && s.sink.abort;
    let p;
    try { p = Promise.resolve(typeof abort === "function" ? abort.call(s.sink, pa.reason) : undefined); } catch (e) { p = Promise.reject(e); }
    p.then(() => pa.resolve(undefined), (e) => pa.reject(e));
  }
}

function wsAbort(stream, reason) {
  const s = stream[kState];
  if (s.state === "closed" || s.state === "errored") return Promise.resolve();
  s.abortController.abort(reason);
  if (s.pendingAbort) return s.pendingAbort.promise;
  const d = deferred();
  d.reason = reason;
  s.pendingAbort = d;
  if (s.state === "writable") wsError(stream, reason);
  else if (!s.inFlight) wsFinishErroring(stream);
  return d.promise;
}

class WritableStreamDefaultWriter {
  constructor(stream) {
    if (!(stream instanceof WritableStream)) throw new TypeError("Expected a WritableStream.");
    const s = stream[kState];
    if (s.writer) throw new TypeError("This WritableStream is currently locked to a writer.");
    const ready = deferred(), closed = deferred();
    this[kState] = { stream, ready, closed };
    s.writer = this;
    if (s.state === "writable") { if (!s.backpressure || s.closeRequest) ready.resolve(undefined); }
    else if (s.state === "closed") { ready.resolve(undefined); closed.resolve(undefined); }
    else { ready.reject(s.storedError); closed.reject(s.storedError); markHandled(ready.promise); markHandled(closed.promise); }
  }
  get closed() { return this[kState].closed.promise; }
  get ready() { return this[kState].ready.promise; }
  get desiredSize() {
    if (!this[kState].stream) throw new TypeError("This writer has been released.");
    return wsDesiredSize(this[kState].stream);
  }
  write(chunk) {
    const st = this[kState];
    if (!st.stream) return Promise.reject(new TypeError("This writer has been released."));
    return wsWrite(st.stream, chunk);
  }
  close() {
    const st = this[kState];
    if (!st.stream) return Promise.reject(new TypeError("This writer has been released."));
    return wsClose(st.stream);
  }
  abort(reason) {
    const st = this[kState];
    if (!st.stream) return Promise.reject(new TypeError("This writer has been released."));
    return wsAbort(st.stream, reason);
  }
  releaseLock() {
    const st = this[kState];
    if (!st.stream) return;
    const err = new TypeError("This writer has been released.");
    const s = st.stream[kState];
    st.ready = deferred(); st.ready.reject(err); markHandled(st.ready.promise);
    st.closed = deferred(); st.closed.reject(err); markHandled(st.closed.promise);
    s.writer = null;
    st.stream = null;
  }
}
tag(WritableStreamDefaultWriter);

// ---------- TransformStream ----------

class TransformStreamDefaultController {
  constructor() { throw new TypeError("Illegal constructor"); }
  get desiredSize() { return rsDesiredSize(this[kState].readable); }
  enqueue(chunk) {
    const t = this[kState];
    const rc = t.readable[kState].controller;
    rc.enqueue(chunk);
  }
  error(e) { tsError(this[kState], e); }
  terminate() {
    const t = this[kState];
    const rs = t.readable[kState];
    if (rs.state === "readable" && !rs.closeRequested) rs.controller.close();
    wsError(t.writable, new TypeError("The transform stream has been terminated."));
  }
}
tag(TransformStreamDefaultController);

function tsError(t, e) {
  rsError(t.readable, e);
  wsError(t.writable, e);
}

class TransformStream {
  constructor(transformer = undefined, writableStrategy = undefined, readableStrategy = undefined) {
    transformer = transformer === null ? undefined : transformer;
    if (transformer && (transformer.readableType !== undefined || transformer.writableType !== undefined)) {
      throw new RangeError("Invalid readableType or writableType.");
    }
    const t = { transformer, readable: null, writable: null, backpressure: null, controller: null };
    const controller = Object.create(TransformStreamDefaultController.prototype);
    controller[kState] = t;
    t.controller = controller;
    const startDone = deferred();
    const waitForRead = () => {
      const rs = t.readable[kState];
      if (rs.hwm - rs.queueSize > 0 || (rs.reader && rs.reader[kState].requests.length > 0)) return null;
      if (!t.backpressure) t.backpressure = deferred();
      return t.backpressure.promise;
    };
    t.writable = new WritableStream({
      start: () => startDone.promise,
      write: async (chunk) => {
        const wait = waitForRead();
        if (wait) await wait;
        const ws = t.writable[kState];
        if (ws.state === "erroring") throw ws.storedError;
        try {
          if (transformer && typeof transformer.transform === "function") {
            await transformer.transform(chunk, controller);
          } else {
            controller.enqueue(chunk);
          }
        } catch (e) {
          // A failed transform errors both sides, so a pending read settles.
          rsError(t.readable, e);
          throw e;
        }
      },
      close: async () => {
        try {
          if (transformer && typeof transformer.flush === "function") await transformer.flush(controller);
        } catch (e) {
          rsError(t.readable, e);
          throw e;
        }
        const rs = t.readable[kState];
        if (rs.state === "readable" && !rs.closeRequested) rs.controller.close();
      },
      abort: async (reason) => {
        if (transformer && typeof transformer.cancel === "function") await transformer.cancel(reason);
        rsError(t.readable, reason);
      },
    }, writableStrategy);
    t.readable = new ReadableStream({
      start: () => startDone.promise,
      pull: () => {
        if (t.backpressure) { const b = t.backpressure; t.backpressure = null; b.resolve(undefined); }
      },
      cancel: async (reason) => {
        if (transformer && typeof transformer.cancel === "function") await transformer.cancel(reason);
        wsError(t.writable, reason);
      },
    }, readableStrategy === undefined ? { highWaterMark: 0 } : readableStrategy);
    this[kState] = t;
    let start;
    try {
      start = transformer && typeof transformer.start === "function" ? transformer.start(controller) : undefined;
    } catch (e) { startDone.reject(e); throw e; }
    Promise.resolve(start).then(startDone.resolve, startDone.reject);
  }
  get readable() { return this[kState].readable; }
  get writable() { return this[kState].writable; }
}
tag(TransformStream);

// Workers' byte-oriented identity stream.
class IdentityTransformStream extends TransformStream {
  constructor() {
    super({
      transform(chunk, c) {
        const b = asBytes(chunk);
        if (b === null) throw new TypeError("This TransformStream is being used as a byte stream, but received an object of non-ArrayBuffer/ArrayBufferView type on its writable side.");
        if (b.byteLength > 0) c.enqueue(b.slice());
      },
    });
  }
}
tag(IdentityTransformStream);

// Workers' FixedLengthStream: an identity stream that insists on an exact byte count.
class FixedLengthStream extends TransformStream {
  constructor(expectedLength) {
    const expected = Number(expectedLength);
    if (!(expected >= 0) || !Number.isInteger(expected)) throw new TypeError("FixedLengthStream requires a non-negative integer length.");
    let seen = 0;
    super({
      transform(chunk, c) {
        const b = asBytes(chunk);
        if (b === null) throw new TypeError("This TransformStream is being used as a byte stream, but received an object of non-ArrayBuffer/ArrayBufferView type on its writable side.");
        seen += b.byteLength;
        if (seen > expected) throw new TypeError("Attempt to write too many bytes through a FixedLengthStream.");
        if (b.byteLength > 0) c.enqueue(b.slice());
      },
      flush() {
        if (seen < expected) throw new TypeError("FixedLengthStream did not see all expected bytes before close().");
      },
    });
    this[kState].expectedLength = expected;
  }
}
tag(FixedLengthStream);

class TextEncoderStream {
  constructor() {
    let pending = "";
    this[kState] = new TransformStream({
      transform(chunk, c) {
        let s = pending + String(chunk);
        pending = "";
        // Hold back a trailing high surrogate until its pair arrives.
        const last = s.charCodeAt(s.length - 1);
        if (last >= 0xd800 && last <= 0xdbff) { pending = s.slice(-1); s = s.slice(0, -1); }
        if (s.length > 0) c.enqueue(native.utf8Encode(s));
      },
      flush(c) { if (pending) c.enqueue(native.utf8Encode(pending)); },
    });
  }
  get encoding() { return "utf-8"; }
  get readable() { return this[kState].readable; }
  get writable() { return this[kState].writable; }
}
tag(TextEncoderStream);

class TextDecoderStream {
  constructor(label = "utf-8", options = {}) {
    const decoder = new TextDecoder(label, options);
    this[kDecoder] = decoder;
    this[kState] = new TransformStream({
      transform(chunk, c) {
        const b = asBytes(chunk);
        if (b === null) throw new TypeError("TextDecoderStream expects ArrayBuffer or ArrayBufferView chunks.");
        const s = decoder.decode(b, { stream: true });
        if (s) c.enqueue(s);
      },
      flush(c) { const s = decoder.decode(); if (s) c.enqueue(s); },
    });
  }
  get encoding() { return this[kDecoder].encoding; }
  get fatal() { return this[kDecoder].fatal; }
  get ignoreBOM() { return this[kDecoder].ignoreBOM; }
  get readable() { return this[kState].readable; }
  get writable() { return this[kState].writable; }
}
tag(TextDecoderStream);

// CompressionStream / DecompressionStream over the zlib codecs that also
// back node:zlib. Output is bounded per chunk by the codec's own limit.
const kCodecFormats = { "gzip": ["gzip", "gunzip"], "deflate": ["deflate", "inflate"], "deflate-raw": ["deflateRaw", "inflateRaw"] };
const Z_NO_FLUSH = 0, Z_FINISH = 4;
const kCodecLimit = 256 * 1024 * 1024;
function codecStream(self, format, compress) {
  const names = Object.prototype.hasOwnProperty.call(kCodecFormats, String(format)) ? kCodecFormats[String(format)] : null;
  if (names === null) throw new TypeError("The compression format must be either 'deflate', 'deflate-raw' or 'gzip'.");
  const codec = native.zlibCodec(compress ? names[0] : names[1], -1, 15);
  const fail = (e) => new TypeError((compress ? "Compression" : "Decompression") + " failed: " + (e && e.message ? e.message : String(e)));
  self[kState] = new TransformStream({
    transform(chunk, c) {
      const b = asBytes(chunk);
      if (b === null) throw new TypeError("The input data must be an ArrayBuffer or ArrayBufferView.");
      let out;
      try { out = codec.push(b, Z_NO_FLUSH, kCodecLimit); } catch (e) { throw fail(e); }
      if (out.byteLength > 0) c.enqueue(out);
    },
    flush(c) {
      let out;
      try { out = codec.push(new Uint8Array(0), Z_FINISH, kCodecLimit); } catch (e) { throw fail(e); }
      if (out.byteLength > 0) c.enqueue(out);
    },
  });
}
class CompressionStream {
  constructor(format) { codecStream(this, format, true); }
  get readable() { return this[kState].readable; }
  get writable() { return this[kState].writable; }
}
tag(CompressionStream);
class DecompressionStream {
  constructor(format) { codecStream(this, format, false); }
  get readable() { return this[kState].readable; }
  get writable() { return this[kState].writable; }
}
tag(DecompressionStream);

// Drains a body stream into one Uint8Array. Like workerd, a chunk that is
// not bytes (a string included) errors the read.
// Marks a stream of host bytes (see hostNewStream) read whole outside the
// counted heap.
const kExternal = Symbol("external");

async function readAllBytes(stream) {
  const reader = stream.getReader();
  const chunks = [];
  let total = 0;
  try {
    for (;;) {
      const r = await reader.read();
      if (r.done) break;
      const b = asBytes(r.value);
      if (b === null) throw new TypeError("This ReadableStream did not return bytes.");
      chunks.push(b);
      total += b.byteLength;
    }
  } finally {
    reader.releaseLock();
  }
  if (chunks.length === 0) return new Uint8Array(0);
  if (stream[kExternal] === true && chunks.length > 1) return native.concatExternal(chunks, total);
  return concatBytes(chunks, total);
}

defineGlobal("ReadableStream", ReadableStream);
defineGlobal("ReadableStreamDefaultReader", ReadableStreamDefaultReader);
defineGlobal("ReadableStreamBYOBReader", ReadableStreamBYOBReader);
defineGlobal("ReadableStreamDefaultController", ReadableStreamDefaultController);
defineGlobal("ReadableByteStreamController", ReadableByteStreamController);
defineGlobal("WritableStream", WritableStream);
defineGlobal("WritableStreamDefaultWriter", WritableStreamDefaultWriter);
defineGlobal("WritableStreamDefaultController", WritableStreamDefaultController);
defineGlobal("TransformStream", TransformStream);
defineGlobal("TransformStreamDefaultController", TransformStreamDefaultController);
defineGlobal("IdentityTransformStream", IdentityTransformStream);
defineGlobal("FixedLengthStream", FixedLengthStream);
defineGlobal("TextEncoderStream", TextEncoderStream);
defineGlobal("TextDecoderStream", TextDecoderStream);
defineGlobal("CompressionStream", CompressionStream);
defineGlobal("DecompressionStream", DecompressionStream);
defineGlobal("CountQueuingStrategy", CountQueuingStrategy);
defineGlobal("ByteLengthQueuingStrategy", ByteLengthQueuingStrategy);
