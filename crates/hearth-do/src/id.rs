//! Durable Object ids, shaped as Cloudflare's: 32 bytes shown as 64
//! lowercase hex digits. The first 16 bytes name the object (random for
//! `new_unique_id`, a keyed hash of the name for `id_from_name`); the last 16
//! are a MAC of the first half under the namespace's key, so an id of another
//! namespace (or a typo) is caught by `id_from_string` without any lookup.
//!
//! The namespace key is an HMAC of a per-data-dir secret (created on first
//! use and stored durably) and the namespace's id key, so names map to the
//! same ids across restarts and processes, and ids cannot be forged for a
//! data directory without its secret.

use std::fmt;
use std::fs;
use std::io::{ErrorKind, Write};
use std::path::Path;

use hmac::digest::generic_array::GenericArray;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::{DoError, Result};

const ID_BYTES: usize = 32;
const BASE_BYTES: usize = 16;
const SECRET_BYTES: usize = 32;

/// The id of one Durable Object.
#[derive(Clone)]
pub struct DurableObjectId {
    bytes: [u8; ID_BYTES],
    name: Option<String>,
}

impl DurableObjectId {
    /// The name given to `id_from_name`, for ids made that way in this
    /// process; `None` for unique ids and ids parsed from strings, as on
    /// Cloudflare.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// Whether two ids denote the same object (names are not compared).
    pub fn equals(&self, other: &DurableObjectId) -> bool {
        self.bytes == other.bytes
    }

    pub fn as_bytes(&self) -> &[u8; ID_BYTES] {
        &self.bytes
    }
}

impl PartialEq for DurableObjectId {
    fn eq(&self, other: &Self) -> bool {
        self.equals(other)
    }
}

impl Eq for DurableObjectId {}

impl std::hash::Hash for DurableObjectId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.bytes.hash(state);
    }
}

impl fmt::Display for DurableObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.bytes))
    }
}

impl fmt::Debug for DurableObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DurableObjectId")
            .field("id", &self.to_string())
            .field("name", &self.name)
            .finish()
    }
}

/// Makes and checks the ids of one namespace.
#[derive(Clone)]
pub(crate) struct IdFactory {
    key: [u8; 32],
}

impl fmt::Debug for IdFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IdFactory")
    }
}

impl IdFactory {
    pub(crate) fn new(secret: &[u8; SECRET_BYTES], id_key: &str) -> Self {
        Self {
            key: hmac(
                secret,
                &[b"hearth durable object namespace\0", id_key.as_bytes()],
            ),
        }
    }

    pub(crate) fn named(&self, name: &str) -> DurableObjectId {
        let digest = hmac(&self.key, &[b"name\0", name.as_bytes()]);
        let mut base = [0u8; BASE_BYTES];
        base.copy_from_slice(&digest[..BASE_BYTES]);
        self.finish(base, Some(name.to_owned()))
    }

    pub(crate) fn unique(&self) -> Result<DurableObjectId> {
        let mut base = [0u8; BASE_BYTES];
        getrandom::fill(&mut base).map_err(|e| DoError::Random(e.to_string()))?;
        Ok(self.finish(base, None))
    }

    pub(crate) fn parse(&self, s: &str) -> Result<DurableObjectId> {
        let bytes = parse_hex_id(s)?;
        self.check(&bytes, s)?;
        Ok(DurableObjectId { bytes, name: None })
    }

    /// Whether `id` was made by this namespace.
    pub(crate) fn owns(&self, id: &DurableObjectId) -> bool {
        self.check(&id.bytes, "").is_ok()
    }

    fn check(&self, bytes: &[u8; ID_BYTES], shown: &str) -> Result<()> {
        let mac = hmac(&self.key, &[b"mac\0", &bytes[..BASE_BYTES]]);
        if mac[..ID_BYTES - BASE_BYTES] != bytes[BASE_BYTES..] {
            return Err(DoError::ForeignId {
                id: shown.to_owned(),
            });
        }
        Ok(())
    }

    fn finish(&self, base: [u8; BASE_BYTES], name: Option<String>) -> DurableObjectId {
        let mac = hmac(&self.key, &[b"mac\0", &base]);
        let mut bytes = [0u8; ID_BYTES];
        bytes[..BASE_BYTES].copy_from_slice(&base);
        bytes[BASE_BYTES..].copy_from_slice(&mac[..ID_BYTES - BASE_BYTES]);
        DurableObjectId { bytes, name }
    }
}

