// node:string_decoder: multi-byte characters split across writes.
import { StringDecoder } from "node:string_decoder";
import { Transcript } from "../../lib/transcript.js";

export default async function () {
  const t = new Transcript();
  const d = new StringDecoder("utf8");
  const euro = new Uint8Array([0xe2, 0x82, 0xac]);
  t.note("split", [d.write(euro.subarray(0, 1)), d.write(euro.subarray(1, 2)), d.write(euro.subarray(2))]);
  t.note("end incomplete", [d.write(new Uint8Array([0xf0, 0x9f])), d.end()]);
  const h = new StringDecoder("hex");
  t.note("hex", h.write(new Uint8Array([1, 255])));
  const b = new StringDecoder("base64");
  t.note("base64", [b.write(new Uint8Array([1])), b.write(new Uint8Array([2])), b.end()]);
  const u = new StringDecoder("utf16le");
  t.note("utf16le", [u.write(new Uint8Array([0x61])), u.write(new Uint8Array([0x00, 0x62])), u.end(new Uint8Array([0]))]);
  t.note("encoding", [d.encoding, new StringDecoder().encoding, new StringDecoder("UCS2").encoding]);
  await t.step("unknown encoding", () => new StringDecoder("nope"));
  return t;
}
