mod common;
use common::Js;

fn run(body: &str) -> String {
    Js::new().run(body)
}

#[test]
fn structured_clone_copies_rich_types() {
    assert_eq!(
        run(
            r#"const o = { d: new Date(5), r: /a+/gi, m: new Map([[1, { x: 1 }]]), s: new Set([1, 2]),
                          b: new Uint16Array([1, 2]).buffer, t: new Uint8Array([9, 8]), e: new RangeError("bad"), n: [1, , 3], big: 10n };
               o.self = o;
               const c = structuredClone(o);
               return [c !== o, c.self === c, c.d.getTime(), c.r.source + "/" + c.r.flags, c.m.get(1).x, c.m.get(1) !== o.m.get(1),
                       [...c.s], c.b.byteLength, c.b !== o.b, Array.from(c.t), c.e instanceof RangeError, c.e.message, 1 in c.n, String(c.big)];"#
        ),
        r#"[true,true,5,"a+/gi",1,true,[1,2],4,true,[9,8],true,"bad",false,"10"]"#
    );
}

#[test]
fn structured_clone_refuses_functions_and_symbols() {
    assert_eq!(
        run(r#"structuredClone({ f() {} })"#),
        "THROW DataCloneError: f() {} could not be cloned."
    );
    assert_eq!(
        run(r#"structuredClone(Symbol("s"))"#),
        "THROW DataCloneError: Symbol(s) could not be cloned."
    );
}

#[test]
fn structured_clone_shares_buffers_between_views() {
    assert_eq!(
        run(
            r#"const buf = new ArrayBuffer(4); const v = { a: new Uint8Array(buf), b: new DataView(buf, 1) };
               const c = structuredClone(v); c.a[1] = 7;
               return [c.a.buffer === c.b.buffer, c.b.getUint8(0), v.a[1]];"#
        ),
        "[true,7,0]"
    );
}

#[test]
fn text_encoder_and_decoder() {
    assert_eq!(
        run(r#"const e = new TextEncoder();
               const into = new Uint8Array(4);
               const res = e.encodeInto("aé€", into);
               const d = new TextDecoder();
               const bom = new TextDecoder().decode(new Uint8Array([0xef, 0xbb, 0xbf, 0x41]));
               const keep = new TextDecoder("utf-8", { ignoreBOM: true }).decode(new Uint8Array([0xef, 0xbb, 0xbf, 0x41]));
               const streamed = d.decode(new Uint8Array([0xe2, 0x82]), { stream: true }) + d.decode(new Uint8Array([0xac]));
               const lossy = new TextDecoder().decode(new Uint8Array([0xff]));
               const latin = new TextDecoder("latin1");
               return [Array.from(e.encode("é")), res.read, res.written, bom, keep.length, streamed, lossy, latin.encoding,
                       latin.decode(new Uint8Array([0xe9])), Array.from(e.encode("\ud800"))];"#),
        r#"[[195,169],2,3,"A",2,"€","�","windows-1252","é",[239,191,189]]"#
    );
}

#[test]
fn text_decoder_fatal_and_bad_labels() {
    assert_eq!(
        run(r#"new TextDecoder("utf-8", { fatal: true }).decode(new Uint8Array([0xc3]))"#),
        "THROW TypeError: Failed to decode input."
    );
    assert_eq!(
        run(r#"new TextDecoder("no-such")"#),
        "THROW RangeError: \"no-such\" is not a valid encoding."
    );
}

#[test]
fn atob_and_btoa() {
    assert_eq!(
        run(r#"let e1, e2;
               try { btoa("€"); } catch (e) { e1 = e.name + ": " + e.message; }
               try { atob("a"); } catch (e) { e2 = e instanceof DOMException && e.name; }
               return [btoa("hello"), atob(" aGVs bG8= "), btoa(String.fromCharCode(255)), e1, e2];"#),
        r#"["aGVsbG8=","hello","/w==","InvalidCharacterError: btoa() can only operate on characters in the Latin1 (ISO/IEC 8859-1) range.","InvalidCharacterError"]"#
    );
}

#[test]
fn url_search_params_are_live_linked() {
    assert_eq!(
        run(r#"const u = new URL("https://a.test/p?x=1&y=2#h");
               const p = u.searchParams;
               p.append("z", "a b"); p.delete("x");
               const s1 = u.href;
               u.search = "?q=3";
               const got = p.get("q");
               p.delete("q");
               return [s1, got, u.href, JSON.stringify({ u }), URL.canParse("nope"), URL.canParse("/x", "https://b.test"), [...new URLSearchParams({ a: "1", b: "2" })].length];"#),
        r#"["https://a.test/p?y=2&z=a+b#h","3","https://a.test/p#h","{\"u\":\"https://a.test/p#h\"}",false,true,2]"#
    );
}

#[test]
fn events_and_event_target() {
    assert_eq!(
        run(r#"const t = new EventTarget(); const seen = [];
               const f = (e) => seen.push("f:" + e.type);
               t.addEventListener("x", f); t.addEventListener("x", f);
               t.addEventListener("x", { handleEvent(e) { seen.push("obj"); } }, { once: true });
               t.addEventListener("x", (e) => { e.preventDefault(); });
               const r1 = t.dispatchEvent(new Event("x", { cancelable: true }));
               t.removeEventListener("x", f);
               t.dispatchEvent(new Event("x"));
               return [seen, r1];"#),
        r#"[["f:x","obj"],false]"#
    );
}

#[test]
fn abort_controller_and_signals() {
    assert_eq!(
        run(r#"const ac = new AbortController(); const seen = [];
               ac.signal.onabort = (e) => seen.push(e.type);
               ac.signal.addEventListener("abort", () => seen.push("listener"));
               ac.abort("why"); ac.abort("again");
               const s = AbortSignal.abort();
               let thrown; try { s.throwIfAborted(); } catch (e) { thrown = e.name + ": " + e.message; }
               const any = AbortSignal.any([new AbortController().signal, ac.signal]);
               let illegal; try { new AbortSignal(); } catch (e) { illegal = e.message; }
               return [seen, ac.signal.aborted, ac.signal.reason, thrown, any.aborted, any.reason, illegal];"#),
        r#"[["abort","listener"],true,"why","AbortError: The operation was aborted",true,"why","Illegal constructor"]"#
    );
}

#[test]
fn abort_signal_timeout_uses_the_host_timer() {
    let js = Js::new();
    let out = js.run(
        r#"const timers = [];
           globalThis.setTimeout = (fn, ms) => { timers.push([fn, ms]); return timers.length; };
           const s = AbortSignal.timeout(250);
           const before = s.aborted;
           timers[0][0]();
           return [before, timers[0][1], s.aborted, s.reason.name, s.reason.message];"#,
    );
    assert_eq!(
        out,
        r#"[false,250,true,"TimeoutError","The operation was aborted due to timeout"]"#
    );
}

#[test]
fn blob_and_file() {
    assert_eq!(
        run(
            r#"const b = new Blob(["ab", new Uint8Array([99]), new Blob(["d"])], { type: "Text/Plain" });
               const s = b.slice(1, -1, "x/y");
               const f = new File(["z"], "n.txt", { lastModified: 42 });
               return [b.size, b.type, await b.text(), await s.text(), s.type, f.name, f.lastModified, f instanceof Blob,
                       await new Response(b.stream()).text(), Array.from(await b.bytes()).length];"#
        ),
        r#"[4,"text/plain","abcd","bc","x/y","n.txt",42,true,"abcd",4]"#
    );
}

#[test]
fn json_stringify_of_a_bigint_uses_v8_wording() {
    assert_eq!(
        run(r#"JSON.stringify({ a: 1n })"#),
        "THROW TypeError: Do not know how to serialize a BigInt"
    );
    assert_eq!(
        run(
            r#"return [JSON.stringify({ a: [1] }, null, 1), JSON.stringify.name, JSON.stringify.length]"#
        ),
        r#"["{\n \"a\": [\n  1\n ]\n}","stringify",3]"#
    );
}
