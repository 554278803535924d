#!/usr/bin/env bash
# The largest N this machine hosts: bench/capacity.sh at N = START, 2·START, 4·START… until a run
# fails, then bisection between the last good and the first bad N (to within 10 %, at most 8 runs).
#
#   bench/capacity-max.sh [T [START]]     default: 30 s windows, from N = 10
#
# A run fails when a call does not connect, or voicebridge reports an underrun, or a decoding
# caller hears a gap, or more than 0.5 % of the packets to the callers are lost or later than 60 ms.
# Prints each run's result line and the verdict. Environment as for capacity.sh.
set -euo pipefail
T=${1:-30}
START=${2:-10}
[[ $T =~ ^[0-9]+$ && $START =~ ^[0-9]+$ && $START -ge 1 ]] || { echo "usage: $0 [T [START]]" >&2; exit 2; }
HERE=$(dirname "$0")
ROOT_OUT=${BENCH_OUT:-$(mktemp -d /tmp/vb-capacity-max.XXXXXX)}
mkdir -p "$ROOT_OUT"
runs=0

# run N: 0 when the run is healthy.
run() {
  local n=$1 out=$ROOT_OUT/n$1
  runs=$((runs + 1))
  BENCH_OUT=$out "$HERE/capacity.sh" "$n" "$T" >"$out.txt" 2>"$out.log" || true
  cat "$out.txt"
  python3 - "$out/result.json" <<'EOF'
import json, sys
try:
    r = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
except Exception:
    print("   -> no result"); sys.exit(1)
bad = []
if r["connected"] != r["calls"] or r["failures"]: bad.append("%d/%d connected" % (r["connected"], r["calls"]))
if r["underruns"] > 0: bad.append("%d underruns" % r["underruns"])
if r["gaps_heard"] > 0: bad.append("%d gaps heard" % r["gaps_heard"])
sent = max(r["expected_packets"], 1)
if (r["caller_lost"] + r["caller_late60"]) / sent > 0.005:
    bad.append("%d lost + %d late packets of %d" % (r["caller_lost"], r["caller_late60"], sent))
print("   -> " + ("FAIL: " + ", ".join(bad) if bad else "ok"))
sys.exit(1 if bad else 0)
EOF
}

good=0
bad=0
n=$START
while [[ $runs -lt 8 ]]; do
  if run "$n"; then good=$n; else bad=$n; fi
  if [[ $bad -eq 0 ]]; then
    n=$((n * 2))
  else
    [[ $((bad - good)) -le $(((good + 9) / 10)) || $((bad - good)) -le 1 ]] && break
    n=$(((good + bad) / 2))
  fi
done
if [[ $bad -eq 0 ]]; then
  echo "largest N: at least $good (no failure within $runs runs)"
else
  echo "largest N: $good (N=$bad failed)"
fi
echo "files: $ROOT_OUT"
