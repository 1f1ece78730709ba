#!/usr/bin/env bash
# Re-fetches the dashboard's pinned hls.js from the npm registry and checks it
# against the recorded SHA-256. `--check` only compares the committed copy
# with a fresh download; without it the file is (re)written, and only when
# the digest matches. To move to another release, change HLS_VERSION and
# HLS_SHA256 in src/api/dashboard/mod.rs (and HLS_SRC in player.js) together.
set -euo pipefail
cd "$(dirname "$0")/.."
mod=src/api/dashboard/mod.rs
version=$(sed -n 's/^pub const HLS_VERSION: &str = "\(.*\)";/\1/p' "$mod")
sha=$(sed -n 's/^pub const HLS_SHA256: &str = "\(.*\)";/\1/p' "$mod")
dest=src/api/dashboard/vendor/hls.light.min.js
[ -n "$version" ] && [ -n "$sha" ] || { echo "error: HLS_VERSION/HLS_SHA256 not found in $mod" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# npm pack checks the tarball against the registry's integrity hash.
(cd "$tmp" && npm pack "hls.js@$version" --silent >/dev/null)
tar -xzf "$tmp/hls.js-$version.tgz" -C "$tmp" package/dist/hls.light.min.js
got=$(sha256sum "$tmp/package/dist/hls.light.min.js" | cut -d' ' -f1)
if [ "$got" != "$sha" ]; then
  echo "error: hls.js@$version dist/hls.light.min.js has SHA-256 $got, expected $sha" >&2
  exit 1
fi
if [ "${1:-}" = "--check" ]; then
  cmp -s "$tmp/package/dist/hls.light.min.js" "$dest" \
    || { echo "error: $dest differs from hls.js@$version on npm" >&2; exit 1; }
  echo "ok: $dest is hls.js@$version (sha256 $sha)"
else
  cp "$tmp/package/dist/hls.light.min.js" "$dest"
  echo "wrote $dest: hls.js@$version (sha256 $sha)"
fi
