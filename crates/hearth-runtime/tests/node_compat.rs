//! Node.js built-ins under `nodejs_compat`: which flags and dates make them
//! importable (with and without `node:`), the `Buffer`/`process` globals,
//! `process.env`, the errors for modules not provided, and each module's
//! behaviour as Node documents it. Each module's checks are a worker under
//! `tests/node_compat/` that compares values and reports the mismatches.

use std::collections::BTreeMap;
use std::path::Path;

use hearth_runtime::{IsolatePool, WorkerConfig, WorkerRequest};

/// Compares JSON-serialised values and collects the mismatches; `run` is
/// the module's checks.
const HARNESS: &str = r#"
const failures = [];
let checks = 0;
const show = (v) => {
  try {
    return JSON.stringify(v, (k, x) => (typeof x === 'bigint' ? x + 'n' : x === undefined ? '<undefined>' : x));
  } catch {
    return String(v);
  }
};
let last = '(none)';
globalThis.eq = (name, actual, expected) => {
  checks++;
  last = name;
  if (show(actual) !== show(expected)) failures.push(name + ': got ' + show(actual) + ', want ' + show(expected));
};
globalThis.throwsLike = (name, fn, want) => {
  checks++;
  last = name;
  try {
    fn();
    failures.push(name + ': did not throw');
  } catch (e) {
    for (const [k, v] of Object.entries(want)) {
      const got = k === 'instanceOf' ? e instanceof v : e[k];
      const ok = v instanceof RegExp ? v.test(String(got)) : k === 'instanceOf' ? got : got === v;
      if (!ok) failures.push(name + ': error ' + k + ' is ' + show(got) + ' (' + e + ')');
    }
  }
};
export default {
  async fetch() {
    try {
      // A check that never settles is reported with the last one passed.
      let watchdog;
      const hung = new Promise((resolve) => {
        watchdog = setTimeout(() => resolve(true), 10000);
      });
      if (await Promise.race([run().then(() => false), hung])) failures.push('run hung after check ' + JSON.stringify(last));
      clearTimeout(watchdog);
    } catch (e) {
      failures.push('run threw: ' + (e && e.stack ? e + '\n' + e.stack : String(e)));
    }
    return new Response(JSON.stringify({ checks, failures }));
  },
};
"#;

fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, contents) in files {
        let full = dir.path().join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, contents).unwrap();
    }
    dir
}

fn config(root: &Path, main: &str, date: &str, flags: &[&str]) -> WorkerConfig {
    let mut config = WorkerConfig::new(root.join(main));
    config.module_root = Some(root.to_path_buf());
    config.isolates = 1;
    config.compatibility_date = Some(date.to_string());
    config.compatibility_flags = flags.iter().map(|f| f.to_string()).collect();
    config
}

fn request(path: &str) -> WorkerRequest {
    WorkerRequest::new("test", "GET", format!("http://example.com{path}"))
}

async fn get(pool: &IsolatePool, path: &str) -> String {
    let r = pool.dispatch(request(path)).await.unwrap();
    String::from_utf8(r.body.to_vec()).unwrap()
}

fn stop(pool: IsolatePool) {
    pool.shutdown();
    pool.join();
}

/// Runs the checks in `tests/node_compat/<file>` under `nodejs_compat` with
/// a current date, and fails with every mismatch it reports.
async fn run_checks(file: &str, min_checks: u64) {
    run_checks_with(file, min_checks, &[]).await;
}

/// [`run_checks`] with more files in the project.
async fn run_checks_with(file: &str, min_checks: u64, extra: &[(&str, &str)]) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/node_compat")
        .join(file);
    let checks = std::fs::read_to_string(&path).unwrap();
    let main = format!("{checks}\n{HARNESS}");
    let mut files = vec![("index.js", main.as_str())];
    files.extend_from_slice(extra);
    let dir = project(&files);
    let pool = IsolatePool::start(config(
        dir.path(),
        "index.js",
        "2025-09-01",
        &["nodejs_compat"],
    ))
    .unwrap_or_else(|e| panic!("{file}: {e}"));
    let body = get(&pool, "/").await;
    stop(pool);
    let report: serde_json::Value =
        serde_json::from_str(&body).unwrap_or_else(|_| panic!("{file}: {body}"));
    let failures = report["failures"].as_array().unwrap();
    assert!(
        failures.is_empty(),
        "{file}: {} failed:\n{}",
        failures.len(),
        failures
            .iter()
            .map(|f| f.as_str().unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    );
    let checks = report["checks"].as_u64().unwrap();
    assert!(checks >= min_checks, "{file}: only {checks} checks ran");
}

