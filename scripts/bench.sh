#!/usr/bin/env bash
# Benchmark: reelay's one-pass transcode against hand-written ffmpeg.
#
# On generated 3840x2160 24 fps masters with audio (5 s and 15 s), in
# alternating rounds, it times
#   (a) reelay transcode MASTER --profile olv
#   (b) the same outputs from ONE hand-written ffmpeg command (written out
#       below, with the olv settings; checked once against (a)'s outputs)
#   (c) one ffmpeg run per output, as a typical script does (each decodes
#       the master)
#   (d) reelay process MASTER --profile olv --request REQ: arrival read,
#       transcode and QC, as the pipeline runs them
#   (e) the service (reelay serve, embedded stack): the master PUT by hand
#       into the embedded store; the time from its arrival to `published`,
#       read from the asset's history (whole seconds)
# and prints median wall times, a/b (goal <= 1.03), c/a (goal >= 1.3),
# d/b (goal <= 1.35 without loopback decoders, <= 1.15 with), e/b (goal
# <= 1.5), and reelay's own peak RSS (VmHWM, from its summary.json) on the
# 15 s master (goal <= 150 MB). Not a test: timings depend on the machine
# and its load.
#
# Usage: bash scripts/bench.sh            (from the repository root)
# Environment:
#   BENCH_RUNS=5                 rounds per master (each round runs a, b and c once)
#   BENCH_DURATIONS="5 15"       master lengths in seconds (5 and 15 are hand-written below)
#   BENCH_DIR=target/bench       masters (kept between runs) and outputs
#   REELAY_BENCH_PROFILE=release cargo profile for reelay ("dev" builds faster, runs slower)
#   REELAY_BIN=path              use this reelay binary instead of building one
#   BENCH_CASES="a b c d e"      the cases to run (a and b are always run)
# Output: a table, plus one machine-readable line per figure, starting "BENCH ".
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_ffmpeg

RUNS=${BENCH_RUNS:-5}
DURATIONS=${BENCH_DURATIONS:-"5 15"}
BENCH_DIR=${BENCH_DIR:-target/bench}
PROFILE=${REELAY_BENCH_PROFILE:-release}
mkdir -p "$BENCH_DIR"
BENCH_DIR=$(cd "$BENCH_DIR" && pwd)

die() { echo "bench: error: $*" >&2; exit 1; }
CASES=${BENCH_CASES:-"a b c d e"}
for k in a b; do case " $CASES " in *" $k "*) ;; *) CASES="$k $CASES" ;; esac; done
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

# ---------------------------------------------------------------- reelay --
if [ -n "${REELAY_BIN:-}" ]; then
  REELAY=$REELAY_BIN
else
  ensure_cargo
  target=${CARGO_TARGET_DIR:-$PWD/target}
  if [ "$PROFILE" = "dev" ]; then
    echo "==> cargo build (dev profile)"
    cargo build --bin reelay
    REELAY=$target/debug/reelay
  else
    echo "==> cargo build --release (a cold build takes 10-30 minutes on 2 cores)"
    cargo build --release --bin reelay
    REELAY=$target/release/reelay
  fi
fi
[ -x "$REELAY" ] || die "no reelay binary at $REELAY"

# --------------------------------------------------------------- masters --
# testsrc2 with light temporal noise, x264 CRF 18 capped at 40 Mbps: a
# high-quality 4K master whose decode costs what a real one does (~40-55 Mbps).
make_master() {
  local secs=$1 out=$2
  if [ -s "$out" ]; then return 0; fi
  echo "==> generating a ${secs} s 3840x2160 24 fps master with audio (takes a few minutes)"
  ffmpeg -hide_banner -nostdin -y -loglevel error \
    -f lavfi -i "testsrc2=s=3840x2160:r=24:d=${secs},noise=alls=6:allf=t,format=yuv420p" \
    -f lavfi -i "sine=frequency=440:beep_factor=4:sample_rate=48000:duration=${secs},aformat=channel_layouts=stereo" \
    -c:v libx264 -preset veryfast -crf 18 -maxrate 40M -bufsize 80M -profile:v high -g 48 \
    -c:a aac -b:a 192k -movflags +faststart -shortest "$out.tmp.mp4"
  mv "$out.tmp.mp4" "$out"
}

