// node:http (and node:https) as workerd has them: the client
// (request/get, ClientRequest, IncomingMessage) runs over fetch(); the
// server side (createServer, ServerResponse) serves requests that
// cloudflare:node's httpServerHandler() hands it, as a worker cannot
// listen on a port. listen() registers the server under its port for
// httpServerHandler({ port }).
import { Readable, Writable } from 'node:stream';
import { EventEmitter } from 'node:events';
import { Buffer } from 'node:buffer';
import { nextTick } from 'node:process';

export const METHODS = [
  'ACL', 'BIND', 'CHECKOUT', 'CONNECT', 'COPY', 'DELETE', 'GET', 'HEAD', 'LINK', 'LOCK', 'M-SEARCH', 'MERGE',
  'MKACTIVITY', 'MKCALENDAR', 'MKCOL', 'MOVE', 'NOTIFY', 'OPTIONS', 'PATCH', 'POST', 'PROPFIND', 'PROPPATCH',
  'PURGE', 'PUT', 'QUERY', 'REBIND', 'REPORT', 'SEARCH', 'SOURCE', 'SUBSCRIBE', 'TRACE', 'UNBIND', 'UNLINK',
  'UNLOCK', 'UNSUBSCRIBE',
];

export const STATUS_CODES = {
  100: 'Continue', 101: 'Switching Protocols', 102: 'Processing', 103: 'Early Hints', 200: 'OK', 201: 'Created',
  202: 'Accepted', 203: 'Non-Authoritative Information', 204: 'No Content', 205: 'Reset Content',
  206: 'Partial Content', 207: 'Multi-Status', 208: 'Already Reported', 226: 'IM Used', 300: 'Multiple Choices',
  301: 'Moved Permanently', 302: 'Found', 303: 'See Other', 304: 'Not Modified', 305: 'Use Proxy',
  307: 'Temporary Redirect', 308: 'Permanent Redirect', 400: 'Bad Request', 401: 'Unauthorized',
  402: 'Payment Required', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed', 406: 'Not Acceptable',
  407: 'Proxy Authentication Required', 408: 'Request Timeout', 409: 'Conflict', 410: 'Gone',
  411: 'Length Required', 412: 'Precondition Failed', 413: 'Payload Too Large', 414: 'URI Too Long',
  415: 'Unsupported Media Type', 416: 'Range Not Satisfiable', 417: 'Expectation Failed', 418: "I'm a Teapot",
  421: 'Misdirected Request', 422: 'Unprocessable Entity', 423: 'Locked', 424: 'Failed Dependency',
  425: 'Too Early', 426: 'Upgrade Required', 428: 'Precondition Required', 429: 'Too Many Requests',
  431: 'Request Header Fields Too Large', 451: 'Unavailable For Legal Reasons', 500: 'Internal Server Error',
  501: 'Not Implemented', 502: 'Bad Gateway', 503: 'Service Unavailable', 504: 'Gateway Timeout',
  505: 'HTTP Version Not Supported', 506: 'Variant Also Negotiates', 507: 'Insufficient Storage',
  508: 'Loop Detected', 509: 'Bandwidth Limit Exceeded', 510: 'Not Extended', 511: 'Network Authentication Required',
};

