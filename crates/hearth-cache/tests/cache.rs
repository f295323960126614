//! The Cache API contract, one test per documented rule, on a manual clock.

use hearth_cache::{
    Cache, CacheError, CacheLimits, CacheName, CacheStore, CachedResponse, NotStored, PutOutcome,
    RequestKey,
};
use hearth_core::ManualClock;

const T0: u64 = 1_700_000_000_000;
const URL: &str = "https://example.com/a";

fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

fn get(url: &str) -> RequestKey<'_> {
    RequestKey {
        method: "GET",
        url,
        headers: &[],
    }
}

fn with_headers<'a>(url: &'a str, headers: &'a [(String, String)]) -> RequestKey<'a> {
    RequestKey {
        method: "GET",
        url,
        headers,
    }
}

/// A response whose body length is known, as the runtime hands one over
/// (with a Content-Length; the store writes the real one).
fn response(status: u16, headers: &[(&str, &str)], body: &str) -> CachedResponse {
    let mut headers = h(headers);
    headers.push(("content-length".into(), "0".into()));
    CachedResponse {
        status,
        status_text: String::new(),
        headers,
        body: body.as_bytes().to_vec(),
    }
}

fn store(limits: CacheLimits) -> (tempfile::TempDir, ManualClock, CacheStore) {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let s = CacheStore::open(dir.path(), clock.shared(), limits).unwrap();
    (dir, clock, s)
}

fn header<'a>(r: &'a CachedResponse, name: &str) -> Option<&'a str> {
    r.headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn put(s: &dyn Cache, url: &str, r: CachedResponse) -> PutOutcome {
    s.put(CacheName::Default, &get(url), r).unwrap()
}

fn lookup(s: &dyn Cache, url: &str) -> Option<CachedResponse> {
    s.lookup(CacheName::Default, &get(url), false).unwrap()
}

