import { received } from 'hearth:node-internal';
// node:stream — Readable, Writable, Duplex, Transform and PassThrough with
// Node's buffering, flowing/paused modes, backpressure ('drain'),
// destroy/error/close ordering, pipe, async iteration, finished and
// pipeline. Constructors are plain functions so that both `class X extends
// Readable` and the older `Readable.call(this, opts)` + util.inherits work.
import EventEmitter from 'node:events';
import { Buffer } from 'node:buffer';
import { StringDecoder } from 'node:string_decoder';
import { nextTick } from 'node:process';

let defaultHwmBytes = 65536;
let defaultHwmObjects = 16;

export function getDefaultHighWaterMark(objectMode) {
  return objectMode ? defaultHwmObjects : defaultHwmBytes;
}

export function setDefaultHighWaterMark(objectMode, value) {
  if (!Number.isInteger(value) || value < 0) throw invalidArgValue('value', value);
  if (objectMode) defaultHwmObjects = value;
  else defaultHwmBytes = value;
}

function codeError(Ctor, code, message) {
  const e = new Ctor(message);
  e.code = code;
  return e;
}
function invalidArgValue(name, value) {
  return codeError(TypeError, 'ERR_INVALID_ARG_VALUE', "The argument '" + name + "' is invalid. Received " + String(value));
}
const errWriteAfterEnd = () => codeError(Error, 'ERR_STREAM_WRITE_AFTER_END', 'write after end');
const errDestroyed = (method) => codeError(Error, 'ERR_STREAM_DESTROYED', 'Cannot call ' + method + ' after a stream was destroyed');
const errPrematureClose = () => codeError(Error, 'ERR_STREAM_PREMATURE_CLOSE', 'Premature close');
const errPushAfterEof = () => codeError(Error, 'ERR_STREAM_PUSH_AFTER_EOF', 'stream.push() after EOF');
const errUnshiftAfterEnd = () => codeError(Error, 'ERR_STREAM_UNSHIFT_AFTER_END_EVENT', 'stream.unshift() after end event');
const errNotImplemented = (m) => codeError(Error, 'ERR_METHOD_NOT_IMPLEMENTED', 'The ' + m + ' method is not implemented');
const errAlreadyFinished = (m) => codeError(Error, 'ERR_STREAM_ALREADY_FINISHED', 'Cannot call ' + m + ' after a stream was finished');
const errNullValues = () => codeError(TypeError, 'ERR_STREAM_NULL_VALUES', 'May not write null values to stream');
function errChunkType(chunk) {
  return codeError(TypeError, 'ERR_INVALID_ARG_TYPE', 'The "chunk" argument must be of type string or an instance of Buffer, TypedArray, or DataView.' + received(chunk));
}
function abortError(reason) {
  const e = new Error('The operation was aborted', reason === undefined ? undefined : { cause: reason });
  e.name = 'AbortError';
  e.code = 'ABORT_ERR';
  return e;
}

function hwmFrom(options, key, objectMode) {
  const v = options && (options[key] ?? options.highWaterMark);
  if (v === undefined || v === null) return getDefaultHighWaterMark(objectMode);
  if (!Number.isInteger(v) || v < 0) throw invalidArgValue('options.highWaterMark', v);
  return v;
}

function toBuffer(chunk) {
  if (Buffer.isBuffer(chunk)) return chunk;
  return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
}

// The legacy base class: an EventEmitter with the old `pipe`.
export function Stream(opts) {
  EventEmitter.call(this, opts);
}
Object.setPrototypeOf(Stream.prototype, EventEmitter.prototype);
Object.setPrototypeOf(Stream, EventEmitter);
// The legacy pipe, for emitters that are not Readable: 'data' is written
// to `dest`, paused while `dest` wants draining, and 'end' ends it.
Stream.prototype.pipe = function (dest, options) {
  const source = this;
  const ondata = (chunk) => {
    if (dest.writable && dest.write(chunk) === false && typeof source.pause === 'function') source.pause();
  };
  const ondrain = () => {
    if (source.readable !== false && typeof source.resume === 'function') source.resume();
  };
  source.on('data', ondata);
  dest.on('drain', ondrain);
  let ended = false;
  const onend = () => {
    if (ended) return;
    ended = true;
    dest.end();
  };
  if (!options || options.end !== false) {
    source.on('end', onend);
    source.on('close', onend);
  }
  const cleanup = () => {
    source.removeListener('data', ondata);
    dest.removeListener('drain', ondrain);
    source.removeListener('end', onend);
    source.removeListener('close', onend);
  };
  source.on('end', cleanup);
  source.on('close', cleanup);
  dest.on('close', cleanup);
  dest.emit('pipe', source);
  return dest;
};

// ---- destroy, shared by both sides ----

function destroyImpl(err, cb) {
  const r = this._readableState;
  const w = this._writableState;
  const s = r || w;
  if ((w && w.destroyed) || (r && r.destroyed)) {
    if (typeof cb === 'function') cb();
    return this;
  }
  if (err) {
    if (w && !w.errored) w.errored = err;
    if (r && !r.errored) r.errored = err;
  }
  if (w) w.destroyed = true;
  if (r) r.destroyed = true;
  const finish = (er) => {
    if (er) {
      if (w && !w.errored) w.errored = er;
      if (r && !r.errored) r.errored = er;
    }
    if (w) w.closed = true;
    if (r) r.closed = true;
    if (typeof cb === 'function') cb(er);
    nextTick(() => {
      if (er && !((w && w.errorEmitted) || (r && r.errorEmitted))) {
        if (w) w.errorEmitted = true;
        if (r) r.errorEmitted = true;
        this.emit('error', er);
      }
      if (w) w.closeEmitted = true;
      if (r) r.closeEmitted = true;
      if (s.emitClose) this.emit('close');
    });
  };
  const run = () => {
    let called = false;
    try {
      this._destroy(err || null, (er) => {
        if (called) return;
        called = true;
        finish(er);
      });
    } catch (e) {
      if (!called) {
        called = true;
        finish(e);
      }
    }
  };
  if (s.constructed === false) this.once(kConstruct, run);
  else run();
  return this;
}

function errorOrDestroy(stream, err, sync) {
  const r = stream._readableState;
  const w = stream._writableState;
  if ((w && w.destroyed) || (r && r.destroyed)) return;
  if ((r && r.autoDestroy) || (w && w.autoDestroy)) {
    stream.destroy(err);
  } else if (err) {
    if (w && !w.errored) w.errored = err;
    if (r && !r.errored) r.errored = err;
    const emit = () => {
      if ((w && w.errorEmitted) || (r && r.errorEmitted)) return;
      if (w) w.errorEmitted = true;
      if (r) r.errorEmitted = true;
      stream.emit('error', err);
    };
    if (sync) nextTick(emit);
    else emit();
  }
}

const kConstruct = Symbol('kConstruct');

function construct(stream, state) {
  if (typeof stream._construct !== 'function') return;
  state.constructed = false;
  const w = stream._writableState;
  if (w && w !== state) w.constructed = false;
  nextTick(() => {
    let called = false;
    const done = (err) => {
      if (called) return;
      called = true;
      state.constructed = true;
      if (w) w.constructed = true;
      if (err) errorOrDestroy(stream, err, true);
      stream.emit(kConstruct);
      if (stream._readableState && !err) maybeReadMore(stream, stream._readableState);
      if (w && !err) {
        if (w.buffered.length && !w.writing) clearBuffer(stream, w);
        finishMaybe(stream, w);
      }
    };
    try {
      stream._construct(done);
    } catch (e) {
      done(e);
    }
  });
}

// ---- Readable ----

