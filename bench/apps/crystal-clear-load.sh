#!/usr/bin/env bash
# Coordinated PLAYER_WINNINGS per second and p99 for apps/crystal-clear on
# Hearth, against single balance credits through the same router measured in
# the same run:
#
#   bench/apps/crystal-clear-load.sh [--duration S] [--concurrency N]
#
# Builds Hearth in release mode (HEARTH_BIN=FILE measures that binary
# instead; CARGO_TARGET_DIR is honoured), serves a temporary copy of the app
# with its migrations applied, runs crystal-clear-load.py and writes
# bench/apps/CRYSTAL-CLEAR-RESULTS.md. Needs python3 (standard library only).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
case "$target" in /*) ;; *) target="$root/$target" ;; esac

if [ -z "${HEARTH_BIN:-}" ]; then
  (cd "$root" && cargo build --release -p hearth)
  HEARTH_BIN="$target/release/hearth"
fi

work="$(mktemp -d)"
server=""
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

cp -r "$root/apps/crystal-clear" "$work/app"
secret="bench-secret-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
printf 'JWT_SECRET=%s\n' "$secret" > "$work/app/router/.dev.vars"
# The load is one service subject: lift its Rate Limiting budget in the copy.
sed -i 's/simple = { limit = 12000, period = 60 }/simple = { limit = 100000000, period = 60 }/' "$work/app/router/wrangler.toml"
grep -q 'limit = 100000000' "$work/app/router/wrangler.toml" || { echo "could not lift the service rate limit" >&2; exit 1; }
for cfg in "$work"/app/*/wrangler.toml; do
  name="$(basename "$(dirname "$cfg")")"
  db="crystal-clear-$name"
  [ "$name" = router ] && db=crystal-clear-monitoring
  "$HEARTH_BIN" d1 migrations apply "$db" --config "$cfg" --data-dir "$work/data" >/dev/null
done

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
(cd "$work/app" && exec "$HEARTH_BIN" serve ./*/wrangler.toml --data-dir "$work/data" --listen "127.0.0.1:$port") \
  >"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 1 100); do
  if python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/api/domains/balance/health')" 2>/dev/null; then break; fi
  sleep 0.2
done

result="$(python3 "$here/crystal-clear-load.py" --url "http://127.0.0.1:$port" --secret "$secret" "$@")"
echo "$result"

python3 - "$result" "$here/CRYSTAL-CLEAR-RESULTS.md" <<'PY'
import json, os, platform, sys
r = json.loads(sys.argv[1])
c, s = r["credit"], r["saga"]
cpus = os.cpu_count()
load = os.getloadavg()[0]
lines = [
    "# Crystal Clear load",
    "",
    "`bench/apps/crystal-clear-load.sh` (release build of Hearth, the eight workers",
    "of apps/crystal-clear in one `hearth serve`, Python standard-library client with",
    f"{r['concurrency']} keep-alive connections, {r['duration']:.0f} s per kind over two",
    f"alternating rounds, on {cpus} CPU(s), {platform.machine()}, load average {load:.1f}",
    "when it finished: the machine was shared, so read the ratio, not the absolutes).",
    "",
    "| Request | per second | p50 ms | p99 ms | errors |",
    "|---|---|---|---|---|",
    f"| single balance credit (peer) | {c['per_second']:.1f} | {c['p50']:.1f} | {c['p99']:.1f} | {c['failed']} |",
    f"| PLAYER_WINNINGS saga | {s['per_second']:.1f} | {s['p50']:.1f} | {s['p99']:.1f} | {s['failed']} |",
    "",
    f"A saga costs {c['per_second'] / s['per_second']:.1f}x a single credit: three domain calls, each with its",
    "idempotency record, audit row and outbox event, plus the saga's own state written",
    "(and synced) before each step.",
    "",
]
open(sys.argv[2], "w").write("\n".join(lines))
PY
echo "wrote $here/CRYSTAL-CLEAR-RESULTS.md"
