#!/usr/bin/env bash
# Records the goldens from Miniflare and compares Hearth with them.
#   conformance/record.sh                 record every area, then compare
#   conformance/record.sh --hearth-only   compare with the committed goldens
#   conformance/record.sh --area kv       one area only
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"

# Pinned peers, cached in .peers/ (never committed); reinstalled when
# peers.json changes.
mkdir -p "$here/.peers"
if ! cmp -s "$here/peers.json" "$here/.peers/package.json" || [ ! -d "$here/.peers/node_modules/miniflare" ]; then
  cp "$here/peers.json" "$here/.peers/package.json"
  (cd "$here/.peers" && npm install --no-audit --no-fund --no-package-lock --loglevel=error)
fi

(cd "$repo" && cargo build --release -p hearth)
exec node "$here/record.mjs" "$@"
