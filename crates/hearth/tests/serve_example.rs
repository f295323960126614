//! `hearth serve` on the KV + D1 + R2 example, through real HTTP: every
//! route, SIGKILL of the server with acknowledged writes surviving the
//! restart, and a SIGTERM that finishes cleanly.

mod web_support;

use std::path::{Path, PathBuf};
use std::process::Command;

use web_support::Server;

fn example_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/bindings/wrangler.toml")
}

#[test]
fn example_worker_serves_kv_d1_and_r2() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start("serve", &example_config(), data.path());

    let r = server.request("GET", "/", &[], b"");
    assert_eq!((r.status, r.text()), (200, "Hello from Hearth\n".into()));

    // KV
    assert_eq!(
        server
            .request("PUT", "/kv/greeting", &[], b"hi there")
            .status,
        204
    );
    let r = server.request("GET", "/kv/greeting", &[], b"");
    assert_eq!((r.status, r.text()), (200, "hi there".into()));
    assert_eq!(
        server.request("GET", "/kv", &[], b"").text(),
        r#"["greeting"]"#
    );
    assert_eq!(server.request("GET", "/kv/missing", &[], b"").status, 404);

    // D1
    let r = server.request("POST", "/notes", &[], br#"{"text":"first"}"#);
    assert_eq!((r.status, r.text()), (201, r#"{"id":1}"#.into()));
    let r = server.request("POST", "/notes", &[], br#"{"text":""}"#);
    assert_eq!(r.status, 400);
    let r = server.request("GET", "/notes", &[], b"");
    assert_eq!(r.text(), r#"[{"id":1,"text":"first"}]"#);

    // R2, with the conditional GET answered from the object's etag.
    let body: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let r = server.request(
        "PUT",
        "/files/data.bin",
        &[("content-type", "application/x-test")],
        &body,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let r = server.request("GET", "/files/data.bin", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/x-test"));
    assert!(r.body == body, "R2 body differs");
    let etag = r.header("etag").unwrap().to_string();
    let r = server.request("GET", "/files/data.bin", &[("if-none-match", &etag)], b"");
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty());

    // Health names each binding with its backend.
    let health = server.request("GET", "/__hearth/health", &[], b"").text();
    for needle in [
        "\"CACHE\"",
        "\"kv_namespace\"",
        "\"DB\"",
        "\"d1\"",
        "\"FILES\"",
        "\"r2_bucket\"",
    ] {
        assert!(health.contains(needle), "{needle} missing from {health}");
    }
}

#[test]
fn acknowledged_writes_survive_sigkill_of_the_server() {
    let data = tempfile::tempdir().unwrap();
    let mut server = Server::start("serve", &example_config(), data.path());
    for i in 0..20 {
        let key = format!("/kv/k{i}");
        assert_eq!(
            server
                .request("PUT", &key, &[], format!("v{i}").as_bytes())
                .status,
            204
        );
        let note = format!(r#"{{"text":"note {i}"}}"#);
        assert_eq!(
            server
                .request("POST", "/notes", &[], note.as_bytes())
                .status,
            201
        );
        let file = format!("/files/f{i}");
        assert_eq!(
            server
                .request("PUT", &file, &[], &vec![i as u8; 70_000])
                .status,
            201
        );
    }
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    drop(server);

    let server = Server::start("serve", &example_config(), data.path());
    for i in 0..20 {
        let r = server.request("GET", &format!("/kv/k{i}"), &[], b"");
        assert_eq!((r.status, r.text()), (200, format!("v{i}")));
        let r = server.request("GET", &format!("/files/f{i}"), &[], b"");
        assert_eq!(r.status, 200);
        assert!(r.body == vec![i as u8; 70_000], "f{i} differs");
    }
    let notes = server.request("GET", "/notes", &[], b"").text();
    assert_eq!(notes.matches("\"text\":\"note ").count(), 20, "{notes}");
}

#[test]
fn sigterm_stops_the_server_cleanly() {
    let data = tempfile::tempdir().unwrap();
    let mut server = Server::start("serve", &example_config(), data.path());
    assert_eq!(server.request("GET", "/", &[], b"").status, 200);
    let pid = server.child.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let status = server.child.wait().unwrap();
    assert!(status.success(), "exit after SIGTERM: {status:?}");
}

#[test]
fn missing_main_is_a_clear_start_up_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("wrangler.toml"),
        "name = \"w\"\nmain = \"src/nope.js\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .arg("serve")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("main: the file"), "{stderr}");
    assert!(stderr.contains("nope.js"), "{stderr}");
}

#[test]
fn syntax_error_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("wrangler.toml"),
        "name = \"w\"\nmain = \"index.js\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("index.js"),
        "export default {\n  fetch() {\n    return new Response(;\n  }\n};\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .arg("serve")
        .arg(dir.path())
        .args(["--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("index.js:3"), "{stderr}");
}
