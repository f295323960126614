// The monitoring dashboard: polls /monitoring/unified-metrics and shows the
// live event stream from /monitoring/stream (a hibernating Durable Object).
(function () {
  const $ = (id) => document.getElementById(id);
  let token = sessionStorage.getItem("cc-token") || "";
  let socket = null;
  let timer = null;

  function pill(el, status) {
    el.textContent = status;
    el.className = "pill " + status;
  }

  async function refresh() {
    const res = await fetch("/monitoring/unified-metrics", { headers: { authorization: "Bearer " + token } });
    if (!res.ok) {
      pill($("overall"), "unhealthy");
      return;
    }
    const m = await res.json();
    pill($("overall"), m.system.overallStatus);
    $("score").textContent = m.system.healthScore;
    $("requests").textContent = m.dashboard.metrics.requests;
    $("errors").textContent = (m.system.errorRate * 100).toFixed(2) + "%";
    $("p99").textContent = m.system.p99LatencyMs;
    $("active").textContent = m.coordinator.activeTransactions;
    $("dead").textContent = m.system.deadLetters;
    const rows = Object.entries(m.domains).map(([name, d]) => {
      const tr = document.createElement("tr");
      for (const v of [name, d.status, d.metrics.requests, d.metrics.serverErrors, d.metrics.p99LatencyMs]) {
        const td = document.createElement("td");
        td.textContent = String(v);
        tr.appendChild(td);
      }
      return tr;
    });
    $("domains").replaceChildren(...rows);
  }

  function show(message) {
    const li = document.createElement("li");
    if (message.kind === "event") {
      li.textContent = `${message.at} ${message.event.domain} ${message.event.type} ${JSON.stringify(message.event.data)}`;
      li.dataset.eventId = message.event.id;
      li.dataset.type = message.event.type;
    } else if (message.kind === "alert") {
      li.textContent = `${message.at} ALERT ${message.alert.severity}: ${message.alert.message}`;
    } else {
      return;
    }
    const list = $("events");
    list.prepend(li);
    while (list.children.length > 200) list.lastChild.remove();
  }

  function connect() {
    if (socket) socket.close();
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    socket = new WebSocket(`${scheme}//${location.host}/monitoring/stream?access_token=${encodeURIComponent(token)}`);
    socket.onopen = () => pill($("conn"), "connected");
    socket.onclose = () => {
      pill($("conn"), "disconnected");
      setTimeout(() => token && connect(), 3000);
    };
    socket.onmessage = (e) => {
      const message = JSON.parse(e.data);
      if (message.kind === "hello") message.recent.forEach(show);
      else show(message);
    };
    clearInterval(timer);
    refresh();
    timer = setInterval(refresh, 5000);
  }

  $("login").addEventListener("submit", (e) => {
    e.preventDefault();
    token = $("token").value.trim();
    sessionStorage.setItem("cc-token", token);
    connect();
  });
  if (token) connect();
})();
