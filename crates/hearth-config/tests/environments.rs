//! `[env.NAME]` selection and wrangler's inheritance rules.

mod common;

use common::{fixture, load_text, opts};
use hearth_config::*;
use serde_json::json;

fn gateway(env: Option<&str>) -> Loaded {
    load(&fixture("hono-gateway/wrangler.toml"), &opts(env)).unwrap()
}

#[test]
fn name_gets_the_env_suffix_unless_the_env_sets_one() {
    assert_eq!(gateway(Some("staging")).config.name, "api-gateway-staging");
    assert_eq!(gateway(Some("production")).config.name, "api-gateway-prod");
    assert_eq!(
        gateway(Some("staging")).config.env.as_deref(),
        Some("staging")
    );
}

#[test]
fn inheritable_keys_come_from_the_top_level_unless_overridden() {
    let staging = gateway(Some("staging")).config;
    let top = gateway(None).config;
    // inherited
    assert_eq!(staging.main, top.main);
    assert_eq!(staging.compatibility_date.as_deref(), Some("2025-04-01"));
    assert_eq!(staging.compatibility_flags, top.compatibility_flags);
    assert_eq!(staging.limits.cpu_ms, Some(50_000));
    assert_eq!(staging.assets, top.assets);
    assert_eq!(staging.build, top.build);
    assert_eq!(staging.observability, top.observability);
    assert_eq!(staging.migrations, top.migrations);
    assert_eq!(staging.dev, top.dev);
    // overridden
    assert_eq!(staging.routes.len(), 1);
    assert_eq!(staging.routes[0].pattern, "staging-api.example.com/*");
    assert_eq!(staging.triggers.crons, vec!["0 * * * *"]);

    let prod = gateway(Some("production")).config;
    assert_eq!(prod.compatibility_date.as_deref(), Some("2025-05-15"));
    assert_eq!(prod.limits.cpu_ms, Some(30_000));
    assert_eq!(prod.routes, top.routes);
    assert_eq!(prod.triggers.crons, top.triggers.crons);
}

#[test]
fn bindings_are_not_inherited() {
    let staging = gateway(Some("staging")).config;
    assert_eq!(
        staging.vars.keys().collect::<Vec<_>>(),
        vec!["API_VERSION", "ENVIRONMENT"]
    );
    assert_eq!(staging.vars["ENVIRONMENT"], json!("staging"));
    assert_eq!(staging.kv_namespaces.len(), 1);
    assert_eq!(
        staging.kv_namespace("SESSIONS").unwrap().id.as_deref(),
        Some("5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d")
    );
    assert_eq!(staging.kv_namespace("CACHE"), None);
    assert_eq!(staging.d1_databases.len(), 1);
    assert_eq!(
        staging.d1_database("DB").unwrap().database_name.as_deref(),
        Some("gateway-db-staging")
    );
    // defaults apply inside environments too
    assert_eq!(
        staging.d1_database("DB").unwrap().migrations_dir,
        "migrations"
    );
    assert_eq!(staging.durable_objects.bindings.len(), 1);
    assert!(staging.r2_buckets.is_empty());
    assert_eq!(staging.queues, Queues::default());
    assert!(staging.workflows.is_empty());
    assert!(staging.vectorize.is_empty());
    assert_eq!(staging.ai, None);
    assert!(staging.analytics_engine_datasets.is_empty());
    assert!(staging.ratelimits.is_empty());
    assert!(staging.services.is_empty());
}

#[test]
fn a_binding_kind_missing_from_the_env_is_a_warning() {
    let warnings = gateway(Some("production")).warnings;
    let expected: Vec<String> = [
        "d1_databases",
        "r2_buckets",
        "durable_objects",
        "queues",
        "workflows",
        "vectorize",
        "ai",
        "analytics_engine_datasets",
        "ratelimits",
        "unsafe",
        "services",
    ]
    .iter()
    .map(|k| {
        format!(
            "wrangler.toml: env.production: \"{k}\" is set at the top level but not in this environment; it is not inherited, so this environment has none"
        )
    })
    .collect();
    assert_eq!(warnings, expected);
}

#[test]
fn unknown_env_is_an_error_listing_the_defined_ones() {
    let err = load(&fixture("hono-gateway/wrangler.toml"), &opts(Some("qa"))).unwrap_err();
    assert_eq!(
        err.lines(),
        vec![
            "wrangler.toml: env.qa: no such environment; defined environments: production, staging"
        ]
    );
    assert_eq!(
        err.to_string(),
        "wrangler.toml: env.qa: no such environment; defined environments: production, staging"
    );
}

