//! Broken configs: every problem reported, each naming file, field path and rule.

mod common;

use common::{errors_json, errors_toml, fixture, load_text, ok_toml, opts};
use hearth_config::*;

#[test]
fn broken_file_reports_every_problem_in_order() {
    let err = load(&fixture("broken/wrangler.toml"), &opts(None)).unwrap_err();
    let expected = [
        "wrangler.toml: name: expected lowercase letters, digits, \"-\" and \"_\", found \"Broken Worker\"",
        "wrangler.toml: compatibility_date: expected a date like \"2024-09-23\", found \"2024-13-45\"",
        "wrangler.toml: vars.API-URL: expected a JavaScript identifier (letters, digits, \"_\" and \"$\", not starting with a digit), found \"API-URL\"",
        "wrangler.toml: d1_databases[1].binding: missing",
        "wrangler.toml: d1_databases[1].migrations_dir: expected a string, found 7",
        "wrangler.toml: r2_buckets[0].binding: binding name \"CACHE\" is already used by kv_namespaces[0].binding",
        "wrangler.toml: queues.consumers[0].max_batch_size: must be at most 100, found 500",
        "wrangler.toml: queues.consumers[0].max_retries: must not be negative, found -1",
        "wrangler.toml: triggers.crons[1]: expected 5 fields (minute hour day-of-month month day-of-week), found 6",
        "wrangler.toml: ratelimits[0].namespace_id: expected a string, found 1001",
        "wrangler.toml: ratelimits[0].simple.period: must be either 10 or 60, found 30",
    ];
    assert_eq!(err.lines(), expected);
    // Display: one problem per line.
    assert_eq!(err.to_string(), expected.join("\n"));
    // Warnings gathered before the failure are kept.
    assert_eq!(err.warnings, vec!["wrangler.toml: colour: unknown field"]);
    // Structured access to the same facts.
    assert_eq!(
        err.errors[3],
        Problem {
            file: "wrangler.toml".into(),
            path: "d1_databases[1].binding".into(),
            message: "missing".into()
        }
    );
}

#[test]
fn toml_syntax_error_gives_line_and_column() {
    let err = load(&fixture("syntax-toml/wrangler.toml"), &opts(None)).unwrap_err();
    assert_eq!(
        err.lines(),
        vec!["wrangler.toml: line 4, column 6: syntax error: unclosed table, expected `]`"]
    );
}

#[test]
fn jsonc_syntax_error_gives_line_and_column() {
    let err = load(&fixture("syntax-jsonc/wrangler.jsonc"), &opts(None)).unwrap_err();
    assert_eq!(
        err.lines(),
        vec!["wrangler.jsonc: line 5, column 19: syntax error: Expected comma"]
    );
}

#[test]
fn jsonc_allows_comments_and_trailing_commas_but_nothing_looser() {
    let (_d, r) = load_text(
        "wrangler.json",
        "// c\n{ /* c */ \"name\": \"w\", \"compatibility_date\": \"2025-01-01\", }\n",
        None,
    );
    assert_eq!(r.unwrap().config.name, "w");
    let lines = errors_json("{ 'name': 'w' }");
    assert_eq!(lines.len(), 1);
    assert!(
        lines[0].starts_with("wrangler.jsonc: line 1, column 3: syntax error:"),
        "{lines:?}"
    );
}

#[test]
fn top_level_must_be_an_object() {
    assert_eq!(
        errors_json("[1, 2]"),
        vec!["wrangler.jsonc: expected an object at the top level, found an array"]
    );
    assert_eq!(
        errors_json("  "),
        vec!["wrangler.jsonc: expected an object at the top level, found nothing"]
    );
}

#[test]
fn unknown_fields_are_warnings_with_paths() {
    let loaded = ok_toml(
        r#"
favourite_colour = "blue"
[[kv_namespaces]]
binding = "KV"
id = "x"
ttl = 60
[[queues.consumers]]
queue = "q"
batch = 3
[observability]
enabled = true
sample = 1
"#,
    );
    assert_eq!(
        loaded.warnings,
        // Nested tables are checked as they are read, the top level last.
        vec![
            "wrangler.toml: kv_namespaces[0].ttl: unknown field",
            "wrangler.toml: queues.consumers[0].batch: unknown field",
            "wrangler.toml: observability.sample: unknown field",
            "wrangler.toml: favourite_colour: unknown field",
        ]
    );
    assert_eq!(loaded.config.kv_namespaces.len(), 1);
}

