#!/usr/bin/env python3
"""Load for the Coinswarm app (apps/coinswarm) served by Hearth.

Two modes:

  coinswarm-load.py doubles --market-port P --agent-port Q [--agent-ms MS]
      a Coinbase-shaped ticker (GET /products/{pair}/ticker, counting calls)
      and an ML agent (POST /predict, /vote, /backtest answering after MS)
      on 127.0.0.1, until killed;

  coinswarm-load.py load --url URL --token TOKEN --market-url URL [--duration S] [--concurrency N]
      seeds 200 trades and 1,000 patterns, then measures each path for S
      seconds with N keep-alive connections and prints JSON: requests per
      second, p50 and p99 per path, next to the seed's stated latencies.

bench/apps/coinswarm-load.sh runs both end to end.
"""
import argparse
import http.client
import http.server
import itertools
import json
import math
import random
import threading
import time
import urllib.parse

# The seed's "Performance Benchmarks" (Cloudflare column) and "Request
# Routing" figures, in ms.
SEED = {
    "market_data": "8 (GET /market-data)",
    "accounts": "12 (GET /accounts)",
    "recent_trades": "15 (GET /trades recent)",
    "similar_patterns": "5 (KNN k=10)",
    "predict_cached": "3-10 (fast path: cached predictions)",
    "predict_agent": "70-120 (ML path: Worker -> Python agent)",
    "committee": "70-120 (ML path: committee votes)",
}


