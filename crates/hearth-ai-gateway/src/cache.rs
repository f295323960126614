//! The exact-match response cache: a key is the SHA-256 of what Cloudflare
//! keys on (gateway, provider, path, query, body and the request's
//! credentials, so one tenant never reads another's answer) or of a
//! `cf-aig-cache-key`. In memory, bounded by bytes; expired entries go
//! first, then the oldest.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use bytes::Bytes;
use sha2::{Digest, Sha256};

pub type CacheKey = [u8; 32];

#[derive(Debug, Clone)]
pub struct CachedResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    /// Whether the body is a server-sent event stream, replayed as one.
    pub streamed: bool,
    pub model: Option<String>,
    pub tokens_in: u64,
    pub tokens_out: u64,
}

#[derive(Debug)]
struct Entry {
    response: CachedResponse,
    expires_ms: u64,
    size: usize,
    seq: u64,
}

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<CacheKey, Entry>,
    order: VecDeque<(u64, CacheKey)>,
    bytes: usize,
    seq: u64,
}

#[derive(Debug)]
pub struct ResponseCache {
    max_bytes: usize,
    inner: Mutex<Inner>,
}

/// Largest single response the cache keeps (an eighth of the whole).
pub fn max_entry_bytes(max_bytes: usize) -> usize {
    max_bytes / 8
}

pub fn key(parts: &[&[u8]]) -> CacheKey {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    h.finalize().into()
}

impl ResponseCache {
    pub fn new(max_bytes: usize) -> Self {
        Self {
            max_bytes,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, key: &CacheKey, now_ms: u64) -> Option<CachedResponse> {
        let mut inner = self.lock();
        let entry = inner.entries.get(key)?;
        if entry.expires_ms <= now_ms {
            let size = entry.size;
            inner.entries.remove(key);
            inner.bytes -= size;
            return None;
        }
        Some(entry.response.clone())
    }

    /// Keeps `response` for `ttl_secs`; answers whether it was kept (not
    /// too large, ttl not 0).
    pub fn put(&self, key: CacheKey, response: CachedResponse, now_ms: u64, ttl_secs: u64) -> bool {
        if ttl_secs == 0 {
            return false;
        }
        let expires_ms = now_ms.saturating_add(ttl_secs.saturating_mul(1000));
        self.put_until(key, response, now_ms, expires_ms)
    }

    /// Keeps `response` until `expires_ms` (a reloaded entry keeps the
    /// expiry it was saved with).
    pub fn put_until(
        &self,
        key: CacheKey,
        response: CachedResponse,
        now_ms: u64,
        expires_ms: u64,
    ) -> bool {
        let size = response.body.len()
            + response
                .headers
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>()
            + 128;
        if size > max_entry_bytes(self.max_bytes) || expires_ms <= now_ms {
            return false;
        }
        let mut inner = self.lock();
        if let Some(old) = inner.entries.remove(&key) {
            inner.bytes -= old.size;
        }
        if inner.bytes + size > self.max_bytes {
            let before = inner.entries.len();
            inner.entries.retain(|_, e| e.expires_ms > now_ms);
            if inner.entries.len() != before {
                inner.bytes = inner.entries.values().map(|e| e.size).sum();
            }
        }
        while inner.bytes + size > self.max_bytes {
            let Some((seq, k)) = inner.order.pop_front() else {
                break;
            };
            if inner.entries.get(&k).is_some_and(|e| e.seq == seq)
                && let Some(e) = inner.entries.remove(&k)
            {
                inner.bytes -= e.size;
            }
        }
        inner.seq += 1;
        let seq = inner.seq;
        inner.order.push_back((seq, key));
        // Stale order records (replaced keys) are dropped as they are met;
        // keep the queue from outgrowing the entries many times over.
        if inner.order.len() > 4 * inner.entries.len() + 1024 {
            let Inner { entries, order, .. } = &mut *inner;
            order.retain(|(s, k)| entries.get(k).is_some_and(|e| e.seq == *s));
        }
        inner.bytes += size;
        inner.entries.insert(
            key,
            Entry {
                response,
                expires_ms,
                size,
                seq,
            },
        );
        true
    }

    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(body: &str) -> CachedResponse {
        CachedResponse {
            status: 200,
            headers: vec![],
            body: Bytes::from(body.to_owned()),
            streamed: false,
            model: None,
            tokens_in: 0,
            tokens_out: 0,
        }
    }

    #[test]
    fn entries_expire_by_the_clock() {
        let c = ResponseCache::new(1 << 20);
        let k = key(&[b"a"]);
        c.put(k, resp("x"), 1_000, 10);
        assert!(c.get(&k, 10_999).is_some());
        assert!(c.get(&k, 11_000).is_none());
        assert!(c.is_empty());
    }

    #[test]
    fn bounded_by_bytes_oldest_out_first() {
        let c = ResponseCache::new(8 * 1024);
        for i in 0..100u32 {
            c.put(key(&[&i.to_le_bytes()]), resp(&"y".repeat(500)), 0, 60);
        }
        assert!(c.len() < 20, "{}", c.len());
        assert!(c.get(&key(&[&99u32.to_le_bytes()]), 1).is_some());
        assert!(c.get(&key(&[&0u32.to_le_bytes()]), 1).is_none());
    }

    #[test]
    fn key_parts_are_framed() {
        assert_ne!(key(&[b"ab", b"c"]), key(&[b"a", b"bc"]));
    }
}
