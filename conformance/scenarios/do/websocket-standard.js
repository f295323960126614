// WebSockets without hibernation: the object calls server.accept() and echoes; close codes reach the caller.
import { Transcript } from "../../lib/transcript.js";
import { socketEvents as events } from "../../lib/websocket.js";

export default async function ({ env }) {
  const t = new Transcript();
  const res = await env.KVDO.getByName("websocket-standard:one").fetch("http://object.test/ws-standard", {
    headers: { Upgrade: "websocket" },
  });
  t.note("upgrade", { status: res.status, readyState: res.webSocket.readyState });
  const ws = res.webSocket;
  ws.accept();
  t.note("readyState after accept", ws.readyState);
  const next = events(ws);
  ws.send("one");
  t.note("echo one", await next());
  ws.send(new Uint8Array([1, 2]));
  const binary = await next();
  t.note("echo binary", { type: binary.type, data: typeof binary.data });
  ws.send("close-me");
  t.note("close", await next());
  return t;
}
