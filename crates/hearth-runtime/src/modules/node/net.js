// node:net — outbound TCP as workerd has it: net.Socket / net.connect over
// cloudflare:sockets' connect() (a Duplex stream with Node's events:
// 'connect', 'ready', 'data', 'end', 'close', 'error', 'timeout'). Servers
// cannot listen in a worker; createServer() says so, as in workerd.
import { Duplex } from 'node:stream';
import { Buffer } from 'node:buffer';
import { nextTick } from 'node:process';

const cfConnect = globalThis[Symbol.for('hearth.sockets.connect')];

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
export function isIPv4(s) {
  return typeof s === 'string' && IPV4.test(s);
}
export function isIPv6(s) {
  if (typeof s !== 'string' || !s.includes(':')) return false;
  try {
    return new URL('http://[' + s + ']/').hostname.length > 2;
  } catch {
    return false;
  }
}
export function isIP(s) {
  return isIPv4(s) ? 4 : isIPv6(s) ? 6 : 0;
}

function splitAddress(a) {
  const i = typeof a === 'string' ? a.lastIndexOf(':') : -1;
  if (i < 0) return [undefined, undefined];
  let host = a.slice(0, i);
  if (host.startsWith('[')) host = host.slice(1, -1);
  return [host, Number(a.slice(i + 1))];
}

// connect(options[, cb]), connect(port[, host][, cb]), connect(path) is not
// possible (no IPC in workers).
function normalize(args) {
  let [a, b, c] = args;
  let cb;
  let options;
  if (a !== null && typeof a === 'object') {
    options = { ...a };
    cb = typeof b === 'function' ? b : undefined;
  } else {
    options = { port: a };
    if (typeof b === 'function') cb = b;
    else {
      options.host = b;
      if (typeof c === 'function') cb = c;
    }
  }
  if (options.path !== undefined) {
    const e = new Error('IPC connections (options.path) are not supported in Workers');
    e.code = 'ERR_METHOD_NOT_IMPLEMENTED';
    throw e;
  }
  const port = Number(options.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    const e = new RangeError('Port should be >= 0 and < 65536. Received ' + options.port + '.');
    e.code = 'ERR_SOCKET_BAD_PORT';
    throw e;
  }
  return { options: { ...options, port, host: options.host || 'localhost' }, cb };
}

export function Socket(options) {
  if (!(this instanceof Socket)) return new Socket(options);
  const o = options || {};
  Duplex.call(this, { ...o, allowHalfOpen: !!o.allowHalfOpen, emitClose: true, autoDestroy: true, decodeStrings: true });
  this.connecting = false;
  this.bytesRead = 0;
  this._written = 0;
  this._cf = null;
  this._writer = null;
  this._resume = null;
  this._timeout = 0;
  this._timer = null;
  this.remoteAddress = undefined;
  this.remotePort = undefined;
  this.remoteFamily = undefined;
  this.localAddress = undefined;
  this.localPort = undefined;
}
Object.setPrototypeOf(Socket.prototype, Duplex.prototype);
Object.setPrototypeOf(Socket, Duplex);

Object.defineProperty(Socket.prototype, 'bytesWritten', { get() { return this._written; }, configurable: true });
Object.defineProperty(Socket.prototype, 'pending', { get() { return !this._cf || this.connecting; }, configurable: true });
Object.defineProperty(Socket.prototype, 'readyState', {
  get() {
    if (this.connecting) return 'opening';
    if (this.readable && this.writable) return 'open';
    if (this.readable) return 'readOnly';
    if (this.writable) return 'writeOnly';
    return 'closed';
  },
  configurable: true,
});

