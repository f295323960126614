// partyserver: a Server subclass as a Durable Object, reached through
// routePartykitRequest (/parties/<binding in kebab case>/<room>).
import { Server, routePartykitRequest } from "partyserver";

export class Room extends Server {
  onRequest(request) {
    return new Response(`room ${this.name} got ${new URL(request.url).pathname}`);
  }
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === "/partyserver") {
      const res = await routePartykitRequest(new Request("https://corpus.test/parties/room/lobby"), env);
      if (res === null) throw new Error("routePartykitRequest found no party");
      const text = await res.text();
      const want = "room lobby got /parties/room/lobby";
      if (text !== want) throw new Error(`expected ${JSON.stringify(want)}, got ${JSON.stringify(text)}`);
      return Response.json({ ok: true, detail: text });
    }
    return (await routePartykitRequest(request, env)) ?? new Response("not found", { status: 404 });
  },
};
