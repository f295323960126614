// Storage list(): start, startAfter, end, prefix, reverse, limit and their errors (SQLite- and KV-backed).
import { Transcript } from "../../lib/transcript.js";

export default async function ({ env }) {
  const t = new Transcript();
  t.note("sqlite", await env.DO.getByName("storage-list:sql").kvList());
  t.note("kv", await env.KVDO.getByName("storage-list:kv").kvList());
  return t;
}
