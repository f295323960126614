//! The Rules language: fields, operators, precedence, functions, lists,
//! and the errors for expressions Cloudflare would refuse.

use std::borrow::Cow;
use std::net::IpAddr;

use hearth_edge::rules::{Expr, RequestCtx};

fn ctx<'a>(
    path: &'a str,
    query: &'a str,
    headers: &[(&'a str, &'a str)],
    ip: &str,
) -> RequestCtx<'a> {
    let headers = headers
        .iter()
        .map(|(k, v)| (*k, Cow::Borrowed(*v)))
        .collect();
    RequestCtx::new(
        "GET",
        "www.example.com",
        path,
        query,
        headers,
        ip.parse::<IpAddr>().unwrap(),
        true,
        443,
    )
}

fn eval(expr: &str, c: &RequestCtx<'_>) -> bool {
    Expr::compile(expr)
        .unwrap_or_else(|e| panic!("{expr}: {e}"))
        .eval(c)
}

#[test]
fn documented_examples_evaluate_as_cloudflare_describes() {
    let c = ctx(
        "/admin/Login.PHP",
        "user=bob&tag=a&tag=b%20c",
        &[
            ("user-agent", "Mozilla/5.0"),
            ("cookie", "session=xyz; theme=dark"),
            ("x-tags", "One"),
            ("x-tags", "TWO"),
        ],
        "203.0.113.7",
    );
    let yes = [
        r#"http.request.uri.path contains "/admin" and not ip.src in {10.0.0.0/8}"#,
        r#"http.host eq "www.example.com" && ssl"#,
        r#"http.request.uri.path.extension eq "PHP""#,
        r#"lower(http.request.uri.path) matches "^/admin/login\\.php$""#,
        r#"lower(http.request.uri.path) matches r"^/admin/login\.php$""#,
        r#"http.request.uri.args["tag"][1] eq "b c""#,
        r#"any(http.request.uri.args["tag"][*] == "a")"#,
        r#"all(lower(http.request.headers["x-tags"][*]) in {"one" "two"})"#,
        r#"http.request.cookies["session"][0] eq "xyz""#,
        r#"ip.src in {198.51.100.0/24 203.0.113.0..203.0.113.10}"#,
        r#"ip.src ne 203.0.113.8"#,
        r#"cf.edge.server_port in {80 443 8000..8999}"#,
        r#"len(http.request.uri.path) > 10 and len(http.request.uri.args.names) == 2"#,
        r#"http.request.full_uri wildcard "https://*.EXAMPLE.com/admin/*""#,
        r#"not http.request.full_uri strict wildcard "https://*.EXAMPLE.com/*""#,
        r#"starts_with(http.user_agent, "Mozilla") xor ends_with(http.user_agent, "Mozilla")"#,
        r#"has_key(http.request.cookies, "theme") and has_value(http.request.cookies, "dark")"#,
        r#"concat("a", to_string(cf.edge.server_port)) eq "a443""#,
        r#"substring(http.request.uri.path, 1, 6) eq "admin""#,
        r#"url_decode("%2Fa%2520b", "r") eq "/a b""#,
        r#"(ssl and not ssl) or (ssl and not (ssl and not ssl))"#,
        r#"http.request.uri.query contains "bob" or http.request.method eq "POST" and ssl"#,
        r#"true and not false"#,
        r#"r"raw\d" eq r"raw\d" or ssl"#,
    ];
    for e in yes {
        assert!(eval(e, &c), "expected true: {e}");
    }
    let no = [
        r#"http.request.uri.path eq "/admin" "#,
        r#"ip.src in {203.0.113.0..203.0.113.6}"#,
        r#"http.request.method eq "POST" and ssl or http.host eq "x""#,
        r#"any(http.request.headers.names[*] eq "authorization")"#,
        r#"http.request.headers["missing"][0] ne """#,
    ];
    for e in no {
        assert!(!eval(e, &c), "expected false: {e}");
    }
    // `not` binds tighter than `and`, `and` tighter than `or`.
    assert!(eval(r#"not ssl or ssl and ssl"#, &c));
    assert!(!eval(r#"not (ssl or ssl) and ssl"#, &c));
}

#[test]
fn ipv4_mapped_ipv6_peers_match_ipv4_ranges() {
    let c = ctx("/", "", &[], "::ffff:10.1.2.3");
    assert!(eval("ip.src in {10.0.0.0/8}", &c));
}

#[test]
fn invalid_expressions_are_refused_with_where_and_why() {
    let cases = [
        (
            "http.request.uri.pat eq \"/\"",
            "at column 1: unknown field \"http.request.uri.pat\"",
        ),
        ("http.request.uri.path eq", "expected a quoted string"),
        (
            "ip.src contains \"1\"",
            "`contains` needs a String operand, not IP address",
        ),
        ("http.request.uri.path", "is of type String, not Boolean"),
        (
            "http.request.headers[\"a\"] eq \"x\"",
            "a value of type Array<String> cannot be compared",
        ),
        (
            "http.request.uri.args[\"a\"][*] eq \"x\"",
            "wrap a comparison over [*] in any(...) or all(...)",
        ),
        ("lower(1) eq \"1\"", "lower(): argument 1 is Integer"),
        ("nope(http.host)", "unknown function nope()"),
        (
            "ip.src in {10.0.0.0/33}",
            "the prefix length must be 0 to 32",
        ),
        ("http.host matches \"(\"", "invalid regular expression"),
        ("(ssl", "expected `)`"),
        ("ssl ssl", "unexpected \"ssl\""),
        (
            "ip.src in $blocked",
            "named lists ($name) are not supported",
        ),
    ];
    for (src, want) in cases {
        let err = Expr::compile(src).unwrap_err().to_string();
        assert!(err.contains(want), "{src}: got {err:?}, want {want:?}");
    }
    let deep = format!("{}ssl{}", "(".repeat(100), ")".repeat(100));
    assert!(
        Expr::compile(&deep)
            .unwrap_err()
            .to_string()
            .contains("nests deeper")
    );
}

/// `lower(x) contains "..."` reads ASCII text without copying it; the
/// answers must be those of lower-casing first, non-ASCII text included
/// (the Kelvin sign lower-cases to an ASCII `k`).
#[test]
fn lower_contains_matches_lower_casing_first() {
    let c = ctx(
        "/Shop/EvilBot",
        "",
        &[
            ("user-agent", "Mozilla/5.0 EVILBOT/2"),
            ("x-tags", "One"),
            ("x-tags", "TWO"),
            ("x-name", "\u{212a}ELVIN"),
        ],
        "203.0.113.7",
    );
    let cases = [
        (r#"lower(http.user_agent) contains "evilbot""#, true),
        (r#"lower(http.user_agent) contains "evilbot/3""#, false),
        (
            r#"lower(http.request.uri.path) contains "/shop/evil""#,
            true,
        ),
        (r#"lower(http.request.uri.path) contains "Shop""#, false),
        (r#"lower(http.request.uri.path) contains """#, true),
        (
            r#"any(lower(http.request.headers["x-tags"][*]) contains "two")"#,
            true,
        ),
        (
            r#"any(lower(http.request.headers["x-tags"][*]) contains "three")"#,
            false,
        ),
        (
            r#"any(lower(http.request.headers["x-name"][*]) contains "kelvin")"#,
            true,
        ),
    ];
    for (expr, want) in cases {
        assert_eq!(eval(expr, &c), want, "{expr}");
    }
}