/// The rules every backend keeps, run on each (`embedded`, `on_redis`).
macro_rules! contract {
    ($store:path, $entries:path) => {
        #[test]
        fn a_match_returns_the_stored_response_marked_hit() {
            let Some((_d, _c, s)) = $store(CacheLimits::default()) else {
                return;
            };
            let out = put(
                &s,
                URL,
                response(
                    200,
                    &[("Cache-Control", "max-age=60"), ("X-A", "1")],
                    "hello",
                ),
            );
            assert_eq!(
                out,
                PutOutcome::Stored {
                    expires_at_ms: T0 + 60_000
                }
            );
            let hit = lookup(&s, URL).unwrap();
            assert_eq!(hit.status, 200);
            assert_eq!(hit.body, b"hello");
            assert_eq!(header(&hit, "x-a"), Some("1"));
            assert_eq!(header(&hit, "cf-cache-status"), Some("HIT"));
            assert_eq!(header(&hit, "content-length"), Some("5"));
            assert!(lookup(&s, "https://example.com/b").is_none());
        }

        #[test]
        fn entries_expire_by_the_clock() {
            let Some((_d, clock, s)) = $store(CacheLimits::default()) else {
                return;
            };
            put(
                &s,
                URL,
                response(200, &[("cache-control", "max-age=60")], "x"),
            );
            clock.advance_secs(59);
            assert!(lookup(&s, URL).is_some());
            clock.advance_secs(1);
            assert!(lookup(&s, URL).is_none());
        }

        #[test]
        fn s_maxage_overrides_max_age() {
            let Some((_d, clock, s)) = $store(CacheLimits::default()) else {
                return;
            };
            put(
                &s,
                URL,
                response(200, &[("cache-control", "max-age=5, s-maxage=100")], "x"),
            );
            clock.advance_secs(50);
            assert!(lookup(&s, URL).is_some());
        }

        #[test]
        fn expires_is_counted_from_the_date_header() {
            let Some((_d, clock, s)) = $store(CacheLimits::default()) else {
                return;
            };
            let date = httpdate::fmt_http_date(
                std::time::UNIX_EPOCH + std::time::Duration::from_millis(T0),
            );
            let expires = httpdate::fmt_http_date(
                std::time::UNIX_EPOCH + std::time::Duration::from_millis(T0 + 30_000),
            );
            put(
                &s,
                URL,
                response(200, &[("date", &date), ("expires", &expires)], "x"),
            );
            clock.advance_secs(29);
            assert!(lookup(&s, URL).is_some());
            clock.advance_secs(1);
            assert!(lookup(&s, URL).is_none());
            // An Expires that does not parse means already expired.
            assert_eq!(
                put(&s, URL, response(200, &[("expires", "0")], "x")),
                PutOutcome::NotStored(NotStored::Expired)
            );
        }

        #[test]
        fn without_freshness_headers_the_status_decides() {
            let Some((_d, clock, s)) = $store(CacheLimits::default()) else {
                return;
            };
            put(&s, "https://e.com/ok", response(200, &[], "x"));
            put(
                &s,
                "https://e.com/found",
                response(302, &[("location", "/")], ""),
            );
            put(&s, "https://e.com/missing", response(404, &[], "nf"));
            assert_eq!(
                put(&s, "https://e.com/err", response(500, &[], "x")),
                PutOutcome::NotStored(NotStored::StatusNotCached(500))
            );
            clock.advance_secs(3 * 60);
            assert!(lookup(&s, "https://e.com/missing").is_none());
            assert!(lookup(&s, "https://e.com/found").is_some());
            clock.advance_secs(17 * 60);
            assert!(lookup(&s, "https://e.com/found").is_none());
            assert!(lookup(&s, "https://e.com/ok").is_some());
            clock.advance_secs(100 * 60);
            assert!(lookup(&s, "https://e.com/ok").is_none());
        }

        #[test]
        fn no_store_private_no_cache_and_zero_ttl_are_not_stored() {
            let Some((_d, _c, s)) = $store(CacheLimits::default()) else {
                return;
            };
            for (cc, why) in [
                ("no-store", NotStored::NoStore),
                ("private, max-age=60", NotStored::Private),
                ("no-cache", NotStored::NoCache),
                ("max-age=0", NotStored::Expired),
                ("public, s-maxage=0, max-age=60", NotStored::Expired),
            ] {
                assert_eq!(
                    put(&s, URL, response(200, &[("cache-control", cc)], "x")),
                    PutOutcome::NotStored(why),
                    "{cc}"
                );
                assert!(lookup(&s, URL).is_none(), "{cc}");
            }
        }

        #[test]
        fn set_cookie_responses_are_not_stored_unless_private_names_it() {
            let Some((_d, _c, s)) = $store(CacheLimits::default()) else {
                return;
            };
            assert_eq!(
                put(
                    &s,
                    URL,
                    response(
                        200,
                        &[("cache-control", "max-age=60"), ("set-cookie", "a=1")],
                        "x"
                    )
                ),
                PutOutcome::NotStored(NotStored::SetCookie)
            );
            assert!(lookup(&s, URL).is_none());
            let out = put(
                &s,
                URL,
                response(
                    200,
                    &[
                        ("cache-control", "max-age=60, private=Set-Cookie"),
                        ("set-cookie", "a=1"),
                    ],
                    "x",
                ),
            );
            assert!(matches!(out, PutOutcome::Stored { .. }));
            let hit = lookup(&s, URL).unwrap();
            assert_eq!(header(&hit, "set-cookie"), None);
        }

        #[test]
        fn put_refuses_what_workerd_refuses() {
            let Some((_d, _c, s)) = $store(CacheLimits::default()) else {
                return;
            };
            let post = RequestKey {
                method: "POST",
                url: URL,
                headers: &[],
            };
            let err = s
                .put(CacheName::Default, &post, response(200, &[], "x"))
                .unwrap_err();
            assert_eq!(err.to_string(), "Cannot cache response to non-GET request.");
            let err = s
                .put(CacheName::Default, &get(URL), response(206, &[], "x"))
                .unwrap_err();
            assert_eq!(
                err.to_string(),
                "Cannot cache response to a range request (206 Partial Content)."
            );
            let err = s
                .put(
                    CacheName::Default,
                    &get(URL),
                    response(200, &[("vary", "Accept, *")], "x"),
                )
                .unwrap_err();
            assert_eq!(
                err.to_string(),
                "Cannot cache response with 'Vary: *' header."
            );
            let err = s
                .put(
                    CacheName::Default,
                    &get("file:///etc/passwd"),
                    response(200, &[], "x"),
                )
                .unwrap_err();
            assert!(matches!(err, CacheError::InvalidUrl));
            let long = "n".repeat(1024);
            let err = s
                .put(CacheName::Named(&long), &get(URL), response(200, &[], "x"))
                .unwrap_err();
            assert_eq!(err.to_string(), "Cache name is too long.");
            // A 304 is discarded without an error.
            assert_eq!(
                put(&s, URL, response(304, &[], "")),
                PutOutcome::NotStored(NotStored::NotModified)
            );
        }

        #[test]
        fn only_get_matches_unless_ignore_method() {
            let Some((_d, _c, s)) = $store(CacheLimits::default()) else {
                return;
            };
            put(&s, URL, response(200, &[], "x"));
            let head = RequestKey {
                method: "HEAD",
                url: URL,
                headers: &[],
            };
            assert!(
                s.lookup(CacheName::Default, &head, false)
                    .unwrap()
                    .is_none()
            );
            assert!(s.lookup(CacheName::Default, &head, true).unwrap().is_some());
            assert!(!s.delete(CacheName::Default, &head, false).unwrap());
            assert!(s.delete(CacheName::Default, &head, true).unwrap());
        }

        #[test]
        fn delete_reports_whether_a_live_entry_was_there() {
            let Some((_d, clock, s)) = $store(CacheLimits::default()) else {
                return;
            };
            put(
                &s,
                URL,
                response(200, &[("cache-control", "max-age=10")], "x"),
            );
            assert!(s.delete(CacheName::Default, &get(URL), false).unwrap());
            assert!(!s.delete(CacheName::Default, &get(URL), false).unwrap());
            put(
                &s,
                URL,
                response(200, &[("cache-control", "max-age=10")], "x"),
            );
            clock.advance_secs(10);
            assert!(!s.delete(CacheName::Default, &get(URL), false).unwrap());
            assert_eq!($entries(&_d, &s), 0);
        }

        #[test]
        fn named_caches_are_separate_from_each_other_and_the_default() {
            let Some((_d, _c, s)) = $store(CacheLimits::default()) else {
                return;
            };
            s.put(CacheName::Named("a"), &get(URL), response(200, &[], "in a"))
                .unwrap();
            assert!(lookup(&s, URL).is_none());
            assert!(
                s.lookup(CacheName::Named("default"), &get(URL), false)
                    .unwrap()
                    .is_none()
            );
            let hit = s
                .lookup(CacheName::Named("a"), &get(URL), false)
                .unwrap()
                .unwrap();
            assert_eq!(hit.body, b"in a");
        }

        #[test]
        fn vary_is_kept_but_does_not_split_entries() {
            let Some((_d, _c, s)) = $store(CacheLimits::default()) else {
                return;
            };
            let en = h(&[("Accept-Language", "en")]);
            s.put(
                CacheName::Default,
                &with_headers(URL, &en),
                response(200, &[("vary", "Accept-Language")], "hello"),
            )
            .unwrap();
            let fr = h(&[("accept-language", "fr")]);
            let hit = s
                .lookup(CacheName::Default, &with_headers(URL, &fr), false)
                .unwrap()
                .unwrap();
            assert_eq!(hit.body, b"hello");
            assert_eq!(header(&hit, "vary"), Some("Accept-Language"));
        }

        #[test]
        fn hits_carry_age_and_the_date_the_cache_added() {
            let Some((_d, clock, s)) = $store(CacheLimits::default()) else {
                return;
            };
            put(
                &s,
                URL,
                response(200, &[("cache-control", "max-age=600")], "x"),
            );
            clock.advance_secs(42);
            let hit = lookup(&s, URL).unwrap();
            assert_eq!(header(&hit, "age"), Some("42"));
            let date = httpdate::parse_http_date(header(&hit, "date").unwrap()).unwrap();
            assert_eq!(
                date,
                std::time::UNIX_EPOCH + std::time::Duration::from_millis(T0)
            );
        }

        #[test]
        fn range_requests_get_206_or_416() {
            let Some((_d, _c, s)) = $store(CacheLimits::default()) else {
                return;
            };
            put(
                &s,
                URL,
                response(200, &[("content-type", "text/plain")], "0123456789"),
            );
            let ask = |range: &str| {
                let req = h(&[("range", range)]);
                s.lookup(CacheName::Default, &with_headers(URL, &req), false)
                    .unwrap()
                    .unwrap()
            };
            let r = ask("bytes=2-4");
            assert_eq!(r.status, 206);
            assert_eq!(r.body, b"234");
            assert_eq!(header(&r, "content-range"), Some("bytes 2-4/10"));
            assert_eq!(header(&r, "content-length"), Some("3"));
            assert_eq!(ask("bytes=-2").body, b"89");
            let r = ask("bytes=20-");
            assert_eq!(r.status, 416);
            assert_eq!(header(&r, "content-range"), Some("bytes */10"));
            let r = ask("bytes=0-0,9-9");
            assert_eq!(r.status, 206);
            let ct = header(&r, "content-type").unwrap().to_string();
            let boundary = ct
                .strip_prefix("multipart/byteranges; boundary=")
                .unwrap()
                .to_string();
            let text = String::from_utf8(r.body).unwrap();
            assert!(text.contains("Content-Range: bytes 0-0/10\r\n\r\n0\r\n"));
            assert!(text.contains("Content-Range: bytes 9-9/10\r\n\r\n9\r\n"));
            assert!(text.ends_with(&format!("--{boundary}--\r\n")));
            assert_eq!(ask("lines=1-2").status, 200);
        }

        #[test]
        fn a_body_of_unknown_length_is_stored_without_content_length_and_not_ranged() {
            let Some((_d, _c, s)) = $store(CacheLimits::default()) else {
                return;
            };
            let streamed = CachedResponse {
                status: 200,
                status_text: String::new(),
                headers: h(&[("cache-control", "max-age=60")]),
                body: b"0123456789".to_vec(),
            };
            put(&s, URL, streamed);
            let req = h(&[("range", "bytes=0-1")]);
            let hit = s
                .lookup(CacheName::Default, &with_headers(URL, &req), false)
                .unwrap()
                .unwrap();
            assert_eq!(hit.status, 200);
            assert_eq!(hit.body, b"0123456789");
            assert_eq!(header(&hit, "content-length"), None);
        }

        #[test]
        fn conditional_requests_get_304() {
            let Some((_d, _c, s)) = $store(CacheLimits::default()) else {
                return;
            };
            put(
                &s,
                URL,
                response(
                    200,
                    &[
                        ("etag", "\"v1\""),
                        ("last-modified", "Sun, 06 Nov 1994 08:49:37 GMT"),
                    ],
                    "body",
                ),
            );
            let ask = |pairs: &[(&str, &str)]| {
                let req = h(pairs);
                s.lookup(CacheName::Default, &with_headers(URL, &req), false)
                    .unwrap()
                    .unwrap()
            };
            let r = ask(&[("if-none-match", "\"v1\"")]);
            assert_eq!(r.status, 304);
            assert!(r.body.is_empty());
            assert_eq!(header(&r, "etag"), Some("\"v1\""));
            assert_eq!(ask(&[("if-none-match", "\"v0\"")]).status, 200);
            assert_eq!(
                ask(&[("if-modified-since", "Mon, 07 Nov 1994 08:49:37 GMT")]).status,
                304
            );
            assert_eq!(
                ask(&[("if-modified-since", "Sat, 05 Nov 1994 08:49:37 GMT")]).status,
                200
            );
        }
    };
}

