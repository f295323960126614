#!/usr/bin/env bash
# Latency of apps/coinswarm on Hearth, path by path, next to the seed's
# stated figures (shared/seeds/001: "Performance Benchmarks", "Request
# Routing"): cached market data, accounts, recent trades, similar patterns
# (1,000 stored), cached and uncached predictions and committee votes
# through an ML agent double that answers after AGENT_MS (default 50 ms):
#
#   bench/apps/coinswarm-load.sh [--duration S] [--concurrency N]
#
# Builds Hearth in release mode (HEARTH_BIN=FILE measures that binary
# instead; CARGO_TARGET_DIR is honoured), serves a temporary copy of the
# app against the doubles of coinswarm-load.py, and writes
# bench/apps/COINSWARM-RESULTS.md. Needs python3 (standard library only).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/lib.sh"
agent_ms="${AGENT_MS:-50}"

cp -r "$root/apps/coinswarm" "$work/app"
market_port=$(free_port)
agent_port=$(free_port)
port=$(free_port)
token="bench-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
cfg="$work/app/app/wrangler.toml"
cat >"$work/app/app/.dev.vars" <<VARS
API_TOKEN=$token
ANALYTICS_API_TOKEN=$token
ANALYTICS_API_BASE=http://127.0.0.1:$port
MARKET_URL=http://127.0.0.1:$market_port
ML_AGENT_URL=http://127.0.0.1:$agent_port
COMMITTEE_AGENTS=http://127.0.0.1:$agent_port,http://127.0.0.1:$agent_port,http://127.0.0.1:$agent_port
VARS

"$HEARTH_BIN" d1 migrations apply coinswarm --config "$cfg" --data-dir "$work/data" >/dev/null
"$HEARTH_BIN" vectorize create coinswarm-patterns --dimensions 16 --metric cosine --config "$cfg" --data-dir "$work/data" >/dev/null
for p in symbol regime outcome; do
  "$HEARTH_BIN" vectorize create-metadata-index coinswarm-patterns --property-name "$p" --type string --config "$cfg" --data-dir "$work/data" >/dev/null
done

python3 "$here/coinswarm-load.py" doubles --market-port "$market_port" --agent-port "$agent_port" --agent-ms "$agent_ms" &
pids+=($!)
(cd "$work/app" && exec "$HEARTH_BIN" serve app/wrangler.toml --data-dir "$work/data" --listen "127.0.0.1:$port") \
  >"$work/server.log" 2>&1 &
pids+=($!)
wait_up "http://127.0.0.1:$port/health"

result="$(python3 "$here/coinswarm-load.py" load --url "http://127.0.0.1:$port" --token "$token" --market-url "http://127.0.0.1:$market_port" "$@")"
echo "$result"

python3 - "$result" "$here/COINSWARM-RESULTS.md" "$build" "$agent_ms" <<'PY'
import json, os, platform, sys
r = json.loads(sys.argv[1])
lines = [
    "# Coinswarm latency by path",
    "",
    f"`bench/apps/coinswarm-load.sh` ({sys.argv[3]}, apps/coinswarm in one `hearth serve`,",
    f"Python standard-library client with {r['concurrency']} keep-alive connections, {r['duration']:.0f} s per path,",
    f"ML agent double answering after {sys.argv[4]} ms, on {os.cpu_count()} CPU(s), {platform.machine()},",
    f"load average {os.getloadavg()[0]:.1f} when it finished). Latencies are measured at the client on",
    "the same machine, so they hold no network distance; the seed's figures are edge",
    "latencies as a user would see them. Compare orders of magnitude, not digits.",
    "",
    "| Path | per second | p50 ms | p99 ms | errors | seed's figure (ms) |",
    "|---|---|---|---|---|---|",
]
names = {
    "market_data": "`GET /api/market-data/BTC-USD` (Cache API)",
    "accounts": "`GET /api/accounts` (D1)",
    "recent_trades": "`GET /api/trades?symbol=BTC-USD&limit=100` (D1, 200 trades)",
    "similar_patterns": "`POST /api/patterns/similar` top 10, symbol filter (Vectorize, 1,000 patterns)",
    "predict_cached": "`POST /api/predict` cached",
    "predict_agent": "`POST /api/predict` `max_age_ms: 0` (agent call)",
    "committee": "`POST /api/committee` (3 agents)",
}
for k, v in r["paths"].items():
    lines.append(f"| {names[k]} | {v['per_second']:.1f} | {v['p50']:.1f} | {v['p99']:.1f} | {v['failed']} | {v['seed_ms']} |")
m = r["paths"]["market_data"]
lines += [
    "",
    f"During the {r['duration']:.0f} s of market-data load ({m['ok']} answers) the market upstream was",
    f"called {m['upstream_calls']} times: the sub-second cache (Cache API in front of one",
    "MarketFeed Durable Object per pair, MARKET_CACHE_MS = 1000) asks it about once a second.",
    "",
]
open(sys.argv[2], "w").write("\n".join(lines))
PY
echo "wrote $here/COINSWARM-RESULTS.md"
