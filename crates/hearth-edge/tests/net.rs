//! Client addresses: trusted proxies only, X-Forwarded-For and Forwarded
//! read right to left, PROXY protocol v1 and v2.

use std::net::{IpAddr, SocketAddr};

use hearth_edge::config::ClientIpHeader;
use hearth_edge::net::{ProxyHeader, client_ip, parse_proxy};
use hearth_edge::rules::Cidr;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn forwarded_headers_count_only_from_trusted_proxies() {
    let proxies = [
        Cidr::parse("10.0.0.0/8").unwrap(),
        Cidr::parse("fd00::/8").unwrap(),
    ];
    let xff = Some(ClientIpHeader::XForwardedFor);
    // An untrusted peer's header is ignored whatever it says.
    assert_eq!(
        client_ip(ip("198.51.100.1"), &proxies, xff, ["1.1.1.1"].into_iter()),
        ip("198.51.100.1")
    );
    // From a trusted proxy: the rightmost address that is not a proxy.
    assert_eq!(
        client_ip(
            ip("10.0.0.1"),
            &proxies,
            xff,
            ["6.6.6.6, 203.0.113.5", "10.9.9.9"].into_iter()
        ),
        ip("203.0.113.5")
    );
    // Every hop trusted: the leftmost.
    assert_eq!(
        client_ip(
            ip("10.0.0.1"),
            &proxies,
            xff,
            ["10.1.1.1, 10.2.2.2"].into_iter()
        ),
        ip("10.1.1.1")
    );
    // Garbage ends what can be believed: hops to its left are dropped.
    assert_eq!(
        client_ip(
            ip("10.0.0.1"),
            &proxies,
            xff,
            ["6.6.6.6, not-an-ip, 10.3.3.3"].into_iter()
        ),
        ip("10.3.3.3")
    );
    // No header: the peer.
    assert_eq!(
        client_ip(ip("10.0.0.1"), &proxies, xff, std::iter::empty()),
        ip("10.0.0.1")
    );
    // Forwarded (RFC 7239), quoted IPv6 with a port.
    let fwd = Some(ClientIpHeader::Forwarded);
    assert_eq!(
        client_ip(
            ip("fd00::1"),
            &proxies,
            fwd,
            [r#"for="[2001:db8::7]:4711";proto=https, for=10.0.0.9"#].into_iter()
        ),
        ip("2001:db8::7")
    );
    // Header reading switched off: the peer even when trusted.
    assert_eq!(
        client_ip(ip("10.0.0.1"), &proxies, None, ["1.1.1.1"].into_iter()),
        ip("10.0.0.1")
    );
}

#[test]
fn proxy_protocol_v1_and_v2_headers_are_parsed_and_bounded() {
    let v1 = b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\nGET / HTTP/1.1\r\n";
    assert_eq!(
        parse_proxy(v1),
        Ok(ProxyHeader::Done {
            len: 45,
            source: Some("192.0.2.1:56324".parse::<SocketAddr>().unwrap())
        })
    );
    assert_eq!(
        parse_proxy(b"PROXY TCP4 192.0.2.1"),
        Ok(ProxyHeader::Partial)
    );
    assert_eq!(
        parse_proxy(b"PROXY UNKNOWN\r\n\r\n"),
        Ok(ProxyHeader::Done {
            len: 15,
            source: None
        })
    );
    assert!(
        parse_proxy(b"PROXY TCP4 ::1 ::1 1 2\r\n....").is_err(),
        "a v6 address under TCP4"
    );
    assert!(parse_proxy(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").is_err());
    assert!(parse_proxy(&[b'P'; 200]).is_err());

    let mut v2 = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    v2.extend([0x21, 0x11, 0, 12]);
    v2.extend([203, 0, 113, 9, 10, 0, 0, 1]);
    v2.extend(5555u16.to_be_bytes());
    v2.extend(443u16.to_be_bytes());
    assert_eq!(
        parse_proxy(&v2),
        Ok(ProxyHeader::Done {
            len: 28,
            source: Some("203.0.113.9:5555".parse().unwrap())
        })
    );
    assert_eq!(parse_proxy(&v2[..20]), Ok(ProxyHeader::Partial));
    let mut local = v2[..12].to_vec();
    local.extend([0x20, 0x00, 0, 0]);
    assert_eq!(
        parse_proxy(&local),
        Ok(ProxyHeader::Done {
            len: 16,
            source: None
        })
    );
    let mut huge = v2[..12].to_vec();
    huge.extend([0x21, 0x11, 0xff, 0xff]);
    assert!(parse_proxy(&huge).is_err(), "a length past the cap");
}