# ------------------------------------------------ (b) one ffmpeg command --
# Hand-written, mirroring reelay's olv profile (config/default.toml: every
# rung at constant rate with HRD filler inside its IAB band, BT.709 tags)
# and its one-pass graph for a 16:9 master, with the stills defaults
# (src/media/stills.rs): posters 1280/640 JPEG+WebP at min(duration/3, 3 s),
# a sprite of 160x90 tiles every second (10 columns) with its WebVTT, and a
# 3 s 480x270 10 fps animated WebP from the poster time.
# Per master: poster time, sprite tiles/columns/rows, preview start.
stills_params() {
  case "$1" in
    5) POSTER_AT=1.667; TILES=5; COLS=5; ROWS=1; PREVIEW_AT=1.667 ;;
    15) POSTER_AT=3.000; TILES=15; COLS=10; ROWS=2; PREVIEW_AT=3.000 ;;
    *) die "no hand-written stills settings for a ${1} s master (use 5 or 15)" ;;
  esac
}

write_storyboard() {  # secs out_dir: the WebVTT map of the sprite
  local secs=$1 dir=$2 k start end x y
  {
    echo "WEBVTT"
    for ((k = 0; k < TILES; k++)); do
      start=$k; end=$((k + 1)); [ $end -gt "$secs" ] && end=$secs
      x=$(((k % COLS) * 160)); y=$(((k / COLS) * 90))
      printf '\n00:00:%02d.000 --> 00:00:%02d.000\nsprite.jpg#xywh=%d,%d,160,90\n' "$start" "$end" "$x" "$y"
    done
  } > "$dir/storyboard.vtt"
}

