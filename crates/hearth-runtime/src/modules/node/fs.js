import { received, workingDirectory } from 'hearth:node-internal';
// node:fs — the virtual file system workerd gives a worker:
//   /bundle  the worker's modules (what it has loaded from its module root),
//            read-only;
//   /tmp     in memory, writable, one per request (files written while
//            handling a request are gone when it ends, and other requests
//            never see them; code outside any request has its own);
//   /dev     null, zero, full and random.
// Sync, callback and promise forms, file descriptors, FileHandle, read and
// write streams. Not provided (as in workerd): glob, watch, and
// permissions/ownership beyond what stat reports.
import { Buffer } from 'node:buffer';
import { Readable, Writable } from 'node:stream';
import path from 'node:path';

const io = globalThis.__hearth_io;

export const constants = Object.freeze({
  UV_FS_SYMLINK_DIR: 1, UV_FS_SYMLINK_JUNCTION: 2, O_RDONLY: 0, O_WRONLY: 1, O_RDWR: 2,
  UV_DIRENT_UNKNOWN: 0, UV_DIRENT_FILE: 1, UV_DIRENT_DIR: 2, UV_DIRENT_LINK: 3, UV_DIRENT_FIFO: 4,
  UV_DIRENT_SOCKET: 5, UV_DIRENT_CHAR: 6, UV_DIRENT_BLOCK: 7, S_IFMT: 61440, S_IFREG: 32768,
  S_IFDIR: 16384, S_IFCHR: 8192, S_IFBLK: 24576, S_IFIFO: 4096, S_IFLNK: 40960, S_IFSOCK: 49152,
  O_CREAT: 64, O_EXCL: 128, UV_FS_O_FILEMAP: 0, O_NOCTTY: 256, O_TRUNC: 512, O_APPEND: 1024,
  O_DIRECTORY: 65536, O_NOATIME: 262144, O_NOFOLLOW: 131072, O_SYNC: 1052672, O_DSYNC: 4096,
  O_DIRECT: 16384, O_NONBLOCK: 2048, S_IRWXU: 448, S_IRUSR: 256, S_IWUSR: 128, S_IXUSR: 64,
  S_IRWXG: 56, S_IRGRP: 32, S_IWGRP: 16, S_IXGRP: 8, S_IRWXO: 7, S_IROTH: 4, S_IWOTH: 2, S_IXOTH: 1,
  F_OK: 0, R_OK: 4, W_OK: 2, X_OK: 1, UV_FS_COPYFILE_EXCL: 1, COPYFILE_EXCL: 1,
  UV_FS_COPYFILE_FICLONE: 2, COPYFILE_FICLONE: 2, UV_FS_COPYFILE_FICLONE_FORCE: 4, COPYFILE_FICLONE_FORCE: 4,
});
export const F_OK = 0;
export const R_OK = 4;
export const W_OK = 2;
export const X_OK = 1;

const ERRNO = { ENOENT: -2, EPERM: -1, EBADF: -9, EEXIST: -17, ENOTDIR: -20, EISDIR: -21, EINVAL: -22, ENOTEMPTY: -39, ELOOP: -40, EACCES: -13, EXDEV: -18 };
const DESCRIPTIONS = {
  ENOENT: 'no such file or directory', EPERM: 'operation not permitted', EBADF: 'bad file descriptor',
  EEXIST: 'file already exists', ENOTDIR: 'not a directory', EISDIR: 'illegal operation on a directory',
  EINVAL: 'invalid argument', ENOTEMPTY: 'directory not empty', ELOOP: 'too many symbolic links encountered',
  EACCES: 'permission denied', EXDEV: 'cross-device link not permitted',
};

// Node's system error: `ENOENT: no such file or directory, open '/x'`.
function fsError(code, syscall, p, dest) {
  let message = code + ': ' + DESCRIPTIONS[code] + ', ' + syscall;
  if (p !== undefined) message += " '" + p + "'";
  if (dest !== undefined) message += " -> '" + dest + "'";
  const e = new Error(message);
  e.errno = ERRNO[code];
  e.code = code;
  e.syscall = syscall;
  if (p !== undefined) e.path = p;
  if (dest !== undefined) e.dest = dest;
  return e;
}

function toPath(p, name = 'path') {
  if (typeof p === 'string') return p;
  if (Buffer.isBuffer(p) || p instanceof Uint8Array) return Buffer.from(p).toString();
  if (p instanceof URL) {
    if (p.protocol !== 'file:') {
      const e = new TypeError('The URL must be of scheme file');
      e.code = 'ERR_INVALID_URL_SCHEME';
      throw e;
    }
    return decodeURIComponent(p.pathname);
  }
  const e = new TypeError('The "' + name + '" argument must be of type string or an instance of Buffer or URL.' + received(p));
  e.code = 'ERR_INVALID_ARG_TYPE';
  throw e;
}

function resolvePath(p) {
  const s = toPath(p);
  if (s.includes('\u0000')) {
    const e = new TypeError("The argument 'path' must be a string, Uint8Array, or URL without null bytes. Received " + JSON.stringify(s));
    e.code = 'ERR_INVALID_ARG_VALUE';
    throw e;
  }
  return path.posix.resolve(workingDirectory.path, s);
}

