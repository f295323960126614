import { received } from 'hearth:node-internal';
// node:dns/promises as workerd has it: lookups and queries are answered by
// Cloudflare's DNS-over-HTTPS JSON API (cloudflare-dns.com) through fetch;
// the server list is fixed, and lookupService / resolveAny are not
// implemented. Errors are Node's DnsError shape: code, syscall, hostname and
// the message "<syscall> <code> <hostname>".
import { isIP } from 'node:net';

export const NODATA = 'ENODATA';
export const FORMERR = 'EFORMERR';
export const SERVFAIL = 'ESERVFAIL';
export const NOTFOUND = 'ENOTFOUND';
export const NOTIMP = 'ENOTIMP';
export const REFUSED = 'EREFUSED';
export const BADQUERY = 'EBADQUERY';
export const BADNAME = 'EBADNAME';
export const BADFAMILY = 'EBADFAMILY';
export const BADRESP = 'EBADRESP';
export const CONNREFUSED = 'ECONNREFUSED';
export const TIMEOUT = 'ETIMEOUT';
export const EOF = 'EOF';
export const FILE = 'EFILE';
export const NOMEM = 'ENOMEM';
export const DESTRUCTION = 'EDESTRUCTION';
export const BADSTR = 'EBADSTR';
export const BADFLAGS = 'EBADFLAGS';
export const NONAME = 'ENONAME';
export const BADHINTS = 'EBADHINTS';
export const NOTINITIALIZED = 'ENOTINITIALIZED';
export const LOADIPHLPAPI = 'ELOADIPHLPAPI';
export const ADDRGETNETWORKPARAMS = 'EADDRGETNETWORKPARAMS';
export const CANCELLED = 'ECANCELLED';
export const ADDRCONFIG = 1024;
export const V4MAPPED = 2048;
export const ALL = 256;

const SERVERS = ['1.1.1.1', '2606:4700:4700::1111', '1.0.0.1', '2606:4700:4700::1001'];
const ORDERS = ['verbatim', 'ipv4first', 'ipv6first'];
let defaultOrder = 'verbatim';

function nodeError(Ctor, code, message) {
  const e = new Ctor(message);
  e.code = code;
  return e;
}
function dnsError(hostname, code, syscall) {
  const e = nodeError(Error, code, syscall + ' ' + code + ' ' + hostname);
  e.errno = undefined;
  e.hostname = hostname;
  e.syscall = syscall;
  return e;
}
function validateString(value, name) {
  if (typeof value !== 'string') {
    throw nodeError(TypeError, 'ERR_INVALID_ARG_TYPE', 'The "' + name + '" argument must be of type string.' + received(value));
  }
}
function validateOneOf(value, name, allowed) {
  if (!allowed.includes(value)) {
    const list = allowed.map((v) => (typeof v === 'string' ? "'" + v + "'" : String(v))).join(', ');
    throw nodeError(TypeError, 'ERR_INVALID_ARG_VALUE', (name.includes('.') ? "The property '" : "The argument '") + name + "' must be one of: " + list + '. Received ' + (typeof value === 'string' ? "'" + value + "'" : String(value)));
  }
}
function notImplemented() {
  return new Error('Not implemented');
}

const syscallFor = (type) => 'query' + type[0] + type.slice(1).toLowerCase();

// One DNS-over-HTTPS query; resolves to the JSON answer.
async function query(name, type) {
  const syscall = syscallFor(type);
  const url = new URL('https://cloudflare-dns.com/dns-query');
  url.searchParams.set('name', name);
  url.searchParams.set('type', type);
  let json;
  try {
    const res = await fetch(url, { headers: { accept: 'application/dns-json' } });
    if (!res.ok) throw dnsError(name, BADRESP, syscall);
    json = await res.json();
  } catch (e) {
    throw e && e.syscall === syscall ? e : dnsError(name, BADQUERY, syscall);
  }
  if (!json || typeof json !== 'object' || 'error' in json || !Array.isArray(json.Question) || json.Question.length === 0) {
    throw dnsError(name, BADRESP, syscall);
  }
  if (json.Answer == null || (json.Answer[0] && json.Answer[0].name === '')) {
    throw dnsError(name, NOTFOUND, syscall);
  }
  return json.Answer;
}

const trimDot = (s) => (typeof s === 'string' && s.endsWith('.') ? s.slice(0, -1) : s);
const fields = (name, data, n, syscall) => {
  const parts = String(data).split(' ');
  if (parts.length < n) throw dnsError(name, BADRESP, syscall);
  return parts;
};

