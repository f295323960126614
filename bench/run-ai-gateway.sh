#!/usr/bin/env bash
# AI Gateway against calling the provider double directly and against
# LiteLLM's proxy (PyPI `litellm[proxy]`, installed here into a venv), in
# one run; writes bench/AI-GATEWAY-RESULTS.md.
#
#   bench/run-ai-gateway.sh [seconds] [rate]
#   HEARTH_BIN=target/release/hearth bench/run-ai-gateway.sh   # measure `hearth gateway` itself
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
secs="${1:-10}"
rate="${2:-2000}"
venv="${LITELLM_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/hearth-bench/litellm-venv}"
if [ ! -x "$venv/bin/litellm" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet 'litellm[proxy]'
fi
cd "$here/.."
args=(--seconds "$secs" --rate "$rate" --litellm "$venv/bin/litellm")
if [ -n "${HEARTH_BIN:-}" ]; then
  args+=(--hearth-bin "$HEARTH_BIN")
fi
cargo run --release -p hearth-bench -- ai-gateway "${args[@]}"
