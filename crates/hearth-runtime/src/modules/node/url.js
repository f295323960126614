import { received } from 'hearth:node-internal';
// node:url — the WHATWG URL classes, file URL helpers, and the legacy
// parse/format/resolve API for the common shapes.
import querystring from 'node:querystring';

export const URL = globalThis.URL;
export const URLSearchParams = globalThis.URLSearchParams;

function invalidArg(name, expected, value) {
  const e = new TypeError('The "' + name + '" argument must be ' + expected + '.' + received(value));
  e.code = 'ERR_INVALID_ARG_TYPE';
  return e;
}

export function fileURLToPath(path) {
  let url = path;
  if (typeof path === 'string') url = new URL(path);
  else if (!(path instanceof URL)) throw invalidArg('path', 'of type string or an instance of URL', path);
  if (url.protocol !== 'file:') {
    const e = new TypeError('The URL must be of scheme file');
    e.code = 'ERR_INVALID_URL_SCHEME';
    throw e;
  }
  if (url.hostname !== '') {
    const e = new TypeError('File URL host must be "localhost" or empty on linux');
    e.code = 'ERR_INVALID_FILE_URL_HOST';
    throw e;
  }
  const pathname = url.pathname;
  if (/%2f/i.test(pathname)) {
    const e = new TypeError('File URL path must not include encoded / characters');
    e.code = 'ERR_INVALID_FILE_URL_PATH';
    throw e;
  }
  return decodeURIComponent(pathname);
}