#[test]
fn wrangler_fields_hearth_does_not_use_are_not_unknown() {
    let loaded = ok_toml(
        r#"
account_id = "abc"
minify = true
upload_source_maps = true
keep_vars = true
send_metrics = false
[placement]
mode = "smart"
[[rules]]
type = "Text"
globs = ["**/*.txt"]
"#,
    );
    assert_eq!(loaded.warnings, Vec::<String>::new());
}

#[test]
fn bindings_hearth_lacks_are_warned_about() {
    let loaded = ok_toml(
        r#"
browser = { binding = "BROWSER" }
[[hyperdrive]]
binding = "HD"
id = "x"
"#,
    );
    assert_eq!(
        loaded.warnings,
        vec![
            "wrangler.toml: hyperdrive: not supported by Hearth yet; ignored",
            "wrangler.toml: browser: not supported by Hearth yet; ignored",
        ]
    );
}

#[test]
fn required_fields_are_named_when_missing() {
    assert_eq!(
        errors_toml(
            r#"
[[kv_namespaces]]
id = "x"
[[r2_buckets]]
bucket_name = "b"
[[vectorize]]
binding = "V"
[[services]]
binding = "S"
[[workflows]]
binding = "WF"
[[queues.producers]]
binding = "Q"
[[queues.consumers]]
max_retries = 1
[durable_objects]
bindings = [{ name = "DO" }]
[[migrations]]
new_classes = ["X"]
[[analytics_engine_datasets]]
dataset = "d"
[[ratelimits]]
name = "RL"
namespace_id = "1"
[ai]
"#
        ),
        vec![
            "wrangler.toml: kv_namespaces[0].binding: missing",
            "wrangler.toml: r2_buckets[0].binding: missing",
            "wrangler.toml: durable_objects.bindings[0].class_name: missing",
            "wrangler.toml: migrations[0].tag: missing",
            "wrangler.toml: queues.producers[0].queue: missing",
            "wrangler.toml: queues.consumers[0].queue: missing",
            "wrangler.toml: workflows[0].name: missing",
            "wrangler.toml: workflows[0].class_name: missing",
            "wrangler.toml: vectorize[0].index_name: missing",
            "wrangler.toml: ai.binding: missing",
            "wrangler.toml: analytics_engine_datasets[0].binding: missing",
            "wrangler.toml: ratelimits[0].simple: missing",
            "wrangler.toml: services[0].service: missing",
        ]
    );
}

#[test]
fn top_level_name_is_required() {
    let (_d, r) = load_text(
        "wrangler.toml",
        "main = \"a.js\"\ncompatibility_date = \"2025-01-01\"\n",
        None,
    );
    assert_eq!(r.unwrap_err().lines(), vec!["wrangler.toml: name: missing"]);
}

#[test]
fn missing_compatibility_date_is_a_warning() {
    let (_d, r) = load_text("wrangler.toml", "name = \"w\"\n", None);
    assert_eq!(
        r.unwrap().warnings,
        vec!["wrangler.toml: compatibility_date: not set; Cloudflare requires one to deploy"]
    );
}

#[test]
fn unquoted_toml_date_is_read_as_its_text() {
    let (_d, r) = load_text(
        "wrangler.toml",
        "name = \"w\"\ncompatibility_date = 2025-01-01\n",
        None,
    );
    assert_eq!(
        r.unwrap().config.compatibility_date.as_deref(),
        Some("2025-01-01")
    );
}

