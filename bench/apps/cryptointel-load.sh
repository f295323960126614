#!/usr/bin/env bash
# API requests per second and p99 for apps/cryptointel on Hearth, on the
# KV-cached path and the uncached path (D1 query + KV write) in the same run:
#
#   bench/apps/cryptointel-load.sh [--duration S] [--concurrency N]
#
# Builds Hearth in release mode (HEARTH_BIN=FILE measures that binary
# instead; CARGO_TARGET_DIR is honoured), serves a temporary copy of the app
# and its fixture market server, collects a few times, runs
# cryptointel-load.py and writes bench/apps/CRYPTOINTEL-RESULTS.md. The app's
# rate limits are raised in the copy so that they do not cap the figures.
# Needs python3 (standard library only).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/lib.sh"

cp -r "$root/apps/cryptointel" "$work/app"
sed -i -E 's/limit = [0-9]+,/limit = 100000000,/' "$work/app/app/wrangler.toml" "$work/app/api/wrangler.toml"
fixture_port=$(free_port)
port=$(free_port)
token="bench-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
key="ci_bench_$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
hash="$(printf %s "$key" | sha256sum | cut -d' ' -f1)"
sed -i "s/127.0.0.1:8788/127.0.0.1:$fixture_port/g" "$work/app/collector/wrangler.toml"

"$HEARTH_BIN" d1 migrations apply cryptointel --config "$work/app/app/wrangler.toml" --data-dir "$work/data" >/dev/null
"$HEARTH_BIN" d1 execute cryptointel --config "$work/app/app/wrangler.toml" --data-dir "$work/data" --command \
  "INSERT INTO users (id, email, role, created_at) VALUES ('usr_bench', 'bench@example.com', 'pro', '2026-01-01T00:00:00Z');
   INSERT INTO api_keys (id, user_id, key_hash, prefix, created_at) VALUES ('key_bench', 'usr_bench', '$hash', 'ci_bench', '2026-01-01T00:00:00Z');" >/dev/null

"$HEARTH_BIN" serve "$work/app/fixture-market/wrangler.toml" --data-dir "$work/fixture" --listen "127.0.0.1:$fixture_port" \
  >"$work/fixture.log" 2>&1 &
pids+=($!)
(cd "$work/app" && exec "$HEARTH_BIN" serve app/wrangler.toml api/wrangler.toml collector/wrangler.toml --data-dir "$work/data" --listen "127.0.0.1:$port" --internal-token "$token") \
  >"$work/server.log" 2>&1 &
pids+=($!)
wait_up "http://127.0.0.1:$fixture_port/__fixture"
wait_up "http://127.0.0.1:$port/health"
for _ in $(seq 1 12); do
  curl -sf -H "Authorization: Bearer $token" "http://127.0.0.1:$port/__hearth/scheduled?worker=cryptointel-collector&cron=*/15%20*%20*%20*%20*" >/dev/null
done

result="$(python3 "$here/cryptointel-load.py" --url "http://127.0.0.1:$port" --key "$key" "$@")"
echo "$result"

python3 - "$result" "$here/CRYPTOINTEL-RESULTS.md" "$build" <<'PY'
import json, os, platform, sys
r = json.loads(sys.argv[1])
c, u = r["cached"], r["uncached"]
lines = [
    "# CryptoIntel API load",
    "",
    f"`bench/apps/cryptointel-load.sh` ({sys.argv[3]}, apps/cryptointel in one",
    "`hearth serve` with its fixture market server, 12 collections stored first,",
    f"Python standard-library client with {r['concurrency']} keep-alive connections,",
    f"{r['duration']:.0f} s per path over two alternating rounds, on {os.cpu_count()} CPU(s),",
    f"{platform.machine()}, load average {os.getloadavg()[0]:.1f} when it finished: the machine",
    "was shared, so read the ratio, not the absolutes).",
    "",
    "| Path | per second | p50 ms | p99 ms | errors | KV hits / misses |",
    "|---|---|---|---|---|---|",
    f"| cached: `GET /api/v1/market-data/bitcoin` | {c['per_second']:.1f} | {c['p50']:.1f} | {c['p99']:.1f} | {c['failed']} | {c['hits']} / {c['misses']} |",
    f"| uncached: `GET /api/v1/market-data/bitcoin?interval=raw&from=..&to=..` | {u['per_second']:.1f} | {u['p50']:.1f} | {u['p99']:.1f} | {u['failed']} | {u['hits']} / {u['misses']} |",
    "",
    f"The cached path serves {c['per_second'] / u['per_second']:.2f}x the requests of the uncached one. Both",
    "pay for the key lookup in D1, four rate-limit checks and the usage row written",
    "after the response; the uncached path adds the D1 range query and a KV write.",
    "",
]
open(sys.argv[2], "w").write("\n".join(lines))
PY
echo "wrote $here/CRYPTOINTEL-RESULTS.md"
