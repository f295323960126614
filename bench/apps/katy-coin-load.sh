#!/usr/bin/env bash
# Wallet transfers per second with p50/p99, and complete trades per second
# end to end (session, TradeWorkflow, escrow, confirmation, settlement), for
# apps/katy-coin on Hearth:
#
#   bench/apps/katy-coin-load.sh [--duration S] [--concurrency N]
#
# Builds Hearth in release mode (HEARTH_BIN=FILE measures that binary
# instead; CARGO_TARGET_DIR is honoured), serves a temporary copy of the app
# with its rate limits raised, runs katy-coin-load.py and writes
# bench/apps/KATY-COIN-RESULTS.md. Needs python3 (standard library only)
# and npm (the app's locked dependencies are installed with npm ci).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/lib.sh"

cp -r "$root/apps/katy-coin" "$work/app"
rm -rf "$work/app/.hearth" "$work/app/.dev.vars" "$work/app/node_modules"
(cd "$work/app" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
sed -i -E 's/limit = [0-9]+,/limit = 100000000,/' "$work/app/wrangler.toml"
secret="bench-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
printf 'JWT_SECRET=%s\nADMIN_USERS=admin\nTURNSTILE_VERIFY_URL=\n' "$secret" > "$work/app/.dev.vars"
port=$(free_port)

"$HEARTH_BIN" d1 migrations apply katy-coin --config "$work/app/wrangler.toml" --data-dir "$work/data" >/dev/null
(cd "$work/app" && exec "$HEARTH_BIN" serve wrangler.toml --data-dir "$work/data" --listen "127.0.0.1:$port") \
  >"$work/server.log" 2>&1 &
pids+=($!)
wait_up "http://127.0.0.1:$port/health"

result="$(python3 "$here/katy-coin-load.py" --url "http://127.0.0.1:$port" --secret "$secret" "$@")"
echo "$result"

python3 - "$result" "$here/KATY-COIN-RESULTS.md" "$build" <<'PY'
import json, os, platform, sys
r = json.loads(sys.argv[1])
t, d = r["transfers"], r["trades"]
lines = [
    "# Katy Coin load",
    "",
    f"`bench/apps/katy-coin-load.sh` ({sys.argv[3]}, apps/katy-coin in one",
    f"`hearth serve`, Python standard-library clients with {r['concurrency']} keep-alive",
    f"connections, {r['duration']:.0f} s per phase, on {os.cpu_count()} CPU(s), {platform.machine()},",
    f"load average {os.getloadavg()[0]:.1f} when it finished: the machine was shared, so read",
    "the shape, not the absolutes).",
    "",
    "| Phase | completed | per second | p50 ms | p99 ms | notes |",
    "|---|---|---|---|---|---|",
    f"| wallet transfers among 20 wallets | {t['count']} | {t['per_second']:.1f} | {t['p50']:.1f} | {t['p99']:.1f} | {t['failed']} refused; total conserved: {t['conserved']} |",
    f"| trades end to end ({min(r['concurrency'], 10)} pairs) | {d['count']} | {d['per_second']:.2f} | {d['p50']:.0f} | {d['p99']:.0f} | ledger entries {r['ledger']['entries']}, verifies: {r['ledger']['ok']} |",
    "",
    "A transfer is a JWT check, two rate-limit checks, a D1 lookup of the",
    "recipient, the debit with its outbox row in the sender's Durable Object and",
    "the credit in the recipient's. A trade is eleven HTTP calls plus the",
    "status polls, one TradeWorkflow run of nine steps (two holds, two",
    "captures and credits, D1 writes) and the queued ledger append.",
    "",
]
open(sys.argv[2], "w").write("\n".join(lines))
PY
echo "wrote $here/KATY-COIN-RESULTS.md"
