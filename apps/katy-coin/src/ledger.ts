// The settlement ledger: append-only rows in D1, each carrying the hash of
// the one before it. Appends are serialised by the sequence number (the
// primary key): a writer that loses a race re-reads the head and retries,
// so concurrent consumers never fork the chain. An entry id appends once.
import type { Env } from "./env";
import { AppError, sha256hex } from "./lib";
import { counterStatement } from "./metrics";

export const GENESIS = "0".repeat(64);

export interface Settlement {
  id: string; // trade or payment id: at most one entry each
  kind: "trade" | "payment";
  completed_at: number;
  transfers: { from: string; to: string; currency: string; amount: number }[];
  items?: { listing: string; from: string; to: string }[];
}

export interface Entry {
  seq: number;
  entry_id: string;
  kind: string;
  body: string;
  created_at: number;
  prev_hash: string;
  hash: string;
}

export function entryHash(e: Omit<Entry, "hash">): Promise<string> {
  return sha256hex(`${e.seq}\n${e.entry_id}\n${e.kind}\n${e.created_at}\n${e.prev_hash}\n${e.body}`);
}

/** Everyone a trade settlement moved coins or items between. */
export function parties(s: Settlement): string[] {
  return [...new Set(s.transfers.flatMap((t) => [t.from, t.to]).concat((s.items ?? []).flatMap((i) => [i.from, i.to])))];
}

/** Appends a settlement together with its effects, in one D1 batch (one
 * transaction): the settlements counter and, for a trade, each party's
 * completed-trade count and reputation bump. The entry and its effects
 * commit together or not at all, so a settlement delivered again (after a
 * crash between the append and the ack, or a retry) finds its entry and
 * changes nothing: every bump happens exactly once. */
export function settle(env: Env, s: Settlement, at = Date.now()): Promise<{ entry: Entry; appended: boolean }> {
  const effects = [counterStatement(env, "settlements")];
  if (s.kind === "trade") {
    for (const u of parties(s)) {
      effects.push(env.DB.prepare("UPDATE users SET trades_completed = trades_completed + 1, reputation = MIN(1.0, reputation + 0.01) WHERE id = ?").bind(u));
    }
  }
  return append(env, s, at, effects);
}

/** Appends `s` (once per id) and runs `effects` in the same batch. */
export async function append(env: Env, s: Settlement, at = Date.now(), effects: D1PreparedStatement[] = []): Promise<{ entry: Entry; appended: boolean }> {
  const body = JSON.stringify(s);
  for (let attempt = 0; attempt < 50; attempt++) {
    const existing = await env.DB.prepare("SELECT * FROM ledger WHERE entry_id = ?").bind(s.id).first<Entry>();
    if (existing) return { entry: existing, appended: false };
    const head = await env.DB.prepare("SELECT seq, hash FROM ledger ORDER BY seq DESC LIMIT 1").first<{ seq: number; hash: string }>();
    const e = { seq: (head?.seq ?? 0) + 1, entry_id: s.id, kind: s.kind, body, created_at: at, prev_hash: head?.hash ?? GENESIS };
    const hash = await entryHash(e);
    try {
      const insert = env.DB.prepare("INSERT INTO ledger (seq, entry_id, kind, body, created_at, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?)")
        .bind(e.seq, e.entry_id, e.kind, e.body, e.created_at, e.prev_hash, hash);
      await env.DB.batch([insert, ...effects]);
      return { entry: { ...e, hash }, appended: true };
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      if (!/UNIQUE|PRIMARY KEY|constraint/i.test(msg)) throw err;
      // Lost a race for this sequence number (or the id): look again.
    }
  }
  throw new AppError("unavailable", "ledger append kept losing races");
}

export interface Verdict {
  ok: boolean;
  entries: number;
  head: string;
  broken_at?: number;
  reason?: string;
}

/** Recomputes every hash and link, in pages. */
export async function verify(env: Env): Promise<Verdict> {
  let prev = GENESIS;
  let expectSeq = 1;
  let count = 0;
  for (;;) {
    const page = await env.DB.prepare("SELECT * FROM ledger WHERE seq >= ? ORDER BY seq LIMIT 500").bind(expectSeq).all<Entry>();
    const rows = page.results ?? [];
    for (const r of rows) {
      if (r.seq !== expectSeq) return { ok: false, entries: count, head: prev, broken_at: expectSeq, reason: `entry ${expectSeq} is missing` };
      if (r.prev_hash !== prev) return { ok: false, entries: count, head: prev, broken_at: r.seq, reason: `entry ${r.seq} does not link to entry ${r.seq - 1}` };
      const h = await entryHash(r);
      if (h !== r.hash) return { ok: false, entries: count, head: prev, broken_at: r.seq, reason: `entry ${r.seq}'s contents do not match its hash` };
      prev = r.hash;
      expectSeq++;
      count++;
    }
    if (rows.length < 500) break;
  }
  return { ok: true, entries: count, head: prev };
}

export async function merkleRoot(hashes: string[]): Promise<string> {
  if (hashes.length === 0) return GENESIS;
  let level = hashes;
  while (level.length > 1) {
    const next: string[] = [];
    for (let i = 0; i < level.length; i += 2) {
      next.push(await sha256hex(level[i] + (level[i + 1] ?? level[i])));
    }
    level = next;
  }
  return level[0];
}

/** Posts the Merkle root of the entries since the last anchor to
 * ANCHOR_URL (a chain bridge on a real deployment); recorded once the
 * receiver answers 2xx. No URL: nothing to do. */
export async function anchor(env: Env): Promise<{ anchored: boolean; from_seq?: number; to_seq?: number; root?: string; reason?: string }> {
  if (!env.ANCHOR_URL) return { anchored: false, reason: "ANCHOR_URL is not set" };
  const last = await env.DB.prepare("SELECT MAX(to_seq) AS s FROM anchors").first<{ s: number | null }>();
  const from = (last?.s ?? 0) + 1;
  const rows = (await env.DB.prepare("SELECT seq, hash FROM ledger WHERE seq >= ? ORDER BY seq LIMIT 10000").bind(from).all<{ seq: number; hash: string }>()).results ?? [];
  if (rows.length === 0) return { anchored: false, reason: "no new entries" };
  const to = rows[rows.length - 1].seq;
  const root = await merkleRoot(rows.map((r) => r.hash));
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (env.ANCHOR_TOKEN) headers.authorization = `Bearer ${env.ANCHOR_TOKEN}`;
  const res = await fetch(env.ANCHOR_URL, { method: "POST", headers, body: JSON.stringify({ from_seq: from, to_seq: to, count: rows.length, root }) });
  if (!res.ok) throw new Error(`anchor receiver answered ${res.status}`);
  const receipt = (await res.text()).slice(0, 1000);
  await env.DB.prepare("INSERT INTO anchors (from_seq, to_seq, root, receipt, created_at) VALUES (?, ?, ?, ?, ?)").bind(from, to, root, receipt, Date.now()).run();
  return { anchored: true, from_seq: from, to_seq: to, root };
}
