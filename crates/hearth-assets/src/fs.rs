//! The directory backend: finds a file for a decoded request path without
//! leaving the directory, and computes content ETags (cached by file
//! identity, so a file is hashed again only after it changes).

use std::collections::{HashMap, HashSet};
use std::fs::{File, Metadata};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use sha2::{Digest, Sha256};

use crate::error::AssetError;
use crate::ignore::IgnoreRules;
use crate::validate::{AssetLimits, IGNORED_ROOT_FILES, file_segments, is_dev_vars};

/// Hex digits of a content hash kept as the ETag (Cloudflare's asset hashes
/// are 32 hex digits too).
const ETAG_HEX_LEN: usize = 32;
/// Read size while hashing.
const HASH_CHUNK: usize = 64 * 1024;
/// ETags remembered; beyond this the cache is cleared rather than grown.
const MAX_CACHED_ETAGS: usize = 100_000;
/// Largest `.assetsignore` read; the rest of a bigger file is not read.
const MAX_IGNORE_FILE_BYTES: u64 = 1024 * 1024;

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
    ignore: IgnoreRules,
    /// Resolved paths never served, nor anything below them (the data
    /// directory, the config files).
    protected: Vec<PathBuf>,
}

impl AssetDir {
    pub fn open(dir: &Path, protected: &[PathBuf]) -> Result<AssetDir, AssetError> {
        let root = dir
            .canonicalize()
            .map_err(|_| AssetError::MissingDirectory(dir.to_path_buf()))?;
        if !root.is_dir() {
            return Err(AssetError::MissingDirectory(dir.to_path_buf()));
        }
        let ignore_file = root.join(".assetsignore");
        let ignore = match File::open(&ignore_file) {
            Ok(f) => {
                let mut text = String::new();
                f.take(MAX_IGNORE_FILE_BYTES)
                    .read_to_string(&mut text)
                    .map_err(|e| AssetError::io("read", &ignore_file, e))?;
                IgnoreRules::parse(&text)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => IgnoreRules::default(),
            Err(e) => return Err(AssetError::io("open", &ignore_file, e)),
        };
        Ok(AssetDir {
            root,
            etags: Mutex::new(HashMap::new()),
            ignore,
            protected: protected.iter().map(|p| resolve(p)).collect(),
        })
    }

    /// The protected paths that lie inside the directory.
    pub fn protected_inside(&self) -> impl Iterator<Item = &Path> {
        self.protected
            .iter()
            .filter(|p| p.starts_with(&self.root))
            .map(PathBuf::as_path)
    }

    /// Whether a path of the directory is never an asset: `rel` is the path
    /// as requested (relative, `/`-separated) and `real` where it leads once
    /// symlinks are resolved; both must pass, so a link cannot expose a
    /// hidden file under another name.
    fn hidden(&self, rel: &str, real: &Path, is_dir: bool) -> bool {
        if self.protected.iter().any(|p| real.starts_with(p)) {
            return true;
        }
        let Ok(real_rel) = real.strip_prefix(&self.root) else {
            return true;
        };
        let real_rel: Vec<String> = real_rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        let real_rel = real_rel.join("/");
        [rel, real_rel.as_str()].iter().any(|r| {
            r.split('/').any(is_dev_vars)
                || (!r.contains('/') && IGNORED_ROOT_FILES.contains(r))
                || self.ignore.ignores(r, is_dir)
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
        for s in &segments {
            path.push(s);
        }
        let real = path.canonicalize().ok()?;
        if !real.starts_with(&self.root) {
            return None;
        }
        let meta = std::fs::metadata(&real).ok()?;
        if !meta.is_file() || self.hidden(&segments.join("/"), &real, false) {
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
    /// does before an upload. Counts what would be served: hidden files are
    /// left out, a symlink is followed only to a place inside the directory
    /// (one leading out is skipped with a warning), and each real directory
    /// is walked once, so links such as `a -> .` cannot loop.
    pub fn check(
        &self,
        limits: &AssetLimits,
        shown_dir: &Path,
        warnings: &mut Vec<String>,
    ) -> Result<u64, AssetError> {
        let mut count = 0u64;
        let mut walked: HashSet<PathBuf> = HashSet::from([self.root.clone()]);
        // (path to list, its relative path as served)
        let mut stack = vec![(self.root.clone(), String::new())];
        while let Some((dir, rel_dir)) = stack.pop() {
            let entries = std::fs::read_dir(&dir).map_err(|e| AssetError::io("list", &dir, e))?;
            for entry in entries {
                let entry = entry.map_err(|e| AssetError::io("list", &dir, e))?;
                let path = entry.path();
                let name = entry.file_name().to_string_lossy().into_owned();
                let rel = if rel_dir.is_empty() {
                    name
                } else {
                    format!("{rel_dir}/{name}")
                };
                // A dangling link or a vanished entry is skipped.
                let Ok(real) = path.canonicalize() else {
                    continue;
                };
                if !real.starts_with(&self.root) {
                    warnings.push(format!(
                        "{}: {} leads outside the assets directory (to {}); it is not served",
                        shown_dir.display(),
                        rel,
                        real.display()
                    ));
                    continue;
                }
                let Ok(meta) = std::fs::metadata(&real) else {
                    continue;
                };
                if self.hidden(&rel, &real, meta.is_dir()) {
                    continue;
                }
                if meta.is_dir() {
                    if walked.insert(real.clone()) {
                        stack.push((real, rel));
                    }
                    continue;
                }
                if !meta.is_file() {
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

/// An absolute path with symlinks resolved as far as it exists; the part
/// that does not exist yet (a data directory made later) is kept as given.
fn resolve(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut existing = absolute.as_path();
    let mut rest = Vec::new();
    loop {
        if let Ok(real) = existing.canonicalize() {
            let mut out = real;
            for part in rest.iter().rev() {
                out.push(part);
            }
            return out;
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                existing = parent;
            }
            _ => return absolute,
        }
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
