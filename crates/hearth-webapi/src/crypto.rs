//! Natives behind `crypto.subtle`. The JS side validates algorithm
//! dictionaries and key usages; these functions only do the arithmetic and
//! throw WebCrypto's DOMException names on bad key material or failures.

use aes_gcm::{
    AeadInPlace, AesGcm, KeyInit,
    aead::consts::{U12, U13, U14, U15, U16},
    aes::{
        Aes128, Aes192, Aes256, Block,
        cipher::{BlockDecrypt, BlockEncrypt},
    },
};
use hmac::{Hmac, Mac};
use md5::Md5;
use p256::ecdsa::{
    Signature, SigningKey, VerifyingKey,
    signature::hazmat::{PrehashSigner, PrehashVerifier},
};
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use rquickjs::{Array, Ctx, Function, Object, Result, Value};
use rsa::{
    BigUint, Pkcs1v15Sign, Pss, RsaPrivateKey, RsaPublicKey,
    traits::{PrivateKeyParts, PublicKeyParts},
};
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha384, Sha512};

use crate::util::{array_buffer, bytes, throw_dom, u8array};

/// Randomness for key generation and PSS salts, straight from the OS.
struct OsRandom;

impl rsa::rand_core::RngCore for OsRandom {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        // A failing OS RNG leaves no safe way to continue generating keys.
        getrandom::fill(dest).unwrap_or_else(|e| panic!("OS random source failed: {e}"));
    }
    fn try_fill_bytes(
        &mut self,
        dest: &mut [u8],
    ) -> std::result::Result<(), rsa::rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}
impl rsa::rand_core::CryptoRng for OsRandom {}

pub fn hash(name: &str, data: &[u8]) -> Option<Vec<u8>> {
    Some(match name {
        "SHA-1" => Sha1::digest(data).to_vec(),
        "SHA-256" => Sha256::digest(data).to_vec(),
        "SHA-384" => Sha384::digest(data).to_vec(),
        "SHA-512" => Sha512::digest(data).to_vec(),
        "MD5" => Md5::digest(data).to_vec(),
        _ => return None,
    })
}

fn hmac_raw(name: &str, key: &[u8], data: &[u8]) -> Option<Vec<u8>> {
    macro_rules! mac {
        ($d:ty) => {{
            let mut m = <Hmac<$d> as Mac>::new_from_slice(key).ok()?;
            m.update(data);
            m.finalize().into_bytes().to_vec()
        }};
    }
    Some(match name {
        "SHA-1" => mac!(Sha1),
        "SHA-256" => mac!(Sha256),
        "SHA-384" => mac!(Sha384),
        "SHA-512" => mac!(Sha512),
        "MD5" => mac!(Md5),
        _ => return None,
    })
}

fn unsupported_hash(ctx: &Ctx<'_>, name: &str) -> rquickjs::Error {
    throw_dom(
        ctx,
        "NotSupportedError",
        &format!("Unrecognized hash algorithm: {name}"),
    )
}

fn digest<'js>(ctx: Ctx<'js>, name: String, data: Value<'js>) -> Result<Value<'js>> {
    let d = bytes(&ctx, &data)?;
    match hash(&name, &d) {
        Some(h) => array_buffer(&ctx, h),
        None => Err(unsupported_hash(&ctx, &name)),
    }
}

fn hmac<'js>(ctx: Ctx<'js>, name: String, key: Value<'js>, data: Value<'js>) -> Result<Value<'js>> {
    let (k, d) = (bytes(&ctx, &key)?, bytes(&ctx, &data)?);
    match hmac_raw(&name, &k, &d) {
        Some(h) => array_buffer(&ctx, h),
        None => Err(unsupported_hash(&ctx, &name)),
    }
}

fn pbkdf2<'js>(
    ctx: Ctx<'js>,
    name: String,
    password: Value<'js>,
    salt: Value<'js>,
    iterations: u32,
    bits: usize,
) -> Result<Value<'js>> {
    let (pw, salt) = (bytes(&ctx, &password)?, bytes(&ctx, &salt)?);
    let len = bits / 8;
    let mut out = Vec::with_capacity(len);
    let mut block = 1u32;
    while out.len() < len {
        let mut s = salt.clone();
        s.extend_from_slice(&block.to_be_bytes());
        let mut u = hmac_raw(&name, &pw, &s).ok_or_else(|| unsupported_hash(&ctx, &name))?;
        let mut t = u.clone();
        for _ in 1..iterations {
            u = hmac_raw(&name, &pw, &u).ok_or_else(|| unsupported_hash(&ctx, &name))?;
            t.iter_mut().zip(&u).for_each(|(a, b)| *a ^= b);
        }
        out.extend_from_slice(&t);
        block += 1;
    }
    out.truncate(len);
    array_buffer(&ctx, out)
}

