import util, { promisify, callbackify, inspect, format, inherits, deprecate, types, isDeepStrictEqual, TextEncoder as TE, TextDecoder as TD } from 'node:util';
import * as utilTypes from 'node:util/types';
import { EventEmitter } from 'node:events';

async function run() {
  // promisify
  const cbAdd = (a, b, cb) => setTimeout(() => cb(null, a + b), 0);
  eq('promisify resolves with the first value', await promisify(cbAdd)(2, 3), 5);
  const cbFail = (cb) => cb(new Error('nope'));
  let msg = null;
  await promisify(cbFail)().catch((e) => (msg = e.message));
  eq('promisify rejects with the error', msg, 'nope');
  const obj = { x: 7, get(cb) { cb(null, this.x); } };
  eq('promisify keeps this', await promisify(obj.get).call(obj), 7);
  function custom() {}
  custom[promisify.custom] = () => Promise.resolve('custom');
  eq('promisify.custom is the shared symbol', promisify.custom, Symbol.for('nodejs.util.promisify.custom'));
  eq('promisify uses the custom function', await promisify(custom)(), 'custom');
  eq('promisify of a custom returns it', promisify(custom) === custom[promisify.custom], true);
  const p1 = promisify(cbAdd);
  eq('promisify is idempotent', promisify(p1) === p1, true);
  throwsLike('promisify a non-function', () => promisify(1), { code: 'ERR_INVALID_ARG_TYPE' });

  // callbackify
  const cbified = callbackify(async (x) => x * 2);
  eq('callbackify passes the value', await new Promise((r) => cbified(21, (err, v) => r([err, v]))), [null, 42]);
  const cbErr = callbackify(() => Promise.reject(null));
  const falsy = await new Promise((r) => cbErr((err) => r([err.code, err.reason])));
  eq('callbackify wraps a falsy rejection', falsy, ['ERR_FALSY_VALUE_REJECTION', null]);

  // format
  eq('format %s', format('%s:%s', 'a', 'b'), 'a:b');
  eq('format %d', format('%d', '42'), '42');
  eq('format %d of bigint', format('%d', 5n), '5n');
  eq('format %i', format('%i', 42.9), '42');
  eq('format %f', format('%f', '1.5x'), '1.5');
  eq('format %j', format('%j', { a: 1 }), '{"a":1}');
  const circ = {};
  circ.self = circ;
  eq('format %j circular', format('%j', circ), '[Circular]');
  eq('format %%', format('100%% %s', 'sure'), '100% sure');
  eq('format missing args stay', format('%s %s', 'only'), 'only %s');
  eq('format extra args are appended', format('%s', 'a', 'b', 3), 'a b 3');
  eq('format without a format string', format(1, 'two', { three: 3 }), "1 two { three: 3 }");
  eq('format %o', format('%o', [1]), "[ 1, [length]: 1 ]");
  eq('format %O', format('%O', { a: { b: 1 } }), '{ a: { b: 1 } }');
  eq('format %s of an object', format('%s', { a: 1 }), '{ a: 1 }');
  eq('format %c is consumed', format('%cstyled', 'color: red'), 'styled');

  // inspect
  eq('inspect string', inspect('a'), "'a'");
  eq('inspect quotes', inspect("it's"), '"it\'s"');
  eq('inspect numbers', [inspect(-0), inspect(1n), inspect(NaN)], ['-0', '1n', 'NaN']);
  eq('inspect object', inspect({ a: 1, 'b-c': 'x', [Symbol('s')]: true }), "{ a: 1, 'b-c': 'x', [Symbol(s)]: true }");
  eq('inspect nested depth', inspect({ a: { b: { c: { d: 1 } } } }), '{ a: { b: { c: [Object] } } }');
  eq('inspect depth option', inspect({ a: { b: { c: { d: 1 } } } }, { depth: 0 }), '{ a: [Object] }');
  eq('inspect depth null', inspect({ a: { b: { c: { d: 1 } } } }, { depth: null }), '{ a: { b: { c: { d: 1 } } } }');
  eq('inspect array', inspect([1, 'a', [2]]), "[ 1, 'a', [ 2 ] ]");
  eq('inspect empty', [inspect({}), inspect([])], ['{}', '[]']);
  eq('inspect circular', inspect(circ), '{ self: [Circular *1] }');
  eq('inspect Map/Set', [inspect(new Map([['k', 1]])), inspect(new Set([1, 2]))], ["Map(1) { 'k' => 1 }", 'Set(2) { 1, 2 }']);
  eq('inspect function', [inspect(function foo() {}), inspect(() => {}), inspect(class A {})], ['[Function: foo]', '[Function (anonymous)]', '[class A]']);
  eq('inspect Date', inspect(new Date(0)), '1970-01-01T00:00:00.000Z');
  eq('inspect RegExp', inspect(/a+/g), '/a+/g');
  eq('inspect null/undefined', [inspect(null), inspect(undefined)], ['null', 'undefined']);
  eq('inspect class instance', inspect(new (class Point { constructor() { this.x = 1; } })()), 'Point { x: 1 }');
  eq('inspect typed array', inspect(new Uint8Array([1, 2])), 'Uint8Array(2) [ 1, 2 ]');
  eq('inspect Buffer', inspect(Buffer.from('hi')), '<Buffer 68 69>');
  eq('inspect custom', inspect({ [inspect.custom]: () => 'CUSTOM' }), 'CUSTOM');
  eq('inspect.custom symbol', inspect.custom, Symbol.for('nodejs.util.inspect.custom'));
  eq('inspect getter', inspect({ get g() { return 1; } }), '{ g: [Getter] }');
  eq('inspect null prototype', inspect(Object.create(null)), '[Object: null prototype] {}');
  eq('inspect long array breaks lines', inspect(Array.from({ length: 30 }, (_, i) => 'item' + i)).includes('\n'), true);
  eq('inspect maxArrayLength', inspect([1, 2, 3], { maxArrayLength: 1 }), '[ 1, ... 2 more items ]');
  eq('inspect colors', inspect(1, { colors: true }), '\u001b[33m1\u001b[39m');
  eq('inspect error starts with name and message', inspect(new TypeError('bad')).startsWith('TypeError: bad'), true);

  // inherits
  function Animal() {
    EventEmitter.call(this);
  }
  inherits(Animal, EventEmitter);
  const a = new Animal();
  eq('inherits', [a instanceof EventEmitter, Animal.super_ === EventEmitter, typeof a.on], [true, true, 'function']);
  throwsLike('inherits needs functions', () => inherits({}, EventEmitter), { code: 'ERR_INVALID_ARG_TYPE' });

  // deprecate: still works, warns once
  const dep = deprecate((x) => x + 1, 'old', 'DEP_TEST');
  eq('deprecate keeps behaviour', [dep(1), dep(2)], [2, 3]);

  // types
  eq('types is util/types', types.isDate === utilTypes.isDate && util.types === types, true);
  eq('isPromise', [types.isPromise(Promise.resolve()), types.isPromise({ then() {} })], [true, false]);
  eq('isDate/isRegExp', [types.isDate(new Date()), types.isRegExp(/x/), types.isDate('2020')], [true, true, false]);
  eq('isArrayBuffer', [types.isArrayBuffer(new ArrayBuffer(1)), types.isArrayBuffer(new Uint8Array(1))], [true, false]);
  eq('isAnyArrayBuffer', types.isAnyArrayBuffer(new ArrayBuffer(1)), true);
  eq('isTypedArray/isUint8Array', [types.isTypedArray(new Int16Array(1)), types.isUint8Array(Buffer.alloc(1)), types.isUint8Array(new Int8Array(1)), types.isTypedArray(new DataView(new ArrayBuffer(1)))], [true, true, false, false]);
  eq('isArrayBufferView', [types.isArrayBufferView(new DataView(new ArrayBuffer(1))), types.isDataView(new DataView(new ArrayBuffer(1)))], [true, true]);
  eq('isMap/isSet/isWeakMap', [types.isMap(new Map()), types.isSet(new Set()), types.isWeakMap(new WeakMap()), types.isSet(new Map())], [true, true, true, false]);
  eq('isAsyncFunction/isGeneratorFunction', [types.isAsyncFunction(async () => {}), types.isAsyncFunction(() => {}), types.isGeneratorFunction(function* () {})], [true, false, true]);
  eq('isNativeError', [types.isNativeError(new RangeError()), types.isNativeError({ message: 'x' })], [true, false]);
  eq('isBoxedPrimitive', [types.isBoxedPrimitive(Object(1)), types.isBoxedPrimitive(1), types.isStringObject(new String('s'))], [true, false, true]);
  eq('isMapIterator', types.isMapIterator(new Map().keys()), true);

  // isDeepStrictEqual
  eq('deep equal objects', isDeepStrictEqual({ a: [1, { b: 2 }] }, { a: [1, { b: 2 }] }), true);
  eq('deep strict is strict', [isDeepStrictEqual({ a: 1 }, { a: '1' }), isDeepStrictEqual([1], ['1'])], [false, false]);
  eq('deep equal NaN', isDeepStrictEqual(NaN, NaN), true);
  eq('deep equal -0', isDeepStrictEqual(0, -0), false);
  eq('deep equal prototypes', isDeepStrictEqual(Object.create(null), {}), false);
  eq('deep equal Map/Set', [isDeepStrictEqual(new Map([[1, { a: 1 }]]), new Map([[1, { a: 1 }]])), isDeepStrictEqual(new Set([1, 2]), new Set([2, 1])), isDeepStrictEqual(new Set([1]), new Set(['1']))], [true, true, false]);
  eq('deep equal dates', [isDeepStrictEqual(new Date(1), new Date(1)), isDeepStrictEqual(new Date(1), new Date(2))], [true, false]);
  eq('deep equal typed arrays', [isDeepStrictEqual(new Uint8Array([1]), new Uint8Array([1])), isDeepStrictEqual(new Uint8Array([1]), new Int8Array([1]))], [true, false]);
  eq('deep equal extra key', isDeepStrictEqual({ a: 1 }, { a: 1, b: undefined }), false);
  const c1 = {};
  c1.c = c1;
  const c2 = {};
  c2.c = c2;
  eq('deep equal circular', isDeepStrictEqual(c1, c2), true);

  eq('TextEncoder/TextDecoder', [TE === globalThis.TextEncoder, new TD().decode(new TE().encode('ü'))], [true, 'ü']);
  eq('legacy is* helpers', [util.isArray([]), util.isString('s'), util.isPrimitive({}), util.isNullOrUndefined(null)], [true, true, false, true]);
}