/// A worker answering with `JSON.stringify(value)`.
fn answer(imports: &str, value: &str) -> String {
    format!(
        "{imports}\nexport default {{ fetch() {{ return new Response(JSON.stringify({value})); }} }};\n"
    )
}

fn start_err(dir: &Path, main: &str, date: &str, flags: &[&str]) -> String {
    match IsolatePool::start(config(dir, main, date, flags)) {
        Ok(pool) => {
            stop(pool);
            panic!("{main} started")
        }
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn nodejs_compat_before_v2_needs_the_prefix_and_has_no_globals() {
    let dir = project(&[
        (
            "prefixed.js",
            &answer(
                "import { EventEmitter } from 'node:events';",
                "[typeof EventEmitter, typeof globalThis.Buffer, typeof globalThis.process, typeof globalThis.setImmediate]",
            ),
        ),
        (
            "bare.js",
            &answer("import { EventEmitter } from 'events';", "1"),
        ),
    ]);
    let pool = IsolatePool::start(config(
        dir.path(),
        "prefixed.js",
        "2024-09-22",
        &["nodejs_compat"],
    ))
    .unwrap();
    assert_eq!(
        get(&pool, "/").await,
        r#"["function","undefined","undefined","undefined"]"#
    );
    stop(pool);
    let err = start_err(dir.path(), "bare.js", "2024-09-22", &["nodejs_compat"]);
    assert!(
        err.contains(
            "No such module \"events\" imported from bare.js: import Node.js built-ins as \"node:events\""
        ),
        "{err}"
    );
}

#[tokio::test]
async fn v2_resolves_bare_names_first_and_installs_buffer_and_process() {
    let dir = project(&[
        (
            "index.js",
            &answer(
                "import { EventEmitter } from 'events';\nimport { Buffer as B } from 'buffer';\nimport cjs from './lib.cjs';\nimport { promisify } from './reexport.cjs';",
                "[typeof EventEmitter, Buffer === B, typeof process.nextTick, cjs, global === globalThis, typeof setImmediate, typeof promisify]",
            ),
        ),
        (
            "lib.cjs",
            "const EE = require('events');\nconst { Buffer } = require('node:buffer');\nconst util = require('util');\n\
             module.exports = [typeof EE, EE === EE.EventEmitter, Buffer.from('hi').toString('hex'), typeof util.promisify];\n",
        ),
        // CommonJS passing a built-in on exposes its names to importers.
        ("reexport.cjs", "module.exports = require('node:util');\n"),
        // A package named like a built-in does not shadow it (as in Node).
        (
            "node_modules/events/package.json",
            r#"{ "name": "events", "main": "index.js" }"#,
        ),
        (
            "node_modules/events/index.js",
            "module.exports = 'the npm package';\n",
        ),
    ]);
    // nodejs_compat from 2024-09-23 is v2; nodejs_compat_v2 is v2 at any date.
    for (date, flag) in [
        ("2024-09-23", "nodejs_compat"),
        ("2023-01-01", "nodejs_compat_v2"),
    ] {
        let pool = IsolatePool::start(config(dir.path(), "index.js", date, &[flag])).unwrap();
        assert_eq!(
            get(&pool, "/").await,
            r#"["function",true,"function",["function",true,"6869","function"],true,"function","function"]"#,
            "{date} {flag}"
        );
        stop(pool);
    }
    // A hashbang stays on the first line; line numbers stay the file's.
    let bang = project(&[(
        "index.js",
        "#!/usr/bin/env node\nexport default { fetch() { return new Response(typeof Buffer + ' ' + new Error('x').stack.split('\\n').find((l) => l.includes('index.js')).trim()); } };\n",
    )]);
    let pool = IsolatePool::start(config(
        bang.path(),
        "index.js",
        "2025-01-01",
        &["nodejs_compat"],
    ))
    .unwrap();
    let body = get(&pool, "/").await;
    assert!(body.starts_with("function at fetch (index.js:2:"), "{body}");
    stop(pool);
    // Without the flag the npm package is what `events` names.
    let dir2 = project(&[
        (
            "index.js",
            &answer("import e from 'events';", "[e, typeof globalThis.Buffer]"),
        ),
        (
            "node_modules/events/package.json",
            r#"{ "name": "events", "main": "index.js" }"#,
        ),
        (
            "node_modules/events/index.js",
            "module.exports = 'the npm package';\n",
        ),
    ]);
    let pool = IsolatePool::start(config(dir2.path(), "index.js", "2025-01-01", &[])).unwrap();
    assert_eq!(get(&pool, "/").await, r#"["the npm package","undefined"]"#);
    stop(pool);
}

#[tokio::test]
async fn modules_not_provided_yet_are_named_without_suggesting_the_flag() {
    let dir = project(&[
        (
            "fs.js",
            &answer("import cp from 'node:child_process';", "1"),
        ),
        ("bare.js", &answer("import v8 from 'v8';", "1")),
    ]);
    let err = start_err(dir.path(), "fs.js", "2025-01-01", &["nodejs_compat"]);
    assert!(
        err.contains("No such module \"node:child_process\" imported from fs.js: \"node:child_process\" is not implemented yet in Hearth (nodejs_compat is on; Hearth provides node:assert, "),
        "{err}"
    );
    assert!(
        err.contains("node:events") && !err.contains("need the"),
        "{err}"
    );
    let err = start_err(dir.path(), "bare.js", "2025-01-01", &["nodejs_compat"]);
    assert!(
        err.contains("\"node:v8\" is not implemented yet in Hearth"),
        "{err}"
    );
    // Without the flag the message still names the flag.
    let err = start_err(dir.path(), "fs.js", "2025-01-01", &[]);
    assert!(
        err.contains("need the \"nodejs_compat\" compatibility flag"),
        "{err}"
    );
}

#[tokio::test]
async fn process_env_holds_vars_and_secrets_from_2025_04_01() {
    let dir = project(&[(
        "index.js",
        &answer(
            "import process, { env } from 'node:process';",
            "[env.GREETING, env.API_KEY, env.LIMITS, env.NODE_ENV, process.env === env, process.platform, process.cwd(), typeof process.version]",
        ),
    )]);
    let mut vars = BTreeMap::new();
    vars.insert("GREETING".to_string(), serde_json::json!("hello"));
    vars.insert("LIMITS".to_string(), serde_json::json!({ "max": 3 }));
    let mut secrets = BTreeMap::new();
    secrets.insert("API_KEY".to_string(), "s3cret".to_string());
    let cases = [
        (
            "2025-04-01",
            &["nodejs_compat"][..],
            r#"["hello","s3cret","{\"max\":3}","production",true,"linux","/bundle","string"]"#,
        ),
        (
            "2025-03-31",
            &["nodejs_compat"][..],
            r#"[null,null,null,"production",true,"linux","/bundle","string"]"#,
        ),
        (
            "2024-01-01",
            &["nodejs_compat", "nodejs_compat_populate_process_env"][..],
            r#"["hello","s3cret","{\"max\":3}","production",true,"linux","/bundle","string"]"#,
        ),
        (
            "2025-06-01",
            &["nodejs_compat", "nodejs_compat_do_not_populate_process_env"][..],
            r#"[null,null,null,"production",true,"linux","/bundle","string"]"#,
        ),
    ];
    for (date, flags, want) in cases {
        let mut c = config(dir.path(), "index.js", date, flags);
        c.vars = vars.clone();
        c.secrets = secrets.clone();
        let pool = IsolatePool::start(c).unwrap();
        assert_eq!(get(&pool, "/").await, want, "{date} {flags:?}");
        stop(pool);
    }
}

#[tokio::test]
async fn events() {
    run_checks("events.js", 40).await;
}

#[tokio::test]
async fn buffer() {
    run_checks("buffer.js", 100).await;
}

#[tokio::test]
async fn util() {
    run_checks("util.js", 70).await;
}

#[tokio::test]
async fn path_string_decoder_url_querystring() {
    run_checks("path_url_qs.js", 45).await;
}

#[tokio::test]
async fn assert_timers_process_diagnostics_channel() {
    run_checks("assert_timers_process.js", 55).await;
}

#[tokio::test]
async fn crypto() {
    run_checks("crypto.js", 80).await;
}

#[tokio::test]
async fn stream() {
    run_checks("stream.js", 55).await;
}

#[tokio::test]
async fn async_hooks() {
    run_checks("async_hooks.js", 15).await;
}

/// A context a request enters is gone when the next request starts, even
/// one the worker left without leaving it.
#[tokio::test]
async fn async_local_storage_does_not_leak_between_requests() {
    let dir = project(&[(
        "index.js",
        "import { AsyncLocalStorage } from 'node:async_hooks';\n\
         const als = new AsyncLocalStorage();\n\
         export default { async fetch(req) {\n\
           const seen = String(als.getStore());\n\
           if (new URL(req.url).pathname === '/enter') { als.enterWith('left behind'); await null; }\n\
           if (new URL(req.url).pathname === '/run') return als.run('inside', async () => { await new Promise((r) => setTimeout(r, 0)); return new Response(seen + ' ' + als.getStore()); });\n\
           return new Response(seen);\n\
         } };\n",
    )]);
    let pool = IsolatePool::start(config(
        dir.path(),
        "index.js",
        "2025-06-01",
        &["nodejs_compat"],
    ))
    .unwrap();
    assert_eq!(get(&pool, "/enter").await, "undefined");
    assert_eq!(get(&pool, "/").await, "undefined");
    assert_eq!(get(&pool, "/run").await, "undefined inside");
    assert_eq!(get(&pool, "/").await, "undefined");
    stop(pool);
}

#[tokio::test]
async fn os_dns_and_module() {
    run_checks("os_dns_module.js", 40).await;
}

#[tokio::test]
async fn zlib() {
    run_checks("zlib.js", 35).await;
}

#[tokio::test]
async fn fs() {
    run_checks_with(
        "fs.js",
        40,
        &[
            ("data/config.json", r#"{ "value": 42 }"#),
            ("secret.txt", "never imported"),
            (
                "uses.js",
                "import config from './data/config.json';\nexport default config;\n",
            ),
        ],
    )
    .await;
}

/// Each request has its own /tmp, emptied when it ends; node:fs needs
/// compatibility date 2025-09-01 or the enable flag.
#[tokio::test]
async fn fs_tmp_is_per_request_and_fs_follows_its_flags() {
    let dir = project(&[(
        "index.js",
        "import { writeFileSync, readdirSync } from 'node:fs';\n\
         export default { async fetch(req) {\n\
           const before = readdirSync('/tmp');\n\
           writeFileSync('/tmp/' + new URL(req.url).pathname.slice(1), 'x');\n\
           await new Promise((r) => setTimeout(r, 5));\n\
           return new Response(JSON.stringify([before, readdirSync('/tmp')]));\n\
         } };\n",
    )]);
    let pool = IsolatePool::start(config(
        dir.path(),
        "index.js",
        "2025-09-01",
        &["nodejs_compat"],
    ))
    .unwrap();
    let (a, b) = tokio::join!(get(&pool, "/a"), get(&pool, "/b"));
    assert_eq!(a, r#"[[],["a"]]"#);
    assert_eq!(b, r#"[[],["b"]]"#);
    assert_eq!(get(&pool, "/c").await, r#"[[],["c"]]"#);
    stop(pool);
    let pool = IsolatePool::start(config(
        dir.path(),
        "index.js",
        "2024-06-01",
        &["nodejs_compat", "enable_nodejs_fs_module"],
    ))
    .unwrap();
    assert_eq!(get(&pool, "/d").await, r#"[[],["d"]]"#);
    stop(pool);
    let err = start_err(dir.path(), "index.js", "2025-08-31", &["nodejs_compat"]);
    assert!(
        err.contains("node:fs needs compatibility date 2025-09-01 or later, or the \"enable_nodejs_fs_module\" flag"),
        "{err}"
    );
    let err = start_err(
        dir.path(),
        "index.js",
        "2025-09-01",
        &["nodejs_compat", "disable_nodejs_fs_module"],
    );
    assert!(err.contains("No such module \"node:fs\""), "{err}");
}
