//! `request.cf`'s place fields from MaxMind-format databases that the test
//! writes itself.

mod common;

use std::net::{IpAddr, Ipv4Addr};

use common::mmdb::{Val, Writer};
use common::{get, start, start_with};
use hearth_http::GeoIp;
use serde_json::{Map, Value, json};

const NET: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 0);

fn city_db() -> Vec<u8> {
    let mut w = Writer::new();
    let berlin = Val::Map(vec![
        (
            "country",
            Val::Map(vec![
                ("iso_code", Val::Str("DE")),
                ("names", Val::Map(vec![("en", Val::Str("Germany"))])),
            ]),
        ),
        ("continent", Val::Map(vec![("code", Val::Str("EU"))])),
        (
            "city",
            Val::Map(vec![("names", Val::Map(vec![("en", Val::Str("Berlin"))]))]),
        ),
        (
            "subdivisions",
            Val::Arr(vec![Val::Map(vec![
                ("iso_code", Val::Str("BE")),
                ("names", Val::Map(vec![("en", Val::Str("Land Berlin"))])),
            ])]),
        ),
        ("postal", Val::Map(vec![("code", Val::Str("10115"))])),
        (
            "location",
            Val::Map(vec![
                ("latitude", Val::F64(52.52)),
                ("longitude", Val::F64(13.405)),
                ("time_zone", Val::Str("Europe/Berlin")),
            ]),
        ),
    ]);
    w.insert(NET, 24, &berlin);
    let us = Val::Map(vec![(
        "country",
        Val::Map(vec![("iso_code", Val::Str("US"))]),
    )]);
    w.insert(Ipv4Addr::new(192, 0, 2, 0), 24, &us);
    w.finish()
}

fn asn_db() -> Vec<u8> {
    let mut w = Writer::new();
    let asn = Val::Map(vec![
        ("autonomous_system_number", Val::U32(64500)),
        (
            "autonomous_system_organization",
            Val::Str("Example Networks"),
        ),
    ]);
    w.insert(NET, 24, &asn);
    w.finish()
}

fn geo(dir: &tempfile::TempDir) -> GeoIp {
    let city = dir.path().join("city.mmdb");
    let asn = dir.path().join("asn.mmdb");
    std::fs::write(&city, city_db()).unwrap();
    std::fs::write(&asn, asn_db()).unwrap();
    GeoIp::open(&[city, asn]).unwrap()
}

fn fill(g: &GeoIp, ip: &str) -> Value {
    let mut cf = Map::new();
    g.fill(ip.parse::<IpAddr>().unwrap(), &mut cf);
    Value::Object(cf)
}

#[test]
fn a_known_address_gets_cloudflare_shaped_place_fields_from_every_database() {
    let dir = tempfile::tempdir().unwrap();
    let g = geo(&dir);
    let expected = json!({
        "country": "DE", "isEUCountry": "1", "continent": "EU", "city": "Berlin",
        "region": "Land Berlin", "regionCode": "BE", "postalCode": "10115",
        "latitude": "52.52", "longitude": "13.405", "timezone": "Europe/Berlin",
        "asn": 64500, "asOrganization": "Example Networks",
    });
    assert_eq!(fill(&g, "203.0.113.7"), expected);
    // An IPv4 client seen on an IPv6 socket is the same client.
    assert_eq!(fill(&g, "::ffff:203.0.113.7"), expected);
    // Outside the EU: no isEUCountry; only what the record holds.
    assert_eq!(fill(&g, "192.0.2.1"), json!({ "country": "US" }));
}

#[test]
fn an_unknown_address_gets_nothing_made_up() {
    let dir = tempfile::tempdir().unwrap();
    let g = geo(&dir);
    assert_eq!(fill(&g, "198.51.100.1"), json!({}));
    // An IPv6 client against IPv4-only databases: absent, not an error.
    assert_eq!(fill(&g, "2001:db8::1"), json!({}));
    assert_eq!(fill(&g, "127.0.0.1"), json!({}));
}

#[test]
fn a_damaged_database_is_refused_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("broken.mmdb");
    std::fs::write(&bad, b"not a MaxMind database").unwrap();
    let err = GeoIp::open(&[&bad]).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("GeoIP database {}: ", bad.display())),
        "{err}"
    );
    let missing = dir.path().join("missing.mmdb");
    let err = GeoIp::open(&[&missing]).unwrap_err().to_string();
    assert!(err.contains("missing.mmdb"), "{err}");
}

const CF_WORKER: &str = r#"
export default {
  async fetch(req) { return Response.json(req.cf); }
};
"#;

async fn raw_get(addr: std::net::SocketAddr, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(std::time::Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .expect("the server closes an HTTP/1.0 connection after its answer")
        .unwrap();
    let text = String::from_utf8(out).unwrap();
    text.split_once("\r\n\r\n").unwrap().1.to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_fills_request_cf_from_the_connection_and_the_databases() {
    let dir = tempfile::tempdir().unwrap();
    // The test client is on loopback, so that is where the database places it.
    let mut w = Writer::new();
    let home = Val::Map(vec![
        ("country", Val::Map(vec![("iso_code", Val::Str("NL"))])),
        ("continent", Val::Map(vec![("code", Val::Str("EU"))])),
    ]);
    w.insert(Ipv4Addr::new(127, 0, 0, 0), 8, &home);
    let db = dir.path().join("loopback.mmdb");
    std::fs::write(&db, w.finish()).unwrap();
    let geo = std::sync::Arc::new(GeoIp::open(&[db]).unwrap());
    let s = start_with(&[("index.js", CF_WORKER)], |o| o.geoip = Some(geo)).await;

    let cf: Value = serde_json::from_str(&get(s.addr, "/").await.body).unwrap();
    assert_eq!(
        cf,
        json!({ "httpProtocol": "HTTP/1.1", "country": "NL", "isEUCountry": "1", "continent": "EU" })
    );
    // The protocol is the connection's own, not a constant.
    let body = raw_get(
        s.addr,
        "GET / HTTP/1.0\r\nHost: example.test\r\nAccept-Encoding: br\r\n\r\n",
    )
    .await;
    let cf: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(cf["httpProtocol"], "HTTP/1.0");
    assert_eq!(cf["clientAcceptEncoding"], "br");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_database_no_place_is_made_up() {
    let s = start(&[("index.js", CF_WORKER)]).await;
    let cf: Value = serde_json::from_str(&get(s.addr, "/").await.body).unwrap();
    assert_eq!(cf, json!({ "httpProtocol": "HTTP/1.1" }));
    s.stop().await;
}
