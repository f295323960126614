// Routes:
//   POST /counter/<name>/inc        add one (stored), answers {value}
//   GET  /counter/<name>            {value, alarms}
//   POST /counter/<name>/add?n=5    RPC: add n, answers {value}
//   POST /counter/<name>/alarm?ms=  ring an alarm after ms; alarm() counts it
//   GET  /counter/<name>/log        the SQL log of every change
//   GET  /room/<name>               WebSocket: a chat room that hibernates
import { DurableObject } from "cloudflare:workers";

export class Counter extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    ctx.blockConcurrencyWhile(async () => {
      this.ctx.storage.sql.exec(
        "CREATE TABLE IF NOT EXISTS log (at INTEGER, change TEXT)");
    });
  }

  async add(n) {
    const value = ((await this.ctx.storage.get("value")) ?? 0) + n;
    await this.ctx.storage.put("value", value);
    this.ctx.storage.sql.exec("INSERT INTO log VALUES (?, ?)", Date.now(), "+" + n);
    return value;
  }

  async fetch(request) {
    const url = new URL(request.url);
    if (url.pathname.endsWith("/inc")) {
      return Response.json({ value: await this.add(1) });
    }
    if (url.pathname.endsWith("/alarm")) {
      const ms = Number(url.searchParams.get("ms") ?? "1000");
      await this.ctx.storage.setAlarm(Date.now() + ms);
      return Response.json({ scheduled: await this.ctx.storage.getAlarm() });
    }
    if (url.pathname.endsWith("/log")) {
      return Response.json(this.ctx.storage.sql.exec("SELECT change FROM log ORDER BY rowid").toArray());
    }
    return Response.json({
      value: (await this.ctx.storage.get("value")) ?? 0,
      alarms: (await this.ctx.storage.get("alarms")) ?? 0,
    });
  }

  async alarm(info) {
    const alarms = ((await this.ctx.storage.get("alarms")) ?? 0) + 1;
    await this.ctx.storage.put("alarms", alarms);
    this.ctx.storage.sql.exec("INSERT INTO log VALUES (?, ?)", Date.now(),
      "alarm" + (info.isRetry ? " (retry " + info.retryCount + ")" : ""));
  }
}

export class Room extends DurableObject {
  async fetch(request) {
    if (request.headers.get("upgrade") !== "websocket") {
      return new Response("expected a WebSocket upgrade", { status: 426 });
    }
    const [client, server] = Object.values(new WebSocketPair());
    const name = new URL(request.url).searchParams.get("user") ?? "anon";
    this.ctx.acceptWebSocket(server, [name]);
    server.serializeAttachment({ name, joined: Date.now() });
    return new Response(null, { status: 101, webSocket: client });
  }

  async webSocketMessage(ws, message) {
    const { name } = ws.deserializeAttachment();
    const seen = ((await this.ctx.storage.get("messages")) ?? 0) + 1;
    await this.ctx.storage.put("messages", seen);
    for (const peer of this.ctx.getWebSockets()) {
      peer.send(`${name}: ${message} (#${seen})`);
    }
  }

  async webSocketClose(ws, code, reason) {
    ws.close(code, reason);
  }
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const [, kind, name] = url.pathname.split("/");
    if (kind === "counter" && name) {
      const stub = env.COUNTER.getByName(name);
      if (url.pathname.endsWith("/add")) {
        const n = Number(url.searchParams.get("n") ?? "1");
        return Response.json({ value: await stub.add(n) });
      }
      return stub.fetch(request);
    }
    if (kind === "room" && name) {
      return env.ROOM.getByName(name).fetch(request);
    }
    return new Response("not found", { status: 404 });
  },
};