// ---- the tree ----

let nextIno = 1;
const now = () => Date.now();

function newNode(type, extra) {
  const t = now();
  return { type, ino: nextIno++, mode: type === 'dir' ? 0o40755 : type === 'symlink' ? 0o120777 : 0o100644, atimeMs: t, mtimeMs: t, ctimeMs: t, birthtimeMs: t, ...extra };
}

const random = (n) => {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(b.subarray(i, Math.min(n, i + 65536)));
  return b;
};
const devices = new Map([
  ['null', newNode('dev', { mode: 0o20666, read: () => Buffer.alloc(0) })],
  ['zero', newNode('dev', { mode: 0o20666, read: (n) => Buffer.alloc(n) })],
  ['full', newNode('dev', { mode: 0o20666, read: () => Buffer.alloc(0) })],
  ['random', newNode('dev', { mode: 0o20666, read: (n) => random(n) })],
]);
const devDir = newNode('dir', { mode: 0o40555, readonly: true, children: devices });

// /bundle: directories built from the loaded files' names; a file's bytes
// are read once, when first asked for.
let bundleDir = null;
let bundleCount = -1;
function bundle() {
  const names = io.bundleFiles();
  if (names.length === bundleCount && bundleDir) return bundleDir;
  const root = newNode('dir', { mode: 0o40555, readonly: true, children: new Map() });
  for (const name of names) {
    const parts = name.split('/');
    let dir = root;
    for (let i = 0; i < parts.length - 1; i++) {
      let next = dir.children.get(parts[i]);
      if (!next) {
        next = newNode('dir', { mode: 0o40555, readonly: true, children: new Map() });
        dir.children.set(parts[i], next);
      }
      dir = next;
    }
    const old = bundleDir && lookupIn(bundleDir, parts);
    dir.children.set(parts[parts.length - 1], old || newNode('file', { mode: 0o100444, readonly: true, bundleName: name, data: null }));
  }
  bundleDir = root;
  bundleCount = names.length;
  return root;
}
function lookupIn(dir, parts) {
  let n = dir;
  for (const p of parts) {
    n = n && n.children && n.children.get(p);
  }
  return n && n.type === 'file' ? n : null;
}
function fileData(node) {
  if (node.data === null && node.bundleName !== undefined) {
    const bytes = io.bundleRead(node.bundleName);
    node.data = bytes ? Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length) : Buffer.alloc(0);
  }
  return node.data;
}

// /tmp: one tree per request, dropped when the request ends.
const tmps = new Map();
io.onRequestEnd((rid) => {
  tmps.delete(rid);
  for (const [fd, f] of fds) if (f.rid === rid) fds.delete(fd);
});
function tmp() {
  const rid = io.requestId();
  let t = tmps.get(rid);
  if (!t) {
    t = newNode('dir', { mode: 0o41777, children: new Map() });
    tmps.set(rid, t);
    io.tmpUsed();
  }
  return t;
}

// `/`: its three directories, looked up when walked through.
const TOP = ['bundle', 'dev', 'tmp'];
const rootNode = newNode('dir', {
  mode: 0o40555,
  readonly: true,
  children: {
    get: (name) => (name === 'bundle' ? bundle() : name === 'tmp' ? tmp() : name === 'dev' ? devDir : undefined),
    keys: () => TOP[Symbol.iterator](),
    size: TOP.length,
  },
});
function root() {
  return rootNode;
}

// Walks to `p`; the last component is followed if it is a symlink and
// `follow` is set. Returns { node, parent, name, path }.
function walk(p, syscall, follow = true, depth = 0) {
  if (depth > 40) throw fsError('ELOOP', syscall, p);
  const parts = p.split('/').filter(Boolean);
  let node = root();
  let parent = null;
  let cur = '';
  for (let i = 0; i < parts.length; i++) {
    if (node.type !== 'dir') throw fsError('ENOTDIR', syscall, p);
    parent = node;
    const next = node.children.get(parts[i]);
    cur += '/' + parts[i];
    if (!next) {
      if (i === parts.length - 1) return { node: null, parent, name: parts[i], path: cur };
      throw fsError('ENOENT', syscall, p);
    }
    if (next.type === 'symlink' && (follow || i < parts.length - 1)) {
      const target = path.posix.resolve(path.posix.dirname(cur), next.target);
      const rest = parts.slice(i + 1).join('/');
      return walk(rest ? target + '/' + rest : target, syscall, follow, depth + 1);
    }
    node = next;
  }
  return { node, parent, name: parts[parts.length - 1], path: cur || '/' };
}

function existing(p, syscall, follow = true) {
  const abs = resolvePath(p);
  const r = walk(abs, syscall, follow);
  if (!r.node) throw fsError('ENOENT', syscall, toPath(p));
  return r;
}

function writableParent(r, syscall, p) {
  if (!r.parent) throw fsError('EPERM', syscall, p);
  if (r.parent.readonly) throw fsError('EPERM', syscall, p);
}

// ---- Stats and Dirent ----

