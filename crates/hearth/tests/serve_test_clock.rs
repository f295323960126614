//! `hearth serve --test-clock`: `POST /__hearth/clock` moves the workers'
//! time forward, and everything that keeps time follows it without a real
//! wait: `Date`, KV expiry, rate-limit windows, Durable Object alarms,
//! Queue delivery and retry delays, Workflow sleeps and event timeouts,
//! cron triggers and Analytics Engine timestamps. Each jump below stands
//! for minutes to days of real time; the real waits are polls of a few
//! milliseconds while the woken scheduler runs.

mod web_support;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use web_support::{Reply, Server};

const CONFIG: &str = r#"
name = "clocked"
main = "index.js"
compatibility_date = "2025-09-01"

[triggers]
crons = ["0 3 * * *"]

[[kv_namespaces]]
binding = "KV"
id = "kv"

[[durable_objects.bindings]]
name = "TIMER"
class_name = "Timer"

[[migrations]]
tag = "v1"
new_sqlite_classes = ["Timer"]

[[workflows]]
name = "naps"
binding = "NAPS"
class_name = "Nap"

[[queues.producers]]
binding = "JOBS"
queue = "jobs"

[[queues.consumers]]
queue = "jobs"
max_batch_size = 1
max_batch_timeout = 0
max_retries = 3

[[ratelimits]]
name = "LIMIT"
namespace_id = "1"
simple = { limit = 2, period = 60 }

[[analytics_engine_datasets]]
binding = "POINTS"
dataset = "points"
"#;

const WORKER: &str = r#"
import { DurableObject, WorkflowEntrypoint } from "cloudflare:workers";

export class Timer extends DurableObject {
  async fetch(request) {
    const ms = Number(new URL(request.url).searchParams.get("in"));
    await this.ctx.storage.setAlarm(Date.now() + ms);
    return new Response("set");
  }
  async alarm() {
    await this.env.KV.put("alarm", String(Date.now()));
  }
}

export class Nap extends WorkflowEntrypoint {
  async run(event, step) {
    await step.do("start", async () => {
      await this.env.KV.put("nap:start", String(Date.now()));
    });
    await step.sleep("nap", "1 day");
    const woke = await step.do("woke", async () => {
      const now = Date.now();
      await this.env.KV.put("nap:woke", String(now));
      return now;
    });
    let timedOut = false;
    try {
      await step.waitForEvent("go", { type: "go", timeout: "1 hour" });
    } catch (e) {
      timedOut = true;
    }
    const until = await step.do("plan", async () => Date.now() + 2 * 86400000);
    await step.sleepUntil("until", new Date(until));
    const done = await step.do("done", async () => Date.now());
    return { woke, timedOut, until, done };
  }
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const [, route, arg] = url.pathname.split("/");
    switch (route) {
      case "now":
        return Response.json({
          now: Date.now(),
          date: new Date().getTime(),
          called: Date(),
          // Everything but the current time is the engine's own Date.
          same: [
            new Date(0).getTime() === 0,
            new Date(2020, 0, 2).getDate() === 2,
            Date.UTC(2020, 0, 1) === 1577836800000,
            Date.parse("2020-01-01T00:00:00Z") === 1577836800000,
            new Date() instanceof Date,
            new Date().constructor === Date,
            Object.prototype.toString.call(new Date()) === "[object Date]",
            new (class Stamp extends Date {})() instanceof Date,
            Math.abs(new (class Stamp extends Date {})().getTime() - Date.now()) < 1000,
            Date.length === 7,
          ],
        });
      case "kv":
        if (request.method === "PUT") {
          await env.KV.put(arg, "v", { expirationTtl: Number(url.searchParams.get("ttl")) });
          return new Response("put");
        } else {
          const v = await env.KV.get(arg);
          return v === null ? new Response("missing", { status: 404 }) : new Response(v);
        }
      case "list": {
        const { keys } = await env.KV.list({ prefix: arg });
        return Response.json(keys.map((k) => k.name));
      }
      case "alarm":
        return env.TIMER.get(env.TIMER.idFromName("t")).fetch(request);
      case "send":
        await env.JOBS.send({ job: 1 }, { delaySeconds: 3600 });
        return new Response("sent");
      case "nap":
        if (request.method === "POST") {
          await env.NAPS.create({ id: "n1" });
          return new Response("started");
        }
        return Response.json(await (await env.NAPS.get("n1")).status());
      case "limit":
        return Response.json(await env.LIMIT.limit({ key: "k" }));
      case "cache": {
        const key = new Request("https://cache.test/item");
        if (request.method === "PUT") {
          await caches.default.put(key, new Response("cached", { headers: { "cache-control": "max-age=60" } }));
          return new Response("put");
        }
        const hit = await caches.default.match(key);
        return hit ? hit : new Response("miss", { status: 404 });
      }
      case "point":
        env.POINTS.writeDataPoint({ blobs: ["p"], doubles: [1] });
        return new Response("written");
    }
    return new Response("no route", { status: 404 });
  },
  async queue(batch, env) {
    for (const msg of batch.messages) {
      if (msg.attempts === 1) {
        await env.KV.put("q1", String(Date.now()));
        msg.retry({ delaySeconds: 7200 });
      } else {
        await env.KV.put("q2", String(Date.now()));
        msg.ack();
      }
    }
  },
  async scheduled(event, env) {
    await env.KV.put("cron:" + event.scheduledTime, String(Date.now()));
  },
};
"#;

