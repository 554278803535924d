#!/usr/bin/env bash
# Send path: how long voicebridge's send chain (openairealtimesrc's timing and latency report,
# audioresample, opusenc, webrtcbin's clocksync) holds model audio, as built and with the
# alternatives, in an isolated pipeline (see bench/sendpath.cpp). About 45 seconds.
#
#   bench/sendpath.sh
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BUILD_DIR:-$ROOT/build}/bench/bench-sendpath
[[ -x $BIN ]] || { echo "$0: $BIN is missing: build first" >&2; exit 2; }
exec timeout 120 "$BIN" "$@"
