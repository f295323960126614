//! The TypeScript example through real HTTP: `.ts` modules with interfaces,
//! enums and an import of another `.ts` module, over KV.

mod web_support;

use web_support::{Server, example};

#[test]
fn typescript_example_serves_typed_todos_over_kv() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start("serve", &example("typescript/wrangler.toml"), data.path());

    let r = server.get("/");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        serde_json::json!({"app": "Typed todos", "todos": 0})
    );

    let r = server.request("POST", "/todos", &[], br#"{"title":"  write docs "}"#);
    assert_eq!(r.status, 201, "{}", r.text());
    let todo = r.json();
    assert_eq!(todo["title"], "write docs");
    assert_eq!(todo["done"], false);
    let id = todo["id"].as_str().unwrap().to_string();

    // The ValidationError class from todos.ts reaches the handler intact.
    let r = server.request("POST", "/todos", &[], br#"{"title":""}"#);
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json(),
        serde_json::json!({"error": "title must be a non-empty string", "field": "title"})
    );

    let r = server.request("POST", &format!("/todos/{id}/done"), &[], b"");
    assert_eq!(r.json()["done"], true);
    let r = server.get("/todos");
    assert_eq!(r.json().as_array().unwrap().len(), 1);
    assert_eq!(server.get("/todos/nope").status, 404);
    assert_eq!(server.get("/").json()["todos"], 1);
}
