#!/usr/bin/env bash
# Runs Runware's official Python SDK (PyPI: runware-sdk, pinned below), unchanged,
# against `reelay runware-sim` over both its transports: REST, and WebSocket (the
# SDK's default). The simulator must be faithful enough that Runware's own client
# works with only the base URL swapped.
# Skips (with a message) when python3, venv or pip is missing or PyPI is out of reach.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_cargo

SDK="runware-sdk==1.8.0"
skip() { echo "==> SKIPPED Runware SDK check: $*"; exit 0; }

command -v python3 >/dev/null 2>&1 || skip "python3 not found"
target="${CARGO_TARGET_DIR:-target}"
venv="$target/runware-sdk-venv"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" >/dev/null 2>&1 || skip "python3 cannot make a venv (Debian/Ubuntu: apt-get install python3-venv)"
fi
"$venv/bin/python" -m pip --version >/dev/null 2>&1 || skip "pip is missing in the venv"
echo "==> installing $SDK"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$SDK" || skip "pip could not install $SDK"

cargo build --quiet --bin reelay
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
data=$(mktemp -d)
REELAY_ENVIRONMENT=test REELAY__DATA__DIR="$data" \
  REELAY__SIMULATOR__API_KEY=sdk-check-key REELAY__SIMULATOR__GENERATION_SECS=1 \
  "$target/debug/reelay" runware-sim --port "$port" >"$data/sim.log" 2>&1 &
pid=$!
cleanup() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$data"; }
trap cleanup EXIT
for _ in $(seq 1 100); do
  if (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
  sleep 0.1
done
echo "==> Runware SDK against reelay runware-sim (REST)"
if ! "$venv/bin/python" tests/sdk/runware_sdk_check.py --url "http://127.0.0.1:$port/v1" --key sdk-check-key; then
  echo "--- simulator log:"; tail -n 40 "$data/sim.log"
  exit 1
fi
echo "==> Runware SDK against reelay runware-sim (WebSocket, the SDK's default transport)"
if ! "$venv/bin/python" tests/sdk/runware_sdk_ws_check.py --url "ws://127.0.0.1:$port/v1" --key sdk-check-key; then
  echo "--- simulator log:"; tail -n 40 "$data/sim.log"
  exit 1
fi
