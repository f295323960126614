import stream, { Readable, Writable, Duplex, Transform, PassThrough, pipeline, finished } from 'node:stream';
import { pipeline as pipelineP, finished as finishedP } from 'node:stream/promises';
import * as web from 'node:stream/web';
import { EventEmitter } from 'node:events';
import { promisify, inherits } from 'node:util';

const tick = () => new Promise((r) => setTimeout(r, 0));

function collector(opts) {
  const chunks = [];
  const w = new Writable({
    ...opts,
    write(chunk, enc, cb) {
      chunks.push(opts && opts.objectMode ? chunk : chunk.toString());
      cb();
    },
  });
  w.chunks = chunks;
  return w;
}

async function run() {
  // The module's shape: require('stream') is the Stream constructor.
  eq('default export is Stream', [typeof stream, stream.Readable === Readable, stream.Stream === stream, new Readable() instanceof EventEmitter], ['function', true, true, true]);
  eq('stream.promises', stream.promises.pipeline === pipelineP, true);
  eq('stream/web', [web.ReadableStream === ReadableStream, web.TransformStream === TransformStream], [true, true]);

  // Flowing mode: 'data' then 'end' then 'close', in order, with Buffers.
  {
    const events = [];
    const r = new Readable({ read() {} });
    r.on('data', (c) => events.push(['data', Buffer.isBuffer(c), c.toString()]));
    r.on('end', () => events.push(['end']));
    r.on('close', () => events.push(['close']));
    r.push('ab');
    r.push(Buffer.from('cd'));
    r.push(null);
    await tick();
    eq('flowing order', events, [['data', true, 'ab'], ['data', true, 'cd'], ['end'], ['close']]);
    eq('ended state', [r.readableEnded, r.destroyed, r.readable], [true, true, false]);
  }

  // _read is called for more until push(null); push returns false past the mark.
  {
    let n = 0;
    const r = new Readable({
      objectMode: true,
      highWaterMark: 4,
      read() {
        n++;
        this.push(n <= 3 ? 'x' + n : null);
      },
    });
    const got = [];
    for await (const c of r) got.push(c);
    eq('async iteration pulls via _read', got, ['x1', 'x2', 'x3']);
    const r2 = new Readable({ highWaterMark: 2, read() {} });
    eq('push returns false at the highWaterMark', [r2.push('a'), r2.push('b'), r2.readableLength], [true, false, 2]);
  }

  // Paused mode with read(n) and 'readable'.
  {
    const r = new Readable({ read() {} });
    r.push('hello ');
    r.push('world');
    r.push(null);
    const parts = [];
    await new Promise((resolve) => {
      r.on('readable', () => {
        let c;
        while ((c = r.read(3)) !== null) parts.push(c.toString());
      });
      r.on('end', resolve);
    });
    eq('read(n) in paused mode', parts, ['hel', 'lo ', 'wor', 'ld']);
  }

  // setEncoding decodes split multi-byte characters.
  {
    const r = new Readable({ read() {} });
    r.setEncoding('utf8');
    const euro = Buffer.from('€');
    const out = [];
    r.on('data', (s) => out.push(s));
    r.push(euro.subarray(0, 1));
    r.push(euro.subarray(1));
    r.push(null);
    await finishedP(r);
    eq('setEncoding joins split characters', [out.join(''), out.every((s) => typeof s === 'string')], ['€', true]);
  }

  // objectMode keeps values; a non-buffer chunk outside it is an error.
  {
    const r = new Readable({ objectMode: true, read() {} });
    r.push({ a: 1 });
    r.push(2);
    r.push(null);
    eq('objectMode toArray', await r.toArray(), [{ a: 1 }, 2]);
    const bad = new Readable({ read() {} });
    const err = await new Promise((resolve) => {
      bad.on('error', resolve);
      bad.push(42);
    });
    eq('non-buffer chunk', err.code, 'ERR_INVALID_ARG_TYPE');
  }

  // pause/resume and isPaused.
  {
    const r = new Readable({ read() {} });
    const got = [];
    r.on('data', (c) => got.push(c.toString()));
    r.pause();
    r.push('a');
    await tick();
    eq('paused holds data', [got, r.isPaused(), r.readableFlowing], [[], true, false]);
    r.resume();
    await tick();
    eq('resume delivers', got, ['a']);
  }

  // Readable.from over arrays, async generators and strings.
  eq('Readable.from array', await Readable.from([1, 2, 3]).toArray(), [1, 2, 3]);
  eq('Readable.from async generator', await Readable.from((async function* () {
    yield 'a';
    await tick();
    yield 'b';
  })()).toArray(), ['a', 'b']);
  eq('Readable.from string is one chunk', await Readable.from('whole').toArray(), ['whole']);
  eq('map/filter', await Readable.from([1, 2, 3, 4]).filter((x) => x % 2 === 0).map((x) => x * 10).toArray(), [20, 40]);

  // Writable: write/end callbacks, 'finish', write after end.
  {
    const w = collector();
    const order = [];
    w.write('a', () => order.push('cb a'));
    w.write(Buffer.from('b'));
    w.end('c', () => order.push('end cb'));
    w.on('finish', () => order.push('finish'));
    await finishedP(w);
    eq('writes in order', w.chunks, ['a', 'b', 'c']);
    eq('end callback then finish', order, ['cb a', 'end cb', 'finish']);
    eq('finished state', [w.writableFinished, w.writableEnded, w.writable], [true, true, false]);
    const errs = [];
    w.on('error', (e) => errs.push(e.code));
    const late = collector();
    late.end();
    const cbErr = await new Promise((resolve) => {
      late.on('error', () => {});
      late.write('x', resolve);
    });
    eq('write after end', cbErr.code, 'ERR_STREAM_WRITE_AFTER_END');
    throwsLike('writing null', () => collector().write(null), { code: 'ERR_STREAM_NULL_VALUES' });
  }

  // Backpressure: write() returns false at the mark and 'drain' follows.
  {
    const pending = [];
    const w = new Writable({
      highWaterMark: 3,
      write(chunk, enc, cb) {
        pending.push(cb);
      },
    });
    const r1 = w.write('ab');
    const r2 = w.write('cd');
    eq('write returns false past the mark', [r1, r2, w.writableLength, w.writableNeedDrain], [true, false, 4, true]);
    let drained = false;
    w.on('drain', () => (drained = true));
    pending.shift()();
    await tick();
    eq('no drain while buffered', drained, false);
    pending.shift()();
    await tick();
    eq('drain once emptied', drained, true);
  }

  // cork/uncork batches into _writev.
  {
    const batches = [];
    const w = new Writable({
      writev(chunks, cb) {
        batches.push(chunks.map((c) => c.chunk.toString()));
        cb();
      },
    });
    w.cork();
    w.write('1');
    w.write('2');
    w.write('3');
    eq('corked', w.writableCorked, 1);
    w.uncork();
    await tick();
    eq('writev gets the corked batch', batches, [['1', '2', '3']]);
  }

  // _final runs before 'finish'.
  {
    const order = [];
    const w = new Writable({
      write(c, e, cb) {
        order.push('write');
        cb();
      },
      final(cb) {
        order.push('final');
        setTimeout(cb, 0);
      },
    });
    w.on('finish', () => order.push('finish'));
    w.end('x');
    await finishedP(w);
    eq('final before finish', order, ['write', 'final', 'finish']);
  }

  // Errors from _write destroy the stream: 'error' then 'close'.
  {
    const events = [];
    const w = new Writable({
      write(c, e, cb) {
        cb(new Error('disk full'));
      },
    });
    w.on('error', (e) => events.push('error ' + e.message));
    w.on('close', () => events.push('close'));
    w.write('x', (err) => events.push('cb ' + (err && err.message)));
    await tick();
    eq('write error order', events, ['cb disk full', 'error disk full', 'close']);
    eq('errored', [w.destroyed, w.errored && w.errored.message], [true, 'disk full']);
  }

  // destroy(err) on a Readable: 'error' then 'close'; async iteration throws it.
  {
    const r = new Readable({ read() {} });
    const events = [];
    r.on('error', (e) => events.push(e.message));
    r.on('close', () => events.push('close'));
    r.destroy(new Error('boom'));
    await tick();
    eq('destroy emits error then close', events, ['boom', 'close']);
    const r2 = new Readable({ read() {} });
    setTimeout(() => r2.destroy(new Error('mid-iteration')), 0);
    let thrown;
    try {
      for await (const c of r2) void c;
    } catch (e) {
      thrown = e.message;
    }
    eq('iteration rethrows the error', thrown, 'mid-iteration');
  }

  // Transform and PassThrough, with flush.
  {
    const upper = new Transform({
      transform(chunk, enc, cb) {
        cb(null, chunk.toString().toUpperCase());
      },
      flush(cb) {
        this.push('!');
        cb();
      },
    });
    const out = collector();
    upper.pipe(out);
    upper.write('abc');
    upper.end('def');
    await finishedP(out);
    eq('transform + flush through pipe', out.chunks.join(''), 'ABCDEF!');
    const pt = new PassThrough();
    pt.end('same');
    eq('PassThrough', (await pt.toArray()).map(String), ['same']);
    const objects = new Transform({
      objectMode: true,
      transform(o, e, cb) {
        this.push(o.n);
        this.push(o.n * 2);
        cb();
      },
    });
    objects.end({ n: 3 });
    eq('objectMode transform pushes several', await objects.toArray(), [3, 6]);
  }

  // Duplex: independent sides; allowHalfOpen false ends the writable side.
  {
    const written = [];
    const d = new Duplex({
      read() {},
      write(c, e, cb) {
        written.push(c.toString());
        cb();
      },
    });
    d.write('in');
    d.push('out');
    d.push(null);
    eq('duplex read side', (await d.toArray()).map(String), ['out']);
    eq('duplex write side', written, ['in']);
    eq('duplex instanceof Writable', [d instanceof Writable, d instanceof Readable, new Readable() instanceof Writable], [true, true, false]);
    const half = new Duplex({ allowHalfOpen: false, read() {}, write(c, e, cb) { cb(); } });
    half.resume();
    half.push(null);
    await tick();
    await tick();
    eq('allowHalfOpen false ends writable', half.writableEnded, true);
  }

  // pipe() honours backpressure from a slow destination.
  {
    let produced = 0;
    const src = new Readable({
      highWaterMark: 2,
      read() {
        produced++;
        this.push(produced <= 20 ? 'x' : null);
      },
    });
    let inFlight = 0;
    let maxInFlight = 0;
    const slow = new Writable({
      highWaterMark: 2,
      write(c, e, cb) {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        setTimeout(() => {
          inFlight--;
          cb();
        }, 0);
      },
    });
    src.pipe(slow);
    await finishedP(slow);
    eq('pipe: everything written', produced, 21);
    eq('pipe: slow writer never sees more than one at once', maxInFlight, 1);
  }

  // pipeline: success, failure of any stage destroys all, generator stages.
  {
    const out = collector();
    const err = await new Promise((resolve) => pipeline(Readable.from(['a', 'b']), new PassThrough(), out, resolve));
    eq('pipeline success', [err, out.chunks.join('')], [undefined, 'ab']);
    const failing = new Transform({
      transform(c, e, cb) {
        cb(new Error('bad chunk'));
      },
    });
    const src = new Readable({ read() {} });
    src.push('x');
    const sink = collector();
    const perr = await new Promise((resolve) => pipeline(src, failing, sink, resolve));
    eq('pipeline error', [perr && perr.message, src.destroyed, sink.destroyed], ['bad chunk', true, true]);
    const chunks = [];
    await pipelineP(
      Readable.from([1, 2, 3]),
      async function* (source) {
        for await (const n of source) yield n + 1;
      },
      async function (source) {
        for await (const n of source) chunks.push(n);
      },
    );
    eq('pipeline with generator stages', chunks, [2, 3, 4]);
    eq('promisify(pipeline) is the promise form', promisify(pipeline) === pipelineP, true);
  }

  // finished: premature close.
  {
    const r = new Readable({ read() {} });
    const p = new Promise((resolve) => finished(r, resolve));
    r.destroy();
    eq('premature close', (await p).code, 'ERR_STREAM_PREMATURE_CLOSE');
    const done = collector();
    done.end();
    await finishedP(done);
    eq('finished on an already finished stream', await new Promise((resolve) => finished(done, (e) => resolve(e === undefined || e === null))), true);
  }

  // Web stream interop.
  {
    const ws = new ReadableStream({
      start(c) {
        c.enqueue(new TextEncoder().encode('we'));
        c.enqueue(new TextEncoder().encode('b'));
        c.close();
      },
    });
    const fromWeb = await Readable.fromWeb(ws).toArray();
    eq('Readable.fromWeb', fromWeb.map((u) => new TextDecoder().decode(u)).join(''), 'web');
    const toWeb = Readable.toWeb(Readable.from([Buffer.from('to'), Buffer.from('web')], { objectMode: false }));
    eq('Readable.toWeb', await new Response(toWeb).text(), 'toweb');
    const sink = [];
    const w = Writable.fromWeb(new WritableStream({ write(c) { sink.push(c); } }));
    w.write('p');
    w.end('q');
    await finishedP(w);
    eq('Writable.fromWeb', sink, ['p', 'q']);
  }

  // Old-style subclassing with util.inherits and Readable.call.
  {
    function Counter(opts) {
      Readable.call(this, opts);
      this.n = 0;
    }
    inherits(Counter, Readable);
    Counter.prototype._read = function () {
      this.n++;
      this.push(this.n > 2 ? null : String(this.n));
    };
    eq('util.inherits subclass', (await new Counter().toArray()).map(String), ['1', '2']);
    class Upper extends Transform {
      _transform(c, e, cb) {
        cb(null, c.toString().toUpperCase());
      }
    }
    const u = new Upper();
    u.end('cls');
    eq('class subclass', (await u.toArray()).map(String), ['CLS']);
  }

  // construct() runs before the first _read/_write.
  {
    const order = [];
    const w = new Writable({
      construct(cb) {
        setTimeout(() => {
          order.push('construct');
          cb();
        }, 0);
      },
      write(c, e, cb) {
        order.push('write');
        cb();
      },
    });
    w.end('x');
    await finishedP(w);
    eq('construct first', order, ['construct', 'write']);
  }

  // unshift and addAbortSignal.
  {
    const r = new Readable({ read() {} });
    r.push('world');
    r.unshift('hello ');
    r.push(null);
    eq('unshift puts data first', Buffer.concat(await r.toArray()).toString(), 'hello world');
    const ac = new AbortController();
    const r2 = stream.addAbortSignal(ac.signal, new Readable({ read() {} }));
    const e = new Promise((resolve) => r2.on('error', resolve));
    ac.abort();
    eq('abort signal destroys', (await e).name, 'AbortError');
  }

  const [a, b] = stream.duplexPair();
  a.end('ping');
  eq('duplexPair', (await b.toArray()).map(String), ['ping']);
}
