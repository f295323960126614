mod common;
use common::Js;

fn run(body: &str) -> String {
    Js::new().run(body)
}

#[test]
fn readable_stream_pulls_with_backpressure() {
    assert_eq!(
        run(r#"let pulls = 0, n = 0;
               const rs = new ReadableStream({ pull(c) { pulls++; if (n < 3) c.enqueue(n++); else c.close(); } }, { highWaterMark: 1 });
               const r = rs.getReader();
               const out = [];
               for (;;) { const x = await r.read(); if (x.done) break; out.push(x.value); }
               return [out, pulls <= 5, rs.locked, await r.closed];"#),
        "[[0,1,2],true,true,null]"
    );
}

#[test]
fn reader_lock_and_cancel() {
    assert_eq!(
        run(r#"let reason;
               const rs = new ReadableStream({ cancel(r) { reason = r; } });
               const r = rs.getReader();
               let err; try { rs.getReader(); } catch (e) { err = e.message; }
               await r.cancel("bye");
               const after = await r.read();
               r.releaseLock();
               return [err, reason, after.done, rs.locked];"#),
        r#"["This ReadableStream is currently locked to a reader.","bye",true,false]"#
    );
}

#[test]
fn errors_propagate_to_readers() {
    assert_eq!(
        run(
            r#"const rs = new ReadableStream({ start(c) { c.enqueue("a"); c.error(new TypeError("boom")); } });
               const r = rs.getReader();
               try { await r.read(); } catch (e) { return e.message; }
               return "no error";"#
        ),
        r#""boom""#
    );
}

#[test]
fn async_iteration_and_from() {
    assert_eq!(
        run(r#"const out = [];
               for await (const x of ReadableStream.from((async function* () { yield 1; yield 2; yield 3; })())) out.push(x);
               for await (const x of ReadableStream.from(["a", "b"])) out.push(x);
               return out;"#),
        r#"[1,2,3,"a","b"]"#
    );
}

#[test]
fn tee_gives_both_branches_every_chunk() {
    assert_eq!(
        run(r#"const rs = ReadableStream.from([1, 2, 3]);
               const [a, b] = rs.tee();
               const all = async (s) => { const o = []; for await (const x of s) o.push(x); return o; };
               return [await all(a), await all(b), rs.locked];"#),
        "[[1,2,3],[1,2,3],true]"
    );
}

#[test]
fn writable_stream_writes_in_order_and_closes() {
    assert_eq!(
        run(r#"const got = []; let closed = false;
               const ws = new WritableStream({ async write(c) { await null; got.push(c); }, close() { closed = true; } });
               const w = ws.getWriter();
               w.write(1); w.write(2); await w.write(3);
               await w.close();
               return [got, closed, await w.closed];"#),
        "[[1,2,3],true,null]"
    );
}

#[test]
fn writable_abort_rejects_pending_writes() {
    assert_eq!(
        run(r#"let aborted, release;
               const ws = new WritableStream({ write() { return new Promise((r) => { release = r; }); }, abort(r) { aborted = r; } });
               const w = ws.getWriter();
               const first = w.write("in flight");
               const second = w.write("queued").catch((e) => "rejected:" + e);
               await null;
               const ab = w.abort("stop");
               // Abort waits for the in-flight write, then rejects the queue.
               release();
               await first;
               return [await second, await ab, aborted];"#),
        r#"["rejected:stop",null,"stop"]"#
    );
}

#[test]
fn transform_stream_pipe_through() {
    assert_eq!(
        run(
            r#"const upper = new TransformStream({ transform(chunk, c) { c.enqueue(chunk.toUpperCase()); }, flush(c) { c.enqueue("!"); } });
               const out = [];
               for await (const x of ReadableStream.from(["a", "b"]).pipeThrough(upper)) out.push(x);
               return out;"#
        ),
        r#"["A","B","!"]"#
    );
}

#[test]
fn pipe_to_writable_and_identity_transform_as_body() {
    assert_eq!(
        run(r#"const got = [];
               await ReadableStream.from([1, 2]).pipeTo(new WritableStream({ write(c) { got.push(c); } }));
               const { readable, writable } = new IdentityTransformStream();
               const w = writable.getWriter();
               w.write(new TextEncoder().encode("hello "));
               w.write(new TextEncoder().encode("world"));
               w.close();
               return [got, await new Response(readable).text()];"#),
        r#"[[1,2],"hello world"]"#
    );
}

#[test]
fn pipe_to_honours_abort_signal() {
    assert_eq!(
        run(r#"const ac = new AbortController();
               const rs = new ReadableStream({ pull() { return new Promise(() => {}); } });
               const p = rs.pipeTo(new WritableStream(), { signal: ac.signal });
               ac.abort();
               try { await p; } catch (e) { return [e.name, rs.locked]; }
               return "resolved";"#),
        r#"["AbortError",false]"#
    );
}

#[test]
fn text_encoder_and_decoder_streams() {
    assert_eq!(
        run(r#"const bytes = new TextEncoder().encode("héllo");
               const parts = [bytes.slice(0, 2), bytes.slice(2)];
               let s = "";
               for await (const x of ReadableStream.from(parts).pipeThrough(new TextDecoderStream())) s += x;
               const enc = ReadableStream.from(["a", "é"]).pipeThrough(new TextEncoderStream());
               const total = await new Response(enc).bytes();
               return [s, Array.from(total)];"#),
        r#"["héllo",[97,195,169]]"#
    );
}

#[test]
fn byob_reader_fills_views() {
    assert_eq!(
        run(
            r#"const rs = new ReadableStream({ type: "bytes", start(c) { c.enqueue(new Uint8Array([1, 2, 3, 4, 5])); c.close(); } });
               const r = rs.getReader({ mode: "byob" });
               const a = await r.read(new Uint8Array(2));
               const b = await r.read(new Uint8Array(8));
               const c = await r.read(new Uint8Array(8));
               return [Array.from(a.value), Array.from(b.value), c.done];"#
        ),
        "[[1,2],[3,4,5],true]"
    );
}

#[test]
fn fixed_length_stream_checks_length() {
    assert_eq!(
        run(r#"const { readable, writable } = new FixedLengthStream(3);
               const w = writable.getWriter();
               const p = new Response(readable).text();
               await w.write(new Uint8Array([97, 98]));
               const err = await w.write(new Uint8Array([99, 100])).catch((e) => e.message);
               return err;"#),
        r#""Attempt to write too many bytes through a FixedLengthStream.""#
    );
}

#[test]
fn compression_streams_round_trip_every_format() {
    assert_eq!(
        run(r#"const text = "price,volume\n".repeat(2000);
               const out = [];
               for (const f of ["gzip", "deflate", "deflate-raw"]) {
                 const packed = await new Response(new Blob([text]).stream().pipeThrough(new CompressionStream(f))).arrayBuffer();
                 const back = await new Response(new Response(packed).body.pipeThrough(new DecompressionStream(f))).text();
                 out.push([f, packed.byteLength < text.length / 10, back === text]);
               }
               const gz = new Uint8Array(await new Response(new Blob(["x"]).stream().pipeThrough(new CompressionStream("gzip"))).arrayBuffer());
               out.push([gz[0], gz[1]]);
               return out;"#),
        r#"[["gzip",true,true],["deflate",true,true],["deflate-raw",true,true],[31,139]]"#
    );
}

#[test]
fn compression_streams_reject_bad_format_and_corrupt_input() {
    assert_eq!(
        run(
            r#"let bad; try { new CompressionStream("zip"); } catch (e) { bad = [e.name, e.message]; }
               let corrupt;
               try {
                 await new Response(new Response(new Uint8Array([1, 2, 3, 4, 5])).body.pipeThrough(new DecompressionStream("gzip"))).arrayBuffer();
               } catch (e) { corrupt = e.name; }
               const whole = new Uint8Array(await new Response(new Blob(["hello world"]).stream().pipeThrough(new CompressionStream("gzip"))).arrayBuffer());
               let truncated;
               try {
                 await new Response(new Response(whole.slice(0, whole.length - 6)).body.pipeThrough(new DecompressionStream("gzip"))).text();
               } catch (e) { truncated = e.name; }
               return [bad, corrupt, truncated];"#
        ),
        r#"[["TypeError","The compression format must be either 'deflate', 'deflate-raw' or 'gzip'."],"TypeError","TypeError"]"#
    );
}
