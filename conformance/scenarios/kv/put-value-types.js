// KV put accepts strings, ArrayBuffers, views and streams.
import { Transcript } from "../../lib/transcript.js";

export default async function ({ env }) {
  const t = new Transcript();
  await t.step("ArrayBuffer", async () => {
    await env.KV.put("pvt:ab", new Uint8Array([0, 255, 10]).buffer);
    return env.KV.get("pvt:ab", "arrayBuffer");
  });
  await t.step("Uint8Array", async () => {
    await env.KV.put("pvt:u8", new Uint8Array([104, 105]));
    return env.KV.get("pvt:u8");
  });
  await t.step("DataView", async () => {
    await env.KV.put("pvt:dv", new DataView(new Uint8Array([65, 66, 67]).buffer, 1));
    return env.KV.get("pvt:dv");
  });
  await t.step("ReadableStream", async () => {
    await env.KV.put("pvt:stream", new Response("streamed").body);
    return env.KV.get("pvt:stream");
  });
  await t.step("number", () => env.KV.put("pvt:num", 42));
  await t.step("object", () => env.KV.put("pvt:obj", { a: 1 }));
  await t.step("null", () => env.KV.put("pvt:null", null));
  return t;
}
