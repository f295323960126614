import assert, { AssertionError, strict } from 'node:assert';
import strictDefault from 'node:assert/strict';
import timers, { setImmediate, clearImmediate } from 'node:timers';
import { setTimeout as sleep, setImmediate as immediate, setInterval as every, scheduler } from 'node:timers/promises';
import timersPromises from 'node:timers/promises';
import process, { nextTick, env } from 'node:process';
import dc from 'node:diagnostics_channel';
import { channel, subscribe, unsubscribe, hasSubscribers, tracingChannel } from 'node:diagnostics_channel';

const fails = (fn) => {
  try {
    fn();
    return 'passed';
  } catch (e) {
    return [e instanceof AssertionError, e.code, e.name];
  }
};

async function run() {
  // assert
  const failed = [true, 'ERR_ASSERTION', 'AssertionError'];
  eq('assert() is ok()', [fails(() => assert(1)), fails(() => assert(0))], ['passed', failed]);
  eq('ok', [fails(() => assert.ok(true)), fails(() => assert.ok(''))], ['passed', failed]);
  eq('ok with no argument', (() => { try { assert.ok(); } catch (e) { return e.message; } })(), 'No value argument passed to `assert.ok()`');
  eq('equal is loose', [fails(() => assert.equal(1, '1')), fails(() => assert.equal(1, 2)), fails(() => assert.equal(NaN, NaN))], ['passed', failed, 'passed']);
  eq('notEqual', [fails(() => assert.notEqual(1, 2)), fails(() => assert.notEqual(1, '1'))], ['passed', failed]);
  eq('strictEqual', [fails(() => assert.strictEqual(1, 1)), fails(() => assert.strictEqual(1, '1')), fails(() => assert.strictEqual(NaN, NaN))], ['passed', failed, 'passed']);
  eq('notStrictEqual', [fails(() => assert.notStrictEqual(1, '1')), fails(() => assert.notStrictEqual(1, 1))], ['passed', failed]);
  eq('deepEqual is loose', [fails(() => assert.deepEqual({ a: 1 }, { a: '1' })), fails(() => assert.deepEqual({ a: 1 }, { a: 2 }))], ['passed', failed]);
  eq('deepStrictEqual', [fails(() => assert.deepStrictEqual({ a: [1, { b: 2 }] }, { a: [1, { b: 2 }] })), fails(() => assert.deepStrictEqual({ a: 1 }, { a: '1' }))], ['passed', failed]);
  eq('notDeepStrictEqual', [fails(() => assert.notDeepStrictEqual({ a: 1 }, { a: '1' })), fails(() => assert.notDeepStrictEqual([1], [1]))], ['passed', failed]);
  let err = null;
  try {
    assert.strictEqual(1, 2);
  } catch (e) {
    err = e;
  }
  eq('AssertionError fields', [err.actual, err.expected, err.operator, err.generatedMessage, err instanceof Error], [1, 2, 'strictEqual', true, true]);
  eq('AssertionError message', err.message.startsWith('Expected values to be strictly equal:'), true);
  try {
    assert.strictEqual(1, 2, 'custom message');
  } catch (e) {
    err = e;
  }
  eq('custom message', [err.message, err.generatedMessage], ['custom message', false]);
  try {
    assert.equal(1, 2, new TypeError('mine'));
  } catch (e) {
    err = e;
  }
  eq('an Error as message is thrown', [err.name, err.message], ['TypeError', 'mine']);
  eq('throws', fails(() => assert.throws(() => { throw new TypeError('x'); })), 'passed');
  eq('throws with a class', [fails(() => assert.throws(() => { throw new TypeError('x'); }, TypeError)), fails(() => assert.throws(() => { throw new Error('x'); }, TypeError))], ['passed', failed]);
  eq('throws with a RegExp', [fails(() => assert.throws(() => { throw new Error('bad value'); }, /value/)), fails(() => assert.throws(() => { throw new Error('bad'); }, /value/))], ['passed', failed]);
  eq('throws with an object', [fails(() => assert.throws(() => { const e = new Error('m'); e.code = 'C'; throw e; }, { code: 'C', message: /m/ })), fails(() => assert.throws(() => { throw new Error('m'); }, { code: 'C' }))], ['passed', failed]);
  eq('throws with a validation function', fails(() => assert.throws(() => { throw new Error('v'); }, (e) => e.message === 'v')), 'passed');
  eq('throws when nothing is thrown', fails(() => assert.throws(() => {})), failed);
  eq('doesNotThrow', [fails(() => assert.doesNotThrow(() => 1)), fails(() => assert.doesNotThrow(() => { throw new Error('x'); }))], ['passed', failed]);
  eq('rejects', await assert.rejects(Promise.reject(new RangeError('r')), RangeError).then(() => 'passed'), 'passed');
  eq('rejects with a function', await assert.rejects(async () => { throw new Error('q'); }, /q/).then(() => 'passed'), 'passed');
  eq('rejects when it resolves', await assert.rejects(Promise.resolve(1)).then(() => 'passed', (e) => e.code), 'ERR_ASSERTION');
  eq('doesNotReject', await assert.doesNotReject(Promise.reject(new Error('x'))).then(() => 'passed', (e) => e.code), 'ERR_ASSERTION');
  eq('match', [fails(() => assert.match('abc', /b/)), fails(() => assert.match('abc', /x/))], ['passed', failed]);
  eq('ifError', [fails(() => assert.ifError(null)), (() => { try { assert.ifError(new Error('boom')); } catch (e) { return e.message; } })()], ['passed', 'boom']);
  eq('fail', fails(() => assert.fail('because')), failed);
  eq('strict mode', [strict === strictDefault, assert.strict === strict, fails(() => strict.equal(1, '1')), fails(() => strict.deepEqual({ a: 1 }, { a: '1' }))], [true, true, failed, failed]);

  // timers
  eq('timers exports', [typeof timers.setTimeout, typeof timers.setInterval, timers.promises.setTimeout === sleep], ['function', 'function', true]);
  const order = [];
  await new Promise((resolve) => {
    setImmediate((a, b) => {
      order.push('immediate:' + a + b);
      resolve();
    }, 1, 2);
    Promise.resolve().then(() => order.push('microtask'));
  });
  eq('setImmediate runs after microtasks with its arguments', order, ['microtask', 'immediate:12']);
  let ran = false;
  const im = setImmediate(() => (ran = true));
  clearImmediate(im);
  await sleep(5);
  eq('clearImmediate', ran, false);
  eq('timers/promises setTimeout resolves with the value', await sleep(1, 'v'), 'v');
  eq('timers/promises setImmediate', await immediate('i'), 'i');
  const ac = new AbortController();
  const pending = sleep(10000, 'late', { signal: ac.signal }).catch((e) => [e.name, e.code]);
  ac.abort();
  eq('timers/promises abort', await pending, ['AbortError', 'ABORT_ERR']);
  eq('already aborted', await sleep(1, 'x', { signal: AbortSignal.abort() }).catch((e) => e.name), 'AbortError');
  const ticks = [];
  for await (const v of every(1, 'tick')) {
    ticks.push(v);
    if (ticks.length === 3) break;
  }
  eq('timers/promises setInterval iterates', ticks, ['tick', 'tick', 'tick']);
  eq('scheduler.wait', await scheduler.wait(1).then(() => 'waited'), 'waited');
  eq('default export', timersPromises.setTimeout === sleep, true);

  // process
  const seq = [];
  await new Promise((resolve) => {
    nextTick((x) => {
      seq.push('tick' + x);
      resolve();
    }, 1);
    seq.push('sync');
  });
  eq('nextTick runs after the current code with arguments', seq, ['sync', 'tick1']);
  eq('process basics', [process.platform, process.cwd(), typeof process.version, process.version.startsWith('v'), typeof process.versions.node, process.env === env], ['linux', '/bundle', 'string', true, 'string', true]);
  process.chdir('/tmp');
  const afterChdir = process.cwd();
  process.chdir('../bundle/./x/..');
  eq('chdir', [afterChdir, process.cwd()], ['/tmp', '/bundle']);
  throwsLike('chdir needs a string', () => process.chdir(1), { code: 'ERR_INVALID_ARG_TYPE', message: 'The "directory" argument must be of type string. Received type number (1)' });
  env.COUNT = 5;
  eq('env values become strings', [env.COUNT, typeof env.COUNT], ['5', 'string']);
  delete env.COUNT;
  eq('env delete', 'COUNT' in env, false);
  eq('process is an emitter', typeof process.on === 'function' && process.on('x', () => {}) === process, true);
  const hr = process.hrtime();
  eq('hrtime', [hr.length, typeof process.hrtime.bigint()], [2, 'bigint']);
  eq('global process under v2', globalThis.process === process, true);
  // Wrangler's bundled process polyfill reads the runtime's process this way at start.
  const workerdProcess = globalThis['pro' + 'cess'].getBuiltinModule('node:process');
  eq('getBuiltinModule(node:process)', [workerdProcess === process, typeof workerdProcess.nextTick], [true, 'function']);
  eq('getBuiltinModule of other built-ins', [process.getBuiltinModule('events') === (await import('node:events')).EventEmitter, typeof process.getBuiltinModule('node:util').promisify, process.getBuiltinModule('node:buffer').Buffer === Buffer], [true, 'function', true]);
  eq('getBuiltinModule of a module not provided', process.getBuiltinModule('node:child_process'), undefined);
  eq('getBuiltinModule of node:fs', typeof process.getBuiltinModule('fs').readFileSync, 'function');
  throwsLike('exit throws', () => process.exit(1), { code: 'ERR_PROCESS_EXIT' });

  // diagnostics_channel
  const ch = channel('my-channel');
  eq('channel is cached by name', channel('my-channel') === ch, true);
  eq('no subscribers', [ch.hasSubscribers, hasSubscribers('my-channel')], [false, false]);
  const got = [];
  const onMessage = (message, name) => got.push([message, name]);
  subscribe('my-channel', onMessage);
  eq('hasSubscribers', [ch.hasSubscribers, hasSubscribers('my-channel')], [true, true]);
  ch.publish({ some: 'data' });
  eq('publish delivers synchronously', got, [[{ some: 'data' }, 'my-channel']]);
  eq('unsubscribe', [unsubscribe('my-channel', onMessage), unsubscribe('my-channel', onMessage), ch.hasSubscribers], [true, false, false]);
  ch.publish('ignored');
  eq('no delivery after unsubscribe', got.length, 1);
  const tc = tracingChannel('op');
  const events = [];
  tc.subscribe({ start: () => events.push('start'), end: () => events.push('end'), asyncStart: () => events.push('asyncStart'), asyncEnd: () => events.push('asyncEnd'), error: () => events.push('error') });
  eq('traceSync result', tc.traceSync(() => 7, {}), 7);
  eq('traceSync events', events.splice(0), ['start', 'end']);
  eq('tracePromise result', await tc.tracePromise(async () => 8, {}), 8);
  eq('tracePromise events', events.splice(0), ['start', 'end', 'asyncStart', 'asyncEnd']);
  eq('default export', dc.channel === channel, true);
}
