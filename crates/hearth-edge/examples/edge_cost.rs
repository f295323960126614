//! Runs the edge's checks on one request shape N times, for counting the
//! instructions a request costs (bench/edge-instructions.sh runs this
//! under callgrind twice and divides the difference).
//!
//!   edge_cost ZONE.toml SCENARIO N
//!
//! Scenarios: `browser` (the head of bench/edge/browser.lua), `json` (a
//! JSON API call with a 1 KiB body), `attack` (a query-string SQL
//! injection, blocked).

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::process::ExitCode;

use hearth_edge::{Edge, EdgeRequest, Verdict};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(zone), Some(scenario), Some(n)) = (
        args.get(1),
        args.get(2),
        args.get(3).and_then(|n| n.parse::<usize>().ok()),
    ) else {
        eprintln!("usage: edge_cost ZONE.toml browser|json|attack N");
        return ExitCode::from(2);
    };
    let edge = match Edge::load(Path::new(zone), None, hearth_core::SystemClock::shared()) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("{zone}: {e}");
            return ExitCode::from(1);
        }
    };
    let browser = [
        (
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
        ),
        (
            "accept",
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        ),
        ("accept-language", "en-US,en;q=0.5"),
        ("accept-encoding", "gzip, deflate, br"),
        ("referer", "https://example.com/products/shoes"),
        ("cookie", "session=ab12cd34ef56; theme=dark; cart_id=1004"),
    ];
    let items: Vec<String> = (0..12)
        .map(|i| format!(r#"{{"id":{i},"name":"item {i}","tags":["bench","json"],"note":"O'Brien's order, 2 of 3"}}"#))
        .collect();
    let json_body = format!(r#"{{"items":[{}]}}"#, items.join(","));
    type Shape<'a> = (
        &'a str,
        &'a str,
        &'a str,
        Vec<(&'a str, &'a str)>,
        Option<&'a [u8]>,
    );
    let (method, path, query, extra, body): Shape<'_> = match scenario.as_str() {
        "browser" => ("GET", "/", "q=shoes&page=2", vec![], None),
        "json" => (
            "POST",
            "/api/orders",
            "",
            vec![("content-type", "application/json")],
            Some(json_body.as_bytes()),
        ),
        "attack" => ("GET", "/", "id=1%27%20or%201%3D1--", vec![], None),
        other => {
            eprintln!("unknown scenario {other:?}");
            return ExitCode::from(2);
        }
    };
    let mut passed = 0usize;
    for _ in 0..n {
        let headers: Vec<(&str, Cow<'_, str>)> = browser
            .iter()
            .chain(extra.iter())
            .map(|(k, v)| (*k, Cow::Borrowed(*v)))
            .collect();
        let req = EdgeRequest {
            method,
            host: "example.com",
            path,
            query,
            headers,
            peer: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7)),
            tls: false,
            port: 80,
            version: "HTTP/1.1",
            ray: "0000000000000000",
        };
        if let Verdict::Pass(pass) = edge.check(&req)
            && body.is_none_or(|b| edge.check_body(&req, &pass, b).is_none())
        {
            passed += 1;
        }
    }
    println!("{passed} of {n} passed");
    ExitCode::SUCCESS
}
