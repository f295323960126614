// Body mixin: every reader on Request and Response.
import { Transcript } from "../../lib/transcript.js";

export default async function () {
  const t = new Transcript();
  t.note("arrayBuffer", await new Response("abc").arrayBuffer());
  t.note("json", await new Response('{"a":1,"b":[true,null]}').json());
  t.note("blob", await (async () => {
    const b = await new Response("xyz", { headers: { "content-type": "text/x" } }).blob();
    return [b.size, b.type, await b.text()];
  })());
  t.note("utf8 text", await new Response(new Uint8Array([0xe2, 0x82, 0xac, 0xff])).text());
  t.note("bom stripped", await new Response(new Uint8Array([0xef, 0xbb, 0xbf, 0x41])).text());
  t.note("request json", await new Request("https://e.com", { method: "POST", body: "[1]" }).json());
  const r = new Response("stream me");
  const reader = r.body.getReader();
  let bytes = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    bytes += value.byteLength;
  }
  t.note("stream bytes", [bytes, r.bodyUsed]);
  return t;
}
