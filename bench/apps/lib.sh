# Shared by the seed apps' load scripts (sourced after each sets `here`):
# the Hearth binary to measure, a work directory removed on exit with the
# servers started into `pids`, and two helpers.
#
# HEARTH_BIN=FILE measures that binary; otherwise Hearth is built in
# release mode (CARGO_TARGET_DIR is honoured). `build` names what was
# measured, for the results file.

root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
case "$target" in /*) ;; *) target="$root/$target" ;; esac

build="release build of Hearth"
if [ -z "${HEARTH_BIN:-}" ]; then
  (cd "$root" && cargo build --release -p hearth)
  HEARTH_BIN="$target/release/hearth"
else
  case "$HEARTH_BIN" in */debug/*) build="debug (unoptimized) build of Hearth" ;; *) build="Hearth from HEARTH_BIN" ;; esac
  # Absolute, since the scripts serve from inside their work directory.
  HEARTH_BIN="$(cd "$(dirname "$HEARTH_BIN")" && pwd)/$(basename "$HEARTH_BIN")"
fi

work="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Waits up to 30 s for a URL to answer; on failure shows the servers' logs.
wait_up() {
  for _ in $(seq 1 150); do
    if python3 -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1])" "$1" 2>/dev/null; then return 0; fi
    sleep 0.2
  done
  echo "server at $1 did not come up; the last lines of its logs:" >&2
  tail -n 20 "$work"/*.log >&2 2>/dev/null || true
  exit 1
}