run_b() {  # master secs out_dir
  local m=$1 secs=$2 o=$3
  stills_params "$secs"
  local bright="signalstats,metadata=mode=select:key=lavfi.signalstats.YAVG:function=greater:value=32"
  local fit="scale=w=1280:h=720:flags=bicubic,setsar=1,format=yuv420p"
  local graph="[0:v:0]split=2[g0][still];\
[g0]scale=w=1920:h=1080:flags=bicubic,setsar=1,format=yuv420p,split=2[v0][d0_0];\
[d0_0]scale=w=1280:h=720:flags=bicubic,setsar=1,format=yuv420p,split=2[v1][d0_1];\
[d0_1]scale=w=854:h=480:flags=bicubic,setsar=1,format=yuv420p,split=2[v2][d0_2];\
[d0_2]scale=w=640:h=360:flags=bicubic,setsar=1,format=yuv420p[v3];\
[0:a:0]aresample=48000,aformat=channel_layouts=stereo,asplit=4[a0][a1][a2][a3];\
[still]setpts=PTS-STARTPTS,split=3[st_poster_in][st_sprite_in][st_preview_in];\
[st_poster_in]split=4[st_pa][st_pb][st_pc][st_pd];\
[st_pb]trim=end=${POSTER_AT},${fit},${bright},trim=end_frame=1[st_before];\
[st_pd]trim=end_frame=1,${fit}[st_first];\
[st_pa]trim=start=${POSTER_AT},${fit},${bright},trim=end_frame=1[st_after];\
[st_pc]trim=start=${POSTER_AT},trim=end_frame=1,${fit}[st_at];\
[st_after][st_before][st_at][st_first]concat=n=4:v=1:a=0,trim=end_frame=1,split=2[st_pick0][st_pick1];\
[st_pick0]null,split=2[st_poster_1280_jpg][st_poster_1280_webp];\
[st_pick1]scale=w=640:h=360:flags=bicubic,setsar=1,split=2[st_poster_640_jpg][st_poster_640_webp];\
[st_sprite_in]select=expr=gte(t\\,selected_n*1),trim=end_frame=${TILES},scale=w=160:h=90:flags=bicubic,setsar=1,tile=layout=${COLS}x${ROWS}:padding=0:margin=0[st_sprite];\
[st_preview_in]trim=start=${PREVIEW_AT}:duration=3.000,fps=10,trim=end_frame=30,scale=w=480:h=270:flags=bicubic,setsar=1[st_preview]"
  local x264=(-c:v libx264 -profile:v high)
  local gop=(-g 48 -keyint_min 48 -sc_threshold 0)
  local tags=(-color_primaries bt709 -color_trc bt709 -colorspace bt709 -color_range tv)
  local tail=(-map_metadata -1 -map_chapters -1 -max_muxing_queue_size 1024 -movflags +faststart -f mp4)
  local ff=(ffmpeg -hide_banner -nostdin -y -loglevel error)
  # B_ARGV_ONLY=1: print the argv, one argument a line, instead of running it.
  [ "${B_ARGV_ONLY:-0}" = 1 ] && ff=(printf '%s\n' ffmpeg -hide_banner -nostdin -y -loglevel error)
  "${ff[@]}" -i "$m" -filter_complex "$graph" \
    -map '[v0]' -map '[a0]' "${x264[@]}" -level:v 4.0 -preset veryfast -b:v 6000k -minrate 6000k -x264-params nal-hrd=cbr:force-cfr=1 -maxrate 6000k -bufsize 3000k "${gop[@]}" "${tags[@]}" -c:a aac -b:a 192k "${tail[@]}" "$o/1080p.mp4" \
    -map '[v1]' -map '[a1]' "${x264[@]}" -level:v 3.1 -preset veryfast -b:v 3500k -minrate 3500k -x264-params nal-hrd=cbr:force-cfr=1 -maxrate 3500k -bufsize 1750k "${gop[@]}" "${tags[@]}" -c:a aac -b:a 160k "${tail[@]}" "$o/720p.mp4" \
    -map '[v2]' -map '[a2]' "${x264[@]}" -level:v 3.1 -preset veryfast -b:v 3000k -minrate 3000k -x264-params nal-hrd=cbr:force-cfr=1 -maxrate 3000k -bufsize 1500k "${gop[@]}" "${tags[@]}" -c:a aac -b:a 128k "${tail[@]}" "$o/480p.mp4" \
    -map '[v3]' -map '[a3]' "${x264[@]}" -level:v 3.0 -preset veryfast -b:v 2200k -minrate 2200k -x264-params nal-hrd=cbr:force-cfr=1 -maxrate 2200k -bufsize 1100k "${gop[@]}" "${tags[@]}" -c:a aac -b:a 128k "${tail[@]}" "$o/360p.mp4" \
    -map '[st_poster_1280_jpg]' -frames:v 1 -c:v mjpeg -q:v 3 -map_metadata -1 -update 1 -f image2 "$o/poster-1280.jpg" \
    -map '[st_poster_1280_webp]' -frames:v 1 -c:v libwebp -quality 80 -lossless 0 -map_metadata -1 -f webp "$o/poster-1280.webp" \
    -map '[st_poster_640_jpg]' -frames:v 1 -c:v mjpeg -q:v 3 -map_metadata -1 -update 1 -f image2 "$o/poster-640.jpg" \
    -map '[st_poster_640_webp]' -frames:v 1 -c:v libwebp -quality 80 -lossless 0 -map_metadata -1 -f webp "$o/poster-640.webp" \
    -map '[st_sprite]' -frames:v 1 -c:v mjpeg -q:v 4 -map_metadata -1 -update 1 -f image2 "$o/sprite.jpg" \
    -map '[st_preview]' -c:v libwebp_anim -quality 70 -lossless 0 -loop 0 -map_metadata -1 -f webp "$o/preview.webp"
  [ "${B_ARGV_ONLY:-0}" = 1 ] || write_storyboard "$secs" "$o"
}