export class Stats {
  constructor(node) {
    const size = node.type === 'file' ? fileData(node).length : node.type === 'symlink' ? node.target.length : node.type === 'dir' ? 4096 : 0;
    Object.assign(this, {
      dev: 0, ino: node.ino, mode: node.mode, nlink: 1, uid: 0, gid: 0, rdev: 0, size, blksize: 4096,
      blocks: Math.ceil(size / 512), atimeMs: node.atimeMs, mtimeMs: node.mtimeMs, ctimeMs: node.ctimeMs,
      birthtimeMs: node.birthtimeMs, atime: new Date(node.atimeMs), mtime: new Date(node.mtimeMs),
      ctime: new Date(node.ctimeMs), birthtime: new Date(node.birthtimeMs),
    });
  }
  isFile() { return (this.mode & 0o170000) === 0o100000; }
  isDirectory() { return (this.mode & 0o170000) === 0o040000; }
  isSymbolicLink() { return (this.mode & 0o170000) === 0o120000; }
  isCharacterDevice() { return (this.mode & 0o170000) === 0o020000; }
  isBlockDevice() { return false; }
  isFIFO() { return false; }
  isSocket() { return false; }
}

export class Dirent {
  constructor(name, node, parentPath) {
    this.name = name;
    this.parentPath = parentPath;
    this.path = parentPath;
    this._mode = node.mode;
  }
  isFile() { return (this._mode & 0o170000) === 0o100000; }
  isDirectory() { return (this._mode & 0o170000) === 0o040000; }
  isSymbolicLink() { return (this._mode & 0o170000) === 0o120000; }
  isCharacterDevice() { return (this._mode & 0o170000) === 0o020000; }
  isBlockDevice() { return false; }
  isFIFO() { return false; }
  isSocket() { return false; }
}

function statResult(node, options) {
  const s = new Stats(node);
  if (options && options.bigint) {
    for (const k of ['dev', 'ino', 'mode', 'nlink', 'uid', 'gid', 'rdev', 'size', 'blksize', 'blocks', 'atimeMs', 'mtimeMs', 'ctimeMs', 'birthtimeMs']) s[k] = BigInt(Math.floor(s[k]));
  }
  return s;
}

// ---- sync API ----

function encodingOf(options) {
  if (typeof options === 'string') return options;
  return options && options.encoding ? options.encoding : null;
}

function dataBytes(data, options) {
  if (typeof data === 'string') return Buffer.from(data, encodingOf(options) || 'utf8');
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const e = new TypeError('The "data" argument must be of type string or an instance of Buffer, TypedArray, or DataView.' + received(data));
  e.code = 'ERR_INVALID_ARG_TYPE';
  throw e;
}

function readNode(node, p) {
  if (node.type === 'dir') throw fsError('EISDIR', 'read', undefined);
  if (node.type === 'dev') return node.read(0);
  return fileData(node);
}

export function readFileSync(p, options) {
  if (typeof p === 'number') return decode(Buffer.from(readFd(p)), encodingOf(options));
  const { node } = existing(p, 'open');
  const data = readNode(node, p);
  node.atimeMs = now();
  return decode(Buffer.from(data), encodingOf(options));
}

function decode(buf, encoding) {
  return encoding && encoding !== 'buffer' ? buf.toString(encoding) : buf;
}

function writeTo(p, bytes, flag, syscall) {
  const abs = resolvePath(p);
  const r = walk(abs, 'open');
  if (r.node) {
    if (r.node.type === 'dir') throw fsError('EISDIR', 'open', toPath(p));
    if (r.node.type === 'dev') return;
    if (r.node.readonly) throw fsError('EPERM', 'open', toPath(p));
    if (flag.includes('x')) throw fsError('EEXIST', 'open', toPath(p));
    r.node.data = flag.startsWith('a') ? Buffer.concat([r.node.data, bytes]) : Buffer.from(bytes);
    r.node.mtimeMs = r.node.ctimeMs = now();
    return;
  }
  writableParent(r, syscall, toPath(p));
  r.parent.children.set(r.name, newNode('file', { data: Buffer.from(bytes) }));
}

export function writeFileSync(p, data, options) {
  if (typeof p === 'number') {
    writeSync(p, dataBytes(data, options));
    return;
  }
  const flag = (options && typeof options === 'object' && options.flag) || 'w';
  writeTo(p, dataBytes(data, options), flag, 'open');
}

export function appendFileSync(p, data, options) {
  if (typeof p === 'number') {
    writeSync(p, dataBytes(data, options));
    return;
  }
  writeTo(p, dataBytes(data, options), 'a', 'open');
}

export function existsSync(p) {
  try {
    return walk(resolvePath(p), 'access').node !== null;
  } catch {
    return false;
  }
}

export function accessSync(p, mode = F_OK) {
  const { node } = existing(p, 'access');
  if ((mode & W_OK) && node.readonly) throw fsError('EACCES', 'access', toPath(p));
}

export function statSync(p, options) {
  try {
    return statResult(existing(p, 'stat').node, options);
  } catch (e) {
    if (options && options.throwIfNoEntry === false && e.code === 'ENOENT') return undefined;
    throw e;
  }
}

