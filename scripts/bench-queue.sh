#!/usr/bin/env bash
# The job store under load, on SQLite and on Postgres. Not a test.
#
# (1) Claim -> complete throughput of steps that do no media work: a fresh
#     store gets BENCH_QUEUE_STEPS runnable variations, then 1, 2 and 4
#     worker processes (`reelay-bench-queue work`, the same `claim` and
#     fenced `update` reelay's workers use) take them until none is left;
#     steps per second = steps / (last worker's end - common start).
# (2) GET latency as the store grows: `reelay serve --role api` (no workers)
#     on a store holding 1,000 assets, then the same store grown to 100,000
#     (BENCH_QUEUE_BIG), 50 to a campaign; wrk on GET /v1/assets/{id} and
#     GET /v1/assets?campaign= (one campaign's 50) at 16 connections. The
#     ratio big/small of p50 and of requests per second says whether the
#     cost stays flat (goal: p50 ratio <= 1.5, the run-to-run spread of a
#     loaded 2-core machine).
#
# Postgres is a throwaway cluster (installed from the OS packages when
# missing) with fsync ON, as a production server runs, unlike the test
# suite's. SQLite runs as reelay configures it (WAL, synchronous FULL).
#
# Environment: BENCH_QUEUE_STEPS=2000, BENCH_QUEUE_BIG=100000,
#   BENCH_QUEUE_SECS=8 (wrk seconds per figure), BENCH_QUEUE_BACKENDS="sqlite postgres",
#   BENCH_DIR=target/bench-queue, REELAY_BIN_DIR=dir holding reelay and
#   reelay-bench-queue (skips the release build).
# Output: a table per part and one "BENCH " line per figure.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_ffmpeg
ensure_wrk
ensure_openssl

STEPS=${BENCH_QUEUE_STEPS:-2000}
BIG=${BENCH_QUEUE_BIG:-100000}
SECS=${BENCH_QUEUE_SECS:-8}
BACKENDS=${BENCH_QUEUE_BACKENDS:-"sqlite postgres"}
DIR=${BENCH_DIR:-target/bench-queue}
die() { echo "bench-queue: error: $*" >&2; exit 1; }

if [ -n "${REELAY_BIN_DIR:-}" ]; then
  BIN=$REELAY_BIN_DIR
else
  ensure_cargo
  echo "==> cargo build --release (a cold build takes 10-30 minutes on 2 cores)"
  cargo build --release --bin reelay --bin reelay-bench-queue
  BIN=${CARGO_TARGET_DIR:-$PWD/target}/release
fi
[ -x "$BIN/reelay" ] && [ -x "$BIN/reelay-bench-queue" ] || die "no reelay or reelay-bench-queue in $BIN"
BQ=$BIN/reelay-bench-queue

rm -rf "$DIR"; mkdir -p "$DIR"; DIR=$(cd "$DIR" && pwd)
case " $BACKENDS " in
  *" postgres "*)
    ensure_postgres
    REELAY_PG_FSYNC=on start_throwaway_postgres ;;
esac

fresh_db() {  # backend name -> the URL of a new, empty store called name
  if [ "$1" = sqlite ]; then
    echo "sqlite://$DIR/$2.db"
  else
    psql -q "$REELAY_TEST_POSTGRES_URL" -c "CREATE DATABASE $2" >/dev/null
    echo "${REELAY_TEST_POSTGRES_URL%/*}/$2"
  fi
}
ms() { date +%s%3N; }

# ------------------------------------------------------- (1) claim/complete --
declare -A SPS
echo "==> machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -g | awk '/^Mem:/ { print $2 }') GiB; $STEPS steps per run"
for backend in $BACKENDS; do
  for workers in 1 2 4; do
    url=$(fresh_db "$backend" "queue_$workers")
    "$BQ" --database "$url" seed --assets "$STEPS"
    start=$(( $(ms) + 1500 ))
    pids=()
    for ((w = 0; w < workers; w++)); do
      "$BQ" --database "$url" work --start-at-ms "$start" > "$DIR/work-$backend-$workers-$w.json" &
      pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || die "a worker failed ($backend, $workers workers)"; done
    read -r done lost end < <(cat "$DIR"/work-"$backend"-"$workers"-*.json \
      | jq -s '[ (map(.done) | add), (map(.lost) | add), (map(.ended_ms) | max) ] | @tsv' -r)
    [ "$done" -eq "$STEPS" ] || die "$backend, $workers workers: $done of $STEPS steps done ($lost lost)"
    SPS[$backend,$workers]=$(awk -v n="$done" -v a="$start" -v b="$end" 'BEGIN { printf "%.0f", n / ((b - a) / 1000) }')
    echo "   $backend, $workers workers: ${SPS[$backend,$workers]} steps/s ($done steps, $lost fenced out)"
  done
done