# -------------------------------------------- (c) one run per output file --
# What a typical script does: every rendition decodes the whole master and
# scales it straight down; posters and the preview seek first (-ss before
# -i), the sprite decodes everything. Same encoder settings as (b).
run_c() {  # master secs out_dir
  local m=$1 secs=$2 o=$3
  stills_params "$secs"
  local ff=(ffmpeg -hide_banner -nostdin -y -loglevel error)
  local x264=(-c:v libx264 -profile:v high)
  local gop=(-g 48 -keyint_min 48 -sc_threshold 0)
  local tags=(-color_primaries bt709 -color_trc bt709 -colorspace bt709 -color_range tv)
  local aud=(-af aresample=48000,aformat=channel_layouts=stereo -c:a aac)
  local tail=(-map_metadata -1 -map_chapters -1 -movflags +faststart -f mp4)
  local vf="flags=bicubic,setsar=1,format=yuv420p"
  "${ff[@]}" -i "$m" -map 0:v:0 -map 0:a:0 -vf "scale=w=1920:h=1080:$vf" "${x264[@]}" -level:v 4.0 -preset veryfast -b:v 6000k -minrate 6000k -x264-params nal-hrd=cbr:force-cfr=1 -maxrate 6000k -bufsize 3000k "${gop[@]}" "${tags[@]}" "${aud[@]}" -b:a 192k "${tail[@]}" "$o/1080p.mp4"
  "${ff[@]}" -i "$m" -map 0:v:0 -map 0:a:0 -vf "scale=w=1280:h=720:$vf" "${x264[@]}" -level:v 3.1 -preset veryfast -b:v 3500k -minrate 3500k -x264-params nal-hrd=cbr:force-cfr=1 -maxrate 3500k -bufsize 1750k "${gop[@]}" "${tags[@]}" "${aud[@]}" -b:a 160k "${tail[@]}" "$o/720p.mp4"
  "${ff[@]}" -i "$m" -map 0:v:0 -map 0:a:0 -vf "scale=w=854:h=480:$vf" "${x264[@]}" -level:v 3.1 -preset veryfast -b:v 3000k -minrate 3000k -x264-params nal-hrd=cbr:force-cfr=1 -maxrate 3000k -bufsize 1500k "${gop[@]}" "${tags[@]}" "${aud[@]}" -b:a 128k "${tail[@]}" "$o/480p.mp4"
  "${ff[@]}" -i "$m" -map 0:v:0 -map 0:a:0 -vf "scale=w=640:h=360:$vf" "${x264[@]}" -level:v 3.0 -preset veryfast -b:v 2200k -minrate 2200k -x264-params nal-hrd=cbr:force-cfr=1 -maxrate 2200k -bufsize 1100k "${gop[@]}" "${tags[@]}" "${aud[@]}" -b:a 128k "${tail[@]}" "$o/360p.mp4"
  local w h
  for w in 1280 640; do
    h=$((w * 9 / 16))
    "${ff[@]}" -ss "$POSTER_AT" -i "$m" -map 0:v:0 -frames:v 1 -vf "scale=w=$w:h=$h:flags=bicubic,setsar=1" -c:v mjpeg -q:v 3 -map_metadata -1 -update 1 -f image2 "$o/poster-$w.jpg"
    "${ff[@]}" -ss "$POSTER_AT" -i "$m" -map 0:v:0 -frames:v 1 -vf "scale=w=$w:h=$h:flags=bicubic,setsar=1" -c:v libwebp -quality 80 -lossless 0 -map_metadata -1 -f webp "$o/poster-$w.webp"
  done
  "${ff[@]}" -i "$m" -map 0:v:0 -vf "select=expr=gte(t\\,selected_n*1),scale=w=160:h=90:flags=bicubic,setsar=1,tile=layout=${COLS}x${ROWS}" -frames:v 1 -c:v mjpeg -q:v 4 -map_metadata -1 -update 1 -f image2 "$o/sprite.jpg"
  write_storyboard "$secs" "$o"
  "${ff[@]}" -ss "$PREVIEW_AT" -t 3 -i "$m" -map 0:v:0 -vf "fps=10,scale=w=480:h=270:flags=bicubic,setsar=1" -c:v libwebp_anim -quality 70 -lossless 0 -loop 0 -map_metadata -1 -f webp "$o/preview.webp"
}

# --------------------------------------------------------- (a) reelay ----
run_a() {  # master secs out_dir
  "$REELAY" transcode "$1" --profile olv --out "$3" > "$3.log" 2>&1 || {
    tail -n 20 "$3.log" >&2
    die "reelay transcode failed (log: $3.log)"
  }
}

# ------------------------------------------------ (d) reelay process ----
# The request the bench masters were made to: 3840x2160, with sound.
request_file() {  # secs -> path
  local f=$BENCH_DIR/request-${1}s.json
  printf '{"generation": {"positivePrompt": "bench master", "width": 3840, "height": 2160, "duration": %s, "providerSettings": {"klingai": {"sound": true}}}}\n' "$1" > "$f"
  echo "$f"
}

run_d() {  # master secs out_dir
  "$REELAY" process "$1" --profile olv --request "$(request_file "$2")" --out "$3" --json > "$3.json" 2> "$3.log" || {
    tail -n 20 "$3.log" >&2
    die "reelay process failed or rejected the master (report: $3.json)"
  }
}