export function lstatSync(p, options) {
  try {
    return statResult(existing(p, 'lstat', false).node, options);
  } catch (e) {
    if (options && options.throwIfNoEntry === false && e.code === 'ENOENT') return undefined;
    throw e;
  }
}

export function readdirSync(p, options) {
  const r = existing(p, 'scandir');
  if (r.node.type !== 'dir') throw fsError('ENOTDIR', 'scandir', toPath(p));
  const withTypes = options && typeof options === 'object' && options.withFileTypes;
  const recursive = options && typeof options === 'object' && options.recursive;
  const out = [];
  const visit = (dir, rel, abs) => {
    for (const name of [...dir.children.keys()].sort()) {
      const child = dir.children.get(name);
      const relName = rel ? rel + '/' + name : name;
      out.push(withTypes ? new Dirent(name, child, abs) : relName);
      if (recursive && child.type === 'dir') visit(child, relName, abs + '/' + name);
    }
  };
  visit(r.node, '', r.path === '/' ? '' : r.path);
  const enc = encodingOf(options);
  return enc === 'buffer' && !withTypes ? out.map((n) => Buffer.from(n)) : out;
}

export function mkdirSync(p, options) {
  const recursive = options && typeof options === 'object' && options.recursive;
  const abs = resolvePath(p);
  if (!recursive) {
    const r = walk(abs, 'mkdir');
    if (r.node) throw fsError('EEXIST', 'mkdir', toPath(p));
    writableParent(r, 'mkdir', toPath(p));
    r.parent.children.set(r.name, newNode('dir', { children: new Map() }));
    return undefined;
  }
  const parts = abs.split('/').filter(Boolean);
  let first;
  let cur = '';
  for (const part of parts) {
    cur += '/' + part;
    const r = walk(cur, 'mkdir');
    if (r.node) {
      if (r.node.type !== 'dir') throw fsError('EEXIST', 'mkdir', toPath(p));
      continue;
    }
    writableParent(r, 'mkdir', toPath(p));
    r.parent.children.set(r.name, newNode('dir', { children: new Map() }));
    if (first === undefined) first = cur;
  }
  return first;
}

export function mkdtempSync(prefix) {
  for (;;) {
    const name = toPath(prefix, 'prefix') + Math.random().toString(36).slice(2, 8).padEnd(6, '0');
    if (!existsSync(name)) {
      mkdirSync(name);
      return name;
    }
  }
}

function removeEntry(p, syscall, wantDir) {
  const abs = resolvePath(p);
  const r = walk(abs, syscall, false);
  if (!r.node) throw fsError('ENOENT', syscall, toPath(p));
  if (!r.parent || r.parent.readonly) throw fsError('EPERM', syscall, toPath(p));
  if (wantDir === true && r.node.type !== 'dir') throw fsError('ENOTDIR', syscall, toPath(p));
  if (wantDir === false && r.node.type === 'dir') throw fsError('EISDIR', syscall, toPath(p));
  r.parent.children.delete(r.name);
}

export function unlinkSync(p) {
  removeEntry(p, 'unlink', false);
}

export function rmdirSync(p, options) {
  const r = existing(p, 'rmdir', false);
  if (r.node.type === 'dir' && r.node.children.size && !(options && options.recursive)) throw fsError('ENOTEMPTY', 'rmdir', toPath(p));
  removeEntry(p, 'rmdir', true);
}

export function rmSync(p, options) {
  const o = options || {};
  let r;
  try {
    r = existing(p, 'rm', false);
  } catch (e) {
    if (o.force && e.code === 'ENOENT') return;
    throw e;
  }
  if (r.node.type === 'dir') {
    if (!o.recursive) {
      const e = new Error('Path is a directory: rm returned EISDIR (is a directory) ' + toPath(p));
      e.code = 'ERR_FS_EISDIR';
      e.errno = 21;
      e.syscall = 'rm';
      e.path = toPath(p);
      throw e;
    }
  }
  removeEntry(p, 'rm', undefined);
}

export function renameSync(from, to) {
  const a = existing(from, 'rename', false);
  const b = walk(resolvePath(to), 'rename', false);
  if (!a.parent || a.parent.readonly) throw fsError('EPERM', 'rename', toPath(from), toPath(to));
  if (!b.parent || b.parent.readonly) throw fsError('EPERM', 'rename', toPath(from), toPath(to));
  if (b.node && b.node.type === 'dir' && a.node.type !== 'dir') throw fsError('EISDIR', 'rename', toPath(from), toPath(to));
  if (b.node && b.node.type === 'dir' && b.node.children.size) throw fsError('ENOTEMPTY', 'rename', toPath(from), toPath(to));
  a.parent.children.delete(a.name);
  b.parent.children.set(b.name, a.node);
  a.node.ctimeMs = now();
}

export function copyFileSync(from, to, mode = 0) {
  const { node } = existing(from, 'copyfile');
  if (node.type === 'dir') throw fsError('EISDIR', 'copyfile', toPath(from), toPath(to));
  const data = readNode(node);
  writeTo(to, data, mode & constants.COPYFILE_EXCL ? 'wx' : 'w', 'copyfile');
}