#[test]
fn selecting_an_env_when_none_is_defined_warns_and_uses_the_top_level() {
    let (_d, r) = load_text(
        "wrangler.toml",
        "name = \"plain\"\nmain = \"a.js\"\ncompatibility_date = \"2025-01-01\"\n",
        Some("staging"),
    );
    let loaded = r.unwrap();
    assert_eq!(loaded.config.name, "plain");
    assert_eq!(loaded.config.env, None);
    assert_eq!(
        loaded.warnings,
        vec![
            "wrangler.toml: env.staging: no such environment, and the file defines none; using the top-level configuration"
        ]
    );
}

#[test]
fn errors_inside_an_env_carry_the_env_path() {
    let err = load(&fixture("broken/wrangler.toml"), &opts(Some("staging"))).unwrap_err();
    let lines = err.lines();
    assert!(
        lines.contains(
            &"wrangler.toml: env.staging.kv_namespaces[0].id: expected a string, found 12"
                .to_string()
        ),
        "{lines:#?}"
    );
    // The top level is still checked, and each problem is said once.
    assert!(lines.contains(&"wrangler.toml: d1_databases[1].binding: missing".to_string()));
    let mut unique = lines.clone();
    unique.dedup();
    assert_eq!(unique.len(), lines.len());
}

#[test]
fn env_errors_are_not_reported_when_another_env_is_selected() {
    // Like wrangler, only the selected environment is validated.
    let err = load(&fixture("broken/wrangler.toml"), &opts(None)).unwrap_err();
    assert!(!err.lines().iter().any(|l| l.contains("env.staging")));
}

#[test]
fn top_level_only_keys_in_an_env_are_ignored_with_a_warning() {
    let (_d, r) = load_text(
        "wrangler.toml",
        r#"
name = "w"
main = "a.js"
compatibility_date = "2025-01-01"
[dev]
port = 9000
[env.staging.dev]
port = 1234
[env.staging]
flavour = "odd"
"#,
        Some("staging"),
    );
    let loaded = r.unwrap();
    assert_eq!(loaded.config.dev.port, Some(9000));
    assert_eq!(
        loaded.warnings,
        vec![
            "wrangler.toml: env.staging.dev: only allowed at the top level; ignored",
            "wrangler.toml: env.staging.flavour: unknown field",
        ]
    );
}

#[test]
fn env_must_be_a_table_of_tables() {
    let (_d, r) = load_text(
        "wrangler.jsonc",
        r#"{ "name": "w", "compatibility_date": "2025-01-01", "env": { "staging": 3 } }"#,
        None,
    );
    assert_eq!(
        r.unwrap_err().lines(),
        vec!["wrangler.jsonc: env.staging: expected an object, found 3"]
    );
    let (_d, r) = load_text(
        "wrangler.toml",
        "name = \"w\"\ncompatibility_date = \"2025-01-01\"\nenv = \"prod\"\n",
        None,
    );
    assert_eq!(
        r.unwrap_err().lines(),
        vec!["wrangler.toml: env: expected a table, found \"prod\""]
    );
}

#[test]
fn env_name_override_is_validated() {
    let (_d, r) = load_text(
        "wrangler.toml",
        "name = \"w\"\ncompatibility_date = \"2025-01-01\"\n[env.prod]\nname = \"Prod Worker\"\n",
        Some("prod"),
    );
    assert_eq!(
        r.unwrap_err().lines(),
        vec![
            "wrangler.toml: env.prod.name: expected lowercase letters, digits, \"-\" and \"_\", found \"Prod Worker\""
        ]
    );
}

#[test]
fn name_may_come_from_the_env_alone() {
    let (_d, r) = load_text(
        "wrangler.toml",
        "main = \"a.js\"\ncompatibility_date = \"2025-01-01\"\n[env.prod]\nname = \"prod-worker\"\n",
        Some("prod"),
    );
    assert_eq!(r.unwrap().config.name, "prod-worker");
    let (_d, r) = load_text(
        "wrangler.toml",
        "main = \"a.js\"\ncompatibility_date = \"2025-01-01\"\n[env.prod]\nname = \"prod-worker\"\n",
        None,
    );
    assert_eq!(r.unwrap_err().lines(), vec!["wrangler.toml: name: missing"]);
}

#[test]
fn whole_config_rules_apply_to_the_loaded_scope() {
    // The env sets the date, so its absence at the top level is not worth a warning.
    let (_d, r) = load_text(
        "wrangler.toml",
        "name = \"w\"\n[env.prod]\ncompatibility_date = \"2025-01-01\"\n",
        Some("prod"),
    );
    let loaded = r.unwrap();
    assert_eq!(
        loaded.config.compatibility_date.as_deref(),
        Some("2025-01-01")
    );
    assert_eq!(loaded.warnings, Vec::<String>::new());
    // An unknown env falls back to the top level, whose name is then required.
    let (_d, r) = load_text(
        "wrangler.toml",
        "compatibility_date = \"2025-01-01\"\n",
        Some("prod"),
    );
    assert_eq!(r.unwrap_err().lines(), vec!["wrangler.toml: name: missing"]);
}