fn hkdf<'js>(
    ctx: Ctx<'js>,
    name: String,
    ikm: Value<'js>,
    salt: Value<'js>,
    info: Value<'js>,
    bits: usize,
) -> Result<Value<'js>> {
    let (ikm, mut salt, info) = (bytes(&ctx, &ikm)?, bytes(&ctx, &salt)?, bytes(&ctx, &info)?);
    let hlen = hash(&name, b"")
        .ok_or_else(|| unsupported_hash(&ctx, &name))?
        .len();
    if salt.is_empty() {
        salt = vec![0u8; hlen];
    }
    let len = bits / 8;
    if len > 255 * hlen {
        return Err(throw_dom(
            &ctx,
            "OperationError",
            "HKDF length is too large",
        ));
    }
    let prk = hmac_raw(&name, &salt, &ikm).ok_or_else(|| unsupported_hash(&ctx, &name))?;
    let (mut out, mut t) = (Vec::with_capacity(len), Vec::new());
    let mut i = 1u8;
    while out.len() < len {
        let mut m = t.clone();
        m.extend_from_slice(&info);
        m.push(i);
        t = hmac_raw(&name, &prk, &m).ok_or_else(|| unsupported_hash(&ctx, &name))?;
        out.extend_from_slice(&t);
        i = i.wrapping_add(1);
    }
    out.truncate(len);
    array_buffer(&ctx, out)
}

fn timing_safe_equal<'js>(ctx: Ctx<'js>, a: Value<'js>, b: Value<'js>) -> Result<bool> {
    let (a, b) = (bytes(&ctx, &a)?, bytes(&ctx, &b)?);
    if a.len() != b.len() {
        return Ok(false);
    }
    Ok(a.iter().zip(&b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0)
}

fn gcm_run<C>(
    encrypt: bool,
    key: &[u8],
    iv: &[u8],
    aad: &[u8],
    data: &[u8],
    tag: usize,
) -> Option<Vec<u8>>
where
    C: KeyInit + AeadInPlace,
{
    let cipher = C::new_from_slice(key).ok()?;
    let nonce = aes_gcm::aead::generic_array::GenericArray::from_slice(iv);
    if encrypt {
        let mut buf = data.to_vec();
        let t = cipher
            .encrypt_in_place_detached(nonce, aad, &mut buf)
            .ok()?;
        debug_assert_eq!(t.len(), tag);
        buf.extend_from_slice(&t);
        Some(buf)
    } else {
        if data.len() < tag {
            return None;
        }
        let (ct, t) = data.split_at(data.len() - tag);
        let mut buf = ct.to_vec();
        let t = aes_gcm::aead::generic_array::GenericArray::from_slice(t);
        cipher
            .decrypt_in_place_detached(nonce, aad, &mut buf, t)
            .ok()?;
        Some(buf)
    }
}

fn gcm_dispatch(
    encrypt: bool,
    key: &[u8],
    iv: &[u8],
    aad: &[u8],
    data: &[u8],
    tag: usize,
) -> Option<Vec<u8>> {
    macro_rules! by_tag {
        ($aes:ty, $n:ty) => {
            match tag {
                12 => gcm_run::<AesGcm<$aes, $n, U12>>(encrypt, key, iv, aad, data, tag),
                13 => gcm_run::<AesGcm<$aes, $n, U13>>(encrypt, key, iv, aad, data, tag),
                14 => gcm_run::<AesGcm<$aes, $n, U14>>(encrypt, key, iv, aad, data, tag),
                15 => gcm_run::<AesGcm<$aes, $n, U15>>(encrypt, key, iv, aad, data, tag),
                16 => gcm_run::<AesGcm<$aes, $n, U16>>(encrypt, key, iv, aad, data, tag),
                _ => None,
            }
        };
    }
    macro_rules! by_nonce {
        ($aes:ty) => {
            match iv.len() {
                12 => by_tag!($aes, U12),
                16 => by_tag!($aes, U16),
                _ => None,
            }
        };
    }
    match key.len() {
        16 => by_nonce!(Aes128),
        24 => by_nonce!(Aes192),
        32 => by_nonce!(Aes256),
        _ => None,
    }
}

/// `aesGcm(encrypt, key, iv, aad, tagBytes, data)`.
fn aes_gcm<'js>(
    ctx: Ctx<'js>,
    encrypt: bool,
    key: Value<'js>,
    iv: Value<'js>,
    aad: Value<'js>,
    tag: usize,
    data: Value<'js>,
) -> Result<Value<'js>> {
    let (key, iv, aad, data) = (
        bytes(&ctx, &key)?,
        bytes(&ctx, &iv)?,
        bytes(&ctx, &aad)?,
        bytes(&ctx, &data)?,
    );
    if iv.len() != 12 && iv.len() != 16 {
        return Err(throw_dom(
            &ctx,
            "NotSupportedError",
            "AES-GCM IV lengths other than 12 or 16 bytes are not supported",
        ));
    }
    match gcm_dispatch(encrypt, &key, &iv, &aad, &data, tag) {
        Some(out) => array_buffer(&ctx, out),
        None if encrypt => Err(throw_dom(
            &ctx,
            "OperationError",
            "AES-GCM encryption failed",
        )),
        None => {
            let n = data.len().saturating_sub(tag);
            Err(throw_dom(
                &ctx,
                "OperationError",
                &format!(
                    "{DECRYPT_FAILED} Input length was {n}, output length expected to be {n} for AES-GCM"
                ),
            ))
        }
    }
}

