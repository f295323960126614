// node:fs over workerd's virtual file system: /tmp writes, /bundle reads only, /dev, errors.
import fs from "node:fs";
import fsp from "node:fs/promises";
import { Transcript } from "../../lib/transcript.js";

const err = (e) => ({ name: e.name, code: e.code, syscall: e.syscall, errno: e.errno });

export default async function () {
  const t = new Transcript();
  const step = (label, fn) => {
    try {
      t.note(label, fn());
    } catch (e) {
      t.note(label, { threw: err(e) });
    }
  };
  step("root", () => fs.readdirSync("/").sort());
  step("write", () => fs.writeFileSync("/tmp/fs-a.txt", "hello"));
  step("append", () => fs.appendFileSync("/tmp/fs-a.txt", " world"));
  step("read", () => fs.readFileSync("/tmp/fs-a.txt", "utf8"));
  step("stat", () => { const s = fs.statSync("/tmp/fs-a.txt"); return [s.size, s.isFile(), s.isDirectory()]; });
  step("exists", () => [fs.existsSync("/tmp/fs-a.txt"), fs.existsSync("/tmp/nope")]);
  step("mkdir recursive", () => fs.mkdirSync("/tmp/d/e/f", { recursive: true }));
  step("readdir", () => fs.readdirSync("/tmp").sort());
  step("readdir withFileTypes", () => fs.readdirSync("/tmp/d", { withFileTypes: true }).map((d) => [d.name, d.isDirectory()]));
  step("rename", () => fs.renameSync("/tmp/fs-a.txt", "/tmp/d/b.txt"));
  step("read missing", () => fs.readFileSync("/tmp/fs-a.txt"));
  step("mkdir exists", () => fs.mkdirSync("/tmp/d"));
  step("rmdir non-empty", () => fs.rmdirSync("/tmp/d"));
  step("rm recursive", () => fs.rmSync("/tmp/d", { recursive: true }));
  step("write bundle", () => fs.writeFileSync("/bundle/x.txt", "x"));
  step("read dir as file", () => fs.readFileSync("/tmp"));
  step("dev null", () => fs.readFileSync("/dev/null").length);
  step("dev zero", () => { const fd = fs.openSync("/dev/zero"); const b = Buffer.alloc(4, 1); const n = fs.readSync(fd, b); fs.closeSync(fd); return [n, b]; });
  step("fd write/read", () => {
    const fd = fs.openSync("/tmp/fd.txt", "w+");
    fs.writeSync(fd, "abcdef");
    const b = Buffer.alloc(3);
    fs.readSync(fd, b, 0, 3, 2);
    fs.closeSync(fd);
    return b.toString();
  });
  step("bad fd", () => fs.closeSync(9999));
  await t.step("promises read", () => fsp.readFile("/tmp/fd.txt", "utf8"));
  await t.step("promises missing", () => fsp.readFile("/tmp/none").catch((e) => ({ rejected: err(e) })));
  await t.step("callback", () => new Promise((res) => fs.readFile("/tmp/fd.txt", "utf8", (e, d) => res(e ? err(e) : d))));
  step("unlink", () => fs.unlinkSync("/tmp/fd.txt"));
  return t;
}
