#!/usr/bin/env bash
# fsyncs per request of the one-object Durable Object counter
# (bench/workers/do-counter, every request a storage get + put committed
# before its answer), counted by strace over the server's whole life:
#
#   bench/do-fsyncs.sh HEARTH_BIN [connections] [seconds]
#
# Prints wrk's figures (slowed by strace: read the count, not the rate), the
# fsync and fdatasync calls, and their number per answered request. Start-up
# and shutdown syncs are included, so the figure is an upper bound.
set -euo pipefail

bin="${1:?usage: bench/do-fsyncs.sh HEARTH_BIN [connections] [seconds]}"
conns="${2:-16}"
secs="${3:-5}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"

strace -f -qq -c -e trace=fsync,fdatasync -o "$dir/strace.txt" \
  "$bin" serve "$here/workers/do-counter/wrangler.toml" \
  --listen "127.0.0.1:$port" --data-dir "$dir/data" >"$dir/server.log" 2>&1 &
tracer=$!
for _ in $(seq 1 300); do
  curl -fs "http://127.0.0.1:$port/c/0" >/dev/null 2>&1 && break
  sleep 0.1
done
server="$(cat "/proc/$tracer/task/$tracer/children" | awk '{print $1}')"

wrk --threads=2 --connections="$conns" --duration="${secs}s" "http://127.0.0.1:$port/c/0" | tee "$dir/wrk.txt"
final="$(curl -fs "http://127.0.0.1:$port/c/0")"
kill -TERM "$server"
wait "$tracer" || true

syncs="$(awk '$NF == "fsync" || $NF == "fdatasync" { n += $4 } END { print n + 0 }' "$dir/strace.txt")"
echo "increments committed: $final (wrk's answers plus the first and last request)"
echo "fsync + fdatasync calls over the server's life: $syncs"
awk -v s="$syncs" -v r="$final" 'BEGIN { printf "fsyncs per increment: %.3f\n", s / r }'