export async function resolve4(name, options) {
  validateString(name, 'name');
  const ttl = !!(options && options.ttl);
  return (await query(name, 'A')).map((a) => (ttl ? { ttl: a.TTL, address: a.data } : a.data));
}
export async function resolve6(name, options) {
  validateString(name, 'name');
  const ttl = !!(options && options.ttl);
  return (await query(name, 'AAAA')).map((a) => (ttl ? { ttl: a.TTL, address: a.data } : a.data));
}
export async function resolveCname(name) {
  validateString(name, 'name');
  return (await query(name, 'CNAME')).map((a) => trimDot(a.data));
}
export async function resolveNs(name) {
  validateString(name, 'name');
  return (await query(name, 'NS')).map((a) => trimDot(a.data));
}
export async function resolvePtr(name) {
  validateString(name, 'name');
  return (await query(name, 'PTR')).map((a) => trimDot(a.data));
}
export async function reverse(name) {
  validateString(name, 'name');
  return (await query(name, 'PTR')).map((a) => trimDot(a.data));
}
export async function resolveMx(name) {
  validateString(name, 'name');
  return (await query(name, 'MX')).map((a) => {
    const [priority, exchange] = fields(name, a.data, 2, 'queryMx');
    return { exchange: trimDot(exchange), priority: parseInt(priority, 10) };
  });
}
export async function resolveTxt(name) {
  validateString(name, 'name');
  // The JSON API quotes each character-string: "\"a\" \"b\"" is ['a', 'b'].
  return (await query(name, 'TXT')).map((a) => {
    const out = [];
    const re = /"((?:[^"\\]|\\.)*)"/g;
    let m;
    while ((m = re.exec(a.data)) !== null) out.push(m[1].replace(/\\(.)/g, '$1'));
    return out.length ? out : [String(a.data)];
  });
}
export async function resolveSrv(name) {
  validateString(name, 'name');
  return (await query(name, 'SRV')).map((a) => {
    const [priority, weight, port, target] = fields(name, a.data, 4, 'querySrv');
    return { priority: parseInt(priority, 10), weight: parseInt(weight, 10), port: parseInt(port, 10), name: target };
  });
}
export async function resolveSoa(name) {
  validateString(name, 'name');
  const first = (await query(name, 'SOA'))[0];
  if (!first) throw dnsError(name, NOTFOUND, 'querySoa');
  const [nsname, hostmaster, serial, refresh, retry, expire, minttl] = fields(name, first.data, 7, 'querySoa');
  const n = (s) => parseInt(s, 10);
  return { nsname, hostmaster, serial: n(serial), refresh: n(refresh), retry: n(retry), expire: n(expire), minttl: n(minttl) };
}
export async function resolveCaa(name) {
  validateString(name, 'name');
  // The JSON API gives CAA as "<flags> <tag> <value>" (the value quoted).
  return (await query(name, 'CAA')).map((a) => {
    const m = /^(\d+)\s+(\S+)\s+"?(.*?)"?$/.exec(String(a.data));
    if (!m) throw dnsError(name, BADRESP, 'queryCaa');
    return { critical: parseInt(m[1], 10), [m[2]]: m[3] };
  });
}
export async function resolveNaptr(name) {
  validateString(name, 'name');
  return (await query(name, 'NAPTR')).map((a) => {
    const m = /^(\d+)\s+(\d+)\s+"([^"]*)"\s+"([^"]*)"\s+"([^"]*)"\s+(\S+)$/.exec(String(a.data));
    if (!m) throw dnsError(name, BADRESP, 'queryNaptr');
    return { order: +m[1], preference: +m[2], flags: m[3], service: m[4], regexp: m[5], replacement: trimDot(m[6]) };
  });
}
export async function resolveAny() {
  throw notImplemented();
}
export async function lookupService() {
  throw notImplemented();
}

const BY_TYPE = {
  A: resolve4, AAAA: resolve6, ANY: resolveAny, CAA: resolveCaa, CNAME: resolveCname, MX: resolveMx,
  NAPTR: resolveNaptr, NS: resolveNs, PTR: resolvePtr, SOA: resolveSoa, SRV: resolveSrv, TXT: resolveTxt,
};
export function resolve(name, rrtype = 'A') {
  validateString(name, 'name');
  const fn = BY_TYPE[rrtype];
  if (!fn) throw nodeError(TypeError, 'ERR_INVALID_ARG_VALUE', "The argument 'rrtype' is invalid. Received '" + rrtype + "'");
  return fn(name);
}

