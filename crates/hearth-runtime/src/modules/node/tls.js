// node:tls: client connections as workerd offers them, a net.Socket opened
// over cloudflare:sockets with secureTransport 'on' (the certificate is
// checked against the runtime's roots, and the connection fails when it
// does not verify). Servers cannot listen in a worker, and upgrading an
// already-open plain socket (tls.connect({ socket })) is not available yet.
import { Socket } from 'node:net';

function notImplemented(what) {
  const e = new Error('The ' + what + ' method is not implemented');
  e.code = 'ERR_METHOD_NOT_IMPLEMENTED';
  return e;
}

export const CLIENT_RENEG_LIMIT = 3;
export const CLIENT_RENEG_WINDOW = 600;
export const DEFAULT_CIPHERS = '';
export const DEFAULT_ECDH_CURVE = 'auto';
export const DEFAULT_MIN_VERSION = 'TLSv1.2';
export const DEFAULT_MAX_VERSION = 'TLSv1.3';
export const rootCertificates = Object.freeze([]);

export class SecureContext {
  constructor(options) {
    this.context = {};
    this.options = options || {};
  }
}
export function createSecureContext(options) {
  return new SecureContext(options);
}

export function TLSSocket(socket, options) {
  if (!(this instanceof TLSSocket)) return new TLSSocket(socket, options);
  if (socket) throw notImplemented('tls.TLSSocket over an existing socket (upgrade)');
  Socket.call(this, options);
  this.encrypted = true;
  this.authorized = false;
  this.authorizationError = null;
  this.alpnProtocol = false;
  this.servername = (options && options.servername) || undefined;
  this.once('connect', () => {
    // The handshake verified the certificate before 'connect'.
    this.authorized = true;
    this.emit('secureConnect');
  });
}
Object.setPrototypeOf(TLSSocket.prototype, Socket.prototype);
Object.setPrototypeOf(TLSSocket, Socket);
TLSSocket.prototype.getPeerCertificate = function () {
  return {};
};
TLSSocket.prototype.getCipher = function () {
  return undefined;
};
TLSSocket.prototype.getProtocol = function () {
  return null;
};
TLSSocket.prototype.getSession = function () {
  return undefined;
};
TLSSocket.prototype.isSessionReused = function () {
  return false;
};
TLSSocket.prototype.setServername = function (name) {
  this.servername = name;
};

// tls.connect(options[, cb]) / (port[, host][, options][, cb]).
export function connect(...args) {
  let options = {};
  let cb;
  const rest = [];
  for (const a of args) {
    if (typeof a === 'function') cb = a;
    else if (a !== null && typeof a === 'object') options = { ...options, ...a };
    else rest.push(a);
  }
  if (rest.length > 0) options.port = rest[0];
  if (rest.length > 1) options.host = rest[1];
  if (options.socket) throw notImplemented('tls.connect({ socket }) (upgrading an open socket)');
  if (options.rejectUnauthorized === false) {
    const e = new Error('The rejectUnauthorized: false option is not supported: Workers always verify the server certificate');
    e.code = 'ERR_OPTION_NOT_IMPLEMENTED';
    throw e;
  }
  const socket = new TLSSocket(null, options);
  if (cb) socket.once('secureConnect', cb);
  return socket.connect({ ...options, secureTransport: 'on' });
}

export function checkServerIdentity() {
  // The runtime checks the host name during the handshake.
  return undefined;
}
export function convertALPNProtocols(protocols, out) {
  const list = Array.isArray(protocols) ? protocols : [];
  const bytes = [];
  for (const p of list) {
    const b = new TextEncoder().encode(String(p));
    bytes.push(b.length, ...b);
  }
  if (out) out.ALPNProtocols = new Uint8Array(bytes);
}
export function getCiphers() {
  return ['tls_aes_128_gcm_sha256', 'tls_aes_256_gcm_sha384', 'tls_chacha20_poly1305_sha256'];
}
export function createServer() {
  // workerd's wording: a worker cannot listen on a port.
  const e = new Error('Not implemented');
  e.code = 'ERR_METHOD_NOT_IMPLEMENTED';
  throw e;
}
export function Server() {
  return createServer();
}
export function createSecurePair() {
  throw notImplemented('createSecurePair');
}

const tls = {
  CLIENT_RENEG_LIMIT, CLIENT_RENEG_WINDOW, DEFAULT_CIPHERS, DEFAULT_ECDH_CURVE, DEFAULT_MIN_VERSION,
  DEFAULT_MAX_VERSION, rootCertificates, SecureContext, Server, TLSSocket, connect, createSecureContext,
  createServer, checkServerIdentity, convertALPNProtocols, getCiphers, createSecurePair,
};
export default tls;
