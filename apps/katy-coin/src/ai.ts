// AI through the AI Gateway: listing valuation (description and photo),
// translation, and fraud scoring of payments (a Workers AI model when one
// is configured, rules otherwise). AI_GATEWAY_URL is the gateway's base,
// e.g. https://gateway.ai.cloudflare.com/v1/<account>/<gateway> on
// Cloudflare or http://127.0.0.1:8787/__hearth/ai-gateway/<gateway> on
// hearth; the provider path (openai/chat/completions) is appended.
import type { Env } from "./env";
import { AppError, sha256hex } from "./lib";

export interface Valuation {
  value: number; // KATY minor units
  confidence: number;
  rationale: string;
  source: string; // "gateway:<model>", "cache", "asking_price"
}

interface ListingForValue {
  id: string;
  title: string;
  description: string;
  asking_value: number;
  photo_key: string | null;
  photo_type: string | null;
  photo_sha256: string | null;
}

function b64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

async function chat(env: Env, model: string, messages: unknown[], metadata: Record<string, string>): Promise<string> {
  if (!env.AI_GATEWAY_URL) throw new AppError("unavailable", "AI_GATEWAY_URL is not configured");
  const headers: Record<string, string> = {
    "content-type": "application/json",
    "cf-aig-metadata": JSON.stringify(metadata),
  };
  if (env.PROVIDER_API_KEY) headers.authorization = `Bearer ${env.PROVIDER_API_KEY}`;
  if (env.AI_GATEWAY_TOKEN) headers["cf-aig-authorization"] = `Bearer ${env.AI_GATEWAY_TOKEN}`;
  const res = await fetch(`${env.AI_GATEWAY_URL.replace(/\/+$/, "")}/openai/chat/completions`, {
    method: "POST",
    headers,
    body: JSON.stringify({ model, messages, temperature: 0 }),
  });
  if (!res.ok) throw new AppError("unavailable", `AI gateway answered ${res.status}: ${(await res.text()).slice(0, 200)}`);
  const body = (await res.json()) as { choices?: { message?: { content?: string } }[] };
  const content = body.choices?.[0]?.message?.content;
  if (typeof content !== "string") throw new AppError("unavailable", "AI gateway answer has no message content");
  return content;
}

function firstJsonObject(text: string): Record<string, unknown> {
  const start = text.indexOf("{");
  const end = text.lastIndexOf("}");
  if (start < 0 || end < start) throw new AppError("unavailable", "model answer holds no JSON object");
  try {
    return JSON.parse(text.slice(start, end + 1));
  } catch {
    throw new AppError("unavailable", "model answer holds no valid JSON object");
  }
}

/** valueProduct: the model sees the description and, when the listing has
 * one, its photo. Answers are cached in KV by model, text and photo hash. */
export async function valueProduct(env: Env, l: ListingForValue): Promise<Valuation> {
  const model = env.VALUATION_MODEL ?? "gpt-4o-mini";
  if (!env.AI_GATEWAY_URL) {
    return { value: l.asking_value, confidence: 0, rationale: "no AI gateway configured: the asking value", source: "asking_price" };
  }
  const key = "val:" + (await sha256hex(`${model}\n${l.title}\n${l.description}\n${l.photo_sha256 ?? ""}`));
  const cached = await env.VALUATIONS.get<Valuation>(key, "json");
  if (cached) return { ...cached, source: "cache" };
  const content: unknown[] = [{
    type: "text",
    text: `Estimate the fair barter value in KATY minor units (1 KATY = 100 units) of this item. Answer only JSON {"value": integer, "confidence": 0..1, "rationale": string}.\nTitle: ${l.title}\nDescription: ${l.description}`,
  }];
  if (l.photo_key) {
    const photo = await env.PHOTOS.get(l.photo_key);
    if (photo) {
      const bytes = new Uint8Array(await photo.arrayBuffer());
      content.push({ type: "image_url", image_url: { url: `data:${l.photo_type ?? "image/jpeg"};base64,${b64(bytes)}` } });
    }
  }
  const answer = firstJsonObject(await chat(env, model, [
    { role: "system", content: "You value second-hand goods for a barter marketplace." },
    { role: "user", content },
  ], { purpose: "valuation", listing: l.id }));
  const value = Number(answer.value);
  if (!Number.isSafeInteger(value) || value < 0) throw new AppError("unavailable", "model answered no usable value");
  const v: Valuation = {
    value,
    confidence: Math.max(0, Math.min(1, Number(answer.confidence) || 0)),
    rationale: String(answer.rationale ?? "").slice(0, 500),
    source: `gateway:${model}`,
  };
  const ttl = Math.max(60, Number(env.VALUATION_CACHE_SECONDS ?? "86400") || 86400);
  await env.VALUATIONS.put(key, JSON.stringify(v), { expirationTtl: ttl });
  return v;
}

export async function translate(env: Env, text: string, lang: string): Promise<string> {
  const model = env.TRANSLATION_MODEL ?? env.VALUATION_MODEL ?? "gpt-4o-mini";
  return (await chat(env, model, [
    { role: "system", content: `Translate the user's text to the language with BCP 47 tag ${lang}. Answer with the translation only.` },
    { role: "user", content: text },
  ], { purpose: "translation", lang })).trim();
}

export interface FraudInput {
  paymentId: string;
  from: string;
  to: string;
  currency: string;
  amount: number;
  senderAgeMs: number;
  recipientAgeMs: number;
  recentPayments: number;
}

/** Rules: large amounts, new accounts and bursts raise the score. */
export function fraudRules(env: Env, p: FraudInput): number {
  const high = Number(env.FRAUD_AMOUNT_HIGH ?? "100000") || 100000;
  const velocity = Number(env.FRAUD_VELOCITY_PER_HOUR ?? "20") || 20;
  let score = 0;
  if (p.amount >= high) score += 0.6;
  else if (p.amount >= high / 2) score += 0.3;
  if (p.senderAgeMs < 86400_000) score += 0.15;
  if (p.recipientAgeMs < 86400_000) score += 0.1;
  if (p.recentPayments >= velocity) score += 0.3;
  return Math.min(1, Math.round(score * 100) / 100);
}

/** A Workers AI classification when FRAUD_MODEL and the AI binding are
 * there; rules when not, or when the model fails or answers nonsense. */
export async function fraudScore(env: Env, p: FraudInput): Promise<{ score: number; source: string }> {
  if (env.AI && env.FRAUD_MODEL) {
    try {
      const out = (await env.AI.run(env.FRAUD_MODEL as never, {
        messages: [
          { role: "system", content: 'You score payments for fraud risk. Answer only JSON {"score": number between 0 and 1}.' },
          { role: "user", content: JSON.stringify(p) },
        ],
        max_tokens: 50,
      } as never)) as { response?: string };
      const score = Number(firstJsonObject(String(out.response ?? "")).score);
      if (Number.isFinite(score) && score >= 0 && score <= 1) return { score, source: `ai:${env.FRAUD_MODEL}` };
    } catch (e) {
      console.error("fraud model failed, using rules:", e instanceof Error ? e.message : e);
    }
  }
  return { score: fraudRules(env, p), source: "rules" };
}
