//! Fencing tokens for cluster mode: which lease this node holds on each
//! object it runs, and the check every commit makes against the token
//! recorded in the object's own file.
//!
//! Placement hands out a token that grows each time an object's lease
//! moves to another node. The node [`grant`](FenceBook::grant)s it here
//! before delivering an event; the object's storage records the token (and
//! the node) in `_cf_METADATA` when it opens and on every commit, inside
//! the commit's write transaction, and refuses to commit when the file
//! already holds a higher token: a node that lost its lease (paused,
//! partitioned) cannot write after the new owner opened the object.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

/// The leases one node holds, by (class key, object id).
#[derive(Debug)]
pub struct FenceBook {
    node: String,
    tokens: Mutex<HashMap<(String, String), i64>>,
    revoked: Mutex<HashSet<(String, String)>>,
}

impl FenceBook {
    pub fn new(node: impl Into<String>) -> Self {
        Self {
            node: node.into(),
            tokens: Mutex::new(HashMap::new()),
            revoked: Mutex::new(HashSet::new()),
        }
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    /// Records the token of a lease this node holds now.
    pub fn grant(&self, namespace: &str, id: &str, token: i64) {
        lock(&self.tokens).insert((namespace.to_owned(), id.to_owned()), token);
    }

    pub fn token(&self, namespace: &str, id: &str) -> Option<i64> {
        lock(&self.tokens)
            .get(&(namespace.to_owned(), id.to_owned()))
            .copied()
    }

    /// A commit found a newer owner: the lease is gone.
    pub(crate) fn revoke(&self, namespace: &str, id: &str) {
        let key = (namespace.to_owned(), id.to_owned());
        lock(&self.tokens).remove(&key);
        lock(&self.revoked).insert(key);
    }

    /// Whether a commit found this lease lost since the last call; the
    /// placement layer then forgets what it cached.
    pub fn take_revoked(&self, namespace: &str, id: &str) -> bool {
        lock(&self.revoked).remove(&(namespace.to_owned(), id.to_owned()))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