export function cpSync(from, to, options) {
  const { node } = existing(from, 'cp');
  if (node.type !== 'dir') return copyFileSync(from, to);
  if (!(options && options.recursive)) {
    const e = new Error('Recursive option is required to copy a directory: ' + toPath(from));
    e.code = 'ERR_FS_EISDIR';
    throw e;
  }
  mkdirSync(to, { recursive: true });
  for (const name of node.children.keys()) cpSync(path.posix.join(resolvePath(from), name), path.posix.join(resolvePath(to), name), options);
}

export function symlinkSync(target, p) {
  const r = walk(resolvePath(p), 'symlink', false);
  if (r.node) throw fsError('EEXIST', 'symlink', toPath(target, 'target'), toPath(p));
  writableParent(r, 'symlink', toPath(p));
  r.parent.children.set(r.name, newNode('symlink', { target: toPath(target, 'target') }));
}

export function readlinkSync(p, options) {
  const { node } = existing(p, 'readlink', false);
  if (node.type !== 'symlink') throw fsError('EINVAL', 'readlink', toPath(p));
  return encodingOf(options) === 'buffer' ? Buffer.from(node.target) : node.target;
}

export function realpathSync(p) {
  return existing(p, 'realpath').path;
}
realpathSync.native = realpathSync;

export function truncateSync(p, len = 0) {
  const { node } = existing(p, 'open');
  if (node.readonly) throw fsError('EPERM', 'open', toPath(p));
  if (node.type !== 'file') throw fsError('EISDIR', 'open', toPath(p));
  const d = fileData(node);
  node.data = len <= d.length ? Buffer.from(d.subarray(0, len)) : Buffer.concat([d, Buffer.alloc(len - d.length)]);
  node.mtimeMs = now();
}

export function utimesSync(p, atime, mtime) {
  const { node } = existing(p, 'utime');
  if (node.readonly) throw fsError('EPERM', 'utime', toPath(p));
  const ms = (t) => (t instanceof Date ? t.getTime() : typeof t === 'string' ? Date.parse(t) : Number(t) * 1000);
  node.atimeMs = ms(atime);
  node.mtimeMs = ms(mtime);
}
export const lutimesSync = utimesSync;

export function chmodSync(p, mode) {
  const { node } = existing(p, 'chmod');
  if (node.readonly) throw fsError('EPERM', 'chmod', toPath(p));
  node.mode = (node.mode & 0o170000) | (Number(typeof mode === 'string' ? parseInt(mode, 8) : mode) & 0o7777);
}
export const lchmodSync = chmodSync;
export function chownSync(p) {
  existing(p, 'chown');
}
export const lchownSync = chownSync;

// ---- file descriptors ----

const fds = new Map();
let nextFd = 3;

function fdEntry(fd, syscall) {
  const f = fds.get(fd);
  if (!f || f.rid !== io.requestId()) throw fsError('EBADF', syscall);
  return f;
}

function parseFlags(flags) {
  if (typeof flags === 'number') {
    const acc = flags & 3;
    return { read: acc !== 1, write: acc !== 0, create: !!(flags & 64), excl: !!(flags & 128), trunc: !!(flags & 512), append: !!(flags & 1024) };
  }
  const f = flags || 'r';
  return { read: f.includes('r') || f.includes('+'), write: !f.startsWith('r') || f.includes('+'), create: !f.startsWith('r'), excl: f.includes('x'), trunc: f.startsWith('w'), append: f.startsWith('a') };
}

export function openSync(p, flags = 'r', mode) {
  void mode;
  const fl = parseFlags(flags);
  const abs = resolvePath(p);
  let r = walk(abs, 'open');
  if (!r.node) {
    if (!fl.create) throw fsError('ENOENT', 'open', toPath(p));
    writeTo(p, Buffer.alloc(0), 'w', 'open');
    r = walk(abs, 'open');
  } else {
    if (fl.excl && fl.create) throw fsError('EEXIST', 'open', toPath(p));
    if (r.node.type === 'dir' && fl.write) throw fsError('EISDIR', 'open', toPath(p));
    if (fl.write && r.node.readonly) throw fsError('EPERM', 'open', toPath(p));
    if (fl.trunc && r.node.type === 'file') {
        r.node.data = Buffer.alloc(0);
    }
  }
  const fd = nextFd++;
  fds.set(fd, { node: r.node, path: abs, pos: 0, flags: fl, rid: io.requestId() });
  return fd;
}

export function closeSync(fd) {
  fdEntry(fd, 'close');
  fds.delete(fd);
}

function readFd(fd) {
  const f = fdEntry(fd, 'read');
  if (f.node.type === 'dev') return f.node.read(65536);
  const d = fileData(f.node);
  const out = d.subarray(f.pos);
  f.pos = d.length;
  return out;
}

