#!/usr/bin/env bash
# Profile: voicebridge under `perf record` (software cpu-clock event: this VM has no hardware
# counters) while N calls run (bench/capacity.sh's setup), then its top costs.
#
#   bench/profile.sh [N [SECONDS]]     default: 10 calls, 40 s of samples
#
# Writes $BENCH_OUT/perf.data and the reports perf-symbols.txt (by shared object and symbol),
# perf-dsos.txt (by shared object) and perf-threads.txt (by thread name); prints the tops.
set -euo pipefail
N=${1:-10}
S=${2:-40}
[[ $N =~ ^[0-9]+$ && $N -ge 1 && $N -le 100 && $S =~ ^[0-9]+$ && $S -ge 5 && $S -le 300 ]] || {
  echo "usage: $0 [N [SECONDS]]" >&2
  exit 2
}
command -v perf >/dev/null || { echo "$0: perf is missing (apt-get install linux-perf)" >&2; exit 2; }
OUT=${BENCH_OUT:-$(mktemp -d /tmp/vb-profile.XXXXXX)}
mkdir -p "$OUT"
export BENCH_OUT=$OUT PERF_SECONDS=$S
# The capacity window covers the perf window: 9 s in, S seconds long, plus a margin.
"$(dirname "$0")/capacity.sh" "$N" $((S + 15)) >"$OUT/capacity.txt" || true
[[ -s $OUT/perf.data ]] || { echo "$0: no perf.data (see $OUT)" >&2; exit 1; }
report() {  # perf's table without its comments, blank lines and empty trailing columns
  perf report -i "$OUT/perf.data" --stdio --no-children -g none --percent-limit 0.3 "$@" 2>/dev/null |
    grep -v '^#' | sed -E '/^$/d; s/[[:space:]]+-[[:space:]]+-[[:space:]]*$//; s/[[:space:]]+$//'
}
report --sort dso,symbol >"$OUT/perf-symbols.txt"
report --sort dso >"$OUT/perf-dsos.txt"
report --sort comm >"$OUT/perf-threads.txt"
echo "== by shared object"; head -n 25 "$OUT/perf-dsos.txt"
echo "== by thread"; head -n 25 "$OUT/perf-threads.txt"
echo "== by symbol"; head -n 60 "$OUT/perf-symbols.txt"
echo "files: $OUT"
