//! How the Cache API is served: one store per data directory under
//! `cache/`, shared by every worker on it (as a zone's workers share its
//! cache), or, in cluster mode with Redis, Redis shared by every node.
//! Not a config section: every worker gets `caches`.

use std::sync::Arc;

use hearth_cache::{Cache, CacheLimits, CacheStore, RedisCache};

use crate::bindings::registry::{BindingError, BindingKind, OpenContext, OpenedWorker};

pub struct CacheKind;

impl BindingKind for CacheKind {
    /// The global's name; no wrangler section declares it.
    fn section(&self) -> &'static str {
        "caches"
    }

    fn data_paths(&self) -> &'static [&'static str] {
        &["cache/cache.sqlite", "cache/bodies/"]
    }

    fn open(&self, cx: &mut OpenContext<'_>, out: &mut OpenedWorker) -> Result<(), BindingError> {
        let (dir, clock) = (cx.data_dir.cache(), cx.clock.clone());
        let redis = cx
            .settings
            .cluster
            .as_ref()
            .and_then(|node| node.redis().cloned());
        if let Some(pool) = redis {
            let store = cx.shared("cache-redis", || {
                Ok::<_, BindingError>(
                    Arc::new(RedisCache::new(pool, clock, CacheLimits::default()))
                        as Arc<dyn Cache>,
                )
            })?;
            out.worker.cache = Some(store);
            return Ok(());
        }
        let key = dir.display().to_string();
        let store = cx.shared(&key, || {
            CacheStore::open(&dir, clock, CacheLimits::default())
                .map(|s| Arc::new(s) as Arc<dyn Cache>)
                .map_err(|e| {
                    BindingError::new(format!(
                        "opening the Cache API store {}: {e}",
                        dir.display()
                    ))
                })
        })?;
        out.worker.cache = Some(store);
        Ok(())
    }
}
