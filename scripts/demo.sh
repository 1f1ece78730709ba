#!/usr/bin/env bash
# One command on a fresh machine: installs ffmpeg if missing, builds reelay,
# and runs `reelay demo` (embedded object store, Runware simulator, SQLite),
# which requests one 4K asset and follows it to published CDN files.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_cargo
ensure_ffmpeg
# The dev profile builds in about half the time of a release build on two
# cores; ffmpeg does the heavy lifting, and dependencies are optimised anyway.
echo "==> building reelay (first build takes a few minutes)"
if ! cargo build --locked --bin reelay 2>&1 | grep -E "^error|Finished"; then :; fi
test -x target/debug/reelay || { echo "error: build failed; run 'cargo build' to see why" >&2; exit 1; }
export REELAY__DATA__DIR="${REELAY__DATA__DIR:-./data/demo}"
# Ports 0: the demo never fails because 8080 or 9000 is taken.
export REELAY__SERVER__PORT="${REELAY__SERVER__PORT:-0}"
export REELAY__STORAGE__EMBEDDED_PORT="${REELAY__STORAGE__EMBEDDED_PORT:-0}"
exec target/debug/reelay demo "$@"
