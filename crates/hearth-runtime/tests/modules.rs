//! Module loading: `node_modules` resolution on the package.json shapes real
//! packages use, CommonJS, TypeScript with original positions in errors,
//! and the list of loaded files.

use std::path::{Path, PathBuf};

use hearth_runtime::modules::{ImportKind, ModuleResolver, Resolved};
use hearth_runtime::{DispatchError, IsolatePool, StartError, WorkerConfig, WorkerRequest};

/// Writes `files` (path, contents) under a fresh project directory.
fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), files);
    dir
}

fn write(root: &Path, files: &[(&str, &str)]) {
    for (path, contents) in files {
        let full = root.join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, contents).unwrap();
    }
}

fn config(root: &Path, main: &str) -> WorkerConfig {
    let mut config = WorkerConfig::new(root.join(main));
    config.module_root = Some(root.to_path_buf());
    config.isolates = 1;
    config
}

fn start(root: &Path, main: &str) -> Result<IsolatePool, StartError> {
    IsolatePool::start(config(root, main))
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

/// A worker answering with `JSON.stringify(value)` of the given expression.
fn answer(imports: &str, value: &str) -> String {
    format!(
        "{imports}\nexport default {{ fetch() {{ return new Response(JSON.stringify({value})); }} }};\n"
    )
}

fn real(p: &Path) -> PathBuf {
    p.canonicalize().unwrap()
}

fn resolve(root: &Path, importer: &str, spec: &str) -> Result<String, String> {
    let r = ModuleResolver::new(root).unwrap();
    r.resolve(importer, spec, ImportKind::Import)
        .map(|r| match r {
            Resolved::File(f) => f,
            Resolved::Builtin(b) => format!("builtin:{b}"),
        })
        .map_err(|e| e.to_string())
}

#[test]
fn conditional_exports_take_the_first_key_in_object_order_that_workers_honour() {
    let dir = project(&[
        (
            "node_modules/cond/package.json",
            r#"{ "name": "cond", "exports": { ".": {
                "node": "./node.js", "workerd": "./workerd.js", "browser": "./browser.js", "default": "./default.js" } } }"#,
        ),
        ("node_modules/cond/node.js", ""),
        ("node_modules/cond/workerd.js", ""),
        ("node_modules/cond/browser.js", ""),
        ("node_modules/cond/default.js", ""),
        (
            "node_modules/order/package.json",
            r#"{ "exports": { "import": "./import.mjs", "workerd": "./workerd.mjs", "require": "./require.cjs" } }"#,
        ),
        ("node_modules/order/import.mjs", ""),
        ("node_modules/order/workerd.mjs", ""),
        ("node_modules/order/require.cjs", ""),
        (
            "node_modules/plain/package.json",
            r#"{ "exports": "./lib/plain.js", "main": "./ignored.js" }"#,
        ),
        ("node_modules/plain/lib/plain.js", ""),
        ("index.js", ""),
    ]);
    let root = dir.path();
    // `node` is not a Workers condition; `workerd` comes before `browser`.
    assert_eq!(
        resolve(root, "index.js", "cond"),
        Ok("node_modules/cond/workerd.js".into())
    );
    // The object's order decides, not the list's: `import` is listed first.
    assert_eq!(
        resolve(root, "index.js", "order"),
        Ok("node_modules/order/import.mjs".into())
    );
    // For require(), `import` does not apply and `workerd` is the first
    // key that does.
    let r = ModuleResolver::new(root).unwrap();
    let order = r.resolve("index.js", "order", ImportKind::Require).unwrap();
    assert_eq!(order.name(), "node_modules/order/workerd.mjs");
    assert_eq!(
        resolve(root, "index.js", "plain"),
        Ok("node_modules/plain/lib/plain.js".into())
    );
}

#[test]
fn nested_conditions_and_arrays() {
    let dir = project(&[
        (
            "node_modules/nested/package.json",
            r#"{ "exports": { ".": {
                "node": { "import": "./node.mjs" },
                "worker": { "types": "./index.d.ts", "import": "./worker.mjs", "require": "./worker.cjs" },
                "default": "./default.mjs" },
              "./fallback": [ "./missing-invalid/../x.js", { "browser": "./browser.mjs" } ] } }"#,
        ),
        ("node_modules/nested/node.mjs", ""),
        ("node_modules/nested/worker.mjs", ""),
        ("node_modules/nested/default.mjs", ""),
        ("node_modules/nested/browser.mjs", ""),
        (
            "node_modules/only-node/package.json",
            r#"{ "exports": { "node": "./node.js" } }"#,
        ),
        ("node_modules/only-node/node.js", ""),
        ("index.js", ""),
    ]);
    let root = dir.path();
    assert_eq!(
        resolve(root, "index.js", "nested"),
        Ok("node_modules/nested/worker.mjs".into())
    );
    // An invalid array entry is skipped for the next one.
    assert_eq!(
        resolve(root, "index.js", "nested/fallback"),
        Ok("node_modules/nested/browser.mjs".into())
    );
    let pj = real(root).join("node_modules/only-node/package.json");
    assert_eq!(
        resolve(root, "index.js", "only-node"),
        Err(format!(
            "Package subpath '.' is not defined by \"exports\" in {} imported from index.js",
            pj.display()
        ))
    );
}

