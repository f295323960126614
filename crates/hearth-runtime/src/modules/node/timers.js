import { received } from 'hearth:node-internal';
// node:timers — the runtime's timers, with Node's setImmediate.
import * as promises from 'node:timers/promises';

export { promises };
export const setTimeout = (...a) => globalThis.setTimeout(...a);
export const clearTimeout = (t) => globalThis.clearTimeout(t);
export const setInterval = (...a) => globalThis.setInterval(...a);
export const clearInterval = (t) => globalThis.clearInterval(t);

export function setImmediate(callback, ...args) {
  if (typeof callback !== 'function') {
    const e = new TypeError('The "callback" argument must be of type function.' + received(callback));
    e.code = 'ERR_INVALID_ARG_TYPE';
    throw e;
  }
  return globalThis.setTimeout(callback, 0, ...args);
}
export const clearImmediate = (t) => globalThis.clearTimeout(t);

const timers = { setTimeout, clearTimeout, setInterval, clearInterval, setImmediate, clearImmediate, promises };
export default timers;
export { timers as 'module.exports' };
