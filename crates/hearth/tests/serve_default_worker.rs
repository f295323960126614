//! Several workers: one that Cloudflare would not expose (`workers_dev =
//! false`, no routes) is never the default worker, whatever its place on
//! the command line; `base_dir` lets workers share modules above their own
//! directories.

mod web_support;

use std::path::Path;
use std::time::Duration;

use web_support::Server;

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[test]
fn internal_worker_is_not_the_default_and_shares_modules_through_base_dir() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(
        &root.join("shared/greet.js"),
        "export const greet = (who) => `hello from ${who}`;\n",
    );
    // Listed first, reachable only through the service binding.
    write(
        &root.join("a-internal/wrangler.toml"),
        "name = \"internal\"\nmain = \"src/index.js\"\nbase_dir = \"..\"\nworkers_dev = false\n",
    );
    write(
        &root.join("a-internal/src/index.js"),
        "import { greet } from \"../../shared/greet.js\";\nexport default { fetch() { return new Response(greet(\"internal\")); } };\n",
    );
    write(
        &root.join("b-public/wrangler.toml"),
        "name = \"public\"\nmain = \"src/index.js\"\nbase_dir = \"..\"\n\n[[services]]\nbinding = \"INTERNAL\"\nservice = \"internal\"\n",
    );
    write(
        &root.join("b-public/src/index.js"),
        "import { greet } from \"../../shared/greet.js\";\nexport default { async fetch(req, env) {\n  const inner = await (await env.INTERNAL.fetch(req)).text();\n  return new Response(`${greet(\"public\")}; ${inner}`);\n} };\n",
    );
    let server = Server::launch_in(
        root,
        "serve",
        &[
            "a-internal/wrangler.toml",
            "b-public/wrangler.toml",
            "--data-dir",
            "data",
        ],
        Duration::from_secs(60),
    );
    let r = server.get("/anything");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), "hello from public; hello from internal");
    server.terminate();
}

#[test]
fn without_base_dir_a_module_above_the_config_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(
        &root.join("shared/greet.js"),
        "export const greet = () => \"hi\";\n",
    );
    write(
        &root.join("w/wrangler.toml"),
        "name = \"w\"\nmain = \"index.js\"\n",
    );
    write(
        &root.join("w/index.js"),
        "import { greet } from \"../shared/greet.js\";\nexport default { fetch() { return new Response(greet()); } };\n",
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args([
            "serve",
            "w/wrangler.toml",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            "data",
        ])
        .current_dir(root)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("leaves the worker's module root"), "{err}");
}
