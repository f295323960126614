// The dashboard: signs in (session cookie), draws prices and signals from
// /api/v1/dashboard/*, and applies live updates from /live.
const $ = (s) => document.querySelector(s);
let socket = null;

async function api(path, init) {
  const r = await fetch(path, { credentials: "same-origin", ...init });
  if (r.status === 401) { show(false); throw new Error("signed out"); }
  return r.json();
}

function show(signedIn) {
  $("#login").hidden = signedIn;
  $("#app").hidden = !signedIn;
  $("#logout").hidden = !signedIn;
}

function draw(prices, signals) {
  const c = $("#chart"), g = c.getContext("2d");
  g.clearRect(0, 0, c.width, c.height);
  if (prices.length < 2) return;
  const ys = prices.map((p) => p.price), lo = Math.min(...ys), hi = Math.max(...ys) || 1;
  const x = (i) => (i / (prices.length - 1)) * (c.width - 20) + 10;
  const y = (v) => c.height - 10 - ((v - lo) / (hi - lo || 1)) * (c.height - 20);
  g.strokeStyle = "#4ca3ff"; g.beginPath();
  prices.forEach((p, i) => (i ? g.lineTo(x(i), y(p.price)) : g.moveTo(x(i), y(p.price))));
  g.stroke();
  g.fillStyle = "#f05050";
  for (const s of signals) {
    const i = prices.findIndex((p) => p.timestamp >= s.created_at);
    if (i >= 0) { g.beginPath(); g.arc(x(i), y(prices[i].price), 4, 0, 7); g.fill(); }
  }
}

async function refresh() {
  const o = await api("/api/v1/dashboard/overview");
  const sel = $("#symbol");
  if (!sel.options.length) for (const p of o.prices) sel.add(new Option(p.symbol, p.symbol));
  $("#prices tbody").innerHTML = "";
  for (const p of o.prices) {
    const tr = document.createElement("tr");
    for (const v of [p.symbol, p.price.toLocaleString(), Math.round(p.volume_24h).toLocaleString(), p.source, p.timestamp]) {
      const td = document.createElement("td"); td.textContent = v; tr.append(td);
    }
    $("#prices tbody").append(tr);
  }
  $("#signals").innerHTML = "";
  for (const s of o.signals) addSignal(s, false);
  $("#sources").innerHTML = "";
  for (const s of o.sources) {
    const li = document.createElement("li"); li.className = s.status;
    li.textContent = `${s.source}: ${s.status}${s.last_error ? " (" + s.last_error + ")" : ""}`;
    $("#sources").append(li);
  }
  const chart = await api(`/api/v1/dashboard/chart?symbol=${encodeURIComponent(sel.value || "bitcoin")}`);
  draw(chart.prices, chart.signals);
}

function addSignal(s, top) {
  const li = document.createElement("li");
  li.textContent = `${s.created_at} ${s.type} ${s.symbol} confidence ${s.confidence_score}`;
  top ? $("#signals").prepend(li) : $("#signals").append(li);
}

function connect() {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  socket = new WebSocket(`${proto}//${location.host}/live`);
  socket.onopen = () => { $("#status").textContent = "live"; $("#status").className = "live"; };
  socket.onclose = () => { $("#status").textContent = "offline"; $("#status").className = ""; setTimeout(connect, 5000); };
  socket.onmessage = (e) => {
    const m = JSON.parse(e.data);
    if (m.kind === "signal") addSignal(m.signal, true);
    if (m.kind === "collection") refresh().catch(() => {});
  };
}

$("#login-form").onsubmit = async (e) => {
  e.preventDefault();
  const f = new FormData(e.target);
  const body = { email: f.get("email"), password: f.get("password") };
  if (f.get("totp")) body.totp = f.get("totp");
  const r = await fetch("/auth/login", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  if (!r.ok) { $("#login-error").textContent = (await r.json()).error; return; }
  show(true); await refresh(); connect();
};
$("#logout").onclick = async () => { await fetch("/auth/logout", { method: "POST" }); location.reload(); };
$("#symbol").onchange = () => refresh();

fetch("/auth/me").then((r) => { if (r.ok) { show(true); refresh(); connect(); } else show(false); });