def doubles(market_port, agent_port, agent_ms):
    counter = itertools.count(1)
    served = [0]

    class Market(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            if self.path == "/__count":
                body = json.dumps({"calls": served[0]}).encode()
                self.send_response(200)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            n = next(counter)
            served[0] = n
            price = 60000 + 50 * math.sin(n / 10)
            body = json.dumps({"ask": f"{price + 0.5:.2f}", "bid": f"{price - 0.5:.2f}", "volume": "1234.5",
                               "trade_id": n, "price": f"{price:.2f}", "size": "0.01",
                               "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    class Agent(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_POST(self):
            length = int(self.headers.get("content-length", "0"))
            req = json.loads(self.rfile.read(length) or b"{}")
            time.sleep(agent_ms / 1000)
            if self.path == "/predict":
                out = {"direction": random.choice(["up", "down"]), "confidence": round(random.random(), 3), "model": "double"}
            elif self.path == "/vote":
                out = {"vote": random.choice(["buy", "sell", "hold"]), "confidence": round(random.random(), 3)}
            else:
                out = {"id": req.get("id"), "sharpe": 1.0}
            body = json.dumps(out).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    # A deep accept queue: the default of 5 drops connections under the
    # committee's fan-out and adds a 1 s SYN retry to the figures.
    http.server.ThreadingHTTPServer.request_queue_size = 256
    servers = [http.server.ThreadingHTTPServer(("127.0.0.1", market_port), Market),
               http.server.ThreadingHTTPServer(("127.0.0.1", agent_port), Agent)]
    for s in servers:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    while True:
        time.sleep(3600)


def percentile(sorted_ms, q):
    if not sorted_ms:
        return 0.0
    i = min(len(sorted_ms) - 1, max(0, int(round(q * len(sorted_ms) + 0.5)) - 1))
    return sorted_ms[i]


def request(conn, token, method, path, body=None):
    headers = {"authorization": f"Bearer {token}"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["content-type"] = "application/json"
    conn.request(method, path, body=data, headers=headers)
    res = conn.getresponse()
    return res.status, res.read()


def run(url, token, duration, concurrency, make):
    parsed = urllib.parse.urlparse(url)
    latencies, failures = [], []
    lock = threading.Lock()
    deadline = time.monotonic() + duration

    def worker():
        conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)
        mine, bad = [], []
        while time.monotonic() < deadline:
            method, path, body = make()
            started = time.perf_counter()
            try:
                status, data = request(conn, token, method, path, body)
                elapsed = (time.perf_counter() - started) * 1000
                if status == 200:
                    mine.append(elapsed)
                else:
                    bad.append(f"{status} {data[:200]!r}")
            except (OSError, http.client.HTTPException) as err:
                bad.append(str(err))
                conn.close()
                conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)
        with lock:
            latencies.extend(mine)
            failures.extend(bad)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - t0
    latencies.sort()
    return {"per_second": len(latencies) / wall, "ok": len(latencies), "failed": len(failures),
            "first_failures": failures[:3], "p50": percentile(latencies, 0.5), "p99": percentile(latencies, 0.99)}


def window(rng, trend):
    p, out = 100.0, []
    for _ in range(32):
        p += trend + rng.gauss(0, 1)
        out.append(round(p, 4))
    return out


def upstream_calls(market_url):
    parsed = urllib.parse.urlparse(market_url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=10)
    conn.request("GET", "/__count")
    return json.loads(conn.getresponse().read())["calls"]


def load(url, token, duration, concurrency, market_url):
    parsed = urllib.parse.urlparse(url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)
    status, _ = request(conn, token, "POST", "/api/accounts", {"id": "bench", "balance": 1e12})
    assert status in (201, 409), status
    for i in range(100):
        for side in ("buy", "sell"):
            s, d = request(conn, token, "POST", "/api/orders", {"account_id": "bench", "symbol": "BTC-USD", "side": side, "quantity": 0.01})
            assert s == 201, d
    rng = random.Random(7)
    regimes = ["trending_up", "trending_down", "ranging", "volatile"]
    for b in range(10):
        batch = []
        for i in range(100):
            trend = rng.choice([-1.0, 0.0, 1.0])
            batch.append({"id": f"p{b}-{i}", "symbol": rng.choice(["BTC-USD", "ETH-USD", "SOL-USD"]),
                          "regime": rng.choice(regimes), "outcome": rng.choice(["up", "down", "flat"]),
                          "prices": window(rng, trend)})
        s, d = request(conn, token, "POST", "/api/patterns", {"patterns": batch})
        assert s == 200, d
    queries = [window(rng, rng.choice([-1.0, 1.0])) for _ in range(64)]
    q = itertools.cycle(queries)
    symbols = itertools.cycle(["BTC-USD", "ETH-USD", "SOL-USD"])
    paths = {
        "market_data": lambda: ("GET", "/api/market-data/BTC-USD", None),
        "accounts": lambda: ("GET", "/api/accounts", None),
        "recent_trades": lambda: ("GET", "/api/trades?symbol=BTC-USD&limit=100", None),
        "similar_patterns": lambda: ("POST", "/api/patterns/similar", {"prices": next(q), "top_k": 10, "symbol": "BTC-USD"}),
        "predict_cached": lambda: ("POST", "/api/predict", {"symbol": "BTC-USD"}),
        # max_age_ms 0: no cached prediction will do, every call reaches the agent.
        "predict_agent": lambda: ("POST", "/api/predict", {"symbol": next(symbols), "max_age_ms": 0}),
        "committee": lambda: ("POST", "/api/committee", {"symbol": next(symbols)}),
    }
    out = {"concurrency": concurrency, "duration": duration, "paths": {}}
    for name, make in paths.items():
        before = upstream_calls(market_url)
        r = run(url, token, duration, concurrency, make)
        r["upstream_calls"] = upstream_calls(market_url) - before
        r["seed_ms"] = SEED[name]
        out["paths"][name] = r
    print(json.dumps(out))


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="mode", required=True)
    d = sub.add_parser("doubles")
    d.add_argument("--market-port", type=int, required=True)
    d.add_argument("--agent-port", type=int, required=True)
    d.add_argument("--agent-ms", type=float, default=50.0)
    l = sub.add_parser("load")
    l.add_argument("--url", required=True)
    l.add_argument("--token", required=True)
    l.add_argument("--duration", type=float, default=10.0)
    l.add_argument("--concurrency", type=int, default=4)
    l.add_argument("--market-url", required=True, help="the market double, for its call count")
    a = ap.parse_args()
    if a.mode == "doubles":
        doubles(a.market_port, a.agent_port, a.agent_ms)
    else:
        load(a.url, a.token, a.duration, a.concurrency, a.market_url)


if __name__ == "__main__":
    main()