Socket.prototype.connect = function (...args) {
  const { options, cb } = normalize(args);
  if (cb) this.once('connect', cb);
  this.connecting = true;
  let cf;
  try {
    cf = cfConnect({ hostname: options.host, port: options.port }, { allowHalfOpen: true, secureTransport: options.secureTransport || 'off' });
  } catch (err) {
    nextTick(() => this.destroy(err));
    return this;
  }
  this._cf = cf;
  this._writer = cf.writable.getWriter();
  cf.opened.then(
    (info) => {
      this.connecting = false;
      [this.remoteAddress, this.remotePort] = splitAddress(info.remoteAddress);
      [this.localAddress, this.localPort] = splitAddress(info.localAddress);
      this.remoteFamily = isIPv6(this.remoteAddress) ? 'IPv6' : 'IPv4';
      this._touch();
      this.emit('connect');
      this.emit('ready');
      this._pump(cf.readable.getReader());
    },
    (err) => this.destroy(err),
  );
  return this;
};

Socket.prototype._pump = async function (reader) {
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) {
        this.push(null);
        return;
      }
      this.bytesRead += value.length;
      this._touch();
      if (!this.push(Buffer.from(value.buffer, value.byteOffset, value.byteLength))) {
        await new Promise((resolve) => {
          this._resume = resolve;
        });
      }
    }
  } catch (err) {
    this.destroy(err);
  }
};

Socket.prototype._read = function () {
  const resume = this._resume;
  this._resume = null;
  if (resume) resume();
};

Socket.prototype._write = function (chunk, encoding, callback) {
  if (this.connecting) {
    this.once('connect', () => this._write(chunk, encoding, callback));
    return;
  }
  if (!this._writer) {
    const e = new Error('This socket is not connected');
    e.code = 'ERR_SOCKET_CLOSED';
    callback(e);
    return;
  }
  this._writer.write(chunk).then(() => {
    this._written += chunk.length;
    this._touch();
    callback();
  }, callback);
};

Socket.prototype._final = function (callback) {
  if (this.connecting) {
    this.once('connect', () => this._final(callback));
    return;
  }
  if (!this._writer) return callback();
  this._writer.close().then(() => callback(), () => callback());
};

Socket.prototype._destroy = function (err, callback) {
  clearTimeout(this._timer);
  if (this._cf) this._cf.close().catch(() => {});
  this.connecting = false;
  callback(err);
};

Socket.prototype._touch = function () {
  if (!this._timeout) return;
  clearTimeout(this._timer);
  this._timer = setTimeout(() => this.emit('timeout'), this._timeout);
};

Socket.prototype.setTimeout = function (ms, callback) {
  this._timeout = ms;
  if (callback) this.once('timeout', callback);
  if (ms === 0) clearTimeout(this._timer);
  else this._touch();
  return this;
};
Socket.prototype.setNoDelay = function () {
  return this;
};
Socket.prototype.setKeepAlive = function () {
  return this;
};
Socket.prototype.ref = function () {
  return this;
};
Socket.prototype.unref = function () {
  return this;
};
Socket.prototype.address = function () {
  return this.localAddress === undefined ? {} : { address: this.localAddress, port: this.localPort, family: isIPv6(this.localAddress) ? 'IPv6' : 'IPv4' };
};
Socket.prototype.resetAndDestroy = function () {
  return this.destroy();
};

export function connect(...args) {
  const { options } = normalize(args);
  const socket = new Socket(options);
  return socket.connect(...args);
}
export const createConnection = connect;

function noServers() {
  const e = new Error('net servers are not supported in Workers: a worker cannot listen on a port');
  e.code = 'ERR_METHOD_NOT_IMPLEMENTED';
  throw e;
}
export function createServer() {
  noServers();
}
export function Server() {
  noServers();
}

let autoSelect = true;
export function getDefaultAutoSelectFamily() {
  return autoSelect;
}
export function setDefaultAutoSelectFamily(v) {
  autoSelect = !!v;
}
export function getDefaultAutoSelectFamilyAttemptTimeout() {
  return 250;
}
export function setDefaultAutoSelectFamilyAttemptTimeout() {}

export const Stream = Socket;
const net = {
  Socket, Stream, connect, createConnection, createServer, Server, isIP, isIPv4, isIPv6,
  getDefaultAutoSelectFamily, setDefaultAutoSelectFamily, getDefaultAutoSelectFamilyAttemptTimeout,
  setDefaultAutoSelectFamilyAttemptTimeout,
};
export default net;
export { net as 'module.exports' };
