//! The `hearth` binary's data commands, driven as a user drives them: the
//! real executable against a project directory holding a wrangler.toml with
//! a KV namespace, a D1 database with migrations and an R2 bucket, plus an
//! `[env.staging]` section with bindings of its own.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use hearth_core::{DataDir, SystemClock};
use hearth_d1::{D1Database, D1Value};
use hearth_kv::{KvLimits, KvNamespace, PutOptions};
use hearth_r2::{R2Bucket, R2GetOptions, R2Limits};
use serde_json::{Value, json};
use tempfile::TempDir;

const WRANGLER_TOML: &str = r#"
name = "app"
main = "src/index.js"
compatibility_date = "2024-09-23"

[[kv_namespaces]]
binding = "CACHE"
id = "cache-id"
preview_id = "cache-preview-id"

[[kv_namespaces]]
binding = "SESSIONS"
id = "sessions-id"

[[d1_databases]]
binding = "DB"
database_name = "app-db"
database_id = "db-id"
migrations_dir = "db/migrations"

[[r2_buckets]]
binding = "FILES"
bucket_name = "files"

[env.staging]

[[env.staging.kv_namespaces]]
binding = "CACHE"
id = "staging-cache-id"

[[env.staging.d1_databases]]
binding = "DB"
database_name = "staging-db"
database_id = "staging-db-id"

[[env.staging.r2_buckets]]
binding = "FILES"
bucket_name = "staging-files"
"#;

/// A temp project directory with the config above.
struct Project {
    dir: TempDir,
}

/// What one run of the binary did.
struct Run {
    success: bool,
    stdout: Vec<u8>,
    stderr: String,
}

impl Run {
    fn stdout(&self) -> String {
        String::from_utf8(self.stdout.clone()).unwrap()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout()))
    }
}

