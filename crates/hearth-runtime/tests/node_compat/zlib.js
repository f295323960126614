import zlib, { gzipSync, gunzipSync, deflateSync, inflateSync, deflateRawSync, inflateRawSync, unzipSync, brotliCompressSync, brotliDecompressSync, createGzip, createGunzip, constants } from 'node:zlib';
import { pipeline } from 'node:stream/promises';
import { Readable, Writable } from 'node:stream';
import { promisify } from 'node:util';

// Made with Node.js 20's zlib (and Python's gzip for the named member).
const V = {"gz": "H4sIAAAAAAAAA+3KRwGAMBBFQStPAWpigLIQ6kIgNPXY4PDnPCEaW+7rkSr5tdD6zZDndcdPSxzRmMr3ofGuICgrKysrKysr/yl/+zrgX8oIAAA=", "df": "eJztykcBgDAQRUErTwFqYoCyEOpCIDT12ODw5zwhGlvu65Eq+bXQ+s2Q53XHT0sc0ZjK96HxriAoKysrKysrK/8pfyWMJ8w=", "raw": "7cpHAYAwEEVBK08BamKAshDqQiA09djg8Oc8IRpb7uuRKvm10PrNkOd1x09LHNGYyveh8a4gKCsrKysrKyv/KX8=", "br": "G8kIiCwOeNPQlV2XELsXK6nK0JLMjK1BXObyNsgZnp4Ke4MNOHBIIG80uEGnFc4cHieqKTjCuQIA2KfB", "gzName": "1f8b0800000000000003cb4bcc4d4d010087cce07105000000", "crc": 907060870, "crc2": 222957957};
const TEXT = 'The quick brown fox jumps over the lazy dog. '.repeat(50);

