import { received } from 'hearth:node-internal';
// node:path — POSIX semantics. Workers have no Windows paths, so
// `path.win32` is the POSIX implementation too (Node's follows Windows rules).
function assertPath(p, name = 'path') {
  if (typeof p !== 'string') {
    const e = new TypeError('The "' + name + '" argument must be of type string.' + received(p));
    e.code = 'ERR_INVALID_ARG_TYPE';
    throw e;
  }
}

function normalizeString(path, allowAboveRoot) {
  const out = [];
  for (const seg of path.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') {
      if (out.length && out[out.length - 1] !== '..') out.pop();
      else if (allowAboveRoot) out.push('..');
    } else {
      out.push(seg);
    }
  }
  return out.join('/');
}

export const sep = '/';
export const delimiter = ':';

export function resolve(...args) {
  let resolved = '';
  let absolute = false;
  for (let i = args.length - 1; i >= -1 && !absolute; i--) {
    const p = i >= 0 ? args[i] : '/';
    assertPath(p, 'paths[' + i + ']');
    if (p.length === 0) continue;
    resolved = p + '/' + resolved;
    absolute = p[0] === '/';
  }
  resolved = normalizeString(resolved, !absolute);
  if (absolute) return '/' + resolved;
  return resolved.length > 0 ? resolved : '.';
}

export function normalize(path) {
  assertPath(path);
  if (path.length === 0) return '.';
  const absolute = path[0] === '/';
  const trailing = path[path.length - 1] === '/';
  let p = normalizeString(path, !absolute);
  if (p.length === 0) {
    if (absolute) return '/';
    return trailing ? './' : '.';
  }
  if (trailing) p += '/';
  return absolute ? '/' + p : p;
}

export function isAbsolute(path) {
  assertPath(path);
  return path.length > 0 && path[0] === '/';
}

export function join(...args) {
  if (args.length === 0) return '.';
  const parts = [];
  for (const a of args) {
    assertPath(a);
    if (a.length > 0) parts.push(a);
  }
  if (parts.length === 0) return '.';
  return normalize(parts.join('/'));
}

export function relative(from, to) {
  assertPath(from, 'from');
  assertPath(to, 'to');
  if (from === to) return '';
  const f = resolve(from).split('/').filter(Boolean);
  const t = resolve(to).split('/').filter(Boolean);
  let i = 0;
  while (i < f.length && i < t.length && f[i] === t[i]) i++;
  return [...Array(f.length - i).fill('..'), ...t.slice(i)].join('/');
}

export function toNamespacedPath(path) {
  return path;
}

export function dirname(path) {
  assertPath(path);
  if (path.length === 0) return '.';
  const hasRoot = path[0] === '/';
  let end = -1;
  let matchedSlash = true;
  for (let i = path.length - 1; i >= 1; --i) {
    if (path[i] === '/') {
      if (!matchedSlash) {
        end = i;
        break;
      }
    } else {
      matchedSlash = false;
    }
  }
  if (end === -1) return hasRoot ? '/' : '.';
  if (hasRoot && end === 1) return '//';
  return path.slice(0, end);
}

export function basename(path, suffix) {
  assertPath(path);
  if (suffix !== undefined) assertPath(suffix, 'suffix');
  let end = path.length;
  while (end > 0 && path[end - 1] === '/') end--;
  if (end === 0) return '';
  let start = path.lastIndexOf('/', end - 1) + 1;
  let base = path.slice(start, end);
  if (suffix !== undefined && suffix.length > 0 && suffix !== base && base.endsWith(suffix)) {
    base = base.slice(0, base.length - suffix.length);
  }
  return base;
}

export function extname(path) {
  assertPath(path);
  const base = basename(path);
  const dot = base.lastIndexOf('.');
  if (dot <= 0 || base === '..') return '';
  return base.slice(dot);
}

export function format(obj) {
  if (obj === null || typeof obj !== 'object') {
    const e = new TypeError('The "pathObject" argument must be of type object.' + received(obj));
    e.code = 'ERR_INVALID_ARG_TYPE';
    throw e;
  }
  const dir = obj.dir || obj.root;
  let ext = obj.ext || '';
  if (ext && ext[0] !== '.') ext = '.' + ext;
  const base = obj.base || (obj.name || '') + ext;
  if (!dir) return base;
  return dir === obj.root ? dir + base : dir + '/' + base;
}

export function parse(path) {
  assertPath(path);
  const ret = { root: '', dir: '', base: '', ext: '', name: '' };
  if (path.length === 0) return ret;
  const absolute = path[0] === '/';
  if (absolute) ret.root = '/';
  let end = path.length;
  while (end > 1 && path[end - 1] === '/') end--;
  const trimmed = path.slice(0, end);
  if (absolute && trimmed === '/') {
    ret.dir = '/';
    return ret;
  }
  ret.base = basename(trimmed);
  const ext = extname(ret.base);
  ret.ext = ext;
  ret.name = ext ? ret.base.slice(0, ret.base.length - ext.length) : ret.base;
  const slash = trimmed.lastIndexOf('/');
  if (slash > 0) ret.dir = trimmed.slice(0, slash);
  else if (absolute) ret.dir = '/';
  return ret;
}

export function matchesGlob(path, pattern) {
  assertPath(path);
  assertPath(pattern, 'pattern');
  let re = '^';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '*') {
      if (pattern[i + 1] === '*') {
        re += '.*';
        i++;
        if (pattern[i + 1] === '/') i++;
      } else {
        re += '[^/]*';
      }
    } else if (c === '?') {
      re += '[^/]';
    } else {
      re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
    }
  }
  return new RegExp(re + '$').test(path);
}

const posix = {
  sep, delimiter, resolve, normalize, isAbsolute, join, relative, toNamespacedPath, dirname,
  basename, extname, format, parse, matchesGlob,
};
posix.posix = posix;
posix.win32 = posix;
export { posix, posix as win32 };
export default posix;
export { posix as 'module.exports' };