export function pathToFileURL(filepath) {
  if (typeof filepath !== 'string') throw invalidArg('path', 'of type string', filepath);
  let resolved = filepath.startsWith('/') ? filepath : '/' + filepath;
  // Collapse `.` and `..` as path.resolve would.
  const parts = [];
  for (const seg of resolved.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') parts.pop();
    else parts.push(seg);
  }
  resolved = '/' + parts.join('/') + (filepath.endsWith('/') && parts.length ? '/' : '');
  const encoded = resolved.replace(/[%\\\n\r\t#?]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0'));
  return new URL('file://' + encoded);
}

export function urlToHttpOptions(url) {
  const options = {
    protocol: url.protocol,
    hostname: url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname,
    hash: url.hash,
    search: url.search,
    pathname: url.pathname,
    path: (url.pathname || '') + (url.search || ''),
    href: url.href,
  };
  if (url.port !== '') options.port = Number(url.port);
  if (url.username || url.password) options.auth = decodeURIComponent(url.username) + ':' + decodeURIComponent(url.password);
  return options;
}

export function domainToASCII(domain) {
  try {
    return new URL('http://' + domain).hostname;
  } catch {
    return '';
  }
}
export function domainToUnicode(domain) {
  return domainToASCII(domain);
}

export function Url() {
  this.protocol = null;
  this.slashes = null;
  this.auth = null;
  this.host = null;
  this.port = null;
  this.hostname = null;
  this.hash = null;
  this.search = null;
  this.query = null;
  this.pathname = null;
  this.path = null;
  this.href = null;
}

const slashedProtocols = new Set(['http:', 'https:', 'ftp:', 'gopher:', 'file:', 'ws:', 'wss:']);

export function parse(url, parseQueryString = false, slashesDenoteHost = false) {
  if (url instanceof Url) return url;
  if (typeof url !== 'string') throw invalidArg('url', 'of type string', url);
  const u = new Url();
  let rest = url.trim();
  const hashAt = rest.indexOf('#');
  if (hashAt >= 0) {
    u.hash = rest.slice(hashAt);
    rest = rest.slice(0, hashAt);
  }
  const qAt = rest.indexOf('?');
  if (qAt >= 0) {
    u.search = rest.slice(qAt);
    u.query = rest.slice(qAt + 1);
    rest = rest.slice(0, qAt);
  } else if (parseQueryString) {
    u.search = '';
    u.query = {};
  }
  if (parseQueryString && typeof u.query === 'string') u.query = querystring.parse(u.query);
  const proto = /^([a-z0-9.+-]+:)/i.exec(rest);
  if (proto) {
    u.protocol = proto[1].toLowerCase();
    rest = rest.slice(proto[1].length);
  }
  if (rest.startsWith('//') && (slashesDenoteHost || proto) && u.protocol !== 'javascript:') {
    u.slashes = true;
    rest = rest.slice(2);
    let end = rest.indexOf('/');
    if (end < 0) end = rest.length;
    let host = rest.slice(0, end);
    rest = rest.slice(end);
    const at = host.lastIndexOf('@');
    if (at >= 0) {
      u.auth = decodeURIComponent(host.slice(0, at));
      host = host.slice(at + 1);
    }
    const portMatch = /:(\d*)$/.exec(host);
    if (portMatch) {
      if (portMatch[1]) u.port = portMatch[1];
      host = host.slice(0, host.length - portMatch[0].length);
    }
    u.hostname = host.toLowerCase().replace(/^\[(.*)\]$/, '$1');
    u.host = (host.toLowerCase()) + (u.port ? ':' + u.port : '');
    if (!rest && slashedProtocols.has(u.protocol)) rest = '/';
  }
  u.pathname = rest || (u.slashes && slashedProtocols.has(u.protocol) ? '/' : null);
  if (u.pathname === null && u.search === null && !u.host) u.pathname = rest || null;
  u.path = (u.pathname || '') + (u.search || '') || null;
  u.href = format(u);
  return u;
}

export function format(obj, options) {
  if (typeof obj === 'string') obj = parse(obj);
  if (obj instanceof URL) {
    const o = { auth: true, fragment: true, search: true, unicode: false, ...options };
    let s = obj.protocol + (obj.host || obj.protocol === 'file:' ? '//' : '');
    if (o.auth && (obj.username || obj.password)) s += obj.username + (obj.password ? ':' + obj.password : '') + '@';
    s += obj.host + obj.pathname;
    if (o.search) s += obj.search;
    if (o.fragment) s += obj.hash;
    return s;
  }
  if (obj === null || typeof obj !== 'object') throw invalidArg('urlObject', 'one of type object or string', obj);
  let auth = obj.auth || '';
  if (auth) auth = encodeURIComponent(auth).replace(/%3A/i, ':') + '@';
  let protocol = obj.protocol || '';
  let pathname = obj.pathname || '';
  let hash = obj.hash || '';
  let host = '';
  let query = '';
  if (obj.host) host = auth + obj.host;
  else if (obj.hostname) {
    host = auth + (obj.hostname.includes(':') ? '[' + obj.hostname + ']' : obj.hostname);
    if (obj.port) host += ':' + obj.port;
  }
  if (obj.query !== null && typeof obj.query === 'object') query = querystring.stringify(obj.query);
  let search = obj.search || (query && '?' + query) || '';
  if (protocol && !protocol.endsWith(':')) protocol += ':';
  if (obj.slashes || ((!protocol || slashedProtocols.has(protocol)) && host)) {
    host = '//' + host;
    if (pathname && pathname[0] !== '/') pathname = '/' + pathname;
  }
  if (hash && hash[0] !== '#') hash = '#' + hash;
  if (search && search[0] !== '?') search = '?' + search;
  pathname = pathname.replace(/[?#]/g, encodeURIComponent);
  search = search.replace('#', '%23');
  return protocol + host + pathname + search + hash;
}

export function resolve(from, to) {
  try {
    const base = new URL(from, 'resolve://');
    const out = new URL(to, base);
    if (out.protocol === 'resolve:') {
      const { pathname, search, hash } = out;
      return pathname + search + hash;
    }
    return out.toString();
  } catch {
    return to;
  }
}

const url = {
  URL, URLSearchParams, fileURLToPath, pathToFileURL, urlToHttpOptions, domainToASCII, domainToUnicode,
  Url, parse, format, resolve,
};
export default url;
export { url as 'module.exports' };
