// A WebSocket's message and close events as a queue the scenario awaits one
// at a time; a wait longer than 3 s yields {type: "timeout"}.
export function socketEvents(ws) {
  const queue = [];
  const waiting = [];
  const push = (e) => (waiting.length ? waiting.shift()(e) : queue.push(e));
  ws.addEventListener("message", (e) => push({ type: "message", data: e.data }));
  ws.addEventListener("close", (e) => push({ type: "close", code: e.code, reason: e.reason, wasClean: e.wasClean }));
  return () =>
    queue.length
      ? Promise.resolve(queue.shift())
      : new Promise((resolve) => {
          const timer = setTimeout(() => resolve({ type: "timeout" }), 3000);
          waiting.push((e) => {
            clearTimeout(timer);
            resolve(e);
          });
        });
}