/// One AES block cipher of any of the three key sizes.
enum AesKey {
    A128(Box<Aes128>),
    A192(Box<Aes192>),
    A256(Box<Aes256>),
}

impl AesKey {
    fn new(key: &[u8]) -> Option<AesKey> {
        match key.len() {
            16 => Aes128::new_from_slice(key)
                .ok()
                .map(|k| AesKey::A128(Box::new(k))),
            24 => Aes192::new_from_slice(key)
                .ok()
                .map(|k| AesKey::A192(Box::new(k))),
            32 => Aes256::new_from_slice(key)
                .ok()
                .map(|k| AesKey::A256(Box::new(k))),
            _ => None,
        }
    }
    fn encrypt(&self, block: &mut Block) {
        match self {
            AesKey::A128(k) => k.encrypt_block(block),
            AesKey::A192(k) => k.encrypt_block(block),
            AesKey::A256(k) => k.encrypt_block(block),
        }
    }
    fn decrypt(&self, block: &mut Block) {
        match self {
            AesKey::A128(k) => k.decrypt_block(block),
            AesKey::A192(k) => k.decrypt_block(block),
            AesKey::A256(k) => k.decrypt_block(block),
        }
    }
}

/// CBC with PKCS#7 padding; `None` when decryption finds no valid padding.
fn cbc(encrypt: bool, key: &AesKey, iv: [u8; 16], data: &[u8]) -> Option<Vec<u8>> {
    let mut prev = Block::from(iv);
    if encrypt {
        let pad = 16 - data.len() % 16;
        let mut buf = data.to_vec();
        buf.resize(data.len() + pad, pad as u8);
        for chunk in buf.chunks_exact_mut(16) {
            let mut block = Block::clone_from_slice(chunk);
            block.iter_mut().zip(prev.iter()).for_each(|(b, p)| *b ^= p);
            key.encrypt(&mut block);
            chunk.copy_from_slice(&block);
            prev = block;
        }
        return Some(buf);
    }
    if data.is_empty() || !data.len().is_multiple_of(16) {
        return None;
    }
    let mut out = Vec::with_capacity(data.len());
    for chunk in data.chunks_exact(16) {
        let mut block = Block::clone_from_slice(chunk);
        key.decrypt(&mut block);
        block.iter_mut().zip(prev.iter()).for_each(|(b, p)| *b ^= p);
        out.extend_from_slice(&block);
        prev = Block::clone_from_slice(chunk);
    }
    let pad = usize::from(*out.last()?);
    if pad == 0
        || pad > 16
        || out[out.len() - pad..]
            .iter()
            .any(|&b| usize::from(b) != pad)
    {
        return None;
    }
    out.truncate(out.len() - pad);
    Some(out)
}

/// CTR: the rightmost `bits` bits of the counter block count, wrapping
/// within those bits; the rest of the block stays fixed.
fn ctr(key: &AesKey, counter: [u8; 16], bits: u32, data: &[u8]) -> Vec<u8> {
    let whole = u128::from_be_bytes(counter);
    let mask = if bits >= 128 {
        u128::MAX
    } else {
        (1u128 << bits) - 1
    };
    let mut out = Vec::with_capacity(data.len());
    for (i, chunk) in data.chunks(16).enumerate() {
        let count = (whole & mask).wrapping_add(i as u128) & mask;
        let mut block = Block::from(((whole & !mask) | count).to_be_bytes());
        key.encrypt(&mut block);
        out.extend(chunk.iter().zip(block.iter()).map(|(d, k)| d ^ k));
    }
    out
}