function ReadableState(options, stream, isDuplex) {
  const o = options || {};
  this.objectMode = !!(o.objectMode || (isDuplex && o.readableObjectMode));
  this.highWaterMark = hwmFrom(o, isDuplex ? 'readableHighWaterMark' : 'highWaterMark', this.objectMode);
  this.buffer = [];
  this.length = 0;
  this.pipes = [];
  this.flowing = null;
  this.ended = false;
  this.endEmitted = false;
  this.reading = false;
  this.constructed = true;
  this.sync = true;
  this.needReadable = false;
  this.emittedReadable = false;
  this.readableListening = false;
  this.resumeScheduled = false;
  this.errorEmitted = false;
  this.emitClose = o.emitClose !== false;
  this.autoDestroy = o.autoDestroy !== false;
  this.destroyed = false;
  this.errored = null;
  this.closed = false;
  this.closeEmitted = false;
  this.defaultEncoding = o.defaultEncoding || 'utf8';
  this.awaitDrainWriters = 0;
  this.multiAwaitDrain = false;
  this.readingMore = false;
  this.dataEmitted = false;
  this.decoder = null;
  this.encoding = null;
  this.paused = null;
  if (o.encoding) {
    this.decoder = new StringDecoder(o.encoding);
    this.encoding = o.encoding;
  }
}

export function Readable(options) {
  if (!(this instanceof Readable)) return new Readable(options);
  const isDuplex = this instanceof Duplex;
  this._readableState = new ReadableState(options, this, isDuplex);
  if (options) {
    if (typeof options.read === 'function') this._read = options.read;
    if (typeof options.destroy === 'function') this._destroy = options.destroy;
    if (typeof options.construct === 'function') this._construct = options.construct;
    if (options.signal && !isDuplex) addAbortSignal(options.signal, this);
  }
  Stream.call(this, options);
  if (!isDuplex) construct(this, this._readableState);
}
Object.setPrototypeOf(Readable.prototype, Stream.prototype);
Object.setPrototypeOf(Readable, Stream);

Readable.prototype.destroy = destroyImpl;
Readable.prototype._undestroy = function () {
  for (const s of [this._readableState, this._writableState]) {
    if (!s) continue;
    s.destroyed = false;
    s.closed = false;
    s.closeEmitted = false;
    s.errored = null;
    s.errorEmitted = false;
  }
};
Readable.prototype._destroy = function (err, cb) {
  cb(err);
};
Readable.prototype[EventEmitter.captureRejectionSymbol] = function (err) {
  this.destroy(err);
};
Readable.prototype._read = function () {
  throw errNotImplemented('_read()');
};

Readable.prototype.push = function (chunk, encoding) {
  return addChunk(this, chunk, encoding, false);
};
Readable.prototype.unshift = function (chunk, encoding) {
  return addChunk(this, chunk, encoding, true);
};

function addChunk(stream, chunk, encoding, front) {
  const state = stream._readableState;
  if (chunk === null) {
    state.reading = false;
    onEof(stream, state);
    return false;
  }
  if (!state.objectMode) {
    if (typeof chunk === 'string') {
      encoding = encoding || state.defaultEncoding;
      if (state.encoding !== encoding) {
        chunk = front && state.encoding ? Buffer.from(chunk, encoding).toString(state.encoding) : Buffer.from(chunk, encoding);
      }
    } else if (chunk instanceof Uint8Array) {
      chunk = toBuffer(chunk);
    } else if (chunk !== undefined) {
      errorOrDestroy(stream, errChunkType(chunk));
      return false;
    }
  }
  if (chunk === undefined) {
    state.reading = false;
    return canPushMore(state);
  }
  if (front) {
    if (state.endEmitted) {
      errorOrDestroy(stream, errUnshiftAfterEnd());
      return false;
    }
    if (state.destroyed || state.errored) return false;
    insertChunk(stream, state, chunk, true);
    return canPushMore(state);
  }
  if (state.ended) {
    errorOrDestroy(stream, errPushAfterEof());
    return false;
  }
  if (state.destroyed || state.errored) return false;
  state.reading = false;
  if (state.decoder && !state.objectMode && typeof chunk !== 'string') {
    chunk = state.decoder.write(chunk);
    if (chunk.length === 0) {
      maybeReadMore(stream, state);
      return canPushMore(state);
    }
  }
  insertChunk(stream, state, chunk, false);
  return canPushMore(state);
}

function canPushMore(state) {
  return !state.ended && (state.length < state.highWaterMark || state.length === 0);
}

function insertChunk(stream, state, chunk, front) {
  if (!front && state.flowing && state.length === 0 && !state.sync && stream.listenerCount('data') > 0) {
    if (state.multiAwaitDrain) state.awaitDrainWriters = 0;
    state.dataEmitted = true;
    stream.emit('data', chunk);
  } else {
    state.length += state.objectMode ? 1 : chunk.length;
    if (front) state.buffer.unshift(chunk);
    else state.buffer.push(chunk);
    if (state.needReadable) emitReadable(stream);
  }
  maybeReadMore(stream, state);
}

function onEof(stream, state) {
  if (state.ended) return;
  if (state.decoder) {
    const rest = state.decoder.end();
    if (rest && rest.length) {
      state.buffer.push(rest);
      state.length += state.objectMode ? 1 : rest.length;
    }
  }
  state.ended = true;
  if (state.sync) {
    emitReadable(stream);
  } else {
    state.needReadable = false;
    state.emittedReadable = true;
    emitReadableNow(stream);
  }
}

function emitReadable(stream) {
  const state = stream._readableState;
  state.needReadable = false;
  if (!state.emittedReadable) {
    state.emittedReadable = true;
    nextTick(emitReadableNow, stream);
  }
}

function emitReadableNow(stream) {
  const state = stream._readableState;
  if (!state.destroyed && !state.errored && (state.length || state.ended)) {
    stream.emit('readable');
    state.emittedReadable = false;
  }
  state.needReadable = !state.flowing && !state.ended && state.length <= state.highWaterMark;
  flow(stream);
}

function maybeReadMore(stream, state) {
  if (!state.readingMore && state.constructed) {
    state.readingMore = true;
    nextTick(() => {
      while (!state.reading && !state.ended && (state.length < state.highWaterMark || (state.flowing && state.length === 0))) {
        const len = state.length;
        stream.read(0);
        if (len === state.length) break;
      }
      state.readingMore = false;
    });
  }
}

function howMuchToRead(n, state) {
  if (n <= 0 || (state.length === 0 && state.ended)) return 0;
  if (state.objectMode) return 1;
  if (Number.isNaN(n)) {
    if (state.flowing && state.length) return state.buffer[0].length;
    return state.length;
  }
  if (n <= state.length) return n;
  return state.ended ? state.length : 0;
}

Readable.prototype.read = function (n) {
  const state = this._readableState;
  if (n === undefined) n = NaN;
  else if (!Number.isInteger(n)) n = Number.parseInt(n, 10);
  const nOrig = n;
  if (n > state.highWaterMark) {
    if (n > 1073741824) throw codeError(RangeError, 'ERR_OUT_OF_RANGE', 'The value of "size" is out of range. It must be <= 1GiB. Received ' + n);
    let h = n - 1;
    for (const s of [1, 2, 4, 8, 16]) h |= h >>> s;
    state.highWaterMark = h + 1;
  }
  if (n !== 0) state.emittedReadable = false;
  if (n === 0 && state.needReadable && ((state.highWaterMark !== 0 ? state.length >= state.highWaterMark : state.length > 0) || state.ended)) {
    if (state.length === 0 && state.ended) endReadable(this);
    else emitReadable(this);
    return null;
  }
  n = howMuchToRead(n, state);
  if (n === 0 && state.ended) {
    if (state.length === 0) endReadable(this);
    return null;
  }
  let doRead = state.needReadable;
  if (state.length === 0 || state.length - n < state.highWaterMark) doRead = true;
  if (state.ended || state.reading || state.destroyed || state.errored || !state.constructed) {
    doRead = false;
  } else if (doRead) {
    state.reading = true;
    state.sync = true;
    if (state.length === 0) state.needReadable = true;
    try {
      this._read(state.highWaterMark);
    } catch (err) {
      errorOrDestroy(this, err);
    }
    state.sync = false;
    if (!state.reading) n = howMuchToRead(nOrig, state);
  }
  let ret = n > 0 ? fromList(n, state) : null;
  if (ret === null) {
    state.needReadable = state.length <= state.highWaterMark;
    n = 0;
  } else {
    state.length -= state.objectMode ? 1 : n;
    if (state.multiAwaitDrain) state.awaitDrainWriters = 0;
    else state.awaitDrainWriters = 0;
  }
  if (state.length === 0) {
    if (!state.ended) state.needReadable = true;
    if (nOrig !== n && state.ended) endReadable(this);
  }
  if (ret !== null && !state.errorEmitted && !state.closeEmitted) {
    state.dataEmitted = true;
    this.emit('data', ret);
  }
  return ret;
};

