#!/bin/sh
# Copies shared/migrations/common.sql into the end of the first migration of
# every worker with a D1 database of the common shape (each D1 database needs
# its own copy of these tables). Run after editing common.sql; the app's
# test `crystal_clear_shared_migrations_match_their_source` fails on drift.
#
#   sh apps/crystal-clear/shared/sync-migrations.sh
set -eu
app=$(cd "$(dirname "$0")/.." && pwd)
marker='-- ==== shared/migrations/common.sql (copied by shared/sync-migrations.sh: edit that file, not this copy) ===='
for worker in adjustment collections coordinator distributions events free-play router; do
  for file in "$app/$worker"/migrations/0001_*.sql; do
    [ -f "$file" ] || { echo "no first migration in $worker/migrations" >&2; exit 1; }
    tmp="$file.tmp"
    # Keep everything before the marker, then the marker and the source.
    awk -v m="$marker" '$0 == m { exit } { print }' "$file" > "$tmp"
    printf '%s\n' "$marker" >> "$tmp"
    cat "$app/shared/migrations/common.sql" >> "$tmp"
    mv "$tmp" "$file"
  done
done
