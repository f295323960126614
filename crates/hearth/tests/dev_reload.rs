//! `hearth dev`: a change to a loaded module reloads the worker, keeps its
//! storage, lets an in-flight request finish, and a module that fails to
//! load is reported until the next change fixes it. Static assets need no
//! reload: they are read from disk per request.

mod web_support;

use std::path::Path;
use std::time::{Duration, Instant};

use web_support::{Server, http};

const WORKER: &str = r#"
import { version } from "./version.js";
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === "/slow") {
      await new Promise((r) => setTimeout(r, 1500));
      return new Response(`slow ${version}`);
    }
    if (request.method === "PUT") {
      await env.KV.put("k", await request.text());
      return new Response(null, { status: 204 });
    }
    return new Response(`${version} ${await env.KV.get("k")}`);
  },
};
"#;

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// Polls until `path` answers `want` (the watcher looks every 500 ms).
fn wait_for(server: &Server, path: &str, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = server.get(path);
        if r.text() == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "still {:?}, wanted {want:?}",
            r.text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn dev_reloads_on_change_and_keeps_storage_and_in_flight_requests() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(
        root,
        "wrangler.toml",
        "name = \"dev\"\nmain = \"src/index.js\"\n[[kv_namespaces]]\nbinding = \"KV\"\nid = \"kv\"\n[assets]\ndirectory = \"public\"\n",
    );
    write(root, "src/index.js", WORKER);
    write(root, "src/version.js", "export const version = 'v1';\n");
    write(root, "public/hello.txt", "first");
    let server = Server::start("dev", &root.join("wrangler.toml"), &root.join("data"));

    assert_eq!(server.request("PUT", "/", &[], b"kept").status, 204);
    assert_eq!(server.get("/").text(), "v1 kept");

    // A request in flight across the reload completes on the old code.
    let addr = server.addr.clone();
    let slow = std::thread::spawn(move || http(&addr, "GET", "/slow", &[], b""));
    std::thread::sleep(Duration::from_millis(300));
    // An imported module, not only main, is watched.
    write(root, "src/version.js", "export const version = 'v2';\n");
    wait_for(&server, "/", "v2 kept");
    let r = slow.join().unwrap();
    assert_eq!((r.status, r.text()), (200, "slow v1".into()));

    // A broken module is served as the error until it is fixed.
    write(root, "src/version.js", "export const version = ;\n");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = server.get("/");
        if r.status == 500 {
            assert!(
                r.text().starts_with("The worker failed to load: "),
                "{}",
                r.text()
            );
            assert!(r.text().contains("version.js"), "{}", r.text());
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no load error shown: {}",
            r.text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    write(root, "src/version.js", "export const version = 'v3';\n");
    wait_for(&server, "/", "v3 kept");

    // Assets change without a reload.
    assert_eq!(server.get("/hello.txt").text(), "first");
    write(root, "public/hello.txt", "second");
    assert_eq!(server.get("/hello.txt").text(), "second");
}

#[test]
fn serve_refuses_a_missing_assets_directory() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(
        root,
        "wrangler.toml",
        "name = \"big\"\nmain = \"index.js\"\n[assets]\ndirectory = \"missing\"\n",
    );
    write(
        root,
        "index.js",
        "export default { fetch() { return new Response('x'); } };",
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(root.join("data"))
        .arg(root.join("wrangler.toml"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("assets.directory: The directory specified by the \"assets.directory\" field in your configuration file does not exist"),
        "{err}"
    );
}
