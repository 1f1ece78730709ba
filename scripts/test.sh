#!/usr/bin/env bash
# Installs what the tests need (ffmpeg) and runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_cargo
ensure_ffmpeg
echo "==> ffmpeg: $(ffmpeg -version | head -n1)"
echo "==> cargo test"
cargo test --all-targets -- --test-threads="${REELAY_TEST_THREADS:-2}"