function fromList(n, state) {
  if (state.length === 0) return null;
  const buf = state.buffer;
  if (state.objectMode) return buf.shift();
  if (n >= state.length) {
    const all = state.decoder ? buf.join('') : buf.length === 1 ? buf[0] : Buffer.concat(buf, state.length);
    state.buffer = [];
    return all;
  }
  if (n < buf[0].length) {
    const first = buf[0];
    buf[0] = first.slice(n);
    return first.slice(0, n);
  }
  if (n === buf[0].length) return buf.shift();
  if (state.decoder) {
    let out = '';
    while (out.length < n) {
      const c = buf[0];
      const need = n - out.length;
      if (c.length <= need) {
        out += c;
        buf.shift();
      } else {
        out += c.slice(0, need);
        buf[0] = c.slice(need);
      }
    }
    return out;
  }
  const out = Buffer.allocUnsafe(n);
  let off = 0;
  while (off < n) {
    const c = buf[0];
    const need = n - off;
    if (c.length <= need) {
      out.set(c, off);
      off += c.length;
      buf.shift();
    } else {
      out.set(c.subarray(0, need), off);
      buf[0] = c.slice(need);
      off += need;
    }
  }
  return out;
}

function endReadable(stream) {
  const state = stream._readableState;
  if (!state.endEmitted) {
    state.ended = true;
    nextTick(endReadableNow, state, stream);
  }
}

function endReadableNow(state, stream) {
  if (!state.errored && !state.closeEmitted && !state.endEmitted && state.length === 0) {
    state.endEmitted = true;
    stream.emit('end');
    const w = stream._writableState;
    if (w && w.autoDestroy && w.finished === false) return;
    if (state.autoDestroy && (!w || (w.autoDestroy && (w.finished || w.writable === false)))) stream.destroy();
  }
}

function flow(stream) {
  const state = stream._readableState;
  while (state.flowing && stream.read() !== null);
}

Readable.prototype.on = function (ev, fn) {
  const res = Stream.prototype.on.call(this, ev, fn);
  const state = this._readableState;
  if (ev === 'data') {
    state.readableListening = this.listenerCount('readable') > 0;
    if (state.flowing !== false) this.resume();
  } else if (ev === 'readable') {
    if (!state.endEmitted && !state.readableListening) {
      state.readableListening = state.needReadable = true;
      state.flowing = false;
      state.emittedReadable = false;
      if (state.length) emitReadable(this);
      else if (!state.reading) nextTick(() => this.read(0));
    }
  }
  return res;
};
Readable.prototype.addListener = Readable.prototype.on;

Readable.prototype.removeListener = function (ev, fn) {
  const res = Stream.prototype.removeListener.call(this, ev, fn);
  if (ev === 'readable') nextTick(updateReadableListening, this);
  return res;
};
Readable.prototype.off = Readable.prototype.removeListener;
Readable.prototype.removeAllListeners = function (ev) {
  const res = Stream.prototype.removeAllListeners.apply(this, arguments);
  if (ev === 'readable' || ev === undefined) nextTick(updateReadableListening, this);
  return res;
};

function updateReadableListening(self) {
  const state = self._readableState;
  state.readableListening = self.listenerCount('readable') > 0;
  if (state.resumeScheduled && state.paused === false) state.flowing = true;
  else if (self.listenerCount('data') > 0) self.resume();
  else if (!state.readableListening) state.flowing = null;
}

Readable.prototype.resume = function () {
  const state = this._readableState;
  if (!state.flowing) {
    state.flowing = !state.readableListening;
    if (!state.resumeScheduled) {
      state.resumeScheduled = true;
      nextTick(() => {
        if (!state.reading) this.read(0);
        state.resumeScheduled = false;
        this.emit('resume');
        flow(this);
        if (state.flowing && !state.reading) this.read(0);
      });
    }
  }
  state.paused = false;
  return this;
};

Readable.prototype.pause = function () {
  const state = this._readableState;
  if (state.flowing !== false) {
    state.flowing = false;
    this.emit('pause');
  }
  state.paused = true;
  return this;
};

Readable.prototype.isPaused = function () {
  const state = this._readableState;
  return state.paused === true || state.flowing === false;
};

Readable.prototype.setEncoding = function (enc) {
  const state = this._readableState;
  const decoder = new StringDecoder(enc);
  state.decoder = decoder;
  state.encoding = decoder.encoding;
  let content = '';
  for (const c of state.buffer) content += typeof c === 'string' ? c : decoder.write(c);
  state.buffer = content ? [content] : [];
  state.length = content.length;
  return this;
};

Readable.prototype.pipe = function (dest, pipeOpts) {
  const src = this;
  const state = this._readableState;
  if (state.pipes.length === 1 && !state.multiAwaitDrain) state.multiAwaitDrain = true;
  state.pipes.push(dest);
  const doEnd = (!pipeOpts || pipeOpts.end !== false) && dest !== globalThis.process?.stdout && dest !== globalThis.process?.stderr;
  const endFn = doEnd ? onend : unpipe;
  if (state.endEmitted) nextTick(endFn);
  else src.once('end', endFn);
  dest.on('unpipe', onunpipe);
  function onunpipe(readable, info) {
    if (readable === src && info && info.hasUnpiped === false) {
      info.hasUnpiped = true;
      cleanup();
    }
  }
  function onend() {
    dest.end();
  }
  let ondrain;
  let cleanedUp = false;
  function cleanup() {
    dest.removeListener('close', onclose);
    dest.removeListener('finish', onfinish);
    if (ondrain) dest.removeListener('drain', ondrain);
    dest.removeListener('error', onerror);
    dest.removeListener('unpipe', onunpipe);
    src.removeListener('end', onend);
    src.removeListener('end', unpipe);
    src.removeListener('data', ondata);
    cleanedUp = true;
    if (ondrain && state.awaitDrainWriters && (!dest._writableState || dest._writableState.needDrain)) ondrain();
  }
  function pause() {
    if (!cleanedUp) {
      state.awaitDrainWriters = 1;
      src.pause();
    }
    if (!ondrain) {
      ondrain = () => {
        if (state.awaitDrainWriters > 0) state.awaitDrainWriters--;
        if (state.awaitDrainWriters === 0 && src.listenerCount('data')) {
          state.flowing = false;
          src.resume();
        }
      };
      dest.on('drain', ondrain);
    }
  }
  src.on('data', ondata);
  function ondata(chunk) {
    if (dest.write(chunk) === false) pause();
  }
  function onerror(er) {
    unpipe();
    dest.removeListener('error', onerror);
    if (dest.listenerCount('error') === 0) {
      const s = dest._writableState || dest._readableState;
      if (s && !s.errorEmitted) errorOrDestroy(dest, er);
      else dest.emit('error', er);
    }
  }
  prependListener(dest, 'error', onerror);
  function onclose() {
    dest.removeListener('finish', onfinish);
    unpipe();
  }
  dest.once('close', onclose);
  function onfinish() {
    dest.removeListener('close', onclose);
    unpipe();
  }
  dest.once('finish', onfinish);
  function unpipe() {
    src.unpipe(dest);
  }
  dest.emit('pipe', src);
  if (dest.writableNeedDrain === true) pause();
  else if (!state.flowing) src.resume();
  return dest;
};

function prependListener(emitter, event, fn) {
  if (typeof emitter.prependListener === 'function') return emitter.prependListener(event, fn);
  emitter.on(event, fn);
}

