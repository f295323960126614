// POST /documents  {"documents": [{"id": "...", "text": "..."}]}  embeds and stores them
// GET  /search?q=...&k=3                                         the k closest documents
// Only Workers APIs: the same code deploys to Cloudflare unchanged.

interface Env {
  AI: Ai;
  DOCS: VectorizeIndex;
}

interface Document {
  id: string;
  text: string;
}

const MODEL = "@cf/baai/bge-small-en-v1.5";
// Workers AI embeds at most 100 texts per call; Vectorize takes 1000 vectors per upsert.
const EMBED_BATCH = 100;

async function embed(env: Env, texts: string[]): Promise<number[][]> {
  const out: number[][] = [];
  for (let i = 0; i < texts.length; i += EMBED_BATCH) {
    const { data } = await env.AI.run(MODEL, { text: texts.slice(i, i + EMBED_BATCH) });
    out.push(...data);
  }
  return out;
}

function problem(status: number, detail: string): Response {
  return Response.json({ error: detail }, { status });
}

function parseDocuments(body: unknown): Document[] | string {
  const docs = (body as { documents?: unknown })?.documents;
  if (!Array.isArray(docs) || docs.length === 0) {
    return "body must be {\"documents\": [{\"id\": string, \"text\": string}, ...]}";
  }
  for (const [i, d] of docs.entries()) {
    if (typeof d?.id !== "string" || d.id.length === 0 || d.id.length > 64) {
      return `documents[${i}].id must be a string of 1 to 64 characters`;
    }
    if (typeof d?.text !== "string" || d.text.trim() === "") {
      return `documents[${i}].text must be a non-empty string`;
    }
  }
  return docs as Document[];
}

async function addDocuments(request: Request, env: Env): Promise<Response> {
  let body: unknown;
  try {
    body = await request.json();
  } catch {
    return problem(400, "body is not JSON");
  }
  const docs = parseDocuments(body);
  if (typeof docs === "string") return problem(400, docs);
  const vectors = await embed(env, docs.map((d) => d.text));
  const { mutationId } = await env.DOCS.upsert(
    docs.map((d, i) => ({ id: d.id, values: vectors[i], metadata: { text: d.text } })),
  );
  return Response.json({ stored: docs.length, mutationId }, { status: 202 });
}

async function search(url: URL, env: Env): Promise<Response> {
  const q = url.searchParams.get("q")?.trim();
  if (!q) return problem(400, "missing ?q=");
  const k = Number(url.searchParams.get("k") ?? "3");
  if (!Number.isInteger(k) || k < 1 || k > 20) return problem(400, "k must be an integer from 1 to 20");
  const [vector] = await embed(env, [q]);
  const { matches } = await env.DOCS.query(vector, { topK: k, returnMetadata: "all" });
  return Response.json({
    query: q,
    matches: matches.map((m) => ({ id: m.id, score: m.score, text: m.metadata?.text })),
  });
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === "/documents" && request.method === "POST") return addDocuments(request, env);
    if (url.pathname === "/search" && request.method === "GET") return search(url, env);
    return problem(404, "try POST /documents or GET /search?q=");
  },
} satisfies ExportedHandler<Env>;
