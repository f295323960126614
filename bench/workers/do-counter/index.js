// Durable Object counters. GET /c/<n> increments the counter of the object
// named "counter-<n>" (through RPC) and answers its new value as text; GET
// /r/<n> answers its value without changing it.
import { DurableObject } from "cloudflare:workers";

export class Counter extends DurableObject {
  async increment() {
    const value = ((await this.ctx.storage.get("value")) ?? 0) + 1;
    await this.ctx.storage.put("value", value);
    return value;
  }

  async read() {
    return (await this.ctx.storage.get("value")) ?? 0;
  }
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname.startsWith("/c/")) {
      const id = env.COUNTER.idFromName(`counter-${url.pathname.slice(3)}`);
      const value = await env.COUNTER.get(id).increment();
      return new Response(String(value));
    }
    if (url.pathname.startsWith("/r/")) {
      const id = env.COUNTER.idFromName(`counter-${url.pathname.slice(3)}`);
      return new Response(String(await env.COUNTER.get(id).read()));
    }
    return new Response("not found", { status: 404 });
  },
};