#[test]
fn subpath_patterns_exclusions_and_unexported_paths() {
    let dir = project(&[
        (
            "node_modules/pat/package.json",
            r#"{ "exports": {
                ".": "./index.js",
                "./features/*": "./src/features/*.js",
                "./features/internal/*": null,
                "./utils/*.js": "./lib/utils/*.mjs",
                "./package.json": "./package.json",
                "./escape/*": "./../*" } }"#,
        ),
        ("node_modules/pat/index.js", ""),
        ("node_modules/pat/src/features/a.js", ""),
        ("node_modules/pat/src/features/deep/b.js", ""),
        ("node_modules/pat/src/features/internal/secret.js", ""),
        ("node_modules/pat/lib/utils/x.mjs", ""),
        ("node_modules/pat/hidden.js", ""),
        ("index.js", ""),
    ]);
    let root = dir.path();
    assert_eq!(
        resolve(root, "index.js", "pat/features/a"),
        Ok("node_modules/pat/src/features/a.js".into())
    );
    assert_eq!(
        resolve(root, "index.js", "pat/features/deep/b"),
        Ok("node_modules/pat/src/features/deep/b.js".into())
    );
    assert_eq!(
        resolve(root, "index.js", "pat/utils/x.js"),
        Ok("node_modules/pat/lib/utils/x.mjs".into())
    );
    assert_eq!(
        resolve(root, "index.js", "pat/package.json"),
        Ok("node_modules/pat/package.json".into())
    );
    let pj = real(root).join("node_modules/pat/package.json");
    // The longer pattern wins, and its null excludes the subtree.
    assert_eq!(
        resolve(root, "index.js", "pat/features/internal/secret"),
        Err(format!(
            "Package subpath './features/internal/secret' is not defined by \"exports\" in {} imported from index.js",
            pj.display()
        ))
    );
    // A file that exists but is not exported stays private.
    assert_eq!(
        resolve(root, "index.js", "pat/hidden.js"),
        Err(format!(
            "Package subpath './hidden.js' is not defined by \"exports\" in {} imported from index.js",
            pj.display()
        ))
    );
    assert_eq!(
        resolve(root, "index.js", "pat/escape/x"),
        Err(format!(
            "Invalid \"exports\" target './../*' defined in the package config {} imported from index.js",
            pj.display()
        ))
    );
}

#[test]
fn module_field_before_main_then_index_js() {
    let dir = project(&[
        (
            "node_modules/dual/package.json",
            r#"{ "main": "./cjs/index.js", "module": "./esm/index.js" }"#,
        ),
        ("node_modules/dual/cjs/index.js", ""),
        ("node_modules/dual/esm/index.js", ""),
        (
            "node_modules/mainonly/package.json",
            r#"{ "main": "lib/entry" }"#,
        ),
        ("node_modules/mainonly/lib/entry.js", ""),
        ("node_modules/mainonly/lib/other.js", ""),
        ("node_modules/bare/package.json", r#"{ "name": "bare" }"#),
        ("node_modules/bare/index.js", ""),
        ("node_modules/nopkgjson/index.js", ""),
        ("index.js", ""),
    ]);
    let root = dir.path();
    assert_eq!(
        resolve(root, "index.js", "dual"),
        Ok("node_modules/dual/esm/index.js".into())
    );
    assert_eq!(
        resolve(root, "index.js", "mainonly"),
        Ok("node_modules/mainonly/lib/entry.js".into())
    );
    // Without "exports" every file is reachable, extension optional.
    assert_eq!(
        resolve(root, "index.js", "mainonly/lib/other"),
        Ok("node_modules/mainonly/lib/other.js".into())
    );
    assert_eq!(
        resolve(root, "index.js", "bare"),
        Ok("node_modules/bare/index.js".into())
    );
    assert_eq!(
        resolve(root, "index.js", "nopkgjson"),
        Ok("node_modules/nopkgjson/index.js".into())
    );
}

#[test]
fn imports_field_scoped_packages_and_self_reference() {
    let dir = project(&[
        (
            "package.json",
            r##"{ "name": "my-worker", "type": "module",
                "exports": { "./helpers": "./src/helpers.js" },
                "imports": {
                  "#lib/*": "./src/lib/*.js",
                  "#dep": { "workerd": "@scope/pkg/sub", "default": "./src/fallback.js" },
                  "#missing": "./src/nope.js" } }"##,
        ),
        ("src/index.js", ""),
        ("src/helpers.js", ""),
        ("src/lib/a.js", ""),
        ("src/fallback.js", ""),
        (
            "node_modules/@scope/pkg/package.json",
            r#"{ "name": "@scope/pkg", "exports": { ".": "./main.js", "./sub": { "import": "./sub.mjs" } } }"#,
        ),
        ("node_modules/@scope/pkg/main.js", ""),
        ("node_modules/@scope/pkg/sub.mjs", ""),
    ]);
    let root = dir.path();
    assert_eq!(
        resolve(root, "src/index.js", "#lib/a"),
        Ok("src/lib/a.js".into())
    );
    assert_eq!(
        resolve(root, "src/index.js", "#dep"),
        Ok("node_modules/@scope/pkg/sub.mjs".into())
    );
    assert_eq!(
        resolve(root, "src/index.js", "@scope/pkg"),
        Ok("node_modules/@scope/pkg/main.js".into())
    );
    assert_eq!(
        resolve(root, "src/index.js", "my-worker/helpers"),
        Ok("src/helpers.js".into())
    );
    let pj = real(root).join("package.json");
    assert_eq!(
        resolve(root, "src/index.js", "#nothing"),
        Err(format!(
            "Package import specifier '#nothing' is not defined in package {} imported from src/index.js",
            pj.display()
        ))
    );
    let missing = real(root).join("src/nope.js");
    assert!(
        resolve(root, "src/index.js", "#missing")
            .unwrap_err()
            .starts_with(&format!(
                "Cannot find module '#missing' imported from src/index.js; looked for: {}",
                missing.display()
            ))
    );
}

