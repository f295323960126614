// node:path: POSIX join/resolve/normalize/relative/parse/format.
import path from "node:path";
import { Transcript } from "../../lib/transcript.js";

export default async function () {
  const t = new Transcript();
  t.note("join", [path.join("/a", "b", "../c", "./d"), path.join(""), path.join("a/", "/b/")]);
  t.note("normalize", [path.normalize("/a//b/../c/."), path.normalize("./"), path.normalize("a/../..")]);
  t.note("resolve", [path.resolve("/a", "b", "/c", "d"), path.resolve("/x/y", "..", "z")]);
  t.note("relative", [path.relative("/a/b/c", "/a/d"), path.relative("/a", "/a")]);
  t.note("dirname", [path.dirname("/a/b/"), path.dirname("a"), path.dirname("/")]);
  t.note("basename", [path.basename("/a/b.txt"), path.basename("/a/b.txt", ".txt"), path.basename("/a/b/")]);
  t.note("extname", [path.extname("a.b.c"), path.extname(".bashrc"), path.extname("a."), path.extname("a")]);
  t.note("parse", path.parse("/home/u/file.tar.gz"));
  t.note("format", path.format({ dir: "/x", name: "f", ext: ".js" }));
  t.note("isAbsolute", [path.isAbsolute("/a"), path.isAbsolute("a")]);
  t.note("sep", [path.sep, path.delimiter, path.posix === path.posix.posix]);
  await t.step("join non-string", () => path.join("a", 1));
  return t;
}
