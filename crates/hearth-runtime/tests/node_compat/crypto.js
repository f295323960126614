import crypto, { createHash, createHmac, pbkdf2Sync, pbkdf2, randomBytes, randomUUID, randomInt, timingSafeEqual, webcrypto } from 'node:crypto';

async function run() {
  // Digests of the standard test vectors.
  eq('sha256 hex', createHash('sha256').update('abc').digest('hex'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  eq('sha1', createHash('sha1').update('abc').digest('hex'), 'a9993e364706816aba3e25717850c26c9cd0d89d');
  eq('md5 of nothing', createHash('md5').digest('hex'), 'd41d8cd98f00b204e9800998ecf8427e');
  eq('sha512 length', createHash('sha512').update('x').digest().length, 64);
  eq('sha384 length', createHash('SHA384').update('x').digest().length, 48);
  eq('base64 output', createHash('sha256').update('').digest('base64'), '47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=');
  eq('digest() is a Buffer', Buffer.isBuffer(createHash('sha256').digest()), true);
  eq('updates chain and concatenate', createHash('sha256').update('a').update(Buffer.from('b')).update(new Uint8Array([99])).digest('hex'), createHash('sha256').update('abc').digest('hex'));
  eq('update with an input encoding', createHash('sha1').update('616263', 'hex').digest('hex'), 'a9993e364706816aba3e25717850c26c9cd0d89d');
  const h = createHash('sha256').update('a');
  const h2 = h.copy();
  h2.update('bc');
  eq('copy continues independently', [h.digest('hex').slice(0, 8), h2.digest('hex').slice(0, 8)], ['ca978112', 'ba7816bf']);
  throwsLike('digest twice', () => h.digest(), { code: 'ERR_CRYPTO_HASH_FINALIZED' });
  throwsLike('update after digest', () => h.update('x'), { code: 'ERR_CRYPTO_HASH_FINALIZED' });
  throwsLike('unknown digest', () => createHash('whirlpool'), { code: 'ERR_CRYPTO_INVALID_DIGEST' });
  eq('one-shot hash()', crypto.hash('sha1', 'abc'), 'a9993e364706816aba3e25717850c26c9cd0d89d');
  eq('getHashes', crypto.getHashes().includes('sha256'), true);

  // HMAC
  const fox = 'The quick brown fox jumps over the lazy dog';
  eq('hmac sha256', createHmac('sha256', 'key').update(fox).digest('hex'), 'f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8');
  eq('hmac md5', createHmac('md5', Buffer.from('key')).update(fox).digest('hex'), '80070713463e7749b90c2dc24911e275');
  eq('hmac base64url', createHmac('sha256', 'key').update(fox).digest('base64url'), '97yD9DBThCSxMpjmqm-xQ-9NWaFJRhdZl0edvC0aPNg');

  // PBKDF2 (RFC 6070 and its SHA-256 counterpart)
  eq('pbkdf2Sync sha1', pbkdf2Sync('password', 'salt', 1, 20, 'sha1').toString('hex'), '0c60c80f961f0e71f3a9b524af6012062fe037a6');
  eq('pbkdf2Sync sha1 4096', pbkdf2Sync('password', 'salt', 4096, 20, 'sha1').toString('hex'), '4b007901b765489abead49d926f721d065a429c1');
  eq('pbkdf2Sync sha256', pbkdf2Sync('password', 'salt', 1, 32, 'sha256').toString('hex'), '120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987cb70be17b');
  eq('pbkdf2 callback', await new Promise((r) => pbkdf2('password', 'salt', 1, 20, 'sha1', (err, key) => r([err, key.toString('hex')]))), [null, '0c60c80f961f0e71f3a9b524af6012062fe037a6']);
  throwsLike('pbkdf2 bad iterations', () => pbkdf2Sync('p', 's', 0, 10, 'sha1'), { code: 'ERR_OUT_OF_RANGE' });

  // Randomness
  const r = randomBytes(16);
  eq('randomBytes', [Buffer.isBuffer(r), r.length], [true, 16]);
  eq('randomBytes beyond one getRandomValues call', randomBytes(100000).length, 100000);
  eq('randomBytes callback', await new Promise((res) => randomBytes(8, (err, b) => res([err, b.length]))), [null, 8]);
  eq('randomBytes differ', randomBytes(16).equals(randomBytes(16)), false);
  eq('randomUUID', /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(randomUUID()), true);
  const ints = Array.from({ length: 50 }, () => randomInt(10));
  eq('randomInt(max) in range', ints.every((n) => Number.isInteger(n) && n >= 0 && n < 10), true);
  eq('randomInt(min, max)', randomInt(5, 6), 5);
  throwsLike('randomInt max <= min', () => randomInt(3, 3), { code: 'ERR_OUT_OF_RANGE' });
  const filled = crypto.randomFillSync(new Uint8Array(4), 2);
  eq('randomFillSync keeps the bytes before the offset', [filled[0], filled[1]], [0, 0]);

  // timingSafeEqual
  eq('timingSafeEqual', [timingSafeEqual(Buffer.from('abc'), Buffer.from('abc')), timingSafeEqual(Buffer.from('abc'), Buffer.from('abd'))], [true, false]);
  throwsLike('timingSafeEqual lengths', () => timingSafeEqual(Buffer.from('a'), Buffer.from('ab')), { code: 'ERR_CRYPTO_TIMING_SAFE_EQUAL_LENGTH', instanceOf: RangeError });

  eq('webcrypto is the global crypto', [webcrypto === globalThis.crypto, crypto.subtle === globalThis.crypto.subtle], [true, true]);
  throwsLike('what is not provided says so', () => crypto.createCipheriv('aes-256-gcm', Buffer.alloc(32), Buffer.alloc(12)), { code: 'ERR_METHOD_NOT_IMPLEMENTED', message: 'crypto.createCipheriv is not implemented yet in Hearth' });
}
