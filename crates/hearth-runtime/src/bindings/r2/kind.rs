//! How `r2_buckets` is served: one folder per bucket (metadata and blobs),
//! or, in cluster mode with `[backends] r2 = "s3"`, a prefix per bucket on
//! the cluster's S3-compatible store; a thread per bucket aborts abandoned
//! multipart uploads.

use std::sync::Arc;
use std::time::Duration;

use hearth_core::{DataDir, SharedClock};
use hearth_r2::{R2Bucket, R2Error, R2Limits};

use super::R2Adapter;
use crate::bindings::registry::{BindingError, BindingKind, OpenContext, OpenedWorker};

/// How often a bucket looks for multipart uploads past their age limit
/// (they are also aborted when it opens).
const EXPIRE_UPLOADS_EVERY: Duration = Duration::from_secs(60 * 60);

pub struct R2Kind;

/// Opens the bucket `name` of `data_dir`, as the server, the S3 endpoint
/// and the CLI see it: one handle per bucket directory in the process.
pub fn open_bucket(
    data_dir: &DataDir,
    name: &str,
    clock: SharedClock,
    limits: R2Limits,
) -> Result<R2Bucket, R2Error> {
    R2Bucket::open_shared(data_dir.r2_bucket(name), clock, limits)
}

impl BindingKind for R2Kind {
    fn section(&self) -> &'static str {
        "r2_buckets"
    }

    fn data_paths(&self) -> &'static [&'static str] {
        &["r2/<bucket name>/"]
    }

    fn cli_verbs(&self) -> &'static [&'static str] {
        &["r2 object"]
    }

    fn open(&self, cx: &mut OpenContext<'_>, out: &mut OpenedWorker) -> Result<(), BindingError> {
        let on_s3 = cx
            .settings
            .cluster
            .as_ref()
            .filter(|node| node.config().backends.r2 == hearth_cluster::R2Backend::S3)
            .and_then(|node| node.s3().cloned());
        for bucket in &cx.config.r2_buckets {
            let at = |e: &dyn std::fmt::Display| cx.error(self.section(), &bucket.binding, e);
            if let Some(store) = &on_s3 {
                let r2 = R2Bucket::open_s3(
                    store.clone(),
                    bucket.local_name(),
                    cx.clock.clone(),
                    cx.settings.r2_limits.clone(),
                )
                .map_err(|e| at(&e))?;
                let expirer = r2
                    .spawn_upload_expirer(EXPIRE_UPLOADS_EVERY)
                    .map_err(|e| at(&e))?;
                out.keep_alive.push(Box::new(expirer));
                let backend = r2.describe();
                out.worker.bindings.push(Arc::new(
                    R2Adapter::new(&bucket.binding, r2).with_backend(backend),
                ));
                continue;
            }
            let dir = cx.data_dir.r2_bucket(bucket.local_name());
            let r2 = open_bucket(
                cx.data_dir,
                bucket.local_name(),
                cx.clock.clone(),
                cx.settings.r2_limits.clone(),
            )
            .map_err(|e| at(&format!("opening {}: {e}", dir.display())))?;
            let expirer = r2
                .spawn_upload_expirer(EXPIRE_UPLOADS_EVERY)
                .map_err(|e| at(&e))?;
            out.keep_alive.push(Box::new(expirer));
            out.worker.bindings.push(Arc::new(
                R2Adapter::new(&bucket.binding, r2)
                    .with_backend(format!("fs+sqlite:{}", dir.display())),
            ));
        }
        Ok(())
    }
}
