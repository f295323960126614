import { received } from 'hearth:node-internal';
// node:dns: the callback forms of node:dns/promises (DNS over HTTPS, as in
// workerd), with lookup() answering IP literals and empty names at once.
import * as promises from 'node:dns/promises';
import * as p from 'node:dns/promises';

export * from 'node:dns/promises';
export { promises };

const { lookupInternal, notImplemented } = p.Resolver[Symbol.for('hearth.dns.internal')];

function validateCallback(callback) {
  if (typeof callback !== 'function') {
    const e = new TypeError('The "callback" argument must be of type function.' + received(callback));
    e.code = 'ERR_INVALID_ARG_TYPE';
    throw e;
  }
}

// (args..., callback): the promise's value or error reaches the callback.
const callbackForm = (fn) => (...args) => {
  const callback = args.pop();
  validateCallback(callback);
  Promise.resolve()
    .then(() => fn(...args))
    .then((v) => callback(null, v), (e) => callback(e));
};

export function lookup(hostname, options, callback) {
  if (typeof options === 'function') {
    callback = options;
    options = undefined;
  }
  validateCallback(callback);
  if (hostname != null && typeof hostname !== 'string') {
    const e = new TypeError('The "hostname" argument must be of type string.' + received(hostname));
    e.code = 'ERR_INVALID_ARG_TYPE';
    throw e;
  }
  lookupInternal(hostname, options).then(
    (r) => callback(null, ...r),
    (e) => callback(e),
  );
}
export const lookupService = callbackForm(() => Promise.reject(notImplemented()));
export const resolve = callbackForm(p.resolve);
export const resolve4 = callbackForm(p.resolve4);
export const resolve6 = callbackForm(p.resolve6);
export const resolveAny = callbackForm(p.resolveAny);
export const resolveCaa = callbackForm(p.resolveCaa);
export const resolveCname = callbackForm(p.resolveCname);
export const resolveMx = callbackForm(p.resolveMx);
export const resolveNaptr = callbackForm(p.resolveNaptr);
export const resolveNs = callbackForm(p.resolveNs);
export const resolvePtr = callbackForm(p.resolvePtr);
export const resolveSoa = callbackForm(p.resolveSoa);
export const resolveSrv = callbackForm(p.resolveSrv);
export const resolveTxt = callbackForm(p.resolveTxt);
export const reverse = callbackForm(p.reverse);

const dns = { ...p.default, promises, lookup, lookupService, resolve, resolve4, resolve6, resolveAny, resolveCaa,
  resolveCname, resolveMx, resolveNaptr, resolveNs, resolvePtr, resolveSoa, resolveSrv, resolveTxt, reverse };
export default dns;
