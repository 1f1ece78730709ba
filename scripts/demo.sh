#!/usr/bin/env bash
# One command on a fresh machine: installs ffmpeg if missing (and a static
# ffmpeg with libvmaf for the VMAF gate), builds reelay,
# and runs `reelay demo` (embedded object store, Runware simulator, SQLite),
# which requests one 4K asset and follows it to published CDN files.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_cargo
ensure_ffmpeg
# QC gates on VMAF too when an ffmpeg with libvmaf is at hand (the pinned
# static build, installed once; see README "The VMAF floor"); SSIM alone else.
if ensure_vmaf_ffmpeg; then
  export REELAY__MEDIA__FFMPEG_PATH="${REELAY__MEDIA__FFMPEG_PATH:-$REELAY_VMAF_FFMPEG}"
  export REELAY__MEDIA__FFPROBE_PATH="${REELAY__MEDIA__FFPROBE_PATH:-$REELAY_VMAF_FFPROBE}"
else
  echo "==> no ffmpeg with libvmaf: the demo's QC gates on SSIM alone"
fi
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
