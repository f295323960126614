#!/usr/bin/env bash
# The Vectorize benchmark with its peer: installs hnswlib and numpy from
# PyPI into a venv under target/, builds the release binaries, and runs
#
#   cargo run --release -p hearth-bench -- vectorize --peer-python <venv>/bin/python
#
# which writes bench/VECTORIZE-RESULTS.md. Extra arguments go to the
# benchmark (e.g. --seconds 5).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$here/.."
target="${CARGO_TARGET_DIR:-$root/target}"
venv="$target/vectorize-peer-venv"
if ! "$venv/bin/python" -c 'import hnswlib, numpy' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet hnswlib numpy
fi
cd "$root"
cargo build --release -p hearth -p hearth-bench
HEARTH_BIN="$target/release/hearth" \
  "$target/release/hearth-bench" vectorize --peer-python "$venv/bin/python" "$@"