/// Parses 64 hex digits (either case, as workerd accepts).
fn parse_hex_id(s: &str) -> Result<[u8; ID_BYTES]> {
    let invalid = || DoError::InvalidId { id: s.to_owned() };
    if s.len() != ID_BYTES * 2 {
        return Err(invalid());
    }
    let mut out = [0u8; ID_BYTES];
    hex::decode_to_slice(s, &mut out).map_err(|_| invalid())?;
    Ok(out)
}

/// HMAC-SHA256 over the concatenation of `parts`. Keys here are at most 32
/// bytes; HMAC zero-pads short keys to the block size, so padding them
/// ourselves gives the same MAC without a fallible constructor.
fn hmac(key: &[u8; 32], parts: &[&[u8]]) -> [u8; 32] {
    let mut block = [0u8; 64];
    block[..32].copy_from_slice(key);
    let mut mac = <Hmac<Sha256> as hmac::digest::KeyInit>::new(GenericArray::from_slice(&block));
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// The id secret stored at `path`, `None` when there is none.
pub(crate) fn read_secret(path: &Path) -> Result<Option<[u8; SECRET_BYTES]>> {
    match fs::read_to_string(path) {
        Ok(text) => parse_secret(path, &text).map(Some),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(DoError::io(path, e)),
    }
}

/// Reads the data directory's id secret, creating it on first use. Two
/// processes racing to create it agree on one: the file is linked into
/// place only if absent, and the loser reads the winner's.
pub(crate) fn load_or_create_secret(path: &Path) -> Result<[u8; SECRET_BYTES]> {
    match fs::read_to_string(path) {
        Ok(text) => return parse_secret(path, &text),
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(DoError::io(path, e)),
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(|e| DoError::io(dir, e))?;
    let mut secret = [0u8; SECRET_BYTES];
    getrandom::fill(&mut secret).map_err(|e| DoError::Random(e.to_string()))?;
    let tmp = dir.join(format!(".secret.tmp-{}", std::process::id()));
    let written = (|| -> std::io::Result<()> {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(hex::encode(secret).as_bytes())?;
        f.sync_all()
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(DoError::io(&tmp, e));
    }
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            hearth_core::fs::sync_dir(dir).map_err(|e| DoError::io(dir, e))?;
            Ok(secret)
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            let text = fs::read_to_string(path).map_err(|e| DoError::io(path, e))?;
            parse_secret(path, &text)
        }
        Err(e) => Err(DoError::io(path, e)),
    }
}

/// Whether `root` (the `do/` directory) holds any object's database: one
/// `<class key>/<id>.sqlite` file.
pub(crate) fn holds_objects(root: &Path) -> Result<bool> {
    let classes = match fs::read_dir(root) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(DoError::io(root, e)),
    };
    for class in classes {
        let class = class.map_err(|e| DoError::io(root, e))?;
        if !class
            .file_type()
            .map_err(|e| DoError::io(root, e))?
            .is_dir()
        {
            continue;
        }
        let dir = class.path();
        for object in fs::read_dir(&dir).map_err(|e| DoError::io(&dir, e))? {
            let object = object.map_err(|e| DoError::io(&dir, e))?;
            if object.path().extension().is_some_and(|ext| ext == "sqlite") {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

fn parse_secret(path: &Path, text: &str) -> Result<[u8; SECRET_BYTES]> {
    let mut out = [0u8; SECRET_BYTES];
    hex::decode_to_slice(text.trim(), &mut out).map_err(|_| DoError::CorruptSecret {
        path: path.display().to_string(),
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_case_2_shape() {
        // RFC 4231 test case 2 uses the key "Jefe"; zero-padding is HMAC's own rule.
        let mut key = [0u8; 32];
        key[..4].copy_from_slice(b"Jefe");
        let out = hmac(&key, &[b"what do ya want ", b"for nothing?"]);
        assert_eq!(
            hex::encode(out),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn ids_round_trip_and_reject_tampering() {
        let f = IdFactory::new(&[7; 32], "Counter");
        let id = f.named("a");
        assert_eq!(f.parse(&id.to_string()).unwrap(), id);
        let mut s = id.to_string();
        s.replace_range(0..1, if s.starts_with('0') { "1" } else { "0" });
        assert!(matches!(f.parse(&s), Err(DoError::ForeignId { .. })));
    }
}