// Resolves to [address, family] or, with `all`, a list of {address, family}.
async function lookupInternal(hostname, options) {
  let family = 0;
  let all = false;
  let order = defaultOrder;
  if (typeof options === 'number') {
    validateOneOf(options, 'family', [0, 4, 6]);
    family = options;
  } else if (options != null && typeof options === 'object') {
    if (options.hints != null) {
      throw nodeError(Error, 'ERR_OPTION_NOT_IMPLEMENTED', 'The options.hints option is not implemented');
    }
    if (options.family != null) {
      family = options.family === 'IPv4' ? 4 : options.family === 'IPv6' ? 6 : options.family;
      validateOneOf(family, 'options.family', [0, 4, 6]);
    }
    if (options.all != null) all = !!options.all;
    if (options.verbatim != null) order = options.verbatim ? 'verbatim' : 'ipv4first';
    if (options.order != null) {
      validateOneOf(options.order, 'options.order', ORDERS);
      order = options.order;
    }
  }
  if (!hostname) return all ? [[]] : [null, family === 6 ? 6 : 4];
  const literal = isIP(hostname);
  if (literal) return all ? [[{ address: hostname, family: literal }]] : [hostname, literal];
  if (all && family === 0) {
    const [v4, v6] = await Promise.all([
      query(hostname, 'A').catch(() => []),
      query(hostname, 'AAAA').catch(() => []),
    ]);
    const a4 = v4.map((a) => ({ address: a.data, family: 4 }));
    const a6 = v6.map((a) => ({ address: a.data, family: 6 }));
    if (a4.length + a6.length === 0) throw dnsError(hostname, NOTFOUND, 'queryA');
    return [order === 'ipv6first' ? [...a6, ...a4] : [...a4, ...a6]];
  }
  const type = family === 6 ? 'AAAA' : 'A';
  const fam = family === 6 ? 6 : 4;
  const answers = await query(hostname, type);
  return all ? [answers.map((a) => ({ address: a.data, family: fam }))] : [answers[0] && answers[0].data, fam];
}
export async function lookup(hostname, options) {
  validateString(hostname, 'hostname');
  const [address, family] = await lookupInternal(hostname, options);
  return Array.isArray(address) ? address : { address, family };
}

export const getServers = () => [...SERVERS];
export function setServers() {
  throw notImplemented();
}
export function getDefaultResultOrder() {
  return defaultOrder;
}
export function setDefaultResultOrder(value) {
  validateOneOf(value, 'dnsOrder', ORDERS);
  defaultOrder = value;
}

export class Resolver {
  cancel() {}
  getServers() { return getServers(); }
  setServers() { throw notImplemented(); }
  setLocalAddress() {}
  resolve(name, rrtype) { return resolve(name, rrtype); }
  resolve4(name, o) { return resolve4(name, o); }
  resolve6(name, o) { return resolve6(name, o); }
  resolveAny() { return resolveAny(); }
  resolveCaa(name) { return resolveCaa(name); }
  resolveCname(name) { return resolveCname(name); }
  resolveMx(name) { return resolveMx(name); }
  resolveNaptr(name) { return resolveNaptr(name); }
  resolveNs(name) { return resolveNs(name); }
  resolvePtr(name) { return resolvePtr(name); }
  resolveSoa(name) { return resolveSoa(name); }
  resolveSrv(name) { return resolveSrv(name); }
  resolveTxt(name) { return resolveTxt(name); }
  reverse(name) { return reverse(name); }
}

// What node:dns (the callback forms) shares with this module, kept off the
// module's own exports.
Object.defineProperty(Resolver, Symbol.for('hearth.dns.internal'), {
  value: { lookupInternal, validateString, notImplemented },
});

const promises = {
  NODATA, FORMERR, SERVFAIL, NOTFOUND, NOTIMP, REFUSED, BADQUERY, BADNAME, BADFAMILY, BADRESP, CONNREFUSED,
  TIMEOUT, EOF, FILE, NOMEM, DESTRUCTION, BADSTR, BADFLAGS, NONAME, BADHINTS, NOTINITIALIZED, LOADIPHLPAPI,
  ADDRGETNETWORKPARAMS, CANCELLED, ADDRCONFIG, V4MAPPED, ALL, Resolver, getDefaultResultOrder, getServers,
  lookup, lookupService, resolve, resolve4, resolve6, resolveAny, resolveCaa, resolveCname, resolveMx,
  resolveNaptr, resolveNs, resolvePtr, resolveSoa, resolveSrv, resolveTxt, reverse, setDefaultResultOrder,
  setServers,
};
export default promises;
