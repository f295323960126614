//! Rough cost of the per-request path; run with
//! `cargo test --release -p hearth-webapi --test perf -- --ignored --nocapture`.
use hearth_webapi::{ResponseBody, new_request, response_parts};
use rquickjs::{Context, Function, Runtime, Value};
use std::time::Instant;

#[test]
#[ignore]
fn hello_world_request_cycle() {
    let rt = Runtime::new().unwrap();
    let t = Instant::now();
    let ctx = Context::full(&rt).unwrap();
    ctx.with(|ctx| hearth_webapi::install(&ctx).unwrap());
    eprintln!("install: {:?}", t.elapsed());
    ctx.with(|ctx| {
        let handler: Function = ctx
            .eval("(req) => new Response('Hello ' + new URL(req.url).pathname, {headers: {'content-type': 'text/plain'}})")
            .unwrap();
        let headers = vec![("host".to_string(), "x.test".to_string()), ("accept".to_string(), "*/*".to_string())];
        let n = 20_000;
        let t = Instant::now();
        for _ in 0..n {
            let req = new_request(&ctx, "GET", "https://x.test/hello", &headers, None, None).unwrap();
            let res: Value = handler.call((req,)).unwrap();
            let parts = response_parts(&ctx, &res).unwrap();
            assert!(matches!(parts.body, ResponseBody::Bytes(_)));
        }
        let per = t.elapsed() / n;
        eprintln!("request cycle: {per:?} per request");
    });
}