# --------------------------------------------------- (e) the service ----
# One `reelay serve` (embedded store, SQLite, simulator) for the whole bench,
# on free loopback ports; each round PUTs the master by hand under a campaign
# of its own (a new asset) and waits for it to be published.
SERVICE_PID=""
stop_service() {
  if [ -n "$SERVICE_PID" ]; then kill "$SERVICE_PID" 2>/dev/null || true; wait "$SERVICE_PID" 2>/dev/null || true; fi
  SERVICE_PID=""
}
start_service() {
  SERVICE_DIR=$BENCH_DIR/service
  rm -rf "$SERVICE_DIR"; mkdir -p "$SERVICE_DIR"
  API_PORT=$(free_port); S3_PORT=$(free_port)
  REELAY__DATA__DIR=$SERVICE_DIR REELAY__SERVER__PORT=$API_PORT REELAY__STORAGE__EMBEDDED_PORT=$S3_PORT \
    REELAY__SERVER__RATE_LIMIT_IP_PER_SEC=0 REELAY__SERVER__RATE_LIMIT_KEY_PER_SEC=0 \
    REELAY__DATA__FREE_SPACE_MARGIN_BYTES=0 \
    "$REELAY" serve > "$SERVICE_DIR/serve.log" 2>&1 &
  SERVICE_PID=$!
  trap stop_service EXIT
  local i
  for ((i = 0; i < 120; i++)); do
    curl -fs "http://127.0.0.1:$API_PORT/healthz" > /dev/null 2>&1 && [ -s "$SERVICE_DIR/secrets/s3-credentials" ] && return 0
    kill -0 "$SERVICE_PID" 2>/dev/null || { tail -n 20 "$SERVICE_DIR/serve.log" >&2; die "reelay serve exited"; }
    sleep 0.5
  done
  die "reelay serve did not answer /healthz within 60 s"
}
put_master() {  # file key
  local creds=$SERVICE_DIR/secrets/s3-credentials
  if command -v aws > /dev/null 2>&1; then
    AWS_SHARED_CREDENTIALS_FILE=$creds AWS_PROFILE=reelay AWS_DEFAULT_REGION=us-east-1 \
      aws --endpoint-url "http://127.0.0.1:$S3_PORT" s3 cp "$1" "s3://reelay-masters/$2" \
      --metadata reelay-profile=olv --only-show-errors
  else
    local ak sk
    ak=$(awk -F' *= *' '$1 == "aws_access_key_id" { print $2 }' "$creds")
    sk=$(awk -F' *= *' '$1 == "aws_secret_access_key" { print $2 }' "$creds")
    curl -fsS --aws-sigv4 "aws:amz:us-east-1:s3" --user "$ak:$sk" \
      -H "x-amz-content-sha256: $(sha256sum "$1" | cut -d' ' -f1)" \
      -H "x-amz-meta-reelay-profile: olv" -T "$1" "http://127.0.0.1:$S3_PORT/reelay-masters/$2"
  fi
}
api() { curl -fsS -H "Authorization: Bearer reelay-dev-key" "http://127.0.0.1:$API_PORT$1"; }
# Seconds between two RFC 3339 times.
span_secs() { python3 -c 'import sys, datetime as d; f = lambda s: d.datetime.fromisoformat(s.replace("Z", "+00:00")); print("%.3f" % (f(sys.argv[2]) - f(sys.argv[1])).total_seconds())' "$1" "$2"; }

E_SEQ=0
run_e() {  # master secs out_dir: writes out_dir/e.secs
  [ -n "$SERVICE_PID" ] || start_service
  E_SEQ=$((E_SEQ + 1))
  local campaign="bench-${2}s-$E_SEQ-$$" id="" state="" i detail first last
  put_master "$1" "masters/$campaign/master.mp4" || die "could not PUT the master into the embedded store"
  for ((i = 0; i < 1200; i++)); do
    id=$(api "/v1/assets?campaign=$campaign" 2> /dev/null | jq -r '(.assets // .items // .)[0].id // empty' 2> /dev/null || true)
    if [ -n "$id" ]; then
      state=$(api "/v1/assets/$id" | jq -r '.variations[0].state // .status')
      case "$state" in published | rejected | failed | expired) break ;; esac
    fi
    sleep 0.25
  done
  [ "$state" = published ] || { api "/v1/assets/$id" > "$3/asset.json" 2>/dev/null || true; die "the service did not publish the bench master (state ${state:-none}, see $3/asset.json and $SERVICE_DIR/serve.log)"; }
  detail=$(api "/v1/assets/$id")
  echo "$detail" > "$3/asset.json"
  first=$(echo "$detail" | jq -r '.variations[0].history[0].at')
  last=$(echo "$detail" | jq -r '[.variations[0].history[] | select(.to == "published")][0].at')
  span_secs "$first" "$last" > "$3/e.secs"
}

fresh() { rm -rf "$1"; mkdir -p "$1"; }

