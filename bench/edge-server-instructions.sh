#!/usr/bin/env bash
# Instructions the whole server spends per hello-world request, edge off
# and on (bench/edge/hearth.toml), counted by callgrind over every thread:
# after WARM requests the counters are zeroed, N requests with the browser
# head (bench/edge/requests.py, one keep-alive connection) are sent, and
# the counters are dumped. Prints the per-request figure for each and
# leaves the dumps for callgrind_annotate in OUT (default: a temp dir,
# removed).
#
#   HEARTH_BIN=target/release/hearth N=2000 bench/edge-server-instructions.sh [OUT]
#
# Needs valgrind and python3.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bin="${HEARTH_BIN:-$here/../target/release/hearth}"
N="${N:-2000}"
WARM="${WARM:-300}"
port=18797
work="$(mktemp -d)"
out="${1:-}"
trap 'rm -rf "$work"' EXIT
cp -r "$here/workers/hello" "$work/hello"

count() {
  local label="$1"; shift
  valgrind --tool=callgrind --callgrind-out-file="$work/cg.$label" \
    "$bin" serve "$work/hello/wrangler.toml" --data-dir "$work/data-$label" \
    -l "127.0.0.1:$port" "$@" >"$work/$label.log" 2>&1 &
  local pid=$!
  for _ in $(seq 600); do
    curl -sf "http://127.0.0.1:$port/" >/dev/null 2>&1 && break
    sleep 0.5
  done
  python3 "$here/edge/requests.py" "$port" "$WARM"
  callgrind_control -z "$pid" >/dev/null
  python3 "$here/edge/requests.py" "$port" "$N"
  callgrind_control -d "$pid" >/dev/null
  kill "$pid"; wait "$pid" 2>/dev/null || true
  local dump
  dump="$(ls "$work/cg.$label".* | grep -v '\.log$' | sort -t. -k3 -n | head -1)"
  local total
  total="$(awk '/^(summary|totals):/ { print $2; exit }' "$dump")"
  echo "$label $(( total / N ))"
  if [ -n "$out" ]; then mkdir -p "$out"; cp "$dump" "$out/cg.$label"; fi
}

printf 'edge instructions/request\n'
count off
count on --edge "$here/edge/hearth.toml"
