// The Workflows area's classes and the polling helpers its scenarios share.
// ConformanceFlow picks its behaviour from `event.payload.mode`, so each
// scenario drives one workflow binding with its own instances.
import { WorkflowEntrypoint } from "cloudflare:workers";
import { NonRetryableError } from "cloudflare:workflows";

// Small, fixed retry delays keep every scenario well inside its deadline.
const QUICK = { retries: { limit: 2, delay: 10, backoff: "constant" }, timeout: 5000 };

const caught = (e) => ({ name: String(e?.name), message: String(e?.message) });

// Counts attempts outside the step journal: a KV key per instance and step.
async function bump(env, key) {
  const n = Number((await env.KV.get(key)) ?? "0") + 1;
  await env.KV.put(key, String(n));
  return n;
}

export class ConformanceFlow extends WorkflowEntrypoint {
  async run(event, step) {
    const p = event.payload ?? {};
    const id = event.instanceId;
    switch (p.mode) {
      case "echo":
        return {
          payload: p,
          instanceId: id,
          timestampIsDate: event.timestamp instanceof Date,
        };

      case "steps": {
        const a = await step.do("first", async () => p.start);
        const b = await step.do("second", async () => a * 2);
        const c = await step.do("third", QUICK, async () => ({ sum: a + b, label: `${p.label}-${b}` }));
        const d = await step.do("fourth", { retries: { limit: 0, delay: 10 }, timeout: "5 seconds" }, async () => [a, b, c.sum]);
        const again = await step.do("first", async () => "second occurrence of a name");
        return { a, b, c, d, again };
      }

      case "flaky": {
        const value = await step.do("flaky", QUICK, async () => {
          const n = await bump(this.env, `${id}:flaky`);
          if (n < 3) throw new Error(`attempt ${n} failed`);
          return `succeeded on attempt ${n}`;
        });
        return { value, attempts: Number(await this.env.KV.get(`${id}:flaky`)) };
      }

      case "nonretryable": {
        const run = () =>
          step.do("refuse", QUICK, async () => {
            await bump(this.env, `${id}:refuse`);
            throw new NonRetryableError("no point retrying");
          });
        if (!p.catch) return await run();
        try {
          await run();
          return "not thrown";
        } catch (e) {
          return { caught: caught(e), attempts: Number(await this.env.KV.get(`${id}:refuse`)) };
        }
      }

      case "always-throws": {
        const run = () =>
          step.do("doomed", QUICK, async () => {
            const n = await bump(this.env, `${id}:doomed`);
            throw new TypeError(`doomed attempt ${n}`);
          });
        if (!p.catch) return await run();
        try {
          await run();
          return "not thrown";
        } catch (e) {
          const afterwards = await step.do("after failure", async () => "later steps still run");
          return { caught: caught(e), attempts: Number(await this.env.KV.get(`${id}:doomed`)), afterwards };
        }
      }

      case "throws-outside-step":
        await step.do("fine", async () => 1);
        throw new RangeError("run itself threw");

      case "sleep": {
        const before = await step.do("before", async () => "before");
        await step.sleep("nap", p.duration);
        const after = await step.do("after", async () => "after");
        return { before, after };
      }

      case "wait": {
        const got = await step.waitForEvent("wait for go", { type: p.type, timeout: p.timeout });
        return { type: got.type, payload: got.payload, timestampIsDate: got.timestamp instanceof Date };
      }

      case "wait-timeout": {
        try {
          await step.waitForEvent("wait in vain", { type: "never-sent", timeout: p.timeout });
          return "no timeout";
        } catch (e) {
          return { caught: caught(e) };
        }
      }

      case "step-names": {
        const out = {};
        for (const [label, name] of Object.entries({
          max: "n".repeat(256),
          tooLong: "n".repeat(257),
          control: "line\nbreak",
          unicode: "étape ✓",
          empty: "",
        })) {
          try {
            out[label] = { ok: await step.do(name, async () => label) };
          } catch (e) {
            out[label] = { threw: caught(e) };
          }
        }
        return out;
      }

      case "long":
        await step.do("start", async () => "started");
        await step.sleep("long nap", p.duration);
        return await step.do("end", async () => "ended");

      default:
        throw new Error(`unknown mode ${p.mode}`);
    }
  }
}

// A second workflow: same ids may exist in both, each binding sees its own.
export class EchoFlow extends WorkflowEntrypoint {
  async run(event, step) {
    const echoed = await step.do("echo", async () => event.payload);
    return { echoed, instanceId: event.instanceId };
  }
}

const FINISHED = new Set(["complete", "errored", "terminated"]);

// Polls status() every 50 ms until a terminal status or the deadline.
export async function settle(instance, deadlineMs = 10000) {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const s = await instance.status();
    if (FINISHED.has(s.status) || Date.now() > end) return s;
    await new Promise((r) => setTimeout(r, 50));
  }
}

// status() reduced to its documented fields (status, output, error);
// Miniflare's own `__LOCAL_DEV_STEP_OUTPUTS` is left out.
export function statusOf(s) {
  const out = { status: s.status };
  for (const k of ["output", "error"]) if (k in s) out[k] = s[k];
  return out;
}
