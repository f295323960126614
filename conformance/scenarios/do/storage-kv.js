// Storage key-value API: get/put/delete single and multiple, value types, deleteAll (SQLite- and KV-backed).
import { Transcript } from "../../lib/transcript.js";

export default async function ({ env }) {
  const t = new Transcript();
  t.note("sqlite", await env.DO.getByName("storage-kv:sql").kvBasics());
  t.note("kv", await env.KVDO.getByName("storage-kv:kv").kvBasics());
  return t;
}
