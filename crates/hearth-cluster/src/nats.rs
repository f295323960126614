//! One NATS connection per node, with its JetStream context, shared by
//! every backend that keeps state in JetStream (Queues).
//!
//! As with [`crate::Pg`], the binding contracts are synchronous, so the
//! client lives on a small runtime owned here and synchronous callers hand
//! it futures through [`Nats::block`]. The client reconnects by itself;
//! while the server is away every call fails after [`NATS_TIMEOUT`] at most.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use tokio::runtime::{Handle, Runtime};

use crate::config::valid_nats_prefix;

/// The longest a synchronous caller waits for NATS.
pub const NATS_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Bounds what the client buffers for a server that is away; a publish
/// past it fails instead of growing memory.
const CLIENT_CAPACITY: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum NatsError {
    #[error("cannot connect to NATS at {url}: {message}")]
    Connect { url: String, message: String },
    #[error("NATS JetStream: {0}")]
    Op(String),
    #[error("NATS did not answer within {} s", NATS_TIMEOUT.as_secs())]
    Timeout,
    #[error("NATS prefix {0:?} is not allowed: use a-z, A-Z, 0-9 and '_'")]
    BadPrefix(String),
    #[error("cannot start the NATS client's runtime: {0}")]
    Runtime(std::io::Error),
}

impl NatsError {
    /// Wraps any client error with what was being done.
    pub fn op(doing: &str, e: impl std::fmt::Display) -> Self {
        NatsError::Op(format!("{doing}: {e}"))
    }
}

/// A node's NATS connection. Cheap to clone.
#[derive(Clone)]
pub struct Nats {
    inner: Arc<Inner>,
}

struct Inner {
    runtime: Option<Runtime>,
    handle: Handle,
    url: String,
    prefix: String,
    client: async_nats::Client,
    jetstream: jetstream::Context,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // May be dropped on an async thread, where a blocking shutdown panics.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl std::fmt::Debug for Nats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nats")
            .field("url", &self.inner.url)
            .field("prefix", &self.inner.prefix)
            .finish_non_exhaustive()
    }
}

impl Nats {
    /// Connects, so a wrong URL or a server without JetStream fails at start.
    pub fn connect(url: &str, prefix: &str) -> Result<Self, NatsError> {
        if !valid_nats_prefix(prefix) {
            return Err(NatsError::BadPrefix(prefix.to_owned()));
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("hearth-nats")
            .enable_all()
            .build()
            .map_err(NatsError::Runtime)?;
        let handle = runtime.handle().clone();
        let connect_error = |message: String| NatsError::Connect {
            url: url.to_owned(),
            message,
        };
        let addr = url.to_owned();
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        handle.spawn(async move {
            let connected = async move {
                let options = async_nats::ConnectOptions::new()
                    .name("hearth")
                    .connection_timeout(CONNECT_TIMEOUT)
                    .request_timeout(Some(NATS_TIMEOUT))
                    .client_capacity(CLIENT_CAPACITY);
                let client = tokio::time::timeout(CONNECT_TIMEOUT, options.connect(addr.as_str()))
                    .await
                    .map_err(|_| "timed out".to_owned())?
                    .map_err(|e| e.to_string())?;
                let js = jetstream::new(client.clone());
                // The account info request answers with an error object when
                // the server runs without JetStream.
                let info = client
                    .request("$JS.API.INFO", bytes::Bytes::new())
                    .await
                    .map_err(|e| format!("JetStream does not answer: {e}"))?;
                let text = String::from_utf8_lossy(&info.payload);
                if text.contains("\"error\"") {
                    return Err(format!("JetStream is not enabled on this server: {text}"));
                }
                Ok::<_, String>((client, js))
            }
            .await;
            let _ = tx.send(connected);
        });
        let (client, jetstream) = rx
            .recv_timeout(CONNECT_TIMEOUT + Duration::from_secs(1))
            .map_err(|_| connect_error("timed out".into()))?
            .map_err(connect_error)?;
        Ok(Nats {
            inner: Arc::new(Inner {
                runtime: Some(runtime),
                handle,
                url: url.to_owned(),
                prefix: prefix.to_owned(),
                client,
                jetstream,
            }),
        })
    }

    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// The start of every stream name and subject this node uses.
    pub fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    pub fn client(&self) -> &async_nats::Client {
        &self.inner.client
    }

    pub fn jetstream(&self) -> &jetstream::Context {
        &self.inner.jetstream
    }

    /// The runtime the client runs on, for async callers' own tasks.
    pub fn handle(&self) -> &Handle {
        &self.inner.handle
    }

    /// Whether the client is connected now (for health reports).
    pub fn is_connected(&self) -> bool {
        self.inner.client.connection_state() == async_nats::connection::State::Connected
    }

    /// Runs `fut` on the client's runtime and waits for it: the bridge from
    /// the synchronous contracts. Never call it from the runtime itself.
    pub fn block<T, E, F>(&self, fut: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<NatsError> + Send + 'static,
        F: Future<Output = Result<T, E>> + Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.inner.handle.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv_timeout(NATS_TIMEOUT + Duration::from_secs(1))
            .map_err(|_| E::from(NatsError::Timeout))?
    }
}
