mod common;
use common::Js;
use hearth_webapi::{
    ResponseBody, chunk_bytes, is_response, new_request, read_chunk, response_parts,
};
use rquickjs::{CatchResultExt, Function, Object, Promise, Value};

#[test]
fn host_builds_a_request_the_handler_can_read() {
    let js = Js::new();
    js.ctx.with(|ctx| {
        let headers = vec![("Content-Type".to_string(), "application/json".to_string())];
        let cf: Object = ctx.eval("({country: 'NZ'})").unwrap();
        let req = new_request(
            &ctx,
            "POST",
            "https://h.test/a?b=1",
            &headers,
            Some(br#"{"k":2}"#),
            Some(cf.into_value()),
        )
        .catch(&ctx)
        .unwrap();
        ctx.globals().set("req", req).unwrap();
    });
    let out = js.run(
        "return [req.method, req.url, req.headers.get('content-type'), req.cf.country, (await req.json()).k, req.bodyUsed];",
    );
    assert_eq!(
        out,
        r#"["POST","https://h.test/a?b=1","application/json","NZ",2,true]"#
    );
}

#[test]
fn host_reads_in_memory_bodies_without_streams() {
    let js = Js::new();
    js.ctx.with(|ctx| {
        let res: Value = ctx
            .eval("new Response('héllo', {status: 202, statusText: 'Accepted', headers: {'x-a': '1'}})")
            .unwrap();
        assert!(is_response(&ctx, &res).unwrap());
        let parts = response_parts(&ctx, &res).catch(&ctx).unwrap();
        assert_eq!(parts.status, 202);
        assert_eq!(parts.status_text, "Accepted");
        assert_eq!(
            parts.headers,
            vec![("x-a".into(), "1".into()), ("content-type".into(), "text/plain;charset=UTF-8".into())]
        );
        match parts.body {
            ResponseBody::Bytes(b) => assert_eq!(b, "héllo".as_bytes()),
            _ => panic!("expected bytes"),
        }
        assert!(parts.web_socket.is_none());
        // The body is now used; a second read is refused.
        let again = response_parts(&ctx, &res);
        assert!(again.is_err());
        let not: Value = ctx.eval("({})").unwrap();
        assert!(!is_response(&ctx, &not).unwrap());
        let empty: Value = ctx.eval("new Response(null, {status: 204})").unwrap();
        assert!(matches!(response_parts(&ctx, &empty).unwrap().body, ResponseBody::None));
    });
}

#[test]
fn host_drains_a_stream_body_chunk_by_chunk() {
    let js = Js::new();
    let stream = js.ctx.with(|ctx| {
        let res: Value = ctx
            .eval(
                "new Response(new ReadableStream({ n: 0, pull(c) { if (this.n < 3) c.enqueue(this.n++ === 1 ? 'text' : new Uint8Array([this.n])); else c.close(); } }))",
            )
            .unwrap();
        let parts = response_parts(&ctx, &res).unwrap();
        match parts.body {
            ResponseBody::Stream(s) => rquickjs::Persistent::save(&ctx, s),
            _ => panic!("expected a stream"),
        }
    });
    let mut got = Vec::new();
    loop {
        js.ctx.with(|ctx| {
            let s = stream.clone().restore(&ctx).unwrap();
            let p: Promise = Promise::from_value(read_chunk(&ctx, &s).unwrap()).unwrap();
            // Park the promise on the global so it survives across `with` calls.
            ctx.globals().set("__p", p.clone()).unwrap();
            let f: Function = ctx
                .eval("(p) => p.then(v => { globalThis.__chunk = v; globalThis.__done = true; })")
                .unwrap();
            ctx.globals().set("__done", false).unwrap();
            f.call::<_, ()>((p,)).unwrap();
        });
        js.drain();
        let chunk = js.ctx.with(|ctx| {
            assert!(ctx.globals().get::<_, bool>("__done").unwrap());
            let v: Value = ctx.globals().get("__chunk").unwrap();
            chunk_bytes(&ctx, &v).unwrap()
        });
        match chunk {
            Some(b) => got.extend(b),
            None => break,
        }
    }
    assert_eq!(got, vec![1, b't', b'e', b'x', b't', 3]);
}

#[test]
fn host_reads_outbound_requests_and_wraps_fetched_responses() {
    use hearth_webapi::{Body, ResponseInit, new_body_stream, new_response, request_parts};
    let js = Js::new();
    js.ctx.with(|ctx| {
        let req: Value = ctx
            .eval("new Request('https://api.test/v1', {method: 'PUT', body: 'data', headers: {'x-k': 'v'}, redirect: 'manual'})")
            .unwrap();
        let parts = request_parts(&ctx, &req).catch(&ctx).unwrap();
        assert_eq!(parts.method, "PUT");
        assert_eq!(parts.url, "https://api.test/v1");
        assert_eq!(parts.redirect, "manual");
        assert!(parts.headers.contains(&("x-k".into(), "v".into())));
        assert!(matches!(parts.body, Body::Bytes(ref b) if b == b"data"));
        assert!(parts.signal.is_none());

        let headers = vec![("Content-Type".to_string(), "text/plain".to_string())];
        let init = ResponseInit { status: 404, status_text: "Not Found", headers: &headers, url: "https://api.test/v2", redirected: true };
        let res = new_response(&ctx, &init, Body::Bytes(b"missing".to_vec())).unwrap();
        ctx.globals().set("fetched", res).unwrap();
        let (stream, controller) = new_body_stream(&ctx).unwrap();
        let enqueue: Function = controller.get("enqueue").unwrap();
        enqueue.call::<_, ()>((rquickjs::TypedArray::<u8>::new(ctx.clone(), b"chunk-1 ".to_vec()).unwrap(),)).unwrap();
        enqueue.call::<_, ()>((rquickjs::TypedArray::<u8>::new(ctx.clone(), b"chunk-2".to_vec()).unwrap(),)).unwrap();
        let close: Function = controller.get("close").unwrap();
        close.call::<_, ()>(()).unwrap();
        let init = ResponseInit { status: 200, status_text: "OK", headers: &[], url: "https://api.test/s", redirected: false };
        let streamed = new_response(&ctx, &init, Body::Stream(stream)).unwrap();
        ctx.globals().set("streamed", streamed).unwrap();
    });
    let out = js.run(
        "return [fetched.status, fetched.ok, fetched.url, fetched.redirected, fetched.headers.get('content-type'), await fetched.text(), await streamed.text()];",
    );
    assert_eq!(
        out,
        r#"[404,false,"https://api.test/v2",true,"text/plain","missing","chunk-1 chunk-2"]"#
    );
}
