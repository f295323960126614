import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
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
  throwsLike('timingSafeEqual lengths', () => timingSafeEqual(Buffer.from('a'), Buffer.from('ab')), { code: 'ERR_CRYPTO_TIMING_SAFE_EQUAL_LENGTH', instanceOf: TypeError, message: 'Input buffers must have the same byte length.' });

  eq('webcrypto is the global crypto', [webcrypto === globalThis.crypto, crypto.subtle === globalThis.crypto.subtle], [true, true]);
  throwsLike('what is not provided says so', () => crypto.createECDH('prime256v1'), { code: 'ERR_METHOD_NOT_IMPLEMENTED', message: 'crypto.createECDH is not implemented yet in Hearth' });
  await more();
}

// Keys and expected values made with OpenSSL 3 and Node.js 20.
const V = {
 "rsa": "-----BEGIN RSA PRIVATE KEY-----\nMIICXAIBAAKBgQDQbEd6YJc8kTppHWC9dzsKIVlssraOSZbbjsKJMqpOmgx1qGf2\nfs6OO2NPPYLvfZDf7ASBAMbLck8H3yrzoiMU6L35xgs2LyVZitnEpPDjVkeniUm2\nD/v8zFkDnxcxAOrb0WSeiowd7kmIJSkXTQF6DUaQMc7ktUcLcAjqWH13CQIDAQAB\nAoGAYyTOz5j4+DfBSFVQOnBoJkZ86mcMzhyVZXXAdlEikGdZO/LTGX9ytFftwrjo\n+xGJA+uarN74sbh7fawcG27qLmFDbpqjtggCX+yTCW/QWsQlcgkxaNV1dMy8rcrw\nn2WpF3vKfqfPebHxbO4eX86YXNG2qjwb8vNzJKSp1ZdCkwECQQDsP8M41uEkBdhe\nwFzRxOKPi5RfO8X4iOXyExtIvIcaIblyO69uXxg20Pl46mSDnAkeXWpOjepbVNqc\n7Q/FHCshAkEA4dj6aqnT+V/NhFWY6FGZhKc/m+f3eZoLIggA3FEJavL4w5Kl2+9C\nBzryJziQmgNoB/gJR6xcqJ0K8hRWh9l26QJALVLKRDRNOxj3+q2S4ReRk5Jmo6KX\nB2hUHQ33VQv+K1A/AKBctqL9xT5wLfdh0zHzOeUYCPwG8wCjdCmytdECoQJAEC0Q\nUo9zZUsdVzsiRpGBo2SvQ6VrrkQARCG6ng0X1ZcthiR8yLHsUsRAD9sXUFCqJNf5\nIi8QO+tzmz8lq3lB8QJBAKyXuEs6G7rMCfg4Jye2xKfcOTM6+fF95kPaPCCPCRGd\n9T7bV6zB9PLkcoSHH0WbnApKemFtd11Sh83uKGfmjp4=\n-----END RSA PRIVATE KEY-----\n",
 "ec": "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIME3T9O0smZPFWpVmROWLK7heluroV4oIN3XC+bktJZWoAoGCCqGSM49\nAwEHoUQDQgAE7k8YSofsQThqWfCXtZfzXW8mQvHNjbzO1bWGstacmpj5wWfRCIR8\nK/8xAKuiNqyFzVTpqZM1x7w6mrBw87akUA==\n-----END EC PRIVATE KEY-----\n",
 "ecpub": "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE7k8YSofsQThqWfCXtZfzXW8mQvHN\njbzO1bWGstacmpj5wWfRCIR8K/8xAKuiNqyFzVTpqZM1x7w6mrBw87akUA==\n-----END PUBLIC KEY-----\n",
 "rsapub": "-----BEGIN PUBLIC KEY-----\nMIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDQbEd6YJc8kTppHWC9dzsKIVls\nsraOSZbbjsKJMqpOmgx1qGf2fs6OO2NPPYLvfZDf7ASBAMbLck8H3yrzoiMU6L35\nxgs2LyVZitnEpPDjVkeniUm2D/v8zFkDnxcxAOrb0WSeiowd7kmIJSkXTQF6DUaQ\nMc7ktUcLcAjqWH13CQIDAQAB\n-----END PUBLIC KEY-----\n",
 "rsaSig": "cf2385530de86c8270eeb6aa2adc37a71388cad361e7ec7faf02a3155e8cf34f708d61e9fface28fb93d09632c2c87c57c3ad07a5d23e115c0c80b9581cf78bf982834e6f723581df7ba52ce3c35f7d602388d29df5cbe4a7776184b44d68c315379fa9b7f57bc6094c660f7f672fbf4c1564e7605ebc25da8e95daee23bd51b",
 "ecSigOpenssl": "3044022045b1c1f980e1bd7b50766b6db90a311264ed0642982351212e4ba655d90cd449022055da85846cb171b79daaccb10ab54a611de7c98cbb6f10e857436ee38969ec03",
 "rsaPkcs8": "-----BEGIN PRIVATE KEY-----\nMIICdgIBADANBgkqhkiG9w0BAQEFAASCAmAwggJcAgEAAoGBANBsR3pglzyROmkd\nYL13OwohWWyyto5JltuOwokyqk6aDHWoZ/Z+zo47Y089gu99kN/sBIEAxstyTwff\nKvOiIxTovfnGCzYvJVmK2cSk8ONWR6eJSbYP+/zMWQOfFzEA6tvRZJ6KjB3uSYgl\nKRdNAXoNRpAxzuS1RwtwCOpYfXcJAgMBAAECgYBjJM7PmPj4N8FIVVA6cGgmRnzq\nZwzOHJVldcB2USKQZ1k78tMZf3K0V+3CuOj7EYkD65qs3vixuHt9rBwbbuouYUNu\nmqO2CAJf7JMJb9BaxCVyCTFo1XV0zLytyvCfZakXe8p+p895sfFs7h5fzphc0baq\nPBvy83MkpKnVl0KTAQJBAOw/wzjW4SQF2F7AXNHE4o+LlF87xfiI5fITG0i8hxoh\nuXI7r25fGDbQ+XjqZIOcCR5dak6N6ltU2pztD8UcKyECQQDh2PpqqdP5X82EVZjo\nUZmEpz+b5/d5mgsiCADcUQlq8vjDkqXb70IHOvInOJCaA2gH+AlHrFyonQryFFaH\n2XbpAkAtUspENE07GPf6rZLhF5GTkmajopcHaFQdDfdVC/4rUD8AoFy2ov3FPnAt\n92HTMfM55RgI/AbzAKN0KbK10QKhAkAQLRBSj3NlSx1XOyJGkYGjZK9DpWuuRABE\nIbqeDRfVly2GJHzIsexSxEAP2xdQUKok1/kiLxA763ObPyWreUHxAkEArJe4Szob\nuswJ+DgnJ7bEp9w5Mzr58X3mQ9o8II8JEZ31PttXrMH08uRyhIcfRZucCkp6YW13\nXVKHze4oZ+aOng==\n-----END PRIVATE KEY-----\n",
 "rsaJwk": {
  "kty": "RSA",
  "n": "0GxHemCXPJE6aR1gvXc7CiFZbLK2jkmW247CiTKqTpoMdahn9n7OjjtjTz2C732Q3-wEgQDGy3JPB98q86IjFOi9-cYLNi8lWYrZxKTw41ZHp4lJtg_7_MxZA58XMQDq29FknoqMHe5JiCUpF00Beg1GkDHO5LVHC3AI6lh9dwk",
  "e": "AQAB"
 },
 "ecJwkPriv": {
  "kty": "EC",
  "x": "7k8YSofsQThqWfCXtZfzXW8mQvHNjbzO1bWGstacmpg",
  "y": "-cFn0QiEfCv_MQCrojashc1U6amTNce8OpqwcPO2pFA",
  "crv": "P-256",
  "d": "wTdP07SyZk8ValWZE5YsruF6W6uhXigg3dcL5uS0llY"
 },
 "ecSec1": true,
 "scrypt": "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b3731622eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640",
 "hkdf": "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
};
const hex = (b) => Buffer.from(b).toString('hex');

