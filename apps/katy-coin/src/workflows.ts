// TradeWorkflow and PaymentWorkflow. Every step is safe to run again after
// a crash (Workflows replay a step whose result was not journaled): holds,
// captures and credits are idempotent by id, listing moves are
// conditional, and the ledger appends each trade or payment once.
import { WorkflowEntrypoint, type WorkflowEvent, type WorkflowStep } from "cloudflare:workers";
import type { Env } from "./env";
import { AppError, intVar, kindOf, sleep } from "./lib";
import { valueProduct, fraudScore } from "./ai";
import { deliver, wallet } from "./wallet";
import { count } from "./metrics";
import type { Party } from "./session";
import type { Settlement } from "./ledger";

const CURRENCY = "KATY";

// Wallet and D1 calls finish in milliseconds; a short timeout also bounds
// how long a run orphaned by a crash waits before another takes it over.
const STEP = { retries: { limit: 5, delay: "1 second", backoff: "exponential" }, timeout: "15 seconds" } as const;

function session(env: Env, tradeId: string) {
  return env.SESSION.get(env.SESSION.idFromName(tradeId));
}

async function setTrade(env: Env, tradeId: string, status: string, detail: unknown) {
  await env.DB.prepare("UPDATE trades SET status = ?, detail = ?, updated_at = ? WHERE id = ?")
    .bind(status, JSON.stringify(detail), Date.now(), tradeId).run();
}

async function releaseAll(env: Env, holds: { user: string; holdId: string }[]) {
  for (const h of holds) {
    try {
      await wallet(env, h.user).release({ holdId: h.holdId });
    } catch (e) {
      // Captured already is the only state release refuses; anything else retries the step.
      if (kindOf(e) !== "conflict") throw e;
    }
  }
}

export interface TradeParams { tradeId: string; participants: Party[] }

