// Workflows. POST /start creates an instance (random id) whose run() does
// five trivial steps; the last one adds one to a tally kept by one Durable
// Object, so GET /stats answers how many instances have finished.
import { DurableObject, WorkflowEntrypoint } from "cloudflare:workers";

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

const tally = (env) => env.TALLY.get(env.TALLY.idFromName("completed"));

export class FiveSteps extends WorkflowEntrypoint {
  async run(event, step) {
    let sum = 0;
    for (let i = 1; i <= 4; i++) {
      sum += await step.do(`step ${i}`, async () => i * event.payload.n);
    }
    // A completed step is not run again on replay, so each instance counts once.
    return step.do("step 5", async () => {
      await tally(this.env).add(1);
      return sum;
    });
  }
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === "/start" && request.method === "POST") {
      await env.FLOW.create({ params: { n: 1 } });
      return new Response("ok");
    }
    if (url.pathname === "/stats") {
      return new Response(String(await tally(env).total()));
    }
    return new Response("not found", { status: 404 });
  },
};
