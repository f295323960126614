//! The worker's pool as the front sees it: replaceable while serving, for
//! `hearth dev`'s reload on a source change.
//!
//! A reload stops the old isolates (each finishes the requests it already
//! has), starts new ones from the same config, and swaps them in. Requests
//! arriving meanwhile wait for the new pool; one that raced the swap and was
//! refused by the stopping pool is sent again to the new one. Bindings live
//! in the config, outside the isolates, so storage is untouched.

use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

use hearth_runtime::{DispatchError, IsolatePool, StartError, WorkerRequest, WorkerResponse};

pub(crate) struct LivePool {
    /// Each pool handle is leaked (a pointer-sized handle per reload, a
    /// handful in a dev session) so readers can hold a plain reference
    /// while a reload swaps in the next one.
    current: RwLock<&'static IsolatePool>,
    generation: AtomicU64,
    /// Held for writing for the whole of a reload.
    gate: tokio::sync::RwLock<()>,
    /// Why the last reload failed; cleared by the next good one.
    load_error: RwLock<Option<String>>,
}

impl LivePool {
    pub fn new(pool: IsolatePool) -> Self {
        Self {
            current: RwLock::new(Box::leak(Box::new(pool))),
            generation: AtomicU64::new(0),
            gate: tokio::sync::RwLock::new(()),
            load_error: RwLock::new(None),
        }
    }

    pub fn get(&self) -> &'static IsolatePool {
        match self.current.read() {
            Ok(p) => *p,
            Err(poisoned) => *poisoned.into_inner(),
        }
    }

    pub fn load_error(&self) -> Option<String> {
        match self.load_error.read() {
            Ok(e) => e.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Dispatches to the current pool; a request refused because a reload
    /// stopped its pool under it goes to the new pool instead.
    pub async fn dispatch(&self, request: WorkerRequest) -> Result<WorkerResponse, DispatchError> {
        loop {
            let (pool, generation) = {
                let _open = self.gate.read().await;
                (self.get(), self.generation.load(Ordering::Acquire))
            };
            match pool.dispatch(request.clone()).await {
                Err(DispatchError::ShuttingDown | DispatchError::IsolateRestarted) => {
                    let _open = self.gate.read().await;
                    if self.generation.load(Ordering::Acquire) == generation {
                        return pool.dispatch(request).await;
                    }
                }
                other => return other,
            }
        }
    }

    /// Stops the current isolates and starts new ones from the same config.
    /// On failure the error is kept (and served) until a reload succeeds.
    pub async fn reload(&self) -> Result<(), StartError> {
        let _closed = self.gate.write().await;
        let old = self.get();
        old.shutdown();
        let config = old.config().clone();
        let started = tokio::task::spawn_blocking(move || IsolatePool::start(config))
            .await
            .unwrap_or_else(|e| Err(StartError::Engine(e.to_string())));
        // The old threads finish their last requests on their own.
        let joining = old.clone();
        tokio::task::spawn_blocking(move || joining.join());
        let mut error = match self.load_error.write() {
            Ok(e) => e,
            Err(poisoned) => poisoned.into_inner(),
        };
        match started {
            Ok(pool) => {
                let mut current = match self.current.write() {
                    Ok(c) => c,
                    Err(poisoned) => poisoned.into_inner(),
                };
                *current = Box::leak(Box::new(pool));
                *error = None;
                self.generation.fetch_add(1, Ordering::AcqRel);
                Ok(())
            }
            Err(e) => {
                *error = Some(e.to_string());
                Err(e)
            }
        }
    }
}

impl std::ops::Deref for LivePool {
    type Target = IsolatePool;

    fn deref(&self) -> &IsolatePool {
        self.get()
    }
}

/// A served worker as a service binding's target: fetches follow reloads
/// like requests from the front do.
pub(crate) struct LiveTarget(pub std::sync::Arc<LivePool>);

impl hearth_runtime::ServiceTarget for LiveTarget {
    fn call(
        &self,
        entrypoint: Option<String>,
        call: hearth_runtime::ServiceCall,
    ) -> futures::future::BoxFuture<'static, Result<WorkerResponse, DispatchError>> {
        let live = self.0.clone();
        Box::pin(async move {
            match (entrypoint, call) {
                (None, hearth_runtime::ServiceCall::Fetch(req)) => live.dispatch(req).await,
                (entrypoint, call) => {
                    let pool = live.get().clone();
                    hearth_runtime::ServiceTarget::call(&pool, entrypoint, call).await
                }
            }
        })
    }
}
