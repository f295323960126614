//! Secrets from `.dev.vars` / `.dev.vars.<env>` and `HEARTH_SECRET_*` process variables.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{fixture, opts, toml_with};
use hearth_config::*;
use serde_json::json;

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn load_dev_vars(env: Option<&str>, process_env: &[(&str, &str)]) -> Loaded {
    let o = LoadOptions {
        env,
        process_env: map(process_env),
        ..Default::default()
    };
    load(&fixture("dev-vars"), &o).unwrap()
}

#[test]
fn dev_vars_beside_the_config_become_secrets() {
    let loaded = load_dev_vars(None, &[]);
    let c = &loaded.config;
    assert_eq!(
        c.secrets,
        map(&[
            ("API_TOKEN", "local-token"),
            ("COMMENTED", "value"),
            ("DB_PASSWORD", "p@ss#word"),
            ("SIGNING_KEY", "line1\nline2"),
        ])
    );
    assert_eq!(loaded.warnings, Vec::<String>::new());
}

#[test]
fn a_secret_overrides_the_var_of_the_same_name() {
    let c = load_dev_vars(None, &[]).config;
    assert_eq!(c.vars.get("API_TOKEN"), None);
    assert_eq!(c.secrets["API_TOKEN"], "local-token");
    assert_eq!(c.vars["API_HOST"], json!("api.example.com"));
}

#[test]
fn env_specific_file_replaces_dev_vars_entirely() {
    let c = load_dev_vars(Some("staging"), &[]).config;
    assert_eq!(c.secrets, map(&[("API_TOKEN", "staging-token")]));
    assert_eq!(c.vars["API_HOST"], json!("staging.example.com"));
}

#[test]
fn without_an_env_specific_file_dev_vars_is_used() {
    let c = load_dev_vars(Some("preview"), &[]).config;
    assert_eq!(c.secrets["API_TOKEN"], "local-token");
    assert_eq!(c.secrets.len(), 4);
}

#[test]
fn prefixed_process_variables_override_the_file_and_nothing_else_leaks() {
    let loaded = load_dev_vars(
        None,
        &[
            ("HEARTH_SECRET_API_TOKEN", "from-process"),
            ("HEARTH_SECRET_STRIPE_KEY", "sk_test"),
            ("API_TOKEN", "unprefixed-is-ignored"),
            ("PATH", "/usr/bin"),
            ("HOME", "/root"),
        ],
    );
    let c = loaded.config;
    assert_eq!(c.secrets["API_TOKEN"], "from-process");
    assert_eq!(c.secrets["STRIPE_KEY"], "sk_test");
    assert!(!c.secrets.contains_key("PATH"));
    assert!(!c.secrets.contains_key("HOME"));
    assert_eq!(c.secrets.len(), 5);
}

#[test]
fn process_secrets_work_without_any_dev_vars_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wrangler.toml");
    std::fs::write(&path, toml_with("vars = { MODE = \"dev\" }\n")).unwrap();
    let o = LoadOptions {
        process_env: map(&[
            ("HEARTH_SECRET_MODE", "secret-mode"),
            ("HEARTH_SECRET_", "nameless"),
        ]),
        ..Default::default()
    };
    let loaded = load(&path, &o).unwrap();
    assert_eq!(loaded.config.secrets, map(&[("MODE", "secret-mode")]));
    assert!(loaded.config.vars.is_empty());
    assert_eq!(
        loaded.warnings,
        vec![
            "wrangler.toml: process variable HEARTH_SECRET_ has no secret name after the prefix; ignored"
        ]
    );
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

#[test]
fn unreadable_lines_are_warnings_naming_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "wrangler.toml", &toml_with(""));
    write(dir.path(), ".dev.vars", "GOOD=1\nnot a pair\n");
    write(dir.path(), ".dev.vars.qa", "ALSO GOOD=1\n");
    let loaded = load(dir.path(), &opts(None)).unwrap();
    assert_eq!(loaded.config.secrets, map(&[("GOOD", "1")]));
    assert_eq!(
        loaded.warnings,
        vec![".dev.vars: line 2: expected KEY=value; line ignored"]
    );
    // No `qa` environment in the file: a warning, and the qa file is still the one read.
    let loaded = load(dir.path(), &opts(Some("qa"))).unwrap();
    assert_eq!(loaded.config.secrets, BTreeMap::new());
    assert_eq!(
        loaded.warnings,
        vec![
            "wrangler.toml: env.qa: no such environment, and the file defines none; using the top-level configuration",
            ".dev.vars.qa: line 1: invalid name \"ALSO GOOD\"; line ignored",
        ]
    );
}

