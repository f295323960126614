//! Real-world shaped configs load into the expected typed values, in TOML and JSONC alike.

mod common;

use std::collections::BTreeMap;

use common::{fixture, opts};
use hearth_config::*;
use serde_json::json;

fn gateway(env: Option<&str>) -> Loaded {
    load(&fixture("hono-gateway/wrangler.toml"), &opts(env)).unwrap()
}

#[test]
fn toml_gateway_top_level() {
    let loaded = gateway(None);
    assert_eq!(loaded.warnings, Vec::<String>::new());
    let c = &loaded.config;
    assert_eq!(c.name, "api-gateway");
    assert_eq!(c.main.as_deref(), Some("src/index.ts"));
    assert_eq!(c.compatibility_date.as_deref(), Some("2025-04-01"));
    assert_eq!(c.compatibility_flags, vec!["nodejs_compat"]);
    assert_eq!(c.workers_dev, Some(true));
    assert_eq!(c.env, None);
    assert_eq!(c.defined_environments, vec!["production", "staging"]);

    // vars: strings and JSON values side by side.
    assert_eq!(c.vars["ENVIRONMENT"], json!("development"));
    assert_eq!(c.vars["MAX_UPLOAD_MB"], json!(25));
    assert_eq!(
        c.vars["FEATURE_FLAGS"],
        json!({"search": true, "uploads": false})
    );
    assert_eq!(
        c.vars["ALLOWED_ORIGINS"],
        json!(["http://localhost:5173", "https://app.example.com"])
    );

    assert_eq!(
        c.kv_namespaces[0],
        KvNamespaceBinding {
            binding: "SESSIONS".into(),
            id: Some("0f2ac74b498b48028cb68387c421e279".into()),
            preview_id: Some("9e0c1e8d8b1a4d5f9c2b3a4d5e6f7a8b".into()),
        }
    );
    assert_eq!(
        c.kv_namespace("CACHE").map(|k| k.local_id()),
        Some("c1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6")
    );

    let db = c.d1_database("DB").unwrap();
    assert_eq!(db.migrations_dir, "db/migrations");
    assert_eq!(db.migrations_table, "d1_migrations");
    let audit = c.d1_database("gateway-audit").unwrap();
    assert_eq!(audit.binding, "AUDIT_DB");
    assert_eq!(audit.migrations_dir, "migrations");
    assert_eq!(audit.local_id(), "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d");

    assert_eq!(
        c.r2_bucket("EU_ARCHIVE").unwrap().jurisdiction.as_deref(),
        Some("eu")
    );
    assert_eq!(c.r2_bucket("gateway-uploads").unwrap().binding, "UPLOADS");

    assert_eq!(c.durable_objects.bindings.len(), 3);
    assert_eq!(
        c.durable_object("BILLING").unwrap().script_name.as_deref(),
        Some("billing-worker")
    );
    assert_eq!(c.migrations.len(), 3);
    assert_eq!(
        c.migrations[2].renamed_classes,
        vec![RenamedClass {
            from: "Lobby".into(),
            to: "WaitingRoom".into()
        }]
    );
    let classes: BTreeMap<_, _> = c.durable_object_classes();
    assert_eq!(
        classes,
        BTreeMap::from([
            ("ChatRoom".to_string(), DurableObjectStorage::Sqlite),
            ("RateCounter".to_string(), DurableObjectStorage::KeyValue),
            ("WaitingRoom".to_string(), DurableObjectStorage::Sqlite),
        ])
    );

    assert_eq!(
        c.queue_producer("WEBHOOK_QUEUE").unwrap().delivery_delay,
        Some(30)
    );
    assert_eq!(
        c.queue_producer("EMAIL_QUEUE").unwrap().delivery_delay,
        None
    );
    assert_eq!(
        c.queue_consumer("gateway-emails").unwrap(),
        &QueueConsumer {
            queue: "gateway-emails".into(),
            consumer_type: QueueConsumerType::Worker,
            max_batch_size: 50,
            max_batch_timeout: 10,
            max_retries: 5,
            dead_letter_queue: Some("gateway-emails-dlq".into()),
            max_concurrency: Some(4),
            retry_delay: Some(120),
            visibility_timeout_ms: None,
        }
    );
    // Unset consumer fields take Cloudflare's defaults.
    let pull = c.queue_consumer("gateway-webhooks").unwrap();
    assert_eq!(pull.consumer_type, QueueConsumerType::HttpPull);
    assert_eq!(
        (
            pull.max_batch_size,
            pull.max_batch_timeout,
            pull.max_retries
        ),
        (10, 5, 3)
    );
    assert_eq!(pull.visibility_timeout_ms, Some(60_000));

    assert_eq!(
        c.workflow("ONBOARDING").unwrap().class_name,
        "OnboardingWorkflow"
    );
    assert_eq!(c.workflow("onboarding").unwrap().binding, "ONBOARDING");
    assert_eq!(c.triggers.crons, vec!["*/15 * * * *", "0 3 * * mon"]);
    assert_eq!(
        c.vectorize_index("DOCS_INDEX").unwrap().index_name,
        "gateway-docs"
    );
    assert_eq!(
        c.ai,
        Some(AiBinding {
            binding: "AI".into()
        })
    );
    assert_eq!(
        c.analytics_engine_datasets[0].dataset_name(),
        "gateway_metrics"
    );

    // `ratelimits` and the older `unsafe.bindings` spelling both land in one list.
    assert_eq!(
        c.ratelimits,
        vec![
            RateLimitBinding {
                name: "TENANT_LIMITER".into(),
                namespace_id: "1001".into(),
                simple: RateLimitSimple {
                    limit: 100,
                    period: 60
                },
            },
            RateLimitBinding {
                name: "LOGIN_LIMITER".into(),
                namespace_id: "1002".into(),
                simple: RateLimitSimple {
                    limit: 5,
                    period: 10
                },
            },
        ]
    );
    assert_eq!(
        c.service("AUTH").unwrap().entrypoint.as_deref(),
        Some("AuthService")
    );
    assert_eq!(c.limits.cpu_ms, Some(50_000));

    assert_eq!(
        c.routes,
        vec![
            Route {
                pattern: "api.example.com/*".into(),
                zone_name: None,
                zone_id: None,
                custom_domain: false
            },
            Route {
                pattern: "example.com/api/*".into(),
                zone_name: Some("example.com".into()),
                zone_id: None,
                custom_domain: false
            },
            Route {
                pattern: "gateway.example.com".into(),
                zone_name: None,
                zone_id: None,
                custom_domain: true
            },
        ]
    );
    let assets = c.assets.as_ref().unwrap();
    assert_eq!(assets.binding.as_deref(), Some("ASSETS"));
    assert_eq!(assets.html_handling, HtmlHandling::DropTrailingSlash);
    assert_eq!(
        assets.not_found_handling,
        NotFoundHandling::SinglePageApplication
    );
    assert_eq!(
        assets.run_worker_first,
        RunWorkerFirst::Patterns(vec!["/api/*".into(), "!/api/docs/*".into()])
    );
    assert_eq!(c.build.command.as_deref(), Some("npm run build"));
    assert_eq!(c.build.watch_dir, vec!["src"]);
    assert_eq!(c.dev.ip.as_deref(), Some("0.0.0.0"));
    assert_eq!(c.dev.port, Some(8787));
    let obs = c.observability.as_ref().unwrap();
    assert_eq!(
        (obs.enabled, obs.head_sampling_rate),
        (Some(true), Some(0.5))
    );
    assert_eq!(obs.logs, Some(json!({"invocation_logs": true})));
}

