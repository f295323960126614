#!/usr/bin/env python3
"""Load for the Crystal Clear app (apps/crystal-clear) served by Hearth.

Measures coordinated PLAYER_WINNINGS sagas per second and their latency
percentiles, and in the same run the peer: single balance credits through
the same router (one domain call, one Durable Object write), so the figure
is a ratio on this machine rather than an absolute number.

  bench/apps/crystal-clear-load.sh [--duration S] [--concurrency N]

runs it end to end (release build, migrations, serve); this file alone
drives a server that is already up:

  crystal-clear-load.py --url http://127.0.0.1:8787 --secret JWT_SECRET
"""
import argparse
import base64
import hashlib
import hmac
import http.client
import json
import threading
import time
import urllib.parse


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token(secret, sub, role):
    head = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64url(json.dumps({"sub": sub, "role": role, "exp": int(time.time()) + 3600}).encode())
    sig = b64url(hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest())
    return f"{head}.{body}.{sig}"


def percentile(sorted_ms, q):
    if not sorted_ms:
        return 0.0
    i = min(len(sorted_ms) - 1, max(0, int(round(q * len(sorted_ms) + 0.5)) - 1))
    return sorted_ms[i]


def run(url, bearer, duration, concurrency, make_request, label):
    parsed = urllib.parse.urlparse(url)
    latencies = []
    failures = []
    lock = threading.Lock()
    deadline = time.monotonic() + duration
    counter = [0]

    def worker(n):
        conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)
        mine, bad = [], []
        while time.monotonic() < deadline:
            with lock:
                counter[0] += 1
                i = counter[0]
            path, body = make_request(n, i)
            started = time.perf_counter()
            try:
                conn.request("POST", path, body=json.dumps(body), headers={
                    "authorization": bearer, "content-type": "application/json",
                    "idempotency-key": f"{label}-{time.time_ns()}-{n}-{i}",
                })
                res = conn.getresponse()
                data = res.read()
                elapsed = (time.perf_counter() - started) * 1000
                if res.status in (200, 201):
                    mine.append(elapsed)
                else:
                    bad.append(f"{res.status} {data[:200]!r}")
            except (OSError, http.client.HTTPException) as err:
                bad.append(str(err))
                conn.close()
                conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)
        with lock:
            latencies.extend(mine)
            failures.extend(bad)

    started = time.monotonic()
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - started
    latencies.sort()
    return {
        "label": label,
        "ok": len(latencies),
        "failed": len(failures),
        "per_second": len(latencies) / wall,
        "p50": percentile(latencies, 0.50),
        "p99": percentile(latencies, 0.99),
        "failures": failures[:5],
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default="http://127.0.0.1:8787")
    ap.add_argument("--secret", required=True)
    ap.add_argument("--duration", type=float, default=20)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--players", type=int, default=100)
    args = ap.parse_args()
    bearer = "Bearer " + token(args.secret, "bench-service", "service")

    def saga(n, i):
        return "/api/domains/coordinator/coordinate", {
            "type": "PLAYER_WINNINGS",
            "domains": ["collections", "distributions", "balance"],
            "payload": {"playerId": f"BENCH_{(n * 7919 + i) % args.players}", "amount": 12.5,
                        "gameId": "SLOTS_777", "agentId": f"AGENT_{n}"},
        }

    def credit(n, i):
        return "/api/domains/balance", {
            "playerId": f"BENCH_{(n * 7919 + i) % args.players}", "amount": 12.5, "currency": "USD", "type": "credit",
        }

    # Warm-up, then the peer and the sagas, alternated twice so drift on the
    # machine affects both alike.
    run(args.url, bearer, 2, args.concurrency, credit, "warm")
    rounds = []
    for _ in range(2):
        rounds.append(run(args.url, bearer, args.duration / 2, args.concurrency, credit, "credit"))
        rounds.append(run(args.url, bearer, args.duration / 2, args.concurrency, saga, "saga"))

    def merge(label):
        rs = [r for r in rounds if r["label"] == label]
        return {
            "per_second": sum(r["per_second"] for r in rs) / len(rs),
            "p50": max(r["p50"] for r in rs),
            "p99": max(r["p99"] for r in rs),
            "ok": sum(r["ok"] for r in rs),
            "failed": sum(r["failed"] for r in rs),
            "failures": [f for r in rs for f in r["failures"]][:5],
        }

    c, s = merge("credit"), merge("saga")
    print(json.dumps({"credit": c, "saga": s, "concurrency": args.concurrency, "duration": args.duration}))


if __name__ == "__main__":
    main()
