import os, { constants, EOL, setPriority } from 'node:os';
import dns from 'node:dns';
import dnsPromises from 'node:dns/promises';
import { Resolver } from 'node:dns/promises';
import module, { createRequire, isBuiltin, builtinModules } from 'node:module';

// A double for Cloudflare's DNS-over-HTTPS JSON API: node:dns reaches it
// through the global fetch, so the worker swaps fetch while these run.
const asked = [];
function dohDouble(answers) {
  globalThis.fetch = async (input, init) => {
    const url = new URL(String(input));
    asked.push([url.origin + url.pathname, url.searchParams.get('name'), url.searchParams.get('type'), new Headers(init && init.headers).get('accept')]);
    const key = url.searchParams.get('name') + ' ' + url.searchParams.get('type');
    if (key in answers) {
      const a = answers[key];
      if (a === 500) return new Response('down', { status: 500 });
      return Response.json({ Status: 0, Question: [{ name: url.searchParams.get('name'), type: 1 }], Answer: a });
    }
    return Response.json({ Status: 3, Question: [{ name: url.searchParams.get('name'), type: 1 }] });
  };
}

async function run() {
  // node:os: fixed, neutral answers (a Worker has no host to describe).
  eq('os values', [os.arch(), os.platform(), os.type(), os.machine(), os.endianness(), os.hostname(), os.homedir(), os.tmpdir()], ['x64', 'linux', 'Linux', 'x86_64', 'LE', 'localhost', '/tmp/', '/tmp/']);
  eq('os no figures', [os.cpus(), os.freemem(), os.totalmem(), os.loadavg(), os.networkInterfaces(), os.uptime(), os.userInfo(), os.release(), os.version()], [[], 0, 0, [0, 0, 0], {}, 0, {}, '', '']);
  eq('os constants', [EOL, os.devNull, constants.signals.SIGTERM, constants.signals.SIGKILL, constants.errno.ENOENT, constants.priority.PRIORITY_HIGHEST, os.availableParallelism()], ['\n', '/dev/null', 15, 9, 2, -20, 1]);
  eq('os priority', [os.getPriority(), setPriority(0, 5), os.getPriority(0)], [0, undefined, 0]);
  throwsLike('setPriority without pid', () => setPriority(), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE', message: 'The "pid" argument must be of type number. Received undefined' });
  throwsLike('getPriority with a string', () => os.getPriority('1'), { code: 'ERR_INVALID_ARG_TYPE', message: "The \"pid\" argument must be of type number. Received type string ('1')" });

  // node:dns: literals and empty names need no query.
  const lookup = (...a) => new Promise((res) => dns.lookup(...a, (e, addr, fam) => res(e ? { code: e.code } : [addr, fam])));
  eq('lookup literal', [await lookup('10.0.0.1'), await lookup('::1'), await lookup('')], [['10.0.0.1', 4], ['::1', 6], [null, 4]]);
  eq('lookup all literal', await dnsPromises.lookup('10.0.0.1', { all: true }), [{ address: '10.0.0.1', family: 4 }]);
  eq('servers', dns.getServers(), ['1.1.1.1', '2606:4700:4700::1111', '1.0.0.1', '2606:4700:4700::1001']);
  throwsLike('setServers', () => dns.setServers(['8.8.8.8']), { message: 'Not implemented' });
  throwsLike('lookup without callback', () => dns.lookup('x'), { code: 'ERR_INVALID_ARG_TYPE' });
  throwsLike('bad rrtype', () => dnsPromises.resolve('a.test', 'NOPE'), { code: 'ERR_INVALID_ARG_VALUE', message: "The argument 'rrtype' is invalid. Received 'NOPE'" });
  throwsLike('bad result order', () => dns.setDefaultResultOrder('random'), { code: 'ERR_INVALID_ARG_VALUE' });
  eq('result order', [dns.getDefaultResultOrder(), dns.setDefaultResultOrder('ipv4first'), dns.getDefaultResultOrder()], ['verbatim', undefined, 'ipv4first']);
  dns.setDefaultResultOrder('verbatim');
  eq('promises is the module', dns.promises.resolve4 === dnsPromises.resolve4, true);

  // Queries go to the DNS-over-HTTPS JSON API and are shaped as Node's.
  const realFetch = globalThis.fetch;
  try {
    dohDouble({
      'a.test A': [{ name: 'a.test', type: 1, TTL: 60, data: '192.0.2.1' }, { name: 'a.test', type: 1, TTL: 60, data: '192.0.2.2' }],
      'a.test AAAA': [{ name: 'a.test', type: 28, TTL: 30, data: '2001:db8::1' }],
      'a.test MX': [{ name: 'a.test', type: 15, TTL: 60, data: '10 mx.a.test.' }],
      'a.test TXT': [{ name: 'a.test', type: 16, TTL: 60, data: '"v=spf1 -all" "second"' }],
      'a.test SRV': [{ name: 'a.test', type: 33, TTL: 60, data: '5 0 443 srv.a.test' }],
      'a.test CNAME': [{ name: 'a.test', type: 5, TTL: 60, data: 'b.test.' }],
      'a.test SOA': [{ name: 'a.test', type: 6, TTL: 60, data: 'ns.a.test. admin.a.test. 2024010101 7200 3600 1209600 300' }],
      'down.test A': 500,
    });
    eq('resolve4', await dnsPromises.resolve4('a.test'), ['192.0.2.1', '192.0.2.2']);
    eq('query sent', asked[0], ['https://cloudflare-dns.com/dns-query', 'a.test', 'A', 'application/dns-json']);
    eq('resolve4 ttl', await dnsPromises.resolve4('a.test', { ttl: true }), [{ ttl: 60, address: '192.0.2.1' }, { ttl: 60, address: '192.0.2.2' }]);
    eq('resolve6', await dnsPromises.resolve('a.test', 'AAAA'), ['2001:db8::1']);
    eq('resolveMx', await dnsPromises.resolveMx('a.test'), [{ exchange: 'mx.a.test', priority: 10 }]);
    eq('resolveTxt', await dnsPromises.resolveTxt('a.test'), [['v=spf1 -all', 'second']]);
    eq('resolveSrv', await dnsPromises.resolveSrv('a.test'), [{ priority: 5, weight: 0, port: 443, name: 'srv.a.test' }]);
    eq('resolveCname', await dnsPromises.resolveCname('a.test'), ['b.test']);
    eq('resolveSoa', await dnsPromises.resolveSoa('a.test'), { nsname: 'ns.a.test.', hostmaster: 'admin.a.test.', serial: 2024010101, refresh: 7200, retry: 3600, expire: 1209600, minttl: 300 });
    eq('lookup name', await lookup('a.test'), ['192.0.2.1', 4]);
    eq('lookup all', await lookup('a.test', { all: true }), [[{ address: '192.0.2.1', family: 4 }, { address: '192.0.2.2', family: 4 }, { address: '2001:db8::1', family: 6 }], undefined]);
    eq('lookup family 6', await lookup('a.test', { family: 6 }), ['2001:db8::1', 6]);
    eq('callback form', await new Promise((res) => dns.resolve4('a.test', (e, a) => res([e, a]))), [null, ['192.0.2.1', '192.0.2.2']]);
    const notFound = await dnsPromises.resolve4('none.test').catch((e) => [e.code, e.syscall, e.hostname, e.message]);
    eq('no answer', notFound, ['ENOTFOUND', 'queryA', 'none.test', 'queryA ENOTFOUND none.test']);
    eq('server error', await dnsPromises.resolve4('down.test').catch((e) => e.code), 'EBADRESP');
    eq('lookup not found', await lookup('none.test'), { code: 'ENOTFOUND' });
    eq('Resolver', await new Resolver().resolve4('a.test'), ['192.0.2.1', '192.0.2.2']);
    globalThis.fetch = async () => { throw new TypeError('network down'); };
    eq('network failure', await dnsPromises.resolveMx('a.test').catch((e) => e.message), 'queryMx EBADQUERY a.test');
  } finally {
    globalThis.fetch = realFetch;
  }
  eq('resolveAny', await dnsPromises.resolveAny('a.test').catch((e) => e.message), 'Not implemented');
  eq('lookupService', await new Promise((res) => dns.lookupService('127.0.0.1', 22, (e) => res(e.message))), 'Not implemented');

  // node:module.
  eq('isBuiltin', ['fs', 'node:fs', 'fs/promises', 'node:anything', 'nope', 'cloudflare:sockets'].map(isBuiltin), [true, true, true, true, false, false]);
  eq('builtinModules', [builtinModules.includes('os'), builtinModules.includes('node:os'), builtinModules.length], [true, false, 68]);
  const require = createRequire('file:///bundle/index.js');
  eq('require built-ins', [typeof require('node:buffer').Buffer, require('path').join('a', 'b'), typeof require('events')], ['function', 'a/b', 'function']);
  throwsLike('require a file', () => createRequire('/bundle/src/index.js')('./x.js'), { message: 'No such module "bundle/src/x.js".' });
  throwsLike('createRequire of a relative path', () => createRequire('x.js'), { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' });
  throwsLike('loader hooks', () => module.register('x'), { code: 'ERR_METHOD_NOT_IMPLEMENTED', message: 'The module.register method is not implemented' });
  eq('default is Module', [module === module.Module, typeof module.createRequire, module.wrap('x')], [true, 'function', '(function (exports, require, module, __filename, __dirname) { x\n});']);
}
