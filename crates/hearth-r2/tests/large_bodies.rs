//! Bodies larger than one read or hash chunk: what is stored, hashed and
//! read back must be exactly the bytes sent, whatever pieces they came in.

#[macro_use]
mod common;

use std::io::Read;

use common::*;
use hearth_r2::*;

/// 1 MiB and a little more, so no chunk boundary lines up with the end.
fn payload() -> Vec<u8> {
    (0..(1 << 20) + 4099u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

/// Hands the body out a few bytes at a time, as a slow network would.
struct Trickle<'a> {
    data: &'a [u8],
    step: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.step.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

fn get(f: &Fixture, key: &str, range: Option<R2Range>) -> R2ObjectBody {
    f.bucket
        .get(
            key,
            &R2GetOptions {
                range,
                ..Default::default()
            },
        )
        .unwrap()
        .unwrap()
        .into_body()
        .unwrap()
}

#[test]
fn a_large_body_in_small_pieces_is_stored_and_hashed_whole() {
    use sha2::Digest;
    let f = open();
    let data = payload();
    let sha = sha2::Sha256::digest(&data).to_vec();
    let o = f
        .bucket
        .put(
            "big",
            Trickle {
                data: &data,
                step: 1000,
            },
            &R2PutOptions {
                checksum: Some(
                    R2ExpectedChecksum::from_bytes(R2HashAlgorithm::Sha256, &sha).unwrap(),
                ),
                ..Default::default()
            },
        )
        .unwrap()
        .unwrap();
    assert_eq!(o.size, data.len() as u64);
    assert_eq!(o.etag, md5_hex(&data));
    assert_eq!(o.checksums.sha256, Some(hex::encode(&sha)));

    assert_eq!(get(&f, "big", None).body.bytes().unwrap(), data);
    let mut streamed = Vec::new();
    let mut body = get(&f, "big", None).body;
    let mut buf = [0u8; 3000];
    loop {
        let n = body.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        streamed.extend_from_slice(&buf[..n]);
    }
    assert_eq!(streamed, data);
    // `read_to_end` appends after what the buffer already holds.
    let mut appended = b"prefix".to_vec();
    let n = get(&f, "big", None)
        .body
        .read_to_end(&mut appended)
        .unwrap();
    assert_eq!(n, data.len());
    assert_eq!(&appended[..6], b"prefix");
    assert_eq!(&appended[6..], &data[..]);
}

#[test]
fn a_range_of_a_large_object_reads_exactly_that_range() {
    let f = open();
    let data = payload();
    f.put("big", &data);
    let body = get(
        &f,
        "big",
        Some(R2Range::Offset {
            offset: 300_001,
            length: Some(500_000),
        }),
    )
    .body;
    assert_eq!(body.remaining(), 500_000);
    assert_eq!(body.bytes().unwrap(), &data[300_001..800_001]);
    let tail = get(&f, "big", Some(R2Range::Suffix { suffix: 70_000 })).body;
    assert_eq!(tail.bytes().unwrap(), &data[data.len() - 70_000..]);
}

#[test]
fn a_multipart_object_reads_back_across_its_parts() {
    let f = open_with(small_parts());
    let data = payload();
    let up = f
        .bucket
        .create_multipart_upload("mp", &R2MultipartOptions::default())
        .unwrap();
    let (a, rest) = data.split_at(400_000);
    let (b, c) = rest.split_at(400_000);
    let parts = vec![
        up.upload_part(1, a).unwrap(),
        up.upload_part(2, b).unwrap(),
        up.upload_part(3, c).unwrap(),
    ];
    assert_eq!(parts[1].etag, md5_hex(b));
    up.complete(&parts).unwrap();
    assert_eq!(get(&f, "mp", None).body.bytes().unwrap(), data);
    let mut out = Vec::new();
    get(&f, "mp", None).body.read_to_end(&mut out).unwrap();
    assert_eq!(out, data);
    let across = get(
        &f,
        "mp",
        Some(R2Range::Offset {
            offset: 399_990,
            length: Some(400_020),
        }),
    )
    .body;
    assert_eq!(across.bytes().unwrap(), &data[399_990..800_010]);
}

#[test]
fn a_large_body_with_the_wrong_checksum_leaves_no_file() {
    let f = open();
    let data = payload();
    let wrong = md5_hex(b"not it");
    let err = f
        .bucket
        .put(
            "big",
            &data[..],
            &R2PutOptions {
                checksum: Some(R2ExpectedChecksum::from_hex(R2HashAlgorithm::Md5, &wrong).unwrap()),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert_eq!(err.code(), Some(10037));
    assert!(
        err.to_string().contains(&md5_hex(&data)),
        "{err} names the actual MD5"
    );
    assert!(f.bucket.head("big").unwrap().is_none());
    assert_eq!(files_in(f.path(), "blobs"), Vec::<String>::new());
}

#[test]
fn a_large_body_over_the_upload_limit_is_refused_and_leaves_no_file() {
    let f = open_with(R2Limits {
        max_upload_bytes: 600_000,
        ..R2Limits::default()
    });
    let err = f
        .bucket
        .put("big", &payload()[..], &R2PutOptions::default())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "put: Your proposed upload exceeds the maximum allowed object size. (100100)"
    );
    assert!(f.bucket.head("big").unwrap().is_none());
    assert_eq!(files_in(f.path(), "blobs"), Vec::<String>::new());
}

// The same rules on an S3-compatible store (the moto double).
on_s3!(
    a_large_body_in_small_pieces_is_stored_and_hashed_whole,
    a_range_of_a_large_object_reads_exactly_that_range,
    a_multipart_object_reads_back_across_its_parts,
);