const DECRYPT_FAILED: &str = "Decryption failed. This could be due to a ciphertext authentication failure, bad padding, incorrect CryptoKey, or another algorithm-specific reason.";

/// `aesCbc(encrypt, key, iv, data)`; the JS side checks the IV length.
fn aes_cbc<'js>(
    ctx: Ctx<'js>,
    encrypt: bool,
    key: Value<'js>,
    iv: Value<'js>,
    data: Value<'js>,
) -> Result<Value<'js>> {
    let (key, iv, data) = (bytes(&ctx, &key)?, bytes(&ctx, &iv)?, bytes(&ctx, &data)?);
    let (Some(key), Ok(iv)) = (AesKey::new(&key), <[u8; 16]>::try_from(iv.as_slice())) else {
        return Err(throw_dom(
            &ctx,
            "OperationError",
            "Invalid AES-CBC key or IV.",
        ));
    };
    match cbc(encrypt, &key, iv, &data) {
        Some(out) => array_buffer(&ctx, out),
        None => Err(throw_dom(
            &ctx,
            "OperationError",
            &format!(
                "{DECRYPT_FAILED} Input length was {}, output length expected to be 0 for AES-CBC",
                data.len()
            ),
        )),
    }
}

/// `aesCtr(key, counter, lengthBits, data)`: encryption and decryption are
/// the same operation. The JS side checks the counter and its length.
fn aes_ctr<'js>(
    ctx: Ctx<'js>,
    key: Value<'js>,
    counter: Value<'js>,
    bits: u32,
    data: Value<'js>,
) -> Result<Value<'js>> {
    let (key, counter, data) = (
        bytes(&ctx, &key)?,
        bytes(&ctx, &counter)?,
        bytes(&ctx, &data)?,
    );
    let (Some(key), Ok(counter)) = (AesKey::new(&key), <[u8; 16]>::try_from(counter.as_slice()))
    else {
        return Err(throw_dom(
            &ctx,
            "OperationError",
            "Invalid AES-CTR key or counter.",
        ));
    };
    // More blocks than the counter bits can number would reuse a keystream block.
    let blocks = data.len().div_ceil(16) as u128;
    if bits < 128 && blocks > (1u128 << bits) {
        return Err(throw_dom(
            &ctx,
            "OperationError",
            "Counter block values will repeat.",
        ));
    }
    array_buffer(&ctx, ctr(&key, counter, bits.clamp(1, 128), &data))
}

/// `aesCbcRaw(encrypt, key, iv, data)`: CBC over whole blocks without
/// padding, for node:crypto's streaming ciphers (which pad in JS).
fn aes_cbc_raw<'js>(
    ctx: Ctx<'js>,
    encrypt: bool,
    key: Value<'js>,
    iv: Value<'js>,
    data: Value<'js>,
) -> Result<Value<'js>> {
    let (key, iv, data) = (bytes(&ctx, &key)?, bytes(&ctx, &iv)?, bytes(&ctx, &data)?);
    let (Some(key), Ok(iv)) = (AesKey::new(&key), <[u8; 16]>::try_from(iv.as_slice())) else {
        return Err(throw_dom(&ctx, "OperationError", "Invalid AES key or IV"));
    };
    if !data.len().is_multiple_of(16) {
        return Err(throw_dom(
            &ctx,
            "OperationError",
            "AES-CBC input is not a whole number of blocks",
        ));
    }
    let mut prev = Block::from(iv);
    let mut out = Vec::with_capacity(data.len());
    for chunk in data.chunks_exact(16) {
        let mut block = Block::clone_from_slice(chunk);
        if encrypt {
            block.iter_mut().zip(prev.iter()).for_each(|(b, p)| *b ^= p);
            key.encrypt(&mut block);
            prev = block;
        } else {
            key.decrypt(&mut block);
            block.iter_mut().zip(prev.iter()).for_each(|(b, p)| *b ^= p);
            prev = Block::clone_from_slice(chunk);
        }
        out.extend_from_slice(&block);
    }
    array_buffer(&ctx, out)
}

