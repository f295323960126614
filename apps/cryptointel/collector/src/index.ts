// CryptoIntel's collector worker: no public route.
//   scheduled */15 * * * * collect (collector.ts); 0 3 * * * archive (archive.ts)
//   queue     cryptointel-events: signal detection after each collection
//             (signals.ts), webhook deliveries (webhooks.ts), collections
//             an admin asked for (POST /api/v1/admin/collect on the API);
//             cryptointel-webhooks-dlq: dead letters (logged)
import { runArchival } from "../../app/src/archive";
import { requeuePending, runCollection } from "../../app/src/collector";
import { Env, EventMessage, log } from "../../app/src/lib";
import { detectSignals } from "../../app/src/signals";
import { deliver } from "../../app/src/webhooks";

const COLLECT_CRON = "*/15 * * * *";
const ARCHIVE_CRON = "0 3 * * *";

export default {
  async scheduled(controller, env): Promise<void> {
    if (controller.cron === ARCHIVE_CRON) {
      await runArchival(env);
      return;
    }
    if (controller.cron !== COLLECT_CRON) log("WARN", "scheduler", "Unknown cron; collecting", { cron: controller.cron });
    await requeuePending(env);
    await runCollection(env);
  },

  async queue(batch, env): Promise<void> {
    if (batch.queue.endsWith("-dlq")) {
      for (const m of batch.messages) {
        log("ERROR", "webhooks", "Dead letter", { message: m.body as Record<string, unknown> });
        m.ack();
      }
      return;
    }
    for (const m of batch.messages) {
      const body = m.body as EventMessage;
      try {
        if (body.kind === "collection") {
          await detectSignals(env, body.collection_id);
          m.ack();
        } else if (body.kind === "collect") {
          await runCollection(env);
          m.ack();
        } else if (body.kind === "deliver") {
          const delay = await deliver(env, body.delivery_id);
          if (delay === null) m.ack();
          else m.retry({ delaySeconds: Math.max(0, Math.round(delay)) });
        } else {
          log("WARN", "queue", "Unknown message", { body: body as unknown as Record<string, unknown> });
          m.ack();
        }
      } catch (e) {
        log("ERROR", "queue", "Message failed; retrying", { error: String((e as Error)?.stack ?? e) });
        m.retry({ delaySeconds: 5 });
      }
    }
  },
} satisfies ExportedHandler<Env, EventMessage>;
