//! Finding the config file from a directory, in wrangler's order of preference.

mod common;

use common::{fixture, opts};
use hearth_config::*;

#[test]
fn json_wins_over_toml_and_the_loser_is_named() {
    let loaded = load(&fixture("discovery"), &opts(None)).unwrap();
    assert_eq!(loaded.config.name, "from-json");
    assert_eq!(loaded.path, fixture("discovery/wrangler.json"));
    assert_eq!(
        loaded.warnings,
        vec!["wrangler.toml: ignored, wrangler.json takes precedence"]
    );
}

#[test]
fn jsonc_wins_over_toml() {
    let loaded = load(&fixture("discovery-jsonc"), &opts(None)).unwrap();
    assert_eq!(loaded.config.name, "from-jsonc");
    assert_eq!(
        loaded.warnings,
        vec!["wrangler.toml: ignored, wrangler.jsonc takes precedence"]
    );
}

#[test]
fn json_wins_over_jsonc() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("wrangler.jsonc"),
        r#"{"name": "b", "compatibility_date": "2025-01-01"}"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("wrangler.json"),
        r#"{"name": "a", "compatibility_date": "2025-01-01"}"#,
    )
    .unwrap();
    assert_eq!(
        find_config_file(dir.path()),
        Some(dir.path().join("wrangler.json"))
    );
    assert_eq!(load(dir.path(), &opts(None)).unwrap().config.name, "a");
}

#[test]
fn a_single_toml_is_found_without_warnings() {
    let loaded = load(&fixture("hono-gateway"), &opts(None)).unwrap();
    assert_eq!(loaded.path, fixture("hono-gateway/wrangler.toml"));
    assert!(loaded.warnings.is_empty());
}

#[test]
fn a_directory_without_a_config_is_an_error() {
    let dir = fixture("empty-dir");
    assert_eq!(find_config_file(&dir), None);
    let err = load(&dir, &opts(None)).unwrap_err();
    assert_eq!(
        err.lines(),
        vec![format!(
            "{}: no wrangler.json, wrangler.jsonc or wrangler.toml in this directory",
            dir.display()
        )]
    );
}

#[test]
fn an_explicit_file_is_used_even_when_a_preferred_one_sits_beside_it() {
    let loaded = load(&fixture("discovery/wrangler.toml"), &opts(None)).unwrap();
    assert_eq!(loaded.config.name, "from-toml");
    assert!(loaded.warnings.is_empty());
}

/// Cloudflare's Vite plugin leaves `.wrangler/deploy/config.json` beside the
/// user's config, pointing at the config it generated; the directory loads
/// that one, and the fields the plugin writes draw no warnings.
#[test]
fn directory_follows_the_deploy_redirect_of_a_vite_build() {
    let dir = fixture("vite-redirect");
    let loaded = load(&dir, &opts(None)).unwrap();
    assert_eq!(loaded.warnings, Vec::<String>::new());
    let generated = std::fs::canonicalize(dir.join("dist/my_app/wrangler.json")).unwrap();
    assert_eq!(loaded.config.path, generated);
    assert_eq!(loaded.path, generated);
    assert_eq!(loaded.config.main.as_deref(), Some("index.js"));
    assert_eq!(loaded.config.vars["BUILT"], serde_json::json!("yes"));
    assert_eq!(
        loaded.config.assets_dir().unwrap(),
        generated.parent().unwrap().join("../client")
    );
    assert!(
        loaded
            .redirected_from
            .as_deref()
            .unwrap()
            .ends_with(".wrangler/deploy/config.json")
    );
    assert_eq!(
        std::fs::canonicalize(loaded.user_dir()).unwrap(),
        std::fs::canonicalize(&dir).unwrap()
    );

    // Named explicitly, the user's own file is loaded as written.
    let own = load(&dir.join("wrangler.jsonc"), &opts(None)).unwrap();
    assert_eq!(own.config.main.as_deref(), Some("./src/index.ts"));
    assert_eq!(own.redirected_from, None);
}

#[test]
fn a_deploy_redirect_to_a_missing_config_names_both_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join(".wrangler/deploy")).unwrap();
    std::fs::write(
        dir.path().join(".wrangler/deploy/config.json"),
        r#"{"configPath": "../../dist/gone/wrangler.json"}"#,
    )
    .unwrap();
    let err = load(dir.path(), &opts(None)).unwrap_err().to_string();
    assert!(
        err.contains(".wrangler/deploy/config.json: configPath: points to"),
        "{err}"
    );
    assert!(
        err.contains("dist/gone/wrangler.json, which does not exist"),
        "{err}"
    );

    std::fs::write(dir.path().join(".wrangler/deploy/config.json"), "{}").unwrap();
    let err = load(dir.path(), &opts(None)).unwrap_err().to_string();
    assert!(err.contains("configPath: missing"), "{err}");
}
