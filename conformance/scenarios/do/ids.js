// Durable Object ids: idFromName determinism, unique ids, idFromString errors, getByName.
import { Transcript } from "../../lib/transcript.js";

const shape = (id) => ({
  length: id.toString().length,
  hex: /^[0-9a-f]+$/.test(id.toString()),
  name: id.name,
  json: JSON.stringify(id).includes(id.toString()) ? "<contains hex>" : JSON.stringify(id),
});

export default async function ({ env }) {
  const t = new Transcript();
  const a = env.DO.idFromName("ids:alpha");
  const a2 = env.DO.idFromName("ids:alpha");
  const b = env.DO.idFromName("ids:beta");
  t.note("idFromName shape", shape(a));
  t.note("idFromName deterministic", a.toString() === a2.toString());
  t.note("equals same name", a.equals(a2));
  t.note("equals other name", a.equals(b));
  t.note("other namespace differs", env.KVDO.idFromName("ids:alpha").toString() === a.toString());
  const u = env.DO.newUniqueId();
  t.note("newUniqueId shape", shape(u));
  t.note("unique ids differ", u.equals(env.DO.newUniqueId()));
  await t.step("newUniqueId jurisdiction eu", () => shape(env.DO.newUniqueId({ jurisdiction: "eu" })));
  await t.step("idFromString round trip", () => {
    const back = env.DO.idFromString(a.toString());
    return { equals: back.equals(a), name: back.name };
  });
  await t.step("idFromString unique round trip", () => env.DO.idFromString(u.toString()).equals(u));
  await t.step("idFromString malformed", () => env.DO.idFromString("not-an-id"));
  await t.step("idFromString wrong length", () => env.DO.idFromString("ab".repeat(31)));
  await t.step("idFromString uppercase", () => shape(env.DO.idFromString(a.toString().toUpperCase())));
  await t.step("idFromString other namespace", () => env.DO.idFromString(env.KVDO.idFromName("ids:alpha").toString()));
  await t.step("idFromName empty", () => shape(env.DO.idFromName("")));
  await t.step("get non-id", () => env.DO.get("ids:alpha"));
  await t.step("get other namespace's id", async () => {
    const stub = env.DO.get(env.KVDO.idFromName("ids:alpha"));
    return stub.whoami("");
  });
  await t.step("whoami by name", () => env.DO.get(a).whoami(a.toString()));
  await t.step("whoami by unique id", () => env.DO.get(u).whoami(u.toString()));
  await t.step("getByName", async () => {
    const stub = env.DO.getByName("ids:alpha");
    return { sameId: stub.id.equals(a), stubName: stub.name, inside: await stub.whoami(a.toString()) };
  });
  await t.step("stub id and name", () => {
    const stub = env.DO.get(a);
    return { sameId: stub.id.equals(a), name: stub.name };
  });
  await t.step("stub of unique id name", () => env.DO.get(u).name);
  await t.step("kv class whoami", () => env.KVDO.getByName("ids:kv").whoami(env.KVDO.idFromName("ids:kv").toString()));
  return t;
}