#[test]
fn nearest_node_modules_wins_and_the_walk_stops_at_the_root() {
    let outer = tempfile::tempdir().unwrap();
    write(
        outer.path(),
        &[
            // Above the project root: never looked at.
            ("node_modules/above/index.js", ""),
            (
                "proj/node_modules/b/package.json",
                r#"{ "version": "1.0.0" }"#,
            ),
            ("proj/node_modules/b/index.js", ""),
            ("proj/node_modules/a/index.js", ""),
            ("proj/node_modules/a/node_modules/b/index.js", ""),
            ("proj/src/index.js", ""),
        ],
    );
    let root = outer.path().join("proj");
    assert_eq!(
        resolve(&root, "src/index.js", "b"),
        Ok("node_modules/b/index.js".into())
    );
    assert_eq!(
        resolve(&root, "node_modules/a/index.js", "b"),
        Ok("node_modules/a/node_modules/b/index.js".into())
    );
    let r = real(&root);
    assert_eq!(
        resolve(&root, "src/index.js", "above"),
        Err(format!(
            "Cannot find package 'above' imported from src/index.js; looked in: {}, {}",
            r.join("src/node_modules/above").display(),
            r.join("node_modules/above").display()
        ))
    );
}

#[cfg(unix)]
#[test]
fn symlinks_leaving_the_root_are_refused_and_inner_ones_use_the_real_path() {
    let outer = tempfile::tempdir().unwrap();
    write(
        outer.path(),
        &[
            ("secret/index.js", "export default 1;"),
            ("proj/index.js", ""),
            (
                "proj/node_modules/.pnpm/real@1.0.0/node_modules/real/index.js",
                "",
            ),
        ],
    );
    let root = outer.path().join("proj");
    std::os::unix::fs::symlink(outer.path().join("secret"), root.join("node_modules/leak"))
        .unwrap();
    std::os::unix::fs::symlink(
        root.join("node_modules/.pnpm/real@1.0.0/node_modules/real"),
        root.join("node_modules/real"),
    )
    .unwrap();
    assert_eq!(
        resolve(&root, "index.js", "real"),
        Ok("node_modules/.pnpm/real@1.0.0/node_modules/real/index.js".into())
    );
    assert_eq!(
        resolve(&root, "index.js", "leak"),
        Err(format!(
            "Cannot import 'leak' from index.js: it leaves the worker's module root {}",
            real(&root).display()
        ))
    );
    assert_eq!(
        resolve(&root, "index.js", "../secret/index.js"),
        Err(format!(
            "Cannot import '../secret/index.js' from index.js: it leaves the worker's module root {}",
            real(&root).display()
        ))
    );
}

#[test]
fn relative_imports_probe_extensions_typescript_siblings_and_index_files() {
    let dir = project(&[
        ("src/index.ts", ""),
        ("src/util.ts", ""),
        ("src/lib/index.ts", ""),
        ("src/data.json", "{}"),
        ("src/both.js", ""),
        ("src/both.ts", ""),
    ]);
    let root = dir.path();
    assert_eq!(
        resolve(root, "src/index.ts", "./util.js"),
        Ok("src/util.ts".into())
    );
    assert_eq!(
        resolve(root, "src/index.ts", "./util"),
        Ok("src/util.ts".into())
    );
    assert_eq!(
        resolve(root, "src/index.ts", "./lib"),
        Ok("src/lib/index.ts".into())
    );
    assert_eq!(
        resolve(root, "src/index.ts", "./data.json"),
        Ok("src/data.json".into())
    );
    // A real .js file wins over its .ts namesake.
    assert_eq!(
        resolve(root, "src/index.ts", "./both.js"),
        Ok("src/both.js".into())
    );
    assert_eq!(
        resolve(root, "src/index.ts", "cloudflare:workers"),
        Ok("builtin:cloudflare:workers".into())
    );
    let err = resolve(root, "src/index.ts", "./nope.js").unwrap_err();
    let base = real(root).join("src/nope");
    assert!(
        err.starts_with(&format!(
            "Cannot find module './nope.js' imported from src/index.ts; looked for: {}.js, {}.ts, {}.tsx, {}.js.tsx",
            base.display(),
            base.display(),
            base.display(),
            base.display()
        )),
        "{err}"
    );
}