Readable.prototype.unpipe = function (dest) {
  const state = this._readableState;
  if (state.pipes.length === 0) return this;
  const info = { hasUnpiped: false };
  if (!dest) {
    const dests = state.pipes;
    state.pipes = [];
    this.pause();
    for (const d of dests) d.emit('unpipe', this, { hasUnpiped: false });
    return this;
  }
  const i = state.pipes.indexOf(dest);
  if (i === -1) return this;
  state.pipes.splice(i, 1);
  if (state.pipes.length === 0) this.pause();
  dest.emit('unpipe', this, info);
  return this;
};

Readable.prototype.wrap = function (stream) {
  let paused = false;
  stream.on('data', (chunk) => {
    if (!this.push(chunk) && stream.pause) {
      paused = true;
      stream.pause();
    }
  });
  stream.on('end', () => this.push(null));
  stream.on('error', (err) => errorOrDestroy(this, err));
  stream.on('close', () => this.destroy());
  stream.on('destroy', () => this.destroy());
  this._read = () => {
    if (paused && stream.resume) {
      paused = false;
      stream.resume();
    }
  };
  return this;
};

Readable.prototype[Symbol.asyncIterator] = function () {
  return streamToAsyncIterator(this);
};
Readable.prototype.iterator = function (options) {
  return streamToAsyncIterator(this, options);
};

async function* streamToAsyncIterator(stream, options) {
  let callback = () => {};
  function wake() {
    const cb = callback;
    callback = () => {};
    cb();
  }
  stream.on('readable', wake);
  let error;
  const cleanup = finished(stream, { writable: false }, (err) => {
    error = err ? err : null;
    wake();
  });
  try {
    while (true) {
      const chunk = stream.destroyed ? null : stream.read();
      if (chunk !== null) {
        yield chunk;
      } else if (error) {
        throw error;
      } else if (error === null) {
        return;
      } else {
        await new Promise((resolve) => {
          callback = resolve;
        });
      }
    }
  } catch (err) {
    error = err;
    throw error;
  } finally {
    if ((error || (options && options.destroyOnReturn) !== false) && (error === undefined || stream._readableState.autoDestroy)) {
      stream.destroy(null);
    } else {
      stream.off('readable', wake);
      cleanup();
    }
  }
}

Readable.prototype.toArray = async function (options) {
  const out = [];
  for await (const chunk of this) {
    if (options && options.signal && options.signal.aborted) throw abortError(options.signal.reason);
    out.push(chunk);
  }
  return out;
};
Readable.prototype.forEach = async function (fn, options) {
  for await (const chunk of this) {
    if (options && options.signal && options.signal.aborted) throw abortError(options.signal.reason);
    await fn(chunk, { signal: options && options.signal });
  }
};
Readable.prototype.map = function (fn, options) {
  const src = this;
  return Readable.from((async function* () {
    for await (const chunk of src) yield await fn(chunk, { signal: options && options.signal });
  })());
};
Readable.prototype.filter = function (fn, options) {
  const src = this;
  return Readable.from((async function* () {
    for await (const chunk of src) if (await fn(chunk, { signal: options && options.signal })) yield chunk;
  })());
};
Readable.prototype.reduce = async function (fn, initial) {
  let acc = initial;
  let first = arguments.length < 2;
  for await (const chunk of this) {
    if (first) {
      acc = chunk;
      first = false;
    } else {
      acc = await fn(acc, chunk);
    }
  }
  if (first) throw codeError(TypeError, 'ERR_INVALID_ARGS', 'Reduce of an empty stream requires an initial value');
  return acc;
};

function defineState(proto, side, props) {
  for (const [name, get] of Object.entries(props)) {
    Object.defineProperty(proto, name, {
      get() {
        const s = this[side];
        return s ? get(s, this) : undefined;
      },
      enumerable: false,
      configurable: true,
    });
  }
}

defineState(Readable.prototype, '_readableState', {
  readableHighWaterMark: (s) => s.highWaterMark,
  readableLength: (s) => s.length,
  readableObjectMode: (s) => s.objectMode,
  readableEncoding: (s) => s.encoding,
  readableFlowing: (s) => s.flowing,
  readableEnded: (s) => s.endEmitted,
  readableAborted: (s) => s.destroyed && !s.endEmitted,
  readableDidRead: (s) => s.dataEmitted,
  closed: (s) => s.closed,
  errored: (s) => s.errored,
});
Object.defineProperty(Readable.prototype, 'readable', {
  get() {
    const r = this._readableState;
    return !!r && r.readable !== false && !r.destroyed && !r.errorEmitted && !r.endEmitted;
  },
  set(v) {
    if (this._readableState) this._readableState.readable = !!v;
  },
  configurable: true,
});
Object.defineProperty(Readable.prototype, 'destroyed', {
  get() {
    return this._readableState ? this._readableState.destroyed : false;
  },
  set(v) {
    if (this._readableState) this._readableState.destroyed = v;
    if (this._writableState) this._writableState.destroyed = v;
  },
  configurable: true,
});

Readable.from = function (iterable, opts) {
  return from(Readable, iterable, opts);
};

function from(Ctor, iterable, opts) {
  if (typeof iterable === 'string' || iterable instanceof Uint8Array) {
    return new Ctor({
      objectMode: true,
      ...opts,
      read() {
        this.push(iterable);
        this.push(null);
      },
    });
  }
  let iterator;
  let isAsync;
  if (iterable && iterable[Symbol.asyncIterator]) {
    isAsync = true;
    iterator = iterable[Symbol.asyncIterator]();
  } else if (iterable && iterable[Symbol.iterator]) {
    isAsync = false;
    iterator = iterable[Symbol.iterator]();
  } else {
    throw codeError(TypeError, 'ERR_INVALID_ARG_TYPE', 'The "iterable" argument must be an instance of Iterable.' + received(iterable));
  }
  const readable = new Ctor({ objectMode: true, highWaterMark: 1, ...opts });
  let reading = false;
  let done = false;
  readable._read = function () {
    if (!reading) {
      reading = true;
      pump();
    }
  };
  readable._destroy = function (error, cb) {
    close(error).then(() => nextTick(cb, error), (e) => nextTick(cb, e || error));
  };
  async function close(error) {
    const hadError = error !== undefined && error !== null;
    if (!done && typeof iterator.throw === 'function' && hadError) {
      const r = await iterator.throw(error);
      if (r && r.done) return;
    }
    if (!done && typeof iterator.return === 'function') await iterator.return();
  }
  async function pump() {
    for (;;) {
      try {
        const r = isAsync ? await iterator.next() : iterator.next();
        const { value, done: d } = r;
        if (d) {
          done = true;
          readable.push(null);
          return;
        }
        const v = value && typeof value.then === 'function' ? await value : value;
        if (v === null) {
          reading = false;
          throw errNullValues();
        }
        if (readable.push(v)) continue;
        reading = false;
      } catch (err) {
        readable.destroy(err);
      }
      break;
    }
  }
  return readable;
}

Readable.fromWeb = function (webStream, options) {
  const reader = webStream.getReader();
  let closed = false;
  const readable = new Readable({
    objectMode: true,
    highWaterMark: 1,
    ...options,
    read() {
      reader.read().then(
        ({ value, done }) => {
          if (done) {
            closed = true;
            this.push(null);
          } else {
            this.push(value);
          }
        },
        (err) => this.destroy(err),
      );
    },
    destroy(err, cb) {
      if (closed) return cb(err);
      reader.cancel(err).then(() => cb(err), (e) => cb(e || err));
    },
  });
  return readable;
};

Readable.toWeb = function (readable) {
  let closed = false;
  return new ReadableStream({
    start(controller) {
      readable.on('data', (chunk) => {
        controller.enqueue(typeof chunk === 'string' ? new TextEncoder().encode(chunk) : chunk instanceof Uint8Array ? new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength) : chunk);
        if (controller.desiredSize <= 0) readable.pause();
      });
      finished(readable, (err) => {
        if (closed) return;
        closed = true;
        if (err && err.code !== 'ERR_STREAM_PREMATURE_CLOSE') controller.error(err);
        else if (err) controller.error(abortError());
        else controller.close();
      });
    },
    pull() {
      readable.resume();
    },
    cancel(reason) {
      closed = true;
      readable.destroy(reason);
    },
  });
};