# ------------------------------------------------------ equivalence check --
# The facts each file's streams must share: codec, profile, level, size,
# frame rate, pixel format; sample rate and channels for audio.
# ffmpeg 5.1 cannot decode animated WebP: for those the canvas size and the
# frame count come from the RIFF chunks (VP8X at byte 12, one ANMF per frame).
facts() {
  case "$1" in
    *.webp)
      if [ "$(head -c 16 "$1" | tail -c 4)" = VP8X ]; then
        od -An -tu1 -j24 -N6 "$1" | awk '{ printf "webp canvas=%dx%d ", $1 + $2 * 256 + $3 * 65536 + 1, $4 + $5 * 256 + $6 * 65536 + 1 }'
        echo "frames=$(grep -ao ANMF "$1" | wc -l)"
        return
      fi ;;
  esac
  ffprobe -v error -show_entries \
    stream=codec_type,codec_name,profile,level,width,height,r_frame_rate,pix_fmt,sample_rate,channels \
    -of compact=nk=0 "$1" 2>&1
}

check_equivalent() {  # dir_a dir_b
  local a=$1 b=$2 f bad=0
  local names_a names_b
  names_a=$(cd "$a" && find . -type f ! -name summary.json ! -name '*.log' | sort)
  names_b=$(cd "$b" && find . -type f | sort)
  if [ "$names_a" != "$names_b" ]; then
    echo "files differ: reelay (<) vs hand-written (>):" >&2
    diff <(echo "$names_a") <(echo "$names_b") >&2 || true
    bad=1
  fi
  while read -r f; do
    [ -f "$b/$f" ] || continue
    case "$f" in
      *.vtt)
        if ! cmp -s "$a/$f" "$b/$f"; then
          echo "$f differs:" >&2; diff "$a/$f" "$b/$f" >&2 || true; bad=1
        fi ;;
      *)
        if [ "$(facts "$a/$f")" != "$(facts "$b/$f")" ]; then
          echo "$f: reelay: $(facts "$a/$f")" >&2
          echo "$f: by hand: $(facts "$b/$f")" >&2
          bad=1
        else
          echo "   same: $f: $(facts "$a/$f" | tr '\n' ' ' | cut -c1-150)"
        fi ;;
    esac
  done <<< "$names_a"
  [ $bad -eq 0 ] || die "the hand-written command (b) does not produce what reelay (a) does; fix run_b to mirror the olv profile"
}

# reelay --print-args against run_b's argv, both normalised: paths replaced,
# logging flags and the input whitelists (reelay's guard for user media)
# dropped. A difference does not stop the bench (the facts check above
# does); it is printed so that a/b is read knowing what differs.
compare_argv() {  # reelay_json master secs out_dir_a
  local json=$1 m=$2 secs=$3 oa=$4 ob=$5
  if ! command -v jq >/dev/null 2>&1; then
    echo "   (jq not installed: argv comparison with reelay --print-args skipped)"
    return 0
  fi
  normalise() {
    awk -v m="$m" -v oa="$oa" -v ob="$ob" '
      skip > 0 { skip--; next }
      NR == 1 { next }
      $0 == "-loglevel" || $0 == "-protocol_whitelist" || $0 == "-format_whitelist" { skip = 1; next }
      $0 == "-hide_banner" || $0 == "-nostdin" || $0 == "-y" { next }
      { gsub(oa, "OUT"); gsub(ob, "OUT"); gsub(m, "MASTER"); print }'
  }
  if diff <(jq -r '.[]' "$json" | normalise) <(B_ARGV_ONLY=1 run_b "$m" "$secs" "$ob" | normalise) > "$json.diff"; then
    echo "   argv: the hand-written command is reelay's, argument for argument (logging and input whitelists aside)"
  else
    echo "   WARNING: the hand-written argv differs from reelay --print-args (reelay <, by hand >):"
    sed 's/^/     /' "$json.diff" | cut -c1-200
  fi
}