#[tokio::test]
async fn missing_package_fails_start_up_naming_every_place_looked() {
    let dir = project(&[(
        "src/index.ts",
        "import { Hono } from 'hono';\nexport default new Hono();\n",
    )]);
    let err = start(dir.path(), "src/index.ts").err().unwrap();
    let r = real(dir.path());
    let expected = format!(
        "Cannot find package 'hono' imported from src/index.ts; looked in: {}, {}",
        r.join("src/node_modules/hono").display(),
        r.join("node_modules/hono").display()
    );
    assert!(err.to_string().contains(&expected), "{err}");
}

#[tokio::test]
async fn node_builtins_name_the_module_and_the_flag() {
    let dir = project(&[
        (
            "index.js",
            "import fs from 'node:fs';\nexport default {};\n",
        ),
        (
            "bare.js",
            "import { EventEmitter } from 'events';\nexport default {};\n",
        ),
    ]);
    let err = start(dir.path(), "index.js").err().unwrap();
    assert!(
        err.to_string().contains(
            "No such module \"node:fs\" imported from index.js: Node.js built-in modules are not provided (on Workers they need the \"nodejs_compat\" compatibility flag)"
        ),
        "{err}"
    );
    let err = start(dir.path(), "bare.js").err().unwrap();
    assert!(
        err.to_string()
            .contains("No such module \"node:events\" imported from bare.js"),
        "{err}"
    );
}

#[tokio::test]
async fn a_worker_runs_on_resolved_packages() {
    let dir = project(&[
        (
            "node_modules/greet/package.json",
            r#"{ "name": "greet", "type": "module", "exports": {
                ".": { "workerd": "./dist/workerd.js", "default": "./dist/node.js" },
                "./fmt/*": "./dist/fmt/*.js" } }"#,
        ),
        (
            "node_modules/greet/dist/workerd.js",
            "import { upper } from '#up';\nexport const greet = (n) => upper('hi ' + n);\n",
        ),
        (
            "node_modules/greet/dist/node.js",
            "export const greet = () => 'wrong build';\n",
        ),
        (
            "node_modules/greet/dist/fmt/bang.js",
            "export default (s) => s + '!';\n",
        ),
        (
            "node_modules/greet/dist/up.js",
            "export const upper = (s) => s.toUpperCase();\n",
        ),
        (
            "node_modules/@acme/version/package.json",
            r#"{ "module": "./esm.js", "main": "./cjs.js" }"#,
        ),
        (
            "node_modules/@acme/version/esm.js",
            "export default '2.0-esm';\n",
        ),
        (
            "node_modules/@acme/version/cjs.js",
            "module.exports = 'cjs';\n",
        ),
        (
            "src/index.js",
            &answer(
                "import { greet } from 'greet';\nimport bang from 'greet/fmt/bang';\nimport version from '@acme/version';",
                "[bang(greet('bob')), version]",
            ),
        ),
    ]);
    // `#up` is the package's own import map.
    let pj = dir.path().join("node_modules/greet/package.json");
    std::fs::write(
        &pj,
        r##"{ "name": "greet", "type": "module",
            "imports": { "#up": "./dist/up.js" },
            "exports": { ".": { "workerd": "./dist/workerd.js", "default": "./dist/node.js" }, "./fmt/*": "./dist/fmt/*.js" } }"##,
    )
    .unwrap();
    let pool = start(dir.path(), "src/index.js").unwrap();
    assert_eq!(get(&pool, "/").await, r#"["HI BOB!","2.0-esm"]"#);
    stop(pool);
}

#[tokio::test]
async fn commonjs_packages_are_wrapped() {
    let dir = project(&[
        (
            "node_modules/legacy/package.json",
            r#"{ "main": "lib/index.js" }"#,
        ),
        (
            "node_modules/legacy/lib/index.js",
            "'use strict';\nconst helper = require('./helper');\nconst data = require('../data.json');\n\
             exports.greet = function (n) { return helper.prefix + n + data.suffix; };\n\
             module.exports.mode = process.env.NODE_ENV;\n\
             exports.where = __filename;\n\
             exports.optional = (() => { try { return require('not-installed'); } catch (e) { return e.code; } })();\n",
        ),
        (
            "node_modules/legacy/lib/helper.js",
            "module.exports = { prefix: 'hello ' };\n",
        ),
        ("node_modules/legacy/data.json", r#"{ "suffix": "!" }"#),
        (
            "node_modules/transpiled/index.cjs",
            "Object.defineProperty(exports, '__esModule', { value: true });\nexports.default = 'the default';\nexports.named = 'n';\n",
        ),
        (
            "node_modules/transpiled/package.json",
            r#"{ "main": "index.cjs" }"#,
        ),
        (
            "index.js",
            &answer(
                "import legacy, { greet, mode, where, optional } from 'legacy';\nimport t, { named } from 'transpiled';",
                "[greet('bob'), mode, where, optional, typeof legacy.greet, t, named]",
            ),
        ),
    ]);
    let pool = start(dir.path(), "index.js").unwrap();
    assert_eq!(
        get(&pool, "/").await,
        r#"["hello bob!","production","node_modules/legacy/lib/index.js","MODULE_NOT_FOUND","function","the default","n"]"#
    );
    stop(pool);
}

const TS_WORKER: &str = r#"import type { Env } from './types';
import { Shape, area, type Sized } from './shapes.js';

interface Reply<T> {
  ok: boolean;
  value: T;
}

enum Mode {
  Area = 'area',
  Boom = 'boom',
}

function reply<T>(value: T): Reply<T> {
  return { ok: true, value };
}

class Handler<E extends Env> {
  constructor(private readonly prefix: string) {}

  run(mode: Mode, env: E): Reply<number | string> {
    if (mode === Mode.Boom) {
      throw new TypeError(`${this.prefix} exploded`);
    }
    const s: Sized = { shape: Shape.Square, size: 3 };
    return reply<number>(area(s) + (env.BONUS as number));
  }
}

export default {
  async fetch(req: Request, env: Env): Promise<Response> {
    const mode = new URL(req.url).pathname.slice(1) as Mode;
    const h = new Handler<Env>('handler');
    return Response.json(h.run(mode, { BONUS: 1 } as Env));
  },
};
"#;

const TS_SHAPES: &str = r#"export enum Shape {
  Square,
  Circle,
}

