mod common;

use bytes::Bytes;
use common::*;
use http_body_util::Full;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_world() {
    let s = start(&[(
        "index.js",
        r#"export default { fetch() { return new Response("Hello World!"); } };"#,
    )])
    .await;
    let r = get(s.addr, "/").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, "Hello World!");
    assert_eq!(r.headers["content-type"], "text/plain;charset=UTF-8");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_method_url_headers_and_body_reach_the_worker() {
    let s = start(&[(
        "index.js",
        r#"export default {
          async fetch(req) {
            const body = await req.text();
            return Response.json({
              method: req.method,
              url: req.url,
              header: req.headers.get("x-test"),
              body,
            }, { status: 201, headers: { "x-reply": "yes" } });
          }
        };"#,
    )])
    .await;
    let req = http::Request::post("/path/x?q=1")
        .header("host", "example.com")
        .header("x-test", "abc")
        .body(Full::new(Bytes::from("payload")))
        .unwrap();
    let r = send(s.addr, req).await;
    assert_eq!(r.status, 201);
    assert_eq!(r.headers["x-reply"], "yes");
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["method"], "POST");
    assert_eq!(v["url"], "http://example.com/path/x?q=1");
    assert_eq!(v["header"], "abc");
    assert_eq!(v["body"], "payload");
    s.stop().await;
}
