#!/usr/bin/env python3
"""Load for the Katy Coin app (apps/katy-coin) served by Hearth.

Two phases:

- transfers: wallet-to-wallet transfers (POST /api/wallet/transfer) among
  20 users from N concurrent keep-alive clients for D seconds; per second,
  p50 and p99 latency; then the total of every wallet is checked.
- trades:    complete trades end to end, each through the HTTP API: create,
  join, offer coins on both sides, accept twice (the TradeWorkflow starts:
  validation, valuation, escrow holds), confirm twice once escrowed, and
  wait until completed; trades per second and p50/p99 per trade. The
  ledger is then waited for and verified.

  bench/apps/katy-coin-load.sh [--duration S] [--concurrency N]

runs it end to end; this file alone drives a server that is already up:

  katy-coin-load.py --url http://127.0.0.1:8787 --secret JWT_SECRET
"""
import argparse
import base64
import hashlib
import hmac
import http.client
import json
import random
import threading
import time
import urllib.parse

USERS = 20
START = 1_000_000_000


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def token(secret, sub, role=None):
    claims = {"sub": sub, "exp": int(time.time()) + 7200}
    if role:
        claims["role"] = role
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps(claims).encode())
    sig = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(sig)}"


def percentile(sorted_ms, q):
    if not sorted_ms:
        return 0.0
    i = min(len(sorted_ms) - 1, max(0, int(round(q * len(sorted_ms) + 0.5)) - 1))
    return sorted_ms[i]


class Client:
    def __init__(self, url, tok):
        p = urllib.parse.urlparse(url)
        self.host, self.port, self.tok = p.hostname, p.port, tok
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)

    def call(self, method, path, body=None):
        headers = {"Authorization": f"Bearer {self.tok}"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        for attempt in range(2):
            try:
                self.conn.request(method, path, body=data, headers=headers)
                r = self.conn.getresponse()
                raw = r.read()
                return r.status, (json.loads(raw) if raw else None)
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
                if attempt:
                    raise
        raise RuntimeError("unreachable")


def must(status_body, what):
    status, body = status_body
    if status >= 300:
        raise RuntimeError(f"{what}: {status} {body}")
    return body


def setup(url, secret):
    admin = Client(url, token(secret, "admin", "admin"))
    must(admin.call("POST", "/api/users", {"handle": "admin"}), "register admin")
    for i in range(USERS):
        u = Client(url, token(secret, f"u{i:02d}"))
        must(u.call("POST", "/api/users", {"handle": f"u{i:02d}"}), "register")
        must(admin.call("POST", "/api/admin/mint", {"user": f"u{i:02d}", "amount": START, "txId": f"bench-{i}"}), "mint")


def transfers(url, secret, duration, concurrency):
    lat, refused, lock = [], [0], threading.Lock()
    stop = time.monotonic() + duration

    def worker(n):
        rnd = random.Random(n)
        clients = {}
        k = 0
        while time.monotonic() < stop:
            a = rnd.randrange(USERS)
            b = (a + 1 + rnd.randrange(USERS - 1)) % USERS
            c = clients.setdefault(a, Client(url, token(secret, f"u{a:02d}")))
            t0 = time.monotonic()
            status, body = c.call("POST", "/api/wallet/transfer", {"to": f"u{b:02d}", "amount": 1 + rnd.randrange(1000), "txId": f"w{n}-{k}"})
            ms = (time.monotonic() - t0) * 1000
            k += 1
            with lock:
                if status == 200:
                    lat.append(ms)
                else:
                    refused[0] += 1

    t0 = time.monotonic()
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0
    total = 0
    for i in range(USERS):
        w = must(Client(url, token(secret, f"u{i:02d}")).call("GET", "/api/wallet"), "wallet")
        total += w["currencies"]["KATY"]["balance"] + w["currencies"]["KATY"]["in_flight"]
    lat.sort()
    return {"count": len(lat), "failed": refused[0], "per_second": len(lat) / elapsed,
            "p50": percentile(lat, 0.5), "p99": percentile(lat, 0.99), "conserved": total == USERS * START}


def wait_status(c, trade, want, limit=60):
    end = time.monotonic() + limit
    while time.monotonic() < end:
        t = must(c.call("GET", f"/api/trades/{trade}"), "trade")
        if t["status"] == want:
            return
        if t["status"] in ("failed", "cancelled", "expired"):
            raise RuntimeError(f"trade {trade} {t['status']}: {t.get('detail')}")
        time.sleep(0.02)
    raise RuntimeError(f"trade {trade} not {want} after {limit} s")


def trades(url, secret, duration, concurrency):
    lat, lock, ids = [], threading.Lock(), []
    stop = time.monotonic() + duration

    def worker(n):
        a_id, b_id = f"u{(2 * n) % USERS:02d}", f"u{(2 * n + 1) % USERS:02d}"
        a, b = Client(url, token(secret, a_id)), Client(url, token(secret, b_id))
        while time.monotonic() < stop:
            t0 = time.monotonic()
            trade = must(a.call("POST", "/api/trades"), "create")["tradeId"]
            must(b.call("POST", f"/api/trades/{trade}/join"), "join")
            must(a.call("POST", f"/api/trades/{trade}/offer", {"coins": 500}), "offer a")
            must(b.call("POST", f"/api/trades/{trade}/offer", {"coins": 450}), "offer b")
            must(a.call("POST", f"/api/trades/{trade}/accept"), "accept a")
            must(b.call("POST", f"/api/trades/{trade}/accept"), "accept b")
            wait_status(a, trade, "escrowed")
            must(a.call("POST", f"/api/trades/{trade}/confirm"), "confirm a")
            must(b.call("POST", f"/api/trades/{trade}/confirm"), "confirm b")
            wait_status(a, trade, "completed")
            ms = (time.monotonic() - t0) * 1000
            with lock:
                lat.append(ms)
                ids.append(trade)

    t0 = time.monotonic()
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(min(concurrency, USERS // 2))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0
    lat.sort()
    return {"count": len(lat), "per_second": len(lat) / elapsed, "p50": percentile(lat, 0.5), "p99": percentile(lat, 0.99), "ids": ids}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--secret", required=True)
    ap.add_argument("--duration", type=float, default=20)
    ap.add_argument("--concurrency", type=int, default=8)
    a = ap.parse_args()
    setup(a.url, a.secret)
    tr = transfers(a.url, a.secret, a.duration, a.concurrency)
    td = trades(a.url, a.secret, a.duration, a.concurrency)
    checker = Client(a.url, token(a.secret, "admin", "admin"))
    end = time.monotonic() + 120
    while True:
        v = must(checker.call("GET", "/api/settlements/verify"), "verify")
        if v["entries"] >= td["count"] or time.monotonic() > end:
            break
        time.sleep(0.2)
    td.pop("ids")
    print(json.dumps({"duration": a.duration, "concurrency": a.concurrency, "transfers": tr, "trades": td,
                      "ledger": {"ok": v["ok"], "entries": v["entries"]}}))


if __name__ == "__main__":
    main()
