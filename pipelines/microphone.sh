#!/bin/sh
# microphone.sh — talk to an OpenAI Realtime model with a headset: the microphone into the session,
# the model's voice to the speakers.
#
#   SOURCE ! audioconvert ! audioresample ! S16LE/24 kHz/mono ! queue ! openairealtimesink session=…
#   openairealtimesrc session=… ! audioconvert ! audioresample ! queue ! SINK
#
# Use a headset: with speakers, the microphone hears the model and its turn detection interrupts the
# model (echo; see docs/openai-realtime.md §5.4). Stop with Ctrl-C (gst-launch -e: clean EOS).
#
# Environment [default]:
#   OPENAI_REALTIME_URL, OPENAI_API_KEY, OPENAI_REALTIME_MODEL, OPENAI_REALTIME_VOICE, INSTRUCTIONS,
#   GREETING, SESSION [microphone], EXTRA_PROPS, GST_LAUNCH: as in wav-to-model.sh
#   SOURCE                 capture part of the pipeline, gst-launch syntax [autoaudiosrc]
#   SINK                   playback part of the pipeline, gst-launch syntax [autoaudiosink]
#                          (e.g. SOURCE="pulsesrc device=…" or, without a sound card,
#                          SOURCE="audiotestsrc is-live=true wave=ticks" SINK="fakesink")
#   SECONDS / DURATION     stop after this many seconds (as Ctrl-C would) [0: run until Ctrl-C]
set -eu
# shellcheck source=pipelines/common.sh
. "$(dirname "$0")/common.sh"

source_part=${SOURCE:-autoaudiosrc}
sink_part=${SINK:-autoaudiosink}
secs=$(rt_seconds 0)
rt_props microphone

# SOURCE and SINK are pipeline fragments: split into words on purpose.
eval "set -- $GST_LAUNCH -e \
  $source_part ! audioconvert ! audioresample ! $RT_CAPS ! queue ! openairealtimesink $RT_PROPS \
  openairealtimesrc $RT_PROPS ! audioconvert ! audioresample ! queue ! $sink_part"
if [ "$secs" -gt 0 ]; then
  # One SIGINT after SECONDS: gst-launch -e then sends EOS through the pipeline and exits when it
  # arrives (files written by SINK are finalised). Exactly one: a second SIGINT kills gst-launch
  # before the EOS (coreutils `timeout` signals the child and then its process group, so it sends
  # two). This shell ignores SIGINT, so a Ctrl-C from the terminal reaches gst-launch alone.
  trap '' INT
  "$@" &
  pid=$!
  ( sleep "$secs"; kill -INT "$pid" 2>/dev/null ) </dev/null >/dev/null 2>&1 &
  timer=$!
  status=0
  wait "$pid" || status=$?
  kill "$timer" 2>/dev/null || true
  exit "$status"
fi
exec "$@"
