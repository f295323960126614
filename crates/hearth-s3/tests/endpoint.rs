//! The endpoint in process, on a `ManualClock`: signed streaming uploads
//! end to end, clock skew and presigned expiry decided by the injected
//! clock, and hostile bodies refused before anything is stored.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;

use hearth_core::ManualClock;
use hearth_r2::{R2Bucket, R2GetOptions, R2Limits};
use hearth_s3::sigv4::{self, CanonicalRequest, Credential, SigningKey};
use hearth_s3::{Access, Buckets, CredentialStore, S3Options, S3Server};
use sha2::Digest as _;

const T0: u64 = 1_780_000_000_000;

struct Env {
    _dir: tempfile::TempDir,
    addr: String,
    clock: ManualClock,
    key: (String, String),
    bucket: R2Bucket,
    _rt: tokio::runtime::Runtime,
}

fn start() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let store = CredentialStore::open(
        &dir.path().join("s3.sqlite"),
        &dir.path().join("s3.key"),
        clock.shared(),
    )
    .unwrap();
    let made = store.create("t", vec![], Access::ReadWrite).unwrap();
    let bucket_dir = dir.path().join("r2/photos");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server = rt
        .block_on(S3Server::bind(S3Options {
            listen: "127.0.0.1:0".parse().unwrap(),
            buckets: Arc::new(Buckets::new(
                dir.path().join("r2"),
                BTreeMap::from([("photos".to_string(), bucket_dir.clone())]),
                false,
                clock.shared(),
                R2Limits::default(),
            )),
            credentials: Arc::new(store),
            clock: clock.shared(),
            max_connections: 8,
        }))
        .unwrap();
    let addr = server.local_addr().unwrap().to_string();
    rt.spawn(server.run());
    let bucket = R2Bucket::open_shared(&bucket_dir, clock.shared(), R2Limits::default()).unwrap();
    Env {
        _dir: dir,
        addr,
        clock,
        key: (made.info.access_key_id, made.secret_access_key),
        bucket,
        _rt: rt,
    }
}

struct Signed {
    head: String,
    key: SigningKey,
    amz_date: String,
    scope: String,
    signature: String,
}

/// Signs a request at the clock's time minus `behind_ms`.
fn sign(
    e: &Env,
    method: &str,
    path: &str,
    extra: &[(&str, &str)],
    payload: &str,
    behind_ms: u64,
) -> Signed {
    let amz_date = hearth_s3::time::amz_date(hearth_core::Clock::now_ms(&e.clock) - behind_ms);
    let cred = Credential {
        access_key_id: e.key.0.clone(),
        date: amz_date[..8].to_string(),
        region: "auto".into(),
        service: "s3".into(),
    };
    let mut headers: Vec<(String, String)> = vec![
        ("host".into(), e.addr.clone()),
        ("x-amz-content-sha256".into(), payload.into()),
        ("x-amz-date".into(), amz_date.clone()),
    ];
    headers.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    headers.sort();
    let signed: Vec<String> = headers.iter().map(|(k, _)| k.clone()).collect();
    let ch = sigv4::canonical_headers(&signed, |n| {
        headers
            .iter()
            .filter(|(k, _)| k == n)
            .map(|(_, v)| v.as_str())
            .collect()
    })
    .unwrap();
    let (raw_path, query) = path.split_once('?').unwrap_or((path, ""));
    let cr = CanonicalRequest {
        method,
        raw_path,
        canonical_query: sigv4::canonical_query(&sigv4::parse_query(query).unwrap()),
        canonical_headers: ch,
        signed_headers: &signed,
        payload_hash: payload,
    };
    let scope = cred.scope();
    let sts = sigv4::string_to_sign(&amz_date, &scope, &cr.render());
    let key = SigningKey::derive(&e.key.1, &cred);
    let signature = key.sign(&sts);
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    for (k, v) in &headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!(
        "authorization: AWS4-HMAC-SHA256 Credential={}/{scope},SignedHeaders={},Signature={signature}\r\nconnection: close\r\n\r\n",
        e.key.0,
        signed.join(";")
    ));
    Signed {
        head,
        key,
        amz_date,
        scope,
        signature,
    }
}