export function readSync(fd, buffer, offsetOrOptions, length, position) {
  const f = fdEntry(fd, 'read');
  if (!f.flags.read) throw fsError('EBADF', 'read');
  let offset = offsetOrOptions;
  if (offsetOrOptions && typeof offsetOrOptions === 'object') ({ offset = 0, length, position } = offsetOrOptions);
  offset = offset || 0;
  if (length === undefined) length = buffer.byteLength - offset;
  if (f.node.type === 'dir') throw fsError('EISDIR', 'read');
  const usePos = typeof position === 'number' && position >= 0;
  let src;
  if (f.node.type === 'dev') {
    src = f.node.read(length);
  } else {
    const d = fileData(f.node);
    const start = usePos ? position : f.pos;
    src = d.subarray(start, start + length);
    if (!usePos) f.pos += src.length;
  }
  new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength).set(src, offset);
  return src.length;
}

export function writeSync(fd, data, offsetOrEncoding, length, position) {
  const f = fdEntry(fd, 'write');
  if (!f.flags.write) throw fsError('EBADF', 'write');
  let bytes;
  if (typeof data === 'string') {
    bytes = Buffer.from(data, typeof length === 'string' ? length : 'utf8');
    if (typeof offsetOrEncoding === 'number') position = offsetOrEncoding;
  } else {
    const off = typeof offsetOrEncoding === 'number' ? offsetOrEncoding : 0;
    const len = typeof length === 'number' ? length : data.byteLength - off;
    bytes = Buffer.from(data.buffer, data.byteOffset + off, len);
  }
  if (f.node.type === 'dev') return bytes.length;
  const d = fileData(f.node);
  const start = f.flags.append ? d.length : typeof position === 'number' && position >= 0 ? position : f.pos;
  const end = start + bytes.length;
  const out = end > d.length ? Buffer.concat([d, Buffer.alloc(end - d.length)]) : Buffer.from(d);
  out.set(bytes, start);
  f.node.data = out;
  f.node.mtimeMs = now();
  if (!(typeof position === 'number' && position >= 0) || f.flags.append) f.pos = end;
  return bytes.length;
}

export function fstatSync(fd, options) {
  return statResult(fdEntry(fd, 'fstat').node, options);
}
export function ftruncateSync(fd, len = 0) {
  truncateSync(fdEntry(fd, 'ftruncate').path, len);
}
export function fsyncSync(fd) {
  fdEntry(fd, 'fsync');
}
export const fdatasyncSync = fsyncSync;
export function futimesSync(fd, atime, mtime) {
  utimesSync(fdEntry(fd, 'futime').path, atime, mtime);
}
export function fchmodSync(fd, mode) {
  chmodSync(fdEntry(fd, 'fchmod').path, mode);
}
export function fchownSync(fd) {
  fdEntry(fd, 'fchown');
}

export function opendirSync(p) {
  const entries = readdirSync(p, { withFileTypes: true });
  let i = 0;
  const dir = {
    path: toPath(p),
    readSync: () => (i < entries.length ? entries[i++] : null),
    read: (cb) => {
      const v = i < entries.length ? entries[i++] : null;
      if (cb) queueMicrotask(() => cb(null, v));
      else return Promise.resolve(v);
    },
    closeSync() {},
    close: (cb) => (cb ? queueMicrotask(() => cb(null)) : Promise.resolve()),
    async *[Symbol.asyncIterator]() {
      while (i < entries.length) yield entries[i++];
    },
  };
  return dir;
}

function unsupported(name) {
  return function () {
    const e = new Error('fs.' + name + ' is not implemented in Workers');
    e.code = 'ERR_METHOD_NOT_IMPLEMENTED';
    throw e;
  };
}
export const watch = unsupported('watch');
export const watchFile = unsupported('watchFile');
export const unwatchFile = unsupported('unwatchFile');
export const globSync = unsupported('globSync');
export const glob = unsupported('glob');

// ---- callback and promise forms ----

function callbackify(fn) {
  return function (...args) {
    const cb = args.pop();
    if (typeof cb !== 'function') {
      const e = new TypeError('The "cb" argument must be of type function.' + received(cb));
      e.code = 'ERR_INVALID_ARG_TYPE';
      throw e;
    }
    let result;
    try {
      result = fn(...args);
    } catch (err) {
      queueMicrotask(() => cb(err));
      return;
    }
    queueMicrotask(() => cb(null, result));
  };
}

