//! list: order, limit, prefix, cursor, startAfter, delimiter, include.

#[macro_use]
mod common;

use common::*;
use hearth_r2::*;

fn keys(r: &R2Objects) -> Vec<&str> {
    r.objects.iter().map(|o| o.key.as_str()).collect()
}

fn list(f: &Fixture, o: R2ListOptions) -> R2Objects {
    f.bucket.list(&o).unwrap()
}

fn seeded(ks: &[&str]) -> Fixture {
    let f = open();
    for k in ks {
        f.put(k, k.as_bytes());
    }
    f
}

#[test]
fn lists_everything_in_byte_order_by_default() {
    let f = seeded(&["b", "a", "B", "é", "a/b", "a0"]);
    let r = list(&f, R2ListOptions::default());
    assert_eq!(keys(&r), vec!["B", "a", "a/b", "a0", "b", "é"]);
    assert!(!r.truncated);
    assert_eq!(r.cursor, None);
    assert!(r.delimited_prefixes.is_empty());
}

#[test]
fn limit_must_be_between_1_and_1000() {
    let f = open();
    for bad in [0, MAX_LIST_KEYS + 1] {
        let err = f
            .bucket
            .list(&R2ListOptions {
                limit: Some(bad),
                ..Default::default()
            })
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "list: MaxKeys params must be positive integer <= 1000. (10022)"
        );
    }
    let raised = open_with(R2Limits {
        max_list_keys: 5000,
        ..R2Limits::default()
    });
    assert!(
        raised
            .bucket
            .list(&R2ListOptions {
                limit: Some(5000),
                ..Default::default()
            })
            .is_ok()
    );
    let err = raised
        .bucket
        .list(&R2ListOptions {
            limit: Some(5001),
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "list: MaxKeys params must be positive integer <= 5000. (10022)"
    );
}

