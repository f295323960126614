// node:zlib: round trips in sync, callback and stream forms; decompression errors; crc32.
import zlib from "node:zlib";
import { pipeline } from "node:stream/promises";
import { Readable, Writable } from "node:stream";
import { Transcript } from "../../lib/transcript.js";

export default async function () {
  const t = new Transcript();
  const text = "hello hello hello hello zlib ".repeat(20);
  for (const [c, d] of [["deflateSync", "inflateSync"], ["gzipSync", "gunzipSync"], ["deflateRawSync", "inflateRawSync"], ["brotliCompressSync", "brotliDecompressSync"]]) {
    const z = zlib[c](text);
    t.note(c, [z.length < text.length, zlib[d](z).toString() === text]);
  }
  t.note("unzip gzip", zlib.unzipSync(zlib.gzipSync("u")).toString());
  t.note("gzip header", zlib.gzipSync("x").subarray(0, 3));
  // Fixed inputs produced by zlib itself: decompression is exact.
  t.note("inflate fixed", zlib.inflateSync(Buffer.from("eJzLSM3JyVcozy/KSQEAGgsEXQ==", "base64")).toString());
  t.note("gunzip fixed", zlib.gunzipSync(Buffer.from("H4sIAAAAAAAAA8tIzcnJBwCGphA2BQAAAA==", "base64")).toString());
  t.note("callback", await new Promise((res, rej) => zlib.deflate("cb", (e, z) => (e ? rej(e) : zlib.inflate(z, (e2, o) => (e2 ? rej(e2) : res(o.toString())))))));
  const parts = [];
  await pipeline(Readable.from([Buffer.from(text)]), zlib.createGzip(), zlib.createGunzip(), new Writable({ write(c, _e, cb) { parts.push(c); cb(); } }));
  t.note("stream round trip", Buffer.concat(parts).toString() === text);
  for (const [label, fn] of [
    ["inflate garbage", () => zlib.inflateSync(Buffer.from("not zlib data"))],
    ["gunzip garbage", () => zlib.gunzipSync(Buffer.from("not gzip"))],
    ["inflate truncated", () => zlib.inflateSync(zlib.deflateSync(text).subarray(0, 10))],
  ]) {
    try {
      fn();
      t.note(label, "no throw");
    } catch (e) {
      t.note(label, { name: e.name, code: e.code, errno: e.errno, message: e.message });
    }
  }
  t.note("crc32", typeof zlib.crc32 === "function" ? [zlib.crc32("hello"), zlib.crc32("world", zlib.crc32("hello "))] : "absent");
  t.note("constants", [zlib.constants.Z_BEST_COMPRESSION, zlib.constants.BROTLI_PARAM_QUALITY, zlib.constants.Z_SYNC_FLUSH]);
  return t;
}
