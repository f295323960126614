//! What `hearth serve` must never hand out or mix up, driven through the
//! real binary and real HTTP: local secrets, the config and the data
//! directory are never assets (even with `[assets] directory = "."`), a
//! symlink loop in the assets cannot stop start-up, and process secrets
//! reach only the worker they are scoped to.

mod web_support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use web_support::http;

/// A running `hearth serve` whose log lines are kept.
struct Serving {
    child: Child,
    addr: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Serving {
    /// `hearth serve <args> --listen 127.0.0.1:0` in `cwd`, with `env`.
    fn start(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Serving {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hearth"))
            .arg("serve")
            .args(args)
            .args(["--listen", "127.0.0.1:0"])
            .current_dir(cwd)
            .env_remove("HEARTH_DATA_DIR")
            .env("HEARTH_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let kept = log.clone();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split(" on http://").nth(1)
                    && let Some(t) = tx.take()
                {
                    let _ = t.send(rest.split_whitespace().next().unwrap_or("").to_string());
                }
                kept.lock().unwrap().push(line);
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "server did not report its address; log:\n{}",
                    log.lock().unwrap().join("\n")
                );
            }
        };
        Serving { child, addr, log }
    }

    fn get(&self, path: &str) -> (u16, String) {
        let r = http(&self.addr, "GET", path, &[], b"");
        (r.status, r.text())
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Failing start-up: the exit status and stderr.
fn serve_fails(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .arg("serve")
        .args(args)
        .args(["--listen", "127.0.0.1:0"])
        .current_dir(cwd)
        .env_remove("HEARTH_DATA_DIR")
        .env("HEARTH_LOG", "warn")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "serve started: {stderr}");
    stderr
}

fn write(root: &Path, rel: &str, body: &str) -> PathBuf {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, body).unwrap();
    p
}

/// Every file below `dir`, relative to `base`, as URL paths.
fn files_below(dir: &Path, base: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let t = e.file_type().unwrap();
            if t.is_dir() {
                stack.push(e.path());
            } else if t.is_file() {
                let rel = e.path().strip_prefix(base).unwrap().to_path_buf();
                out.push(format!("/{}", rel.to_string_lossy()));
            }
        }
    }
    out
}

const ASSETS_WORKER: &str = r#"
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === "/touch") {
      await env.CACHE.put("k", "v");
      const id = env.COUNTER.idFromName("x");
      await env.COUNTER.get(id).fetch("https://do/");
      return new Response("touched");
    }
    return new Response("from the worker", { status: 404 });
  },
};
export class Counter {
  constructor(state) { this.state = state; }
  async fetch() {
    await this.state.storage.put("n", 1);
    return new Response("ok");
  }
}
"#;

fn assets_project(dir: &Path) {
    write(
        dir,
        "wrangler.toml",
        r#"
name = "site"
main = "src/index.js"
compatibility_date = "2024-09-23"

[assets]
directory = "."

[[kv_namespaces]]
binding = "CACHE"
id = "cache"

[[durable_objects.bindings]]
name = "COUNTER"
class_name = "Counter"

[[migrations]]
tag = "v1"
new_sqlite_classes = ["Counter"]
"#,
    );
    write(dir, "src/index.js", ASSETS_WORKER);
    write(dir, "index.html", "home page");
    write(dir, ".dev.vars", "API_KEY=dev-secret");
    write(dir, ".dev.vars.production", "API_KEY=prod-secret");
    write(dir, "notes/private.md", "private");
    write(dir, ".assetsignore", "*.md\n/src\n");
    // Another wrangler file beside the one served (wrangler.toml wins only
    // when named): never served either.
    write(dir, "wrangler.jsonc", "{ \"name\": \"secret-other\" }");
}

fn assert_hidden(s: &Serving, path: &str) {
    let (status, body) = s.get(path);
    assert!(
        !(status == 200 || body.contains("secret") || body.contains("SQLite")),
        "{path} answered {status}: {body:.80}"
    );
}

