// An order pipeline as a Workflow.
//   POST /orders                  {"id", "items", ...options} -> env.ORDERS.create
//   GET  /orders/<id>             instance.status()
//   POST /orders/<id>/approve     {"by"}  -> sendEvent({type: "approval"})
//   POST /orders/<id>/<action>    pause | resume | terminate | restart
//   POST /go/<id>                 releases a held "charge card" step
//   GET  /kv/<key>                how often a step ran ("reserve:<id>", ...)
// Options in the params: failCharges (the first n charge attempts fail),
// retryDelay (default "10 seconds"), coolOff (default "1 minute"),
// hold (the charge waits for POST /go/<id>), badCard (fails for good).
import { WorkflowEntrypoint } from "cloudflare:workers";
import { NonRetryableError } from "cloudflare:workflows";

async function bump(env, key) {
  const n = Number((await env.LOG.get(key)) ?? "0") + 1;
  await env.LOG.put(key, String(n));
  return n;
}

const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export class OrderWorkflow extends WorkflowEntrypoint {
  async run(event, step) {
    const order = event.payload;
    const id = event.instanceId;

    const reserved = await step.do("reserve stock", async () => {
      await bump(this.env, "reserve:" + id);
      return { items: order.items ?? [], at: new Date() };
    });

    const charge = await step.do(
      "charge card",
      { retries: { limit: 3, delay: order.retryDelay ?? "10 seconds", backoff: "exponential" }, timeout: "5 seconds" },
      async () => {
        const attempt = await bump(this.env, "charge:" + id);
        if (order.badCard) throw new NonRetryableError("card " + order.badCard + " is blocked");
        while (order.hold && (await this.env.LOG.get("go:" + id)) === null) await pause(25);
        if (attempt <= (order.failCharges ?? 0)) throw new Error("card declined (attempt " + attempt + ")");
        return { amount: 100 * reserved.items.length, attempt };
      },
    );

    // Give the customer time to cancel.
    await step.sleep("cool off", order.coolOff ?? "1 minute");

    const approval = await step.waitForEvent("approval", { type: "approval", timeout: "1 hour" });

    const shipment = await step.do("ship", async () => {
      await bump(this.env, "ship:" + id);
      return { tracking: "TRK-" + id };
    });

    return { orderId: id, charged: charge.amount, approvedBy: approval.payload.by, tracking: shipment.tracking };
  }
}

const json = (v, status = 200) => Response.json(v, { status });

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const parts = url.pathname.split("/").filter(Boolean).map(decodeURIComponent);
    try {
      if (request.method === "POST" && parts.length === 1 && parts[0] === "orders") {
        const order = await request.json();
        const instance = await env.ORDERS.create({ id: order.id, params: order });
        return json({ id: instance.id }, 202);
      }
      if (parts[0] === "orders" && parts.length === 2 && request.method === "GET") {
        return json(await (await env.ORDERS.get(parts[1])).status());
      }
      if (parts[0] === "orders" && parts.length === 3 && request.method === "POST") {
        const instance = await env.ORDERS.get(parts[1]);
        if (parts[2] === "approve") {
          await instance.sendEvent({ type: "approval", payload: await request.json() });
        } else if (["pause", "resume", "terminate", "restart"].includes(parts[2])) {
          await instance[parts[2]]();
        } else {
          return json({ error: "unknown action " + parts[2] }, 404);
        }
        return json(await instance.status());
      }
      if (parts[0] === "go" && parts.length === 2 && request.method === "POST") {
        await env.LOG.put("go:" + parts[1], "1");
        return json({ released: parts[1] });
      }
      if (parts[0] === "kv" && parts.length === 2) {
        const value = await env.LOG.get(parts[1]);
        return value === null ? json({ error: "not found" }, 404) : new Response(value);
      }
    } catch (e) {
      return json({ error: e.name, message: e.message }, 400);
    }
    return json({ error: "not found" }, 404);
  },
};
