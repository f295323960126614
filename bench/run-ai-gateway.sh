#!/usr/bin/env bash
# AI Gateway against calling the provider double directly and against
# LiteLLM's proxy (PyPI `litellm[proxy]`, installed here into a venv), in
# one run; writes bench/AI-GATEWAY-RESULTS.md.
#
#   bench/run-ai-gateway.sh [seconds] [rate]
#   bench/run-ai-gateway.sh --soak 600   # RSS of `hearth gateway` over 10 minutes (bench/AI-GATEWAY-SOAK.md)
#
# Hearth's rows are `hearth gateway` (the `hearth` binary built beside
# hearth-bench).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
target="${CARGO_TARGET_DIR:-target}"
cd "$here/.."
cargo build --release -p hearth -p hearth-bench
if [ "${1:-}" = "--soak" ]; then
  exec "$target/release/hearth-bench" ai-gateway --soak "${2:-600}" --rate "${3:-2000}"
fi
secs="${1:-10}"
rate="${2:-2000}"
venv="${LITELLM_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/hearth-bench/litellm-venv}"
if [ ! -x "$venv/bin/litellm" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet 'litellm[proxy]'
fi
"$target/release/hearth-bench" ai-gateway --seconds "$secs" --rate "$rate" --litellm "$venv/bin/litellm"