Readable.isDisturbed = function (stream) {
  const s = stream && stream._readableState;
  if (s) return !!(s.dataEmitted || s.destroyed || s.errored);
  return !!(stream && (stream.locked || stream.bodyUsed));
};
Readable.ReadableState = ReadableState;

// ---- Writable ----

function WritableState(options, stream, isDuplex) {
  const o = options || {};
  this.objectMode = !!(o.objectMode || (isDuplex && o.writableObjectMode));
  this.highWaterMark = hwmFrom(o, isDuplex ? 'writableHighWaterMark' : 'highWaterMark', this.objectMode);
  this.finalCalled = false;
  this.needDrain = false;
  this.ending = false;
  this.ended = false;
  this.finished = false;
  this.destroyed = false;
  this.decodeStrings = o.decodeStrings !== false;
  this.defaultEncoding = o.defaultEncoding || 'utf8';
  this.length = 0;
  this.writing = false;
  this.corked = 0;
  this.sync = true;
  this.bufferProcessing = false;
  this.writecb = null;
  this.writelen = 0;
  this.buffered = [];
  this.pendingcb = 0;
  this.constructed = true;
  this.prefinished = false;
  this.errorEmitted = false;
  this.emitClose = o.emitClose !== false;
  this.autoDestroy = o.autoDestroy !== false;
  this.errored = null;
  this.closed = false;
  this.closeEmitted = false;
  this.afterWriteTickScheduled = false;
  this.afterWriteCount = 0;
  this.finishCallbacks = [];
}
WritableState.prototype.getBuffer = function () {
  return this.buffered.map((b) => ({ chunk: b.chunk, encoding: b.encoding, callback: b.callback }));
};

export function Writable(options) {
  const isDuplex = this instanceof Duplex;
  if (!isDuplex && !(this instanceof Writable)) return new Writable(options);
  this._writableState = new WritableState(options, this, isDuplex);
  if (options) {
    if (typeof options.write === 'function') this._write = options.write;
    if (typeof options.writev === 'function') this._writev = options.writev;
    if (typeof options.destroy === 'function') this._destroy = options.destroy;
    if (typeof options.final === 'function') this._final = options.final;
    if (typeof options.construct === 'function') this._construct = options.construct;
    if (options.signal && !isDuplex) addAbortSignal(options.signal, this);
  }
  if (!isDuplex) {
    Stream.call(this, options);
    construct(this, this._writableState);
  }
}
Object.setPrototypeOf(Writable.prototype, Stream.prototype);
Object.setPrototypeOf(Writable, Stream);

Object.defineProperty(Writable, Symbol.hasInstance, {
  value(object) {
    if (Function.prototype[Symbol.hasInstance].call(this, object)) return true;
    if (this !== Writable) return false;
    return !!(object && object._writableState instanceof WritableState);
  },
});

Writable.prototype.destroy = function (err, cb) {
  const state = this._writableState;
  if (!state.destroyed && (state.buffered.length || state.writecb)) {
    const error = errDestroyed('write');
    const pending = state.buffered.splice(0);
    nextTick(() => {
      for (const b of pending) b.callback(error);
    });
    state.length = 0;
  }
  return destroyImpl.call(this, err, cb);
};
Writable.prototype._undestroy = Readable.prototype._undestroy;
Writable.prototype._destroy = function (err, cb) {
  cb(err);
};
Writable.prototype[EventEmitter.captureRejectionSymbol] = function (err) {
  this.destroy(err);
};
Writable.prototype.pipe = function () {
  errorOrDestroy(this, codeError(Error, 'ERR_STREAM_CANNOT_PIPE', 'Cannot pipe, not readable'));
};

Writable.prototype.write = function (chunk, encoding, cb) {
  const state = this._writableState;
  if (typeof encoding === 'function') {
    cb = encoding;
    encoding = state.defaultEncoding;
  } else {
    if (!encoding) encoding = state.defaultEncoding;
    else if (encoding !== 'buffer' && !Buffer.isEncoding(encoding)) throw codeError(TypeError, 'ERR_UNKNOWN_ENCODING', 'Unknown encoding: ' + encoding);
    if (typeof cb !== 'function') cb = undefined;
  }
  if (chunk === null) throw errNullValues();
  if (!state.objectMode) {
    if (typeof chunk === 'string') {
      if (state.decodeStrings !== false) {
        chunk = Buffer.from(chunk, encoding);
        encoding = 'buffer';
      }
    } else if (chunk instanceof Uint8Array) {
      chunk = toBuffer(chunk);
      encoding = 'buffer';
    } else {
      throw errChunkType(chunk);
    }
  }
  let err;
  if (state.ending) err = errWriteAfterEnd();
  else if (state.destroyed) err = errDestroyed('write');
  if (err) {
    if (cb) nextTick(cb, err);
    errorOrDestroy(this, err, true);
    return err;
  }
  state.pendingcb++;
  const len = state.objectMode ? 1 : chunk.length;
  state.length += len;
  const ret = state.length < state.highWaterMark;
  if (!ret) state.needDrain = true;
  const callback = cb || (() => {});
  if (state.writing || state.corked || state.errored || !state.constructed) {
    state.buffered.push({ chunk, encoding, callback });
  } else {
    state.writelen = len;
    state.writecb = callback;
    state.writing = true;
    state.sync = true;
    this._write(chunk, encoding, (er) => onwrite(this, er));
    state.sync = false;
  }
  return ret && !state.errored && !state.destroyed;
};

function onwrite(stream, er) {
  const state = stream._writableState;
  const sync = state.sync;
  const cb = state.writecb;
  if (typeof cb !== 'function') {
    errorOrDestroy(stream, codeError(Error, 'ERR_MULTIPLE_CALLBACK', 'Callback called multiple times'));
    return;
  }
  state.writing = false;
  state.writecb = null;
  state.length -= state.writelen;
  state.writelen = 0;
  if (er) {
    if (!state.errored) state.errored = er;
    if (stream._readableState && !stream._readableState.errored) stream._readableState.errored = er;
    if (sync) nextTick(onwriteError, stream, state, er, cb);
    else onwriteError(stream, state, er, cb);
    return;
  }
  if (state.buffered.length) clearBuffer(stream, state);
  if (sync) {
    if (state.afterWriteTickScheduled && state.afterWriteCb === cb) {
      state.afterWriteCount++;
    } else {
      state.afterWriteTickScheduled = true;
      state.afterWriteCb = cb;
      state.afterWriteCount = 1;
      nextTick(() => {
        state.afterWriteTickScheduled = false;
        const n = state.afterWriteCount;
        state.afterWriteCb = null;
        afterWrite(stream, state, n, cb);
      });
    }
  } else {
    afterWrite(stream, state, 1, cb);
  }
}

function onwriteError(stream, state, er, cb) {
  --state.pendingcb;
  cb(er);
  errorBuffer(state);
  errorOrDestroy(stream, er);
}

function errorBuffer(state) {
  if (state.writing) return;
  const pending = state.buffered.splice(0);
  for (const b of pending) {
    state.length -= state.objectMode ? 1 : b.chunk.length;
    state.pendingcb--;
    b.callback(state.errored || errDestroyed('write'));
  }
}

function afterWrite(stream, state, count, cb) {
  const needDrain = !state.ending && !stream.destroyed && state.length === 0 && state.needDrain;
  if (needDrain) {
    state.needDrain = false;
    stream.emit('drain');
  }
  while (count-- > 0) {
    state.pendingcb--;
    cb(null);
  }
  if (state.destroyed) errorBuffer(state);
  finishMaybe(stream, state);
}

