//! The Hono example through real HTTP, after `npm install` in a temporary
//! copy: routing, logger and CORS middleware, JSON bodies, HS256 JWTs
//! checked through crypto.subtle, and the static front end served as assets
//! (ETag, 304, SPA fallback, run_worker_first for /api/*).

mod web_support;

use std::process::Command;

use web_support::{Server, copy_tree, example};

fn npm_available() -> bool {
    Command::new("npm")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn hono_example_with_middleware_jwt_and_assets() {
    if !npm_available() {
        eprintln!("SKIPPED hono_example_with_middleware_jwt_and_assets: npm is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("hono-app");
    copy_tree(&example("hono-app"), &app);
    let install = Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(&app)
        .output()
        .unwrap();
    assert!(
        install.status.success(),
        "npm install failed: {}",
        String::from_utf8_lossy(&install.stderr)
    );
    let server = Server::start(
        "serve",
        &app.join("wrangler.toml"),
        &dir.path().join("data"),
    );

    // Routing and JSON through Hono, with CORS on /api/*.
    let r = server.get("/api/health");
    assert_eq!((r.status, r.text()), (200, r#"{"ok":true}"#.into()));
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_eq!(r.header("x-served-by"), Some("hono"));
    let r = server.request(
        "OPTIONS",
        "/api/notes",
        &[
            ("Origin", "http://app.test"),
            ("Access-Control-Request-Method", "POST"),
        ],
        b"",
    );
    assert_eq!(r.status, 204);
    assert_eq!(
        r.header("access-control-allow-headers"),
        Some("Authorization,Content-Type")
    );
    assert!(
        r.header("access-control-allow-methods")
            .unwrap()
            .contains("POST")
    );
    assert_eq!(server.get("/api/nope").status, 404);

    // JWT: a token from /api/login opens the protected routes.
    let r = server.request("POST", "/api/login", &[], br#"{"user":"ann"}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    let token = r.json()["token"].as_str().unwrap().to_string();
    assert_eq!(token.split('.').count(), 3);
    let bearer = format!("Bearer {token}");
    let r = server.request(
        "POST",
        "/api/notes",
        &[("Authorization", &bearer)],
        br#"{"text":"hi"}"#,
    );
    assert_eq!((r.status, r.text()), (201, r#"{"count":1}"#.into()));
    let r = server.request("GET", "/api/notes", &[("Authorization", &bearer)], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()[0]["text"], "hi");
    assert_eq!(
        server
            .request("GET", "/api/whoami", &[("Authorization", &bearer)], b"")
            .json()["sub"],
        "ann"
    );
    // A bad signature, a malformed token and no token are all refused.
    // The first signature character carries six whole bits; the last one
    // carries padding bits that base64url decoders ignore, so changing it
    // may leave the signature bytes unchanged.
    let sig_start = token.rfind('.').unwrap() + 1;
    let first = &token[sig_start..sig_start + 1];
    let forged = format!(
        "{}{}{}",
        &token[..sig_start],
        if first == "A" { "B" } else { "A" },
        &token[sig_start + 1..]
    );
    for auth in [format!("Bearer {forged}"), "Bearer not.a.jwt".into()] {
        let r = server.request("GET", "/api/notes", &[("Authorization", &auth)], b"");
        assert_eq!(r.status, 401, "{auth}: {}", r.text());
    }
    assert_eq!(server.get("/api/notes").status, 401);
    let r = server.request("POST", "/api/login", &[], b"{}");
    assert_eq!(r.status, 400);

    // The front end comes from public/ without the worker.
    let r = server.get("/");
    assert_eq!(r.status, 200);
    assert!(r.text().contains("<title>Hearth + Hono notes</title>"));
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(r.header("x-served-by"), None);
    let r = server.get("/app.js");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    let etag = r.header("etag").unwrap().to_string();
    let r = server.request("GET", "/app.js", &[("If-None-Match", &etag)], b"");
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty());
    let r = server.get("/style.css");
    assert_eq!(r.header("content-type"), Some("text/css; charset=utf-8"));
    assert_eq!(server.get("/index.html").header("location"), Some("/"));

    // SPA: a browser navigation to an unknown page gets the shell from the
    // assets; another request reaches the worker, whose fallback asks
    // env.ASSETS for the same shell.
    let r = server.request("GET", "/notes/42", &[("Sec-Fetch-Mode", "navigate")], b"");
    assert_eq!(r.status, 200);
    assert!(r.text().contains("<title>Hearth + Hono notes</title>"));
    assert_eq!(r.header("x-served-by"), None);
    let r = server.get("/notes/42");
    assert_eq!(r.status, 200);
    assert!(r.text().contains("<title>Hearth + Hono notes</title>"));
    assert_eq!(r.header("x-served-by"), Some("hono"));
    assert_eq!(
        r.header("etag").map(str::to_string),
        server.get("/").header("etag").map(str::to_string)
    );
}
