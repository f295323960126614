// node:buffer: encodings, slicing, comparison, integer reads and writes, errors.
import { Buffer, constants, kMaxLength } from "node:buffer";
import { Transcript } from "../../lib/transcript.js";

export default async function () {
  const t = new Transcript();
  const b = Buffer.from("héllo wörld", "utf8");
  t.note("length", b.length);
  t.note("hex", b.toString("hex"));
  t.note("base64", b.toString("base64"));
  t.note("base64url", b.toString("base64url"));
  t.note("latin1", b.toString("latin1"));
  t.note("from hex", Buffer.from("deadBEEF", "hex"));
  t.note("from odd hex", Buffer.from("abc", "hex"));
  t.note("from base64 unpadded", Buffer.from("aGk", "base64").toString());
  t.note("utf16le", Buffer.from("ab", "utf16le"));
  t.note("byteLength", [Buffer.byteLength("€"), Buffer.byteLength("aGk=", "base64")]);
  t.note("concat", Buffer.concat([Buffer.from("ab"), Buffer.from("cd")], 3).toString());
  t.note("compare", [Buffer.compare(Buffer.from("a"), Buffer.from("b")), Buffer.from("b").compare(Buffer.from("a"))]);
  t.note("equals", Buffer.from("x").equals(Buffer.from("x")));
  t.note("indexOf", [b.indexOf("l"), b.lastIndexOf("l"), b.includes("wör"), b.indexOf(0x6f)]);
  const s = b.subarray(1, 4);
  s[0] = 0x41;
  t.note("subarray shares", b.toString("hex").slice(0, 8));
  const w = Buffer.alloc(16);
  w.writeUInt32BE(0xdeadbeef, 0);
  w.writeInt16LE(-2, 4);
  w.writeDoubleBE(1.5, 6);
  w.writeBigUInt64LE ? t.note("has bigint writes", true) : t.note("has bigint writes", false);
  t.note("written", w);
  t.note("reads", [w.readUInt32BE(0), w.readInt16LE(4), w.readDoubleBE(6), w.readUInt8(0)]);
  t.note("fill", Buffer.alloc(5, "ab").toString());
  t.note("json", Buffer.from([1, 2, 3]).toJSON());
  t.note("isBuffer", [Buffer.isBuffer(b), Buffer.isBuffer(new Uint8Array(1))]);
  t.note("isEncoding", [Buffer.isEncoding("UTF-8"), Buffer.isEncoding("nope")]);
  t.note("constants", [typeof constants.MAX_LENGTH, typeof kMaxLength]);
  t.note("swap16", Buffer.from([1, 2, 3, 4]).swap16());
  await t.step("read out of range", () => w.readUInt32BE(14));
  await t.step("bad encoding", () => Buffer.from("x", "nope"));
  await t.step("swap16 odd", () => Buffer.from([1, 2, 3]).swap16());
  await t.step("from number", () => Buffer.from(5));
  await t.step("write out of range value", () => Buffer.alloc(1).writeUInt8(300, 0));
  return t;
}
