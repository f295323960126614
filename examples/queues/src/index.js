// Producer routes, a queue() consumer that records each job in KV, and a
// cron that records its runs.
//   POST /jobs            {"id": "...", "fail": false}  -> env.JOBS.send (v8)
//   POST /jobs/batch      [{"id": ...}, ...]            -> env.JOBS.sendBatch
//   POST /exports         any text                      -> env.EXPORTS.send (text)
//   GET  /kv/<key>        what the consumer or the cron wrote
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const delay = url.searchParams.get("delay");
    const options = delay === null ? {} : { delaySeconds: Number(delay) };
    if (request.method === "POST" && url.pathname === "/jobs") {
      const job = await request.json();
      // v8 keeps the Date; without contentType the body would be JSON.
      await env.JOBS.send({ ...job, sentAt: new Date() }, { ...options, contentType: "v8" });
      return new Response("queued\n", { status: 202 });
    }
    if (request.method === "POST" && url.pathname === "/jobs/batch") {
      const jobs = await request.json();
      await env.JOBS.sendBatch(
        jobs.map((job) => ({ body: { ...job, sentAt: new Date() }, contentType: "v8" })),
        options,
      );
      return new Response("queued " + jobs.length + "\n", { status: 202 });
    }
    if (request.method === "POST" && url.pathname === "/exports") {
      await env.EXPORTS.send(await request.text(), { contentType: "text" });
      return new Response("queued\n", { status: 202 });
    }
    if (request.method === "GET" && url.pathname.startsWith("/kv/")) {
      const value = await env.RESULTS.get(decodeURIComponent(url.pathname.slice(4)));
      return value === null ? new Response("not found\n", { status: 404 }) : new Response(value);
    }
    return new Response("not found\n", { status: 404 });
  },

  async queue(batch, env) {
    for (const message of batch.messages) {
      const job = message.body;
      const key = job.id;
      const seen = Number((await env.RESULTS.get("deliveries:" + key)) ?? "0") + 1;
      await env.RESULTS.put("deliveries:" + key, String(seen));
      if (batch.queue === "jobs-dlq") {
        await env.RESULTS.put("dead:" + key, JSON.stringify({ attempts: message.attempts }));
        message.ack();
        continue;
      }
      if (job.fail) {
        message.retry();
        continue;
      }
      await env.RESULTS.put("job:" + key, JSON.stringify({
        attempts: message.attempts,
        sentAtIsDate: job.sentAt instanceof Date,
        queue: batch.queue,
      }));
      message.ack();
    }
  },

  async scheduled(controller, env) {
    const run = { cron: controller.cron, scheduledTime: controller.scheduledTime };
    if ((await env.RESULTS.get("cron:first")) === null) {
      await env.RESULTS.put("cron:first", JSON.stringify(run));
    }
    await env.RESULTS.put("cron:last", JSON.stringify(run));
    await env.RESULTS.put(`cron:run:${run.cron}:${run.scheduledTime}`, JSON.stringify(run));
    const count = Number((await env.RESULTS.get("cron:count")) ?? "0") + 1;
    await env.RESULTS.put("cron:count", String(count));
    if (controller.cron === "fail") {
      controller.noRetry();
      throw new Error("asked to fail");
    }
  },
};
