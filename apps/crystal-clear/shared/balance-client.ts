// Calls the Balance domain over its service binding with a derived
// Idempotency-Key, so a retried caller never applies a change twice.
import type { Actor } from "./lib.ts";

export interface BalanceAnswer {
  status: number;
  body: Record<string, unknown>;
}

export async function balanceOp(
  balance: Fetcher,
  key: string,
  who: Actor,
  op: { playerId: string; amount: number; currency: string; type: "credit" | "debit"; reason?: string },
): Promise<BalanceAnswer> {
  const res = await balance.fetch("https://balance.internal/api/domains/balance", {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "idempotency-key": key,
      "x-cc-subject": who.subject,
      "x-cc-role": who.role,
    },
    body: JSON.stringify(op),
  });
  let body: Record<string, unknown>;
  try {
    body = (await res.json()) as Record<string, unknown>;
  } catch {
    body = { error: `balance answered ${res.status} without JSON` };
  }
  return { status: res.status, body };
}
