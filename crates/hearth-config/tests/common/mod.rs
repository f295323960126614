#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hearth_config::{ConfigError, LoadOptions, Loaded, load};

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub fn opts(env: Option<&str>) -> LoadOptions<'_> {
    LoadOptions {
        env,
        process_env: BTreeMap::new(),
        ..Default::default()
    }
}

/// Writes `text` as `file_name` into a fresh directory and loads it.
pub fn load_text(
    file_name: &str,
    text: &str,
    env: Option<&str>,
) -> (tempfile::TempDir, Result<Loaded, ConfigError>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(file_name);
    std::fs::write(&path, text).unwrap();
    let result = load(&path, &opts(env));
    (dir, result)
}

/// A minimal valid top level followed by `rest`.
pub fn toml_with(rest: &str) -> String {
    format!("name = \"w\"\nmain = \"src/index.js\"\ncompatibility_date = \"2025-01-01\"\n{rest}")
}

pub fn ok_toml(rest: &str) -> Loaded {
    let (_dir, r) = load_text("wrangler.toml", &toml_with(rest), None);
    match r {
        Ok(l) => l,
        Err(e) => panic!("expected a valid config, got:\n{e}"),
    }
}

/// The error lines of loading `rest` after a valid top level.
pub fn errors_toml(rest: &str) -> Vec<String> {
    let (_dir, r) = load_text("wrangler.toml", &toml_with(rest), None);
    match r {
        Ok(l) => panic!("expected errors, got a config: {:?}", l.config.name),
        Err(e) => e.lines(),
    }
}

pub fn errors_json(text: &str) -> Vec<String> {
    let (_dir, r) = load_text("wrangler.jsonc", text, None);
    match r {
        Ok(_) => panic!("expected errors"),
        Err(e) => e.lines(),
    }
}