#[test]
fn jsonc_gateway_equals_toml_gateway() {
    for env in [None, Some("staging"), Some("production")] {
        let toml = gateway(env);
        let jsonc = load(&fixture("hono-gateway-jsonc/wrangler.jsonc"), &opts(env)).unwrap();
        let mut a = toml.config.clone();
        let b = jsonc.config.clone();
        a.path = b.path.clone();
        assert_eq!(a, b, "env {env:?}");
        // Same warnings, only the file name differs.
        let renamed: Vec<String> = toml
            .warnings
            .iter()
            .map(|w| w.replace("wrangler.toml", "wrangler.jsonc"))
            .collect();
        assert_eq!(renamed, jsonc.warnings, "env {env:?}");
    }
}

#[test]
fn paths_resolve_against_the_config_directory() {
    let loaded = gateway(None);
    let c = &loaded.config;
    let dir = fixture("hono-gateway");
    assert_eq!(loaded.path, dir.join("wrangler.toml"));
    assert_eq!(c.path, dir.join("wrangler.toml"));
    assert_eq!(c.dir(), dir.as_path());
    assert_eq!(c.main_path(), Some(dir.join("src/index.ts")));
    assert_eq!(
        c.d1_migrations_dir(c.d1_database("DB").unwrap()),
        dir.join("db/migrations")
    );
    assert_eq!(
        c.d1_migrations_dir(c.d1_database("AUDIT_DB").unwrap()),
        dir.join("migrations")
    );
    assert_eq!(c.assets_dir(), Some(dir.join("./public")));
}

#[test]
fn relative_config_path_is_made_absolute() {
    let cwd = std::env::current_dir().unwrap();
    let dir = fixture("hono-gateway");
    let rel = dir.strip_prefix(&cwd).unwrap().join("wrangler.toml");
    assert!(rel.is_relative());
    let loaded = load(&rel, &opts(None)).unwrap();
    assert!(loaded.path.is_absolute());
    assert_eq!(loaded.config.main_path(), Some(dir.join("src/index.ts")));
}

#[test]
fn base_dir_sets_the_module_root() {
    let (dir, loaded) = common::load_text(
        "wrangler.toml",
        "name = \"w\"\nmain = \"src/index.ts\"\nbase_dir = \"..\"\n",
        None,
    );
    let c = loaded.unwrap().config;
    assert_eq!(c.base_dir.as_deref(), Some(".."));
    assert_eq!(c.module_root(), dir.path().join(".."));
    let (dir, loaded) = common::load_text("wrangler.toml", "name = \"w\"\nmain = \"a.js\"\n", None);
    assert_eq!(loaded.unwrap().config.module_root(), dir.path());
    let (_dir, loaded) = common::load_text("wrangler.toml", "name = \"w\"\nbase_dir = 3\n", None);
    let err = loaded.unwrap_err().to_string();
    assert!(err.contains("base_dir"), "{err}");
}
