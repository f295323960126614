import path, { posix, win32, join } from 'node:path';
import pathPosix from 'node:path/posix';
import pathWin32 from 'node:path/win32';
import { StringDecoder } from 'node:string_decoder';
import url, { URL as NodeURL, URLSearchParams as NodeUSP, fileURLToPath, pathToFileURL } from 'node:url';
import querystring from 'node:querystring';

async function run() {
  // path, with the examples of Node's documentation
  eq('join', path.join('/foo', 'bar', 'baz/asdf', 'quux', '..'), '/foo/bar/baz/asdf');
  eq('join empty', [path.join(), path.join(''), path.join('a', '')], ['.', '.', 'a']);
  throwsLike('join non-string', () => path.join('foo', {}, 'bar'), { code: 'ERR_INVALID_ARG_TYPE' });
  eq('resolve', [path.resolve('/foo/bar', './baz'), path.resolve('/foo/bar', '/tmp/file/'), path.resolve('a', '../b')], ['/foo/bar/baz', '/tmp/file', '/b']);
  eq('resolve from cwd /', path.resolve(), '/');
  eq('normalize', [path.normalize('/foo/bar//baz/asdf/quux/..'), path.normalize('./a/../../b/'), path.normalize(''), path.normalize('//')], ['/foo/bar/baz/asdf', '../b/', '.', '/']);
  eq('isAbsolute', [path.isAbsolute('/foo'), path.isAbsolute('qux/'), path.isAbsolute('.'), path.isAbsolute('')], [true, false, false, false]);
  eq('relative', [path.relative('/data/orandea/test/aaa', '/data/orandea/impl/bbb'), path.relative('/a', '/a'), path.relative('/a/b', '/a')], ['../../impl/bbb', '', '..']);
  eq('dirname', [path.dirname('/foo/bar/baz/asdf/quux'), path.dirname('/a'), path.dirname('a'), path.dirname('/a/b/'), path.dirname('/')], ['/foo/bar/baz/asdf', '/', '.', '/a', '/']);
  eq('basename', [path.basename('/foo/bar/baz/asdf/quux.html'), path.basename('/foo/bar/baz/asdf/quux.html', '.html'), path.basename('/a/b/'), path.basename('aaa', 'aaa')], ['quux.html', 'quux', 'b', 'aaa']);
  eq('extname', [path.extname('index.html'), path.extname('index.coffee.md'), path.extname('index.'), path.extname('index'), path.extname('.index'), path.extname('.index.md')], ['.html', '.md', '.', '', '', '.md']);
  eq('parse', path.parse('/home/user/dir/file.txt'), { root: '/', dir: '/home/user/dir', base: 'file.txt', ext: '.txt', name: 'file' });
  eq('parse relative', path.parse('file'), { root: '', dir: '', base: 'file', ext: '', name: 'file' });
  eq('format', [path.format({ root: '/ignored', dir: '/home/user/dir', base: 'file.txt' }), path.format({ root: '/', base: 'file.txt', ext: 'ignored' }), path.format({ root: '/', name: 'file', ext: 'txt' })], ['/home/user/dir/file.txt', '/file.txt', '/file.txt']);
  eq('sep and delimiter', [path.sep, path.delimiter], ['/', ':']);
  eq('posix is path', [path.posix === path, posix === path, pathPosix === path, join === path.join], [true, true, true, true]);
  eq('win32 is posix here', [win32.join('a', 'b'), pathWin32 === path], ['a/b', true]);
  eq('matchesGlob', [path.matchesGlob('/a/b/c.js', '/a/**/*.js'), path.matchesGlob('/a/b.ts', '/a/*.js')], [true, false]);

  // string_decoder: multi-byte characters split across writes
  const d = new StringDecoder('utf8');
  const euro = Buffer.from('€');
  eq('utf8 split character', [d.write(euro.subarray(0, 1)), d.write(euro.subarray(1, 2)), d.write(euro.subarray(2))], ['', '', '€']);
  eq('end flushes an incomplete character', [d.write(Buffer.from([0xe2, 0x82])), d.end()], ['', '\ufffd']);
  const u16 = new StringDecoder('utf16le');
  eq('utf16le odd byte', [u16.write(Buffer.from([0x61])), u16.write(Buffer.from([0x00, 0x62])), u16.end(Buffer.from([0x00]))], ['', 'a', 'b']);
  const b64 = new StringDecoder('base64');
  eq('base64 groups of three', [b64.write(Buffer.from('ab')), b64.write(Buffer.from('c')), b64.end(Buffer.from('d'))], ['', 'YWJj', 'ZA==']);
  eq('hex', new StringDecoder('hex').write(Buffer.from([1, 255])), '01ff');
  eq('encoding name', new StringDecoder('UTF-8').encoding, 'utf8');
  throwsLike('unknown encoding', () => new StringDecoder('nope'), { code: 'ERR_UNKNOWN_ENCODING' });

  // url
  eq('URL is the global', [NodeURL === globalThis.URL, NodeUSP === globalThis.URLSearchParams, url.URL === URL], [true, true, true]);
  eq('fileURLToPath', [fileURLToPath('file:///a/b%20c.txt'), fileURLToPath(new URL('file:///x/'))], ['/a/b c.txt', '/x/']);
  throwsLike('fileURLToPath wrong scheme', () => fileURLToPath('http://a/b'), { code: 'ERR_INVALID_URL_SCHEME' });
  throwsLike('fileURLToPath host', () => fileURLToPath('file://host/b'), { code: 'ERR_INVALID_FILE_URL_HOST' });
  throwsLike('fileURLToPath encoded slash', () => fileURLToPath('file:///a%2Fb'), { code: 'ERR_INVALID_FILE_URL_PATH' });
  eq('pathToFileURL', [pathToFileURL('/some/path%.c').href, pathToFileURL('/a/../b#c').href, pathToFileURL('/dir/').href], ['file:///some/path%25.c', 'file:///b%23c', 'file:///dir/']);
  const parsed = url.parse('https://user:pass@sub.example.com:8080/p/a/t/h?query=string#hash');
  eq('legacy parse', {
    protocol: parsed.protocol, slashes: parsed.slashes, auth: parsed.auth, host: parsed.host, port: parsed.port,
    hostname: parsed.hostname, hash: parsed.hash, search: parsed.search, query: parsed.query, pathname: parsed.pathname,
    path: parsed.path, href: parsed.href,
  }, {
    protocol: 'https:', slashes: true, auth: 'user:pass', host: 'sub.example.com:8080', port: '8080',
    hostname: 'sub.example.com', hash: '#hash', search: '?query=string', query: 'query=string', pathname: '/p/a/t/h',
    path: '/p/a/t/h?query=string', href: 'https://user:pass@sub.example.com:8080/p/a/t/h?query=string#hash',
  });
  eq('legacy parse with query object', url.parse('/x?a=1&a=2&b=3', true).query, { a: ['1', '2'], b: '3' });
  eq('legacy parse relative', [url.parse('/a/b?c').pathname, url.parse('/a/b?c').host], ['/a/b', null]);
  eq('legacy format object', url.format({ protocol: 'https', hostname: 'example.com', pathname: '/some/path', query: { page: 1, format: 'json' } }), 'https://example.com/some/path?page=1&format=json');
  eq('format WHATWG URL', url.format(new URL('https://a:b@example.com/x?y#z'), { auth: false, fragment: false, search: false }), 'https://example.com/x');
  eq('resolve', [url.resolve('/one/two/three', 'four'), url.resolve('http://example.com/', '/one'), url.resolve('http://example.com/one', '/two')], ['/one/two/four', 'http://example.com/one', 'http://example.com/two']);
  eq('urlToHttpOptions', url.urlToHttpOptions(new URL('https://a:b@x.com:81/p?q')), { protocol: 'https:', hostname: 'x.com', hash: '', search: '?q', pathname: '/p', path: '/p?q', href: 'https://a:b@x.com:81/p?q', port: 81, auth: 'a:b' });

  // querystring
  const q = querystring.parse('foo=bar&abc=xyz&abc=123&sp=a+b&enc=%E2%82%AC&bad=%E0%A4%A');
  eq('parse', { ...q }, { foo: 'bar', abc: ['xyz', '123'], sp: 'a b', enc: '€', bad: '\ufffd%A' });
  eq('parse has a null prototype', Object.getPrototypeOf(q), null);
  eq('parse custom separators', { ...querystring.parse('w:x;y:z', ';', ':') }, { w: 'x', y: 'z' });
  eq('parse maxKeys', Object.keys(querystring.parse('a=1&b=2&c=3', null, null, { maxKeys: 2 })), ['a', 'b']);
  eq('stringify', querystring.stringify({ foo: 'bar', baz: ['qux', 'quux'], corge: '' }), 'foo=bar&baz=qux&baz=quux&corge=');
  eq('stringify custom', querystring.stringify({ foo: 'bar', baz: 'qux' }, ';', ':'), 'foo:bar;baz:qux');
  eq('stringify coerces', querystring.stringify({ n: 1, b: true, o: {}, u: undefined, x: 'a b/€' }), 'n=1&b=true&o=&u=&x=a%20b%2F%E2%82%AC');
  eq('escape keeps Node unreserved', querystring.escape("a*b'(c)!~"), "a*b'(c)!~");
  eq('decode/encode aliases', [querystring.decode === querystring.parse, querystring.encode === querystring.stringify], [true, true]);
}
