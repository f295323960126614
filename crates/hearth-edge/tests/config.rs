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
        std::sync::Arc::new(hearth_edge::ratelimit::WindowCounter::default()),
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
