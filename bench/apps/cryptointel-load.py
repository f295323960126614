#!/usr/bin/env python3
"""Load for the CryptoIntel app (apps/cryptointel) served by Hearth.

Measures API requests per second and latency percentiles on two paths in
the same run, alternating rounds:

- cached:   GET /api/v1/market-data/bitcoin (latest price, a KV cache hit
            after the first request);
- uncached: GET /api/v1/market-data/bitcoin?interval=raw&from=..&to=.. with a
            different `to` on every request (a KV miss: a D1 range query and
            a KV write).

Every request carries a bearer key, so each one also pays for the key
lookup, the rate-limit checks and the usage row written after the response.

  bench/apps/cryptointel-load.sh [--duration S] [--concurrency N]

runs it end to end; this file alone drives a server that is already up:

  cryptointel-load.py --url http://127.0.0.1:8787 --key API_KEY
"""
import argparse
import http.client
import itertools
import json
import threading
import time
import urllib.parse


def percentile(sorted_ms, q):
    if not sorted_ms:
        return 0.0
    i = min(len(sorted_ms) - 1, max(0, int(round(q * len(sorted_ms) + 0.5)) - 1))
    return sorted_ms[i]


def run(url, key, duration, concurrency, make_path, want_cache):
    parsed = urllib.parse.urlparse(url)
    latencies, failures, cache = [], [], {"HIT": 0, "MISS": 0}
    lock = threading.Lock()
    deadline = time.monotonic() + duration
    counter = [0]

    def worker(n):
        conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)
        mine, bad, seen = [], [], {"HIT": 0, "MISS": 0}
        while time.monotonic() < deadline:
            with lock:
                counter[0] += 1
                i = counter[0]
            started = time.perf_counter()
            try:
                conn.request("GET", make_path(i), headers={"authorization": f"Bearer {key}"})
                res = conn.getresponse()
                data = res.read()
                elapsed = (time.perf_counter() - started) * 1000
                if res.status == 200:
                    mine.append(elapsed)
                    x = res.getheader("x-cache")
                    if x in seen:
                        seen[x] += 1
                else:
                    bad.append(f"{res.status} {data[:200]!r}")
            except (OSError, http.client.HTTPException) as err:
                bad.append(str(err))
                conn.close()
                conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)
        with lock:
            latencies.extend(mine)
            failures.extend(bad)
            for k, v in seen.items():
                cache[k] += v

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(concurrency)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - t0
    latencies.sort()
    return {
        "ok": len(latencies),
        "failed": len(failures),
        "first_failures": failures[:3],
        "seconds": wall,
        "latencies": latencies,
        "cache": cache,
        "want": want_cache,
    }


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
        "hits": sum(r["cache"]["HIT"] for r in results),
        "misses": sum(r["cache"]["MISS"] for r in results),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--duration", type=float, default=20.0, help="seconds per path, split over two rounds")
    ap.add_argument("--concurrency", type=int, default=8)
    a = ap.parse_args()

    now = int(time.time())
    cached = lambda i: "/api/v1/market-data/bitcoin"
    # A distinct `to` per request, across rounds: never the same cache key twice.
    fresh = itertools.count(1)
    uncached = lambda i: f"/api/v1/market-data/bitcoin?interval=raw&from={now - 86400}&to={now + 3600 + next(fresh)}"
    rounds = {"cached": [], "uncached": []}
    for _ in range(2):
        rounds["cached"].append(run(a.url, a.key, a.duration / 2, a.concurrency, cached, "HIT"))
        rounds["uncached"].append(run(a.url, a.key, a.duration / 2, a.concurrency, uncached, "MISS"))
    out = {k: merge(v) for k, v in rounds.items()}
    out["concurrency"] = a.concurrency
    out["duration"] = a.duration
    print(json.dumps(out))


if __name__ == "__main__":
    main()