/// `scrypt(password, salt, logN, r, p, keylen)` (RFC 7914); the JS side
/// checks the parameters and the memory bound before calling.
fn scrypt_kdf<'js>(
    ctx: Ctx<'js>,
    password: Value<'js>,
    salt: Value<'js>,
    log_n: u8,
    r: u32,
    p: u32,
    len: usize,
) -> Result<Value<'js>> {
    let (pw, salt) = (bytes(&ctx, &password)?, bytes(&ctx, &salt)?);
    let bad = |ctx: &Ctx<'_>| throw_dom(ctx, "OperationError", "Invalid scrypt params");
    let params = scrypt::Params::new(log_n, r, p, len.clamp(10, 64)).map_err(|_| bad(&ctx))?;
    let mut out = vec![0u8; len];
    scrypt::scrypt(&pw, &salt, &params, &mut out).map_err(|_| bad(&ctx))?;
    array_buffer(&ctx, out)
}

fn pair<'js>(ctx: &Ctx<'js>, a: Vec<u8>, b: Option<Vec<u8>>) -> Result<Value<'js>> {
    let arr = Array::new(ctx.clone())?;
    arr.set(0, u8array(ctx, a)?)?;
    match b {
        Some(b) => arr.set(1, u8array(ctx, b)?)?,
        None => arr.set(1, Value::new_null(ctx.clone()))?,
    }
    Ok(arr.into_value())
}

fn data_error(ctx: &Ctx<'_>, what: &str) -> rquickjs::Error {
    throw_dom(ctx, "DataError", &format!("Invalid {what} key data"))
}

/// `ecImport(format, data)` -> [uncompressed point, private scalar | null].
fn ec_import<'js>(ctx: Ctx<'js>, format: String, data: Value<'js>) -> Result<Value<'js>> {
    let d = bytes(&ctx, &data)?;
    match format.as_str() {
        "raw" => {
            let vk = VerifyingKey::from_sec1_bytes(&d).map_err(|_| data_error(&ctx, "raw EC"))?;
            pair(&ctx, vk.to_encoded_point(false).as_bytes().to_vec(), None)
        }
        "spki" => {
            let vk =
                VerifyingKey::from_public_key_der(&d).map_err(|_| data_error(&ctx, "SPKI EC"))?;
            pair(&ctx, vk.to_encoded_point(false).as_bytes().to_vec(), None)
        }
        "pkcs8" => {
            let sk = SigningKey::from_pkcs8_der(&d).map_err(|_| data_error(&ctx, "PKCS8 EC"))?;
            let pt = sk
                .verifying_key()
                .to_encoded_point(false)
                .as_bytes()
                .to_vec();
            pair(&ctx, pt, Some(sk.to_bytes().to_vec()))
        }
        _ => Err(throw_dom(
            &ctx,
            "NotSupportedError",
            &format!("Unsupported key format: {format}"),
        )),
    }
}

/// `ecFromJwk(x, y, d | null)` -> [point, scalar | null]; checks the point is on
/// the curve and that `d` matches it.
fn ec_from_jwk<'js>(
    ctx: Ctx<'js>,
    x: Value<'js>,
    y: Value<'js>,
    d: Value<'js>,
) -> Result<Value<'js>> {
    let (x, y) = (bytes(&ctx, &x)?, bytes(&ctx, &y)?);
    if x.len() != 32 || y.len() != 32 {
        return Err(data_error(&ctx, "JWK EC"));
    }
    let mut pt = vec![4u8];
    pt.extend_from_slice(&x);
    pt.extend_from_slice(&y);
    VerifyingKey::from_sec1_bytes(&pt).map_err(|_| data_error(&ctx, "JWK EC"))?;
    if d.is_null() || d.is_undefined() {
        return pair(&ctx, pt, None);
    }
    let d = bytes(&ctx, &d)?;
    let sk = SigningKey::from_slice(&d).map_err(|_| data_error(&ctx, "JWK EC"))?;
    if sk.verifying_key().to_encoded_point(false).as_bytes() != pt.as_slice() {
        return Err(data_error(&ctx, "JWK EC"));
    }
    pair(&ctx, pt, Some(d))
}

fn ec_export<'js>(
    ctx: Ctx<'js>,
    format: String,
    point: Value<'js>,
    d: Value<'js>,
) -> Result<Value<'js>> {
    let pt = bytes(&ctx, &point)?;
    let fail = |ctx: &Ctx<'_>| throw_dom(ctx, "OperationError", "Key export failed");
    match format.as_str() {
        "raw" => array_buffer(&ctx, pt),
        "spki" => {
            let vk = VerifyingKey::from_sec1_bytes(&pt).map_err(|_| fail(&ctx))?;
            let der = vk.to_public_key_der().map_err(|_| fail(&ctx))?;
            array_buffer(&ctx, der.as_bytes().to_vec())
        }
        "pkcs8" => {
            let d = bytes(&ctx, &d)?;
            let sk = SigningKey::from_slice(&d).map_err(|_| fail(&ctx))?;
            let der = sk.to_pkcs8_der().map_err(|_| fail(&ctx))?;
            array_buffer(&ctx, der.as_bytes().to_vec())
        }
        _ => Err(throw_dom(
            &ctx,
            "NotSupportedError",
            &format!("Unsupported key format: {format}"),
        )),
    }
}

