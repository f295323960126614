import EventEmitter, { once, on, errorMonitor, captureRejectionSymbol } from 'node:events';
import * as ns from 'node:events';

async function run() {
  eq('default export is the class', EventEmitter === ns.EventEmitter && EventEmitter.EventEmitter === EventEmitter, true);
  eq('EventEmitter.once is events.once', EventEmitter.once === once, true);

  const e = new EventEmitter();
  const calls = [];
  const a = (x) => calls.push('a' + x);
  const b = (x) => calls.push('b' + x);
  eq('on returns the emitter', e.on('ev', a), e);
  e.on('ev', b);
  eq('emit with listeners returns true', e.emit('ev', 1), true);
  eq('listeners run in order', calls, ['a1', 'b1']);
  eq('emit without listeners returns false', e.emit('none'), false);
  e.prependListener('ev', (x) => calls.push('p' + x));
  calls.length = 0;
  e.emit('ev', 2);
  eq('prependListener runs first', calls, ['p2', 'a2', 'b2']);
  eq('listenerCount', e.listenerCount('ev'), 3);
  eq('listenerCount of one listener', e.listenerCount('ev', a), 1);
  e.off('ev', a);
  eq('off removes one', e.listenerCount('ev'), 2);
  eq('listeners returns the functions', e.listeners('ev')[1] === b, true);
  e.removeAllListeners('ev');
  eq('removeAllListeners(type)', e.listenerCount('ev'), 0);

  // once: runs one time, and `listeners` shows the original function.
  let n = 0;
  const o = () => n++;
  e.once('o', o);
  eq('once listener visible', e.listeners('o')[0] === o, true);
  eq('rawListeners wraps it', e.rawListeners('o')[0] !== o && e.rawListeners('o')[0].listener === o, true);
  e.emit('o');
  e.emit('o');
  eq('once fires once', n, 1);
  e.once('o2', o);
  e.off('o2', o);
  eq('off removes a once listener by its original', e.listenerCount('o2'), 0);
  e.prependOnceListener('p', () => calls.push('po'));
  calls.length = 0;
  e.emit('p');
  e.emit('p');
  eq('prependOnceListener', calls, ['po']);

  // this and arguments
  let self = null;
  e.on('this', function (...args) {
    self = [this === e, args];
  });
  e.emit('this', 1, 2, 3);
  eq('listener this is the emitter, gets every argument', self, [true, [1, 2, 3]]);

  // eventNames include symbols
  const sym = Symbol('s');
  const f = new EventEmitter();
  f.on('x', o);
  f.on(sym, o);
  eq('eventNames', f.eventNames().map(String), ['x', 'Symbol(s)']);

  // newListener / removeListener events
  const g = new EventEmitter();
  const seen = [];
  g.on('newListener', (name) => seen.push('new:' + name));
  g.on('removeListener', (name) => seen.push('remove:' + name));
  g.on('q', o);
  g.off('q', o);
  eq('newListener and removeListener events', seen, ['new:removeListener', 'new:q', 'remove:q']);

  // error handling
  const h = new EventEmitter();
  throwsLike('unhandled error event throws the error', () => h.emit('error', new TypeError('boom')), { message: 'boom', name: 'TypeError' });
  throwsLike('unhandled non-Error', () => h.emit('error', 'str'), { code: 'ERR_UNHANDLED_ERROR', message: /Unhandled error\. \('?str'?\)/ });
  let caught = null;
  h.on('error', (err) => (caught = err.message));
  h.emit('error', new Error('handled'));
  eq('handled error event', caught, 'handled');
  let monitored = null;
  const m = new EventEmitter();
  m.on(errorMonitor, (err) => (monitored = err.message));
  throwsLike('errorMonitor does not handle', () => m.emit('error', new Error('mon')), { message: 'mon' });
  eq('errorMonitor sees the error first', monitored, 'mon');
  throwsLike('a non-function listener', () => e.on('x', 'nope'), { code: 'ERR_INVALID_ARG_TYPE', instanceOf: TypeError });

  // max listeners
  eq('default max listeners', EventEmitter.defaultMaxListeners, 10);
  eq('getMaxListeners', e.getMaxListeners(), 10);
  eq('setMaxListeners chains', e.setMaxListeners(1), e);
  eq('getMaxListeners after set', e.getMaxListeners(), 1);
  throwsLike('negative max listeners', () => e.setMaxListeners(-1), { instanceOf: RangeError });

  // events.once
  const p = new EventEmitter();
  setTimeout(() => p.emit('ready', 42, 'x'), 0);
  eq('events.once resolves with the arguments', await once(p, 'ready'), [42, 'x']);
  eq('events.once removed its listeners', [p.listenerCount('ready'), p.listenerCount('error')], [0, 0]);
  setTimeout(() => p.emit('error', new Error('bad')), 0);
  let rejected = null;
  try {
    await once(p, 'ready');
  } catch (err) {
    rejected = err.message;
  }
  eq('events.once rejects on error', rejected, 'bad');
  const ac = new AbortController();
  const aborted = once(p, 'never', { signal: ac.signal }).catch((err) => err.name);
  ac.abort();
  eq('events.once with an aborted signal', await aborted, 'AbortError');
  const et = new EventTarget();
  setTimeout(() => et.dispatchEvent(new Event('ping')), 0);
  const [ev] = await once(et, 'ping');
  eq('events.once on an EventTarget', ev.type, 'ping');

  // events.on async iterator
  const it = new EventEmitter();
  setTimeout(() => {
    it.emit('d', 1);
    it.emit('d', 2);
  }, 0);
  const got = [];
  for await (const [v] of on(it, 'd')) {
    got.push(v);
    if (got.length === 2) break;
  }
  eq('events.on iterates emitted values', got, [1, 2]);
  eq('events.on cleaned up after break', it.listenerCount('d'), 0);

  // subclassing, and the function-style inheritance old packages use
  class Sub extends EventEmitter {}
  const s = new Sub();
  let subGot = 0;
  s.on('z', () => subGot++);
  s.emit('z');
  eq('class extends EventEmitter', [subGot, s instanceof EventEmitter], [1, true]);
  function Old() {
    EventEmitter.call(this);
  }
  Object.setPrototypeOf(Old.prototype, EventEmitter.prototype);
  const old = new Old();
  old.on('z', () => subGot++);
  old.emit('z');
  eq('EventEmitter.call(this)', subGot, 2);

  // captureRejections routes a rejected async listener to 'error'
  const c = new EventEmitter({ captureRejections: true });
  const errored = new Promise((resolve) => c.on('error', (err) => resolve(err.message)));
  c.on('job', async () => {
    throw new Error('async fail');
  });
  c.emit('job');
  eq('captureRejections emits error', await errored, 'async fail');
  const c2 = new EventEmitter({ captureRejections: true });
  const custom = new Promise((resolve) => {
    c2[captureRejectionSymbol] = (err, event) => resolve(event + ':' + err.message);
  });
  c2.on('job2', async () => {
    throw new Error('x');
  });
  c2.emit('job2');
  eq('captureRejectionSymbol handler', await custom, 'job2:x');
  eq('listenerCount static', EventEmitter.listenerCount(s, 'z'), 1);
}