fn exchange(e: &Env, head: &str, body: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(&e.addr).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    let _ = s.write_all(body);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

/// An aws-chunked body with chained chunk signatures.
fn chunked(s: &Signed, data: &[u8], chunk: usize, tamper: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut prev = s.signature.clone();
    let mut pieces: Vec<&[u8]> = data.chunks(chunk).collect();
    pieces.push(&[]);
    for piece in pieces {
        let hash = hex::encode(sha2::Sha256::digest(piece));
        let sig = s.key.sign(&sigv4::chunk_string_to_sign(
            &s.amz_date,
            &s.scope,
            &prev,
            &hash,
        ));
        out.extend_from_slice(format!("{:x};chunk-signature={sig}\r\n", piece.len()).as_bytes());
        out.extend_from_slice(piece);
        out.extend_from_slice(b"\r\n");
        prev = sig;
    }
    if tamper {
        let i = out.len() / 2;
        out[i] ^= 1;
    }
    out
}

#[test]
fn signed_streaming_upload_is_stored_and_a_tampered_one_is_not() {
    let e = start();
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
    for (key, tamper) in [("good.bin", false), ("bad.bin", true)] {
        let path = format!("/photos/{key}");
        let len = data.len().to_string();
        // The body length depends on the signatures: sign, then frame.
        let probe = sign(
            &e,
            "PUT",
            &path,
            &[("x-amz-decoded-content-length", &len)],
            sigv4::STREAMING_PAYLOAD,
            0,
        );
        let body = chunked(&probe, &data, 64 * 1024, tamper);
        let cl = body.len().to_string();
        let s = sign(
            &e,
            "PUT",
            &path,
            &[
                ("x-amz-decoded-content-length", &len),
                ("content-encoding", "aws-chunked"),
                ("content-length", &cl),
            ],
            sigv4::STREAMING_PAYLOAD,
            0,
        );
        let body = chunked(&s, &data, 64 * 1024, tamper);
        let (status, text) = exchange(&e, &s.head, &body);
        let stored = e.bucket.get(key, &R2GetOptions::default()).unwrap();
        if tamper {
            assert_eq!(status, 403, "{text}");
            assert!(text.contains("SignatureDoesNotMatch"), "{text}");
            assert!(stored.is_none(), "a tampered upload was stored");
        } else {
            assert_eq!(status, 200, "{text}");
            let body = stored.unwrap().into_body().unwrap().body.bytes().unwrap();
            assert!(body == data, "stored bytes differ");
        }
    }
}

#[test]
fn clock_skew_and_presign_expiry_follow_the_injected_clock() {
    let e = start();
    let ok = sign(
        &e,
        "GET",
        "/photos",
        &[],
        sigv4::EMPTY_SHA256,
        14 * 60 * 1000,
    );
    assert_eq!(exchange(&e, &ok.head, b"").0, 200);
    let skewed = sign(
        &e,
        "GET",
        "/photos",
        &[],
        sigv4::EMPTY_SHA256,
        16 * 60 * 1000,
    );
    let (status, text) = exchange(&e, &skewed.head, b"");
    assert_eq!(status, 403);
    assert!(text.contains("RequestTimeTooSkewed"), "{text}");
    // A presigned GET valid for 60 s: fine at 59 s, refused at 61 s.
    e.bucket
        .put("p.txt", &b"presigned"[..], &Default::default())
        .unwrap();
    let amz_date = hearth_s3::time::amz_date(T0);
    let cred = Credential {
        access_key_id: e.key.0.clone(),
        date: amz_date[..8].to_string(),
        region: "auto".into(),
        service: "s3".into(),
    };
    let query = format!(
        "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={}&X-Amz-Date={amz_date}&X-Amz-Expires=60&X-Amz-SignedHeaders=host",
        sigv4::uri_encode(&format!("{}/{}", e.key.0, cred.scope()), false)
    );
    let cr = CanonicalRequest {
        method: "GET",
        raw_path: "/photos/p.txt",
        canonical_query: sigv4::canonical_query(&sigv4::parse_query(&query).unwrap()),
        canonical_headers: format!("host:{}\n", e.addr),
        signed_headers: &["host".to_string()],
        payload_hash: sigv4::UNSIGNED_PAYLOAD,
    };
    let sig = SigningKey::derive(&e.key.1, &cred).sign(&sigv4::string_to_sign(
        &amz_date,
        &cred.scope(),
        &cr.render(),
    ));
    let head = format!(
        "GET /photos/p.txt?{query}&X-Amz-Signature={sig} HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n\r\n",
        e.addr
    );
    e.clock.advance_secs(59);
    let (status, text) = exchange(&e, &head, b"");
    assert_eq!(status, 200, "{text}");
    assert!(text.ends_with("presigned"));
    e.clock.advance_secs(2);
    let (status, text) = exchange(&e, &head, b"");
    assert_eq!(status, 403);
    assert!(text.contains("Request has expired"), "{text}");
}

#[test]
fn hostile_bodies_are_refused_before_anything_is_stored() {
    let e = start();
    // A signed payload hash that the body does not match.
    let s = sign(
        &e,
        "PUT",
        "/photos/x",
        &[("content-length", "5")],
        &hex::encode(sha2::Sha256::digest(b"hello")),
        0,
    );
    let (status, text) = exchange(&e, &s.head, b"hellp");
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("XAmzContentSHA256Mismatch"), "{text}");
    assert!(e.bucket.head("x").unwrap().is_none());
    // A body shorter than its Content-Length, then the client goes away.
    let s = sign(
        &e,
        "PUT",
        "/photos/y",
        &[("content-length", "1000")],
        sigv4::UNSIGNED_PAYLOAD,
        0,
    );
    let mut c = TcpStream::connect(&e.addr).unwrap();
    c.write_all(s.head.as_bytes()).unwrap();
    c.write_all(&[0u8; 10]).unwrap();
    c.shutdown(std::net::Shutdown::Write).unwrap();
    let mut out = Vec::new();
    let _ = c.read_to_end(&mut out);
    assert!(e.bucket.head("y").unwrap().is_none());
    // Oversized and too deep XML.
    let big = vec![b'<'; hearth_s3::xml::MAX_XML_BYTES + 128 * 1024];
    let cl = big.len().to_string();
    let s = sign(
        &e,
        "POST",
        "/photos?delete",
        &[("content-length", &cl)],
        sigv4::UNSIGNED_PAYLOAD,
        0,
    );
    let (status, text) = exchange(&e, &s.head, &big);
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("MalformedXML"), "{text}");
    let deep = "<Delete>".repeat(100) + &"</Delete>".repeat(100);
    let cl = deep.len().to_string();
    let s = sign(
        &e,
        "POST",
        "/photos?delete",
        &[("content-length", &cl)],
        sigv4::UNSIGNED_PAYLOAD,
        0,
    );
    let (status, text) = exchange(&e, &s.head, deep.as_bytes());
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("nested deeper"), "{text}");
    // A change to the signed query is refused.
    let head = s
        .head
        .replacen("POST /photos?delete ", "POST /photos?delete&x=1 ", 1);
    let (status, text) = exchange(&e, &head, deep.as_bytes());
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("SignatureDoesNotMatch"), "{text}");
}
