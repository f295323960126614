// node:timers/promises — promise forms of the runtime's timers.
function abortError(signal) {
  const e = new Error('The operation was aborted');
  e.name = 'AbortError';
  e.code = 'ABORT_ERR';
  if (signal && signal.reason !== undefined) e.cause = signal.reason;
  return e;
}

export function setTimeout(delay, value, options = {}) {
  const signal = options && options.signal;
  if (signal && signal.aborted) return Promise.reject(abortError(signal));
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      globalThis.clearTimeout(id);
      reject(abortError(signal));
    };
    const id = globalThis.setTimeout(() => {
      if (signal) signal.removeEventListener('abort', onAbort);
      resolve(value);
    }, delay);
    if (signal) signal.addEventListener('abort', onAbort, { once: true });
  });
}

export function setImmediate(value, options = {}) {
  return setTimeout(0, value, options);
}

export function setInterval(delay, value, options = {}) {
  const signal = options && options.signal;
  let pending = 0;
  const waiters = [];
  let done = false;
  let id;
  const finish = () => {
    done = true;
    if (id !== undefined) globalThis.clearInterval(id);
  };
  const onAbort = () => {
    finish();
    for (const w of waiters.splice(0)) w.reject(abortError(signal));
  };
  if (signal && signal.aborted) done = true;
  else {
    id = globalThis.setInterval(() => {
      const w = waiters.shift();
      if (w) w.resolve({ value, done: false });
      else pending++;
    }, delay);
    if (signal) signal.addEventListener('abort', onAbort, { once: true });
  }
  return {
    next() {
      if (signal && signal.aborted) return Promise.reject(abortError(signal));
      if (done) return Promise.resolve({ value: undefined, done: true });
      if (pending > 0) {
        pending--;
        return Promise.resolve({ value, done: false });
      }
      return new Promise((resolve, reject) => waiters.push({ resolve, reject }));
    },
    return() {
      finish();
      if (signal) signal.removeEventListener('abort', onAbort);
      for (const w of waiters.splice(0)) w.resolve({ value: undefined, done: true });
      return Promise.resolve({ value: undefined, done: true });
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}

export const scheduler = {
  wait: (delay, options) => setTimeout(delay, undefined, options),
  yield: () => setImmediate(),
};

const timersPromises = { setTimeout, setImmediate, setInterval, scheduler };
export default timersPromises;
export { timersPromises as 'module.exports' };
