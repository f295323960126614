//! The directory backend: finds a file for a decoded request path without
//! leaving the directory, and computes content ETags (cached by file
//! identity, so a file is hashed again only after it changes).

use std::collections::HashMap;
use std::fs::{File, Metadata};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use sha2::{Digest, Sha256};

use crate::error::AssetError;
use crate::validate::{AssetLimits, IGNORED_ROOT_FILES, file_segments};

/// Hex digits of a content hash kept as the ETag (Cloudflare's asset hashes
/// are 32 hex digits too).
const ETAG_HEX_LEN: usize = 32;
/// Read size while hashing.
const HASH_CHUNK: usize = 64 * 1024;
/// ETags remembered; beyond this the cache is cleared rather than grown.
const MAX_CACHED_ETAGS: usize = 100_000;

/// What identifies one version of a file cheaply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
}

impl Stamp {
    fn of(m: &Metadata) -> Stamp {
        Stamp {
            len: m.len(),
            modified: m.modified().ok(),
        }
    }
}

/// A file an asset path resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Found {
    pub path: PathBuf,
    pub etag: String,
}

pub(crate) struct AssetDir {
    root: PathBuf,
    etags: Mutex<HashMap<PathBuf, (Stamp, String)>>,
}

impl AssetDir {
    pub fn open(dir: &Path) -> Result<AssetDir, AssetError> {
        let root = dir
            .canonicalize()
            .map_err(|_| AssetError::MissingDirectory(dir.to_path_buf()))?;
        if !root.is_dir() {
            return Err(AssetError::MissingDirectory(dir.to_path_buf()));
        }
        Ok(AssetDir {
            root,
            etags: Mutex::new(HashMap::new()),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file a decoded path names, if it is a regular file inside the
    /// directory once symlinks are followed.
    pub fn find(&self, decoded: &str) -> Option<Found> {
        let segments = file_segments(decoded)?;
        let mut path = self.root.clone();
        for s in segments {
            path.push(s);
        }
        let real = path.canonicalize().ok()?;
        if !real.starts_with(&self.root) {
            return None;
        }
        let meta = std::fs::metadata(&real).ok()?;
        if !meta.is_file() {
            return None;
        }
        let etag = self.etag_of(&real, Stamp::of(&meta), None).ok()?;
        Some(Found { path: real, etag })
    }

    /// Opens a found file for serving; the ETag is recomputed if the file
    /// changed since it was found.
    pub fn open_file(&self, found: &Found) -> Result<(File, u64, String), AssetError> {
        let mut file =
            File::open(&found.path).map_err(|e| AssetError::io("open", &found.path, e))?;
        let meta = file
            .metadata()
            .map_err(|e| AssetError::io("stat", &found.path, e))?;
        let etag = self.etag_of(&found.path, Stamp::of(&meta), Some(&mut file))?;
        Ok((file, meta.len(), etag))
    }

    fn etag_of(
        &self,
        path: &Path,
        stamp: Stamp,
        open: Option<&mut File>,
    ) -> Result<String, AssetError> {
        if let Some((cached, etag)) = self.lock().get(path)
            && *cached == stamp
        {
            return Ok(etag.clone());
        }
        let etag = match open {
            Some(file) => {
                let etag = hash(file).map_err(|e| AssetError::io("read", path, e))?;
                file.seek(SeekFrom::Start(0))
                    .map_err(|e| AssetError::io("seek", path, e))?;
                etag
            }
            None => {
                let mut file = File::open(path).map_err(|e| AssetError::io("open", path, e))?;
                hash(&mut file).map_err(|e| AssetError::io("read", path, e))?
            }
        };
        let mut cache = self.lock();
        if cache.len() >= MAX_CACHED_ETAGS {
            cache.clear();
        }
        cache.insert(path.to_path_buf(), (stamp, etag.clone()));
        Ok(etag)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, (Stamp, String)>> {
        match self.etags.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Walks the directory and checks it against the limits, as wrangler
    /// does before an upload.
    pub fn check(&self, limits: &AssetLimits, shown_dir: &Path) -> Result<u64, AssetError> {
        let mut count = 0u64;
        let mut stack = vec![self.root.clone()];
        while let Some(dir) = stack.pop() {
            let entries = std::fs::read_dir(&dir).map_err(|e| AssetError::io("list", &dir, e))?;
            for entry in entries {
                let entry = entry.map_err(|e| AssetError::io("list", &dir, e))?;
                let path = entry.path();
                // Follows symlinks, like the upload; a dangling one is skipped.
                let Ok(meta) = std::fs::metadata(&path) else {
                    continue;
                };
                if meta.is_dir() {
                    stack.push(path);
                    continue;
                }
                if dir == self.root && IGNORED_ROOT_FILES.iter().any(|n| entry.file_name() == *n) {
                    continue;
                }
                count += 1;
                if count > limits.max_asset_count {
                    return Err(AssetError::TooManyAssets {
                        dir: shown_dir.to_path_buf(),
                        found: count,
                        limit: limits.max_asset_count,
                    });
                }
                if meta.len() > limits.max_asset_bytes {
                    return Err(AssetError::AssetTooLarge {
                        dir: shown_dir.to_path_buf(),
                        path,
                        size: meta.len(),
                        limit: limits.max_asset_bytes,
                    });
                }
            }
        }
        Ok(count)
    }
}

fn hash(file: &mut File) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; HASH_CHUNK];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    let mut etag = hex::encode(hasher.finalize());
    etag.truncate(ETAG_HEX_LEN);
    Ok(etag)
}
