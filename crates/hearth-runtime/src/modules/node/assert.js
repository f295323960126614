import { received } from 'hearth:node-internal';
// node:assert — assertions throwing AssertionError (code ERR_ASSERTION).
import { inspect, isDeepStrictEqual, deepEqual as deepEq } from 'node:util';

export class AssertionError extends Error {
  constructor(options) {
    const { message, actual, expected, operator, stackStartFn } = options || {};
    super(message !== undefined ? String(message) : inspect(actual) + ' ' + operator + ' ' + inspect(expected));
    this.generatedMessage = message === undefined;
    this.code = 'ERR_ASSERTION';
    this.actual = actual;
    this.expected = expected;
    this.operator = operator;
  }
  get name() {
    return 'AssertionError';
  }
}

function fail_(actual, expected, message, operator, defaultMessage) {
  if (message instanceof Error) throw message;
  const err = new AssertionError({ message: message === undefined ? defaultMessage : message, actual, expected, operator });
  err.generatedMessage = message === undefined;
  throw err;
}

function innerOk(fnName, argLen, value, message) {
  if (!value) {
    let generated;
    if (argLen === 0) generated = 'No value argument passed to `assert.ok()`';
    else generated = 'The expression evaluated to a falsy value:\n\n  assert' + (fnName === 'ok' ? '.ok' : '') + '(' + inspect(value) + ')\n';
    fail_(value, true, message, '==', generated);
  }
}

export function ok(...args) {
  innerOk('ok', args.length, args[0], args[1]);
}

export function fail(message = 'Failed') {
  if (message instanceof Error) throw message;
  throw new AssertionError({ message, operator: 'fail' });
}

export function equal(actual, expected, message) {
  if (!(actual == expected || (actual !== actual && expected !== expected))) {
    fail_(actual, expected, message, '==', inspect(actual) + ' == ' + inspect(expected));
  }
}
export function notEqual(actual, expected, message) {
  if (actual == expected || (actual !== actual && expected !== expected)) {
    fail_(actual, expected, message, '!=', inspect(actual) + ' != ' + inspect(expected));
  }
}
export function strictEqual(actual, expected, message) {
  if (!Object.is(actual, expected)) {
    fail_(actual, expected, message, 'strictEqual', 'Expected values to be strictly equal:\n\n' + inspect(actual) + ' !== ' + inspect(expected) + '\n');
  }
}
export function notStrictEqual(actual, expected, message) {
  if (Object.is(actual, expected)) {
    fail_(actual, expected, message, 'notStrictEqual', 'Expected "actual" to be strictly unequal to: ' + inspect(expected));
  }
}
export function deepEqual(actual, expected, message) {
  if (!deepEq(actual, expected, false, [])) {
    fail_(actual, expected, message, 'deepEqual', 'Expected values to be loosely deep-equal:\n\n' + inspect(actual) + '\n\nshould loosely deep-equal\n\n' + inspect(expected));
  }
}
export function notDeepEqual(actual, expected, message) {
  if (deepEq(actual, expected, false, [])) {
    fail_(actual, expected, message, 'notDeepEqual', '"actual" deepEqual "expected"');
  }
}
export function deepStrictEqual(actual, expected, message) {
  if (!isDeepStrictEqual(actual, expected)) {
    fail_(actual, expected, message, 'deepStrictEqual', 'Expected values to be strictly deep-equal:\n' + inspect(actual) + '\n\nshould equal\n\n' + inspect(expected));
  }
}
export function notDeepStrictEqual(actual, expected, message) {
  if (isDeepStrictEqual(actual, expected)) {
    fail_(actual, expected, message, 'notDeepStrictEqual', 'Expected "actual" not to be strictly deep-equal to: ' + inspect(expected));
  }
}

// Whether `err` satisfies `expected` (a class, RegExp, validation function
// or object of properties), failing with Node's messages where it does not.
function checkError(err, expected, message, fnName) {
  if (expected === undefined) return;
  if (typeof expected === 'function') {
    if (expected.prototype !== undefined && err instanceof expected) return;
    if (Error.isPrototypeOf(expected) || expected === Error) {
      fail_(err, expected, message, fnName, 'The error is expected to be an instance of "' + expected.name + '". Received "' + (err && err.constructor ? err.constructor.name : typeof err) + '"');
    }
    if (expected.call({}, err) === true) return;
    fail_(err, expected, message, fnName, 'The validation function is expected to return "true". Received ' + inspect(false));
  }
  if (expected instanceof RegExp) {
    if (expected.test(String(err))) return;
    fail_(err, expected, message, fnName, 'The input did not match the regular expression ' + inspect(expected) + '. Input:\n\n' + inspect(String(err)) + '\n');
  }
  if (typeof expected === 'object' && expected !== null) {
    for (const k of Object.keys(expected)) {
      const want = expected[k];
      const got = err == null ? undefined : err[k];
      if (want instanceof RegExp && typeof got === 'string' ? want.test(got) : isDeepStrictEqual(got, want)) continue;
      fail_(err, expected, message, fnName, 'Expected values to be strictly deep-equal:\n' + k + ': ' + inspect(got) + ' !== ' + inspect(want));
    }
    return;
  }
}

