//! Which buckets the endpoint serves, and where they live.
//!
//! A bucket is a directory of R2 storage. Buckets the served configs
//! declare are always there (their workers open them). With `any_bucket`,
//! CreateBucket may add others under `<data dir>/r2/`, and DeleteBucket may
//! remove those again when empty; a declared bucket is never deleted over
//! S3, since a running worker holds it.
//!
//! Every bucket is opened through [`R2Bucket::open_shared`], so a worker's
//! binding and the endpoint share one handle: a write through either is
//! visible to the other at once.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, UNIX_EPOCH};

use hearth_core::SharedClock;
use hearth_r2::{R2Bucket, R2Limits, R2ListOptions, UploadExpirerHandle};

use crate::error::S3Error;

/// How often buckets created over S3 look for expired multipart uploads.
const EXPIRE_EVERY: Duration = Duration::from_secs(60 * 60);

pub struct Buckets {
    /// Where created buckets go: `<data dir>/r2`.
    root: PathBuf,
    /// Declared buckets by name, and their directories.
    declared: BTreeMap<String, PathBuf>,
    any_bucket: bool,
    clock: SharedClock,
    limits: R2Limits,
    open: Mutex<HashMap<String, (R2Bucket, Option<UploadExpirerHandle>)>>,
}

impl std::fmt::Debug for Buckets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Buckets")
            .field("root", &self.root)
            .field("declared", &self.declared)
            .field("any_bucket", &self.any_bucket)
            .finish_non_exhaustive()
    }
}

/// R2's bucket name rules: 3 to 63 of `a-z 0-9 -`, not starting or ending
/// with `-`.
pub fn check_bucket_name(name: &str) -> Result<(), S3Error> {
    let ok = (3..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(S3Error::invalid_bucket_name(format!(
            "The specified bucket name {name:?} is not valid: 3 to 63 lower-case letters, digits and hyphens, not starting or ending with a hyphen."
        )))
    }
}

impl Buckets {
    pub fn new(
        root: PathBuf,
        declared: BTreeMap<String, PathBuf>,
        any_bucket: bool,
        clock: SharedClock,
        limits: R2Limits,
    ) -> Self {
        Self {
            root,
            declared,
            any_bucket,
            clock,
            limits,
            open: Mutex::new(HashMap::new()),
        }
    }

    fn dir(&self, name: &str) -> Option<PathBuf> {
        if let Some(d) = self.declared.get(name) {
            return Some(d.clone());
        }
        if self.any_bucket && check_bucket_name(name).is_ok() {
            return Some(self.root.join(hearth_core::data_dir::path_component(name)));
        }
        None
    }

    fn exists(&self, name: &str) -> bool {
        self.declared.contains_key(name)
            || self
                .dir(name)
                .is_some_and(|d| d.join("metadata.sqlite").is_file())
    }

    fn no_such_bucket(name: &str) -> S3Error {
        S3Error::no_such_bucket(format!("The specified bucket {name:?} does not exist."))
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, (R2Bucket, Option<UploadExpirerHandle>)>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The bucket, if it exists.
    pub fn get(&self, name: &str) -> Result<R2Bucket, S3Error> {
        let mut open = self.lock();
        if let Some((b, _)) = open.get(name) {
            return Ok(b.clone());
        }
        if !self.exists(name) {
            return Err(Self::no_such_bucket(name));
        }
        let dir = self.dir(name).ok_or_else(|| Self::no_such_bucket(name))?;
        let bucket = R2Bucket::open_shared(&dir, self.clock.clone(), self.limits.clone())?;
        let expirer = if self.declared.contains_key(name) {
            None // the serving worker's binding runs one
        } else {
            bucket.spawn_upload_expirer(EXPIRE_EVERY).ok()
        };
        open.insert(name.to_string(), (bucket.clone(), expirer));
        Ok(bucket)
    }

    pub fn create(&self, name: &str) -> Result<(), S3Error> {
        if self.declared.contains_key(name) {
            return Err(S3Error::bucket_already_owned(format!(
                "The bucket {name:?} exists (it is declared in r2_buckets)."
            )));
        }
        check_bucket_name(name)?;
        if !self.any_bucket {
            return Err(S3Error::access_denied(format!(
                "Only the buckets the served configs declare in r2_buckets are served ({}); add {name:?} there, or serve with --s3-any-bucket",
                self.declared.keys().cloned().collect::<Vec<_>>().join(", ")
            )));
        }
        let _open = self.lock();
        if self.exists(name) {
            return Err(S3Error::bucket_already_owned(format!(
                "The bucket {name:?} already exists."
            )));
        }
        let dir = self.dir(name).ok_or_else(|| Self::no_such_bucket(name))?;
        R2Bucket::open(&dir, self.clock.clone(), self.limits.clone())?;
        Ok(())
    }

    pub fn delete(&self, name: &str) -> Result<(), S3Error> {
        if self.declared.contains_key(name) {
            return Err(S3Error::invalid_bucket_state(format!(
                "The bucket {name:?} is declared in r2_buckets and bound by a served worker; remove it from the config to delete it."
            )));
        }
        let bucket = self.get(name)?;
        let mut open = self.lock();
        let listed = bucket.list(&R2ListOptions {
            limit: Some(1),
            ..R2ListOptions::default()
        })?;
        let uploads = bucket.list_multipart_uploads("", None, 1)?;
        if !listed.objects.is_empty() || !uploads.is_empty() {
            return Err(S3Error::bucket_not_empty(format!(
                "The bucket {name:?} you tried to delete is not empty (objects or unfinished multipart uploads)."
            )));
        }
        open.remove(name);
        drop(bucket);
        let dir = self.dir(name).ok_or_else(|| Self::no_such_bucket(name))?;
        std::fs::remove_dir_all(&dir).map_err(|e| {
            tracing::error!("deleting bucket {}: {e}", dir.display());
            S3Error::internal("We encountered an internal error. Please try again.")
        })?;
        Ok(())
    }

    /// Every existing bucket and when its directory was made (ms).
    pub fn list(&self) -> Vec<(String, u64)> {
        let mut names: Vec<String> = self.declared.keys().cloned().collect();
        if self.any_bucket
            && let Ok(entries) = std::fs::read_dir(&self.root)
        {
            for e in entries.flatten() {
                if let Some(n) = e.file_name().to_str()
                    && check_bucket_name(n).is_ok()
                    && !names.iter().any(|x| x == n)
                    && e.path().join("metadata.sqlite").is_file()
                {
                    names.push(n.to_string());
                }
            }
        }
        names.sort();
        names
            .into_iter()
            .map(|n| {
                let created = self
                    .dir(&n)
                    .and_then(|d| std::fs::metadata(d).ok())
                    .and_then(|m| m.created().or_else(|_| m.modified()).ok())
                    .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                    .map(|d| d.as_millis() as u64)
                    .unwrap_or(0);
                (n, created)
            })
            .collect()
    }
}
