//! Rust-native Durable Objects: a class implemented in Rust, with the same
//! execution model as a JavaScript class (one live instance per id in the
//! isolate that hosts the id, output gate before every reply, eviction when
//! idle, alarms with retries).
//!
//! Handlers are synchronous and run on the hosting isolate's thread, one
//! event at a time: the object's storage calls are synchronous too, so the
//! input gate holds for the whole event.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use hearth_do::{DurableObjectId, DurableObjectStorage};

/// A request handed to a native object's `fetch`.
#[derive(Debug, Clone)]
pub struct NativeRequest {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

/// A native object's response.
#[derive(Debug, Clone)]
pub struct NativeResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl NativeResponse {
    /// A 200 response with a text body.
    pub fn text(body: impl Into<String>) -> Self {
        Self {
            status: 200,
            headers: vec![("content-type".into(), "text/plain;charset=UTF-8".into())],
            body: Bytes::from(body.into()),
        }
    }

    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }
}

/// What a native object sees of itself: its id and its storage (the same
/// contract JavaScript objects use).
pub struct DurableObjectState<'a> {
    pub id: &'a DurableObjectId,
    pub storage: &'a DurableObjectStorage,
}

/// `alarm({retryCount, isRetry})`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlarmInfo {
    pub retry_count: u32,
    pub is_retry: bool,
}

/// A Durable Object implemented in Rust. An `Err` from a handler fails the
/// event (a 500 for `fetch`, a retry for `alarm`) and resets the instance.
pub trait DurableObject: Send {
    fn fetch(
        &mut self,
        state: &DurableObjectState<'_>,
        request: NativeRequest,
    ) -> Result<NativeResponse, String>;

    fn alarm(&mut self, _state: &DurableObjectState<'_>, _info: AlarmInfo) -> Result<(), String> {
        Ok(())
    }
}

/// Builds an instance of a native class (its constructor).
pub trait Factory: Send + Sync {
    fn create(&self, state: &DurableObjectState<'_>) -> Result<Box<dyn DurableObject>, String>;
}

impl<F> Factory for F
where
    F: Fn(&DurableObjectState<'_>) -> Result<Box<dyn DurableObject>, String> + Send + Sync,
{
    fn create(&self, state: &DurableObjectState<'_>) -> Result<Box<dyn DurableObject>, String> {
        self(state)
    }
}

/// A native class: its name (as in the config's migrations) and its
/// constructor.
pub struct NativeClass {
    pub name: String,
    pub factory: Arc<dyn Factory>,
}

impl NativeClass {
    pub fn new(
        name: impl Into<String>,
        factory: impl Fn(&DurableObjectState<'_>) -> Result<Box<dyn DurableObject>, String>
        + Send
        + Sync
        + 'static,
    ) -> Self {
        Self {
            name: name.into(),
            factory: Arc::new(factory),
        }
    }
}

/// The native classes of a worker, by name.
#[derive(Default)]
pub(crate) struct Registry {
    classes: Mutex<HashMap<String, Arc<dyn Factory>>>,
}

impl Registry {
    pub(crate) fn add(&self, classes: Vec<NativeClass>) {
        let mut map = match self.classes.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        for c in classes {
            map.insert(c.name, c.factory);
        }
    }

    pub(crate) fn get(&self, class: &str) -> Option<Arc<dyn Factory>> {
        let map = match self.classes.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        map.get(class).cloned()
    }
}

/// Live native instances of one isolate.
pub(crate) type NativeObjects = HashMap<(String, String), Box<dyn DurableObject>>;
