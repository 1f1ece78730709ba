#!/usr/bin/env bash
# API throughput of a release build of reelay, on loopback only. Not a test.
#
# Starts `reelay serve` (embedded store, SQLite, Runware simulator) on free
# 127.0.0.1 ports with the rate limits off and a generator that refuses every
# submit at once (simulator fault insufficient_credits: no media work queues
# up), makes 50 assets in one campaign, and runs wrk against
#   GET  /v1/assets/{id}                 (one asset, with its detail)
#   GET  /v1/assets?campaign=C           (the 50 assets)
#   POST /v1/assets                      (valid requests)
# at 4 and 16 connections, each run bounded in time (BENCH_API_SECS, default
# 10 s; wrk has no request cap, so time is the bound). It prints requests per
# second and p50/p99 latency, the goals (GET one asset >= 3000 req/s with
# p99 < 50 ms at 16 connections; POST >= 300 req/s), and one "BENCH " line
# per figure.
#
# Environment: BENCH_API_SECS=10, BENCH_API_THREADS=2 (wrk threads),
#   REELAY_BIN=path (skip the build), BENCH_DIR=target/bench-api.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_ffmpeg
ensure_wrk

SECS=${BENCH_API_SECS:-10}
THREADS=${BENCH_API_THREADS:-2}
DIR=${BENCH_DIR:-target/bench-api}
die() { echo "bench-api: error: $*" >&2; exit 1; }

if [ -n "${REELAY_BIN:-}" ]; then
  REELAY=$REELAY_BIN
else
  ensure_cargo
  echo "==> cargo build --release (a cold build takes 10-30 minutes on 2 cores)"
  cargo build --release --bin reelay
  REELAY=${CARGO_TARGET_DIR:-$PWD/target}/release/reelay
fi
[ -x "$REELAY" ] || die "no reelay binary at $REELAY"

rm -rf "$DIR"; mkdir -p "$DIR"; DIR=$(cd "$DIR" && pwd)
API_PORT=$(free_port); S3_PORT=$(free_port)
BASE=http://127.0.0.1:$API_PORT
KEY=reelay-dev-key
REELAY__DATA__DIR=$DIR/data REELAY__SERVER__PORT=$API_PORT REELAY__STORAGE__EMBEDDED_PORT=$S3_PORT \
  REELAY__SERVER__RATE_LIMIT_IP_PER_SEC=0 REELAY__SERVER__RATE_LIMIT_KEY_PER_SEC=0 \
  REELAY__SIMULATOR__FAULTS__INSUFFICIENT_CREDITS=true RUST_LOG=warn \
  "$REELAY" serve > "$DIR/serve.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true; wait $PID 2>/dev/null || true' EXIT
for ((i = 0; i < 120; i++)); do
  curl -fs "$BASE/healthz" > /dev/null 2>&1 && break
  kill -0 $PID 2>/dev/null || { tail -n 20 "$DIR/serve.log" >&2; die "reelay serve exited"; }
  sleep 0.5
done
curl -fs "$BASE/healthz" > /dev/null || die "reelay serve did not answer /healthz"

CAMPAIGN=bench-api
body() {
  printf '{"campaign": "%s", "profile": "default", "generation": {"positivePrompt": "API benchmark %s", "width": 3840, "height": 2160, "duration": 5}}' "$CAMPAIGN" "$1"
}
echo "==> making 50 assets in campaign $CAMPAIGN"
ID=""
for ((i = 1; i <= 50; i++)); do
  out=$(curl -fsS -X POST "$BASE/v1/assets" -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' -d "$(body "$i")") \
    || die "POST /v1/assets failed"
  [ -n "$ID" ] || ID=$(echo "$out" | jq -r .id)
done
[ -n "$ID" ] && [ "$ID" != null ] || die "no asset id in the POST answer"

cat > "$DIR/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '$(body wrk)'
LUA

# wrk --latency prints "50%  1.23ms" ... "99%  4.56ms" and "Requests/sec: N".
declare -A RPS P50 P99 ERR
run() {  # name conns url [lua]
  local name=$1 c=$2 url=$3 out
  local extra=()
  [ -n "${4:-}" ] && extra=(-s "$4")
  out=$(wrk -t "$THREADS" -c "$c" -d "${SECS}s" --latency -H "Authorization: Bearer $KEY" "${extra[@]}" "$url")
  echo "$out" > "$DIR/wrk-$name-$c.txt"
  RPS[$name,$c]=$(echo "$out" | awk '/^Requests\/sec:/ { printf "%.0f", $2 }')
  P50[$name,$c]=$(echo "$out" | awk '$1 == "50%" { print $2 }' | wrk_ms)
  P99[$name,$c]=$(echo "$out" | awk '$1 == "99%" { print $2 }' | wrk_ms)
  ERR[$name,$c]=$(echo "$out" | awk '/Non-2xx or 3xx responses:/ { print $5 } /Socket errors/ { print "socket:" $0 }' | tr '\n' ' ')
  echo "   $name c=$c: ${RPS[$name,$c]} req/s, p50 ${P50[$name,$c]} ms, p99 ${P99[$name,$c]} ms ${ERR[$name,$c]:+(errors: ${ERR[$name,$c]})}"
}

echo "==> machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); $(wrk -v 2>&1 | head -n1 | cut -d' ' -f1-2); ${SECS} s per run"
for c in 4 16; do
  run get_one "$c" "$BASE/v1/assets/$ID"
  run list_50 "$c" "$BASE/v1/assets?campaign=$CAMPAIGN"
  run post "$c" "$BASE/v1/assets" "$DIR/post.lua"
done

meets() { awk -v v="$1" -v op="$2" -v g="$3" 'BEGIN { ok = (op == "<=") ? (v <= g) : (op == "<") ? (v < g) : (v >= g); print (ok ? "meets" : "MISSES") }'; }
echo
echo "Goals: GET one asset >= 3000 req/s with p99 < 50 ms at 16 connections; POST >= 300 req/s"
for c in 4 16; do
  for name in get_one list_50 post; do
    echo "BENCH api=$name conns=$c metric=requests_per_sec value=${RPS[$name,$c]} secs=$SECS"
    echo "BENCH api=$name conns=$c metric=p50_ms value=${P50[$name,$c]}"
    echo "BENCH api=$name conns=$c metric=p99_ms value=${P99[$name,$c]}"
  done
done
echo "BENCH api=get_one conns=16 metric=goal_rps value=${RPS[get_one,16]} goal>=3000 $(meets "${RPS[get_one,16]}" ">=" 3000)"
echo "BENCH api=get_one conns=16 metric=goal_p99_ms value=${P99[get_one,16]} goal<50 $(meets "${P99[get_one,16]}" "<" 50)"
echo "BENCH api=post conns=16 metric=goal_rps value=${RPS[post,16]} goal>=300 $(meets "${RPS[post,16]}" ">=" 300)"
