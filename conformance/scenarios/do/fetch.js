// stub.fetch: request and response round trip, and a handler that throws.
import { Transcript, response } from "../../lib/transcript.js";

export default async function ({ env }) {
  const t = new Transcript();
  const stub = env.DO.getByName("fetch:one");
  await t.step("POST round trip", async () =>
    response(
      await stub.fetch("https://object.test/echo?q=1", {
        method: "POST",
        headers: { "x-test": "yes" },
        body: "payload",
      }),
    ),
  );
  await t.step("Request object", async () =>
    response(await stub.fetch(new Request("http://object.test/echo", { method: "PUT", body: "r" }))),
  );
  await t.step("GET 204", async () => response(await stub.fetch("http://object.test/empty")));
  await t.step("404", async () => response(await stub.fetch("http://object.test/nowhere")));
  await t.step("relative URL", () => stub.fetch("/echo"));
  await t.step("handler throws", () => stub.fetch("http://object.test/throw"));
  await t.step("still alive after throw", async () => (await stub.fetch("http://object.test/empty")).status);
  await t.step("handler returns non-Response", () => stub.fetch("http://object.test/not-response"));
  await t.step("kv class round trip", async () =>
    response(await env.KVDO.getByName("fetch:kv").fetch("http://object.test/echo", { method: "POST", body: "kv" })),
  );
  return t;
}