function clearBuffer(stream, state) {
  if (state.corked || state.bufferProcessing || state.destroyed || !state.constructed) return;
  const buffered = state.buffered;
  if (!buffered.length) return;
  state.bufferProcessing = true;
  if (buffered.length > 1 && stream._writev) {
    const chunks = buffered.splice(0);
    state.pendingcb -= chunks.length - 1;
    const callback = (err) => {
      for (const c of chunks) c.callback(err);
    };
    const len = state.objectMode ? chunks.length : chunks.reduce((n, c) => n + c.chunk.length, 0);
    state.writelen = len;
    state.writecb = callback;
    state.writing = true;
    state.sync = true;
    stream._writev(chunks.map((c) => ({ chunk: c.chunk, encoding: c.encoding })), (er) => onwrite(stream, er));
    state.sync = false;
  } else {
    while (buffered.length && !state.writing) {
      const { chunk, encoding, callback } = buffered.shift();
      state.writelen = state.objectMode ? 1 : chunk.length;
      state.writecb = callback;
      state.writing = true;
      state.sync = true;
      stream._write(chunk, encoding, (er) => onwrite(stream, er));
      state.sync = false;
    }
  }
  state.bufferProcessing = false;
}

Writable.prototype._write = function (chunk, encoding, cb) {
  if (this._writev) this._writev([{ chunk, encoding }], cb);
  else throw errNotImplemented('_write()');
};
Writable.prototype._writev = null;

Writable.prototype.cork = function () {
  this._writableState.corked++;
};
Writable.prototype.uncork = function () {
  const state = this._writableState;
  if (state.corked) {
    state.corked--;
    if (!state.writing) clearBuffer(this, state);
  }
};
Writable.prototype.setDefaultEncoding = function (encoding) {
  if (typeof encoding === 'string') encoding = encoding.toLowerCase();
  if (!Buffer.isEncoding(encoding)) throw codeError(TypeError, 'ERR_UNKNOWN_ENCODING', 'Unknown encoding: ' + encoding);
  this._writableState.defaultEncoding = encoding;
  return this;
};

Writable.prototype.end = function (chunk, encoding, cb) {
  const state = this._writableState;
  if (typeof chunk === 'function') {
    cb = chunk;
    chunk = null;
    encoding = null;
  } else if (typeof encoding === 'function') {
    cb = encoding;
    encoding = null;
  }
  let err;
  if (chunk !== null && chunk !== undefined) {
    const ret = this.write(chunk, encoding);
    if (ret instanceof Error) err = ret;
  }
  if (state.corked) {
    state.corked = 1;
    this.uncork();
  }
  if (err) {
    // The write's error is reported through the callback below.
  } else if (!state.errored && !state.ending) {
    state.ending = true;
    finishMaybe(this, state, true);
    state.ended = true;
  } else if (state.finished) {
    err = errAlreadyFinished('end');
  } else if (state.destroyed) {
    err = errDestroyed('end');
  }
  if (typeof cb === 'function') {
    if (err || state.finished) nextTick(cb, err);
    else state.finishCallbacks.push(cb);
  }
  return this;
};

function needFinish(state) {
  return state.ending && !state.destroyed && state.constructed && state.length === 0 && !state.errored && state.buffered.length === 0 && !state.finished && !state.writing && !state.errorEmitted && !state.closeEmitted;
}

function prefinish(stream, state) {
  if (!state.prefinished && !state.finalCalled) {
    if (typeof stream._final === 'function' && !state.destroyed) {
      state.finalCalled = true;
      state.sync = true;
      state.pendingcb++;
      let called = false;
      const onFinal = (err) => {
        if (called) {
          errorOrDestroy(stream, codeError(Error, 'ERR_MULTIPLE_CALLBACK', 'Callback called multiple times'));
          return;
        }
        called = true;
        state.pendingcb--;
        if (err) {
          for (const cb of state.finishCallbacks.splice(0)) cb(err);
          errorOrDestroy(stream, err, state.sync);
        } else if (needFinish(state)) {
          state.prefinished = true;
          stream.emit('prefinish');
          state.pendingcb++;
          nextTick(finish, stream, state);
        }
      };
      try {
        const r = stream._final(onFinal);
        if (r && typeof r.then === 'function') r.then(() => onFinal(), onFinal);
      } catch (err) {
        onFinal(err);
      }
      state.sync = false;
    } else {
      state.finalCalled = true;
      state.prefinished = true;
      stream.emit('prefinish');
    }
  }
}

function finishMaybe(stream, state, sync) {
  if (needFinish(state)) {
    prefinish(stream, state);
    if (state.pendingcb === 0 && state.prefinished) {
      state.pendingcb++;
      if (sync) nextTick(() => (needFinish(state) ? finish(stream, state) : state.pendingcb--));
      else if (needFinish(state)) finish(stream, state);
      else state.pendingcb--;
    }
  }
}

function finish(stream, state) {
  state.pendingcb--;
  state.finished = true;
  for (const cb of state.finishCallbacks.splice(0)) cb(null);
  stream.emit('finish');
  if (state.autoDestroy) {
    const r = stream._readableState;
    if (!r || (r.autoDestroy && (r.endEmitted || r.readable === false))) stream.destroy();
  }
}

defineState(Writable.prototype, '_writableState', {
  writableFinished: (s) => s.finished,
  writableObjectMode: (s) => s.objectMode,
  writableBuffer: (s) => s.getBuffer(),
  writableEnded: (s) => s.ending,
  writableNeedDrain: (s) => !s.destroyed && !s.ending && s.needDrain,
  writableHighWaterMark: (s) => s.highWaterMark,
  writableCorked: (s) => s.corked,
  writableLength: (s) => s.length,
  writableAborted: (s) => s.writable !== false && (s.destroyed || s.errored) && !s.finished,
  closed: (s) => s.closed,
  errored: (s) => s.errored,
});
Object.defineProperty(Writable.prototype, 'writable', {
  get() {
    const w = this._writableState;
    return !!w && w.writable !== false && !w.destroyed && !w.errored && !w.ending && !w.ended;
  },
  set(v) {
    if (this._writableState) this._writableState.writable = !!v;
  },
  configurable: true,
});
Object.defineProperty(Writable.prototype, 'destroyed', {
  get() {
    return this._writableState ? this._writableState.destroyed : false;
  },
  set(v) {
    if (this._writableState) this._writableState.destroyed = v;
  },
  configurable: true,
});

Writable.fromWeb = function (webStream, options) {
  const writer = webStream.getWriter();
  let closed = false;
  return new Writable({
    objectMode: true,
    decodeStrings: false,
    ...options,
    write(chunk, _enc, cb) {
      writer.ready.then(() => writer.write(chunk)).then(() => cb(), cb);
    },
    final(cb) {
      closed = true;
      writer.close().then(() => cb(), cb);
    },
    destroy(err, cb) {
      if (closed) return cb(err);
      closed = true;
      writer.abort(err).then(() => cb(err), () => cb(err));
    },
  });
};
Writable.toWeb = function (writable) {
  return new WritableStream({
    write(chunk) {
      return new Promise((resolve, reject) => {
        if (writable.write(chunk, (err) => (err ? reject(err) : undefined))) resolve();
        else writable.once('drain', resolve);
      });
    },
    close() {
      return new Promise((resolve, reject) => {
        writable.end();
        finished(writable, (err) => (err ? reject(err) : resolve()));
      });
    },
    abort(reason) {
      writable.destroy(reason);
    },
  });
};
Writable.WritableState = WritableState;

// ---- Duplex, Transform, PassThrough ----

