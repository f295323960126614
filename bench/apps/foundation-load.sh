#!/usr/bin/env bash
# Authenticated gateway requests per second and p99 for apps/foundation on
# Hearth, through the full middleware stack:
#
#   bench/apps/foundation-load.sh [--duration S] [--concurrency N]
#
# Builds Hearth in release mode (HEARTH_BIN=FILE measures that binary
# instead; CARGO_TARGET_DIR is honoured), serves a temporary copy of the
# app's four workers after `npm ci` of the gateway, mints a JWT with the
# copy's secret, runs foundation-load.py and writes
# bench/apps/FOUNDATION-RESULTS.md. The gateway's rate limits are raised in
# the copy so that they do not cap the figures. Needs python3 and npm.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/lib.sh"

mkdir "$work/app"
tar -C "$root/apps/foundation" --exclude=node_modules --exclude=.svelte-kit --exclude=.hearth --exclude='.dev.vars*' -cf - . | tar -C "$work/app" -xf -
(cd "$work/app/gateway" && npm ci --no-audit --no-fund --prefer-offline --loglevel=error)
sed -i -E 's/limit = [0-9]+,/limit = 100000000,/' "$work/app/gateway/wrangler.toml"
port=$(free_port)
secret="bench-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
ctx="ctx-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
printf 'JWT_SECRET=%s\nCONTEXT_TOKEN_SECRET=%s\nALLOWED_ORIGINS=https://app.example\n' "$secret" "$ctx" >"$work/app/gateway/.dev.vars"
printf 'CONTEXT_TOKEN_SECRET=%s\nOPENAI_API_KEY=unused\n' "$ctx" >"$work/app/planning-machine/.dev.vars"
printf 'CONTEXT_TOKEN_SECRET=%s\n' "$ctx" >"$work/app/agents/.dev.vars"

"$HEARTH_BIN" d1 migrations apply foundation --config "$work/app/gateway/wrangler.toml" --data-dir "$work/data" >/dev/null
"$HEARTH_BIN" vectorize create foundation-artifacts --dimensions 1536 --metric cosine \
  --config "$work/app/planning-machine/wrangler.toml" --data-dir "$work/data" >/dev/null
(cd "$work/app" && exec "$HEARTH_BIN" serve gateway/wrangler.toml planning-machine/wrangler.toml agents/wrangler.toml queues/wrangler.toml \
  --data-dir "$work/data" --listen "127.0.0.1:$port") >"$work/server.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 150); do
  if python3 -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1])" "http://127.0.0.1:$port/health" 2>/dev/null; then break; fi
  sleep 0.2
done

token="$(python3 - "$secret" <<'PY'
import base64, hashlib, hmac, json, sys, time
b = lambda x: base64.urlsafe_b64encode(x).rstrip(b"=").decode()
now = int(time.time())
head = b(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
body = b(json.dumps({"sub": "usr_bench", "tid": "ten_bench", "role": "admin", "iat": now, "exp": now + 7200, "aud": "foundation-api"}).encode())
sig = b(hmac.new(sys.argv[1].encode(), f"{head}.{body}".encode(), hashlib.sha256).digest())
print(f"{head}.{body}.{sig}")
PY
)"

result="$(python3 "$here/foundation-load.py" --url "http://127.0.0.1:$port" --token "$token" "$@")"
echo "$result"

python3 - "$result" "$here/FOUNDATION-RESULTS.md" "$build" <<'PY'
import json, os, platform, sys
r = json.loads(sys.argv[1])
m, s = r["me"], r["runs"]
lines = [
    "# Foundation gateway load",
    "",
    f"`bench/apps/foundation-load.sh` ({sys.argv[3]}, apps/foundation's four workers in one",
    f"`hearth serve`, Python standard-library client with {r['concurrency']} keep-alive connections,",
    f"{r['duration']:.0f} s per path over two alternating rounds, on {os.cpu_count()} CPU(s),",
    f"{platform.machine()}, load average {os.getloadavg()[0]:.1f} when it finished: the machine",
    "was shared, so read the ratio, not the absolutes).",
    "",
    "| Path | per second | p50 ms | p99 ms | errors |",
    "|---|---|---|---|---|",
    f"| `GET /api/me` (middleware stack) | {m['per_second']:.1f} | {m['p50']:.1f} | {m['p99']:.1f} | {m['failed']} |",
    f"| `GET /api/planning/runs` (stack + service binding + D1) | {s['per_second']:.1f} | {s['p50']:.1f} | {s['p99']:.1f} | {s['failed']} |",
    "",
    "Every request passes CORS, the correlation id, three Rate Limiting checks",
    "(IP, tenant, user), HS256 verification, tenant isolation, the signing of a",
    "context token and an Analytics Engine data point.",
    "",
]
open(sys.argv[2], "w").write("\n".join(lines))
PY
echo "wrote $here/FOUNDATION-RESULTS.md"