#[test]
fn wrong_types_say_what_was_expected_and_found() {
    let lines = errors_json(
        r#"{
  "name": "w",
  "compatibility_date": "2025-01-01",
  "main": ["a.js"],
  "compatibility_flags": ["nodejs_compat", 3],
  "workers_dev": "yes",
  "kv_namespaces": { "binding": "KV" },
  "d1_databases": [ "DB" ],
  "r2_buckets": [ { "binding": "R2", "bucket_name": null } ],
  "limits": { "cpu_ms": 1.5 },
  "dev": { "port": 70000 },
  "observability": { "head_sampling_rate": 2 },
}"#,
    );
    assert_eq!(
        lines,
        vec![
            "wrangler.jsonc: main: expected a string, found an array",
            "wrangler.jsonc: compatibility_flags[1]: expected a string, found 3",
            "wrangler.jsonc: workers_dev: expected a boolean, found \"yes\"",
            "wrangler.jsonc: kv_namespaces: expected an array, found an object",
            "wrangler.jsonc: d1_databases[0]: expected an object, found \"DB\"",
            "wrangler.jsonc: r2_buckets[0].bucket_name: expected a string, found null",
            "wrangler.jsonc: limits.cpu_ms: expected an integer, found 1.5",
            "wrangler.jsonc: dev.port: must be at most 65535, found 70000",
            "wrangler.jsonc: observability.head_sampling_rate: must be between 0 and 1, found 2",
        ]
    );
}

#[test]
fn empty_names_are_refused() {
    assert_eq!(
        errors_toml("[[kv_namespaces]]\nbinding = \"\"\nid = \"x\"\n"),
        vec!["wrangler.toml: kv_namespaces[0].binding: must not be empty"]
    );
}

#[test]
fn binding_names_must_be_js_identifiers() {
    assert_eq!(
        errors_toml(
            "[[kv_namespaces]]\nbinding = \"MY-KV\"\n[[d1_databases]]\nbinding = \"1DB\"\n"
        ),
        vec![
            "wrangler.toml: kv_namespaces[0].binding: expected a JavaScript identifier (letters, digits, \"_\" and \"$\", not starting with a digit), found \"MY-KV\"",
            "wrangler.toml: d1_databases[0].binding: expected a JavaScript identifier (letters, digits, \"_\" and \"$\", not starting with a digit), found \"1DB\"",
        ]
    );
}

#[test]
fn binding_names_are_unique_across_all_kinds() {
    assert_eq!(
        errors_toml(
            r#"
vars = { SHARED = "x" }
[[kv_namespaces]]
binding = "SHARED"
[[d1_databases]]
binding = "DB"
[[d1_databases]]
binding = "DB"
[durable_objects]
bindings = [{ name = "DB", class_name = "C" }]
[[queues.producers]]
binding = "AI"
queue = "q"
[ai]
binding = "AI"
[assets]
directory = "public"
binding = "SHARED"
[[migrations]]
tag = "v1"
new_classes = ["C"]
"#
        ),
        vec![
            "wrangler.toml: kv_namespaces[0].binding: binding name \"SHARED\" is already used by vars.SHARED",
            "wrangler.toml: d1_databases[1].binding: binding name \"DB\" is already used by d1_databases[0].binding",
            "wrangler.toml: durable_objects.bindings[0].name: binding name \"DB\" is already used by d1_databases[0].binding",
            "wrangler.toml: ai.binding: binding name \"AI\" is already used by queues.producers[0].binding",
            "wrangler.toml: assets.binding: binding name \"SHARED\" is already used by vars.SHARED",
        ]
    );
}

#[test]
fn route_and_routes_are_exclusive() {
    assert_eq!(
        errors_toml("route = \"a.com/*\"\nroutes = [\"b.com/*\"]\n"),
        vec!["wrangler.toml: route: cannot be used together with \"routes\"; use one or the other"]
    );
    let loaded = ok_toml("route = { pattern = \"a.com/*\", zone_id = \"z1\" }\n");
    assert_eq!(loaded.config.routes[0].zone_id.as_deref(), Some("z1"));
    assert_eq!(
        errors_toml("routes = [3]\n"),
        vec![
            "wrangler.toml: routes[0]: expected a pattern string or a table with \"pattern\", found 3"
        ]
    );
}

