// FormData: entries, files, and round trips through Request bodies.
import { Transcript } from "../../lib/transcript.js";

export default async function () {
  const t = new Transcript();
  const fd = new FormData();
  fd.append("a", "1");
  fd.append("a", "2");
  fd.set("b", "x");
  fd.append("f", new Blob(["file body"], { type: "text/plain" }), "up.txt");
  t.note("get", [fd.get("a"), fd.getAll("a"), fd.has("b"), fd.get("none")]);
  const file = fd.get("f");
  t.note("file entry", [file.constructor.name, file.name, file.type, await file.text()]);
  fd.delete("b");
  t.note("keys", [...fd.keys()]);
  const req = new Request("https://e.com", { method: "POST", body: fd });
  t.note("multipart header", req.headers.get("content-type").split(";")[0]);
  const back = await req.formData();
  t.note("round trip", [back.getAll("a"), back.get("f").name, await back.get("f").text()]);
  const url = await new Request("https://e.com", {
    method: "POST",
    body: "x=1&y=%C3%A9&x=2",
    headers: { "content-type": "application/x-www-form-urlencoded" },
  }).formData();
  t.note("urlencoded", [...url]);
  await t.step("not form", () => new Response("plain", { headers: { "content-type": "text/plain" } }).formData());
  await t.step("append blob no name", async () => {
    const f = new FormData();
    f.append("k", new Blob(["z"]));
    return f.get("k").name;
  });
  return t;
}