export class TradeWorkflow extends WorkflowEntrypoint<Env, TradeParams> {
  async run(event: WorkflowEvent<TradeParams>, step: WorkflowStep) {
    const env = this.env;
    const { tradeId, participants } = event.payload;
    const fail = async (reason: string) => {
      await step.do("fail-trade", STEP, async () => {
        await setTrade(env, tradeId, "failed", { reason });
        await session(env, tradeId).notify({ type: "TRADE_FAILED", tradeId, reason });
        await count(env, "trades_failed");
      });
      return { status: "failed", tradeId, reason };
    };

    const validation = await step.do("validate-participants", STEP, async () => {
      await setTrade(env, tradeId, "running", {});
      await count(env, "trades_started");
      const min = intVar(env.MIN_REPUTATION, 0.5);
      if (participants.length !== 2) return { ok: false, reason: "a trade needs two parties" };
      for (const p of participants) {
        const u = await env.DB.prepare("SELECT reputation, banned FROM users WHERE id = ?").bind(p.user).first<{ reputation: number; banned: number }>();
        if (!u) return { ok: false, reason: `${p.user} is not registered` };
        if (u.banned) return { ok: false, reason: `${p.user} is banned` };
        if (u.reputation < min) return { ok: false, reason: `${p.user}'s reputation ${u.reputation} is below ${min}` };
        for (const id of p.offers.items) {
          const l = await env.DB.prepare("SELECT owner_id, status FROM listings WHERE id = ?").bind(id).first<{ owner_id: string; status: string }>();
          if (!l || l.owner_id !== p.user || l.status !== "active") return { ok: false, reason: `listing ${id} is no longer ${p.user}'s to trade` };
        }
      }
      return { ok: true, reason: "" };
    });
    if (!validation.ok) return fail(validation.reason);

    const valuations = await step.do(
      "value-items",
      { retries: { limit: 3, delay: "2 seconds", backoff: "exponential" }, timeout: "1 minute" },
      async () => {
        const out: { listing: string; owner: string; value: number; source: string }[] = [];
        for (const p of participants) {
          for (const id of p.offers.items) {
            const l = await env.DB.prepare("SELECT id, title, description, asking_value, photo_key, photo_type, photo_sha256 FROM listings WHERE id = ?").bind(id).first<{
              id: string; title: string; description: string; asking_value: number; photo_key: string | null; photo_type: string | null; photo_sha256: string | null;
            }>();
            if (!l) throw new AppError("not_found", `listing ${id} vanished`);
            const v = await valueProduct(env, l);
            await env.DB.prepare("UPDATE listings SET ai_value = ?, ai_source = ?, updated_at = ? WHERE id = ?").bind(v.value, v.source, Date.now(), id).run();
            out.push({ listing: id, owner: p.user, value: v.value, source: v.source });
          }
        }
        return out;
      },
    );

    const balance = await step.do("check-balance", STEP, async () => {
      const values = participants.map((p) => valuations.filter((v) => v.owner === p.user).reduce((s, v) => s + v.value, 0) + p.offers.coins);
      const tolerance = Math.max(intVar(env.TRADE_TOLERANCE_MIN, 100), Math.round((Math.max(...values) * intVar(env.TRADE_TOLERANCE_PERCENT, 10)) / 100));
      return { values, difference: values[0] - values[1], tolerance };
    });

    let adjustment: { payer: string; payee: string; amount: number } | null = null;
    if (Math.abs(balance.difference) > balance.tolerance) {
      const negotiated = await step.do("negotiate", STEP, async () => {
        // The party giving less value makes up the difference in KATY.
        const payer = balance.difference > 0 ? participants[1].user : participants[0].user;
        const payee = balance.difference > 0 ? participants[0].user : participants[1].user;
        const amount = Math.abs(balance.difference);
        const max = intVar(env.MAX_ADJUSTMENT, 1_000_000);
        if (amount > max) return { agreed: false, reason: `values differ by ${amount}, more than the ${max} an adjustment may cover`, payer, payee, amount };
        return { agreed: true, reason: "", payer, payee, amount };
      });
      if (!negotiated.agreed) return fail(negotiated.reason);
      adjustment = { payer: negotiated.payer, payee: negotiated.payee, amount: negotiated.amount };
    }

    const confirmSeconds = intVar(env.CONFIRM_TIMEOUT_SECONDS, 86400);
    const escrow = await step.do("create-escrow", STEP, async () => {
      const expiresAt = Date.now() + (confirmSeconds + intVar(env.HOLD_GRACE_SECONDS, 300)) * 1000;
      const holds: { user: string; to: string; holdId: string; amount: number }[] = [];
      for (const p of participants) {
        const other = participants.find((q) => q.user !== p.user)!.user;
        const amount = p.offers.coins + (adjustment?.payer === p.user ? adjustment.amount : 0);
        if (amount === 0) continue;
        const holdId = `trade:${tradeId}:${p.user}`;
        try {
          await wallet(env, p.user).hold({ owner: p.user, holdId, currency: CURRENCY, amount, expiresAt, reason: `trade ${tradeId}` });
        } catch (e) {
          if (kindOf(e) !== "insufficient_funds") throw e;
          await releaseAll(env, holds);
          return { ok: false, reason: `${p.user} cannot cover ${amount} ${CURRENCY}`, holds: [], expiresAt };
        }
        holds.push({ user: p.user, to: other, holdId, amount });
      }
      return { ok: true, reason: "", holds, expiresAt };
    });
    if (!escrow.ok) return fail(escrow.reason);

    await step.do("notify-participants", STEP, async () => {
      // The session first: once the trade reads "escrowed", it takes confirmations.
      await session(env, tradeId).notify({
        type: "TRADE_READY", tradeId, valuations, balance, adjustment, holds: escrow.holds,
        confirmBy: Date.now() + confirmSeconds * 1000, action: "Please confirm your trade",
      });
      await setTrade(env, tradeId, "escrowed", { valuations, balance, adjustment, holds: escrow.holds });
    });

    let confirmed = true;
    try {
      await step.waitForEvent("wait-confirmations", { type: "trade-confirmed", timeout: `${confirmSeconds} seconds` });
    } catch {
      confirmed = false;
    }

    if (!confirmed) {
      await step.do("cancel-trade", STEP, async () => {
        await releaseAll(env, escrow.holds);
        await setTrade(env, tradeId, "cancelled", { reason: "not every party confirmed in time" });
        await session(env, tradeId).notify({ type: "TRADE_CANCELLED", tradeId, reason: "not every party confirmed in time" });
        await count(env, "trades_cancelled");
      });
      return { status: "cancelled", tradeId, reason: "not every party confirmed in time" };
    }

    const execution = await step.do("execute-trade", STEP, async () => {
      const pause = intVar(env.STEP_DELAY_MS, 0);
      const transfers: Settlement["transfers"] = [];
      for (const h of escrow.holds) {
        // A capture made by an earlier run of this step answers its first record.
        const r = await wallet(env, h.user).capture({ owner: h.user, holdId: h.holdId, to: h.to, memo: `trade ${tradeId}` });
        await deliver(env, r.delivery);
        transfers.push({ from: h.user, to: h.to, currency: CURRENCY, amount: h.amount });
        if (pause) await sleep(pause);
      }
      const items: NonNullable<Settlement["items"]> = [];
      for (const p of participants) {
        const other = participants.find((q) => q.user !== p.user)!.user;
        for (const id of p.offers.items) {
          await env.DB.prepare("UPDATE listings SET owner_id = ?, status = 'traded', updated_at = ? WHERE id = ? AND owner_id = ?").bind(other, Date.now(), id, p.user).run();
          items.push({ listing: id, from: p.user, to: other });
        }
      }
      return { transfers, items, completed_at: Date.now() };
    });

    await step.do("settlement", STEP, async () => {
      const s: Settlement = { id: `trade:${tradeId}`, kind: "trade", completed_at: execution.completed_at, transfers: execution.transfers, items: execution.items };
      await env.SETTLEMENT.send(s);
      await setTrade(env, tradeId, "completed", { transfers: execution.transfers, items: execution.items });
      await session(env, tradeId).notify({ type: "TRADE_COMPLETED", tradeId, transfers: execution.transfers, items: execution.items });
      await count(env, "trades_completed");
    });
    return { status: "completed", tradeId, execution };
  }
}

