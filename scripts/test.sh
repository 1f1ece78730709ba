#!/usr/bin/env bash
# Installs what the tests need (ffmpeg, a static ffmpeg with libvmaf for the
# VMAF tests, Chromium and playwright-core, the VAST
# parser @dailymotion/vast-client, Runware's
# Python SDK in a venv), checks formatting and lints, and runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_cargo
ensure_lint_tools
# Formatting and lints first, so they fail before ffmpeg and the SDK venv are set up.
echo "==> cargo fmt --check"
cargo fmt --check
echo "==> cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings
ensure_ffmpeg
# The VMAF tests run on an ffmpeg with libvmaf (the pinned static build when
# the system's has none), and fail rather than skip without it.
ensure_vmaf_ffmpeg
export REELAY_REQUIRE_VMAF=1
ensure_openssl
# The independent OpenAPI 3.1 validator of tests/api/openapi.rs.
ensure_openapi_validator
echo "==> ffmpeg: $(ffmpeg -version | head -n1)"
echo "==> ffmpeg for VMAF: $("$REELAY_VMAF_FFMPEG" -version | head -n1) ($REELAY_VMAF_FFMPEG)"
# Headless Chromium and playwright-core for tests/browser.rs.
ensure_chromium
ensure_browser_deps
# The VAST parser players use, for tests/api/vast_parser.rs.
ensure_vast_parser
echo "==> $(/usr/bin/chromium --version 2>/dev/null | head -n1)"
# Runware's own Python SDK against the simulator (before cargo test, so that
# cargo's summary stays the last word).
./scripts/sdk_check.sh
# A throwaway Postgres for the store tests that run on both backends
# (stopped and removed on exit).
ensure_postgres
start_throwaway_postgres
echo "==> cargo test"
cargo test --all-targets -- --test-threads="${REELAY_TEST_THREADS:-2}"
# The API tests again with the job store on Postgres (a schema per test in
# the throwaway cluster above).
echo "==> cargo test --test api (job store on Postgres)"
REELAY_TEST_DB=postgres cargo test --test api -- --test-threads="${REELAY_TEST_THREADS:-2}"
