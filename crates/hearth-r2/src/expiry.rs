//! The thread that aborts expired multipart uploads now and then (see
//! `R2Bucket::abort_expired_uploads`). Which uploads expire is decided by
//! the bucket's clock; the thread only decides how often to look.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::error::R2Error;
use crate::{Inner, LocalBucket, R2Bucket, Repr, s3::S3Bucket};

enum Request {
    Now(Sender<Result<usize, R2Error>>),
}

/// Stops the expirer thread when dropped.
pub struct UploadExpirerHandle {
    requests: Option<Sender<Request>>,
    thread: Option<JoinHandle<()>>,
}

impl UploadExpirerHandle {
    pub(crate) fn spawn(bucket: &R2Bucket, every: Duration) -> Result<Self, R2Error> {
        let (tx, rx) = mpsc::channel();
        let weak = match &bucket.repr {
            Repr::Local(l) => WeakBucket::Local(Arc::downgrade(&l.inner)),
            Repr::S3(b) => WeakBucket::S3(Arc::downgrade(b)),
        };
        let thread = std::thread::Builder::new()
            .name("hearth-r2-expirer".to_owned())
            .spawn(move || run(weak, rx, every))
            .map_err(|e| R2Error::Open {
                path: bucket.describe(),
                reason: format!("cannot start the multipart expiry thread: {e}"),
            })?;
        Ok(Self {
            requests: Some(tx),
            thread: Some(thread),
        })
    }

    /// Runs one pass on the thread and waits for it; `None` when the thread
    /// has ended (its bucket was dropped).
    pub fn expire_now(&self) -> Option<Result<usize, R2Error>> {
        let (reply_tx, reply_rx) = mpsc::channel();
        self.requests.as_ref()?.send(Request::Now(reply_tx)).ok()?;
        reply_rx.recv().ok()
    }
}

impl Drop for UploadExpirerHandle {
    fn drop(&mut self) {
        // Closing the channel wakes the thread at once.
        self.requests.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Held without keeping a dropped bucket open.
enum WeakBucket {
    Local(Weak<Inner>),
    S3(Weak<S3Bucket>),
}

impl WeakBucket {
    fn upgrade(&self) -> Option<R2Bucket> {
        let repr = match self {
            WeakBucket::Local(w) => Repr::Local(LocalBucket {
                inner: w.upgrade()?,
            }),
            WeakBucket::S3(w) => Repr::S3(w.upgrade()?),
        };
        Some(R2Bucket { repr })
    }
}

fn run(bucket: WeakBucket, requests: Receiver<Request>, every: Duration) {
    loop {
        let reply = match requests.recv_timeout(every) {
            Ok(Request::Now(reply)) => Some(reply),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        // Upgraded only for one pass, so a dropped bucket is not kept open.
        let Some(open) = bucket.upgrade() else {
            return;
        };
        let outcome = open.abort_expired_uploads();
        match reply {
            Some(reply) => {
                let _ = reply.send(outcome);
            }
            None => {
                if let Err(error) = outcome {
                    tracing::warn!(%error, "aborting expired R2 multipart uploads failed; will retry");
                }
            }
        }
    }
}
