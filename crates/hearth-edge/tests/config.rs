//! The README's zone file loads as written, with its certificate and key
//! files in place.

use std::path::Path;

use hearth_edge::Edge;

fn readme_block() -> String {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
            .unwrap();
    let at = readme
        .find("A complete zone file for a public deployment")
        .expect("README section");
    let rest = &readme[at..];
    let start = rest.find("```toml\n").unwrap() + "```toml\n".len();
    let end = rest[start..].find("```").unwrap();
    rest[start..start + end].to_string()
}

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

#[test]
fn readme_zone_file_loads() {
    let dir = tempfile::tempdir().unwrap();
    let zone = dir.path().join("hearth.toml");
    std::fs::write(&zone, readme_block()).unwrap();
    for (site, names) in [
        (
            "example.com",
            vec!["example.com".to_string(), "www.example.com".to_string()],
        ),
        ("default", vec!["localhost".to_string()]),
    ] {
        let c = rcgen::generate_simple_self_signed(names).unwrap();
        write(
            dir.path(),
            &format!("certs/{site}/fullchain.pem"),
            &c.cert.pem(),
        );
        write(
            dir.path(),
            &format!("certs/{site}/privkey.pem"),
            &c.signing_key.serialize_pem(),
        );
    }
    write(
        dir.path(),
        "keys/auth-jwks.json",
        r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"k1","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#,
    );
    let config = hearth_edge::config::load(&zone).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.listeners.len(), 2);
    assert_eq!(config.rules.len(), 3);
    assert_eq!(config.rate_limits.len(), 3);
    assert_eq!(config.jwt.len(), 1);
    assert_eq!(config.managed.as_ref().unwrap().rules.exclusions.len(), 1);
    let edge = Edge::from_config(
        &zone,
        config,
        Some(&dir.path().join("data")),
        hearth_core::SystemClock::shared(),
        hearth_edge::ratelimit::memory(hearth_core::SystemClock::shared()),
    );
    assert!(edge.is_ok(), "{:?}", edge.err());
}

#[test]
fn a_missing_certificate_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let zone = dir.path().join("hearth.toml");
    std::fs::write(&zone, "[[listeners]]\naddress = \"127.0.0.1:0\"\ntls = true\n\n[[tls.certificates]]\nnames = [\"a.test\"]\ncert = \"a.crt\"\nkey = \"a.key\"\n").unwrap();
    let err = hearth_edge::config::load(&zone).unwrap_err().to_string();
    let want = format!(
        "{}: tls.certificates[0].cert: {} does not exist or is not a file",
        zone.display(),
        dir.path().join("a.crt").display()
    );
    assert!(err.contains(&want), "{err}");
    std::fs::write(&zone, "listeners = 3\nunknown = 1\n").unwrap();
    let err = hearth_edge::config::load(&zone).unwrap_err().to_string();
    assert!(
        err.contains("hearth.toml: unknown: unknown field; expected one of:"),
        "{err}"
    );
    assert!(
        err.contains(
            "hearth.toml: listeners: expected an array of tables ([[listeners]]), found integer"
        ),
        "{err}"
    );
}

fn scan(
    rules: &hearth_edge::managed::ManagedRules,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Option<String> {
    let headers = headers
        .iter()
        .map(|(k, v)| (*k, std::borrow::Cow::Borrowed(*v)))
        .collect();
    let ctx = hearth_edge::rules::RequestCtx::new(
        method,
        "example.com",
        path,
        "",
        headers,
        std::net::IpAddr::from([198, 51, 100, 7]),
        false,
        80,
    );
    rules
        .scan(&ctx, Some(body))
        .map(|f| format!("{}: {}", f.rule, f.reason))
}

#[test]
fn managed_policy_lists_replace_the_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let zone = dir.path().join("hearth.toml");
    std::fs::write(
        &zone,
        r#"
[managed_rules.policy]
allowed_methods = ["GET", "PROPFIND"]
allowed_content_types = ["application/json", "+xml", "image/*"]
allowed_charsets = ["utf-8"]
restricted_extensions = ["bak"]
restricted_headers = ["x-debug"]
"#,
    )
    .unwrap();
    let config = hearth_edge::config::load(&zone).unwrap_or_else(|e| panic!("{e}"));
    let rules = &config.managed.as_ref().unwrap().rules;
    let json = [("content-type", "application/json")];
    assert_eq!(scan(rules, "PROPFIND", "/dav", &[], b""), None);
    assert_eq!(scan(rules, "GET", "/notes.old", &[], b""), None);
    assert_eq!(
        scan(rules, "POST", "/", &json, b"{}").as_deref(),
        Some("method: a request method the zone does not allow")
    );
    assert_eq!(
        scan(rules, "GET", "/site.bak", &[], b"").as_deref(),
        Some("policy: a file extension the zone does not serve")
    );
    assert_eq!(
        scan(rules, "GET", "/", &[("x-debug", "1")], b"").as_deref(),
        Some("policy: a header the zone does not accept")
    );
    for ok in ["application/json", "application/atom+xml", "image/png"] {
        assert_eq!(
            scan(rules, "GET", "/", &[("content-type", ok)], b""),
            None,
            "{ok}"
        );
    }
    for (ctype, why) in [
        ("text/plain", "a content type the zone does not accept"),
        (
            "application/json; charset=iso-8859-1",
            "a charset the zone does not accept",
        ),
        (
            "application/json; charset=utf-8; charset=utf-7",
            "more than one charset in Content-Type",
        ),
        ("application/json; junk", "a malformed Content-Type"),
    ] {
        assert_eq!(
            scan(rules, "GET", "/", &[("content-type", ctype)], b"").as_deref(),
            Some(format!("policy: {why}").as_str()),
            "{ctype}"
        );
    }
}

#[test]
fn bad_policy_entries_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let zone = dir.path().join("hearth.toml");
    std::fs::write(
        &zone,
        "[managed_rules.policy]\nallowed_methods = [\"get\"]\nallowed_content_types = [\"json\"]\nrestricted_extensions = [\".bak\"]\nallowed_charset = [\"utf-8\"]\n",
    )
    .unwrap();
    let err = hearth_edge::config::load(&zone).unwrap_err().to_string();
    for want in [
        "managed_rules.policy.allowed_methods[0]: \"get\": expected an upper-case method name",
        "managed_rules.policy.allowed_content_types[0]: \"json\": expected a media type",
        "managed_rules.policy.restricted_extensions[0]: \".bak\": expected a file extension without its dot",
        "managed_rules.policy.allowed_charset",
    ] {
        assert!(err.contains(want), "{want:?} not in {err}");
    }
}
