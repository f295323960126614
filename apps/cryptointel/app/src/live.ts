// LiveHub: one Durable Object that fans collection and signal updates out
// to every connected dashboard over hibernatable WebSockets.
import { DurableObject } from "cloudflare:workers";

const MAX_SOCKETS = 500;
const RECENT = 20;

export class LiveHub extends DurableObject {
  private recent: string[] = [];

  async broadcast(message: Record<string, unknown>): Promise<number> {
    const text = JSON.stringify({ ...message, at: new Date().toISOString() });
    this.recent.push(text);
    if (this.recent.length > RECENT) this.recent.splice(0, this.recent.length - RECENT);
    let sent = 0;
    for (const ws of this.ctx.getWebSockets()) {
      try {
        ws.send(text);
        sent++;
      } catch {
        // closing; webSocketClose tidies up
      }
    }
    return sent;
  }

  async fetch(request: Request): Promise<Response> {
    if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return Response.json({ error: "expected a WebSocket upgrade" }, { status: 426 });
    }
    if (this.ctx.getWebSockets().length >= MAX_SOCKETS) return Response.json({ error: "too many live connections" }, { status: 503 });
    const pair = new WebSocketPair();
    const [client, server] = Object.values(pair);
    this.ctx.acceptWebSocket(server);
    server.send(JSON.stringify({ kind: "hello", recent: this.recent.map((r) => JSON.parse(r)) }));
    return new Response(null, { status: 101, webSocket: client });
  }

  async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer) {
    if (message === "ping") ws.send(JSON.stringify({ kind: "pong", at: new Date().toISOString() }));
  }

  async webSocketClose(ws: WebSocket, code: number, reason: string) {
    try {
      ws.close(code === 1005 ? 1000 : code, reason);
    } catch {
      // already closed
    }
  }
}
