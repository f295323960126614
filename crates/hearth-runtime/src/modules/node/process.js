import { received, workingDirectory } from 'hearth:node-internal';
// node:process — what workerd's process offers. `__hearth_env` (prepended
// by the loader) holds the worker's vars and secrets when nodejs_compat
// populates process.env. Assigned values become strings, as in Node.
import EventEmitter from 'node:events';

const envTarget = Object.create(null);
for (const k of Object.keys(__hearth_env)) envTarget[k] = __hearth_env[k];
export const env = new Proxy(envTarget, {
  set(t, k, v) {
    t[k] = typeof k === 'symbol' ? v : String(v);
    return true;
  },
  defineProperty(t, k, d) {
    if ('value' in d && typeof k !== 'symbol') d = { ...d, value: String(d.value) };
    return Reflect.defineProperty(t, k, d);
  },
});

export function nextTick(callback, ...args) {
  if (typeof callback !== 'function') {
    const e = new TypeError('The "callback" argument must be of type function.' + received(callback));
    e.code = 'ERR_INVALID_ARG_TYPE';
    throw e;
  }
  queueMicrotask(() => callback(...args));
}

export const platform = 'linux';
export const arch = 'x64';
export const version = 'v22.14.0';
export const versions = { node: '22.14.0' };
export const release = { name: 'node' };
export const argv = ['workerd'];
export const argv0 = 'node';
export const execArgv = [];
export const execPath = '';
export const pid = 1;
export const ppid = 0;
export const title = 'workerd';
export const exitCode = undefined;
export const features = { inspector: false, ipv6: true, tls: true, typescript: false, cached_builtins: true };
export const config = { target_defaults: {}, variables: {} };
export const stdout = { write: (s) => { console.log(String(s).replace(/\n$/, '')); return true; }, isTTY: false, fd: 1 };
export const stderr = { write: (s) => { console.error(String(s).replace(/\n$/, '')); return true; }, isTTY: false, fd: 2 };
export const stdin = { isTTY: false, fd: 0 };

export function cwd() {
  return workingDirectory.path;
}
// As in workerd: the directory node:fs resolves relative paths against.
export function chdir(dir) {
  if (typeof dir !== 'string') {
    const e = new TypeError('The "directory" argument must be of type string.' + received(dir));
    e.code = 'ERR_INVALID_ARG_TYPE';
    throw e;
  }
  const parts = [];
  for (const p of (dir.startsWith('/') ? dir : workingDirectory.path + '/' + dir).split('/')) {
    if (p === '' || p === '.') continue;
    if (p === '..') parts.pop();
    else parts.push(p);
  }
  workingDirectory.path = '/' + parts.join('/');
}
export function umask() {
  return 0o22;
}
export function uptime() {
  return performance.now() / 1000;
}
export function hrtime(prev) {
  const now = performance.now();
  const sec = Math.floor(now / 1000);
  const ns = Math.floor((now - sec * 1000) * 1e6);
  if (!prev) return [sec, ns];
  let s = sec - prev[0];
  let n = ns - prev[1];
  if (n < 0) {
    s -= 1;
    n += 1e9;
  }
  return [s, n];
}
hrtime.bigint = () => BigInt(Math.floor(performance.now() * 1e6));
export function memoryUsage() {
  return { rss: 0, heapTotal: 0, heapUsed: 0, external: 0, arrayBuffers: 0 };
}
memoryUsage.rss = () => 0;
export function cpuUsage() {
  return { user: 0, system: 0 };
}
export function emitWarning(warning, type) {
  const msg = warning instanceof Error ? warning.name + ': ' + warning.message : (typeof type === 'string' ? type : 'Warning') + ': ' + warning;
  console.warn(msg);
}
export function exit(code) {
  const e = new Error('process.exit(' + (code === undefined ? '' : code) + ') called');
  e.code = 'ERR_PROCESS_EXIT';
  throw e;
}
export function abort() {
  exit(134);
}
// Synchronous access to the built-ins loaded so far; under
// nodejs_compat_v2 every built-in is loaded at start.
export function getBuiltinModule(id) {
  const name = String(id).startsWith('node:') ? String(id) : 'node:' + id;
  const builtins = globalThis[Symbol.for('hearth.node.builtins')];
  return builtins ? builtins.get(name) : undefined;
}
export function binding(name) {
  const e = new Error('process.binding is not supported');
  e.code = 'ERR_METHOD_NOT_IMPLEMENTED';
  throw e;
}

const emitter = new EventEmitter();
const process = {
  env, nextTick, platform, arch, version, versions, release, argv, argv0, execArgv, execPath, pid, ppid,
  title, exitCode, features, config, stdout, stderr, stdin, cwd, chdir, umask, uptime, hrtime,
  memoryUsage, cpuUsage, emitWarning, exit, abort, getBuiltinModule, binding,
};
for (const m of ['on', 'once', 'off', 'addListener', 'removeListener', 'removeAllListeners', 'emit',
  'prependListener', 'prependOnceListener', 'listeners', 'listenerCount', 'eventNames', 'rawListeners',
  'setMaxListeners', 'getMaxListeners']) {
  process[m] = (...args) => {
    const r = emitter[m](...args);
    return r === emitter ? process : r;
  };
}
Object.defineProperty(process, Symbol.toStringTag, { value: 'process' });
export const on = process.on;
export const once = process.once;
export const off = process.off;
export const emit = process.emit;
export default process;
export { process as 'module.exports' };