#[test]
fn assets_fields_are_checked() {
    assert_eq!(
        errors_toml(
            "[assets]\nhtml_handling = \"strip\"\nnot_found_handling = \"404\"\nrun_worker_first = \"yes\"\n"
        ),
        vec![
            "wrangler.toml: assets.directory: missing",
            "wrangler.toml: assets.html_handling: expected one of \"auto-trailing-slash\", \"force-trailing-slash\", \"drop-trailing-slash\", \"none\", found \"strip\"",
            "wrangler.toml: assets.not_found_handling: expected one of \"single-page-application\", \"404-page\", \"none\", found \"404\"",
            "wrangler.toml: assets.run_worker_first: expected a boolean or an array of strings, found \"yes\"",
        ]
    );
    let a = ok_toml("[assets]\ndirectory = \"dist\"\nrun_worker_first = true\n")
        .config
        .assets
        .unwrap();
    assert_eq!(a.html_handling, HtmlHandling::AutoTrailingSlash);
    assert_eq!(a.not_found_handling, NotFoundHandling::None);
    assert_eq!(a.run_worker_first, RunWorkerFirst::All(true));
}

#[test]
fn migrations_tags_are_unique_and_renames_complete() {
    assert_eq!(
        errors_toml(
            r#"
[[migrations]]
tag = "v1"
new_classes = ["A"]
[[migrations]]
tag = "v1"
renamed_classes = [{ from = "A" }]
transferred_classes = [{ from = "B", to = "C" }]
"#
        ),
        vec![
            "wrangler.toml: migrations[1].renamed_classes[0].to: missing",
            "wrangler.toml: migrations[1].transferred_classes[0].from_script: missing",
            "wrangler.toml: migrations[1].tag: tag \"v1\" is already used by migrations[0].tag",
        ]
    );
}

#[test]
fn durable_object_class_without_migration_is_a_warning() {
    let loaded = ok_toml(
        r#"
[durable_objects]
bindings = [
  { name = "ROOM", class_name = "Room" },
  { name = "GONE", class_name = "Gone" },
  { name = "OTHER", class_name = "Elsewhere", script_name = "other-worker" },
]
[[migrations]]
tag = "v1"
new_sqlite_classes = ["Room", "Gone"]
[[migrations]]
tag = "v2"
deleted_classes = ["Gone"]
"#,
    );
    assert_eq!(
        loaded.warnings,
        vec![
            "wrangler.toml: durable_objects.bindings[1].class_name: class \"Gone\" is not created by any entry in \"migrations\"; add it to \"new_sqlite_classes\" of a migration"
        ]
    );
    assert_eq!(loaded.config.durable_objects.bindings.len(), 3);
}

#[test]
fn workflow_names_are_unique() {
    assert_eq!(
        errors_toml(
            r#"
[[workflows]]
name = "flow"
binding = "A"
class_name = "A"
[[workflows]]
name = "flow"
binding = "B"
class_name = "B"
"#
        ),
        vec![
            "wrangler.toml: workflows[1].name: workflow name \"flow\" is already used by workflows[0].name"
        ]
    );
}

#[test]
fn unsupported_unsafe_bindings_are_warned_and_typeless_ones_refused() {
    let loaded = ok_toml("[[unsafe.bindings]]\nname = \"X\"\ntype = \"mystery\"\n");
    assert_eq!(
        loaded.warnings,
        vec![
            "wrangler.toml: unsafe.bindings[0]: unsafe binding type \"mystery\" is not supported by Hearth; ignored"
        ]
    );
    assert_eq!(
        errors_toml("[[unsafe.bindings]]\nname = \"X\"\n"),
        vec!["wrangler.toml: unsafe.bindings[0].type: missing"]
    );
}

#[test]
fn unsupported_file_type_is_refused() {
    let (_d, r) = load_text("wrangler.yaml", "name: w\n", None);
    assert_eq!(
        r.unwrap_err().lines(),
        vec!["wrangler.yaml: unsupported config file type; expected a .toml, .json or .jsonc file"]
    );
}

#[test]
fn missing_file_is_a_read_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let err = load(&dir.path().join("wrangler.toml"), &opts(None)).unwrap_err();
    assert_eq!(err.errors.len(), 1);
    assert_eq!(err.errors[0].file, "wrangler.toml");
    assert!(err.errors[0].message.starts_with("cannot read "), "{err}");
}
