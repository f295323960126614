//! onlyIf for get and put: each condition, the header form and precedence.

#[macro_use]
mod common;

use common::*;
use hearth_r2::*;

fn get_if(f: &Fixture, key: &str, c: R2Conditional) -> Option<R2GetResult> {
    f.bucket
        .get(
            key,
            &R2GetOptions {
                only_if: Some(c),
                ..Default::default()
            },
        )
        .unwrap()
}

fn has_body(r: &Option<R2GetResult>) -> bool {
    matches!(r, Some(R2GetResult::Body(_)))
}

fn put_if(f: &Fixture, key: &str, value: &[u8], c: R2Conditional) -> Option<R2Object> {
    f.bucket
        .put(
            key,
            value,
            &R2PutOptions {
                only_if: Some(c),
                ..Default::default()
            },
        )
        .unwrap()
}

fn c() -> R2Conditional {
    R2Conditional::new()
}

#[test]
fn etag_matches_on_get() {
    let f = open();
    let o = f.put("k", b"v");
    assert!(has_body(&get_if(
        &f,
        "k",
        c().etag_matches(&o.etag).unwrap()
    )));
    assert!(has_body(&get_if(&f, "k", c().etag_matches("*").unwrap())));
    let failed = get_if(&f, "k", c().etag_matches("other").unwrap());
    match failed {
        Some(R2GetResult::PreconditionFailed(obj)) => {
            assert_eq!(obj.etag, o.etag);
            assert_eq!(
                obj.range,
                Some(R2ObjectRange {
                    offset: 0,
                    length: 1
                })
            );
        }
        other => panic!("expected metadata without body, got {other:?}"),
    }
}

#[test]
fn etag_does_not_match_on_get() {
    let f = open();
    let o = f.put("k", b"v");
    assert!(has_body(&get_if(
        &f,
        "k",
        c().etag_does_not_match("other").unwrap()
    )));
    let r = get_if(&f, "k", c().etag_does_not_match(&o.etag).unwrap());
    assert!(matches!(r, Some(R2GetResult::PreconditionFailed(_))));
    let r = get_if(&f, "k", c().etag_does_not_match("*").unwrap());
    assert!(matches!(r, Some(R2GetResult::PreconditionFailed(_))));
}

#[test]
fn uploaded_before_and_after_on_get() {
    let f = open();
    f.put("k", b"v"); // uploaded at T0
    assert!(has_body(&get_if(&f, "k", c().uploaded_after(T0 - 1))));
    assert!(!has_body(&get_if(&f, "k", c().uploaded_after(T0))));
    assert!(has_body(&get_if(&f, "k", c().uploaded_before(T0 + 1))));
    assert!(!has_body(&get_if(&f, "k", c().uploaded_before(T0))));
}

#[test]
fn seconds_granularity_truncates_both_sides() {
    let f = open();
    f.clock.set_ms(T0 + 700);
    f.put("k", b"v");
    let mut cond = c().uploaded_after(T0 + 100);
    assert!(has_body(&get_if(&f, "k", cond.clone())));
    cond.seconds_granularity = true;
    assert!(!has_body(&get_if(&f, "k", cond)));
}

#[test]
fn a_missing_object_is_none_whatever_the_condition() {
    let f = open();
    assert!(get_if(&f, "nope", c().etag_matches("x").unwrap()).is_none());
}

#[test]
fn put_with_failed_condition_returns_none_and_changes_nothing() {
    let f = open();
    let o = f.put("k", b"v1");
    assert!(put_if(&f, "k", b"v2", c().etag_matches("other").unwrap()).is_none());
    assert_eq!(f.get_text("k").as_deref(), Some("v1"));
    assert_eq!(files_in(f.path(), "blobs"), vec![o.version.clone()]);

    let o2 = put_if(&f, "k", b"v2", c().etag_matches(&o.etag).unwrap()).unwrap();
    assert_eq!(f.get_text("k").as_deref(), Some("v2"));
    assert_eq!(files_in(f.path(), "blobs"), vec![o2.version]);
}

#[test]
fn put_create_only_with_etag_does_not_match_wildcard() {
    let f = open();
    let cond = c().etag_does_not_match("*").unwrap();
    assert!(put_if(&f, "k", b"first", cond.clone()).is_some());
    assert!(put_if(&f, "k", b"second", cond).is_none());
    assert_eq!(f.get_text("k").as_deref(), Some("first"));
}

#[test]
fn put_on_a_missing_object_fails_only_match_and_uploaded_after() {
    let f = open();
    assert!(put_if(&f, "a", b"x", c().etag_matches("e").unwrap()).is_none());
    assert!(put_if(&f, "b", b"x", c().uploaded_after(0)).is_none());
    assert!(put_if(&f, "c", b"x", c().uploaded_before(0)).is_some());
    assert!(put_if(&f, "d", b"x", c().etag_does_not_match("e").unwrap()).is_some());
    assert!(f.bucket.head("a").unwrap().is_none());
    assert!(f.bucket.head("b").unwrap().is_none());
}

#[test]
fn a_passing_etag_condition_overrides_the_date_condition() {
    // RFC 7232 section 6: If-Match decides over If-Unmodified-Since,
    // If-None-Match over If-Modified-Since.
    let f = open();
    let o = f.put("k", b"v");
    let cond = c()
        .etag_matches(&o.etag)
        .unwrap()
        .uploaded_before(T0 - 10_000);
    assert!(has_body(&get_if(&f, "k", cond)));
    let cond = c()
        .etag_does_not_match("other")
        .unwrap()
        .uploaded_after(T0 + 10_000);
    assert!(has_body(&get_if(&f, "k", cond)));
    // Without the etag condition the date alone fails.
    assert!(!has_body(&get_if(
        &f,
        "k",
        c().uploaded_before(T0 - 10_000)
    )));
    // A failing etag condition still fails.
    let cond = c()
        .etag_matches("other")
        .unwrap()
        .uploaded_before(T0 + 10_000);
    assert!(!has_body(&get_if(&f, "k", cond)));
}