#[test]
fn declared_required_secrets_filter_and_report_missing_ones() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "wrangler.toml",
        &toml_with("vars = { MODE = \"dev\" }\n[secrets]\nrequired = [\"API_KEY\", \"DB_URL\"]\n"),
    );
    write(dir.path(), ".dev.vars", "API_KEY=k\nMODE=secret\nSTRAY=x\n");
    let loaded = load(dir.path(), &opts(None)).unwrap();
    let c = &loaded.config;
    assert_eq!(
        c.secrets_required,
        Some(vec!["API_KEY".to_string(), "DB_URL".to_string()])
    );
    // STRAY is neither declared nor a var, so it is left out.
    assert_eq!(c.secrets, map(&[("API_KEY", "k"), ("MODE", "secret")]));
    assert_eq!(
        loaded.warnings,
        vec![
            "wrangler.toml: secrets.required: missing secrets: DB_URL; set them in .dev.vars or as HEARTH_SECRET_<NAME> process variables"
        ]
    );
}

#[test]
fn a_secret_named_like_a_binding_is_flagged() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "wrangler.toml",
        &toml_with("[[kv_namespaces]]\nbinding = \"CACHE\"\nid = \"x\"\n"),
    );
    write(dir.path(), ".dev.vars", "CACHE=oops\nmy-key=1\n");
    let loaded = load(dir.path(), &opts(None)).unwrap();
    assert_eq!(
        loaded.warnings,
        vec![
            ".dev.vars: CACHE: has the same name as the binding at kv_namespaces[0].binding",
            ".dev.vars: my-key: not a JavaScript identifier; reachable only as env[\"...\"]",
        ]
    );
}

#[test]
fn secret_names_in_required_join_the_binding_name_rules() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "wrangler.toml",
        &toml_with("[[kv_namespaces]]\nbinding = \"TOKEN\"\n[secrets]\nrequired = [\"TOKEN\"]\n"),
    );
    let err = load(dir.path(), &opts(None)).unwrap_err();
    assert_eq!(
        err.lines(),
        vec![
            "wrangler.toml: kv_namespaces[0].binding: binding name \"TOKEN\" is already used by secrets.required[0]"
        ]
    );
}

#[test]
fn parse_dev_vars_is_usable_on_its_own() {
    let (values, notes) = parse_dev_vars("export A=1\nB='two # not a comment'\n");
    assert_eq!(values, map(&[("A", "1"), ("B", "two # not a comment")]));
    assert!(notes.is_empty());
}

fn load_named(
    name: &str,
    process_env: &[(&str, &str)],
    served: &[&str],
) -> Result<Loaded, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wrangler.toml");
    std::fs::write(
        &path,
        format!(
            "name = \"{name}\"\nmain = \"src/index.js\"\ncompatibility_date = \"2025-01-01\"\n"
        ),
    )
    .unwrap();
    let o = LoadOptions {
        process_env: map(process_env),
        served_workers: served.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    };
    load(&path, &o)
}

#[test]
fn the_worker_scope_is_its_name_upper_cased_with_other_characters_as_underscores() {
    assert_eq!(secret_scope("api"), "API");
    assert_eq!(secret_scope("my-api.v2"), "MY_API_V2");
}

#[test]
fn a_scoped_secret_reaches_only_its_worker_and_wins_over_an_unscoped_one() {
    let env = [
        ("HEARTH_SECRET_MY_API__TOKEN", "for-api"),
        ("HEARTH_SECRET_BILLING__TOKEN", "for-billing"),
        ("HEARTH_SECRET_SHARED", "shared"),
        ("HEARTH_SECRET_MY_API__SHARED", "api-shared"),
    ];
    let api = load_named("my-api", &env, &[]).unwrap().config;
    assert_eq!(
        api.secrets,
        map(&[("SHARED", "api-shared"), ("TOKEN", "for-api")])
    );
    let billing = load_named("billing", &env, &[]).unwrap().config;
    assert_eq!(
        billing.secrets,
        map(&[("SHARED", "shared"), ("TOKEN", "for-billing")])
    );
}

#[test]
fn with_several_workers_served_an_unscoped_secret_is_refused() {
    let err = load_named(
        "my-api",
        &[("HEARTH_SECRET_TOKEN", "everyone")],
        &["my-api", "billing"],
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("process environment: HEARTH_SECRET_TOKEN: an unscoped secret would reach every worker of this process (my-api, billing); scope it to one as HEARTH_SECRET_<WORKER>__TOKEN, e.g. HEARTH_SECRET_MY_API__TOKEN"),
        "{err}"
    );
    let loaded = load_named(
        "my-api",
        &[
            ("HEARTH_SECRET_MY_API__TOKEN", "mine"),
            ("HEARTH_SECRET_BILLING__TOKEN", "theirs"),
            ("HEARTH_SECRET_TYPO__TOKEN", "nobody"),
        ],
        &["my-api", "billing"],
    )
    .unwrap();
    assert_eq!(loaded.config.secrets, map(&[("TOKEN", "mine")]));
    assert_eq!(
        loaded.warnings,
        vec![
            "process environment: HEARTH_SECRET_TYPO__TOKEN: scoped to a worker this process does not serve (serving: my-api, billing); ignored"
        ]
    );
}