fn ec_sign<'js>(
    ctx: Ctx<'js>,
    hash_name: String,
    d: Value<'js>,
    data: Value<'js>,
) -> Result<Value<'js>> {
    let (d, data) = (bytes(&ctx, &d)?, bytes(&ctx, &data)?);
    let h = hash(&hash_name, &data).ok_or_else(|| unsupported_hash(&ctx, &hash_name))?;
    let sk = SigningKey::from_slice(&d)
        .map_err(|_| throw_dom(&ctx, "OperationError", "Invalid EC private key"))?;
    let sig: Signature = sk
        .sign_prehash(&h)
        .map_err(|_| throw_dom(&ctx, "OperationError", "ECDSA signing failed"))?;
    array_buffer(&ctx, sig.to_bytes().to_vec())
}

fn ec_verify<'js>(
    ctx: Ctx<'js>,
    hash_name: String,
    point: Value<'js>,
    sig: Value<'js>,
    data: Value<'js>,
) -> Result<bool> {
    let (pt, sig, data) = (
        bytes(&ctx, &point)?,
        bytes(&ctx, &sig)?,
        bytes(&ctx, &data)?,
    );
    let h = hash(&hash_name, &data).ok_or_else(|| unsupported_hash(&ctx, &hash_name))?;
    let Ok(vk) = VerifyingKey::from_sec1_bytes(&pt) else {
        return Ok(false);
    };
    let Ok(sig) = Signature::from_slice(&sig) else {
        return Ok(false);
    };
    Ok(vk.verify_prehash(&h, &sig).is_ok())
}

fn ec_generate<'js>(ctx: Ctx<'js>) -> Result<Value<'js>> {
    let sk = SigningKey::random(&mut OsRandom);
    let pt = sk
        .verifying_key()
        .to_encoded_point(false)
        .as_bytes()
        .to_vec();
    pair(&ctx, pt, Some(sk.to_bytes().to_vec()))
}

fn rsa_parts<'js>(
    ctx: &Ctx<'js>,
    key: &RsaPublicKey,
    private: Option<&RsaPrivateKey>,
) -> Result<Value<'js>> {
    let arr = Array::new(ctx.clone())?;
    arr.set(0, u8array(ctx, key.n().to_bytes_be())?)?;
    arr.set(1, u8array(ctx, key.e().to_bytes_be())?)?;
    match private {
        Some(p) => {
            let der = p
                .to_pkcs8_der()
                .map_err(|_| throw_dom(ctx, "DataError", "Invalid RSA private key"))?;
            arr.set(2, u8array(ctx, der.as_bytes().to_vec())?)?;
        }
        None => arr.set(2, Value::new_null(ctx.clone()))?,
    }
    Ok(arr.into_value())
}

/// `rsaImport(format, der)` -> [n, e, pkcs8 | null].
fn rsa_import<'js>(ctx: Ctx<'js>, format: String, data: Value<'js>) -> Result<Value<'js>> {
    let d = bytes(&ctx, &data)?;
    match format.as_str() {
        "spki" => {
            let k =
                RsaPublicKey::from_public_key_der(&d).map_err(|_| data_error(&ctx, "SPKI RSA"))?;
            rsa_parts(&ctx, &k, None)
        }
        "pkcs8" => {
            let k = RsaPrivateKey::from_pkcs8_der(&d).map_err(|_| data_error(&ctx, "PKCS8 RSA"))?;
            rsa_parts(&ctx, &k.to_public_key(), Some(&k))
        }
        _ => Err(throw_dom(
            &ctx,
            "NotSupportedError",
            &format!("Unsupported key format: {format}"),
        )),
    }
}

