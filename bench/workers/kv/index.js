// KV read-heavy mix. GET /k/<n> reads a key, PUT /k/<n> writes the body;
// POST /seed?from=A&count=N writes keys A..A+N-1 with the seed value.
const VALUE = "v".repeat(100);

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === "/seed" && request.method === "POST") {
      const from = Number(url.searchParams.get("from") ?? 0);
      const count = Number(url.searchParams.get("count") ?? 0);
      for (let i = from; i < from + count; i++) {
        await env.KV.put(`key-${i}`, VALUE);
      }
      return new Response("ok");
    }
    if (url.pathname.startsWith("/k/")) {
      const key = `key-${url.pathname.slice(3)}`;
      if (request.method === "PUT") {
        await env.KV.put(key, await request.text());
        return new Response("ok");
      }
      const value = await env.KV.get(key);
      if (value === null) {
        return new Response("not found", { status: 404 });
      }
      return new Response(value);
    }
    return new Response("not found", { status: 404 });
  },
};
