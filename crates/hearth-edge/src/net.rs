//! The client's address: from the TCP peer, or, only when the peer is a
//! trusted proxy, from the PROXY protocol header or X-Forwarded-For /
//! Forwarded (read right to left, skipping trusted hops).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::config::ClientIpHeader;
use crate::rules::Cidr;

pub fn trusted(proxies: &[Cidr], ip: IpAddr) -> bool {
    proxies.iter().any(|c| c.contains(ip))
}

/// The client IP for a request that arrived from `peer` with `header`'s
/// values (every occurrence, in order).
pub fn client_ip<'a>(
    peer: IpAddr,
    proxies: &[Cidr],
    header: Option<ClientIpHeader>,
    values: impl Iterator<Item = &'a str>,
) -> IpAddr {
    let Some(kind) = header else { return peer };
    if !trusted(proxies, peer) {
        return peer;
    }
    let mut hops: Vec<IpAddr> = Vec::new();
    for v in values {
        for item in v.split(',') {
            let parsed = match kind {
                ClientIpHeader::XForwardedFor => parse_host(item.trim()),
                ClientIpHeader::Forwarded => item.split(';').find_map(|pair| {
                    let (k, v) = pair.split_once('=')?;
                    if k.trim().eq_ignore_ascii_case("for") {
                        parse_host(v.trim().trim_matches('"'))
                    } else {
                        None
                    }
                }),
            };
            match parsed {
                Some(ip) => hops.push(ip),
                // An unparsable hop ends what can be believed.
                None => hops.clear(),
            }
            if hops.len() > 64 {
                hops.remove(0);
            }
        }
    }
    let mut client = peer;
    for ip in hops.iter().rev() {
        client = *ip;
        if !trusted(proxies, *ip) {
            break;
        }
    }
    client
}

/// `1.2.3.4`, `1.2.3.4:80`, `[::1]`, `[::1]:80`, `::1`.
fn parse_host(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Some(sa.ip());
    }
    s.strip_prefix('[')?.split(']').next()?.parse().ok()
}

/// What a PROXY protocol header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyHeader {
    /// The header's length in bytes and the original source address
    /// (`None` for `UNKNOWN` / `LOCAL`: use the peer).
    Done {
        len: usize,
        source: Option<SocketAddr>,
    },
    /// More bytes are needed.
    Partial,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid PROXY protocol header: {0}")]
pub struct ProxyError(pub &'static str);

const V2_SIG: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// Longest header read (v1 lines are at most 107 bytes; v2 TLVs past this
/// are refused).
pub const MAX_PROXY_HEADER: usize = 16 + 512;

/// Parses a PROXY protocol v1 or v2 header at the start of `b`.
pub fn parse_proxy(b: &[u8]) -> Result<ProxyHeader, ProxyError> {
    let not_proxy = ProxyError("the connection does not start with a PROXY header");
    if b.len() < 16 {
        let n = b.len().min(6);
        let n2 = b.len().min(12);
        if b[..n] != b"PROXY "[..n] && b[..n2] != V2_SIG[..n2] {
            return Err(not_proxy);
        }
        return Ok(ProxyHeader::Partial);
    }
    if b.starts_with(V2_SIG) {
        return parse_v2(b);
    }
    if !b.starts_with(b"PROXY ") {
        return Err(not_proxy);
    }
    let Some(end) = b.windows(2).take(107).position(|w| w == b"\r\n") else {
        return if b.len() >= 107 {
            Err(ProxyError("v1 line longer than 107 bytes"))
        } else {
            Ok(ProxyHeader::Partial)
        };
    };
    let line = std::str::from_utf8(&b[6..end]).map_err(|_| ProxyError("v1 line is not text"))?;
    let mut f = line.split(' ');
    let proto = f.next().unwrap_or("");
    if proto == "UNKNOWN" {
        return Ok(ProxyHeader::Done {
            len: end + 2,
            source: None,
        });
    }
    let (Some(src), Some(_dst), Some(sport), Some(_dport), None) =
        (f.next(), f.next(), f.next(), f.next(), f.next())
    else {
        return Err(ProxyError(
            "v1 line needs protocol, two addresses and two ports",
        ));
    };
    let ip: IpAddr = src.parse().map_err(|_| ProxyError("v1 source address"))?;
    let port: u16 = sport.parse().map_err(|_| ProxyError("v1 source port"))?;
    match (proto, ip) {
        ("TCP4", IpAddr::V4(_)) | ("TCP6", IpAddr::V6(_)) => {}
        _ => {
            return Err(ProxyError(
                "v1 protocol must be TCP4, TCP6 or UNKNOWN matching the address",
            ));
        }
    }
    Ok(ProxyHeader::Done {
        len: end + 2,
        source: Some(SocketAddr::new(ip, port)),
    })
}

fn parse_v2(b: &[u8]) -> Result<ProxyHeader, ProxyError> {
    let ver_cmd = b[12];
    if ver_cmd >> 4 != 2 {
        return Err(ProxyError("v2 version must be 2"));
    }
    let len = usize::from(u16::from_be_bytes([b[14], b[15]]));
    if 16 + len > MAX_PROXY_HEADER {
        return Err(ProxyError("v2 header too long"));
    }
    if b.len() < 16 + len {
        return Ok(ProxyHeader::Partial);
    }
    let body = &b[16..16 + len];
    let total = 16 + len;
    match ver_cmd & 0x0f {
        0 => {
            return Ok(ProxyHeader::Done {
                len: total,
                source: None,
            });
        }
        1 => {}
        _ => return Err(ProxyError("v2 command must be LOCAL or PROXY")),
    }
    let source = match b[13] >> 4 {
        1 if body.len() >= 12 => {
            let ip = Ipv4Addr::new(body[0], body[1], body[2], body[3]);
            Some(SocketAddr::new(
                IpAddr::V4(ip),
                u16::from_be_bytes([body[8], body[9]]),
            ))
        }
        2 if body.len() >= 36 => {
            let mut o = [0u8; 16];
            o.copy_from_slice(&body[..16]);
            Some(SocketAddr::new(
                IpAddr::V6(Ipv6Addr::from(o)),
                u16::from_be_bytes([body[32], body[33]]),
            ))
        }
        1 | 2 => return Err(ProxyError("v2 address block too short")),
        _ => None,
    };
    Ok(ProxyHeader::Done { len: total, source })
}
