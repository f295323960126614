//! `hearth serve a b`: worker a binds a Durable Object class exported by
//! worker b (`script_name = "b"`); the objects live in b, and a and b see
//! the same objects under the same ids.

mod web_support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use web_support::{Reply, http};

struct Served {
    child: Child,
    addr: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Served {
    fn get(&self, host: &str, path: &str) -> Reply {
        http(&self.addr, "GET", path, &[("host", host)], b"")
    }
}

fn hearth(configs: &[&Path]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hearth"));
    cmd.arg("serve")
        .args(configs)
        .args(["--listen", "127.0.0.1:0"]);
    cmd
}

fn serve(configs: &[&Path]) -> Served {
    let mut child = hearth(configs)
        .env("HEARTH_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split(" on http://").nth(1)
                && let Some(t) = tx.take()
            {
                let _ = t.send(rest.split_whitespace().next().unwrap_or("").to_string());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("server did not report its address");
    Served { child, addr }
}

/// Start-up must fail; returns stderr.
fn refused(configs: &[&Path]) -> String {
    let out = hearth(configs).output().unwrap();
    assert!(!out.status.success(), "server started");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn worker(root: &Path, dir: &str, toml: &str, js: &str) -> PathBuf {
    let d = root.join(dir);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("index.js"), js).unwrap();
    std::fs::write(d.join("wrangler.toml"), toml).unwrap();
    d.join("wrangler.toml")
}

const B_TOML: &str = r#"name = "b"
main = "index.js"
routes = ["b.test/*"]

[[durable_objects.bindings]]
name = "COUNTER"
class_name = "Counter"

[[migrations]]
tag = "v1"
new_sqlite_classes = ["Counter"]
"#;

const B_JS: &str = r#"
export class Counter {
  constructor(state) { this.state = state; }
  async fetch(req) {
    const by = Number(new URL(req.url).searchParams.get("by") ?? "1");
    const n = ((await this.state.storage.get("n")) ?? 0) + by;
    await this.state.storage.put("n", n);
    return new Response(`b:${n}`);
  }
  async add(by) {
    const n = ((await this.state.storage.get("n")) ?? 0) + by;
    await this.state.storage.put("n", n);
    return { n, host: "b" };
  }
  async read() { return (await this.state.storage.get("n")) ?? 0; }
  async fail() { throw new RangeError("counter refused"); }
}
export default {
  async fetch(req, env) {
    const url = new URL(req.url);
    const name = url.searchParams.get("name") ?? "x";
    if (url.pathname === "/id") return new Response(env.COUNTER.idFromName(name).toString());
    if (url.pathname === "/by-id") {
      const stub = env.COUNTER.get(env.COUNTER.idFromString(url.searchParams.get("id")));
      return new Response(String(await stub.read()));
    }
    return new Response(String(await env.COUNTER.getByName(name).read()));
  },
};
"#;

// Worker a exports a class of the same name: the script_name binding must
// not reach it.
const A_TOML: &str = r#"name = "a"
main = "index.js"

[[durable_objects.bindings]]
name = "COUNTER"
class_name = "Counter"
script_name = "b"

[[durable_objects.bindings]]
name = "LOCAL"
class_name = "Counter"

[[migrations]]
tag = "v1"
new_sqlite_classes = ["Counter"]
"#;

const A_JS: &str = r#"
export class Counter {
  async fetch() { return new Response("a's own counter"); }
  async read() { return -1; }
}
export default {
  async fetch(req, env) {
    const url = new URL(req.url);
    const name = url.searchParams.get("name") ?? "x";
    const stub = env.COUNTER.get(env.COUNTER.idFromName(name));
    switch (url.pathname) {
      case "/fetch": return await stub.fetch("http://do/?by=" + (url.searchParams.get("by") ?? "1"));
      case "/rpc": return Response.json(await stub.add(Number(url.searchParams.get("by"))));
      case "/read": return new Response(String(await stub.read()));
      case "/id": return new Response(env.COUNTER.idFromName(name).toString());
      case "/by-id": {
        const s = env.COUNTER.get(env.COUNTER.idFromString(url.searchParams.get("id")));
        return new Response(String(await s.read()));
      }
      case "/fail":
        try { await stub.fail(); return new Response("no error"); }
        catch (e) { return Response.json({ name: e.name, message: e.message, isRangeError: e instanceof RangeError }); }
      case "/local": return await env.LOCAL.getByName(name).fetch("http://do/");
      case "/kind": return new Response(String(env.COUNTER));
    }
    return new Response("not found", { status: 404 });
  },
};
"#;

#[test]
fn a_counter_owned_by_b_is_shared_through_script_name() {
    let root = tempfile::tempdir().unwrap();
    let a = worker(root.path(), "a", A_TOML, A_JS);
    let b = worker(root.path(), "b", B_TOML, B_JS);
    let s = serve(&[&a, &b]);

    // a increments b's counter by fetch() and by RPC.
    let r = s.get("a.test", "/fetch?name=hits");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), "b:1");
    let r = s.get("a.test", "/fetch?name=hits&by=2");
    assert_eq!(r.text(), "b:3");
    let r = s.get("a.test", "/rpc?name=hits&by=4");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), serde_json::json!({"n": 7, "host": "b"}));

    // b reads the same counter by the same name through its own binding.
    let r = s.get("b.test", "/read?name=hits");
    assert_eq!(r.text(), "7");
    assert_eq!(s.get("b.test", "/read?name=other").text(), "0");
    assert_eq!(s.get("a.test", "/read?name=other").text(), "0");

    // One id namespace: the same name gives the same id, and an id made in
    // a is valid in b (and back).
    let id_a = s.get("a.test", "/id?name=hits").text();
    let id_b = s.get("b.test", "/id?name=hits").text();
    assert_eq!(id_a, id_b);
    assert_eq!(id_a.len(), 64, "{id_a}");
    assert_eq!(s.get("b.test", &format!("/by-id?id={id_a}")).text(), "7");
    assert_eq!(s.get("a.test", &format!("/by-id?id={id_b}")).text(), "7");

    // Exceptions thrown in b cross with their class and message.
    assert_eq!(
        s.get("a.test", "/fail?name=hits").json(),
        serde_json::json!({"name": "RangeError", "message": "counter refused", "isRangeError": true})
    );

    // a's own class of the same name stays separate.
    assert_eq!(
        s.get("a.test", "/local?name=hits").text(),
        "a's own counter"
    );
    assert_eq!(
        s.get("a.test", "/kind").text(),
        "[object DurableObjectNamespace]"
    );

    // The object's storage is b's: after a restart b still reads it.
    drop(s);
    let s = serve(&[&a, &b]);
    assert_eq!(s.get("b.test", "/read?name=hits").text(), "7");
    assert_eq!(s.get("a.test", "/read?name=hits").text(), "7");
}

#[test]
fn script_name_naming_a_worker_not_served_fails_at_start_up() {
    let root = tempfile::tempdir().unwrap();
    let a = worker(root.path(), "a", A_TOML, A_JS);
    let err = refused(&[&a]);
    assert!(
        err.contains("durable_objects.bindings: COUNTER: script_name = \"b\" names another worker, but no worker of that name is served by this process (serving: a)"),
        "{err}"
    );
}

#[test]
fn script_name_with_a_class_the_worker_does_not_declare_fails_at_start_up() {
    let root = tempfile::tempdir().unwrap();
    let a = worker(
        root.path(),
        "a",
        &A_TOML.replace(
            "class_name = \"Counter\"\nscript_name",
            "class_name = \"Missing\"\nscript_name",
        ),
        A_JS,
    );
    let b = worker(root.path(), "b", B_TOML, B_JS);
    let err = refused(&[&a, &b]);
    assert!(
        err.contains("durable_objects.bindings: COUNTER: class_name = \"Missing\" is not a Durable Object class of the worker \"b\""),
        "{err}"
    );
}