async function more() {
  // Hash and Hmac are streams too.
  const h = createHash('sha256');
  await pipeline(Readable.from(['a', 'b', 'c']), h);
  eq('hash as a stream', h.read().toString('hex'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  const mac = createHmac('sha256', crypto.createSecretKey(Buffer.from('key')));
  mac.end('The quick brown fox jumps over the lazy dog');
  eq('hmac stream with a KeyObject', (await mac.toArray())[0].toString('hex'), 'f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8');

  // scrypt (RFC 7914) and HKDF (RFC 5869).
  eq('scryptSync RFC 7914', crypto.scryptSync('password', 'NaCl', 64, { N: 1024, r: 8, p: 16 }).toString('hex'), V.scrypt);
  eq('scrypt callback, cost/blockSize names', await new Promise((r) => crypto.scrypt('password', 'NaCl', 64, { cost: 1024, blockSize: 8, parallelization: 16 }, (e, k) => r(k.toString('hex')))), V.scrypt);
  eq('scrypt empty', crypto.scryptSync('', '', 64, { N: 16, r: 1, p: 1 }).toString('hex'), '77d6576238657b203b19ca42c18a0497f16b4844e3074ae8dfdffa3fede21442fcd0069ded0948f8326a753a0fc81f17e8d3e0fb2e0d3628cf35e20c38d18906');
  throwsLike('scrypt N not a power of two', () => crypto.scryptSync('p', 's', 16, { N: 1000 }), { code: 'ERR_CRYPTO_INVALID_SCRYPT_PARAMS' });
  throwsLike('scrypt over maxmem', () => crypto.scryptSync('p', 's', 16, { N: 2 ** 20, r: 8 }), { code: 'ERR_CRYPTO_INVALID_SCRYPT_PARAMS', message: /memory limit/ });
  const okm = crypto.hkdfSync('sha256', Buffer.alloc(22, 11), Buffer.from('000102030405060708090a0b0c', 'hex'), Buffer.from('f0f1f2f3f4f5f6f7f8f9', 'hex'), 42);
  eq('hkdfSync RFC 5869', [okm instanceof ArrayBuffer, hex(okm)], [true, V.hkdf]);

  // AES-CBC: NIST SP 800-38A F.2.1 without padding; with padding as OpenSSL.
  const nk = Buffer.from('2b7e151628aed2a6abf7158809cf4f3c', 'hex');
  const niv = Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex');
  const c1 = crypto.createCipheriv('aes-128-cbc', nk, niv).setAutoPadding(false);
  eq('aes-128-cbc NIST', c1.update('6bc1bee22e409f96e93d7e117393172a', 'hex', 'hex') + c1.final('hex'), '7649abac8119b246cee98e9b12e9197d');
  const key = Buffer.from('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f', 'hex');
  const iv = Buffer.from('0f0e0d0c0b0a09080706050403020100', 'hex');
  const fox = 'The quick brown fox jumps over the lazy dog';
  const ci = crypto.createCipheriv('aes-256-cbc', key, iv);
  const parts = [ci.update('The quick brown fox'), ci.update(' jumps over the lazy dog'), ci.final()];
  eq('cbc update emits whole blocks', parts.map((p) => p.length), [16, 16, 16]);
  eq('aes-256-cbc as openssl enc', hex(Buffer.concat(parts)), '925c81ee81fae7d66040fade898963245afeab7af7697a0762fe3f72ebfe8a357f559f086177f447d1b11bd60d670c35');
  const de = crypto.createDecipheriv('aes-256-cbc', key, iv);
  const ct = Buffer.concat(parts);
  eq('cbc decrypt in pieces', de.update(ct.subarray(0, 20), undefined, 'utf8') + de.update(ct.subarray(20), undefined, 'utf8') + de.final('utf8'), fox);
  const wrongKey = crypto.createDecipheriv('aes-256-cbc', Buffer.alloc(32, 1), iv);
  wrongKey.update(ct);
  throwsLike('cbc bad padding', () => wrongKey.final(), { code: 'ERR_OSSL_BAD_DECRYPT' });
  throwsLike('bad key length', () => crypto.createCipheriv('aes-256-cbc', Buffer.alloc(16), iv), { code: 'ERR_CRYPTO_INVALID_KEYLEN', instanceOf: RangeError });
  throwsLike('bad iv length', () => crypto.createCipheriv('aes-256-cbc', key, Buffer.alloc(8)), { code: 'ERR_CRYPTO_INVALID_IV' });
  throwsLike('unknown cipher', () => crypto.createCipheriv('des-ede3', key, iv), { code: 'ERR_CRYPTO_UNKNOWN_CIPHER' });

  // AES-CTR: NIST F.5.1, a stream split mid-block, and counter wrap-around.
  const ctr = crypto.createCipheriv('aes-128-ctr', nk, Buffer.from('f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff', 'hex'));
  eq('aes-128-ctr NIST', hex(ctr.update(Buffer.from('6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51', 'hex'))), '874d6191b620e3261bef6864990db6ce9806f66b7970fdff8617187bb9fffdff');
  const t = crypto.createCipheriv('aes-128-ctr', key.subarray(0, 16), iv);
  eq('ctr split mid-block', hex(Buffer.concat([t.update('abc'), t.update('defghijklmnopqrstu'), t.final()])), '41cb9af6d12a3c806d7597b001c0f61a36d4d7d100');
  eq('ctr counter wraps', hex(crypto.createCipheriv('aes-128-ctr', key.subarray(0, 16), Buffer.alloc(16, 255)).update(Buffer.alloc(40))), '3c441f32ce07822364d7a2990e50bb13c6a13b37878f5b826f4f8162a1c8d8797346139595c0b41e');

  // AES-GCM: the GCM spec's test case 2; AAD, tags, streaming and tampering.
  const z = crypto.createCipheriv('aes-128-gcm', Buffer.alloc(16), Buffer.alloc(12));
  eq('gcm test case 2', [hex(Buffer.concat([z.update(Buffer.alloc(16)), z.final()])), hex(z.getAuthTag())], ['0388dace60b6a392f328c2b971b2fe78', 'ab6e47d42cec13bdf53a67b21257bddf']);
  const g = crypto.createCipheriv('aes-256-gcm', key, iv.subarray(0, 12));
  g.setAAD(Buffer.from('hdr'));
  const gct = Buffer.concat([g.update('gcm text, '), g.update('longer than a block'), g.final()]);
  const tag = g.getAuthTag();
  eq('gcm with aad as node', [hex(gct), hex(tag)], ['c353dc7c2fb2d7dac7ffdd3056fdec7349127701a17990443425c19c59', '9d22892aafb3ee1cc919061e6fb33393']);
  const gd = crypto.createDecipheriv('aes-256-gcm', key, iv.subarray(0, 12));
  gd.setAAD(Buffer.from('hdr'));
  gd.setAuthTag(tag);
  eq('gcm decrypt', gd.update(gct, undefined, 'utf8') + gd.final('utf8'), 'gcm text, longer than a block');
  const bad = crypto.createDecipheriv('aes-256-gcm', key, iv.subarray(0, 12));
  bad.setAAD(Buffer.from('hdr'));
  bad.setAuthTag(Buffer.from(tag).fill(0, 0, 1));
  bad.update(gct);
  throwsLike('gcm tampered tag', () => bad.final(), { message: 'Unsupported state or unable to authenticate data' });
  const piped = crypto.createCipheriv('aes-128-ctr', nk, Buffer.alloc(16));
  piped.end('stream me');
  eq('cipher as a stream', hex(Buffer.concat(await piped.toArray())), hex(crypto.createCipheriv('aes-128-ctr', nk, Buffer.alloc(16)).update('stream me')));
  eq('getCiphers', crypto.getCiphers().includes('aes-256-gcm'), true);

  // Keys: PKCS#1, SEC1, PKCS#8, SPKI, JWK.
  const rsaKey = crypto.createPrivateKey(V.rsa);
  eq('rsa key details', [rsaKey.type, rsaKey.asymmetricKeyType, rsaKey.asymmetricKeyDetails.modulusLength, rsaKey.asymmetricKeyDetails.publicExponent], ['private', 'rsa', 1024, 65537n]);
  eq('pkcs1 round trip', rsaKey.export({ type: 'pkcs1', format: 'pem' }), V.rsa);
  eq('pkcs8 export as node', rsaKey.export({ type: 'pkcs8', format: 'pem' }), V.rsaPkcs8);
  eq('public from private', crypto.createPublicKey(V.rsa).export({ type: 'spki', format: 'pem' }), V.rsapub);
  eq('rsa public jwk', crypto.createPublicKey(V.rsapub).export({ format: 'jwk' }), V.rsaJwk);
  const ecKey = crypto.createPrivateKey(V.ec);
  eq('ec key', [ecKey.asymmetricKeyType, ecKey.asymmetricKeyDetails], ['ec', { namedCurve: 'prime256v1' }]);
  eq('ec private jwk as node', ecKey.export({ format: 'jwk' }), V.ecJwkPriv);
  eq('sec1 round trip', ecKey.export({ type: 'sec1', format: 'pem' }), V.ec);
  eq('ec public from jwk', crypto.createPublicKey({ key: V.ecJwkPriv, format: 'jwk' }).export({ type: 'spki', format: 'pem' }), V.ecpub);
  eq('key equals', [crypto.createPublicKey(V.ec).equals(crypto.createPublicKey(V.ecpub)), rsaKey.equals(ecKey)], [true, false]);
  const secret = crypto.createSecretKey('abc', 'utf8');
  eq('secret key', [secret.type, secret.symmetricKeySize, secret.export().toString()], ['secret', 3, 'abc']);
  throwsLike('not a key', () => crypto.createPrivateKey('nonsense'), { code: 'ERR_INVALID_ARG_VALUE' });
  throwsLike('public key as private', () => crypto.createPrivateKey(V.rsapub), { code: 'ERR_CRYPTO_INVALID_KEY_OBJECT_TYPE' });

  // Signatures: RSA PKCS#1 v1.5 is deterministic, so it matches OpenSSL byte for byte.
  const msg = Buffer.from('hello world');
  eq('rsa-sha256 sign matches openssl', crypto.createSign('RSA-SHA256').update('hello ').update('world').sign(V.rsa, 'hex'), V.rsaSig);
  eq('one-shot sign', hex(crypto.sign('sha256', msg, rsaKey)), V.rsaSig);
  eq('verify with the public key', crypto.createVerify('sha256').update(msg).verify(V.rsapub, V.rsaSig, 'hex'), true);
  eq('verify with the private key', crypto.verify('sha256', msg, V.rsa, Buffer.from(V.rsaSig, 'hex')), true);
  eq('verify rejects other data', crypto.verify('sha256', Buffer.from('hello World'), V.rsapub, Buffer.from(V.rsaSig, 'hex')), false);
  const pss = crypto.sign('sha256', msg, { key: V.rsa, padding: crypto.constants.RSA_PKCS1_PSS_PADDING });
  eq('rsa-pss', [pss.length, crypto.verify('sha256', msg, { key: V.rsapub, padding: crypto.constants.RSA_PKCS1_PSS_PADDING }, pss), crypto.verify('sha256', msg, V.rsapub, pss)], [128, true, false]);
  eq('ecdsa verifies an openssl signature', crypto.verify('sha256', msg, V.ecpub, Buffer.from(V.ecSigOpenssl, 'hex')), true);
  const ecSig = crypto.sign('sha256', msg, V.ec);
  eq('ecdsa der signature', [ecSig[0], crypto.verify('sha256', msg, V.ecpub, ecSig)], [0x30, true]);
  const p1363 = crypto.sign('sha256', msg, { key: V.ec, dsaEncoding: 'ieee-p1363' });
  eq('ecdsa ieee-p1363', [p1363.length, crypto.verify('sha256', msg, { key: V.ecpub, dsaEncoding: 'ieee-p1363' }, p1363)], [64, true]);
  const webSig = await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, await crypto.subtle.importKey('jwk', V.ecJwkPriv, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']), msg);
  eq('webcrypto signature verifies here', crypto.verify('sha256', msg, { key: V.ecpub, dsaEncoding: 'ieee-p1363' }, Buffer.from(webSig)), true);
  const sw = crypto.createSign('sha256');
  sw.write('hello ');
  sw.end('world');
  eq('Sign is writable', sw.sign(V.rsa, 'hex'), V.rsaSig);

  // Generated key pairs.
  const { publicKey, privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256', publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } });
  eq('generated ec pair', [publicKey.startsWith('-----BEGIN PUBLIC KEY-----'), crypto.verify('sha256', msg, publicKey, crypto.sign('sha256', msg, privateKey))], [true, true]);
  throwsLike('other curves say so', () => crypto.generateKeyPairSync('ec', { namedCurve: 'secp384r1' }), { code: 'ERR_CRYPTO_INVALID_CURVE' });
}