/// `rsaFromJwk(n, e, d | null, p | null, q | null)` -> [n, e, pkcs8 | null].
fn rsa_from_jwk<'js>(
    ctx: Ctx<'js>,
    n: Value<'js>,
    e: Value<'js>,
    d: Value<'js>,
    p: Value<'js>,
    q: Value<'js>,
) -> Result<Value<'js>> {
    let n = BigUint::from_bytes_be(&bytes(&ctx, &n)?);
    let e = BigUint::from_bytes_be(&bytes(&ctx, &e)?);
    let public =
        RsaPublicKey::new(n.clone(), e.clone()).map_err(|_| data_error(&ctx, "JWK RSA"))?;
    if d.is_null() || d.is_undefined() {
        return rsa_parts(&ctx, &public, None);
    }
    let d = BigUint::from_bytes_be(&bytes(&ctx, &d)?);
    let primes = if p.is_null() || p.is_undefined() || q.is_null() || q.is_undefined() {
        Vec::new()
    } else {
        vec![
            BigUint::from_bytes_be(&bytes(&ctx, &p)?),
            BigUint::from_bytes_be(&bytes(&ctx, &q)?),
        ]
    };
    let mut k =
        RsaPrivateKey::from_components(n, e, d, primes).map_err(|_| data_error(&ctx, "JWK RSA"))?;
    k.precompute().map_err(|_| data_error(&ctx, "JWK RSA"))?;
    rsa_parts(&ctx, &public, Some(&k))
}

/// `rsaPrivateJwk(pkcs8)` -> [d, p, q, dp, dq, qi] big-endian bytes.
fn rsa_private_jwk<'js>(ctx: Ctx<'js>, der: Value<'js>) -> Result<Value<'js>> {
    let der = bytes(&ctx, &der)?;
    let mut k = RsaPrivateKey::from_pkcs8_der(&der).map_err(|_| data_error(&ctx, "PKCS8 RSA"))?;
    k.precompute().map_err(|_| data_error(&ctx, "PKCS8 RSA"))?;
    let arr = Array::new(ctx.clone())?;
    arr.set(0, u8array(&ctx, k.d().to_bytes_be())?)?;
    let primes = k.primes();
    if primes.len() >= 2 {
        arr.set(1, u8array(&ctx, primes[0].to_bytes_be())?)?;
        arr.set(2, u8array(&ctx, primes[1].to_bytes_be())?)?;
    }
    if let (Some(dp), Some(dq), Some(qi)) = (k.dp(), k.dq(), k.qinv()) {
        arr.set(3, u8array(&ctx, dp.to_bytes_be())?)?;
        arr.set(4, u8array(&ctx, dq.to_bytes_be())?)?;
        arr.set(5, u8array(&ctx, qi.to_bytes_be().1)?)?;
    }
    Ok(arr.into_value())
}

fn rsa_export_spki<'js>(ctx: Ctx<'js>, n: Value<'js>, e: Value<'js>) -> Result<Value<'js>> {
    let n = BigUint::from_bytes_be(&bytes(&ctx, &n)?);
    let e = BigUint::from_bytes_be(&bytes(&ctx, &e)?);
    let fail = |ctx: &Ctx<'_>| throw_dom(ctx, "OperationError", "Key export failed");
    let k = RsaPublicKey::new(n, e).map_err(|_| fail(&ctx))?;
    let der = k.to_public_key_der().map_err(|_| fail(&ctx))?;
    array_buffer(&ctx, der.as_bytes().to_vec())
}

fn rsa_scheme_hash<'js>(ctx: &Ctx<'js>, hash_name: &str, data: &[u8]) -> Result<Vec<u8>> {
    if hash_name == "MD5" {
        return Err(unsupported_hash(ctx, hash_name));
    }
    hash(hash_name, data).ok_or_else(|| unsupported_hash(ctx, hash_name))
}

fn pkcs1(hash_name: &str) -> Pkcs1v15Sign {
    match hash_name {
        "SHA-1" => Pkcs1v15Sign::new::<Sha1>(),
        "SHA-384" => Pkcs1v15Sign::new::<Sha384>(),
        "SHA-512" => Pkcs1v15Sign::new::<Sha512>(),
        _ => Pkcs1v15Sign::new::<Sha256>(),
    }
}

fn pss(hash_name: &str, salt: usize) -> Pss {
    match hash_name {
        "SHA-1" => Pss::new_with_salt::<Sha1>(salt),
        "SHA-384" => Pss::new_with_salt::<Sha384>(salt),
        "SHA-512" => Pss::new_with_salt::<Sha512>(salt),
        _ => Pss::new_with_salt::<Sha256>(salt),
    }
}