#[test]
fn cursor_pages_through_everything_once() {
    let names: Vec<String> = (0..25).map(|i| format!("k{i:02}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let f = seeded(&refs);
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let r = list(
            &f,
            R2ListOptions {
                limit: Some(10),
                cursor: cursor.clone(),
                ..Default::default()
            },
        );
        seen.extend(r.objects.iter().map(|o| o.key.clone()));
        assert_eq!(r.truncated, r.cursor.is_some());
        if !r.truncated {
            break;
        }
        cursor = r.cursor;
    }
    assert_eq!(seen, names);
}

#[test]
fn exactly_limit_results_is_not_truncated() {
    let f = seeded(&["a", "b"]);
    let r = list(
        &f,
        R2ListOptions {
            limit: Some(2),
            ..Default::default()
        },
    );
    assert_eq!(keys(&r), vec!["a", "b"]);
    assert!(!r.truncated);
}

#[test]
fn a_key_added_behind_the_cursor_is_not_returned_but_one_ahead_is() {
    let f = seeded(&["a", "c", "e"]);
    let r = list(
        &f,
        R2ListOptions {
            limit: Some(2),
            ..Default::default()
        },
    );
    f.put("b", b"");
    f.put("d", b"");
    let r = list(
        &f,
        R2ListOptions {
            cursor: r.cursor,
            ..Default::default()
        },
    );
    assert_eq!(keys(&r), vec!["d", "e"]);
}

#[test]
fn prefix_and_start_after() {
    let f = seeded(&["a", "p/1", "p/2", "p/3", "q"]);
    let r = list(
        &f,
        R2ListOptions {
            prefix: Some("p/".into()),
            ..Default::default()
        },
    );
    assert_eq!(keys(&r), vec!["p/1", "p/2", "p/3"]);
    let r = list(
        &f,
        R2ListOptions {
            prefix: Some("p/".into()),
            start_after: Some("p/1".into()),
            ..Default::default()
        },
    );
    assert_eq!(keys(&r), vec!["p/2", "p/3"]);
    // startAfter before the prefix does not leak other keys in.
    let r = list(
        &f,
        R2ListOptions {
            prefix: Some("p/".into()),
            start_after: Some("a".into()),
            ..Default::default()
        },
    );
    assert_eq!(keys(&r), vec!["p/1", "p/2", "p/3"]);
    let r = list(
        &f,
        R2ListOptions {
            start_after: Some("p/3".into()),
            ..Default::default()
        },
    );
    assert_eq!(keys(&r), vec!["q"]);
}

#[test]
fn cursor_and_start_after_use_whichever_is_further() {
    let f = seeded(&["a", "b", "c", "d"]);
    let page = list(
        &f,
        R2ListOptions {
            limit: Some(1),
            ..Default::default()
        },
    ); // cursor after "a"
    let r = list(
        &f,
        R2ListOptions {
            cursor: page.cursor.clone(),
            start_after: Some("b".into()),
            ..Default::default()
        },
    );
    assert_eq!(keys(&r), vec!["c", "d"]);
    let page = list(
        &f,
        R2ListOptions {
            limit: Some(3),
            ..Default::default()
        },
    ); // cursor after "c"
    let r = list(
        &f,
        R2ListOptions {
            cursor: page.cursor,
            start_after: Some("a".into()),
            ..Default::default()
        },
    );
    assert_eq!(keys(&r), vec!["d"]);
}

#[test]
fn a_garbage_cursor_is_refused() {
    let f = open();
    assert!(matches!(
        f.bucket.list(&R2ListOptions {
            cursor: Some("!!not base64!!".into()),
            ..Default::default()
        }),
        Err(R2Error::InvalidArgument { .. })
    ));
}

#[test]
fn delimiter_rolls_up_common_prefixes() {
    let f = seeded(&["a.txt", "dir/x", "dir/y/z", "dir2/w", "z.txt"]);
    let r = list(
        &f,
        R2ListOptions {
            delimiter: Some("/".into()),
            ..Default::default()
        },
    );
    assert_eq!(keys(&r), vec!["a.txt", "z.txt"]);
    assert_eq!(r.delimited_prefixes, vec!["dir/", "dir2/"]);

    let r = list(
        &f,
        R2ListOptions {
            prefix: Some("dir/".into()),
            delimiter: Some("/".into()),
            ..Default::default()
        },
    );
    assert_eq!(keys(&r), vec!["dir/x"]);
    assert_eq!(r.delimited_prefixes, vec!["dir/y/"]);

    // Multi-character delimiters, and an empty one meaning none.
    let r = list(
        &f,
        R2ListOptions {
            delimiter: Some("ir".into()),
            ..Default::default()
        },
    );
    assert_eq!(r.delimited_prefixes, vec!["dir"]);
    let r = list(
        &f,
        R2ListOptions {
            delimiter: Some(String::new()),
            ..Default::default()
        },
    );
    assert_eq!(r.objects.len(), 5);
}

#[test]
fn delimited_prefixes_count_toward_the_limit_and_are_never_repeated() {
    let f = seeded(&["a/1", "a/2", "a/3", "b", "c/1", "c/2", "d"]);
    let mut pages = Vec::new();
    let mut cursor = None;
    loop {
        let r = list(
            &f,
            R2ListOptions {
                limit: Some(2),
                delimiter: Some("/".into()),
                cursor: cursor.clone(),
                ..Default::default()
            },
        );
        assert!(r.objects.len() + r.delimited_prefixes.len() <= 2);
        pages.push((
            keys(&r).iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            r.delimited_prefixes.clone(),
        ));
        if !r.truncated {
            break;
        }
        cursor = r.cursor;
    }
    assert_eq!(
        pages,
        vec![
            (vec!["b".to_string()], vec!["a/".to_string()]),
            (vec!["d".to_string()], vec!["c/".to_string()]),
        ]
    );
}

#[test]
fn a_page_ending_on_a_prefix_resumes_after_the_whole_group() {
    let f = seeded(&["a/1", "a/2", "b/1", "b/2", "c"]);
    let r = list(
        &f,
        R2ListOptions {
            limit: Some(1),
            delimiter: Some("/".into()),
            ..Default::default()
        },
    );
    assert_eq!(r.delimited_prefixes, vec!["a/"]);
    assert!(r.truncated);
    let r = list(
        &f,
        R2ListOptions {
            limit: Some(1),
            delimiter: Some("/".into()),
            cursor: r.cursor,
            ..Default::default()
        },
    );
    assert_eq!(r.delimited_prefixes, vec!["b/"]);
    let r = list(
        &f,
        R2ListOptions {
            delimiter: Some("/".into()),
            cursor: r.cursor,
            ..Default::default()
        },
    );
    assert_eq!(keys(&r), vec!["c"]);
    assert!(!r.truncated);
}

#[test]
fn include_selects_which_metadata_is_returned() {
    let f = open();
    let opts = R2PutOptions {
        http_metadata: Some(R2HttpMetadata {
            content_type: Some("text/plain".into()),
            ..Default::default()
        }),
        custom_metadata: Some(meta(&[("a", "1")])),
        ..Default::default()
    };
    f.bucket.put("k", &b"v"[..], &opts).unwrap();
    f.put("bare", b"v");

    let r = list(&f, R2ListOptions::default());
    assert!(
        r.objects
            .iter()
            .all(|o| o.http_metadata.is_none() && o.custom_metadata.is_none())
    );
    assert_eq!(r.objects[0].size, 1);
    assert_eq!(r.objects[0].checksums.md5, Some(md5_hex(b"v")));
    assert_eq!(r.objects[0].range, None);

    let r = list(
        &f,
        R2ListOptions {
            include: vec![R2ListInclude::HttpMetadata],
            ..Default::default()
        },
    );
    let k = r.objects.iter().find(|o| o.key == "k").unwrap();
    assert_eq!(
        k.http_metadata.as_ref().unwrap().content_type.as_deref(),
        Some("text/plain")
    );
    assert!(k.custom_metadata.is_none());

    let r = list(
        &f,
        R2ListOptions {
            include: vec![R2ListInclude::CustomMetadata, R2ListInclude::HttpMetadata],
            ..Default::default()
        },
    );
    let bare = r.objects.iter().find(|o| o.key == "bare").unwrap();
    // Asked for but absent: empty, not None.
    assert_eq!(bare.custom_metadata, Some(Default::default()));
    assert_eq!(bare.http_metadata, Some(Default::default()));

    assert_eq!(
        "httpMetadata".parse::<R2ListInclude>().unwrap(),
        R2ListInclude::HttpMetadata
    );
    assert_eq!(
        "size".parse::<R2ListInclude>().unwrap_err().to_string(),
        "Unsupported include value size"
    );
}

// The same rules on an S3-compatible store (the moto double).
on_s3!(
    lists_everything_in_byte_order_by_default,
    limit_must_be_between_1_and_1000,
    cursor_pages_through_everything_once,
    exactly_limit_results_is_not_truncated,
    a_key_added_behind_the_cursor_is_not_returned_but_one_ahead_is,
    prefix_and_start_after,
    cursor_and_start_after_use_whichever_is_further,
    a_garbage_cursor_is_refused,
    delimiter_rolls_up_common_prefixes,
    delimited_prefixes_count_toward_the_limit_and_are_never_repeated,
    a_page_ending_on_a_prefix_resumes_after_the_whole_group,
    include_selects_which_metadata_is_returned,
);