export interface PaymentParams { paymentId: string; from: string; to: string; currency: string; amount: number }

async function setPayment(env: Env, id: string, status: string, detail: unknown) {
  await env.DB.prepare("UPDATE payments SET status = ?, detail = ?, updated_at = ? WHERE id = ?").bind(status, JSON.stringify(detail), Date.now(), id).run();
}

export class PaymentWorkflow extends WorkflowEntrypoint<Env, PaymentParams> {
  async run(event: WorkflowEvent<PaymentParams>, step: WorkflowStep) {
    const env = this.env;
    const { paymentId, from, to, currency, amount } = event.payload;
    const stop = async (status: string, reason: string) => {
      await step.do(`stop-${status}`, STEP, async () => {
        await setPayment(env, paymentId, status, { reason });
        await count(env, `payments_${status}`);
      });
      return { status, paymentId, reason };
    };

    const fraud = await step.do("fraud-check", { ...STEP, timeout: "1 minute" }, async () => {
      const users = await env.DB.prepare("SELECT id, created_at FROM users WHERE id IN (?, ?)").bind(from, to).all<{ id: string; created_at: number }>();
      const age = (id: string) => Date.now() - (users.results?.find((u) => u.id === id)?.created_at ?? Date.now());
      const recent = await env.DB.prepare("SELECT COUNT(*) AS n FROM payments WHERE from_user = ? AND created_at > ? AND id != ?").bind(from, Date.now() - 3600_000, paymentId).first<{ n: number }>();
      const f = await fraudScore(env, { paymentId, from, to, currency, amount, senderAgeMs: age(from), recipientAgeMs: age(to), recentPayments: recent?.n ?? 0 });
      await env.DB.prepare("UPDATE payments SET fraud_score = ?, fraud_source = ?, status = 'checked', updated_at = ? WHERE id = ?").bind(f.score, f.source, Date.now(), paymentId).run();
      return f;
    });

    const threshold = intVar(env.REVIEW_THRESHOLD, 0.7);
    if (fraud.score >= threshold) {
      await step.do("request-review", STEP, async () => {
        await setPayment(env, paymentId, "review", { score: fraud.score, source: fraud.source });
        await count(env, "payments_reviewed");
      });
      let approved = false;
      let note = "review timed out";
      try {
        const decision = await step.waitForEvent<{ approved?: boolean; note?: string; by?: string }>("manual-review", { type: "review", timeout: (env.REVIEW_TIMEOUT ?? "24 hours") as WorkflowSleepDuration });
        approved = decision.payload?.approved === true;
        note = String(decision.payload?.note ?? (approved ? "approved" : "rejected"));
      } catch {
        approved = false;
      }
      if (!approved) return stop("rejected", note);
    }

    const check = await step.do("check-balance", STEP, async () => {
      const b = await wallet(env, from).balance();
      const available = b.currencies[currency]?.available ?? 0;
      return { sufficient: available >= amount, available };
    });
    if (!check.sufficient) return stop("failed", `insufficient balance: ${check.available} ${currency} available`);

    const hold = await step.do("create-hold", STEP, async () => {
      const holdId = `payment:${paymentId}`;
      try {
        await wallet(env, from).hold({ owner: from, holdId, currency, amount, expiresAt: Date.now() + intVar(env.HOLD_GRACE_SECONDS, 300) * 1000, reason: `payment ${paymentId} to ${to}` });
        return { ok: true, holdId };
      } catch (e) {
        if (kindOf(e) === "insufficient_funds") return { ok: false, holdId };
        throw e;
      }
    });
    if (!hold.ok) return stop("failed", "insufficient balance when placing the hold");

    const transfer = await step.do("transfer", STEP, async () => {
      const r = await wallet(env, from).capture({ owner: from, holdId: hold.holdId, to, memo: `payment ${paymentId}` });
      await deliver(env, r.delivery);
      return { completed_at: Date.now() };
    });

    await step.do("queue-settlement", STEP, async () => {
      const s: Settlement = { id: `payment:${paymentId}`, kind: "payment", completed_at: transfer.completed_at, transfers: [{ from, to, currency, amount }] };
      await env.SETTLEMENT.send(s);
      await setPayment(env, paymentId, "completed", { completed_at: transfer.completed_at });
      await count(env, "payments_completed");
    });
    return { status: "completed", paymentId, amount, from, to };
  }
}
