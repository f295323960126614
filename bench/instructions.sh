#!/usr/bin/env bash
# Instructions per request, counted by callgrind (repeatable on a busy
# machine, unlike req/s). For each binary given, each scenario runs twice
# (FEW and MANY keep-alive requests); the difference divided by MANY-FEW
# is the work per request, start-up and shutdown cancelled out.
#
#   bench/instructions.sh target/release/hearth [/path/to/older/hearth ...]
#   ONLY=json-echo bench/instructions.sh ...   (one scenario: hello, do-counter,
#   json-echo, hello-async, hello-limited; the last two give the cost of one
#   rate-limit check)
#
# Needs valgrind and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
FEW=${FEW:-20}
MANY=${MANY:-220}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

python3 - "$work/body.json" <<'PY'
import sys
parts, size, i = [], 0, 0
while size < 10 * 1024 - 80:  # the same document as bench/wrk/json-echo.lua
    item = '{"id":%d,"name":"item-%d","tags":["bench","json"],"price":%d}' % (i, i, (i * 37) % 1000)
    parts.append(item); size += len(item) + 1; i += 1
open(sys.argv[1], "w").write('{"items":[' + ",".join(parts) + "]}")
PY

cat > "$work/client.py" <<'PY'
import http.client, sys
port, method, path, n = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
body = open(sys.argv[5], "rb").read() if len(sys.argv) > 5 else None
conn = http.client.HTTPConnection("127.0.0.1", port)
for _ in range(n):
    conn.request(method, path, body=body)
    reply = conn.getresponse(); reply.read()
    if reply.status != 200:
        sys.exit(f"{method} {path}: status {reply.status}")
PY

# count BIN WORKER METHOD PATH N [BODY] -> total instructions of the run
count() {
    local bin=$1 worker=$2 method=$3 path=$4 n=$5 body=${6:-}
    local port=$((20000 + RANDOM % 20000)) data out
    data=$(mktemp -d -p "$work"); out="$data/callgrind.out"
    valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" serve \
        "bench/workers/$worker/wrangler.toml" --data-dir "$data/state" \
        --listen "127.0.0.1:$port" >/dev/null 2>"$data/log" &
    local pid=$!
    for _ in $(seq 1 600); do
        curl -s -o /dev/null "http://127.0.0.1:$port/" && break
        sleep 0.5
    done
    python3 "$work/client.py" "$port" "$method" "$path" "$n" $body
    kill -INT "$pid"; wait "$pid" || true
    awk '/^(summary|totals):/ { print $2; exit }' "$out"
}

printf '| Binary | Scenario | Instructions per request |\n|---|---|---:|\n'
for bin in "$@"; do
    for scenario in "hello GET /" "do-counter GET /c/0" "json-echo POST / $work/body.json" \
        "hello-async GET /" "hello-limited GET /"; do
        read -r worker method path body <<<"$scenario"
        if [ -n "${ONLY:-}" ] && [ "$worker" != "$ONLY" ]; then continue; fi
        few=$(count "$bin" "$worker" "$method" "$path" "$FEW" $body)
        many=$(count "$bin" "$worker" "$method" "$path" "$MANY" $body)
        printf '| %s | %s | %d |\n' "$bin" "$worker" $(((many - few) / (MANY - FEW)))
    done
done
