// transactionSync and transaction: commit, rollback on throw, explicit rollback (SQLite- and KV-backed).
import { Transcript } from "../../lib/transcript.js";

export default async function ({ env }) {
  const t = new Transcript();
  t.note("sqlite", await env.DO.getByName("transactions:sql").transactions(true));
  t.note("kv", await env.KVDO.getByName("transactions:kv").transactions(false));
  return t;
}