mod embedded {
    use super::*;

    fn store(limits: CacheLimits) -> Option<(tempfile::TempDir, ManualClock, CacheStore)> {
        Some(super::store(limits))
    }

    fn entries(_dir: &tempfile::TempDir, s: &CacheStore) -> u64 {
        s.usage().unwrap().entries
    }

    contract!(store, entries);
}

/// Against the Redis at `HEARTH_TEST_REDIS_URL` (default
/// redis://127.0.0.1:6379), each test under a key prefix of its own;
/// skipped when Redis does not answer, unless `HEARTH_TEST_REQUIRE_CLUSTER=1`.
mod on_redis {
    use super::*;
    use hearth_cache::RedisCache;
    use hearth_ratelimit::redis::RedisPool;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// Removes a test's keys when it ends.
    struct Keys(RedisPool);

    impl Drop for Keys {
        fn drop(&mut self) {
            let pattern = format!("{}:*", self.0.prefix());
            let _ = self.0.with(|c| {
                let keys: Vec<String> = redis::cmd("KEYS").arg(&pattern).query(c)?;
                if !keys.is_empty() {
                    redis::cmd("DEL").arg(keys).query::<()>(c)?;
                }
                Ok(())
            });
        }
    }

    fn store(limits: CacheLimits) -> Option<(Keys, ManualClock, RedisCache)> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let url = std::env::var("HEARTH_TEST_REDIS_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
        let prefix = format!(
            "hearth-cache-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let pool = match RedisPool::connect(&url, &prefix) {
            Ok(p) => p,
            Err(e) if std::env::var("HEARTH_TEST_REQUIRE_CLUSTER").as_deref() == Ok("1") => {
                panic!("Redis at {url} is required (HEARTH_TEST_REQUIRE_CLUSTER=1): {e}")
            }
            Err(e) => {
                eprintln!("skipped: {e}; set HEARTH_TEST_REQUIRE_CLUSTER=1 to fail instead");
                return None;
            }
        };
        let clock = ManualClock::new(T0);
        let cache = RedisCache::new(pool.clone(), clock.shared(), limits);
        Some((Keys(pool), clock, cache))
    }

