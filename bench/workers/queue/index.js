// Queue produce-to-consume. POST /send produces one message; queue()
// acknowledges each batch and adds its size to a tally kept by one Durable
// Object (its calls run one at a time, so no count is lost); GET /stats
// answers the number of messages consumed so far.
import { DurableObject } from "cloudflare:workers";

export class Tally extends DurableObject {
  async add(n) {
    const total = ((await this.ctx.storage.get("total")) ?? 0) + n;
    await this.ctx.storage.put("total", total);
    return total;
  }

  async total() {
    return (await this.ctx.storage.get("total")) ?? 0;
  }
}

const tally = (env) => env.TALLY.get(env.TALLY.idFromName("consumed"));

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === "/send" && request.method === "POST") {
      await env.Q.send({ sentAt: Date.now(), body: await request.text() });
      return new Response("ok");
    }
    if (url.pathname === "/stats") {
      return new Response(String(await tally(env).total()));
    }
    return new Response("not found", { status: 404 });
  },

  async queue(batch, env) {
    batch.ackAll();
    await tally(env).add(batch.messages.length);
  },
};