const HOUR: u64 = 3_600_000;
const DAY: u64 = 24 * HOUR;

fn start(root: &Path) -> Server {
    std::fs::write(root.join("wrangler.toml"), CONFIG).unwrap();
    std::fs::write(root.join("index.js"), WORKER).unwrap();
    Server::with_test_clock("serve", &root.join("wrangler.toml"), &root.join("data"))
}

/// The KV value `key` once it is there (the scheduler just woken writes
/// it), as a number.
fn wait_kv(server: &Server, key: &str) -> u64 {
    let until = Instant::now() + Duration::from_secs(15);
    loop {
        let r = server.get(&format!("/kv/{key}"));
        if r.status == 200 {
            return r.text().parse().unwrap();
        }
        assert!(Instant::now() < until, "{key} never written");
        std::thread::sleep(Duration::from_millis(25));
    }
}

fn absent(server: &Server, key: &str) -> bool {
    server.get(&format!("/kv/{key}")).status == 404
}

fn json(r: Reply) -> Value {
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

#[test]
fn everything_that_keeps_time_follows_the_test_clock() {
    let root = tempfile::tempdir().unwrap();
    let server = start(root.path());
    assert!(
        server
            .log
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("TEST CLOCK ON")),
        "the flag is announced"
    );

    // Date: at start the clock is the system's; a jump moves Date.now(),
    // new Date() and Date() alike.
    let c0 = server.clock_ms();
    let now = json(server.get("/now"));
    assert!(now["now"].as_u64().unwrap().abs_diff(c0) < 5_000, "{now}");
    let c1 = server.advance_clock(10 * DAY);
    assert!(c1 >= c0 + 10 * DAY);
    let now = json(server.get("/now"));
    let (js, date) = (now["now"].as_u64().unwrap(), now["date"].as_u64().unwrap());
    assert!(js >= c1 && js < c1 + 5_000, "Date.now() {js} vs clock {c1}");
    assert!(
        date >= c1 && date < c1 + 5_000,
        "new Date() {date} vs clock {c1}"
    );
    assert!(
        now["same"].as_array().unwrap().iter().all(|v| v == true),
        "{now}"
    );
    let year = now["called"].as_str().unwrap().to_owned();
    assert!(year.contains("GMT") || year.contains("UTC"), "{year}");

    // Rate limits: fixed windows of the clock. Start at a minute's start.
    let minute = 60_000;
    server.set_clock((server.clock_ms() / minute + 1) * minute + 100);
    let admitted: Vec<bool> = (0..3)
        .map(|_| json(server.get("/limit"))["success"].as_bool().unwrap())
        .collect();
    assert_eq!(admitted, [true, true, false]);
    server.advance_clock(minute);
    assert_eq!(json(server.get("/limit"))["success"], true);

    // KV expiry.
    assert_eq!(
        server.request("PUT", "/kv/brief?ttl=120", &[], b"").status,
        200
    );
    assert_eq!(server.get("/kv/brief").status, 200);
    server.advance_clock(110_000);
    assert_eq!(server.get("/kv/brief").status, 200, "not yet expired");
    server.advance_clock(12_000);
    assert_eq!(server.get("/kv/brief").status, 404, "expired at its TTL");

    // A Durable Object alarm an hour away rings when the clock passes it.
    let set_at = server.clock_ms();
    assert_eq!(
        server
            .request("POST", &format!("/alarm?in={HOUR}"), &[], b"")
            .status,
        200
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(absent(&server, "alarm"), "rang early");
    server.advance_clock(HOUR + 1_000);
    let rang = wait_kv(&server, "alarm");
    assert!(rang >= set_at + HOUR, "alarm at {rang}, set at {set_at}");

    // Queues: a send delayed an hour, then a retry delayed two hours.
    let sent_at = server.clock_ms();
    assert_eq!(server.request("POST", "/send", &[], b"").status, 200);
    std::thread::sleep(Duration::from_millis(300));
    assert!(absent(&server, "q1"), "delivered before its delay");
    server.advance_clock(HOUR + 1_000);
    let q1 = wait_kv(&server, "q1");
    assert!(q1 >= sent_at + HOUR, "first delivery {q1}, sent {sent_at}");
    std::thread::sleep(Duration::from_millis(300));
    assert!(absent(&server, "q2"), "retried before its delay");
    server.advance_clock(2 * HOUR + 1_000);
    let q2 = wait_kv(&server, "q2");
    assert!(q2 >= q1 + 2 * HOUR, "retry at {q2}, first delivery {q1}");

    // Workflows: a one-day step.sleep, then a waitForEvent that times out
    // after an hour.
    assert_eq!(server.request("POST", "/nap", &[], b"").status, 200);
    let started = wait_kv(&server, "nap:start");
    std::thread::sleep(Duration::from_millis(300));
    assert!(absent(&server, "nap:woke"), "woke early");
    server.advance_clock(DAY + 1_000);
    let woke = wait_kv(&server, "nap:woke");
    assert!(woke >= started + DAY, "woke {woke}, started {started}");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(json(server.get("/nap"))["status"], "waiting");
    // The event wait times out after its hour; then sleepUntil two days on.
    server.advance_clock(HOUR + 1_000);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        json(server.get("/nap"))["status"],
        "waiting",
        "sleeping until"
    );
    server.advance_clock(2 * DAY + 1_000);
    let until = Instant::now() + Duration::from_secs(15);
    let status = loop {
        let s = json(server.get("/nap"));
        if s["status"] != "waiting" && s["status"] != "running" {
            break s;
        }
        assert!(Instant::now() < until, "the workflow never finished: {s}");
        std::thread::sleep(Duration::from_millis(25));
    };
    assert_eq!(status["status"], "complete", "{status}");
    let out = &status["output"];
    assert_eq!(out["timedOut"], true);
    assert_eq!(out["woke"], woke);
    let (until, done) = (
        out["until"].as_u64().unwrap(),
        out["done"].as_u64().unwrap(),
    );
    assert!(until >= woke + HOUR + 2 * DAY, "{out}");
    assert!(done >= until, "{out}");

    // Cache API: a response with max-age=60 is served until it is 60 s old.
    assert_eq!(server.request("PUT", "/cache", &[], b"").status, 200);
    assert_eq!(server.get("/cache").text(), "cached");
    server.advance_clock(30_000);
    assert_eq!(server.get("/cache").status, 200, "fresh at 30 s");
    server.advance_clock(31_000);
    assert_eq!(server.get("/cache").status, 404, "stale after 60 s");

    // Cron: passing 03:00 UTC fires that day's run, with its scheduled time.
    let now = server.clock_ms();
    let slot = (now / DAY) * DAY + 3 * HOUR;
    let slot = if slot > now { slot } else { slot + DAY };
    server.set_clock(slot + 1_000);
    let ran = wait_kv(&server, &format!("cron:{slot}"));
    assert!(ran >= slot, "ran at {ran} for {slot}");

    // Analytics Engine stamps points with the clock.
    let before = server.clock_ms();
    assert_eq!(server.request("POST", "/point", &[], b"").status, 200);
    let answer = server.request(
        "POST",
        "/__hearth/analytics_engine/sql",
        &[],
        b"SELECT toUnixTimestamp(timestamp) AS t FROM points FORMAT JSONEachRow",
    );
    assert_eq!(answer.status, 200, "{}", answer.text());
    let t: Value = serde_json::from_str(answer.text().trim()).unwrap();
    let t = t["t"].as_u64().unwrap() * 1000;
    assert!(
        t + 1_000 >= before && t <= before + 5_000,
        "point at {t}, clock {before}"
    );
}

