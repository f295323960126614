#!/usr/bin/env python3
"""Load for the Foundation gateway (apps/foundation) served by Hearth.

Authenticated requests through the gateway's full middleware stack (CORS,
correlation id, three rate-limit checks, HS256 JWT verification, tenant
isolation, context-token signing, a usage data point), on two paths:

- me:   GET /api/me (the stack alone);
- runs: GET /api/planning/runs (the stack, then the planning machine over a
        service binding: context-token verification and a D1 query).

  bench/apps/foundation-load.sh [--duration S] [--concurrency N]

runs it end to end; this file alone drives a server that is already up:

  foundation-load.py --url http://127.0.0.1:8787 --token JWT
"""
import argparse
import http.client
import json
import threading
import time
import urllib.parse


def percentile(sorted_ms, q):
    if not sorted_ms:
        return 0.0
    i = min(len(sorted_ms) - 1, max(0, int(round(q * len(sorted_ms) + 0.5)) - 1))
    return sorted_ms[i]


def run(url, token, duration, concurrency, path):
    parsed = urllib.parse.urlparse(url)
    latencies, failures = [], []
    lock = threading.Lock()
    deadline = time.monotonic() + duration

    def worker():
        conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)
        mine, bad = [], []
        while time.monotonic() < deadline:
            started = time.perf_counter()
            try:
                conn.request("GET", path, headers={"authorization": f"Bearer {token}", "origin": "https://app.example"})
                res = conn.getresponse()
                data = res.read()
                elapsed = (time.perf_counter() - started) * 1000
                if res.status == 200:
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

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - t0
    latencies.sort()
    return {"ok": len(latencies), "failed": len(failures), "first_failures": failures[:3], "seconds": wall, "latencies": latencies}


def merge(results):
    lat = sorted(x for r in results for x in r["latencies"])
    secs = sum(r["seconds"] for r in results)
    ok = sum(r["ok"] for r in results)
    return {
        "per_second": ok / secs if secs else 0.0,
        "ok": ok,
        "failed": sum(r["failed"] for r in results),
        "first_failures": [f for r in results for f in r["first_failures"]][:3],
        "p50": percentile(lat, 0.50),
        "p99": percentile(lat, 0.99),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--duration", type=float, default=20.0, help="seconds per path, split over two rounds")
    ap.add_argument("--concurrency", type=int, default=8)
    a = ap.parse_args()
    paths = {"me": "/api/me", "runs": "/api/planning/runs"}
    rounds = {k: [] for k in paths}
    for _ in range(2):
        for k, p in paths.items():
            rounds[k].append(run(a.url, a.token, a.duration / 2, a.concurrency, p))
    out = {k: merge(v) for k, v in rounds.items()}
    out["concurrency"] = a.concurrency
    out["duration"] = a.duration
    print(json.dumps(out))


if __name__ == "__main__":
    main()