export function Duplex(options) {
  if (!(this instanceof Duplex)) return new Duplex(options);
  Readable.call(this, options);
  Writable.call(this, options);
  if (options) {
    this.allowHalfOpen = options.allowHalfOpen !== false;
    if (options.readable === false) {
      this._readableState.readable = false;
      this._readableState.ended = true;
      this._readableState.endEmitted = true;
    }
    if (options.writable === false) {
      this._writableState.writable = false;
      this._writableState.ending = true;
      this._writableState.ended = true;
      this._writableState.finished = true;
    }
    if (options.signal) addAbortSignal(options.signal, this);
  } else {
    this.allowHalfOpen = true;
  }
  construct(this, this._readableState);
}
Object.setPrototypeOf(Duplex.prototype, Readable.prototype);
Object.setPrototypeOf(Duplex, Readable);
for (const key of Object.getOwnPropertyNames(Writable.prototype)) {
  if (key === 'constructor' || key === 'destroyed' || key === 'closed' || key === 'errored') continue;
  if (!(key in Duplex.prototype)) {
    Object.defineProperty(Duplex.prototype, key, Object.getOwnPropertyDescriptor(Writable.prototype, key));
  }
}
Duplex.prototype.destroy = Writable.prototype.destroy;
Object.defineProperty(Duplex.prototype, 'destroyed', {
  get() {
    return this._readableState.destroyed && this._writableState.destroyed;
  },
  set(v) {
    this._readableState.destroyed = v;
    this._writableState.destroyed = v;
  },
  configurable: true,
});
Duplex.prototype._final = undefined;
Duplex.prototype.on = Readable.prototype.on;
// With allowHalfOpen false, the writable side ends when the readable does.
const origDuplexEmit = Stream.prototype.emit;
Duplex.prototype.emit = function (ev, ...args) {
  if (ev === 'end' && this.allowHalfOpen === false && this._writableState && !this._writableState.ending) {
    const r = origDuplexEmit.call(this, ev, ...args);
    nextTick(() => this.end());
    return r;
  }
  return origDuplexEmit.call(this, ev, ...args);
};
Duplex.from = function (body) {
  if (body instanceof Duplex) return body;
  if (body instanceof Readable) return body;
  if (body && (body[Symbol.asyncIterator] || body[Symbol.iterator]) && typeof body !== 'function') {
    return from(Duplex, body, { objectMode: true, writable: false });
  }
  if (body && typeof body === 'object' && (body.readable || body.writable)) {
    const r = body.readable && (body.readable instanceof Readable ? body.readable : Readable.fromWeb(body.readable));
    const w = body.writable && (body.writable instanceof Writable ? body.writable : Writable.fromWeb(body.writable));
    const d = new Duplex({
      objectMode: true,
      read() {
        if (r) r.resume();
      },
      write(chunk, enc, cb) {
        if (w.write(chunk, enc)) cb();
        else w.once('drain', () => cb());
      },
      final(cb) {
        w.end();
        finished(w, cb);
      },
    });
    if (r) {
      r.on('data', (chunk) => {
        if (!d.push(chunk)) r.pause();
      });
      r.on('end', () => d.push(null));
      r.on('error', (e) => d.destroy(e));
    }
    return d;
  }
  throw codeError(TypeError, 'ERR_INVALID_ARG_TYPE', 'The "body" argument must be a stream, iterable or { readable, writable } pair');
};

const kCallback = Symbol('kCallback');

export function Transform(options) {
  if (!(this instanceof Transform)) return new Transform(options);
  const readableHwm = options ? hwmFrom(options, 'readableHighWaterMark', !!(options.objectMode || options.readableObjectMode)) : null;
  Duplex.call(this, options && readableHwm === 0 ? { ...options, highWaterMark: null, readableHighWaterMark: readableHwm, writableHighWaterMark: options.writableHighWaterMark || 0 } : options);
  this._readableState.sync = false;
  this[kCallback] = null;
  if (options) {
    if (typeof options.transform === 'function') this._transform = options.transform;
    if (typeof options.flush === 'function') this._flush = options.flush;
  }
}
Object.setPrototypeOf(Transform.prototype, Duplex.prototype);
Object.setPrototypeOf(Transform, Duplex);

Transform.prototype._final = function (cb) {
  if (typeof this._flush === 'function' && !this.destroyed) {
    this._flush((er, data) => {
      if (er) {
        if (cb) cb(er);
        else this.destroy(er);
        return;
      }
      if (data != null) this.push(data);
      this.push(null);
      if (cb) cb();
    });
  } else {
    this.push(null);
    if (cb) cb();
  }
};

Transform.prototype._transform = function () {
  throw errNotImplemented('_transform()');
};

Transform.prototype._write = function (chunk, encoding, callback) {
  const rState = this._readableState;
  const wState = this._writableState;
  const length = rState.length;
  this._transform(chunk, encoding, (err, val) => {
    if (err) {
      callback(err);
      return;
    }
    if (val != null) this.push(val);
    if (rState.ended) {
      nextTick(callback);
    } else if (wState.ended || length === rState.length || rState.length < rState.highWaterMark) {
      callback();
    } else {
      this[kCallback] = callback;
    }
  });
};

Transform.prototype._read = function () {
  if (this[kCallback]) {
    const cb = this[kCallback];
    this[kCallback] = null;
    cb();
  }
};

export function PassThrough(options) {
  if (!(this instanceof PassThrough)) return new PassThrough(options);
  Transform.call(this, options);
}
Object.setPrototypeOf(PassThrough.prototype, Transform.prototype);
Object.setPrototypeOf(PassThrough, Transform);
PassThrough.prototype._transform = function (chunk, _enc, cb) {
  cb(null, chunk);
};

// ---- finished, pipeline, addAbortSignal ----

function isReadableNodeStream(s) {
  return !!(s && typeof s.pipe === 'function' && typeof s.on === 'function' && (!s._writableState || (s._readableState && s._readableState.readable !== false)) && (!s._writableState || s._readableState));
}
function isWritableNodeStream(s) {
  return !!(s && typeof s.write === 'function' && typeof s.on === 'function' && (!s._readableState || (s._writableState && s._writableState.writable !== false)));
}
function isNodeStream(s) {
  return !!(s && (s._readableState || s._writableState || (typeof s.write === 'function' && typeof s.on === 'function') || (typeof s.pipe === 'function' && typeof s.on === 'function')));
}
export function isReadable(s) {
  if (!isNodeStream(s)) return null;
  const r = s._readableState;
  return !!(r && !r.destroyed && !r.errored && !r.endEmitted && r.readable !== false);
}
export function isWritable(s) {
  if (!isNodeStream(s)) return null;
  const w = s._writableState;
  return !!(w && !w.destroyed && !w.errored && !w.ending && w.writable !== false);
}
export function isErrored(s) {
  return !!(s && ((s._readableState && s._readableState.errored) || (s._writableState && s._writableState.errored)));
}
export function isDestroyed(s) {
  return !!(s && s.destroyed);
}
export const isDisturbed = Readable.isDisturbed;

export function finished(stream, options, callback) {
  if (typeof options === 'function') {
    callback = options;
    options = {};
  } else if (!options) {
    options = {};
  }
  if (typeof callback !== 'function') throw codeError(TypeError, 'ERR_INVALID_ARG_TYPE', 'The "callback" argument must be of type function.' + received(callback));
  let called = false;
  const done = (err) => {
    if (called) return;
    called = true;
    cleanup();
    callback.call(stream, err);
  };
  const r = stream._readableState;
  const w = stream._writableState;
  const readable = options.readable ?? isReadableNodeStream(stream);
  const writable = options.writable ?? isWritableNodeStream(stream);
  let readableFinished = !!(r && r.endEmitted);
  let writableFinished = !!(w && w.finished);
  const onfinish = () => {
    writableFinished = true;
    if (!readable || readableFinished || (r && r.readable === false) || !r) done();
  };
  const onend = () => {
    readableFinished = true;
    if (!writable || writableFinished || (w && w.writable === false) || !w) done();
  };
  const onerror = (err) => done(err);
  const onclose = () => {
    if (readable && !readableFinished && r && r.readable !== false && !r.endEmitted) return done(errPrematureClose());
    if (writable && !writableFinished && w && w.writable !== false && !w.finished) return done(errPrematureClose());
    done();
  };
  stream.on('end', onend);
  stream.on('finish', onfinish);
  if (options.error !== false) stream.on('error', onerror);
  stream.on('close', onclose);
  function cleanup() {
    stream.removeListener('end', onend);
    stream.removeListener('finish', onfinish);
    stream.removeListener('error', onerror);
    stream.removeListener('close', onclose);
    if (signalCleanup) signalCleanup();
  }
  let signalCleanup;
  if (options.signal) {
    const onabort = () => done(abortError(options.signal.reason));
    if (options.signal.aborted) nextTick(onabort);
    else {
      options.signal.addEventListener('abort', onabort, { once: true });
      signalCleanup = () => options.signal.removeEventListener('abort', onabort);
    }
  }
  // Already settled: report on the next tick, as Node does.
  const errored = (r && r.errored) || (w && w.errored);
  const closed = (r && r.closeEmitted) || (w && w.closeEmitted);
  if (errored && ((r && r.errorEmitted) || (w && w.errorEmitted))) {
    nextTick(() => done(errored));
  } else if ((!readable || readableFinished) && (!writable || writableFinished) && (r || w)) {
    nextTick(() => done());
  } else if (closed) {
    nextTick(onclose);
  }
  return cleanup;
}
export { finished as eos };