const TOKEN = /^[\^_`a-zA-Z\-0-9!#$%&'*+.|~]+$/;
export function validateHeaderName(name) {
  if (typeof name !== 'string' || !TOKEN.test(name)) {
    const e = new TypeError('Header name must be a valid HTTP token ["' + name + '"]');
    e.code = 'ERR_INVALID_HTTP_TOKEN';
    throw e;
  }
}
export function validateHeaderValue(name, value) {
  if (value === undefined) {
    const e = new TypeError('Invalid value "undefined" for header "' + name + '"');
    e.code = 'ERR_HTTP_INVALID_HEADER_VALUE';
    throw e;
  }
  if (/[^\t\x20-\x7e\x80-\xff]/.test(String(value))) {
    const e = new TypeError('Invalid character in header content ["' + name + '"]');
    e.code = 'ERR_INVALID_CHAR';
    throw e;
  }
}

export const maxHeaderSize = 16384;

export class Agent extends EventEmitter {
  constructor(options) {
    super();
    this.options = { ...options };
    this.keepAlive = !!(options && options.keepAlive);
    this.maxSockets = (options && options.maxSockets) || Infinity;
    this.maxFreeSockets = (options && options.maxFreeSockets) || 256;
    this.sockets = {};
    this.freeSockets = {};
    this.requests = {};
  }
  destroy() {}
}
export const globalAgent = new Agent();

// Headers as Node gives them: lower-case names; set-cookie as an array,
// other repeats joined with ", ".
function headersFrom(headers) {
  const out = Object.create(null);
  const raw = [];
  for (const [k, v] of headers) {
    raw.push(k, v);
    if (k === 'set-cookie') continue;
    out[k] = v;
  }
  const cookies = typeof headers.getSetCookie === 'function' ? headers.getSetCookie() : [];
  if (cookies.length) {
    out['set-cookie'] = cookies;
    for (let i = 0; i < raw.length; i += 2) if (raw[i] === 'set-cookie') raw.splice(i, 2), (i -= 2);
    for (const c of cookies) raw.push('set-cookie', c);
  }
  return { headers: out, rawHeaders: raw };
}

// ---- IncomingMessage: a response (client) or a request (server) ----

export function IncomingMessage(socket) {
  if (!(this instanceof IncomingMessage)) return new IncomingMessage(socket);
  Readable.call(this);
  this.socket = socket || null;
  this.connection = this.socket;
  this.httpVersion = '1.1';
  this.httpVersionMajor = 1;
  this.httpVersionMinor = 1;
  this.headers = {};
  this.rawHeaders = [];
  this.trailers = {};
  this.rawTrailers = [];
  this.method = null;
  this.url = '';
  this.statusCode = null;
  this.statusMessage = null;
  this.complete = false;
  this.aborted = false;
  this._reader = null;
  this._reading = false;
}
Object.setPrototypeOf(IncomingMessage.prototype, Readable.prototype);
Object.setPrototypeOf(IncomingMessage, Readable);

IncomingMessage.prototype._read = function () {
  if (!this._reader) {
    this.complete = true;
    this.push(null);
    return;
  }
  if (this._reading) return;
  this._reading = true;
  this._reader.read().then(
    ({ value, done }) => {
      this._reading = false;
      if (done) {
        this.complete = true;
        this.push(null);
      } else {
        this.push(Buffer.from(value.buffer, value.byteOffset, value.byteLength));
      }
    },
    (err) => {
      this._reading = false;
      this.aborted = true;
      this.destroy(err);
    },
  );
};
IncomingMessage.prototype._destroy = function (err, cb) {
  if (this._reader && !this.complete) this._reader.cancel(err).catch(() => {});
  cb(err);
};
IncomingMessage.prototype.setTimeout = function (ms, cb) {
  if (cb) this.once('timeout', cb);
  return this;
};

// ---- outgoing messages: header bookkeeping shared by both sides ----

function OutgoingHeaders(self) {
  self._headers = new Map();
}
const headerMethods = {
  setHeader(name, value) {
    if (this.headersSent) {
      const e = new Error('Cannot set headers after they are sent to the client');
      e.code = 'ERR_HTTP_HEADERS_SENT';
      throw e;
    }
    validateHeaderName(name);
    validateHeaderValue(name, value);
    this._headers.set(String(name).toLowerCase(), [name, value]);
    return this;
  },
  appendHeader(name, value) {
    const key = String(name).toLowerCase();
    const old = this._headers.get(key);
    if (!old) return this.setHeader(name, value);
    const list = Array.isArray(old[1]) ? old[1] : [old[1]];
    this._headers.set(key, [old[0], list.concat(value)]);
    return this;
  },
  getHeader(name) {
    const h = this._headers.get(String(name).toLowerCase());
    return h ? h[1] : undefined;
  },
  getHeaders() {
    const out = Object.create(null);
    for (const [k, [, v]] of this._headers) out[k] = v;
    return out;
  },
  getHeaderNames() {
    return [...this._headers.keys()];
  },
  getRawHeaderNames() {
    return [...this._headers.values()].map(([n]) => n);
  },
  hasHeader(name) {
    return this._headers.has(String(name).toLowerCase());
  },
  removeHeader(name) {
    if (this.headersSent) {
      const e = new Error('Cannot remove headers after they are sent to the client');
      e.code = 'ERR_HTTP_HEADERS_SENT';
      throw e;
    }
    this._headers.delete(String(name).toLowerCase());
  },
  flushHeaders() {},
  _webHeaders() {
    const h = new Headers();
    for (const [, [name, value]] of this._headers) {
      if (Array.isArray(value)) for (const v of value) h.append(name, String(v));
      else h.set(name, String(value));
    }
    return h;
  },
};

function chunkBytes(chunk, encoding) {
  return typeof chunk === 'string' ? Buffer.from(chunk, encoding) : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
}

// ---- the client ----

function requestArgs(input, options, cb) {
  let opts = {};
  if (typeof input === 'string' || input instanceof URL) {
    const u = new URL(String(input));
    opts = { protocol: u.protocol, hostname: u.hostname, port: u.port, path: u.pathname + u.search, auth: u.username ? decodeURIComponent(u.username) + ':' + decodeURIComponent(u.password) : undefined };
    if (typeof options === 'function') cb = options;
    else if (options) opts = { ...opts, ...options };
  } else {
    opts = { ...input };
    if (typeof options === 'function') cb = options;
  }
  return { opts, cb };
}

export function ClientRequest(input, options, cb, defaultProtocol = 'http:') {
  if (!(this instanceof ClientRequest)) return new ClientRequest(input, options, cb, defaultProtocol);
  const { opts, cb: callback } = requestArgs(input, options, cb);
  Writable.call(this);
  OutgoingHeaders(this);
  const protocol = opts.protocol || defaultProtocol;
  if (protocol !== 'http:' && protocol !== 'https:') {
    const e = new TypeError('Protocol "' + protocol + '" not supported. Expected "' + defaultProtocol + '"');
    e.code = 'ERR_INVALID_PROTOCOL';
    throw e;
  }
  const host = opts.hostname || (opts.host ? String(opts.host).replace(/:\d+$/, '') : 'localhost');
  const port = opts.port ? ':' + opts.port : '';
  this.method = String(opts.method || 'GET').toUpperCase();
  this.path = opts.path || '/';
  this.host = host;
  this.protocol = protocol;
  this._url = protocol + '//' + (host.includes(':') ? '[' + host + ']' : host) + port + this.path;
  this.headersSent = false;
  this.aborted = false;
  this.reusedSocket = false;
  this.maxHeadersCount = null;
  this._body = [];
  this._controller = new AbortController();
  this._timeoutMs = opts.timeout;
  if (opts.headers) {
    const entries = Array.isArray(opts.headers) ? pairs(opts.headers) : Object.entries(opts.headers);
    for (const [k, v] of entries) if (v !== undefined) this.setHeader(k, v);
  }
  if (opts.auth && !this.hasHeader('authorization')) this.setHeader('Authorization', 'Basic ' + Buffer.from(opts.auth).toString('base64'));
  if (opts.signal) {
    if (opts.signal.aborted) nextTick(() => this.destroy(abortError()));
    else opts.signal.addEventListener('abort', () => this.destroy(abortError()), { once: true });
  }
  if (callback) this.once('response', callback);
}
Object.setPrototypeOf(ClientRequest.prototype, Writable.prototype);
Object.setPrototypeOf(ClientRequest, Writable);
Object.assign(ClientRequest.prototype, headerMethods);

function pairs(flat) {
  const out = [];
  for (let i = 0; i + 1 < flat.length; i += 2) out.push([flat[i], flat[i + 1]]);
  return out;
}

function abortError() {
  const e = new Error('The operation was aborted');
  e.name = 'AbortError';
  e.code = 'ABORT_ERR';
  return e;
}

ClientRequest.prototype._write = function (chunk, encoding, callback) {
  this._body.push(chunkBytes(chunk, encoding));
  callback();
};

ClientRequest.prototype._final = function (callback) {
  this.headersSent = true;
  const body = this._body.length ? Buffer.concat(this._body) : undefined;
  const noBody = this.method === 'GET' || this.method === 'HEAD';
  const init = { method: this.method, headers: this._webHeaders(), redirect: 'manual', signal: this._controller.signal };
  if (body !== undefined && !noBody) init.body = body;
  let timer;
  if (this._timeoutMs) timer = setTimeout(() => this.emit('timeout'), this._timeoutMs);
  fetch(this._url, init).then(
    (response) => {
      clearTimeout(timer);
      const res = new IncomingMessage(null);
      res.statusCode = response.status;
      res.statusMessage = response.statusText || STATUS_CODES[response.status] || '';
      const { headers, rawHeaders } = headersFrom(response.headers);
      res.headers = headers;
      res.rawHeaders = rawHeaders;
      res.url = response.url;
      res._reader = response.body ? response.body.getReader() : null;
      res.req = this;
      this.res = res;
      if (!this.emit('response', res)) res.resume();
      callback();
    },
    (err) => {
      clearTimeout(timer);
      callback(err);
    },
  );
};

ClientRequest.prototype._destroy = function (err, cb) {
  if (!this.res) this._controller.abort();
  cb(err);
};
ClientRequest.prototype.abort = function () {
  if (this.aborted) return;
  this.aborted = true;
  this.emit('abort');
  this.destroy();
};
ClientRequest.prototype.setTimeout = function (ms, cb) {
  this._timeoutMs = ms;
  if (cb) this.once('timeout', cb);
  return this;
};
ClientRequest.prototype.setNoDelay = function () {};
ClientRequest.prototype.setSocketKeepAlive = function () {};

export function request(input, options, cb) {
  return new ClientRequest(input, options, cb, 'http:');
}
export function get(input, options, cb) {
  const req = request(input, options, cb);
  req.end();
  return req;
}

// ---- the server ----

export function ServerResponse(req) {
  if (!(this instanceof ServerResponse)) return new ServerResponse(req);
  Writable.call(this);
  OutgoingHeaders(this);
  this.req = req;
  this.statusCode = 200;
  this.statusMessage = undefined;
  this.headersSent = false;
  this.sendDate = true;
  this.finished = false;
  this._respond = null;
  this._writer = null;
}
Object.setPrototypeOf(ServerResponse.prototype, Writable.prototype);
Object.setPrototypeOf(ServerResponse, Writable);
Object.assign(ServerResponse.prototype, headerMethods);

ServerResponse.prototype.writeHead = function (statusCode, reason, headers) {
  if (this.headersSent) {
    const e = new Error('Cannot write headers after they are sent to the client');
    e.code = 'ERR_HTTP_HEADERS_SENT';
    throw e;
  }
  if (typeof reason !== 'string') {
    headers = reason;
    reason = undefined;
  }
  if (!Number.isInteger(statusCode) || statusCode < 100 || statusCode > 999) {
    const e = new RangeError('Invalid status code: ' + statusCode);
    e.code = 'ERR_HTTP_INVALID_STATUS_CODE';
    throw e;
  }
  this.statusCode = statusCode;
  if (reason !== undefined) this.statusMessage = reason;
  if (headers) {
    const entries = Array.isArray(headers) ? (Array.isArray(headers[0]) ? headers : pairs(headers)) : Object.entries(headers);
    for (const [k, v] of entries) this.setHeader(k, v);
  }
  return this;
};

// The response head goes out with the first body bytes (or the end).
ServerResponse.prototype._sendHead = function () {
  if (this.headersSent) return;
  this.headersSent = true;
  const status = this.statusCode;
  const nullBody = status === 204 || status === 304 || (status >= 100 && status < 200) || (this.req && this.req.method === 'HEAD');
  const headers = this._webHeaders();
  if (this.sendDate && !headers.has('date')) headers.set('date', new Date().toUTCString());
  let body = null;
  if (!nullBody) {
    const { readable, writable } = new TransformStream();
    this._writer = writable.getWriter();
    body = readable;
  }
  this._respond(new Response(body, { status, statusText: this.statusMessage || STATUS_CODES[status] || '', headers }));
};

ServerResponse.prototype._write = function (chunk, encoding, callback) {
  this._sendHead();
  if (!this._writer) return callback();
  this._writer.write(chunkBytes(chunk, encoding)).then(() => callback(), callback);
};

ServerResponse.prototype._final = function (callback) {
  this._sendHead();
  this.finished = true;
  if (!this._writer) return callback();
  this._writer.close().then(() => callback(), callback);
};

ServerResponse.prototype._destroy = function (err, callback) {
  if (this._writer) this._writer.abort(err).catch(() => {});
  callback(err);
};

ServerResponse.prototype.writeContinue = function () {};
ServerResponse.prototype.writeProcessing = function () {};
ServerResponse.prototype.addTrailers = function () {};
ServerResponse.prototype.setTimeout = function () {
  return this;
};

const servers = new Map();

export class Server extends EventEmitter {
  constructor(options, requestListener) {
    super();
    if (typeof options === 'function') {
      requestListener = options;
      options = {};
    }
    if (requestListener) this.on('request', requestListener);
    this.listening = false;
    this._port = null;
    this.timeout = 0;
    this.keepAliveTimeout = 5000;
    this.headersTimeout = 60000;
    this.requestTimeout = 300000;
    this.maxHeadersCount = null;
  }
  // No socket is opened: the port names the server for httpServerHandler.
  listen(...args) {
    let port = args[0];
    if (port && typeof port === 'object') port = port.port;
    const cb = args.find((a) => typeof a === 'function');
    port = port === undefined || port === null ? 0 : Number(port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      const e = new RangeError('options.port should be >= 0 and < 65536. Received ' + args[0] + '.');
      e.code = 'ERR_SOCKET_BAD_PORT';
      throw e;
    }
    if (port === 0) {
      port = 10000;
      while (servers.has(port)) port++;
    }
    if (servers.has(port) && servers.get(port) !== this) {
      const e = new Error('listen EADDRINUSE: address already in use :::' + port);
      e.code = 'EADDRINUSE';
      e.errno = -98;
      e.syscall = 'listen';
      e.port = port;
      nextTick(() => this.emit('error', e));
      return this;
    }
    servers.set(port, this);
    this._port = port;
    this.listening = true;
    nextTick(() => {
      this.emit('listening');
      if (cb) cb();
    });
    return this;
  }
  address() {
    return this.listening ? { address: '::', family: 'IPv6', port: this._port } : null;
  }
  close(cb) {
    if (this._port !== null && servers.get(this._port) === this) servers.delete(this._port);
    this.listening = false;
    nextTick(() => {
      this.emit('close');
      if (cb) cb();
    });
    return this;
  }
  closeAllConnections() {}
  closeIdleConnections() {}
  setTimeout(ms, cb) {
    this.timeout = ms;
    if (cb) this.on('timeout', cb);
    return this;
  }
  ref() {
    return this;
  }
  unref() {
    return this;
  }
}

export function createServer(options, requestListener) {
  return new Server(options, requestListener);
}

// Serves a fetch Request with `server`: an IncomingMessage reading the
// request body, a ServerResponse whose head resolves the Response.
function serve(server, request) {
  return new Promise((resolve, reject) => {
    const url = new URL(request.url);
    const socket = { remoteAddress: request.headers.get('cf-connecting-ip') || '127.0.0.1', remotePort: 0, encrypted: url.protocol === 'https:', destroy() {}, setTimeout() {}, on() { return this; }, once() { return this; } };
    const req = new IncomingMessage(socket);
    req.method = request.method;
    req.url = url.pathname + url.search;
    const { headers, rawHeaders } = headersFrom(request.headers);
    if (!headers.host) {
      headers.host = url.host;
      rawHeaders.push('host', url.host);
    }
    req.headers = headers;
    req.rawHeaders = rawHeaders;
    req._reader = request.body ? request.body.getReader() : null;
    const res = new ServerResponse(req);
    res.socket = res.connection = socket;
    res._respond = resolve;
    res.on('error', (err) => {
      if (!res.headersSent) reject(err);
    });
    try {
      if (server.listenerCount('request') === 0) throw new Error('The node:http server has no request listener');
      server.emit('request', req, res);
    } catch (err) {
      reject(err);
    }
  });
}

// cloudflare:node's httpServerHandler: a worker handler object serving
// with the server given, or with the one listening on `port`.
function httpServerHandler(target) {
  const find = () => {
    if (target instanceof Server) return target;
    const port = target && typeof target === 'object' ? target.port : target;
    const server = servers.get(Number(port));
    if (!server) throw new Error('httpServerHandler: no node:http server is listening on port ' + port);
    return server;
  };
  return {
    fetch(request) {
      return serve(find(), request);
    },
  };
}

Object.defineProperty(globalThis, Symbol.for('hearth.node.httpServerHandler'), { value: httpServerHandler });

const http = {
  METHODS, STATUS_CODES, Agent, globalAgent, ClientRequest, IncomingMessage, ServerResponse, Server,
  OutgoingMessage: Writable, request, get, createServer, validateHeaderName, validateHeaderValue, maxHeaderSize,
  setMaxIdleHTTPParsers() {},
};
export default http;
export { http as 'module.exports' };
