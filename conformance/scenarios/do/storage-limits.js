// Storage limits: 128 keys per call, key and value sizes, undefined values (SQLite- and KV-backed).
import { Transcript } from "../../lib/transcript.js";

export default async function ({ env }) {
  const t = new Transcript();
  t.note("sqlite", await env.DO.getByName("storage-limits:sql").kvLimits());
  t.note("kv", await env.KVDO.getByName("storage-limits:kv").kvLimits());
  return t;
}
