//! The Cache API through `hearth serve`: an entry whose put() resolved is
//! served again after the server is SIGKILLed and restarted on the same
//! data directory, from `<data dir>/cache/`.

mod web_support;

use web_support::Server;

const WORKER: &str = r#"
const KEY = "https://cache.test/entry";
export default {
  async fetch(request) {
    const url = new URL(request.url);
    if (url.pathname === "/put") {
      const value = url.searchParams.get("v");
      await caches.default.put(KEY, new Response(value, { headers: { "cache-control": "max-age=3600" } }));
      return new Response("stored");
    }
    const hit = await caches.default.match(KEY);
    if (hit === undefined) return new Response("miss", { status: 404 });
    return new Response(await hit.text(), { headers: { "x-cache": hit.headers.get("cf-cache-status") } });
  },
};
"#;

#[test]
fn an_acknowledged_put_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("index.js"), WORKER).unwrap();
    let config = dir.path().join("wrangler.toml");
    std::fs::write(
        &config,
        "name = \"cache\"\nmain = \"index.js\"\ncompatibility_date = \"2025-09-01\"\n",
    )
    .unwrap();
    let data = dir.path().join("data");

    let server = Server::start("serve", &config, &data);
    assert_eq!(server.get("/get").status, 404);
    let r = server.request("POST", "/put?v=kept", &[], b"");
    assert_eq!((r.status, r.text()), (200, "stored".into()));
    server.kill9();

    let server = Server::start("serve", &config, &data);
    let r = server.get("/get");
    assert_eq!((r.status, r.text()), (200, "kept".into()));
    assert_eq!(r.header("x-cache"), Some("HIT"));
    assert!(data.join("cache").join("cache.sqlite").is_file());
}
