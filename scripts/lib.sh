# Shared helpers for the scripts in this folder. Sourced, not run.

# Installs ffmpeg (and ffprobe) from the OS packages when either is missing.
ensure_ffmpeg() {
  if command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1; then
    return 0
  fi
  echo "==> ffmpeg not found: installing it from the OS packages"
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  if command -v apt-get >/dev/null 2>&1; then
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq ffmpeg >/dev/null
  elif command -v dnf >/dev/null 2>&1; then
    $sudo dnf install -y ffmpeg
  elif command -v brew >/dev/null 2>&1; then
    brew install ffmpeg
  else
    echo "error: no supported package manager found; install ffmpeg 5.1+ by hand" >&2
    return 1
  fi
  command -v ffmpeg >/dev/null 2>&1 || { echo "error: ffmpeg install failed" >&2; return 1; }
}

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
  echo "==> openssl not found: installing it from the OS packages"
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  if command -v apt-get >/dev/null 2>&1; then
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq openssl >/dev/null
  elif command -v dnf >/dev/null 2>&1; then
    $sudo dnf install -y openssl
  elif command -v brew >/dev/null 2>&1; then
    brew install openssl
  else
    echo "error: no supported package manager found; install the openssl CLI by hand" >&2
    return 1
  fi
  command -v openssl >/dev/null 2>&1 || { echo "error: openssl install failed" >&2; return 1; }
}