#[test]
fn with_directory_dot_secrets_config_and_state_are_never_served() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    assets_project(root);

    // The default data directory, `.hearth/` beside the config.
    let s = Serving::start(root, &["wrangler.toml"], &[]);
    assert_eq!(s.get("/"), (200, "home page".into()));
    assert_eq!(s.get("/touch"), (200, "touched".into()));
    let data = root.join(".hearth");
    let state = files_below(&data, root);
    assert!(
        state.iter().any(|p| p.ends_with("secret")),
        "the DO secret exists: {state:?}"
    );
    assert!(state.iter().any(|p| p.contains(".sqlite")), "{state:?}");
    for path in state.iter().map(String::as_str).chain([
        "/.dev.vars",
        "/.dev.vars.production",
        "/wrangler.toml",
        "/wrangler.jsonc",
        "/.assetsignore",
        "/notes/private.md",
        "/src/index.js",
    ]) {
        assert_hidden(&s, path);
    }
    let log = s.log();
    assert!(
        log.contains("contains") && log.contains(".hearth") && log.contains("wrangler.toml"),
        "start-up warns that the assets directory holds the config and the data: {log}"
    );
    drop(s);

    // A data directory moved with --data-dir, still inside the assets.
    let s = Serving::start(root, &["wrangler.toml", "--data-dir", "state"], &[]);
    assert_eq!(s.get("/touch"), (200, "touched".into()));
    let state = files_below(&root.join("state"), root);
    assert!(state.iter().any(|p| p.ends_with("secret")), "{state:?}");
    for path in &state {
        assert_hidden(&s, path);
    }
    assert_eq!(s.get("/"), (200, "home page".into()));
    assert!(s.log().contains("state"), "{}", s.log());
}

#[cfg(unix)]
#[test]
fn symlink_loops_and_links_out_of_the_assets_do_not_stop_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    assets_project(root);
    std::os::unix::fs::symlink(".", root.join("a")).unwrap();
    std::os::unix::fs::symlink(".", root.join("b")).unwrap();
    std::os::unix::fs::symlink("/etc", root.join("etc")).unwrap();
    let s = Serving::start(root, &["wrangler.toml"], &[]);
    assert_eq!(s.get("/a/b/"), (200, "home page".into()));
    assert_ne!(s.get("/etc/hostname").0, 200);
    assert_hidden(&s, "/a/.dev.vars");
    assert!(
        s.log().contains("etc leads outside the assets directory"),
        "{}",
        s.log()
    );
}

const SECRET_WORKER: &str = r#"
export default {
  fetch(request, env) {
    return Response.json({ token: env.TOKEN ?? null, shared: env.SHARED ?? null });
  },
};
"#;

/// Two workers, `my-api` (the default) and `billing` (on billing.test).
fn two_workers(root: &Path) -> (PathBuf, PathBuf) {
    let api = write(
        root,
        "api/wrangler.toml",
        "name = \"my-api\"\nmain = \"src/index.js\"\ncompatibility_date = \"2025-01-01\"\n",
    );
    write(root, "api/src/index.js", SECRET_WORKER);
    let billing = write(
        root,
        "billing/wrangler.toml",
        "name = \"billing\"\nmain = \"src/index.js\"\ncompatibility_date = \"2025-01-01\"\nroutes = [\"billing.test/*\"]\n",
    );
    write(root, "billing/src/index.js", SECRET_WORKER);
    (api, billing)
}

#[test]
fn process_secrets_reach_only_the_worker_they_are_scoped_to() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (api, billing) = two_workers(root);
    let configs = [
        api.to_str().unwrap(),
        billing.to_str().unwrap(),
        "--data-dir",
        "data",
    ];
    let s = Serving::start(
        root,
        &configs,
        &[
            ("HEARTH_SECRET_MY_API__TOKEN", "api-token"),
            ("HEARTH_SECRET_BILLING__TOKEN", "billing-token"),
            ("HEARTH_SECRET_BILLING__SHARED", "billing-only"),
        ],
    );
    let api_sees = http(&s.addr, "GET", "/", &[], b"").json();
    assert_eq!(
        api_sees,
        serde_json::json!({ "token": "api-token", "shared": null })
    );
    let billing_sees = http(&s.addr, "GET", "/", &[("host", "billing.test")], b"").json();
    assert_eq!(
        billing_sees,
        serde_json::json!({ "token": "billing-token", "shared": "billing-only" })
    );
    drop(s);

    // An unscoped secret would reach both: refused, naming the fix.
    let err = serve_fails(root, &configs, &[("HEARTH_SECRET_SHARED", "everyone")]);
    assert!(
        err.contains("HEARTH_SECRET_SHARED: an unscoped secret would reach every worker of this process (my-api, billing)"),
        "{err}"
    );

    // With one worker served, the unscoped form still applies.
    let s = Serving::start(
        root,
        &[api.to_str().unwrap(), "--data-dir", "data"],
        &[("HEARTH_SECRET_SHARED", "everyone")],
    );
    let api_sees = http(&s.addr, "GET", "/", &[], b"").json();
    assert_eq!(
        api_sees,
        serde_json::json!({ "token": null, "shared": "everyone" })
    );
}