const NO_EXCEPTION = Symbol('no exception');

export function throws(fn, expected, message) {
  if (typeof fn !== 'function') {
    const e = new TypeError('The "fn" argument must be of type function.' + received(fn));
    e.code = 'ERR_INVALID_ARG_TYPE';
    throw e;
  }
  if (typeof expected === 'string') {
    message = expected;
    expected = undefined;
  }
  let err = NO_EXCEPTION;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  if (err === NO_EXCEPTION) {
    fail_(undefined, expected, message, 'throws', 'Missing expected exception' + (expected && expected.name ? ' (' + expected.name + ').' : '.'));
  }
  checkError(err, expected, message, 'throws');
}

export function doesNotThrow(fn, expected, message) {
  if (typeof expected === 'string') {
    message = expected;
    expected = undefined;
  }
  try {
    fn();
  } catch (e) {
    fail_(e, expected, message, 'doesNotThrow', 'Got unwanted exception.\nActual message: "' + (e && e.message) + '"');
  }
}

export async function rejects(promiseFn, expected, message) {
  if (typeof expected === 'string') {
    message = expected;
    expected = undefined;
  }
  let err = NO_EXCEPTION;
  try {
    await (typeof promiseFn === 'function' ? promiseFn() : promiseFn);
  } catch (e) {
    err = e;
  }
  if (err === NO_EXCEPTION) {
    fail_(undefined, expected, message, 'rejects', 'Missing expected rejection' + (expected && expected.name ? ' (' + expected.name + ').' : '.'));
  }
  checkError(err, expected, message, 'rejects');
}

export async function doesNotReject(promiseFn, expected, message) {
  if (typeof expected === 'string') {
    message = expected;
    expected = undefined;
  }
  try {
    await (typeof promiseFn === 'function' ? promiseFn() : promiseFn);
  } catch (e) {
    fail_(e, expected, message, 'doesNotReject', 'Got unwanted rejection.\nActual message: "' + (e && e.message) + '"');
  }
}

export function ifError(value) {
  if (value !== null && value !== undefined) {
    if (value instanceof Error) throw value;
    throw new AssertionError({ message: 'ifError got unwanted exception: ' + inspect(value), actual: value, expected: null, operator: 'ifError' });
  }
}

export function match(string, regexp, message) {
  if (typeof string !== 'string' || !regexp.test(string)) {
    fail_(string, regexp, message, 'match', 'The input did not match the regular expression ' + inspect(regexp) + '. Input:\n\n' + inspect(string) + '\n');
  }
}
export function doesNotMatch(string, regexp, message) {
  if (typeof string === 'string' && regexp.test(string)) {
    fail_(string, regexp, message, 'doesNotMatch', 'The input was expected to not match the regular expression ' + inspect(regexp) + '. Input:\n\n' + inspect(string) + '\n');
  }
}

function assert(...args) {
  innerOk('assert', args.length, args[0], args[1]);
}
const members = {
  AssertionError, ok, fail, equal, notEqual, strictEqual, notStrictEqual, deepEqual, notDeepEqual,
  deepStrictEqual, notDeepStrictEqual, throws, doesNotThrow, rejects, doesNotReject, ifError, match,
  doesNotMatch,
};
Object.assign(assert, members);

// assert.strict: the legacy loose forms are the strict ones.
function strictAssert(...args) {
  innerOk('assert', args.length, args[0], args[1]);
}
Object.assign(strictAssert, members, {
  equal: strictEqual,
  notEqual: notStrictEqual,
  deepEqual: deepStrictEqual,
  notDeepEqual: notDeepStrictEqual,
});
strictAssert.strict = strictAssert;
assert.strict = strictAssert;

export const strict = strictAssert;
export default assert;
export { assert as 'module.exports' };
