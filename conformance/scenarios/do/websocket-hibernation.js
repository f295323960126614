// Hibernatable WebSockets: acceptWebSocket with tags, getWebSockets/getTags, attachments, auto-response, close codes.
import { Transcript } from "../../lib/transcript.js";
import { socketEvents as events } from "../../lib/websocket.js";

const parsed = (e) => (e.type === "message" && e.data.startsWith("{") ? { ...e, data: JSON.parse(e.data) } : e);

export default async function ({ env }) {
  const t = new Transcript();
  const stub = env.DO.getByName("websocket-hibernation:room");
  await t.step("no upgrade header", async () => {
    const res = await stub.fetch("http://object.test/ws-no-upgrade");
    return { status: res.status, webSocket: res.webSocket };
  });
  const res = await stub.fetch("http://object.test/ws-hibernate?tag=room&tag=alice&who=alice", {
    headers: { Upgrade: "websocket" },
  });
  t.note("upgrade", { status: res.status, hasWebSocket: res.webSocket !== null && res.webSocket !== undefined });
  const ws = res.webSocket;
  await t.step("accept", () => ws.accept());
  const next = events(ws);
  ws.send("hello");
  t.note("reply to hello", parsed(await next()));
  ws.send("ping");
  t.note("auto-response", await next());
  ws.send("attach");
  t.note("after attachment update", parsed(await next()));

  const res2 = await stub.fetch("http://object.test/ws-hibernate?tag=bob&who=bob", { headers: { Upgrade: "websocket" } });
  const ws2 = res2.webSocket;
  ws2.accept();
  const next2 = events(ws2);
  ws2.send("hi from bob");
  t.note("second socket", parsed(await next2()));
  ws2.send("close-me");
  t.note("server-initiated close", await next2());

  ws.close(4000, "client bye");
  const deadline = Date.now() + 5000;
  let closes = await stub.closes();
  while (!closes.some((c) => c.code === 4000) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    closes = await stub.closes();
  }
  t.note("webSocketClose saw", closes.filter((c) => c.code === 4000));
  return t;
}
