//! Many threads on one bucket: puts to different keys and to the same key.

#[macro_use]
mod common;

use std::sync::Arc;
use std::thread;

use common::*;
use hearth_r2::*;

#[test]
fn the_bucket_is_send_and_sync() {
    fn check<T: Send + Sync + Clone>() {}
    check::<R2Bucket>();
    check::<R2MultipartUpload>();
}

#[test]
fn concurrent_puts_to_different_keys_all_land() {
    let f = open();
    let bucket = f.bucket.clone();
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let b = bucket.clone();
            thread::spawn(move || {
                for i in 0..20 {
                    let key = format!("t{t}/k{i}");
                    b.put(&key, key.as_bytes(), &R2PutOptions::default())
                        .unwrap()
                        .unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let mut n = 0;
    let mut cursor = None;
    loop {
        let r = f
            .bucket
            .list(&R2ListOptions {
                cursor: cursor.clone(),
                ..Default::default()
            })
            .unwrap();
        for o in &r.objects {
            assert_eq!(f.get_text(&o.key).as_deref(), Some(o.key.as_str()));
        }
        n += r.objects.len();
        if !r.truncated {
            break;
        }
        cursor = r.cursor;
    }
    assert_eq!(n, 160);
    assert_eq!(files_in(f.path(), "blobs").len(), 160);
}

#[test]
fn concurrent_puts_to_one_key_leave_exactly_one_whole_version() {
    let f = open();
    let bodies: Arc<Vec<Vec<u8>>> = Arc::new(
        (0..8u8)
            .map(|t| vec![b'a' + t; 50_000 + t as usize])
            .collect(),
    );
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let b = f.bucket.clone();
            let bodies = bodies.clone();
            thread::spawn(move || {
                for _ in 0..5 {
                    b.put("same", &bodies[t][..], &R2PutOptions::default())
                        .unwrap()
                        .unwrap();
                    // Readers in between always see one complete version.
                    let got = b
                        .get("same", &R2GetOptions::default())
                        .unwrap()
                        .unwrap()
                        .into_body()
                        .unwrap();
                    let size = got.object.size;
                    let bytes = got.body.bytes().unwrap();
                    assert_eq!(bytes.len() as u64, size);
                    assert!(bytes.iter().all(|c| *c == bytes[0]));
                    assert!(bodies.contains(&bytes));
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let head = f.bucket.head("same").unwrap().unwrap();
    assert_eq!(files_in(f.path(), "blobs"), vec![head.version]);
}

#[test]
fn concurrent_create_only_puts_admit_exactly_one_writer() {
    let f = open();
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let b = f.bucket.clone();
            thread::spawn(move || {
                let opts = R2PutOptions {
                    only_if: Some(R2Conditional::new().etag_does_not_match("*").unwrap()),
                    ..Default::default()
                };
                b.put("once", format!("writer {t}").as_bytes(), &opts)
                    .unwrap()
                    .is_some()
            })
        })
        .collect();
    let winners = handles
        .into_iter()
        .map(|h| h.join().unwrap())
        .filter(|w| *w)
        .count();
    assert_eq!(winners, 1);
    assert_eq!(files_in(f.path(), "blobs").len(), 1);
}

// The same rules on an S3-compatible store (the moto double).
on_s3!(the_bucket_is_send_and_sync,);
