#!/usr/bin/env bash
# Latency: what voicebridge adds per direction, barge-in, call setup and first model audio, with
# marked audio (see the top of bench/latency.cpp for the exact definitions).
#
#   bench/latency.sh [bench-latency options]   e.g. bench/latency.sh --calls 4 --marks-s 45
#
# bench-latency starts voicebridge itself (as a child, logging JSON) against its in-process fake
# Realtime server, and places the calls. Prints the distributions (p50/p90/p99/max) and one JSON line;
# everything is kept in $BENCH_OUT (default: a new /tmp/vb-latency.* directory). Extra voicebridge
# options: --vb-arg=--jitter-latency-ms=40 (repeatable). Takes about 2 minutes with the defaults.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD_DIR:-$ROOT/build}
BIN=$BUILD/bench/bench-latency
for b in "$BUILD/app/voicebridge" "$BIN"; do
  [[ -x $b ]] || { echo "$0: $b is missing: build first (meson compile -C $BUILD)" >&2; exit 2; }
done
OUT=${BENCH_OUT:-$(mktemp -d /tmp/vb-latency.XXXXXX)}
mkdir -p "$OUT"

# The harness finds voicebridge through VOICEBRIDGE_BUILD_ROOT and kills it if we die.
status=0
VOICEBRIDGE_BUILD_ROOT=$BUILD timeout 600 "$BIN" "$@" >"$OUT/result.json" 2>"$OUT/latency.log" || status=$?
cat "$OUT/latency.log" >&2
echo "files: $OUT" >&2
tail -n1 "$OUT/result.json"
exit "$status"