async function run() {
  // Data compressed by Node's zlib and brotli decompresses here.
  eq('gunzip node output', gunzipSync(Buffer.from(V.gz, 'base64')).toString(), TEXT);
  eq('inflate node output', inflateSync(Buffer.from(V.df, 'base64')).toString(), TEXT);
  eq('inflateRaw node output', inflateRawSync(Buffer.from(V.raw, 'base64')).toString(), TEXT);
  eq('brotli node output', brotliDecompressSync(Buffer.from(V.br, 'base64')).toString(), TEXT);
  eq('unzip detects both', [unzipSync(Buffer.from(V.gz, 'base64')).length, unzipSync(Buffer.from(V.df, 'base64')).length], [TEXT.length, TEXT.length]);
  eq('gzip header with a file name', gunzipSync(Buffer.from('1f8b08080000000002ff68656c6c6f2e74787400cb4bcc4d4d51c84dcd4d4a2d0200acb73b430c000000', 'hex')).toString(), 'named member');
  eq('concatenated gzip members', gunzipSync(Buffer.concat([gzipSync('a'), gzipSync('b')])).toString(), 'ab');

  // Round trips, headers, levels.
  for (const [c, d] of [[gzipSync, gunzipSync], [deflateSync, inflateSync], [deflateRawSync, inflateRawSync], [brotliCompressSync, brotliDecompressSync]]) {
    eq('round trip ' + c.name, d(c(TEXT)).toString(), TEXT);
  }
  const gz = gzipSync('hello');
  eq('gzip header as zlib writes it', gz.subarray(0, 10).toString('hex'), '1f8b0800000000000003');
  eq('gzip trailer: crc32 and length', [gz.readUInt32LE(gz.length - 8), gz.readUInt32LE(gz.length - 4)], [zlib.crc32('hello'), 5]);
  eq('zlib header', deflateSync('hello').subarray(0, 2).toString('hex'), '789c');
  eq('compresses', gzipSync(TEXT).length < TEXT.length / 5, true);
  eq('level 0 stores', deflateSync(TEXT, { level: 0 }).length > TEXT.length, true);
  eq('empty input', [gunzipSync(gzipSync('')).length, inflateSync(deflateSync(Buffer.alloc(0))).length, brotliDecompressSync(brotliCompressSync('')).length], [0, 0, 0]);
  eq('brotli quality param', brotliDecompressSync(brotliCompressSync(TEXT, { params: { [constants.BROTLI_PARAM_QUALITY]: 4 } })).toString(), TEXT);
  eq('string, ArrayBuffer and typed array input', [gunzipSync(gzipSync(new TextEncoder().encode('u8').buffer)).toString(), inflateSync(deflateSync(new Uint16Array([0x6968]))).toString()], ['u8', 'hi']);

  // Errors as Node reports them.
  throwsLike('not gzip', () => gunzipSync(Buffer.from('not gzip data here')), { message: 'incorrect header check', code: 'Z_DATA_ERROR', errno: -3 });
  throwsLike('truncated gzip', () => gunzipSync(gzipSync('hello world').subarray(0, 15)), { message: 'unexpected end of file', code: 'Z_BUF_ERROR', errno: -5 });
  const bad = gzipSync('hello world');
  bad[bad.length - 6] ^= 1;
  throwsLike('gzip crc mismatch', () => gunzipSync(bad), { message: 'incorrect data check', code: 'Z_DATA_ERROR' });
  throwsLike('not zlib', () => inflateSync(Buffer.from('xyz')), { message: 'incorrect header check', code: 'Z_DATA_ERROR' });
  throwsLike('trailing garbage after gzip', () => gunzipSync(Buffer.concat([gzipSync('a'), Buffer.from('trailing')])), { message: 'incorrect header check' });
  throwsLike('bad brotli', () => brotliDecompressSync(Buffer.from('garbage garbage')), { message: 'Decompression failed' });
  throwsLike('truncated brotli', () => brotliDecompressSync(brotliCompressSync(TEXT).subarray(0, 5)), { message: 'unexpected end of file', code: 'Z_BUF_ERROR' });
  throwsLike('maxOutputLength', () => inflateSync(deflateSync(Buffer.alloc(100000)), { maxOutputLength: 1000 }), { message: 'Cannot create a Buffer larger than 1000 bytes', code: 'ERR_BUFFER_TOO_LARGE', instanceOf: RangeError });
  throwsLike('bad level', () => deflateSync('x', { level: 10 }), { code: 'ERR_OUT_OF_RANGE' });
  eq('a bomb stops at the limit', (() => {
    try {
      gunzipSync(gzipSync(Buffer.alloc(50 * 1024 * 1024)), { maxOutputLength: 1024 * 1024 });
      return 'inflated';
    } catch (e) {
      return e.code;
    }
  })(), 'ERR_BUFFER_TOO_LARGE');

  // Callback and promisified forms.
  eq('callback form', await new Promise((r) => zlib.gzip('cb', (err, out) => r([err, gunzipSync(out).toString()]))), [null, 'cb']);
  eq('callback error', await new Promise((r) => zlib.gunzip(Buffer.from('nope'), (err) => r(err.code))), 'Z_DATA_ERROR');
  eq('promisify', (await promisify(zlib.brotliDecompress)(brotliCompressSync('p'))).toString(), 'p');

  // Streams: pipeline through gzip then gunzip, in small chunks.
  const chunks = [];
  await pipeline(
    Readable.from(TEXT.match(/.{1,100}/gs).map((s) => Buffer.from(s))),
    createGzip(),
    createGunzip(),
    new Writable({ write(c, e, cb) { chunks.push(c); cb(); } }),
  );
  eq('gzip/gunzip stream pipeline', Buffer.concat(chunks).toString(), TEXT);
  const gzStream = createGzip();
  gzStream.end(TEXT);
  eq('stream output is standard gzip', gunzipSync(Buffer.concat(await gzStream.toArray())).toString(), TEXT);
  const feed = zlib.createInflate();
  const out = [];
  feed.on('data', (c) => out.push(c));
  const whole = Buffer.from(V.df, 'base64');
  for (let i = 0; i < whole.length; i += 7) feed.write(whole.subarray(i, i + 7));
  feed.end();
  await new Promise((r) => feed.on('end', r));
  eq('inflate stream fed 7 bytes at a time', Buffer.concat(out).toString(), TEXT);
  const br = zlib.createBrotliCompress();
  br.end(TEXT);
  eq('brotli stream', brotliDecompressSync(Buffer.concat(await br.toArray())).toString(), TEXT);
  const broken = createGunzip();
  const err = await new Promise((r) => {
    broken.on('error', r);
    broken.end(Buffer.from('definitely not gzip'));
  });
  eq('stream error', [err.code, broken.destroyed], ['Z_DATA_ERROR', true]);
  // flush() pushes out what was written so far, decodable on its own.
  const live = createGzip();
  const seen = [];
  live.on('data', (c) => seen.push(c));
  live.write('part one');
  await new Promise((r) => live.flush(r));
  const partial = zlib.createGunzip();
  const got = [];
  partial.on('data', (c) => got.push(c));
  partial.write(Buffer.concat(seen));
  await new Promise((r) => setTimeout(r, 0));
  eq('flush makes written data decodable', Buffer.concat(got).toString(), 'part one');

  eq('crc32', [zlib.crc32('hello'), zlib.crc32('world', zlib.crc32('hello '))], [V.crc, V.crc2]);
  eq('constants', [constants.Z_SYNC_FLUSH, constants.Z_FINISH, constants.BROTLI_PARAM_QUALITY, zlib.Z_BEST_COMPRESSION], [2, 4, 1, 9]);
}
