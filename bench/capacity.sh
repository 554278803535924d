#!/usr/bin/env bash
# Capacity: N concurrent calls through one voicebridge process for a steady window of T seconds.
#
#   bench/capacity.sh N [T]          e.g. bench/capacity.sh 20 60
#
# Starts three processes on loopback: the bench's cheap fake Realtime server (bench-realtime),
# voicebridge pointed at it, and the caller swarm (bench-capacity), which places the N calls,
# measures the window (CPU-seconds, RSS and threads from /proc, audio health) and reports. Prints
# one result line (and the swarm's details on stderr); everything is kept in $BENCH_OUT (default: a
# new /tmp/vb-capacity.* directory): vb.log, fake.out, swarm.log, result.json.
#
# Environment: BUILD_DIR (default ./build), VB_ARGS (extra voicebridge options, e.g.
# "--opus-complexity 3"), FAKE_ARGS (extra bench-realtime options), SWARM_ARGS (extra bench-capacity
# options, e.g. "--warmup 12"), BENCH_OUT; PERF_SECONDS (>0: perf record voicebridge that long
# inside the window, as bench/profile.sh does).
set -euo pipefail

usage() { echo "usage: $0 N [T_SECONDS]" >&2; exit 2; }
[[ $# -ge 1 && $# -le 2 ]] || usage
N=$1
T=${2:-60}
[[ $N =~ ^[0-9]+$ && $N -ge 1 && $N -le 500 ]] || usage
[[ $T =~ ^[0-9]+$ && $T -ge 5 && $T -le 600 ]] || usage

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD_DIR:-$ROOT/build}
VB=$BUILD/app/voicebridge
FAKE=$BUILD/bench/bench-realtime
SWARM=$BUILD/bench/bench-capacity
for b in "$VB" "$FAKE" "$SWARM"; do
  [[ -x $b ]] || { echo "$0: $b is missing: build first (meson compile -C $BUILD)" >&2; exit 2; }
done
OUT=${BENCH_OUT:-$(mktemp -d /tmp/vb-capacity.XXXXXX)}
mkdir -p "$OUT"

FAKE_PID="" VB_PID="" SWARM_PID=""
stop() {  # SIGTERM, then SIGKILL after 10 s: nothing outlives the run
  local pid=$1
  [[ -n $pid ]] || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() { stop "$SWARM_PID"; stop "$VB_PID"; stop "$FAKE_PID"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# Waits (bounded) until FILE has a line matching PATTERN; prints that line.
wait_line() {
  local file=$1 pattern=$2 pid=$3
  for _ in $(seq 150); do
    if grep -m1 -E "$pattern" "$file" 2>/dev/null; then return 0; fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "$0: no '$pattern' in $file" >&2
  cat "$file" >&2
  return 1
}

# shellcheck disable=SC2086  # the *_ARGS are word lists on purpose
"$FAKE" ${FAKE_ARGS:-} >"$OUT/fake.out" 2>"$OUT/fake.err" &
FAKE_PID=$!
URL=$(wait_line "$OUT/fake.out" 'listening on' "$FAKE_PID" | sed 's/.*listening on //')

# shellcheck disable=SC2086
"$VB" --listen 127.0.0.1:0 --ice-addresses 127.0.0.1 --realtime-url "$URL" --log-format json \
  --max-calls $((N + 10)) ${VB_ARGS:-} 2>"$OUT/vb.log" &
VB_PID=$!
VB_URL=$(wait_line "$OUT/vb.log" '"SERVICE_LISTENING"' "$VB_PID" | sed 's/.*"listen":"\([^"]*\)".*/\1/')

# Ramp, warm-up and teardown come on top of T; the swarm has its own bounded waits.
# shellcheck disable=SC2086
timeout $((T + 120 + N)) "$SWARM" --url "$VB_URL" --vb-pid "$VB_PID" --fake-pid "$FAKE_PID" \
  --calls "$N" --duration "$T" ${SWARM_ARGS:-} >"$OUT/result.json" 2>"$OUT/swarm.log" &
SWARM_PID=$!
if [[ ${PERF_SECONDS:-0} -gt 0 ]]; then
  # bench/profile.sh: sample voicebridge inside the steady window (the swarm's default 8 s warm-up
  # starts when it logs that the calls are connected). perf's own cost lands on voicebridge, so a
  # profiled run's CPU figures are not capacity figures.
  if wait_line "$OUT/swarm.log" 'calls connected' "$SWARM_PID" >/dev/null; then
    sleep "${PERF_DELAY:-9}"
    perf record -e cpu-clock -F "${PERF_FREQ:-499}" -g -p "$VB_PID" -o "$OUT/perf.data" -- sleep "$PERF_SECONDS" \
      >"$OUT/perf-record.log" 2>&1 || echo "$0: perf record failed (see $OUT/perf-record.log)" >&2
  fi
fi
SWARM_STATUS=0
wait "$SWARM_PID" || SWARM_STATUS=$?
SWARM_PID=""
stop "$VB_PID"
VB_PID=""
stop "$FAKE_PID"
FAKE_PID=""

cat "$OUT/swarm.log" >&2
warnings=$(grep -c -E '"level":"(warning|error|critical)"' "$OUT/vb.log" || true)
echo "voicebridge warnings/errors in its log: $warnings" >&2
echo "fake: $(tail -n1 "$OUT/fake.out")" >&2
echo "files: $OUT" >&2
python3 - "$OUT/result.json" "$N" "$T" <<'EOF'
import json, sys
r = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
print(("N=%s T=%ss  voicebridge %.2f %%core/call, %+.2f MiB/call, %+.1f threads/call | "
       "underruns %d, vb-lost %d, to-callers lost %d late>60ms %d, gaps heard %d (%d decoding) | "
       "fake %.1f %%, callers %.1f %%, machine %.0f %% of 200 %% (others %.0f %%), load %s -> %s%s") % (
    sys.argv[2], sys.argv[3], r["vb_cpu_pct_per_call"], r["vb_rss_mib_per_call"], r["vb_threads_per_call"],
    r["underruns"], r["vb_rtp_lost"], r["caller_lost"], r["caller_late60"], r["gaps_heard"], r["decoding_callers"],
    r["fake_cpu_pct"], r["callers_cpu_pct"], r["machine_cpu_pct"], r["others_cpu_pct"], r["load_start"],
    r["load_end"], "" if r["failures"] == 0 and r["connected"] == r["calls"] else
    "  FAILED: %d of %d calls connected" % (r["connected"], r["calls"])))
EOF
exit "$SWARM_STATUS"