const BULK_WORKER: &str = r#"
export default {
  fetch(request, env) {
    const url = new URL(request.url);
    const stub = env.BULK.get(env.BULK.idFromName("bulk"));
    return stub.fetch("https://do" + url.pathname + url.search);
  },
};
export class Bulk {
  constructor(state) { this.state = state; }
  async fetch(request) {
    const url = new URL(request.url);
    const s = this.state.storage;
    if (url.pathname === "/fill") {
      const n = Number(url.searchParams.get("n"));
      // Not awaited: one unit, committed at the output gate.
      for (let i = 0; i < n; i++) s.put("k" + i, i);
      s.put("done", true);
      return new Response("filled");
    }
    const keys = (await s.list({ prefix: "k" })).size;
    const done = (await s.get("done")) ?? null;
    return Response.json({ keys, done });
  }
}
"#;

/// VmHWM of a process, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn bulk_project(root: &Path) -> PathBuf {
    write(root, "src/index.js", BULK_WORKER);
    write(
        root,
        "wrangler.toml",
        "name = \"bulk\"\nmain = \"src/index.js\"\ncompatibility_date = \"2025-01-01\"\n\n[[durable_objects.bindings]]\nname = \"BULK\"\nclass_name = \"Bulk\"\n\n[[migrations]]\ntag = \"v1\"\nnew_sqlite_classes = [\"Bulk\"]\n",
    )
}

/// What the object holds after a restart on `data`.
fn bulk_state(root: &Path, data: &Path) -> serde_json::Value {
    let s = Serving::start(
        root,
        &["wrangler.toml", "--data-dir", data.to_str().unwrap()],
        &[],
    );
    http(&s.addr, "GET", "/count", &[], b"").json()
}

#[test]
fn unawaited_durable_object_writes_survive_sigkill_all_or_none() {
    const N: usize = 100_000;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    bulk_project(root);

    // How long the whole unit takes here, uninterrupted.
    let data = root.join("timing");
    let s = Serving::start(
        root,
        &["wrangler.toml", "--data-dir", data.to_str().unwrap()],
        &[],
    );
    let before = peak_rss_kib(s.child.id());
    let started = std::time::Instant::now();
    let r = http(&s.addr, "GET", &format!("/fill?n={N}"), &[], b"");
    let took = started.elapsed();
    assert_eq!(r.text(), "filled");
    // The uncommitted unit lives in SQLite's page cache and WAL file, not
    // in memory: the server's peak grows by far less than the unit.
    let grown = peak_rss_kib(s.child.id()).saturating_sub(before);
    assert!(
        grown < 48 * 1024,
        "peak RSS grew by {grown} KiB writing {N} keys in one unit"
    );
    drop(s);
    assert_eq!(
        bulk_state(root, &data),
        serde_json::json!({ "keys": N, "done": true })
    );

    // SIGKILL at points through the unit (and once after its response).
    let mut outcomes = Vec::new();
    for (i, fraction) in [0.2, 0.5, 0.8, 1.5].into_iter().enumerate() {
        let data = root.join(format!("kill-{i}"));
        let mut s = Serving::start(
            root,
            &["wrangler.toml", "--data-dir", data.to_str().unwrap()],
            &[],
        );
        let addr = s.addr.clone();
        let request = std::thread::spawn(move || {
            web_support::try_http(
                &addr,
                "GET",
                &format!("/fill?n={N}"),
                &[],
                b"",
                Duration::from_secs(120),
            )
        });
        std::thread::sleep(took.mul_f64(fraction));
        s.child.kill().unwrap();
        s.child.wait().unwrap();
        let answered = request.join().unwrap().is_ok_and(|r| r.status == 200);
        drop(s);
        let state = bulk_state(root, &data);
        let all = serde_json::json!({ "keys": N, "done": true });
        let none = serde_json::json!({ "keys": 0, "done": null });
        assert!(
            state == all || state == none,
            "killed at {fraction} of {took:?}: {state} survived (answered: {answered})"
        );
        if answered {
            assert_eq!(state, all, "an answered unit is durable");
        }
        outcomes.push(state == all);
    }
    // The early kills land inside the unit: nothing of it is kept.
    assert!(
        outcomes.iter().any(|all| !all),
        "no kill landed inside the unit ({took:?}): {outcomes:?}"
    );
}