export const readFile = callbackify(readFileSync);
export const writeFile = callbackify(writeFileSync);
export const appendFile = callbackify(appendFileSync);
export const access = callbackify(accessSync);
export const stat = callbackify(statSync);
export const lstat = callbackify(lstatSync);
export const readdir = callbackify(readdirSync);
export const mkdir = callbackify(mkdirSync);
export const mkdtemp = callbackify(mkdtempSync);
export const unlink = callbackify(unlinkSync);
export const rmdir = callbackify(rmdirSync);
export const rm = callbackify(rmSync);
export const rename = callbackify(renameSync);
export const copyFile = callbackify(copyFileSync);
export const cp = callbackify(cpSync);
export const symlink = callbackify(symlinkSync);
export const readlink = callbackify(readlinkSync);
export const realpath = callbackify(realpathSync);
realpath.native = realpath;
export const truncate = callbackify(truncateSync);
export const utimes = callbackify(utimesSync);
export const lutimes = callbackify(lutimesSync);
export const chmod = callbackify(chmodSync);
export const lchmod = callbackify(lchmodSync);
export const chown = callbackify(chownSync);
export const lchown = callbackify(lchownSync);
export const open = callbackify(openSync);
export const close = callbackify(closeSync);
export const fstat = callbackify(fstatSync);
export const ftruncate = callbackify(ftruncateSync);
export const fsync = callbackify(fsyncSync);
export const fdatasync = callbackify(fdatasyncSync);
export const futimes = callbackify(futimesSync);
export const fchmod = callbackify(fchmodSync);
export const fchown = callbackify(fchownSync);
export const opendir = callbackify(opendirSync);
export function exists(p, cb) {
  const r = existsSync(p);
  queueMicrotask(() => cb(r));
}
export function read(fd, buffer, offset, length, position, cb) {
  if (typeof buffer === 'function') {
    cb = buffer;
    buffer = Buffer.alloc(16384);
    offset = 0;
    length = buffer.length;
    position = null;
  } else if (typeof offset === 'function') {
    cb = offset;
    offset = undefined;
  }
  let n;
  try {
    n = readSync(fd, buffer, offset, length, position);
  } catch (err) {
    queueMicrotask(() => cb(err));
    return;
  }
  queueMicrotask(() => cb(null, n, buffer));
}
export function write(fd, data, ...rest) {
  const cb = rest.pop();
  let n;
  try {
    n = writeSync(fd, data, ...rest);
  } catch (err) {
    queueMicrotask(() => cb(err));
    return;
  }
  queueMicrotask(() => cb(null, n, data));
}

export class FileHandle {
  constructor(fd) {
    this.fd = fd;
  }
  async readFile(options) {
    const f = fdEntry(this.fd, 'read');
    return decode(Buffer.from(f.node.type === 'dev' ? f.node.read(0) : fileData(f.node)), encodingOf(options));
  }
  async writeFile(data, options) {
    const f = fdEntry(this.fd, 'write');
    f.pos = 0;
    truncateSync(f.path, 0);
    writeSync(this.fd, dataBytes(data, options));
  }
  async appendFile(data, options) {
    appendFileSync(fdEntry(this.fd, 'write').path, data, options);
  }
  async read(buffer, offset, length, position) {
    if (!buffer || !ArrayBuffer.isView(buffer)) {
      const o = buffer || {};
      buffer = o.buffer || Buffer.alloc(16384);
      offset = o.offset;
      length = o.length;
      position = o.position;
    }
    const bytesRead = readSync(this.fd, buffer, offset, length, position);
    return { bytesRead, buffer };
  }
  async write(data, ...rest) {
    const bytesWritten = writeSync(this.fd, data, ...rest);
    return { bytesWritten, buffer: data };
  }
  async stat(options) {
    return fstatSync(this.fd, options);
  }
  async truncate(len) {
    ftruncateSync(this.fd, len);
  }
  async sync() {}
  async datasync() {}
  async utimes(a, m) {
    futimesSync(this.fd, a, m);
  }
  async chmod(mode) {
    fchmodSync(this.fd, mode);
  }
  async chown() {}
  async close() {
    if (fds.has(this.fd)) closeSync(this.fd);
  }
  async [Symbol.asyncDispose]() {
    await this.close();
  }
  createReadStream(options) {
    return createReadStream(null, { ...options, fd: this.fd });
  }
  createWriteStream(options) {
    return createWriteStream(null, { ...options, fd: this.fd });
  }
  readableWebStream() {
    return Readable.toWeb(this.createReadStream());
  }
}

function promisified(fn) {
  return async (...args) => fn(...args);
}

export const promises = {
  readFile: async (p, o) => (p instanceof FileHandle ? p.readFile(o) : readFileSync(p, o)),
  writeFile: async (p, d, o) => (p instanceof FileHandle ? p.writeFile(d, o) : writeFileSync(p, d, o)),
  appendFile: async (p, d, o) => (p instanceof FileHandle ? p.appendFile(d, o) : appendFileSync(p, d, o)),
  access: promisified(accessSync),
  stat: promisified(statSync),
  lstat: promisified(lstatSync),
  readdir: promisified(readdirSync),
  mkdir: promisified(mkdirSync),
  mkdtemp: promisified(mkdtempSync),
  unlink: promisified(unlinkSync),
  rmdir: promisified(rmdirSync),
  rm: promisified(rmSync),
  rename: promisified(renameSync),
  copyFile: promisified(copyFileSync),
  cp: promisified(cpSync),
  symlink: promisified(symlinkSync),
  readlink: promisified(readlinkSync),
  realpath: promisified(realpathSync),
  truncate: promisified(truncateSync),
  utimes: promisified(utimesSync),
  lutimes: promisified(lutimesSync),
  chmod: promisified(chmodSync),
  lchmod: promisified(lchmodSync),
  chown: promisified(chownSync),
  lchown: promisified(lchownSync),
  opendir: promisified(opendirSync),
  open: async (p, flags, mode) => new FileHandle(openSync(p, flags, mode)),
  watch: unsupported('promises.watch'),
  glob: unsupported('promises.glob'),
  constants,
};

