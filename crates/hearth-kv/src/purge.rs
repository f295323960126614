//! Background removal of expired rows. Reads already hide expired keys the
//! moment the clock passes them; purging only reclaims their space.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::KvNamespace;
use crate::error::{KvError, Result};

enum Request {
    /// Purge now and report the outcome; lets callers (and tests) drive the
    /// thread without waiting for the interval.
    PurgeNow(Sender<Result<usize>>),
}

/// Owns a purger thread started by [`KvNamespace::spawn_purger`]. Dropping it
/// stops the thread and waits for it. The thread holds only a weak reference,
/// so it also ends by itself once the namespace is dropped.
#[derive(Debug)]
pub struct PurgerHandle {
    requests: Option<Sender<Request>>,
    thread: Option<JoinHandle<()>>,
}

impl PurgerHandle {
    pub(crate) fn spawn(namespace: &Arc<KvNamespace>, every: Duration) -> Result<Self> {
        let (tx, rx) = mpsc::channel();
        let weak = Arc::downgrade(namespace);
        let thread = std::thread::Builder::new()
            .name("hearth-kv-purger".to_owned())
            .spawn(move || run(weak, rx, every))
            .map_err(KvError::SpawnPurger)?;
        Ok(Self {
            requests: Some(tx),
            thread: Some(thread),
        })
    }

    /// Runs one purge on the purger thread and waits for it. `None` when the
    /// thread has ended (its namespace was dropped).
    pub fn purge_now(&self) -> Option<Result<usize>> {
        let (reply_tx, reply_rx) = mpsc::channel();
        self.requests
            .as_ref()?
            .send(Request::PurgeNow(reply_tx))
            .ok()?;
        reply_rx.recv().ok()
    }

    /// Whether the thread is still running.
    pub fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Stops the thread and waits for it; same as dropping the handle.
    pub fn stop(self) {}
}

impl Drop for PurgerHandle {
    fn drop(&mut self) {
        // Closing the channel wakes the thread at once.
        self.requests.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(namespace: Weak<KvNamespace>, requests: Receiver<Request>, every: Duration) {
    loop {
        let reply = match requests.recv_timeout(every) {
            Ok(Request::PurgeNow(reply)) => Some(reply),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        // Upgrade only for the duration of one purge, so the thread never
        // keeps a dropped namespace (and its open file) alive.
        let Some(ns) = namespace.upgrade() else {
            return;
        };
        let outcome = ns.purge_expired();
        drop(ns);
        match reply {
            Some(reply) => {
                let _ = reply.send(outcome);
            }
            None => {
                if let Err(error) = outcome {
                    tracing::warn!(%error, "KV expiry purge failed; will retry");
                }
            }
        }
    }
}
