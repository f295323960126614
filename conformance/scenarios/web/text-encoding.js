// TextEncoder / TextDecoder: UTF-8, BOM, fatal mode, labels, streaming.
import { Transcript } from "../../lib/transcript.js";

export default async function () {
  const t = new Transcript();
  const enc = new TextEncoder();
  t.note("encoding", enc.encoding);
  t.note("encode", enc.encode("aé€😀"));
  t.note("lone surrogate", enc.encode("\ud800"));
  const buf = new Uint8Array(4);
  t.note("encodeInto", [enc.encodeInto("a€b", buf), buf]);
  const dec = new TextDecoder();
  t.note("decoder", [dec.encoding, dec.fatal, dec.ignoreBOM]);
  t.note("decode", dec.decode(new Uint8Array([0xef, 0xbb, 0xbf, 0x68, 0xc3, 0xa9])));
  t.note("invalid replaced", dec.decode(new Uint8Array([0x61, 0xff, 0x62])));
  t.note("ignoreBOM", new TextDecoder("utf-8", { ignoreBOM: true }).decode(new Uint8Array([0xef, 0xbb, 0xbf, 0x41])));
  await t.step("fatal", () => new TextDecoder("utf-8", { fatal: true }).decode(new Uint8Array([0xff])));
  t.note("label", new TextDecoder(" UTF8 ").encoding);
  await t.step("unknown label", () => new TextDecoder("nope"));
  const s = new TextDecoder();
  t.note("stream", s.decode(new Uint8Array([0xe2, 0x82]), { stream: true }) + "|" + s.decode(new Uint8Array([0xac])));
  t.note("no input", dec.decode());
  t.note("utf-16le", new TextDecoder("utf-16le").decode(new Uint8Array([0x68, 0, 0x69, 0])));
  return t;
}
