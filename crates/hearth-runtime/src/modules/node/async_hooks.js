import { received } from 'hearth:node-internal';
// node:async_hooks — AsyncLocalStorage and AsyncResource, as workerd has
// them, over the prelude's async context (`__hearth_ac`): a store set with
// run() is seen after awaits, in .then() callbacks, timers and
// queueMicrotask callbacks started inside it. Node's low-level hooks
// (createHook, async ids) are not part of workerd's API; they are inert
// here as there.
const ac = globalThis.__hearth_ac;

function withFrame(frame, fn, thisArg, args) {
  const prev = ac.c();
  ac.r(frame);
  try {
    return fn.apply(thisArg, args);
  } finally {
    ac.r(prev);
  }
}

function frameWith(storage, store) {
  const next = new Map(ac.c());
  next.set(storage, store);
  return next;
}

export class AsyncLocalStorage {
  constructor(options) {
    this.name = options && options.name !== undefined ? String(options.name) : '';
  }
  static bind(fn) {
    return AsyncResource.bind(fn);
  }
  static snapshot() {
    const frame = ac.c();
    return function runInAsyncScope(fn, ...args) {
      return withFrame(frame, fn, this, args);
    };
  }
  getStore() {
    const frame = ac.c();
    return frame === undefined ? undefined : frame.get(this);
  }
  run(store, fn, ...args) {
    ac.enable();
    return withFrame(frameWith(this, store), fn, undefined, args);
  }
  exit(fn, ...args) {
    const frame = ac.c();
    if (frame === undefined || !frame.has(this)) return fn(...args);
    const next = new Map(frame);
    next.delete(this);
    return withFrame(next, fn, undefined, args);
  }
  enterWith(store) {
    ac.enable();
    ac.r(frameWith(this, store));
  }
  disable() {
    const frame = ac.c();
    if (frame !== undefined && frame.has(this)) {
      const next = new Map(frame);
      next.delete(this);
      ac.r(next);
    }
  }
}

export class AsyncResource {
  constructor(type, options) {
    if (typeof type !== 'string') {
      const e = new TypeError('The "type" argument must be of type string.' + received(type));
      e.code = 'ERR_INVALID_ARG_TYPE';
      throw e;
    }
    this.type = type;
    this._frame = ac.c();
    void options;
  }
  runInAsyncScope(fn, thisArg, ...args) {
    return withFrame(this._frame, fn, thisArg, args);
  }
  bind(fn, thisArg) {
    const resource = this;
    const bound = function (...args) {
      return resource.runInAsyncScope(fn, thisArg === undefined ? this : thisArg, ...args);
    };
    Object.defineProperty(bound, 'length', { value: fn.length, configurable: true });
    Object.defineProperty(bound, 'asyncResource', { value: this, configurable: true, enumerable: true });
    return bound;
  }
  static bind(fn, type, thisArg) {
    return new AsyncResource(type || fn.name || 'bound-anonymous-fn').bind(fn, thisArg);
  }
  emitDestroy() {
    return this;
  }
  asyncId() {
    return 0;
  }
  triggerAsyncId() {
    return 0;
  }
}

export function createHook() {
  return {
    enable() {
      return this;
    },
    disable() {
      return this;
    },
  };
}
export function executionAsyncId() {
  return 0;
}
export function triggerAsyncId() {
  return 0;
}
export function executionAsyncResource() {
  return {};
}
export const asyncWrapProviders = {};

const asyncHooks = {
  AsyncLocalStorage, AsyncResource, createHook, executionAsyncId, triggerAsyncId, executionAsyncResource,
  asyncWrapProviders,
};
export default asyncHooks;
export { asyncHooks as 'module.exports' };