impl From<Output> for Run {
    fn from(out: Output) -> Self {
        Run {
            success: out.status.success(),
            stdout: out.stdout,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Project {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("wrangler.toml"), WRANGLER_TOML).unwrap();
        Project { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn file(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path().join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    fn data(&self) -> DataDir {
        DataDir::beside_config(self.path())
    }

    /// The binary, run in the project directory, with no data dir override
    /// leaking in from the environment.
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hearth"));
        cmd.args(args)
            .current_dir(self.path())
            .env_remove("HEARTH_DATA_DIR")
            .env("HEARTH_LOG", "warn")
            .stdin(Stdio::null());
        cmd
    }

    fn run(&self, args: &[&str]) -> Run {
        self.command(args).output().unwrap().into()
    }

    fn run_with_stdin(&self, args: &[&str], input: &[u8]) -> Run {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        child.wait_with_output().unwrap().into()
    }

    /// Runs and insists on exit status 0.
    fn ok(&self, args: &[&str]) -> Run {
        let run = self.run(args);
        assert!(
            run.success,
            "hearth {args:?} failed:\nstdout: {}\nstderr: {}",
            run.stdout(),
            run.stderr
        );
        run
    }

    /// Runs and insists on a non-zero exit status.
    fn fails(&self, args: &[&str]) -> Run {
        let run = self.run(args);
        assert!(
            !run.success,
            "hearth {args:?} succeeded but should not have:\nstdout: {}\nstderr: {}",
            run.stdout(),
            run.stderr
        );
        run
    }

    fn kv_list(&self, extra: &[&str]) -> Value {
        let mut args = vec!["kv", "key", "list", "--binding", "CACHE"];
        args.extend_from_slice(extra);
        self.ok(&args).json()
    }

    fn sql_json(&self, sql: &str) -> Value {
        self.ok(&["d1", "execute", "DB", "--command", sql, "--json"])
            .json()
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn names(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect()
}

fn assert_contains(haystack: &str, needle: &str) {
    assert!(
        haystack.contains(needle),
        "expected to find {needle:?} in:\n{haystack}"
    );
}

// ---------------------------------------------------------------- KV

#[test]
fn kv_put_then_get_text_and_raw_bytes() {
    let p = Project::new();
    let put = p.ok(&[
        "kv",
        "key",
        "put",
        "greeting",
        "hello",
        "--binding",
        "CACHE",
    ]);
    assert_contains(
        &put.stderr,
        "Writing the value \"hello\" to key \"greeting\" on namespace cache-id.",
    );
    assert!(put.stdout.is_empty(), "put prints nothing on stdout");

    // --text prints a line, as wrangler does; the default is the raw bytes.
    let text = p.ok(&[
        "kv",
        "key",
        "get",
        "greeting",
        "--binding",
        "CACHE",
        "--text",
    ]);
    assert_eq!(text.stdout(), "hello\n");
    let raw = p.ok(&["kv", "key", "get", "greeting", "--binding", "CACHE"]);
    assert_eq!(raw.stdout, b"hello");

    // --path stores a file's bytes exactly, including non-UTF-8 ones.
    let bytes: Vec<u8> = (0..=255u8).rev().chain([0, 0xff, 0xfe]).collect();
    let path = p.file("value.bin", &bytes);
    let put = p.ok(&[
        "kv",
        "key",
        "put",
        "blob",
        "--path",
        path.to_str().unwrap(),
        "--binding",
        "CACHE",
    ]);
    assert_contains(&put.stderr, "to the key \"blob\" on namespace cache-id.");
    let got = p.ok(&["kv", "key", "get", "blob", "--binding", "CACHE"]);
    assert!(got.stdout == bytes, "bytes differ after a round trip");
}

#[test]
fn kv_put_needs_a_value_or_a_path_but_not_both() {
    let p = Project::new();
    let path = p.file("v.txt", "x");
    let run = p.fails(&["kv", "key", "put", "k", "--binding", "CACHE"]);
    assert_contains(
        &run.stderr,
        "Exactly one of the arguments value and --path is required",
    );
    let run = p.fails(&[
        "kv",
        "key",
        "put",
        "k",
        "v",
        "--path",
        path.to_str().unwrap(),
        "--binding",
        "CACHE",
    ]);
    assert_contains(&run.stderr, "cannot be used with");
    assert_eq!(p.kv_list(&[]), json!([]));
}

#[test]
fn kv_ttl_below_60_is_refused_with_cloudflares_message() {
    let p = Project::new();
    let run = p.fails(&[
        "kv",
        "key",
        "put",
        "k",
        "v",
        "--ttl",
        "30",
        "--binding",
        "CACHE",
    ]);
    assert_contains(
        &run.stderr,
        "KV PUT failed: 400 Invalid expiration_ttl of 30. Expiration TTL must be at least 60.",
    );
    let missing = p.fails(&["kv", "key", "get", "k", "--binding", "CACHE"]);
    assert_contains(&missing.stderr, "Value not found");
    assert!(missing.stdout.is_empty());

    // An absolute expiration under a minute away breaks the same rule.
    let soon = (now_secs() + 10).to_string();
    let run = p.fails(&[
        "kv",
        "key",
        "put",
        "k",
        "v",
        "--expiration",
        &soon,
        "--binding",
        "CACHE",
    ]);
    assert_contains(
        &run.stderr,
        "Expiration times must be at least 60 seconds in the future.",
    );

    // 60 itself is allowed, and list reports the absolute expiry.
    let before = now_secs();
    p.ok(&[
        "kv",
        "key",
        "put",
        "k",
        "v",
        "--ttl",
        "60",
        "--binding",
        "CACHE",
    ]);
    let after = now_secs();
    let list = p.kv_list(&[]);
    let expiration = list[0]["expiration"].as_u64().unwrap();
    assert!(
        (before + 60..=after + 60).contains(&expiration),
        "expiration {expiration} not 60 s after [{before}, {after}]"
    );
}

#[test]
fn kv_metadata_is_stored_and_list_filters_by_prefix_as_json() {
    let p = Project::new();
    p.ok(&[
        "kv",
        "key",
        "put",
        "user:1",
        "ada",
        "--metadata",
        r#"{"role":"admin","n":1}"#,
        "--binding",
        "CACHE",
    ]);
    p.ok(&["kv", "key", "put", "user:2", "bob", "--binding", "CACHE"]);
    p.ok(&["kv", "key", "put", "team:1", "x", "--binding", "CACHE"]);

    let run = p.ok(&[
        "kv",
        "key",
        "list",
        "--binding",
        "CACHE",
        "--prefix",
        "user:",
    ]);
    // Exactly wrangler's shape: an array of {name, expiration?, metadata?}.
    assert_eq!(
        run.json(),
        json!([
            {"name": "user:1", "metadata": {"role": "admin", "n": 1}},
            {"name": "user:2"}
        ])
    );
    assert_eq!(names(&p.kv_list(&[])), ["team:1", "user:1", "user:2"]);
    assert_eq!(p.kv_list(&["--prefix", "nobody"]), json!([]));

    let bad = p.fails(&[
        "kv",
        "key",
        "put",
        "k",
        "v",
        "--metadata",
        "{not json",
        "--binding",
        "CACHE",
    ]);
    assert_contains(&bad.stderr, "--metadata is not valid JSON");
    let big = format!(r#"{{"pad":"{}"}}"#, "x".repeat(1100));
    let bad = p.fails(&[
        "kv",
        "key",
        "put",
        "k",
        "v",
        "--metadata",
        &big,
        "--binding",
        "CACHE",
    ]);
    assert_contains(&bad.stderr, "KV PUT failed: 413 Metadata length of");
    assert_contains(&bad.stderr, "exceeds limit of 1024.");
}

#[test]
fn kv_delete_removes_the_key() {
    let p = Project::new();
    p.ok(&["kv", "key", "put", "a", "1", "--binding", "CACHE"]);
    p.ok(&["kv", "key", "put", "b", "2", "--binding", "CACHE"]);
    let run = p.ok(&["kv", "key", "delete", "a", "--binding", "CACHE"]);
    assert_contains(&run.stderr, "Deleting the key \"a\" on namespace cache-id.");
    assert_eq!(names(&p.kv_list(&[])), ["b"]);
    p.fails(&["kv", "key", "get", "a", "--binding", "CACHE"]);
    // Deleting a missing key succeeds, as on Cloudflare.
    p.ok(&["kv", "key", "delete", "a", "--binding", "CACHE"]);
}

#[test]
fn kv_bulk_put_writes_every_entry() {
    let p = Project::new();
    let file = p.file(
        "bulk.json",
        json!([
            {"key": "plain", "value": "hello"},
            // base64 carries binary values: bytes 0x00 0xff 0x10.
            {"key": "binary", "value": "AP8Q", "base64": true},
            {"key": "short-lived", "value": "x", "expiration_ttl": 3600},
            {"key": "tagged", "value": "y", "metadata": {"tag": "t"}}
        ])
        .to_string(),
    );
    let before = now_secs();
    let run = p.ok(&[
        "kv",
        "bulk",
        "put",
        file.to_str().unwrap(),
        "--binding",
        "CACHE",
    ]);
    assert_contains(&run.stderr, "Success! Wrote 4 key-value pairs.");

    let list = p.kv_list(&[]);
    assert_eq!(names(&list), ["binary", "plain", "short-lived", "tagged"]);
    let expiration = list[2]["expiration"].as_u64().unwrap();
    assert!((before + 3600..=now_secs() + 3600).contains(&expiration));
    assert_eq!(list[3]["metadata"], json!({"tag": "t"}));

    let got = p.ok(&["kv", "key", "get", "binary", "--binding", "CACHE"]);
    assert_eq!(got.stdout, [0x00, 0xff, 0x10]);
    let got = p.ok(&["kv", "key", "get", "plain", "--binding", "CACHE"]);
    assert_eq!(got.stdout, b"hello");
}

#[test]
fn kv_bulk_put_with_one_invalid_entry_writes_nothing() {
    let p = Project::new();
    let bulk = |name: &str, entries: Value| -> Run {
        let file = p.file(name, entries.to_string());
        p.fails(&[
            "kv",
            "bulk",
            "put",
            file.to_str().unwrap(),
            "--binding",
            "CACHE",
        ])
    };

    // A limit broken by the last entry: the first two must not be written.
    let run = bulk(
        "ttl.json",
        json!([
            {"key": "a", "value": "1"},
            {"key": "b", "value": "2"},
            {"key": "c", "value": "3", "expiration_ttl": 30}
        ]),
    );
    assert_contains(&run.stderr, "nothing was written");
    assert_contains(
        &run.stderr,
        "The item at index 2 (key \"c\"): KV PUT failed: 400 Invalid expiration_ttl of 30. Expiration TTL must be at least 60.",
    );
    assert_eq!(p.kv_list(&[]), json!([]));

    // A wrongly shaped entry.
    let run = bulk(
        "shape.json",
        json!([{"key": "a", "value": "1"}, {"key": "b", "value": 2}]),
    );
    assert_contains(&run.stderr, "Unexpected JSON input from");
    assert_contains(
        &run.stderr,
        r#"The item at index 1 is {"key":"b","value":2}"#,
    );
    assert_eq!(p.kv_list(&[]), json!([]));

    // Bad base64, and a key Cloudflare refuses.
    let run = bulk(
        "b64.json",
        json!([
            {"key": "a", "value": "1"},
            {"key": "b", "value": "!!!", "base64": true},
            {"key": "..", "value": "3"}
        ]),
    );
    assert_contains(
        &run.stderr,
        "The item at index 1 (key \"b\"): value is not valid base64",
    );
    assert_contains(
        &run.stderr,
        "The item at index 2 (key \"..\"): \"..\" is not allowed as a key name.",
    );
    assert_eq!(p.kv_list(&[]), json!([]));

    // Not an array at all.
    let run = bulk("object.json", json!({"key": "a", "value": "1"}));
    assert_contains(
        &run.stderr,
        "Expected an array of key-value objects but got type \"object\".",
    );
    assert_eq!(p.kv_list(&[]), json!([]));
}

#[test]
fn kv_bulk_put_warns_on_unexpected_properties_but_writes() {
    let p = Project::new();
    let file = p.file(
        "bulk.json",
        json!([{"key": "a", "value": "1", "expirationTtl": 60}]).to_string(),
    );
    let run = p.ok(&[
        "kv",
        "bulk",
        "put",
        file.to_str().unwrap(),
        "--binding",
        "CACHE",
    ]);
    assert_contains(
        &run.stderr,
        r#"The item at index 0 contains unexpected properties: ["expirationTtl"]."#,
    );
    assert_eq!(p.kv_list(&[]), json!([{"name": "a"}]));
}

#[test]
fn kv_bulk_get_and_delete_take_a_key_list() {
    let p = Project::new();
    for k in ["a", "b", "c"] {
        p.ok(&[
            "kv",
            "key",
            "put",
            k,
            &format!("v-{k}"),
            "--binding",
            "CACHE",
        ]);
    }
    let keys = p.file("keys.json", r#"["a", {"name": "b"}, "zzz"]"#);
    let got = p.ok(&[
        "kv",
        "bulk",
        "get",
        keys.to_str().unwrap(),
        "--binding",
        "CACHE",
    ]);
    assert_eq!(
        got.json(),
        json!({"a": {"value": "v-a"}, "b": {"value": "v-b"}, "zzz": {"value": null}})
    );
    p.ok(&[
        "kv",
        "bulk",
        "delete",
        keys.to_str().unwrap(),
        "--force",
        "--binding",
        "CACHE",
    ]);
    assert_eq!(p.kv_list(&[]), json!([{"name": "c"}]));

    let bad = p.file("bad.json", r#"["a", 7]"#);
    let run = p.fails(&[
        "kv",
        "bulk",
        "delete",
        bad.to_str().unwrap(),
        "--binding",
        "CACHE",
    ]);
    assert_contains(&run.stderr, "The item at index 1 is type: \"number\" - 7");
    assert_eq!(p.kv_list(&[]), json!([{"name": "c"}]), "nothing deleted");
}

#[test]
fn kv_namespace_id_and_preview_select_the_namespace() {
    let p = Project::new();
    p.ok(&[
        "kv",
        "key",
        "put",
        "k",
        "main",
        "--namespace-id",
        "cache-id",
    ]);
    let got = p.ok(&["kv", "key", "get", "k", "--binding", "CACHE"]);
    assert_eq!(got.stdout, b"main");

    // --preview is the preview_id namespace, the same one its id names.
    p.ok(&[
        "kv",
        "key",
        "put",
        "k",
        "preview",
        "--binding",
        "CACHE",
        "--preview",
    ]);
    let got = p.ok(&[
        "kv",
        "key",
        "get",
        "k",
        "--namespace-id",
        "cache-preview-id",
    ]);
    assert_eq!(got.stdout, b"preview");
    let got = p.ok(&["kv", "key", "get", "k", "--binding", "CACHE"]);
    assert_eq!(got.stdout, b"main", "preview write left the main namespace");
    assert!(p.data().kv_namespace("cache-preview-id").is_file());

    let run = p.fails(&[
        "kv",
        "key",
        "get",
        "k",
        "--binding",
        "SESSIONS",
        "--preview",
    ]);
    assert_contains(&run.stderr, "No preview ID found for SESSIONS.");

    let run = p.fails(&["kv", "key", "get", "k", "--namespace-id", "nope"]);
    assert_contains(&run.stderr, "No namespace with id \"nope\"");
    assert_contains(&run.stderr, "configured ids: cache-id, sessions-id");

    // One of --binding and --namespace-id, not both, not neither.
    p.fails(&["kv", "key", "get", "k"]);
    p.fails(&[
        "kv",
        "key",
        "get",
        "k",
        "--binding",
        "CACHE",
        "--namespace-id",
        "cache-id",
    ]);
}

#[test]
fn kv_unknown_binding_lists_the_known_ones() {
    let p = Project::new();
    let run = p.fails(&["kv", "key", "put", "k", "v", "--binding", "NOPE"]);
    assert_contains(
        &run.stderr,
        "A namespace with binding name \"NOPE\" was not found in the configured \"kv_namespaces\"",
    );
    assert_contains(&run.stderr, "wrangler.toml");
    assert_contains(&run.stderr, "configured bindings: CACHE, SESSIONS");
    assert!(!p.data().kv_namespace("NOPE").exists());
}

// ---------------------------------------------------------------- D1

#[test]
fn d1_migrations_create_list_apply_in_order() {
    let p = Project::new();
    let dir = p.path().join("db/migrations");

    let first = p.ok(&["d1", "migrations", "create", "DB", "create users"]);
    let first_path = PathBuf::from(first.stdout().trim());
    assert_eq!(first_path, dir.join("0000_create_users.sql"));
    assert!(first_path.is_file());
    assert_contains(
        &first.stderr,
        "Successfully created Migration '0000_create_users.sql'!",
    );
    // The database can be named by binding or by database_name.
    let second = p.ok(&["d1", "migrations", "create", "app-db", "add posts"]);
    let second_path = PathBuf::from(second.stdout().trim());
    assert_eq!(second_path, dir.join("0001_add_posts.sql"));

    // The second depends on the first, so order matters.
    let append = |path: &Path, sql: &str| {
        let mut text = std::fs::read_to_string(path).unwrap();
        assert!(text.starts_with("-- Migration number: "));
        text.push_str(sql);
        std::fs::write(path, text).unwrap();
    };
    append(
        &first_path,
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);\nINSERT INTO users (name) VALUES ('ada');\n",
    );
    append(
        &second_path,
        "CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users(id), title TEXT);\nINSERT INTO posts (user_id, title) SELECT id, 'hello' FROM users;\n",
    );

    let list = p.ok(&["d1", "migrations", "list", "DB"]);
    assert_eq!(
        list.stdout(),
        "Migrations to be applied:\n0000_create_users.sql\n0001_add_posts.sql\n"
    );

    let apply = p.ok(&["d1", "migrations", "apply", "DB"]);
    assert_eq!(
        apply.stdout(),
        "Applied 0000_create_users.sql\nApplied 0001_add_posts.sql\n"
    );

    let recorded = p.sql_json("SELECT id, name FROM d1_migrations ORDER BY id");
    assert_eq!(
        recorded[0]["results"],
        json!([
            {"id": 1, "name": "0000_create_users.sql"},
            {"id": 2, "name": "0001_add_posts.sql"}
        ])
    );
    let posts = p.sql_json("SELECT title FROM posts");
    assert_eq!(posts[0]["results"], json!([{"title": "hello"}]));

    let again = p.ok(&["d1", "migrations", "apply", "DB"]);
    assert_eq!(again.stdout(), "No migrations to apply!\n");
    let list = p.ok(&["d1", "migrations", "list", "DB"]);
    assert_eq!(list.stdout(), "No migrations to apply!\n");

    // A failing migration stops the run; the ones before it stay applied.
    let third = PathBuf::from(
        p.ok(&["d1", "migrations", "create", "DB", "good"])
            .stdout()
            .trim(),
    );
    append(&third, "CREATE TABLE tags (name TEXT);\n");
    let fourth = PathBuf::from(
        p.ok(&["d1", "migrations", "create", "DB", "bad"])
            .stdout()
            .trim(),
    );
    append(
        &fourth,
        "INSERT INTO tags VALUES ('x');\nINSERT INTO missing VALUES (1);\n",
    );
    let run = p.fails(&["d1", "migrations", "apply", "DB"]);
    assert_eq!(run.stdout(), "Applied 0002_good.sql\n");
    assert_contains(
        &run.stderr,
        "Migration 0003_bad.sql failed with the following errors:",
    );
    assert_contains(&run.stderr, "no such table: missing");
    let tags = p.sql_json("SELECT count(*) AS n FROM tags");
    assert_eq!(
        tags[0]["results"],
        json!([{"n": 0}]),
        "0003 rolled back whole"
    );
    let list = p.ok(&["d1", "migrations", "list", "DB"]);
    assert_eq!(list.stdout(), "Migrations to be applied:\n0003_bad.sql\n");
}

#[test]
fn d1_execute_command_json_has_d1s_result_shape() {
    let p = Project::new();
    let out = p.sql_json(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, score REAL, data BLOB); \
         INSERT INTO t (name, score, data) VALUES ('a', 1.5, x'00ff'), ('b', NULL, NULL); \
         SELECT id, name, score, data FROM t ORDER BY id",
    );
    let results = out.as_array().unwrap();
    assert_eq!(results.len(), 3, "one result per statement");
    for r in results {
        assert_eq!(r["success"], json!(true));
        let meta = r["meta"].as_object().unwrap();
        for field in [
            "served_by",
            "duration",
            "changes",
            "last_row_id",
            "changed_db",
            "size_after",
            "rows_read",
            "rows_written",
        ] {
            assert!(meta.contains_key(field), "meta lacks {field}: {meta:?}");
        }
    }
    assert_eq!(results[1]["meta"]["changes"], json!(2));
    assert_eq!(results[1]["meta"]["last_row_id"], json!(2));
    assert_eq!(results[1]["meta"]["changed_db"], json!(true));
    assert_eq!(
        results[2]["results"],
        json!([
            {"id": 1, "name": "a", "score": 1.5, "data": [0, 255]},
            {"id": 2, "name": "b", "score": null, "data": null}
        ])
    );

    // Without --json: a summary on stderr, a table on stdout.
    let run = p.ok(&[
        "d1",
        "execute",
        "DB",
        "--command",
        "SELECT name FROM t ORDER BY id",
    ]);
    assert_contains(&run.stderr, "1 command executed successfully.");
    assert_eq!(run.stdout(), "name\na\nb\n");
}

#[test]
fn d1_execute_file_runs_every_statement() {
    let p = Project::new();
    let file = p.file(
        "seed.sql",
        "-- seed data\n\
         CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);\n\
         INSERT INTO notes (body) VALUES ('semi;colon');\n\
         /* block comment; with a semicolon */\n\
         INSERT INTO notes (body) VALUES ('two');\n\
         INSERT INTO notes (body) VALUES ('three');\n",
    );
    let run = p.ok(&[
        "d1",
        "execute",
        "DB",
        "--file",
        file.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(run.json().as_array().unwrap().len(), 4);
    let out = p.sql_json("SELECT body FROM notes ORDER BY id");
    assert_eq!(
        out[0]["results"],
        json!([{"body": "semi;colon"}, {"body": "two"}, {"body": "three"}])
    );

    let run = p.fails(&["d1", "execute", "DB", "--file", "no-such.sql"]);
    assert_contains(
        &run.stderr,
        "Unable to read SQL text file \"no-such.sql\". Please check the file path and try again.",
    );
    // A database file is not SQL text.
    let db_file = p.data().d1_database("db-id");
    let run = p.fails(&["d1", "execute", "DB", "--file", db_file.to_str().unwrap()]);
    assert_contains(
        &run.stderr,
        "Provided file is a binary SQLite database file instead of an SQL text file.",
    );
}

#[test]
fn d1_failing_sql_exits_non_zero_and_changes_nothing() {
    let p = Project::new();
    p.sql_json("CREATE TABLE t (n INTEGER)");

    let run = p.fails(&[
        "d1",
        "execute",
        "DB",
        "--command",
        "INSERT INTO t VALUES (1); INSERT INTO t VALUES (2); INSERT INTO missing VALUES (3)",
    ]);
    assert_contains(
        &run.stderr,
        "D1_ERROR: no such table: missing: SQLITE_ERROR",
    );
    assert_contains(&run.stderr, "Statement 3 of 3 failed");
    assert_eq!(
        run.stderr.matches("no such table").count(),
        1,
        "the message is said once: {}",
        run.stderr
    );
    let count = p.sql_json("SELECT count(*) AS n FROM t");
    assert_eq!(count[0]["results"], json!([{"n": 0}]));

    let file = p.file(
        "bad.sql",
        "INSERT INTO t VALUES (1);\nINSERT INTO t VALUES ('x', 'too many');\n",
    );
    let run = p.fails(&["d1", "execute", "DB", "--file", file.to_str().unwrap()]);
    assert_contains(
        &run.stderr,
        "D1_ERROR: table t has 1 columns but 2 values were supplied",
    );
    let count = p.sql_json("SELECT count(*) AS n FROM t");
    assert_eq!(count[0]["results"], json!([{"n": 0}]));

    // --json reports the failure as JSON on stdout, as wrangler does.
    let run = p.fails(&[
        "d1",
        "execute",
        "DB",
        "--command",
        "SELECT * FROM missing",
        "--json",
    ]);
    let text = run.json()["error"]["text"].as_str().unwrap().to_owned();
    assert!(text.starts_with("D1_ERROR: no such table: missing: SQLITE_ERROR"));

    // Transactions are D1's to manage, not the script's.
    let run = p.fails(&[
        "d1",
        "execute",
        "DB",
        "--command",
        "BEGIN TRANSACTION; INSERT INTO t VALUES (1); COMMIT",
    ]);
    assert_contains(&run.stderr, "D1_ERROR: To execute a transaction");
    let count = p.sql_json("SELECT count(*) AS n FROM t");
    assert_eq!(count[0]["results"], json!([{"n": 0}]));
}

#[test]
fn d1_unknown_database_and_missing_sql_are_errors() {
    let p = Project::new();
    let run = p.fails(&["d1", "execute", "nope", "--command", "SELECT 1"]);
    assert_contains(
        &run.stderr,
        "Couldn't find a D1 DB with the name or binding 'nope'",
    );
    assert_contains(&run.stderr, "configured: app-db");
    let run = p.fails(&["d1", "execute", "DB"]);
    assert_contains(&run.stderr, "--command");
    let run = p.fails(&[
        "d1",
        "execute",
        "DB",
        "--command",
        "SELECT 1",
        "--file",
        "x.sql",
    ]);
    assert_contains(&run.stderr, "cannot be used with");
    let run = p.fails(&["d1", "execute", "DB", "--command", "-- only a comment"]);
    assert_contains(&run.stderr, "D1_ERROR: No SQL statements detected.");
}

// ---------------------------------------------------------------- R2

#[test]
fn r2_put_get_delete_round_trip() {
    let p = Project::new();
    let body: Vec<u8> = (0..200_000u32).map(|i| (i * 31 % 251) as u8).collect();
    let src = p.file("photo.png", &body);
    let run = p.ok(&[
        "r2",
        "object",
        "put",
        "files/img/photo.png",
        "--file",
        src.to_str().unwrap(),
        "--content-type",
        "image/png",
        "--cache-control",
        "max-age=60",
    ]);
    assert_contains(
        &run.stderr,
        "Creating object \"img/photo.png\" in bucket \"files\".",
    );
    assert_contains(&run.stderr, "Upload complete (200000 bytes");

    // --file writes where asked, creating folders.
    let out = p.path().join("out/sub/copy.png");
    p.ok(&[
        "r2",
        "object",
        "get",
        "files/img/photo.png",
        "--file",
        out.to_str().unwrap(),
    ]);
    assert!(std::fs::read(&out).unwrap() == body, "--file copy differs");

    // --pipe writes the body, and nothing else, to stdout.
    let piped = p.ok(&["r2", "object", "get", "files/img/photo.png", "--pipe"]);
    assert_eq!(piped.stdout.len(), body.len());
    assert!(piped.stdout == body, "--pipe output differs");

    // Neither: the key's own path under the current directory, as wrangler.
    p.ok(&["r2", "object", "get", "files/img/photo.png"]);
    assert!(std::fs::read(p.path().join("img/photo.png")).unwrap() == body);

    // The HTTP metadata went with the object.
    {
        let bucket = R2Bucket::open(
            p.data().r2_bucket("files"),
            SystemClock::shared(),
            R2Limits::default(),
        )
        .unwrap();
        let head = bucket.head("img/photo.png").unwrap().unwrap();
        let meta = head.http_metadata.unwrap();
        assert_eq!(meta.content_type.as_deref(), Some("image/png"));
        assert_eq!(meta.cache_control.as_deref(), Some("max-age=60"));
        assert_eq!(head.size, body.len() as u64);
    }

    let run = p.ok(&["r2", "object", "delete", "files/img/photo.png"]);
    assert_contains(
        &run.stderr,
        "Deleting object \"img/photo.png\" from bucket \"files\".",
    );
    let run = p.fails(&["r2", "object", "get", "files/img/photo.png", "--pipe"]);
    assert_contains(&run.stderr, "The specified key does not exist.");
    assert!(run.stdout.is_empty());
}

#[test]
fn r2_put_from_stdin_with_pipe() {
    let p = Project::new();
    let body = b"streamed \x00\xff body".to_vec();
    let run = p.run_with_stdin(
        &[
            "r2",
            "object",
            "put",
            "FILES/notes.txt",
            "--pipe",
            "--ct",
            "text/plain",
        ],
        &body,
    );
    assert!(run.success, "{}", run.stderr);
    let got = p.ok(&["r2", "object", "get", "files/notes.txt", "--pipe"]);
    assert_eq!(got.stdout, body);
    let bucket = R2Bucket::open(
        p.data().r2_bucket("files"),
        SystemClock::shared(),
        R2Limits::default(),
    )
    .unwrap();
    let head = bucket.head("notes.txt").unwrap().unwrap();
    assert_eq!(
        head.http_metadata.unwrap().content_type.as_deref(),
        Some("text/plain")
    );
}

#[test]
fn r2_errors_name_the_problem() {
    let p = Project::new();
    let run = p.fails(&["r2", "object", "get", "files/missing", "--pipe"]);
    assert_contains(&run.stderr, "The specified key does not exist.");

    let out = p.path().join("never.bin");
    let run = p.fails(&[
        "r2",
        "object",
        "get",
        "files/missing",
        "--file",
        out.to_str().unwrap(),
    ]);
    assert_contains(&run.stderr, "The specified key does not exist.");
    assert!(!out.exists(), "no file is left for a missing object");

    let run = p.fails(&["r2", "object", "get", "photos/x", "--pipe"]);
    assert_contains(&run.stderr, "No R2 bucket named \"photos\"");
    assert_contains(&run.stderr, "configured buckets: files");

    let run = p.fails(&["r2", "object", "get", "files", "--pipe"]);
    assert_contains(&run.stderr, "{bucket}/{key}");

    let run = p.fails(&["r2", "object", "put", "files/x"]);
    assert_contains(&run.stderr, "--file");

    let run = p.fails(&[
        "r2",
        "object",
        "put",
        "files/x",
        "--file",
        "does-not-exist.bin",
    ]);
    assert_contains(
        &run.stderr,
        "The file \"does-not-exist.bin\" does not exist.",
    );

    // A key that would climb out of the current directory needs --file.
    let put = p.run_with_stdin(&["r2", "object", "put", "files/../escape", "--pipe"], b"x");
    assert!(put.success, "{}", put.stderr);
    let run = p.fails(&["r2", "object", "get", "files/../escape"]);
    assert_contains(&run.stderr, "is not a safe relative file path");
    assert!(!p.path().parent().unwrap().join("escape").exists());
}

// ------------------------------------------------- data dir, env, sharing

#[test]
fn data_dir_defaults_beside_the_config_and_can_be_moved() {
    let p = Project::new();
    // Run from elsewhere, naming the config file: data goes beside it.
    let elsewhere = tempfile::tempdir().unwrap();
    let config = p.path().join("wrangler.toml");
    let run: Run = p
        .command(&[
            "kv",
            "key",
            "put",
            "k",
            "v",
            "--binding",
            "CACHE",
            "--config",
            config.to_str().unwrap(),
        ])
        .current_dir(elsewhere.path())
        .output()
        .unwrap()
        .into();
    assert!(run.success, "{}", run.stderr);
    assert!(p.path().join(".hearth/kv/cache-id.sqlite").is_file());
    assert!(!elsewhere.path().join(".hearth").exists());

    // --config may name the directory too.
    let run: Run = p
        .command(&[
            "kv",
            "key",
            "get",
            "k",
            "--binding",
            "CACHE",
            "-c",
            p.path().to_str().unwrap(),
        ])
        .current_dir(elsewhere.path())
        .output()
        .unwrap()
        .into();
    assert_eq!(run.stdout, b"v");

    // --data-dir puts every binding's data where asked.
    let data = tempfile::tempdir().unwrap();
    let d = data.path().to_str().unwrap();
    p.ok(&[
        "kv",
        "key",
        "put",
        "k",
        "moved",
        "--binding",
        "CACHE",
        "--data-dir",
        d,
    ]);
    p.ok(&[
        "d1",
        "execute",
        "DB",
        "--command",
        "CREATE TABLE x (a)",
        "--data-dir",
        d,
    ]);
    let put = p.run_with_stdin(
        &["r2", "object", "put", "files/o", "--pipe", "--data-dir", d],
        b"o",
    );
    assert!(put.success, "{}", put.stderr);
    assert!(data.path().join("kv/cache-id.sqlite").is_file());
    assert!(data.path().join("d1/db-id.sqlite").is_file());
    assert!(data.path().join("r2/files").is_dir());
    assert!(!p.path().join(".hearth/d1").exists());
    assert!(!p.path().join(".hearth/r2").exists());
    let moved = p.ok(&[
        "kv",
        "key",
        "get",
        "k",
        "--binding",
        "CACHE",
        "--data-dir",
        d,
    ]);
    assert_eq!(moved.stdout, b"moved");
    let default = p.ok(&["kv", "key", "get", "k", "--binding", "CACHE"]);
    assert_eq!(default.stdout, b"v", "the default data dir is untouched");

    // wrangler's --persist-to and the HEARTH_DATA_DIR variable mean the same.
    let got = p.ok(&[
        "kv",
        "key",
        "get",
        "k",
        "--binding",
        "CACHE",
        "--persist-to",
        d,
    ]);
    assert_eq!(got.stdout, b"moved");
    let run: Run = p
        .command(&["kv", "key", "get", "k", "--binding", "CACHE"])
        .env("HEARTH_DATA_DIR", d)
        .output()
        .unwrap()
        .into();
    assert_eq!(run.stdout, b"moved");
}

#[test]
fn env_staging_uses_the_environments_bindings() {
    let p = Project::new();
    p.ok(&[
        "kv",
        "key",
        "put",
        "k",
        "staging",
        "--binding",
        "CACHE",
        "--env",
        "staging",
    ]);
    p.ok(&["kv", "key", "put", "k", "top", "--binding", "CACHE"]);
    assert!(p.data().kv_namespace("staging-cache-id").is_file());
    let got = p.ok(&[
        "kv",
        "key",
        "get",
        "k",
        "--binding",
        "CACHE",
        "-e",
        "staging",
    ]);
    assert_eq!(got.stdout, b"staging");
    let got = p.ok(&["kv", "key", "get", "k", "--binding", "CACHE"]);
    assert_eq!(got.stdout, b"top");

    // Environments do not inherit bindings: SESSIONS is top-level only.
    let run = p.fails(&[
        "kv",
        "key",
        "get",
        "k",
        "--binding",
        "SESSIONS",
        "--env",
        "staging",
    ]);
    assert_contains(&run.stderr, "configured bindings: CACHE");

    p.ok(&[
        "d1",
        "execute",
        "DB",
        "--command",
        "CREATE TABLE only_staging (a)",
        "--env",
        "staging",
    ]);
    assert!(p.data().d1_database("staging-db-id").is_file());
    p.ok(&[
        "d1",
        "execute",
        "staging-db",
        "--command",
        "SELECT * FROM only_staging",
        "--env",
        "staging",
    ]);
    let run = p.fails(&[
        "d1",
        "execute",
        "DB",
        "--command",
        "SELECT * FROM only_staging",
    ]);
    assert_contains(&run.stderr, "no such table: only_staging");

    let run = p.run_with_stdin(
        &[
            "r2",
            "object",
            "put",
            "staging-files/o",
            "--pipe",
            "--env",
            "staging",
        ],
        b"s",
    );
    assert!(run.success, "{}", run.stderr);
    assert!(p.data().r2_bucket("staging-files").is_dir());
    let run = p.fails(&["r2", "object", "get", "staging-files/o", "--pipe"]);
    assert_contains(&run.stderr, "No R2 bucket named \"staging-files\"");

    let run = p.fails(&["kv", "key", "list", "--binding", "CACHE", "--env", "prod"]);
    assert_contains(&run.stderr, "prod");
    assert_contains(&run.stderr, "staging");

    // `hearth config` shows the environment applied.
    let config = p.ok(&["config", "--env", "staging"]).json();
    assert_eq!(config["kv_namespaces"][0]["id"], json!("staging-cache-id"));
    assert_eq!(config["name"], json!("app-staging"));
}

#[test]
fn data_is_shared_with_a_process_holding_it_open() {
    let p = Project::new();
    // Opened before the CLI ever runs, and kept open throughout.
    std::fs::create_dir_all(p.path().join(".hearth/kv")).unwrap();
    let kv = KvNamespace::open(
        &p.data().kv_namespace("cache-id"),
        SystemClock::shared(),
        KvLimits::default(),
    )
    .unwrap();
    let db = D1Database::open(p.data().d1_database("db-id")).unwrap();
    db.exec("CREATE TABLE events (name TEXT)").unwrap();

    p.ok(&["kv", "key", "put", "from-cli", "1", "--binding", "CACHE"]);
    let entry = kv.get_entry("from-cli", None).unwrap().unwrap();
    assert_eq!(entry.text(), "1");

    kv.put("from-process", "2", &PutOptions::new()).unwrap();
    let got = p.ok(&["kv", "key", "get", "from-process", "--binding", "CACHE"]);
    assert_eq!(got.stdout, b"2");

    p.ok(&[
        "d1",
        "execute",
        "DB",
        "--command",
        "INSERT INTO events VALUES ('cli')",
    ]);
    let row = db
        .prepare("SELECT name FROM events")
        .first()
        .unwrap()
        .unwrap();
    assert_eq!(row.get("name"), Some(&D1Value::Text("cli".into())));

    db.prepare("INSERT INTO events VALUES ('process')")
        .run()
        .unwrap();
    let out = p.sql_json("SELECT name FROM events ORDER BY rowid");
    assert_eq!(
        out[0]["results"],
        json!([{"name": "cli"}, {"name": "process"}])
    );

    // An R2 bucket held open by this process is readable and writable too.
    let bucket = R2Bucket::open(
        p.data().r2_bucket("files"),
        SystemClock::shared(),
        R2Limits::default(),
    )
    .unwrap();
    let run = p.run_with_stdin(
        &["r2", "object", "put", "files/shared", "--pipe"],
        b"cli-body",
    );
    assert!(run.success, "{}", run.stderr);
    let got = bucket
        .get("shared", &R2GetOptions::default())
        .unwrap()
        .and_then(|g| g.into_body())
        .unwrap();
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut { got.body }, &mut body).unwrap();
    assert_eq!(body, b"cli-body");
}

// ---------------------------------------------------------------- config

#[test]
fn bad_config_names_the_file_and_field() {
    let p = Project::new();
    std::fs::write(
        p.path().join("wrangler.toml"),
        "name = \"app\"\n\n[[kv_namespaces]]\nid = \"abc\"\n\n[[d1_databases]]\nbinding = 3\n",
    )
    .unwrap();
    let run = p.fails(&["kv", "key", "list", "--binding", "CACHE"]);
    assert_contains(
        &run.stderr,
        "wrangler.toml: kv_namespaces[0].binding: missing",
    );
    assert_contains(
        &run.stderr,
        "wrangler.toml: d1_databases[0].binding: expected a string, found 3",
    );
    assert!(run.stdout.is_empty());
    assert!(!p.path().join(".hearth").exists(), "nothing opened");

    std::fs::write(p.path().join("wrangler.toml"), "name = \"app\n").unwrap();
    let run = p.fails(&["config"]);
    assert_contains(&run.stderr, "wrangler.toml: line 1, column");

    let empty = tempfile::tempdir().unwrap();
    let run = p.fails(&["config", "--config", empty.path().to_str().unwrap()]);
    assert!(!run.stderr.is_empty());
}

#[test]
fn remote_is_refused_with_an_explanation() {
    let p = Project::new();
    let run = p.fails(&["kv", "key", "list", "--binding", "CACHE", "--remote"]);
    assert_contains(&run.stderr, "--remote is not supported");
    // --local is what Hearth always does.
    p.ok(&["kv", "key", "list", "--binding", "CACHE", "--local"]);
    p.ok(&[
        "d1",
        "execute",
        "DB",
        "--command",
        "SELECT 1",
        "--local",
        "-y",
    ]);
}

#[test]
fn queues_send_refuses_a_queue_no_config_declares() {
    let p = Project::new();
    p.file(
        "wrangler.toml",
        format!(
            "{WRANGLER_TOML}\n[[queues.producers]]\nbinding = \"JOBS\"\nqueue = \"jobs\"\n\n[[queues.consumers]]\nqueue = \"jobs\"\ndead_letter_queue = \"jobs-dlq\"\n"
        ),
    );
    let run = p.fails(&["queues", "send", "nope", "hi"]);
    assert_contains(&run.stderr, "Queue \"nope\" is not declared");
    assert_contains(&run.stderr, "declared queues: jobs, jobs-dlq");
    // Nothing was created: the queue is not listed afterwards.
    let list = p.ok(&["queues", "list"]).stdout();
    assert!(!list.contains("nope"), "{list}");

    p.ok(&["queues", "send", "jobs", "hi"]);
    p.ok(&["queues", "send", "jobs-dlq", "hi"]);
    let list = p.ok(&["queues", "list"]).stdout();
    assert!(list.contains("jobs\t1"), "{list}");
}
