import { received } from 'hearth:node-internal';
// node:module as workerd has it: the list of built-ins, isBuiltin, and
// createRequire() for the built-in modules (loaded at start under
// nodejs_compat_v2, so require() can hand them out synchronously). Loader
// hooks, source maps and the compile cache are not available in a Worker.

export const builtinModules = Object.freeze(["_http_agent", "_http_client", "_http_common", "_http_incoming", "_http_outgoing", "_http_server", "_stream_duplex", "_stream_passthrough", "_stream_readable", "_stream_transform", "_stream_wrap", "_stream_writable", "_tls_common", "_tls_wrap", "assert", "assert/strict", "async_hooks", "buffer", "child_process", "cluster", "console", "constants", "crypto", "dgram", "diagnostics_channel", "dns", "dns/promises", "domain", "events", "fs", "fs/promises", "http", "http2", "https", "inspector", "inspector/promises", "module", "net", "os", "path", "path/posix", "path/win32", "perf_hooks", "process", "punycode", "querystring", "readline", "readline/promises", "repl", "stream", "stream/consumers", "stream/promises", "stream/web", "string_decoder", "sys", "timers", "timers/promises", "tls", "trace_events", "tty", "url", "util", "util/types", "v8", "vm", "wasi", "worker_threads", "zlib"]);

function notImplemented(name) {
  const e = new Error('The module.' + name + ' method is not implemented');
  e.code = 'ERR_METHOD_NOT_IMPLEMENTED';
  return e;
}
const unavailable = (name) => function () {
  throw notImplemented(name);
};

export function isBuiltin(name) {
  const s = String(name);
  return s.startsWith('node:') || builtinModules.includes(s);
}

// The absolute path a createRequire() argument names.
function filenameOf(value) {
  let path;
  if (value instanceof URL) path = value.protocol === 'file:' ? decodeURIComponent(value.pathname) : undefined;
  else if (typeof value === 'string' && value.startsWith('file:')) {
    try {
      path = decodeURIComponent(new URL(value).pathname);
    } catch {
      path = undefined;
    }
  } else if (typeof value === 'string' && value.startsWith('/')) path = value;
  if (path === undefined) {
    const e = new TypeError("The argument 'path' The argument must be a file URL object, a file URL string, or an absolute path string.. Received " + (typeof value === 'string' ? "'" + value + "'" : "'" + String(value) + "'"));
    e.code = 'ERR_INVALID_ARG_VALUE';
    throw e;
  }
  return path;
}

function resolvePath(dir, id) {
  const parts = (id.startsWith('/') ? id : dir + '/' + id).split('/');
  const out = [];
  for (const p of parts) {
    if (p === '' || p === '.') continue;
    if (p === '..') out.pop();
    else out.push(p);
  }
  return out.join('/');
}

export function createRequire(path) {
  const filename = filenameOf(path);
  const dir = filename.slice(0, filename.lastIndexOf('/'));
  const require = function require(id) {
    if (typeof id !== 'string') {
      const e = new TypeError('The "id" argument must be of type string.' + received(id));
      e.code = 'ERR_INVALID_ARG_TYPE';
      throw e;
    }
    if (isBuiltin(id)) {
      const name = id.startsWith('node:') ? id : 'node:' + id;
      const builtins = globalThis[Symbol.for('hearth.node.builtins')];
      if (builtins && builtins.has(name)) return builtins.get(name);
    }
    throw new Error('No such module "' + (isBuiltin(id) ? id : resolvePath(dir, id)) + '".');
  };
  return require;
}

export function wrap(script) {
  return '(function (exports, require, module, __filename, __dirname) { ' + script + '\n});';
}

export const constants = Object.freeze({
  compileCacheStatus: Object.freeze({ FAILED: 0, ENABLED: 1, ALREADY_ENABLED: 2, DISABLED: 3 }),
});
export const _cache = Object.create(null);
export const _pathCache = Object.create(null);
export const _extensions = Object.create(null);
export const globalPaths = [];
export const enableCompileCache = () => undefined;
export const getCompileCacheDir = () => undefined;
export const flushCompileCache = () => undefined;
export const getSourceMapsSupport = () => ({ enabled: false, nodeModules: false, generatedCode: false });
export const setSourceMapsSupport = unavailable('setSourceMapsSupport');
export const findSourceMap = unavailable('findSourceMap');
export const register = unavailable('register');
export const registerHooks = unavailable('registerHooks');
export const syncBuiltinESMExports = unavailable('syncBuiltinESMExports');
export const findPackageJSON = unavailable('findPackageJSON');
export const stripTypeScriptTypes = unavailable('stripTypeScriptTypes');
export const runMain = unavailable('runMain');
export const _debug = unavailable('_debug');
export const _findPath = unavailable('_findPath');
export const _initPaths = unavailable('_initPaths');
export const _load = unavailable('_load');
export const _nodeModulePaths = unavailable('_nodeModulePaths');
export const _preloadModules = unavailable('_preloadModules');
export const _resolveFilename = unavailable('_resolveFilename');
export const _resolveLookupPaths = unavailable('_resolveLookupPaths');

export class SourceMap {
  constructor() {
    throw notImplemented('SourceMap');
  }
}

export function Module() {}
Object.assign(Module, {
  Module, SourceMap, _cache, _debug, _extensions, _findPath, _initPaths, _load, _nodeModulePaths, _pathCache,
  _preloadModules, _resolveFilename, _resolveLookupPaths, builtinModules, constants, createRequire,
  enableCompileCache, findPackageJSON, findSourceMap, flushCompileCache, getCompileCacheDir,
  getSourceMapsSupport, globalPaths, isBuiltin, register, registerHooks, runMain, setSourceMapsSupport,
  stripTypeScriptTypes, syncBuiltinESMExports, wrap,
});
export default Module;