# ------------------------------------------------------------ measuring --
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) printf "%.3f", v[(NR + 1) / 2]; else printf "%.3f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# Sum of VmRSS over a process and its descendants, sampled every 0.1 s;
# prints the peak in kB. Runs the command in the background.
tree_peak_rss_kb() {
  "$@" & local pid=$! peak=0 sum p r kids
  while kill -0 "$pid" 2>/dev/null; do
    sum=0; kids=$pid
    while [ -n "$kids" ]; do
      local next=""
      for p in $kids; do
        r=$(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status" 2>/dev/null || true)
        sum=$((sum + ${r:-0}))
        next="$next $(cat /proc/"$p"/task/*/children 2>/dev/null || true)"
      done
      kids=$(echo $next)
    done
    [ "$sum" -gt "$peak" ] && peak=$sum
    sleep 0.1
  done
  wait "$pid" || die "$* failed"
  echo "$peak"
}

# reelay's wall time outside its ffmpeg run (probes, planning, summary).
summary_overhead_secs() {
  awk -F: '/"transcode_secs"/ { t = $2 + 0 } /"elapsed_secs"/ { e = $2 + 0 } END { if (e > 0) printf "%.3f", e - t }' "$1/summary.json"
}

summary_rss_kb() {
  grep -o '"reelay_peak_rss_kb"[[:space:]]*:[[:space:]]*[0-9]*' "$1/summary.json" | grep -o '[0-9]*$' || true
}

echo "==> machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM"
echo "==> $(ffmpeg -version | head -n1)"
echo "==> reelay: $REELAY (${REELAY_BIN:+given with REELAY_BIN}${REELAY_BIN:-$PROFILE build}); $RUNS rounds per master; cases $CASES"

declare -A MED RSS TREE OVER
for secs in $DURATIONS; do
  stills_params "$secs"
  m=$BENCH_DIR/master-${secs}s.mp4
  make_master "$secs" "$m"
  run=$BENCH_DIR/run-${secs}s
  mkdir -p "$run"
  "$REELAY" transcode "$m" --profile olv --out "$run/a" --print-args > "$run/reelay-args.json" \
    || die "reelay transcode --print-args failed"
  compare_argv "$run/reelay-args.json" "$m" "$secs" "$run/a" "$run/b"

  echo "==> ${secs} s master: checking that (b) writes what (a) writes"
  fresh "$run/a"; run_a "$m" "$secs" "$run/a"
  fresh "$run/b"; run_b "$m" "$secs" "$run/b"
  check_equivalent "$run/a" "$run/b"

  times_a=""; times_b=""; times_c=""; times_d=""; times_e=""; rss=""; over=""
  read -r -a cases <<< "$CASES"
  for ((r = 1; r <= RUNS; r++)); do
    # Rotate the order each round so no case always runs first (caches, heat).
    order=""
    for ((i = 0; i < ${#cases[@]}; i++)); do order="$order ${cases[$(((i + r - 1) % ${#cases[@]}))]}"; done
    line="   round $r/$RUNS:"
    for k in $order; do
      fresh "$run/$k"
      t0=$(now); "run_$k" "$m" "$secs" "$run/$k"; t1=$(now)
      t=$(elapsed "$t0" "$t1")
      # (e) is the service's own arrival-to-published time, not the PUT and polling around it.
      [ "$k" = e ] && t=$(cat "$run/e/e.secs")
      eval "times_$k=\"\$times_$k $t\""
      line="$line $k=${t}s"
      if [ "$k" = a ]; then
        kb=$(summary_rss_kb "$run/a"); [ -n "$kb" ] && rss="$rss $kb"
        over="$over $(summary_overhead_secs "$run/a")"
      fi
    done
    echo "$line (load average $(cut -d' ' -f1-3 /proc/loadavg))"
  done
  OVER[$secs]=$(echo "$over" | median)
  MED[$secs,a]=$(echo "$times_a" | median)
  MED[$secs,b]=$(echo "$times_b" | median)
  MED[$secs,c]=$(echo "$times_c" | median)
  MED[$secs,d]=$(echo "$times_d" | median)
  MED[$secs,e]=$(echo "$times_e" | median)
  RSS[$secs]=$(echo "$rss" | tr ' ' '\n' | grep -v '^$' | sort -n | tail -n1)
  # One extra, untimed run of (a): peak RSS of reelay + ffmpeg together.
  fresh "$run/a"
  TREE[$secs]=$(tree_peak_rss_kb run_a "$m" "$secs" "$run/a")
done

ratio() { awk -v x="$1" -v y="$2" 'BEGIN { if (x > 0 && y > 0) printf "%.3f", x / y; else print "nan" }'; }
verdict() { awk -v v="$1" -v op="$2" -v g="$3" 'BEGIN { if (v == "nan") { print "not-measured"; exit } ok = (op == "<=") ? (v <= g) : (v >= g); print (ok ? "meets" : "MISSES") }'; }
stop_service

# Loopback decoders (ffmpeg 7+) would let the transcode measure its own
# renditions; without them QC keeps one separate quality pass.
FF_MAJOR=$(ffmpeg -hide_banner -version | head -n1 | awk '{ v = $3; sub(/^n/, "", v); split(v, p, "."); print p[1] + 0 }')
if [ "${FF_MAJOR:-0}" -ge 7 ]; then DB_GOAL=1.15; LOOPBACK=yes; else DB_GOAL=1.35; LOOPBACK=no; fi

echo
echo "Results: median wall time of $RUNS alternating rounds ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores)"
printf '%-7s %9s %9s %9s %9s %9s %7s %7s %7s %7s %12s %13s\n' master "a reelay" "b 1 cmd" "c per-out" "d process" "e service" "a/b" "c/a" "d/b" "e/b" "reelay RSS" "a tree RSS"
for secs in $DURATIONS; do
  ab=$(ratio "${MED[$secs,a]}" "${MED[$secs,b]}")
  ca=$(ratio "${MED[$secs,c]}" "${MED[$secs,a]}")
  db=$(ratio "${MED[$secs,d]}" "${MED[$secs,b]}")
  eb=$(ratio "${MED[$secs,e]}" "${MED[$secs,b]}")
  rss_mb=$(awk -v k="${RSS[$secs]:-0}" 'BEGIN { printf "%.1f MB", k / 1024 }')
  tree_mb=$(awk -v k="${TREE[$secs]:-0}" 'BEGIN { printf "%.1f MB", k / 1024 }')
  printf '%-7s %8ss %8ss %8ss %8ss %8ss %7s %7s %7s %7s %12s %13s\n' "${secs}s" "${MED[$secs,a]}" "${MED[$secs,b]}" "${MED[$secs,c]}" "${MED[$secs,d]}" "${MED[$secs,e]}" "$ab" "$ca" "$db" "$eb" "$rss_mb" "$tree_mb"
done
echo
echo "Goals: a/b <= 1.03, c/a >= 1.3, d/b <= $DB_GOAL (loopback decoders: $LOOPBACK), e/b <= 1.5,"
echo "reelay's own peak RSS <= 150 MB on the 15 s master."
echo "(reelay RSS: VmHWM of the reelay process from summary.json, the largest of its timed runs;"
echo " a tree RSS: reelay + ffmpeg VmRSS summed, sampled every 0.1 s in one extra untimed run;"
echo " e: arrival to published from the asset's history, whose times are whole seconds)"
for secs in $DURATIONS; do
  echo "reelay outside its ffmpeg run (${secs}s master, median; summary.json elapsed - transcode): ${OVER[$secs]:-?} s"
done
echo
for secs in $DURATIONS; do
  ab=$(ratio "${MED[$secs,a]}" "${MED[$secs,b]}")
  ca=$(ratio "${MED[$secs,c]}" "${MED[$secs,a]}")
  db=$(ratio "${MED[$secs,d]}" "${MED[$secs,b]}")
  eb=$(ratio "${MED[$secs,e]}" "${MED[$secs,b]}")
  for k in $CASES; do
    echo "BENCH master=${secs}s metric=median_wall_secs case=$k value=${MED[$secs,$k]} runs=$RUNS"
  done
  echo "BENCH master=${secs}s metric=ratio_a_over_b value=$ab goal<=1.03 $(verdict "$ab" "<=" 1.03)"
  echo "BENCH master=${secs}s metric=ratio_c_over_a value=$ca goal>=1.3 $(verdict "$ca" ">=" 1.3)"
  echo "BENCH master=${secs}s metric=ratio_d_over_b value=$db goal<=$DB_GOAL loopback=$LOOPBACK $(verdict "$db" "<=" "$DB_GOAL")"
  echo "BENCH master=${secs}s metric=ratio_e_over_b value=$eb goal<=1.5 $(verdict "$eb" "<=" 1.5)"
  echo "BENCH master=${secs}s metric=reelay_peak_rss_kb value=${RSS[$secs]:-unknown}$([ "$secs" = 15 ] && echo " goal<=153600 $(verdict "${RSS[$secs]:-999999999}" "<=" 153600)")"
  echo "BENCH master=${secs}s metric=tree_peak_rss_kb value=${TREE[$secs]:-unknown}"
  echo "BENCH master=${secs}s metric=reelay_outside_ffmpeg_secs value=${OVER[$secs]:-unknown} runs=$RUNS"
done