# ----------------------------------------------------------- (2) GET latency --
KEY=reelay-dev-key
WEBHOOK_KEY=$(openssl rand -hex 32); SIGNING_KEY=$(openssl rand -hex 32)
SERVE_PID=""
stop_serve() { [ -z "$SERVE_PID" ] || { kill "$SERVE_PID" 2>/dev/null || true; wait "$SERVE_PID" 2>/dev/null || true; SERVE_PID=""; }; }
trap 'stop_serve; stop_throwaway_postgres' EXIT
serve() {  # url tag
  local port s3 sim
  port=$(free_port); s3=$(free_port); sim=$(free_port)
  BASE=http://127.0.0.1:$port
  REELAY__DATA__DIR=$DIR/data-$2 REELAY__DATABASE__URL=$1 REELAY__SERVER__PORT=$port \
    REELAY__STORAGE__EMBEDDED_PORT=$s3 REELAY__SIMULATOR__PORT=$sim \
    REELAY__SERVER__RATE_LIMIT_IP_PER_SEC=0 REELAY__SERVER__RATE_LIMIT_KEY_PER_SEC=0 \
    REELAY__SECRETS__WEBHOOK_TOKEN_KEY=$WEBHOOK_KEY \
    REELAY__SECRETS__CALLBACK_SIGNING_KEY=$SIGNING_KEY \
    RUST_LOG=warn \
    "$BIN/reelay" serve --role api > "$DIR/serve-$2.log" 2>&1 &
  SERVE_PID=$!
  for ((i = 0; i < 240; i++)); do
    curl -fs "$BASE/healthz" > /dev/null 2>&1 && return 0
    kill -0 "$SERVE_PID" 2>/dev/null || { tail -n 20 "$DIR/serve-$2.log" >&2; die "reelay serve exited"; }
    sleep 0.5
  done
  die "reelay serve did not answer /healthz"
}
declare -A RPS P50 P99
measure() {  # key url
  local out
  out=$(wrk -t 2 -c 16 -d "${SECS}s" --latency -H "Authorization: Bearer $KEY" "$2")
  echo "$out" > "$DIR/wrk-$1.txt"
  echo "$out" | grep -q "Non-2xx" && die "$1: wrk saw error answers (see $DIR/wrk-$1.txt)"
  RPS[$1]=$(echo "$out" | awk '/^Requests\/sec:/ { printf "%.0f", $2 }')
  P50[$1]=$(echo "$out" | awk '$1 == "50%" { print $2 }' | wrk_ms)
  P99[$1]=$(echo "$out" | awk '$1 == "99%" { print $2 }' | wrk_ms)
  echo "   $1: ${RPS[$1]} req/s, p50 ${P50[$1]} ms, p99 ${P99[$1]} ms"
}
for backend in $BACKENDS; do
  url=$(fresh_db "$backend" growing)
  "$BQ" --database "$url" seed --assets 1000
  # The probe is the last campaign's first asset (ids count up from 0; 50 to a campaign).
  probe=$(printf 'ast_%020x' 950)
  for size in 1000 "$BIG"; do
    if [ "$size" != 1000 ]; then
      t0=$(ms)
      "$BQ" --database "$url" seed --assets $((size - 1000)) --from 1000
      echo "   $backend: grew the store to $size assets in $(( ($(ms) - t0) / 1000 )) s"
      # Fresh statistics for the planner, as autovacuum gives a store that
      # grew over days: measure the steady state, not the minutes after a
      # bulk load (SQLite's planner keeps none).
      if [ "$backend" = postgres ]; then psql -q "$url" -c ANALYZE; fi
    fi
    serve "$url" "$backend-$size"
    code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $KEY" "$BASE/v1/assets/$probe")
    [ "$code" = 200 ] || die "GET /v1/assets/$probe answered $code"
    measure "$backend,$size,one" "$BASE/v1/assets/$probe"
    measure "$backend,$size,campaign" "$BASE/v1/assets?campaign=bench-19"
    stop_serve
  done
done

# ------------------------------------------------------------------ report --
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
meets() { awk -v v="$1" -v g="$2" 'BEGIN { print (v <= g ? "meets" : "MISSES") }'; }
echo
echo "claim -> complete, steps per second:"
for backend in $BACKENDS; do
  for workers in 1 2 4; do
    echo "BENCH queue=$backend workers=$workers metric=steps_per_sec value=${SPS[$backend,$workers]} steps=$STEPS"
  done
done
echo "GET at 16 connections, 1000 vs $BIG assets (goal: p50 ratio <= 1.5):"
for backend in $BACKENDS; do
  for what in one campaign; do
    for size in 1000 "$BIG"; do
      k="$backend,$size,$what"
      echo "BENCH get=$what backend=$backend assets=$size metric=requests_per_sec value=${RPS[$k]}"
      echo "BENCH get=$what backend=$backend assets=$size metric=p50_ms value=${P50[$k]}"
      echo "BENCH get=$what backend=$backend assets=$size metric=p99_ms value=${P99[$k]}"
    done
    r=$(ratio "${P50[$backend,$BIG,$what]}" "${P50[$backend,1000,$what]}")
    echo "BENCH get=$what backend=$backend metric=p50_ratio_big_over_small value=$r goal<=1.5 $(meets "$r" 1.5)"
  done
done
