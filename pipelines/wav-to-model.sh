#!/bin/sh
# wav-to-model.sh — say a WAV file to an OpenAI Realtime model and record what it says back.
#
#   filesrc INPUT_WAV ! wavparse ! audioconvert ! audioresample ! S16LE/24 kHz/mono ! clocksync
#       ! openairealtimesink session=…
#   openairealtimesrc session=… num-buffers=SECONDS×50 ! wavenc ! filesink OUTPUT_WAV
#
# The file is played into the session in real time (clocksync), as a caller would speak it; end the
# file with a second or so of silence so that the server's turn detection ends the turn and the model
# answers. The recording is the src's output: live, 20 ms buffers, silence whenever the model is
# quiet, for exactly SECONDS seconds.
#
# Environment [default]:
#   OPENAI_REALTIME_URL    WebSocket URL [wss://api.openai.com/v1/realtime]
#   OPENAI_API_KEY         API key [unset: no Authorization header, e.g. for the fake server]
#   OPENAI_REALTIME_MODEL  model [gpt-realtime]
#   OPENAI_REALTIME_VOICE  voice [marin]
#   INSTRUCTIONS           system instructions [server default]
#   GREETING               text the model says first [none]
#   INPUT_WAV              what the caller says; any WAV (it is converted) [input.wav]
#   OUTPUT_WAV             where the model's voice is written (S16LE, 24 kHz, mono) [output.wav]
#   SECONDS / DURATION     length of the recording in seconds [10]
#   REALTIME_INPUT         1: play the file at real-time pace; 0: send it as fast as possible [1]
#   SESSION                session name shared by the sink and the src [wav-to-model]
#   EXTRA_PROPS            more properties for both elements (gst-launch syntax)
#   GST_LAUNCH             the gst-launch binary [gst-launch-1.0]
# The plugin must be findable: GST_PLUGIN_PATH=<build>/plugins/openairealtime (see README.md).
set -eu
# shellcheck source=pipelines/common.sh
. "$(dirname "$0")/common.sh"

in=${INPUT_WAV:-input.wav}
out=${OUTPUT_WAV:-output.wav}
secs=$(rt_seconds 10)
rt_need_file "$in" INPUT_WAV
rt_props wav-to-model
pace=
if [ "${REALTIME_INPUT:-1}" != 0 ]; then pace='! clocksync'; fi

eval "set -- $GST_LAUNCH -e \
  filesrc location=$(q "$in") ! wavparse ! audioconvert ! audioresample ! $RT_CAPS $pace \
    ! openairealtimesink $RT_PROPS \
  openairealtimesrc $RT_PROPS num-buffers=$((secs * 50)) ! wavenc ! filesink location=$(q "$out")"
exec "$@"
