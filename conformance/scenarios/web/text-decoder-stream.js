// TextDecoder with {stream: true}: split multi-byte sequences, BOM, fatal mode.
import { Transcript } from "../../lib/transcript.js";

export default async function () {
  const t = new Transcript();
  const euro = [0xe2, 0x82, 0xac];
  await t.step("split across calls", () => {
    const d = new TextDecoder();
    return [d.decode(new Uint8Array(euro.slice(0, 1)), { stream: true }), d.decode(new Uint8Array(euro.slice(1)), { stream: true }), d.decode()];
  });
  await t.step("incomplete at end", () => {
    const d = new TextDecoder();
    return [d.decode(new Uint8Array([0x61, 0xe2, 0x82]), { stream: true }), d.decode()];
  });
  await t.step("fatal incomplete at end", () => {
    const d = new TextDecoder("utf-8", { fatal: true });
    d.decode(new Uint8Array([0xe2]), { stream: true });
    return d.decode();
  });
  await t.step("bom once per stream", () => {
    const d = new TextDecoder();
    return [d.decode(new Uint8Array([0xef, 0xbb, 0xbf, 0x41]), { stream: true }), d.decode(new Uint8Array([0xef, 0xbb, 0xbf, 0x42]))];
  });
  await t.step("ignoreBOM", () => new TextDecoder("utf-8", { ignoreBOM: true }).decode(new Uint8Array([0xef, 0xbb, 0xbf, 0x41])).length);
  await t.step("reuse after flush", () => {
    const d = new TextDecoder();
    d.decode(new Uint8Array([0xe2]), { stream: true });
    d.decode();
    return d.decode(new Uint8Array([0x41]));
  });
  await t.step("utf-16le split", () => {
    const d = new TextDecoder("utf-16le");
    return [d.decode(new Uint8Array([0x41]), { stream: true }), d.decode(new Uint8Array([0x00, 0x42, 0x00]))];
  });
  await t.step("labels", () => ["unicode-1-1-utf-8", "UTF8", " utf-8 ", "latin1", "utf-16"].map((l) => new TextDecoder(l).encoding));
  await t.step("decode DataView", () => new TextDecoder().decode(new DataView(new Uint8Array([0x68, 0x69]).buffer)));
  return t;
}