#[test]
fn quoted_etags_are_refused_in_the_object_form() {
    let err = c().etag_matches("\"abc\"").unwrap_err();
    assert_eq!(
        err.to_string(),
        "Conditional ETag should not be wrapped in quotes (\"abc\")."
    );
    assert!(c().etag_does_not_match("\"abc\"").is_err());
}

#[test]
fn header_form_accepts_lists_quotes_weak_tags_and_wildcards() {
    let f = open();
    let o = f.put("k", b"v");
    let e = &o.etag;
    let hdr =
        |m: Option<&str>, n: Option<&str>| R2Conditional::from_headers(m, n, None, None).unwrap();

    assert!(has_body(&get_if(
        &f,
        "k",
        hdr(Some(&format!("\"x\", \"{e}\"")), None)
    )));
    assert!(has_body(&get_if(&f, "k", hdr(Some(e), None))), "bare etag");
    assert!(has_body(&get_if(&f, "k", hdr(Some("*"), None))));
    assert!(!has_body(&get_if(&f, "k", hdr(Some("\"x\", \"y\""), None))));
    // If-Match compares strongly: a weak tag never matches.
    assert!(!has_body(&get_if(
        &f,
        "k",
        hdr(Some(&format!("W/\"{e}\"")), None)
    )));
    // If-None-Match compares weakly.
    assert!(!has_body(&get_if(
        &f,
        "k",
        hdr(None, Some(&format!("W/\"{e}\"")))
    )));
    assert!(!has_body(&get_if(
        &f,
        "k",
        hdr(None, Some(&format!("\"a\",, \"{e}\"")))
    )));
    assert!(has_body(&get_if(&f, "k", hdr(None, Some("\"a\"")))));

    assert_eq!(
        parse_etag_list(" \"a\" , W/\"b\",*").unwrap(),
        vec![R2Etag::Wildcard]
    );
    assert_eq!(
        parse_etag_list("\"a,b\", W/\"c\"").unwrap(),
        vec![R2Etag::Strong("a,b".into()), R2Etag::Weak("c".into())]
    );
}

#[test]
fn malformed_etag_headers_get_the_runtime_messages() {
    let msg = |h: &str| parse_etag_list(h).unwrap_err().to_string();
    assert_eq!(msg("\"abc"), "Unclosed double quote for Etag");
    assert_eq!(
        msg("W\"abc\""),
        "Weak etags must start with W/ and their value must be quoted"
    );
    assert_eq!(
        msg("\"a\" \"b\""),
        "Comma was expected to separate etags. Encountered a double quote character '\"' \
         instead. This would otherwise indicate the start of a new strong etag."
    );
    assert_eq!(
        msg("\"a\" *"),
        "Comma was expected to separate etags. Encountered a wildcard character '*' instead."
    );
}

#[test]
fn header_dates_are_compared_in_whole_seconds() {
    let f = open();
    f.clock.set_ms(784_111_777_500); // Sun, 06 Nov 1994 08:49:37.5 GMT
    f.put("k", b"v");
    let since = |s: &str| R2Conditional::from_headers(None, None, Some(s), None).unwrap();
    let unmod = |s: &str| R2Conditional::from_headers(None, None, None, Some(s)).unwrap();
    assert!(!has_body(&get_if(
        &f,
        "k",
        since("Sun, 06 Nov 1994 08:49:37 GMT")
    )));
    assert!(has_body(&get_if(
        &f,
        "k",
        since("Sun, 06 Nov 1994 08:49:36 GMT")
    )));
    assert!(!has_body(&get_if(
        &f,
        "k",
        unmod("Sun, 06 Nov 1994 08:49:37 GMT")
    )));
    assert!(has_body(&get_if(
        &f,
        "k",
        unmod("Sun, 06 Nov 1994 08:49:38 GMT")
    )));
    // An unparseable date is ignored (RFC 7232 3.3).
    let c = since("not a date");
    assert_eq!(c.uploaded_after, None);
    assert!(has_body(&get_if(&f, "k", c)));
}

#[test]
fn header_form_works_for_put() {
    let f = open();
    let create_only = R2Conditional::from_headers(None, Some("*"), None, None).unwrap();
    assert!(put_if(&f, "k", b"a", create_only.clone()).is_some());
    assert!(put_if(&f, "k", b"b", create_only).is_none());
    let etag = f.bucket.head("k").unwrap().unwrap().http_etag();
    let if_match = R2Conditional::from_headers(Some(&etag), None, None, None).unwrap();
    assert!(put_if(&f, "k", b"c", if_match).is_some());
    assert_eq!(f.get_text("k").as_deref(), Some("c"));
}

// The same rules on an S3-compatible store (the moto double).
on_s3!(
    etag_matches_on_get,
    etag_does_not_match_on_get,
    uploaded_before_and_after_on_get,
    seconds_granularity_truncates_both_sides,
    a_missing_object_is_none_whatever_the_condition,
    put_create_only_with_etag_does_not_match_wildcard,
    put_on_a_missing_object_fails_only_match_and_uploaded_after,
    a_passing_etag_condition_overrides_the_date_condition,
    quoted_etags_are_refused_in_the_object_form,
    header_form_accepts_lists_quotes_weak_tags_and_wildcards,
    malformed_etag_headers_get_the_runtime_messages,
    header_dates_are_compared_in_whole_seconds,
    header_form_works_for_put,
);
