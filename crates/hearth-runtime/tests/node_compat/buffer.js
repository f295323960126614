import { Buffer, isUtf8, kMaxLength, constants } from 'node:buffer';
import bufferModule from 'node:buffer';

const arr = (b) => Array.from(b);

async function run() {
  eq('default export carries Buffer', bufferModule.Buffer === Buffer, true);
  eq('Buffer extends Uint8Array', [Buffer.from('a') instanceof Uint8Array, Object.getPrototypeOf(Buffer.prototype) === Uint8Array.prototype], [true, true]);
  eq('kMaxLength', kMaxLength === constants.MAX_LENGTH, true);

  // Encodings, as in Node's docs.
  eq('utf8', arr(Buffer.from('héllo')), [104, 195, 169, 108, 108, 111]);
  eq('utf-8 alias and default', Buffer.from('é', 'utf-8').toString(), 'é');
  eq('hex', Buffer.from('68656c6c6f', 'hex').toString(), 'hello');
  eq('hex stops at the first invalid pair', arr(Buffer.from('1ag7', 'hex')), [0x1a]);
  eq('hex odd length drops the last digit', arr(Buffer.from('abc', 'hex')), [0xab]);
  eq('base64', Buffer.from('aGVsbG8gd29ybGQ=', 'base64').toString(), 'hello world');
  eq('base64 without padding and with whitespace', Buffer.from('aGVs bG8', 'base64').toString(), 'hello');
  eq('base64 accepts url alphabet', arr(Buffer.from('-_8', 'base64')), [251, 255]);
  eq('base64url', Buffer.from([251, 255, 191]).toString('base64url'), '-_-_');
  eq('base64 out', Buffer.from([251, 255, 191]).toString('base64'), '+/+/');
  eq('base64url in', arr(Buffer.from('-_-_', 'base64url')), [251, 255, 191]);
  eq('latin1', arr(Buffer.from('é€', 'latin1')), [0xe9, 0xac]);
  eq('binary is latin1', Buffer.from([0xe9]).toString('binary'), 'é');
  eq('ascii out masks the high bit', Buffer.from([0xe9, 0x41]).toString('ascii'), 'iA');
  eq('utf16le', arr(Buffer.from('hi€', 'utf16le')), [104, 0, 105, 0, 0xac, 0x20]);
  eq('ucs2 out', Buffer.from([104, 0, 105, 0]).toString('ucs2'), 'hi');
  eq('encodings are case-insensitive', Buffer.from('AB', 'HEX')[0], 0xab);
  throwsLike('unknown encoding', () => Buffer.from('x', 'nope'), { code: 'ERR_UNKNOWN_ENCODING', instanceOf: TypeError, message: 'Unknown encoding: nope' });
  eq('isEncoding', [Buffer.isEncoding('UTF-8'), Buffer.isEncoding('base64url'), Buffer.isEncoding('nope'), Buffer.isEncoding('')], [true, true, false, false]);
  eq('invalid utf8 becomes U+FFFD', Buffer.from([0xff, 0x41]).toString(), '\ufffdA');

  // From arrays, array buffers, buffers.
  eq('from array truncates to bytes', arr(Buffer.from([257, -1, 1.7])), [1, 255, 1]);
  const ab = new ArrayBuffer(8);
  const shared = Buffer.from(ab, 2, 4);
  new Uint8Array(ab)[2] = 9;
  eq('from ArrayBuffer shares memory', [shared.length, shared[0], shared.byteOffset], [4, 9, 2]);
  throwsLike('from ArrayBuffer out of bounds', () => Buffer.from(ab, 9), { code: 'ERR_BUFFER_OUT_OF_BOUNDS' });
  const copy = Buffer.from(shared);
  copy[0] = 1;
  eq('from Buffer copies', shared[0], 9);
  eq('from typed array copies values', arr(Buffer.from(new Uint16Array([1, 258]))), [1, 2]);
  eq('from toJSON shape', Buffer.from({ type: 'Buffer', data: [1, 2] }).toString('hex'), '0102');
  eq('from String object', Buffer.from(new String('ab')).toString(), 'ab');
  throwsLike('from a number', () => Buffer.from(5), { code: 'ERR_INVALID_ARG_TYPE' });

  // alloc and friends
  eq('alloc zero-fills', arr(Buffer.alloc(3)), [0, 0, 0]);
  eq('alloc with a fill string', Buffer.alloc(5, 'ab').toString(), 'ababa');
  eq('alloc with fill and encoding', Buffer.alloc(4, 'aGk=', 'base64').toString(), 'hihi');
  eq('alloc with a number fill', arr(Buffer.alloc(2, 257)), [1, 1]);
  eq('allocUnsafe length', Buffer.allocUnsafe(10).length, 10);
  throwsLike('alloc negative', () => Buffer.alloc(-1), { code: 'ERR_OUT_OF_RANGE', instanceOf: RangeError });
  throwsLike('alloc of a string', () => Buffer.alloc('3'), { code: 'ERR_INVALID_ARG_TYPE' });

  // byteLength, concat, compare, isBuffer
  eq('byteLength utf8', Buffer.byteLength('€'), 3);
  eq('byteLength base64', Buffer.byteLength('aGVsbG8=', 'base64'), 5);
  eq('byteLength hex', Buffer.byteLength('abcd', 'hex'), 2);
  eq('byteLength of a buffer', Buffer.byteLength(new Uint8Array(7)), 7);
  eq('concat', Buffer.concat([Buffer.from('ab'), new Uint8Array([99]), Buffer.from('d')]).toString(), 'abcd');
  eq('concat with totalLength truncates', Buffer.concat([Buffer.from('abc'), Buffer.from('def')], 4).toString(), 'abcd');
  eq('concat with totalLength pads with zeros', arr(Buffer.concat([Buffer.from([1])], 3)), [1, 0, 0]);
  eq('concat of nothing', Buffer.concat([]).length, 0);
  eq('compare', [Buffer.compare(Buffer.from('a'), Buffer.from('b')), Buffer.compare(Buffer.from('b'), Buffer.from('a')), Buffer.compare(Buffer.from('ab'), Buffer.from('a')), Buffer.compare(Buffer.from('a'), Buffer.from('a'))], [-1, 1, 1, 0]);
  eq('sort with compare', [Buffer.from('c'), Buffer.from('a'), Buffer.from('b')].sort(Buffer.compare).map(String), ['a', 'b', 'c']);
  eq('isBuffer', [Buffer.isBuffer(Buffer.alloc(1)), Buffer.isBuffer(new Uint8Array(1)), Buffer.isBuffer('a')], [true, false, false]);
  eq('instance compare with ranges', Buffer.from('abcdef').compare(Buffer.from('xxcdxx'), 2, 4, 2, 4), 0);

  // toString(enc, start, end)
  const hello = Buffer.from('hello world');
  eq('toString range', hello.toString('utf8', 6, 11), 'world');
  eq('toString range hex', hello.toString('hex', 0, 2), '6865');
  eq('toString clamps', hello.toString('utf8', -5, 100), 'hello world');
  eq('toString empty range', hello.toString('utf8', 5, 2), '');
  eq('String(buffer)', String(Buffer.from('hi')), 'hi');

  // slice / subarray share memory
  const base = Buffer.from('abcdef');
  const sl = base.slice(1, 3);
  sl[0] = 0x7a;
  eq('slice shares memory', [base.toString(), Buffer.isBuffer(sl)], ['azcdef', true]);
  const sub = base.subarray(-2);
  sub[1] = 0x21;
  eq('subarray negative start shares memory', [sub.toString(), base.toString()], ['e!', 'azcde!']);
  eq('map keeps Buffer', Buffer.isBuffer(base.map((x) => x)), true);

  // Numbers
  const nb = Buffer.alloc(8);
  eq('writeUInt8 returns the next offset', nb.writeUInt8(255, 0), 1);
  eq('readUInt8 / readInt8', [nb.readUInt8(0), nb.readInt8(0)], [255, -1]);
  nb.writeUInt16LE(0x1234, 0);
  eq('writeUInt16LE bytes', arr(nb.subarray(0, 2)), [0x34, 0x12]);
  nb.writeUInt16BE(0x1234, 0);
  eq('writeUInt16BE bytes', arr(nb.subarray(0, 2)), [0x12, 0x34]);
  eq('readUInt16LE/BE', [nb.readUInt16LE(0), nb.readUInt16BE(0)], [0x3412, 0x1234]);
  nb.writeInt32LE(-2, 0);
  eq('writeInt32LE/readInt32LE', [arr(nb.subarray(0, 4)), nb.readInt32LE(0), nb.readUInt32LE(0)], [[254, 255, 255, 255], -2, 4294967294]);
  nb.writeUInt32BE(0xdeadbeef, 4);
  eq('readUInt32BE', nb.readUInt32BE(4).toString(16), 'deadbeef');
  eq('lowercase aliases', nb.readUint32BE(4) === nb.readUInt32BE(4), true);
  throwsLike('value out of range', () => nb.writeUInt8(256, 0), { code: 'ERR_OUT_OF_RANGE', instanceOf: RangeError });
  throwsLike('offset out of range', () => nb.readUInt32LE(5), { code: 'ERR_OUT_OF_RANGE' });
  throwsLike('offset not a number', () => nb.readUInt8('1'), { code: 'ERR_INVALID_ARG_TYPE' });
  const big = Buffer.alloc(8);
  big.writeBigInt64LE(-5n);
  eq('BigInt64LE', [big.readBigInt64LE(), big.readBigUInt64LE()], [-5n, 18446744073709551611n]);
  big.writeBigUInt64BE(0x0102030405060708n);
  eq('BigUInt64BE bytes', arr(big), [1, 2, 3, 4, 5, 6, 7, 8]);
  eq('readBigInt64BE', big.readBigInt64BE(), 0x0102030405060708n);
  throwsLike('BigInt write needs a bigint', () => big.writeBigInt64LE(1), { code: 'ERR_INVALID_ARG_TYPE' });
  const fl = Buffer.alloc(12);
  fl.writeFloatLE(1.5, 0);
  fl.writeDoubleBE(-0.1, 4);
  eq('Float/Double', [fl.readFloatLE(0), fl.readDoubleBE(4), arr(fl.subarray(0, 4))], [1.5, -0.1, [0, 0, 0xc0, 0x3f]]);
  const vb = Buffer.alloc(6);
  vb.writeUIntBE(0x1234567890ab, 0, 6);
  eq('writeUIntBE/readUIntBE 48-bit', [vb.toString('hex'), vb.readUIntBE(0, 6), vb.readIntLE(0, 3)], ['1234567890ab', 0x1234567890ab, 0x563412]);
  vb.writeIntLE(-1, 0, 3);
  eq('writeIntLE/readIntLE', vb.readIntLE(0, 3), -1);

  // Search, equality, fill, copy, write
  const s = Buffer.from('this is a buffer');
  eq('indexOf string', s.indexOf('is'), 2);
  eq('indexOf with offset', s.indexOf('is', 3), 5);
  eq('indexOf buffer', s.indexOf(Buffer.from('a buffer')), 8);
  eq('indexOf number', s.indexOf(97), 8);
  eq('indexOf missing', s.indexOf('xyz'), -1);
  eq('indexOf negative offset', s.indexOf('s', -3), -1);
  eq('lastIndexOf', s.lastIndexOf('is'), 5);
  eq('includes', [s.includes('buffer'), s.includes('nope'), s.includes('this', 1)], [true, false, false]);
  eq('indexOf with encoding', Buffer.from('abc').indexOf('62', 0, 'hex'), 1);
  eq('equals', [Buffer.from('abc').equals(Buffer.from('abc')), Buffer.from('abc').equals(Buffer.from('abd'))], [true, false]);
  eq('fill range', Buffer.alloc(5).fill('x', 1, 3).toString('hex'), '0078780000');
  eq('fill with hex', Buffer.alloc(4).fill('aabb', 'hex').toString('hex'), 'aabbaabb');
  eq('fill returns the buffer chained', Buffer.alloc(2).fill(1).fill(2, 1)[1], 2);
  const target = Buffer.alloc(6, '.');
  eq('copy returns bytes copied', Buffer.from('abcd').copy(target, 2, 1), 3);
  eq('copy result', target.toString(), '..bcd.');
  const w = Buffer.alloc(6);
  eq('write returns bytes written', w.write('héllo'), 6);
  eq('write at offset with length', [Buffer.alloc(4).write('abcdef', 1, 2), w.toString()], [2, 'héllo']);
  const partial = Buffer.alloc(2);
  eq('write does not split a character', partial.write('a€'), 1);
  eq('write with encoding', (() => { const x = Buffer.alloc(2); x.write('ffee', 'hex'); return arr(x); })(), [255, 238]);

  // JSON and inspection
  eq('toJSON', Buffer.from([1, 2, 3]).toJSON(), { type: 'Buffer', data: [1, 2, 3] });
  eq('JSON.stringify', JSON.stringify(Buffer.from('hi')), '{"type":"Buffer","data":[104,105]}');
  eq('swap16', Buffer.from([1, 2, 3, 4]).swap16().toString('hex'), '02010403');
  throwsLike('swap16 odd length', () => Buffer.from([1, 2, 3]).swap16(), { code: 'ERR_INVALID_BUFFER_SIZE' });
  eq('isUtf8', [isUtf8(Buffer.from('€')), isUtf8(new Uint8Array([0xff]))], [true, false]);
  eq('iteration', [...Buffer.from('ab').entries()], [[0, 97], [1, 98]]);
  eq('global Buffer under v2', globalThis.Buffer === Buffer, true);

  // A Buffer is accepted wherever Web APIs take bytes.
  eq('Response body', await new Response(Buffer.from('body')).text(), 'body');
  eq('TextDecoder', new TextDecoder().decode(Buffer.from('dec')), 'dec');
  const digest = await crypto.subtle.digest('SHA-256', Buffer.from('abc'));
  eq('crypto.subtle.digest', Buffer.from(digest).toString('hex'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  eq('Blob', await new Blob([Buffer.from('bl'), 'ob']).text(), 'blob');
  eq('Buffer.from(Response bytes)', Buffer.from(await new Response('xyz').arrayBuffer()).toString(), 'xyz');
}
