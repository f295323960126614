//! Fuzzing of everything that parses client input before authentication:
//! XML bodies, the Authorization header, presigned query strings, SigV4
//! dates, and aws-chunked bodies. Any input gives Ok or an S3 error; none
//! panics, and nothing answered Ok breaks the parser's own limits.

use std::io::Read;
use std::sync::Arc;

use hearth_s3::body::{AwsChunkedReader, ChunkSigning};
use hearth_s3::sigv4::{self, AuthHeader, Credential, Presigned, SigningKey};
use hearth_s3::xml;
use proptest::prelude::*;

/// Strings built from the pieces these grammars are made of, so the fuzz
/// reaches deep into them rather than failing at the first byte.
fn xmlish() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("<".to_string()),
        Just(">".to_string()),
        Just("</".to_string()),
        Just("/>".to_string()),
        Just("<a>".to_string()),
        Just("</a>".to_string()),
        Just("<Part>".to_string()),
        Just("</Part>".to_string()),
        Just("&amp;".to_string()),
        Just("&#x10FFFF;".to_string()),
        Just("&#0;".to_string()),
        Just("&bogus;".to_string()),
        Just("<![CDATA[x]]>".to_string()),
        Just("<!DOCTYPE a>".to_string()),
        Just("<?xml version=\"1.0\"?>".to_string()),
        Just("<!-- c -->".to_string()),
        Just("ns:".to_string()),
        Just(" a=\"1\"".to_string()),
        "[a-zA-Z0-9 \"'=&;#]{0,6}",
    ];
    prop::collection::vec(piece, 0..40).prop_map(|v| v.concat())
}

fn authish() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("AWS4-HMAC-SHA256 ".to_string()),
        Just("Credential=".to_string()),
        Just("SignedHeaders=".to_string()),
        Just("Signature=".to_string()),
        Just("AKID/20130524/us-east-1/s3/aws4_request".to_string()),
        Just("host;x-amz-date".to_string()),
        Just(",".to_string()),
        Just("/".to_string()),
        Just("=".to_string()),
        "[0-9a-f]{0,64}",
        "\\PC{0,8}",
    ];
    prop::collection::vec(piece, 0..16).prop_map(|v| v.concat())
}

fn queryish() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("X-Amz-Algorithm=AWS4-HMAC-SHA256".to_string()),
        Just("X-Amz-Credential=AK%2F20130524%2Fauto%2Fs3%2Faws4_request".to_string()),
        Just("X-Amz-Date=20130524T000000Z".to_string()),
        Just("X-Amz-Expires=".to_string()),
        Just("X-Amz-SignedHeaders=host".to_string()),
        Just("X-Amz-Signature=".to_string()),
        Just("&".to_string()),
        Just("=".to_string()),
        Just("%".to_string()),
        Just("%ZZ".to_string()),
        Just("%C3".to_string()),
        "[0-9a-f]{0,64}",
        "\\PC{0,6}",
    ];
    prop::collection::vec(piece, 0..16).prop_map(|v| v.concat())
}

fn chunkedish() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"0\r\n\r\n".to_vec()),
        Just(b"5\r\nhello\r\n".to_vec()),
        Just(b"ffffffffffffffff\r\n".to_vec()),
        Just(b"3;chunk-signature=".to_vec()),
        Just(vec![b'a'; 64]),
        Just(b"\r\n".to_vec()),
        Just(b"x-amz-checksum-crc32:AAAAAA==\r\n".to_vec()),
        prop::collection::vec(any::<u8>(), 0..16),
    ];
    prop::collection::vec(piece, 0..12).prop_map(|v| v.concat())
}

fn count(e: &xml::Element) -> usize {
    1 + e.children.iter().map(count).sum::<usize>()
}

fn depth(e: &xml::Element) -> usize {
    1 + e.children.iter().map(depth).max().unwrap_or(0)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn xml_parser_never_panics(doc in xmlish(), raw in prop::collection::vec(any::<u8>(), 0..256)) {
        for input in [doc.as_bytes(), &raw[..]] {
            match xml::parse(input) {
                Ok(root) => {
                    prop_assert!(depth(&root) <= xml::MAX_DEPTH);
                    prop_assert!(count(&root) <= xml::MAX_ELEMENTS);
                }
                Err(e) => prop_assert_eq!(e.code, "MalformedXML"),
            }
        }
    }

    #[test]
    fn sigv4_parsers_never_panic(header in authish(), query in queryish(), date in "\\PC{0,20}") {
        let _ = AuthHeader::parse(&header);
        let _ = Credential::parse(&header);
        let _ = sigv4::parse_amz_date(&date);
        if let Ok(pairs) = sigv4::parse_query(&query) {
            let _ = Presigned::parse(&pairs);
            let _ = sigv4::canonical_query(&pairs);
        }
    }

    #[test]
    fn chunked_decoder_never_panics(body in chunkedish(), signed in any::<bool>()) {
        let cred = Credential::parse("AK/20130524/auto/s3/aws4_request").unwrap();
        let signing = if signed {
            ChunkSigning::Signed {
                key: SigningKey::derive("secret", &cred),
                amz_date: "20130524T000000Z".into(),
                scope: cred.scope(),
                previous: "0".repeat(64),
            }
        } else {
            ChunkSigning::Unsigned
        };
        let mut r = AwsChunkedReader::new(
            &body[..],
            signing,
            Some("x-amz-checksum-crc32".into()),
            Arc::default(),
        );
        let mut out = Vec::new();
        if r.read_to_end(&mut out).is_ok() {
            prop_assert!(out.len() <= body.len());
        }
    }
}