/// `rsaSign(scheme, hash, pkcs8, data, saltLength)`; scheme is
/// "RSASSA-PKCS1-v1_5" or "RSA-PSS".
fn rsa_sign<'js>(
    ctx: Ctx<'js>,
    scheme: String,
    hash_name: String,
    der: Value<'js>,
    data: Value<'js>,
    salt: usize,
) -> Result<Value<'js>> {
    let (der, data) = (bytes(&ctx, &der)?, bytes(&ctx, &data)?);
    let h = rsa_scheme_hash(&ctx, &hash_name, &data)?;
    let k = RsaPrivateKey::from_pkcs8_der(&der)
        .map_err(|_| throw_dom(&ctx, "OperationError", "Invalid RSA private key"))?;
    let sig = if scheme == "RSA-PSS" {
        k.sign_with_rng(&mut OsRandom, pss(&hash_name, salt), &h)
    } else {
        k.sign(pkcs1(&hash_name), &h)
    };
    match sig {
        Ok(s) => array_buffer(&ctx, s),
        Err(_) => Err(throw_dom(&ctx, "OperationError", "RSA signing failed")),
    }
}

fn rsa_verify<'js>(
    ctx: Ctx<'js>,
    scheme: String,
    hash_name: String,
    key: Array<'js>,
    sig: Value<'js>,
    data: Value<'js>,
    salt: usize,
) -> Result<bool> {
    let n = BigUint::from_bytes_be(&bytes(&ctx, &key.get(0)?)?);
    let e = BigUint::from_bytes_be(&bytes(&ctx, &key.get(1)?)?);
    let (sig, data) = (bytes(&ctx, &sig)?, bytes(&ctx, &data)?);
    let h = rsa_scheme_hash(&ctx, &hash_name, &data)?;
    let Ok(k) = RsaPublicKey::new(n, e) else {
        return Ok(false);
    };
    let ok = if scheme == "RSA-PSS" {
        k.verify(pss(&hash_name, salt), &h, &sig).is_ok()
    } else {
        k.verify(pkcs1(&hash_name), &h, &sig).is_ok()
    };
    Ok(ok)
}

fn rsa_generate<'js>(ctx: Ctx<'js>, bits: usize, e: Value<'js>) -> Result<Value<'js>> {
    let e = BigUint::from_bytes_be(&bytes(&ctx, &e)?);
    let k = RsaPrivateKey::new_with_exp(&mut OsRandom, bits, &e).map_err(|err| {
        throw_dom(
            &ctx,
            "OperationError",
            &format!("RSA key generation failed: {err}"),
        )
    })?;
    rsa_parts(&ctx, &k.to_public_key(), Some(&k))
}

pub fn install<'js>(ctx: &Ctx<'js>, native: &Object<'js>) -> Result<()> {
    native.set("digest", Function::new(ctx.clone(), digest)?)?;
    native.set("hmac", Function::new(ctx.clone(), hmac)?)?;
    native.set("pbkdf2", Function::new(ctx.clone(), pbkdf2)?)?;
    native.set("hkdf", Function::new(ctx.clone(), hkdf)?)?;
    native.set(
        "timingSafeEqual",
        Function::new(ctx.clone(), timing_safe_equal)?,
    )?;
    native.set("aesGcm", Function::new(ctx.clone(), aes_gcm)?)?;
    native.set("aesCbc", Function::new(ctx.clone(), aes_cbc)?)?;
    native.set("aesCtr", Function::new(ctx.clone(), aes_ctr)?)?;
    native.set("aesCbcRaw", Function::new(ctx.clone(), aes_cbc_raw)?)?;
    native.set("scrypt", Function::new(ctx.clone(), scrypt_kdf)?)?;
    native.set("ecImport", Function::new(ctx.clone(), ec_import)?)?;
    native.set("ecFromJwk", Function::new(ctx.clone(), ec_from_jwk)?)?;
    native.set("ecExport", Function::new(ctx.clone(), ec_export)?)?;
    native.set("ecSign", Function::new(ctx.clone(), ec_sign)?)?;
    native.set("ecVerify", Function::new(ctx.clone(), ec_verify)?)?;
    native.set("ecGenerate", Function::new(ctx.clone(), ec_generate)?)?;
    native.set("rsaImport", Function::new(ctx.clone(), rsa_import)?)?;
    native.set("rsaFromJwk", Function::new(ctx.clone(), rsa_from_jwk)?)?;
    native.set(
        "rsaPrivateJwk",
        Function::new(ctx.clone(), rsa_private_jwk)?,
    )?;
    native.set(
        "rsaExportSpki",
        Function::new(ctx.clone(), rsa_export_spki)?,
    )?;
    native.set("rsaSign", Function::new(ctx.clone(), rsa_sign)?)?;
    native.set("rsaVerify", Function::new(ctx.clone(), rsa_verify)?)?;
    native.set("rsaGenerate", Function::new(ctx.clone(), rsa_generate)?)?;
    Ok(())
}
