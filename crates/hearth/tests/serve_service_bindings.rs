//! `hearth serve gateway auth`: two workers in one process, routing by
//! `routes`, and service bindings across them (fetch, RPC, errors).

mod web_support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use web_support::{Reply, example, http};

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
    fn get(&self, host: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
        let mut all = vec![("host", host)];
        all.extend_from_slice(headers);
        http(&self.addr, "GET", path, &all, b"")
    }
}

fn serve(configs: &[&Path], data: &Path) -> Served {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .arg("serve")
        .args(configs)
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
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

#[test]
fn gateway_and_auth_route_fetch_rpc_and_errors() {
    let data = tempfile::tempdir().unwrap();
    let gateway = example("service-bindings/gateway/wrangler.toml");
    let auth = example("service-bindings/auth/wrangler.toml");
    let s = serve(&[&gateway, &auth], data.path());

    // Routing: auth's route selects it; anything else goes to the first config.
    let r = s.get("auth.example.com", "/hello", &[]);
    assert_eq!(r.text(), "auth worker at auth.example.com/hello");
    let r = s.get("other.example.com", "/hello", &[]);
    assert_eq!(r.text(), "gateway at other.example.com/hello");

    // RPC to a named entrypoint, with structured-clone results.
    let r = s.get("gw.test", "/me", &[("authorization", "Bearer token-alice")]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        serde_json::json!({"user": "alice", "roles": ["admin", "reader"], "rolesIsSet": true, "issued": "1970-01-01T00:00:00.000Z"})
    );

    // Errors cross with their name and message.
    let r = s.get("gw.test", "/me", &[("authorization", "Bearer nobody")]);
    assert_eq!(r.status, 401);
    assert_eq!(
        r.json(),
        serde_json::json!({"error": "RangeError", "message": "unknown token", "isRangeError": true})
    );
    let r = s.get("gw.test", "/me", &[]);
    assert_eq!(r.json()["error"], "TypeError");
    assert_eq!(r.json()["message"], "token must be a non-empty string");
    let r = s.get("gw.test", "/missing-method", &[]);
    assert_eq!(
        r.json(),
        serde_json::json!({"error": "TypeError", "message": "The RPC receiver does not implement the method \"nope\"."})
    );

    // fetch() across: method, headers and body arrive; the answer comes back.
    let r = s.get(
        "gw.test",
        "/verify",
        &[("authorization", "Bearer token-bob")],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        serde_json::json!({"ok": true, "user": "bob", "method": "POST", "body": "from gateway"})
    );
    let r = s.get("gw.test", "/verify", &[]);
    assert_eq!(r.status, 401);

    // RPC to the default export, which sees its own env.
    let r = s.get("gw.test", "/describe", &[]);
    assert_eq!(
        r.json(),
        serde_json::json!({"service": "auth", "tokens": 2})
    );
}

#[test]
fn a_service_binding_to_a_worker_not_served_fails_at_start_up() {
    let data = tempfile::tempdir().unwrap();
    let gateway = example("service-bindings/gateway/wrangler.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .arg("serve")
        .arg(&gateway)
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("services: AUTH: service = \"auth\" is not a worker served by this process (serving: gateway)"),
        "{err}"
    );
}
