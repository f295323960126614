mod common;
use common::Js;

fn run(body: &str) -> String {
    Js::new().run(body)
}

#[test]
fn headers_are_case_insensitive_and_combine_values() {
    assert_eq!(
        run(r#"const h = new Headers({"Content-Type": "text/plain"});
               h.append("X-A", "1"); h.append("x-a", " 2 ");
               return [h.get("content-type"), h.get("X-A"), h.has("CONTENT-TYPE"), h.get("missing")];"#),
        r#"["text/plain","1, 2",true,null]"#
    );
}

#[test]
fn headers_iterate_sorted_with_set_cookie_kept_apart() {
    assert_eq!(
        run(
            r#"const h = new Headers([["b", "2"], ["Set-Cookie", "a=1"], ["a", "1"], ["set-cookie", "b=2"]]);
               return [[...h], h.getSetCookie(), h.get("set-cookie")];"#
        ),
        r#"[[["a","1"],["b","2"],["set-cookie","a=1"],["set-cookie","b=2"]],["a=1","b=2"],"a=1, b=2"]"#
    );
}

#[test]
fn headers_reject_invalid_names_and_values() {
    assert_eq!(
        run(r#"new Headers().set("bad name", "x")"#),
        "THROW TypeError: Invalid header name."
    );
    assert_eq!(
        run(r#"new Headers().set("x", "a\nb")"#),
        "THROW TypeError: Invalid header value."
    );
    assert_eq!(
        run(r#"new Headers([["a"]])"#),
        "THROW TypeError: To initialize a Headers object from a sequence, each inner sequence must have exactly two elements."
    );
}

#[test]
fn immutable_headers_refuse_changes() {
    assert_eq!(
        run(r#"Response.redirect("https://example.com/x").headers.set("a", "b")"#),
        "THROW TypeError: Can't modify immutable headers."
    );
    assert_eq!(
        run(r#"Response.error().headers.append("a", "b")"#),
        "THROW TypeError: Can't modify immutable headers."
    );
}

#[test]
fn request_from_string_and_init() {
    assert_eq!(
        run(
            r#"const r = new Request("https://Example.com/a?b#c", {method: "post", body: "hi", headers: {"X-Y": "z"}, cf: {cacheTtl: 5}});
               return [r.method, r.url, r.headers.get("x-y"), r.headers.get("content-type"), r.cf.cacheTtl, r.redirect, r.signal.aborted, await r.text(), r.bodyUsed];"#
        ),
        r#"["POST","https://example.com/a?b#c","z","text/plain;charset=UTF-8",5,"follow",false,"hi",true]"#
    );
}

#[test]
fn request_rules() {
    assert_eq!(
        run(r#"new Request("/relative")"#),
        "THROW TypeError: Invalid URL: /relative"
    );
    assert_eq!(
        run(r#"new Request("https://x.test/", {body: "a"})"#),
        "THROW TypeError: Request with a GET or HEAD method cannot have a body."
    );
    assert_eq!(
        run(
            r#"const a = new Request("https://x.test/", {method: "PUT", body: "a", headers: {"x": "1"}});
               const b = new Request(a, {headers: {"y": "2"}});
               return [b.method, b.headers.get("x"), b.headers.get("y"), a.bodyUsed, await b.text()];"#
        ),
        r#"["PUT",null,"2",true,"a"]"#
    );
}

#[test]
fn body_can_be_read_once_and_clone_tees() {
    assert_eq!(
        run(r#"const r = new Response("abc"); await r.text(); return await r.text();"#),
        "THROW TypeError: Body has already been used. It can only be used once. Use tee() first if you need to read it twice."
    );
    assert_eq!(
        run(
            r#"const r = new Response(new ReadableStream({start(c){ c.enqueue(new TextEncoder().encode("st")); c.enqueue(new TextEncoder().encode("ream")); c.close(); }}));
               const c = r.clone(); return [await r.text(), await c.text()];"#
        ),
        r#"["stream","stream"]"#
    );
}

#[test]
fn response_status_rules() {
    assert_eq!(
        run(r#"new Response("x", {status: 199})"#),
        "THROW RangeError: Responses may only be constructed with status codes in the range 200 to 599, inclusive."
    );
    assert_eq!(
        run(r#"new Response("x", {status: 204})"#),
        "THROW TypeError: Response with null body status (101, 204, 205, or 304) cannot have a body."
    );
    assert_eq!(
        run(r#"Response.redirect("https://a.test/", 200)"#),
        "THROW RangeError: 200 is not a redirect status code. It must be one of: 301, 302, 303, 307, or 308."
    );
    assert_eq!(
        run(r#"Response.redirect("/relative")"#),
        "THROW TypeError: Unable to parse URL: /relative"
    );
    assert_eq!(
        run(r#"new Response(null, {status: 200, webSocket: {}})"#),
        "THROW RangeError: Responses with a WebSocket must have status code 101."
    );
    assert_eq!(
        run(r#"new Response("x", {statusText: "a\r\nb"})"#),
        "THROW TypeError: Invalid statusText"
    );
    assert_eq!(
        run(
            r#"const r = new Response("", {status: 204}); return [r.status, r.body, r.statusText, new Response("x", {status: 404}).statusText, new Response("x", {statusText: ""}).statusText];"#
        ),
        r#"[204,null,"No Content","Not Found",""]"#
    );
    assert_eq!(
        run(
            r#"const ws = {}; const r = new Response(null, {status: 101, webSocket: ws}); return [r.status, r.webSocket === ws];"#
        ),
        "[101,true]"
    );
}

#[test]
fn response_helpers() {
    assert_eq!(
        run(r#"const j = Response.json({a: 1}, {status: 201});
               const r = Response.redirect("https://a.test/x", 301);
               const e = Response.error();
               return [j.status, j.headers.get("content-type"), await j.json(), r.status, r.headers.get("location"), e.type, e.status, j.ok, e.ok];"#),
        r#"[201,"application/json",{"a":1},301,"https://a.test/x","error",0,true,false]"#
    );
}

#[test]
fn body_methods_cover_each_type() {
    assert_eq!(
        run(r#"const bytes = new Uint8Array([104, 105]);
               const ab = await new Response(bytes).arrayBuffer();
               const blob = await new Response("xyz", {headers: {"content-type": "text/x"}}).blob();
               const u8 = await new Response("é").bytes();
               const body = new Response("streamed").body;
               const chunk = await body.getReader().read();
               return [ab.byteLength, new TextDecoder().decode(ab), blob.size, blob.type, Array.from(u8), new TextDecoder().decode(chunk.value),
                       new Response(new URLSearchParams("a=1&b=2")).headers.get("content-type"), new Response().body];"#),
        r#"[2,"hi",3,"text/x",[195,169],"streamed","application/x-www-form-urlencoded;charset=UTF-8",null]"#
    );
}

#[test]
fn form_data_round_trips_through_multipart() {
    assert_eq!(
        run(r#"const f = new FormData();
               f.append("name", "Ada\nLovelace");
               f.append("file", new Blob([new Uint8Array([0, 255, 10])], {type: "application/x-bin"}), "a\"b.bin");
               f.append("name", "second");
               const res = new Response(f);
               const ct = res.headers.get("content-type");
               const back = await res.formData();
               const file = back.get("file");
               return [ct.startsWith("multipart/form-data; boundary="), back.getAll("name"), file instanceof File, file.name, file.type, Array.from(await file.bytes())];"#),
        r#"[true,["Ada\r\nLovelace","second"],true,"a\"b.bin","application/x-bin",[0,255,10]]"#
    );
}

#[test]
fn form_data_from_urlencoded_and_methods() {
    assert_eq!(
        run(
            r#"const r = new Request("https://x.test/", {method: "POST", body: "a=1&b=x+y&a=2", headers: {"content-type": "application/x-www-form-urlencoded"}});
               const f = await r.formData();
               f.set("a", "3"); f.delete("zz");
               const g = new FormData(); g.append("k", new Blob(["v"]));
               return [[...f], f.has("b"), f.get("none"), g.get("k").name];"#
        ),
        r#"[[["a","3"],["b","x y"]],true,null,"blob"]"#
    );
    assert_eq!(
        run(
            r#"return await new Response("x", {headers: {"content-type": "text/plain"}}).formData();"#
        ),
        "THROW TypeError: Unrecognized Content-Type header value. FormData can only parse the following MIME types: multipart/form-data, application/x-www-form-urlencoded"
    );
}

#[test]
fn host_hooks_build_requests_and_read_responses() {
    assert_eq!(
        run(r#"const h = globalThis.__hearth_webapi;
               const req = h.makeRequest("POST", "https://x.test/p", ["Host", "x.test", "content-type", "text/plain"], new TextEncoder().encode("body"), {colo: "LHR"});
               const parts = h.responseParts(new Response("ok", {status: 201, headers: [["set-cookie", "a=1"], ["set-cookie", "b=2"]]}));
               const parts2 = h.responseParts(new Response(new Uint8Array([1,2])));
               return [req instanceof Request, req.method, req.url, req.headers.get("host"), req.cf.colo, await req.text(),
                       parts[0], parts[2], parts[3], parts[4], parts2[3], parts2[2]];"#),
        r#"[true,"POST","https://x.test/p","x.test","LHR","body",201,["set-cookie","a=1","set-cookie","b=2","content-type","text/plain;charset=UTF-8"],1,"ok",2,[]]"#
    );
}