export interface Sized {
  shape: Shape;
  size: number;
}

export const area = ({ shape, size }: Sized): number =>
  shape === Shape.Square ? size * size : Math.round(Math.PI * size * size);
"#;

#[tokio::test]
async fn typescript_worker_runs_and_its_stack_names_ts_lines() {
    let dir = project(&[
        ("src/index.ts", TS_WORKER),
        ("src/shapes.ts", TS_SHAPES),
        ("src/types.ts", "export interface Env { BONUS: unknown }\n"),
    ]);
    let pool = start(dir.path(), "src/index.ts").unwrap();
    assert_eq!(get(&pool, "/area").await, r#"{"ok":true,"value":10}"#);
    match pool.dispatch(request("/boom")).await.unwrap_err() {
        DispatchError::Exception { message, stack, .. } => {
            assert_eq!(message, "handler exploded");
            // The error is constructed on line 23 of the .ts file, in
            // `run`, called from `fetch` on line 34.
            assert!(stack.contains("at run (src/index.ts:23:17)"), "{stack}");
            assert!(stack.contains("at fetch (src/index.ts:34:"), "{stack}");
        }
        other => panic!("{other:?}"),
    }
    stop(pool);
}

#[tokio::test]
async fn typescript_syntax_errors_name_file_and_line() {
    let dir = project(&[
        (
            "src/index.ts",
            "import { x } from './bad';\nexport default { fetch() { return new Response(String(x)); } };\n",
        ),
        (
            "src/bad.ts",
            "export const y: number = 1;\n\nexport const x: number = (y +;\n",
        ),
        ("main-bad.ts", "const a: string = 'a';\nlet b = {\n"),
    ]);
    let err = start(dir.path(), "src/index.ts").err().unwrap();
    match &err {
        StartError::Script {
            location, message, ..
        } => {
            assert_eq!(location, "src/bad.ts:3:30", "{err}");
            assert!(message.starts_with("SyntaxError: "), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let err = start(dir.path(), "main-bad.ts").err().unwrap();
    match &err {
        StartError::Script {
            location, message, ..
        } => {
            assert!(location.starts_with("main-bad.ts:3:"), "{err}");
            assert!(message.starts_with("SyntaxError: "), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn top_level_errors_in_typescript_point_at_the_ts_line() {
    let dir = project(&[(
        "index.mts",
        "type N = number;\n\n\nconst n: N = 1;\nif (n === 1) {\n  throw new Error('top level');\n}\nexport default {};\n",
    )]);
    let err = start(dir.path(), "index.mts").err().unwrap();
    match &err {
        StartError::Script {
            location, message, ..
        } => {
            assert!(location.starts_with("index.mts:6:"), "{err}");
            assert_eq!(message, "Error: top level");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn loaded_files_lists_modules_and_package_json_files() {
    let dir = project(&[
        ("package.json", r#"{ "name": "w" }"#),
        (
            "src/index.ts",
            "import { v } from './v.js';\nimport d from 'dep';\nexport default { fetch() { return new Response(v + d); } };\n",
        ),
        ("src/v.ts", "export const v: string = 'v';\n"),
        ("src/unused.ts", "export const u = 1;\n"),
        (
            "node_modules/dep/package.json",
            r#"{ "type": "module", "main": "main.js" }"#,
        ),
        ("node_modules/dep/main.js", "export default 'd';\n"),
    ]);
    let config = config(dir.path(), "src/index.ts");
    let files = config.loaded_files.clone();
    let pool = IsolatePool::start(config).unwrap();
    assert_eq!(get(&pool, "/").await, "vd");
    let r = real(dir.path());
    let listed = files.paths();
    for expected in [
        "src/index.ts",
        "src/v.ts",
        "node_modules/dep/package.json",
        "node_modules/dep/main.js",
        "package.json",
    ] {
        assert!(
            listed.contains(&r.join(expected)),
            "{expected} missing from {listed:?}"
        );
    }
    assert!(!listed.contains(&r.join("src/unused.ts")), "{listed:?}");
    assert_eq!(pool.config().loaded_files.paths(), listed);
    stop(pool);
}

/// Installs the real `hono` package with npm and serves a Hono app written in
/// TypeScript. Skipped (with a notice) when npm is absent or offline.
#[tokio::test]
async fn hono_from_npm_serves_through_the_pool() {
    let npm_ok = std::process::Command::new("npm")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !npm_ok {
        eprintln!("skipping hono_from_npm_serves_through_the_pool: npm not found");
        return;
    }
    let dir = project(&[
        ("package.json", r#"{ "name": "hono-app", "private": true }"#),
        (
            "src/index.ts",
            r#"import { Hono } from 'hono';
import type { Context } from 'hono';

type Bindings = { GREETING: string };

const app = new Hono<{ Bindings: Bindings }>();

app.get('/', (c: Context) => c.text('Hello Hono!'));
app.get('/users/:id', (c) => c.json({ id: c.req.param('id'), greeting: c.env.GREETING }));
app.get('/boom', () => {
  throw new Error('kaboom');
});
app.onError((err, c) => c.text(`caught: ${err.message}`, 500));

export default app;
"#,
        ),
    ]);
    let install = std::process::Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--silent", "hono@4"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    if !install.status.success() {
        eprintln!(
            "skipping hono_from_npm_serves_through_the_pool: npm install failed: {}",
            String::from_utf8_lossy(&install.stderr)
        );
        return;
    }
    let mut config = config(dir.path(), "src/index.ts");
    config
        .vars
        .insert("GREETING".into(), serde_json::Value::String("hi".into()));
    let pool = IsolatePool::start(config).unwrap();
    assert_eq!(get(&pool, "/").await, "Hello Hono!");
    assert_eq!(
        get(&pool, "/users/42").await,
        r#"{"id":"42","greeting":"hi"}"#
    );
    assert_eq!(get(&pool, "/boom").await, "caught: kaboom");
    let missing = pool.dispatch(request("/nope")).await.unwrap();
    assert_eq!(missing.status, 404);
    let files = pool.config().loaded_files.paths();
    assert!(
        files
            .iter()
            .any(|p| p.ends_with("node_modules/hono/package.json")),
        "{files:?}"
    );
    stop(pool);
}

#[tokio::test]
async fn commonjs_reexports_pass_their_names_to_es_importers() {
    let dir = project(&[
        // React's shape: an entry that picks a build and re-exports it.
        (
            "node_modules/jsxlib/package.json",
            r#"{ "name": "jsxlib", "main": "index.js", "exports": { ".": "./index.js", "./jsx-runtime": "./jsx-runtime.js" } }"#,
        ),
        (
            "node_modules/jsxlib/jsx-runtime.js",
            "'use strict';\nif (process.env.NODE_ENV === 'production') {\n  module.exports = require('./cjs/runtime.production.js');\n} else {\n  module.exports = require('./cjs/runtime.development.js');\n}\n",
        ),
        (
            "node_modules/jsxlib/cjs/runtime.production.js",
            "'use strict';\nfunction jsxProd(type, props) { return { type, props, build: 'prod' }; }\nexports.Fragment = Symbol.for('fragment');\nexports.jsx = jsxProd;\nexports.jsxs = jsxProd;\n",
        ),
        (
            "node_modules/jsxlib/cjs/runtime.development.js",
            "'use strict';\nif (process.env.NODE_ENV !== 'production') { exports.jsxDEV = function () {}; }\n",
        ),
        (
            "node_modules/jsxlib/index.js",
            "module.exports = require('./lib/main');\n",
        ),
        // Two levels deep, through TypeScript's helper, tslib's, Object.assign and Babel's loop.
        (
            "node_modules/jsxlib/lib/main.js",
            "\"use strict\";\nvar __exportStar = function (m, e) { for (var p in m) if (p !== 'default' && !Object.prototype.hasOwnProperty.call(e, p)) e[p] = m[p]; };\nvar tslib_1 = { __exportStar: __exportStar };\nObject.defineProperty(exports, '__esModule', { value: true });\n__exportStar(require('./a'), exports);\ntslib_1.__exportStar(require('./b'), exports);\n",
        ),
        (
            "node_modules/jsxlib/lib/a.js",
            "Object.defineProperty(exports, 'fromA', { enumerable: true, get: function () { return 'a'; } });\nObject.assign(module.exports, require('./c'));\n",
        ),
        ("node_modules/jsxlib/lib/b.js", "exports.fromB = 'b';\n"),
        (
            "node_modules/jsxlib/lib/c.js",
            "\"use strict\";\nvar _d = _interopRequireWildcard(require('./d'));\nfunction _interopRequireWildcard(m) { return m; }\nObject.keys(_d).forEach(function (key) {\n  if (key === 'default' || key === '__esModule') return;\n  Object.defineProperty(exports, key, { enumerable: true, get: function () { return _d[key]; } });\n});\n",
        ),
        (
            "node_modules/jsxlib/lib/d.js",
            "module.exports = { fromD: 'd', ...require('./e.mjs') };\n",
        ),
        (
            "node_modules/jsxlib/lib/e.mjs",
            "export const fromE = 'e';\n",
        ),
        // A cycle of re-exports ends the scan instead of looping (the second
        // `require` never runs: cycles between CommonJS modules do not work).
        ("node_modules/cyc/package.json", r#"{ "main": "x.js" }"#),
        (
            "node_modules/cyc/x.js",
            "exports.x = 1;\nObject.assign(exports, require('./y.js'));\n",
        ),
        (
            "node_modules/cyc/y.js",
            "exports.y = 2;\nif (globalThis.never) Object.assign(exports, require('./x.js'));\n",
        ),
        (
            "index.js",
            &answer(
                "import { jsx, jsxs, Fragment } from 'jsxlib/jsx-runtime';\n\
                 import { fromA, fromB, fromD, fromE } from 'jsxlib';\nimport { x } from 'cyc';",
                "[jsx('div', {}).build, jsxs === jsx, typeof Fragment, fromA, fromB, fromD, fromE, x]",
            ),
        ),
    ]);
    let pool = start(dir.path(), "index.js").unwrap();
    assert_eq!(
        get(&pool, "/").await,
        r#"["prod",true,"symbol","a","b","d","e",1]"#
    );
    stop(pool);
}

#[tokio::test]
async fn react_jsx_runtime_from_npm_exports_jsx() {
    let npm_ok = std::process::Command::new("npm")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !npm_ok {
        eprintln!("skipping react_jsx_runtime_from_npm_exports_jsx: npm not found");
        return;
    }
    let dir = project(&[
        (
            "package.json",
            r#"{ "name": "react-app", "private": true }"#,
        ),
        (
            "index.js",
            &answer(
                "import { jsx, jsxs, Fragment } from 'react/jsx-runtime';\nimport React, { createElement } from 'react';",
                "[jsx('p', { children: 'hi' }).type, jsx('p', { children: 'hi' }).props.children, typeof jsxs, typeof Fragment, typeof createElement, typeof React.useState]",
            ),
        ),
    ]);
    let install = std::process::Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--silent", "react@19"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    if !install.status.success() {
        eprintln!(
            "skipping react_jsx_runtime_from_npm_exports_jsx: npm install failed: {}",
            String::from_utf8_lossy(&install.stderr)
        );
        return;
    }
    let pool = start(dir.path(), "index.js").unwrap();
    assert_eq!(
        get(&pool, "/").await,
        r#"["p","hi","function","symbol","function","function"]"#
    );
    stop(pool);
}

/// A stand-in for hono's JSX runtime: enough to tell which runtime compiled
/// the JSX.
const FAKE_HONO: &[(&str, &str)] = &[
    (
        "node_modules/hono/package.json",
        r#"{ "name": "hono", "type": "module", "exports": { "./jsx/jsx-runtime": "./jsx-runtime.js", "./jsx": "./jsx.js" } }"#,
    ),
    (
        "node_modules/hono/jsx-runtime.js",
        "export const Fragment = 'hono-fragment';\n\
         export function jsx(tag, props) { return { runtime: 'hono', tag, children: props.children }; }\n\
         export const jsxs = jsx;\n",
    ),
    (
        "node_modules/hono/jsx.js",
        "export const Fragment = 'classic-fragment';\n\
         export function h(tag, props, ...children) { return { runtime: 'classic', tag, children }; }\n",
    ),
];

const JSX_WORKER: &str = r#"import { greet } from '@/lib/greet';
import { shout } from 'util/shout';

const Page = ({ name }: { name: string }) => <p>{greet(name)}</p>;

export default {
  fetch(): Response {
    const el = Page({ name: 'ada' }) as any;
    const frag = (<>{shout('x')}</>) as any;
    return Response.json([el.runtime, el.tag, el.children, frag.tag]);
  },
};
"#;

#[tokio::test]
async fn tsconfig_jsx_import_source_paths_and_base_url_through_extends() {
    let mut files: Vec<(&str, &str)> = FAKE_HONO.to_vec();
    files.extend([
        (
            "tsconfig.json",
            "{\n  // comments and trailing commas, as tsc allows\n  \"extends\": \"./configs/base.json\",\n  \"compilerOptions\": {\n    \"jsxImportSource\": \"hono/jsx\", /* hono's runtime */\n    \"paths\": { \"@/lib/*\": [\"./lib/*\"], }, // relative to the inherited baseUrl\n  },\n}\n",
        ),
        (
            "configs/base.json",
            r#"{ "compilerOptions": { "jsx": "react-jsx", "baseUrl": "../src", "jsxImportSource": "react" } }"#,
        ),
        ("src/index.tsx", JSX_WORKER),
        (
            "src/lib/greet.ts",
            "export const greet = (n: string): string => `hello ${n}`;\n",
        ),
        (
            "src/util/shout.ts",
            "export const shout = (s: string): string => s.toUpperCase();\n",
        ),
    ]);
    let dir = project(&files);
    let pool = start(dir.path(), "src/index.tsx").unwrap();
    assert_eq!(
        get(&pool, "/").await,
        r#"["hono","p","hello ada","hono-fragment"]"#
    );
    let loaded = pool.config().loaded_files.paths();
    assert!(
        loaded.iter().any(|p| p.ends_with("configs/base.json")),
        "{loaded:?}"
    );
    stop(pool);
}

#[tokio::test]
async fn tsconfig_classic_jsx_factory() {
    let index = format!("import {{ h, Fragment }} from 'hono/jsx';\n{JSX_WORKER}");
    let mut files: Vec<(&str, &str)> = FAKE_HONO.to_vec();
    files.extend([
        (
            "tsconfig.json",
            r#"{ "compilerOptions": { "jsx": "react", "jsxFactory": "h", "jsxFragmentFactory": "Fragment", "baseUrl": "src", "paths": { "@/lib/*": ["lib/*"] } } }"#,
        ),
        ("src/index.tsx", index.as_str()),
        (
            "src/lib/greet.ts",
            "export const greet = (n: string): string => `hi ${n}`;\n",
        ),
        (
            "src/util/shout.ts",
            "export const shout = (s: string): string => s + '!';\n",
        ),
    ]);
    let dir = project(&files);
    let pool = start(dir.path(), "src/index.tsx").unwrap();
    assert_eq!(
        get(&pool, "/").await,
        r#"["classic","p",["hi ada"],"classic-fragment"]"#
    );
    stop(pool);
}

#[tokio::test]
async fn tsconfig_preserve_and_broken_files_fail_clearly() {
    let dir = project(&[
        (
            "tsconfig.json",
            r#"{ "compilerOptions": { "jsx": "preserve" } }"#,
        ),
        (
            "index.tsx",
            "export default { fetch() { return new Response(String(<p />)); } };\n",
        ),
    ]);
    let Err(err) = start(dir.path(), "index.tsx") else {
        panic!("a preserved JSX element started");
    };
    let err = format!("{err:?}");
    assert!(err.contains("\\\"jsx\\\": \\\"preserve\\\""), "{err}");
    assert!(err.contains("index.tsx:1:"), "{err}");

    let dir = project(&[
        (
            "tsconfig.json",
            r#"{ "extends": "./missing.json", "compilerOptions": {} }"#,
        ),
        (
            "index.ts",
            "export default { fetch() { return new Response('x'); } };\n",
        ),
    ]);
    let Err(err) = start(dir.path(), "index.ts") else {
        panic!("a broken tsconfig started");
    };
    let err = format!("{err:?}");
    assert!(
        err.contains("Invalid tsconfig") && err.contains("./missing.json"),
        "{err}"
    );
}

#[tokio::test]
async fn packages_in_node_modules_ignore_the_projects_tsconfig() {
    let dir = project(&[
        (
            "tsconfig.json",
            r#"{ "compilerOptions": { "paths": { "dep-helper": ["./src/wrong.ts"] } } }"#,
        ),
        ("src/wrong.ts", "export const who = 'project';\n"),
        (
            "node_modules/dep/package.json",
            r#"{ "name": "dep", "type": "module", "main": "index.js" }"#,
        ),
        (
            "node_modules/dep/index.js",
            "export { who } from 'dep-helper';\n",
        ),
        (
            "node_modules/dep-helper/package.json",
            r#"{ "name": "dep-helper", "type": "module", "main": "index.js" }"#,
        ),
        (
            "node_modules/dep-helper/index.js",
            "export const who = 'package';\n",
        ),
        (
            "src/index.ts",
            &answer(
                "import { who } from 'dep';\nimport { who as mine } from 'dep-helper';",
                "[who, mine]",
            ),
        ),
    ]);
    let pool = start(dir.path(), "src/index.ts").unwrap();
    assert_eq!(get(&pool, "/").await, r#"["package","project"]"#);
    stop(pool);
}

#[tokio::test]
async fn hono_jsx_from_npm_through_tsconfig_without_react() {
    let npm_ok = std::process::Command::new("npm")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !npm_ok {
        eprintln!("skipping hono_jsx_from_npm_through_tsconfig_without_react: npm not found");
        return;
    }
    let dir = project(&[
        ("package.json", r#"{ "name": "hono-jsx", "private": true }"#),
        (
            "tsconfig.json",
            r#"{ "compilerOptions": { "jsx": "react-jsx", "jsxImportSource": "hono/jsx" } }"#,
        ),
        (
            "src/index.tsx",
            r#"import { Hono } from 'hono';
import type { FC } from 'hono/jsx';

const Greeting: FC<{ name: string }> = ({ name }) => (
  <>
    <h1>Hello {name}</h1>
  </>
);

const app = new Hono();
app.get('/', (c) => c.html(<Greeting name="ada" />));
export default app;
"#,
        ),
    ]);
    let install = std::process::Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--silent", "hono@4"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    if !install.status.success() {
        eprintln!(
            "skipping hono_jsx_from_npm_through_tsconfig_without_react: npm install failed: {}",
            String::from_utf8_lossy(&install.stderr)
        );
        return;
    }
    assert!(!dir.path().join("node_modules/react").exists());
    let pool = start(dir.path(), "src/index.tsx").unwrap();
    assert_eq!(get(&pool, "/").await, "<h1>Hello ada</h1>");
    stop(pool);
}
