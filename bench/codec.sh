#!/usr/bin/env bash
# Codec: CPU per 20 ms frame of each piece of the per-call audio path (libopus encode/decode at the
# settings in use, the multistream API GStreamer uses against the single-stream one, opusenc/opusdec
# elements, audioconvert/audioresample). Prints one line per piece and a JSON line.
#
#   bench/codec.sh [--seconds S]      default 60 s of audio per piece; takes a few seconds
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BUILD_DIR:-$ROOT/build}/bench/bench-codec
[[ -x $BIN ]] || { echo "$0: $BIN is missing: build first" >&2; exit 2; }
exec timeout 300 "$BIN" "$@"