#[test]
fn the_clock_endpoint_refuses_bad_moves_and_exists_only_with_the_flag() {
    let root = tempfile::tempdir().unwrap();
    let server = start(root.path());
    let now = server.clock_ms();
    let r = server.request(
        "POST",
        "/__hearth/clock",
        &[],
        format!("{{\"set_ms\": {}}}", now - 60_000).as_bytes(),
    );
    assert_eq!(r.status, 400);
    assert!(r.text().contains("only moves forward"), "{}", r.text());
    let r = server.request(
        "POST",
        "/__hearth/clock",
        &[],
        b"{\"advance_ms\": \"soon\"}",
    );
    assert_eq!(r.status, 400);
    assert!(
        r.text()
            .contains("advance_ms must be a non-negative integer"),
        "{}",
        r.text()
    );
    let r = server.request("POST", "/__hearth/clock", &[], b"{\"advance_by\": 5}");
    assert_eq!(r.status, 400);
    assert!(
        r.text().contains("unknown field \\\"advance_by\\\""),
        "{}",
        r.text()
    );
    let r = server.request("DELETE", "/__hearth/clock", &[], b"");
    assert_eq!(r.status, 405);
    // The internal endpoints' access rule holds: no token, no clock.
    let r = web_support::http(
        &server.addr,
        "POST",
        "/__hearth/clock",
        &[("authorization", "Bearer wrong")],
        b"{\"advance_ms\": 1}",
    );
    assert_eq!(r.status, 403);
    assert!(
        server.clock_ms() < now + 60_000,
        "refused moves left it alone"
    );
    drop(server);

    let plain = Server::start(
        "serve",
        &root.path().join("wrangler.toml"),
        &root.path().join("data"),
    );
    assert_eq!(plain.get("/__hearth/clock").status, 404);
    let r = plain.request("POST", "/__hearth/clock", &[], b"{\"advance_ms\": 1}");
    assert_eq!(r.status, 404);
}
