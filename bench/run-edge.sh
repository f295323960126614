#!/usr/bin/env bash
# The edge's cost on hello world: the same release binary serving
# bench/workers/hello with `--edge bench/edge/hearth.toml` (custom rules,
# a rate-limiting rule, managed rules at paranoia level 1) and without,
# in interleaved rounds, under the same wrk load with a browser's request
# head (bench/edge/browser.lua).
#
#   HEARTH_BIN=target/release/hearth bench/run-edge.sh [rounds] [seconds]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bin="${HEARTH_BIN:-$here/../target/release/hearth}"
rounds="${1:-3}"
secs="${2:-10}"
port=18787
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp -r "$here/workers/hello" "$work/hello"

run() {
  local label="$1"; shift
  "$bin" serve "$work/hello/wrangler.toml" --data-dir "$work/data-$label" -l "127.0.0.1:$port" "$@" >"$work/$label.log" 2>&1 &
  local pid=$!
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$port/" >/dev/null 2>&1 && break
    sleep 0.1
  done
  wrk --threads=2 --connections=16 --duration=3s -s "$here/edge/browser.lua" "http://127.0.0.1:$port/" >/dev/null
  wrk --threads=2 --connections=16 --duration="${secs}s" --latency -s "$here/edge/browser.lua" "http://127.0.0.1:$port/" >"$work/wrk.txt"
  kill "$pid"; wait "$pid" 2>/dev/null || true
  local rps p99 non2xx
  rps="$(awk '/Requests\/sec/ {print $2}' "$work/wrk.txt")"
  p99="$(awk '$1 == "99%" {print $2}' "$work/wrk.txt")"
  non2xx="$(awk '/Non-2xx/ {print $5}' "$work/wrk.txt")"
  echo "$label $rps $p99 ${non2xx:-0}"
}

for i in $(seq "$rounds"); do
  run off
  run on --edge "$here/edge/hearth.toml"
done
