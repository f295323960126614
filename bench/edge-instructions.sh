#!/usr/bin/env bash
# Instructions the edge spends on one request, counted by callgrind
# (repeatable on a busy machine, unlike req/s): the edge_cost example runs
# the checks of bench/edge/hearth.toml on one request shape FEW and MANY
# times; the difference divided by MANY-FEW is the work per request, with
# start-up (loading the zone, compiling the rules) cancelled out.
#
#   bench/edge-instructions.sh [zone.toml]
#
# Needs valgrind. Builds the example in release mode first.
set -euo pipefail
cd "$(dirname "$0")/.."
zone="${1:-bench/edge/hearth.toml}"
FEW=${FEW:-50}
MANY=${MANY:-1050}
cargo build --release -q -p hearth-edge --example edge_cost
bin="${CARGO_TARGET_DIR:-target}/release/examples/edge_cost"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

count() {
    local out="$work/callgrind.$1.$2"
    valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" "$zone" "$1" "$2" >/dev/null 2>&1
    awk '/^(summary|totals):/ { print $2; exit }' "$out"
}

printf '| Scenario | Instructions per request |\n|---|---:|\n'
for scenario in browser json attack; do
    few=$(count "$scenario" "$FEW")
    many=$(count "$scenario" "$MANY")
    printf '| %s | %s |\n' "$scenario" "$(( (many - few) / (MANY - FEW) ))"
done