// ---- streams ----

export function ReadStream(p, options) {
  if (!(this instanceof ReadStream)) return new ReadStream(p, options);
  const o = typeof options === 'string' ? { encoding: options } : options || {};
  Readable.call(this, { highWaterMark: o.highWaterMark || 65536, encoding: o.encoding, emitClose: o.emitClose !== false, autoDestroy: o.autoDestroy !== false });
  this.path = p === null ? undefined : toPath(p);
  this.fd = o.fd === undefined ? null : typeof o.fd === 'object' ? o.fd.fd : o.fd;
  this.flags = o.flags || 'r';
  this.start = o.start;
  this.end = o.end === undefined ? Infinity : o.end;
  this.pos = this.start;
  this.bytesRead = 0;
  this.autoClose = o.autoClose !== false;
  this.pending = true;
}
Object.setPrototypeOf(ReadStream.prototype, Readable.prototype);
ReadStream.prototype._construct = function (cb) {
  try {
    if (this.fd === null) this.fd = openSync(this.path, this.flags);
    this.pending = false;
    this.emit('open', this.fd);
    this.emit('ready');
    cb();
  } catch (e) {
    cb(e);
  }
};
ReadStream.prototype._read = function (n) {
  const max = this.end === Infinity ? n : Math.min(n, this.end - (this.pos ?? 0) + 1 - (this.pos === undefined ? this.bytesRead : 0));
  if (max <= 0) {
    this.push(null);
    return;
  }
  const buf = Buffer.alloc(max);
  let read;
  try {
    read = readSync(this.fd, buf, 0, max, this.pos === undefined ? null : this.pos);
  } catch (e) {
    this.destroy(e);
    return;
  }
  if (this.pos !== undefined) this.pos += read;
  this.bytesRead += read;
  this.push(read > 0 ? buf.subarray(0, read) : null);
};
ReadStream.prototype._destroy = function (err, cb) {
  if (this.autoClose && this.fd !== null && fds.has(this.fd)) fds.delete(this.fd);
  cb(err);
};
ReadStream.prototype.close = function (cb) {
  if (typeof cb === 'function') this.once('close', cb);
  this.destroy();
};

export function WriteStream(p, options) {
  if (!(this instanceof WriteStream)) return new WriteStream(p, options);
  const o = typeof options === 'string' ? { encoding: options } : options || {};
  Writable.call(this, { highWaterMark: o.highWaterMark, decodeStrings: true, defaultEncoding: o.encoding || 'utf8', emitClose: o.emitClose !== false });
  this.path = p === null ? undefined : toPath(p);
  this.fd = o.fd === undefined ? null : typeof o.fd === 'object' ? o.fd.fd : o.fd;
  this.flags = o.flags || 'w';
  this.pos = o.start;
  this.bytesWritten = 0;
  this.autoClose = o.autoClose !== false;
  this.pending = true;
}
Object.setPrototypeOf(WriteStream.prototype, Writable.prototype);
WriteStream.prototype._construct = ReadStream.prototype._construct;
WriteStream.prototype._write = function (chunk, encoding, cb) {
  try {
    const n = writeSync(this.fd, chunk, 0, chunk.length, this.pos === undefined ? null : this.pos);
    if (this.pos !== undefined) this.pos += n;
    this.bytesWritten += n;
    cb();
  } catch (e) {
    cb(e);
  }
};
WriteStream.prototype._destroy = ReadStream.prototype._destroy;
WriteStream.prototype.close = function (cb) {
  if (typeof cb === 'function') this.once('close', cb);
  if (!this.writableEnded) this.end();
  else this.destroy();
};

export function createReadStream(p, options) {
  return new ReadStream(p, options);
}
export function createWriteStream(p, options) {
  return new WriteStream(p, options);
}

const fs = {
  constants, F_OK, R_OK, W_OK, X_OK, Stats, Dirent, FileHandle, ReadStream, WriteStream, promises,
  readFileSync, writeFileSync, appendFileSync, existsSync, accessSync, statSync, lstatSync, readdirSync,
  mkdirSync, mkdtempSync, unlinkSync, rmdirSync, rmSync, renameSync, copyFileSync, cpSync, symlinkSync,
  readlinkSync, realpathSync, truncateSync, utimesSync, lutimesSync, chmodSync, lchmodSync, chownSync,
  lchownSync, openSync, closeSync, readSync, writeSync, fstatSync, ftruncateSync, fsyncSync, fdatasyncSync,
  futimesSync, fchmodSync, fchownSync, opendirSync, readFile, writeFile, appendFile, access, stat, lstat,
  readdir, mkdir, mkdtemp, unlink, rmdir, rm, rename, copyFile, cp, symlink, readlink, realpath, truncate,
  utimes, lutimes, chmod, lchmod, chown, lchown, open, close, fstat, ftruncate, fsync, fdatasync, futimes,
  fchmod, fchown, opendir, exists, read, write, createReadStream, createWriteStream, watch, watchFile,
  unwatchFile, glob, globSync,
};
export default fs;
export { fs as 'module.exports' };
