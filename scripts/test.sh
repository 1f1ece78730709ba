#!/usr/bin/env bash
# Installs what the tests need (ffmpeg, Runware's Python SDK in a venv) and runs
# the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_cargo
ensure_ffmpeg
echo "==> ffmpeg: $(ffmpeg -version | head -n1)"
# Runware's own Python SDK against the simulator (before cargo test, so that
# cargo's summary stays the last word).
./scripts/sdk_check.sh
echo "==> cargo test"
cargo test --all-targets -- --test-threads="${REELAY_TEST_THREADS:-2}"