function destroyer(stream, err) {
  if (!stream || stream.destroyed) return;
  if (typeof stream.destroy === 'function') stream.destroy(err);
  else if (typeof stream.close === 'function') stream.close();
}

export function pipeline(...streams) {
  const callback = streams.pop();
  if (Array.isArray(streams[0]) && streams.length === 1) streams = streams[0];
  if (typeof callback !== 'function') throw codeError(TypeError, 'ERR_INVALID_ARG_TYPE', 'The "streams" argument must be specified with a callback last');
  return pipelineImpl(streams, callback, {});
}

function pipelineImpl(streams, callback, opts) {
  if (streams.length < 2) throw codeError(TypeError, 'ERR_MISSING_ARGS', 'The "streams" argument must be specified');
  const destroys = [];
  let error;
  let finishCount = 0;
  let settled = false;
  let lastValue;
  const finishOne = (err, final) => {
    if (err && (!error || error.code === 'ERR_STREAM_PREMATURE_CLOSE')) error = err;
    if (!error && !final) return;
    while (destroys.length) destroys.shift()(error);
    if (final && !settled) {
      settled = true;
      nextTick(() => callback(error, lastValue));
    }
  };
  const onSignal = opts.signal ? () => finishOne(abortError(opts.signal.reason), true) : null;
  if (onSignal) {
    if (opts.signal.aborted) nextTick(onSignal);
    else opts.signal.addEventListener('abort', onSignal, { once: true });
  }
  let ret;
  for (let i = 0; i < streams.length; i++) {
    let stream = streams[i];
    const reading = i < streams.length - 1;
    const writing = i > 0;
    const end = reading || opts.end !== false;
    const isLast = i === streams.length - 1;
    if (isNodeStream(stream)) {
      if (end) {
        finishCount++;
        const s = stream;
        const cleanup = finished(s, { readable: reading, writable: writing }, (err) => {
          if (!err && !reading && !writing) return finishOne(null, --finishCount === 0);
          if (err && err.code === 'ERR_STREAM_PREMATURE_CLOSE' && reading && s._readableState && s._readableState.ended && !s._readableState.errored) {
            err = null;
          }
          finishOne(err, --finishCount === 0);
        });
        destroys.push((err) => {
          if (err) destroyer(s, err);
          else cleanup();
        });
      }
    }
    if (i === 0) {
      if (typeof stream === 'function') {
        ret = stream({ signal: opts.signal });
        if (!ret || !(ret[Symbol.asyncIterator] || ret[Symbol.iterator])) throw codeError(TypeError, 'ERR_INVALID_RETURN_VALUE', 'Expected an iterable from the first pipeline function');
      } else if (isNodeStream(stream) || (stream && (stream[Symbol.asyncIterator] || stream[Symbol.iterator]))) {
        ret = stream;
      } else if (stream && typeof stream.getReader === 'function') {
        ret = Readable.fromWeb(stream);
      } else {
        throw codeError(TypeError, 'ERR_INVALID_ARG_TYPE', 'The "source" argument must be a stream or iterable');
      }
    } else if (typeof stream === 'function') {
      const src = isNodeStream(ret) ? ret : Readable.from(ret);
      ret = stream(src, { signal: opts.signal });
      if (reading) {
        if (!ret || !(ret[Symbol.asyncIterator] || ret[Symbol.iterator])) throw codeError(TypeError, 'ERR_INVALID_RETURN_VALUE', 'Expected an iterable from a pipeline function');
      } else {
        finishCount++;
        Promise.resolve(ret).then(
          (val) => {
            lastValue = val;
            finishOne(null, --finishCount === 0);
          },
          (err) => finishOne(err, --finishCount === 0),
        );
      }
    } else if (isNodeStream(stream)) {
      if (isNodeStream(ret)) {
        ret.pipe(stream, { end });
        if (!isLast || end) {
          const src = ret;
          src.on('error', (e) => finishOne(e, false));
        }
      } else {
        const src = Readable.from(ret);
        src.pipe(stream, { end });
        src.on('error', (e) => finishOne(e, false));
      }
      ret = stream;
    } else if (stream && typeof stream.getWriter === 'function') {
      const w = Writable.fromWeb(stream);
      finishCount++;
      finished(w, { readable: false }, (err) => finishOne(err, --finishCount === 0));
      (isNodeStream(ret) ? ret : Readable.from(ret)).pipe(w);
      ret = w;
    } else {
      throw codeError(TypeError, 'ERR_INVALID_ARG_TYPE', 'The "destination" argument must be a stream or function');
    }
  }
  return ret;
}

export function addAbortSignal(signal, stream) {
  if (!signal || typeof signal.aborted !== 'boolean') throw codeError(TypeError, 'ERR_INVALID_ARG_TYPE', 'The "signal" argument must be an instance of AbortSignal');
  const onAbort = () => stream.destroy(abortError(signal.reason));
  if (signal.aborted) onAbort();
  else {
    signal.addEventListener('abort', onAbort, { once: true });
    finished(stream, () => signal.removeEventListener('abort', onAbort));
  }
  return stream;
}

export const promises = {
  pipeline(...streams) {
    let opts = {};
    const last = streams[streams.length - 1];
    if (last && typeof last === 'object' && !isNodeStream(last) && !last[Symbol.asyncIterator] && !last[Symbol.iterator] && typeof last.getReader !== 'function' && typeof last.getWriter !== 'function') {
      opts = streams.pop();
    }
    if (Array.isArray(streams[0]) && streams.length === 1) streams = streams[0];
    return new Promise((resolve, reject) => {
      pipelineImpl(streams, (err, value) => (err ? reject(err) : resolve(value)), opts);
    });
  },
  finished(stream, opts) {
    return new Promise((resolve, reject) => {
      finished(stream, opts, (err) => (err ? reject(err) : resolve()));
    });
  },
};

Object.defineProperty(pipeline, Symbol.for('nodejs.util.promisify.custom'), { value: promises.pipeline });
Object.defineProperty(finished, Symbol.for('nodejs.util.promisify.custom'), { value: promises.finished });

export function duplexPair(options) {
  const a = new Duplex({ ...options, read() {}, write(chunk, enc, cb) {
    b.push(chunk, enc);
    cb();
  }, final(cb) {
    b.push(null);
    cb();
  } });
  const b = new Duplex({ ...options, read() {}, write(chunk, enc, cb) {
    a.push(chunk, enc);
    cb();
  }, final(cb) {
    a.push(null);
    cb();
  } });
  return [a, b];
}

Object.assign(Stream, {
  Stream, Readable, Writable, Duplex, Transform, PassThrough, pipeline, finished, eos: finished, addAbortSignal,
  promises, isReadable, isWritable, isErrored, isDisturbed, isDestroyed, getDefaultHighWaterMark,
  setDefaultHighWaterMark, duplexPair, destroy: destroyer,
});
Object.defineProperty(Stream, 'promises', { value: promises, enumerable: true, configurable: true });

export { destroyer as destroy };
export default Stream;
export { Stream as 'module.exports' };