    /// The test's keys in Redis (an expired entry's key is gone).
    fn entries(keys: &Keys, _s: &RedisCache) -> u64 {
        let pattern = format!("{}:*", keys.0.prefix());
        let found: Vec<String> = keys
            .0
            .with(|c| redis::cmd("KEYS").arg(&pattern).query(c))
            .unwrap();
        found.len() as u64
    }

    contract!(store, entries);
}

#[test]
fn a_put_replaces_the_entry_and_its_body_file() {
    let (dir, _c, s) = store(CacheLimits::default());
    put(&s, URL, response(200, &[], "first"));
    put(&s, URL, response(200, &[], "second"));
    assert_eq!(lookup(&s, URL).unwrap().body, b"second");
    assert_eq!(s.usage().unwrap().entries, 1);
    let files = std::fs::read_dir(dir.path().join("bodies"))
        .unwrap()
        .count();
    assert_eq!(files, 1);
}

#[test]
fn the_size_cap_evicts_expired_then_least_recently_used() {
    let limits = CacheLimits {
        max_total_bytes: 3_000,
        max_entry_bytes: 2_000,
    };
    let (_d, clock, s) = store(limits);
    let body = "x".repeat(800);
    put(
        &s,
        "https://e.com/short",
        response(200, &[("cache-control", "max-age=1")], &body),
    );
    put(&s, "https://e.com/old", response(200, &[], &body));
    put(&s, "https://e.com/new", response(200, &[], &body));
    clock.advance_secs(120);
    // Touch "old" so "new" is now the least recently used live entry.
    assert!(lookup(&s, "https://e.com/old").is_some());
    put(&s, "https://e.com/fourth", response(200, &[], &body));
    assert!(s.usage().unwrap().bytes <= 3_000);
    assert_eq!(s.usage().unwrap().entries, 3, "only the expired entry went");
    put(&s, "https://e.com/fifth", response(200, &[], &body));
    assert!(
        lookup(&s, "https://e.com/new").is_none(),
        "LRU entry evicted"
    );
    assert!(lookup(&s, "https://e.com/old").is_some());
    assert!(lookup(&s, "https://e.com/fifth").is_some());
    // Larger than one entry may be: not stored, nothing evicted.
    let big = "y".repeat(2_001);
    assert_eq!(
        put(&s, "https://e.com/big", response(200, &[], &big)),
        PutOutcome::NotStored(NotStored::TooLarge {
            size: 2_001,
            limit: 2_000
        })
    );
    assert!(lookup(&s, "https://e.com/fifth").is_some());
    // A body under the entry limit whose headers carry it past the whole
    // cache is not stored either, and evicts nothing.
    let before = s.usage().unwrap();
    let fat = "h".repeat(3_000);
    assert!(matches!(
        put(
            &s,
            "https://e.com/fat",
            response(200, &[("x-fat", fat.as_str())], "small")
        ),
        PutOutcome::NotStored(NotStored::TooLarge { limit: 3_000, .. })
    ));
    assert_eq!(s.usage().unwrap(), before);
}

#[test]
fn entries_survive_reopening_and_orphan_bodies_are_swept() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    {
        let s = CacheStore::open(dir.path(), clock.shared(), CacheLimits::default()).unwrap();
        put(&s, URL, response(200, &[], "kept"));
    }
    // A body a crash left without its row.
    let orphan = dir.path().join("bodies").join(format!("{:016x}-1-1", T0));
    std::fs::write(&orphan, b"lost").unwrap();
    clock.advance_secs(11 * 60);
    let s = CacheStore::open(dir.path(), clock.shared(), CacheLimits::default()).unwrap();
    assert_eq!(lookup(&s, URL).unwrap().body, b"kept");
    assert!(!orphan.exists());
    assert_eq!(
        std::fs::read_dir(dir.path().join("bodies"))
            .unwrap()
            .count(),
        1
    );
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    drop(CacheStore::open(dir.path(), clock.shared(), CacheLimits::default()).unwrap());
    let conn = rusqlite::Connection::open(dir.path().join("cache.sqlite")).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let err = CacheStore::open(dir.path(), clock.shared(), CacheLimits::default()).unwrap_err();
    assert!(err.to_string().contains("99"), "{err}");
}
