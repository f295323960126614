//! JWT keys fetched from a JWKS URL (an identity provider's
//! `jwks_uri`): cached for a bounded time, fetched again when a token names
//! a `kid` the cache lacks (the provider rotated its keys), with a floor
//! between such fetches so tokens with made-up `kid`s cannot turn the edge
//! into a request flood against the provider. Responses are size-capped
//! and every fetch has a deadline. A failed fetch keeps the keys already
//! held. Time comes from the injected clock.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::jwt::{Key, KeyError};

/// Largest JWKS document read; providers publish a few keys (a few KiB).
pub const MAX_JWKS_BYTES: u64 = 256 * 1024;
/// Least time between two fetches caused by unknown `kid`s or failures.
pub const MIN_REFETCH_MS: u64 = 30_000;

#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    #[error("{url}: {reason}")]
    Fetch { url: String, reason: String },
    #[error("{url}: {source}")]
    Parse { url: String, source: KeyError },
}

/// How a URL's keys are fetched and kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwksSettings {
    pub url: String,
    /// How long fetched keys are used before they are fetched again.
    pub max_age_secs: u64,
    /// Deadline of one fetch, connection to last byte.
    pub timeout_ms: u64,
}

#[derive(Debug, Default)]
struct Cache {
    keys: Arc<Vec<Key>>,
    /// When the held keys were fetched (None: never).
    fetched_ms: Option<u64>,
    /// When a fetch last started, successful or not.
    attempted_ms: Option<u64>,
}

/// One JWKS URL's keys.
#[derive(Debug)]
pub struct JwksSource {
    pub settings: JwksSettings,
    agent: ureq::Agent,
    cache: Mutex<Cache>,
    /// Held while fetching, so one request fetches and the rest keep using
    /// the keys they have.
    fetching: Mutex<()>,
}

impl JwksSource {
    pub fn new(settings: JwksSettings) -> Self {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_millis(settings.timeout_ms)))
            .http_status_as_error(false)
            .max_redirects(3)
            .build()
            .into();
        Self {
            settings,
            agent,
            cache: Mutex::new(Cache::default()),
            fetching: Mutex::new(()),
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The keys held now, fetched or not.
    pub fn held(&self) -> Arc<Vec<Key>> {
        self.cache().keys.clone()
    }

    /// The keys to verify with at `now_ms`, fetching first (on this
    /// thread) when [`due`](Self::due) says so.
    pub fn keys(self: &Arc<Self>, now_ms: u64) -> Arc<Vec<Key>> {
        if let Some(fetch) = self.due(now_ms) {
            fetch.run();
        }
        self.held()
    }

    /// A fetch to run before verifying at `now_ms`: the held keys are
    /// older than `max_age_secs` (or were never fetched) and no fetch ran
    /// in the last [`MIN_REFETCH_MS`].
    pub fn due(self: &Arc<Self>, now_ms: u64) -> Option<KeyFetch> {
        self.expired_due(&self.cache(), now_ms).then(|| KeyFetch {
            source: self.clone(),
            now_ms,
            kid: None,
        })
    }

    /// A fetch to run after a token named `kid` and no held key has it
    /// (the provider may have rotated its keys), unless a fetch ran in the
    /// last [`MIN_REFETCH_MS`].
    pub fn unknown_kid(self: &Arc<Self>, kid: Option<&str>, now_ms: u64) -> Option<KeyFetch> {
        self.kid_due(&self.cache(), kid, now_ms).then(|| KeyFetch {
            source: self.clone(),
            now_ms,
            kid: Some(kid.map(str::to_string)),
        })
    }

    fn expired_due(&self, c: &Cache, now_ms: u64) -> bool {
        let stale = c
            .fetched_ms
            .is_none_or(|t| now_ms >= t + self.settings.max_age_secs * 1000);
        stale && self.may_fetch(c, now_ms, true)
    }

    fn kid_due(&self, c: &Cache, kid: Option<&str>, now_ms: u64) -> bool {
        let held = kid.is_some_and(|kid| c.keys.iter().any(|k| k.kid.as_deref() == Some(kid)));
        !held && self.may_fetch(c, now_ms, false)
    }

    /// Whether a fetch may start now: never fetched, or the last attempt
    /// is [`MIN_REFETCH_MS`] old (an expired cache may fetch sooner when
    /// its last attempt succeeded).
    fn may_fetch(&self, c: &Cache, now_ms: u64, expired: bool) -> bool {
        match c.attempted_ms {
            None => true,
            Some(t) if now_ms >= t + MIN_REFETCH_MS => true,
            Some(t) => expired && c.fetched_ms == Some(t) && now_ms > t,
        }
    }

    /// One GET of the URL: status 200, at most [`MAX_JWKS_BYTES`], a JWKS.
    pub fn fetch(&self) -> Result<Vec<Key>, JwksError> {
        let url = &self.settings.url;
        let fail = |reason: String| JwksError::Fetch {
            url: url.clone(),
            reason,
        };
        let mut resp = self
            .agent
            .get(url)
            .header("accept", "application/jwk-set+json, application/json")
            .call()
            .map_err(|e| fail(e.to_string()))?;
        if resp.status() != 200 {
            return Err(fail(format!("status {}", resp.status())));
        }
        let body = resp
            .body_mut()
            .with_config()
            .limit(MAX_JWKS_BYTES)
            .read_to_vec()
            .map_err(|e| match e {
                ureq::Error::BodyExceedsLimit(_) => {
                    fail(format!("the document is over {MAX_JWKS_BYTES} bytes"))
                }
                e => fail(e.to_string()),
            })?;
        Key::jwks(&body).map_err(|source| JwksError::Parse {
            url: url.clone(),
            source,
        })
    }
}

/// A JWKS fetch a check asked for. The server runs it on a blocking
/// thread and checks the request again, so no front thread waits on the
/// provider; [`Edge::check`](crate::Edge::check) runs it in place.
#[derive(Debug)]
pub struct KeyFetch {
    source: Arc<JwksSource>,
    now_ms: u64,
    /// `Some` when a token's `kid` (if any) was not held; `None` when the
    /// held keys expired.
    kid: Option<Option<String>>,
}

impl KeyFetch {
    /// Fetches, unless another fetch made this one needless: requests
    /// asking for the same fetch at once wait for the one that runs (an
    /// expired set is used as it is meanwhile), then find the cache new.
    pub fn run(self) {
        let source = &self.source;
        // Requests go on with an expired set while it is fetched again;
        // with no keys at all, or a kid not held, they wait for the fetch.
        let _guard = if self.kid.is_none() && !source.held().is_empty() {
            match source.fetching.try_lock() {
                Ok(g) => g,
                Err(std::sync::TryLockError::WouldBlock) => return,
                Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            }
        } else {
            source.fetching.lock().unwrap_or_else(|p| p.into_inner())
        };
        {
            let mut c = source.cache();
            let due = match &self.kid {
                None => source.expired_due(&c, self.now_ms),
                Some(kid) => source.kid_due(&c, kid.as_deref(), self.now_ms),
            };
            if !due {
                return;
            }
            c.attempted_ms = Some(self.now_ms);
        }
        match source.fetch() {
            Ok(keys) => {
                let mut c = source.cache();
                c.keys = Arc::new(keys);
                c.fetched_ms = Some(self.now_ms);
            }
            Err(e) => {
                tracing::warn!(target: "hearth::edge", "JWKS {e}; keeping the {} keys held", source.held().len());
            }
        }
    }
}
