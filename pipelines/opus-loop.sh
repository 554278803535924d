#!/bin/sh
# opus-loop.sh — the audio path of a phone call, without WebRTC: both directions go through Opus at
# 20 kbit/s (what WhatsApp negotiates: maxaveragebitrate=20000), so you hear what a caller would.
#
#   filesrc INPUT_WAV ! wavparse ! audioconvert ! audioresample ! 48 kHz mono ! opusenc ! opusdec
#       ! audioconvert ! audioresample ! S16LE/24 kHz/mono ! clocksync ! openairealtimesink session=…
#   openairealtimesrc session=… num-buffers=SECONDS×50 ! audioresample ! 48 kHz ! opusenc ! opusdec
#       ! audioconvert ! audioresample ! S16LE/24 kHz/mono ! wavenc ! filesink OUTPUT_WAV
#
# Environment [default]: as wav-to-model.sh (INPUT_WAV [input.wav], OUTPUT_WAV [output.wav],
# SECONDS / DURATION [10], SESSION [opus-loop], …), plus
#   OPUS_BITRATE           bit rate of both encoders, bit/s [20000]
set -eu
# shellcheck source=pipelines/common.sh
. "$(dirname "$0")/common.sh"

in=${INPUT_WAV:-input.wav}
out=${OUTPUT_WAV:-output.wav}
secs=$(rt_seconds 10)
bitrate=${OPUS_BITRATE:-20000}
rt_need_file "$in" INPUT_WAV
rt_props opus-loop
opus="opusenc bitrate=$bitrate audio-type=voice ! opusdec"

eval "set -- $GST_LAUNCH -e \
  filesrc location=$(q "$in") ! wavparse ! audioconvert ! audioresample ! audio/x-raw,rate=48000,channels=1 \
    ! $opus ! audioconvert ! audioresample ! $RT_CAPS ! clocksync ! openairealtimesink $RT_PROPS \
  openairealtimesrc $RT_PROPS num-buffers=$((secs * 50)) ! audioresample ! audio/x-raw,rate=48000 \
    ! $opus ! audioconvert ! audioresample ! $RT_CAPS ! wavenc ! filesink location=$(q "$out")"
exec "$@"
