# Shared by the pipeline scripts in this directory (sourced, not run). POSIX sh.
#
# Reads the session settings from the environment and sets $RT_PROPS: the properties that both
# openairealtimesink and openairealtimesrc get (the same session name, so they share one connection;
# the same settings on both, so it does not matter which element starts first), each value quoted
# for `eval`.

# q VALUE: VALUE as one single-quoted shell word.
q() {
  printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"
}

# Seconds to run: DURATION, or SECONDS (bash treats SECONDS specially: under bash an unset SECONDS
# reads as the shell's age, hence the fallback for 0), or the default given as $1.
rt_seconds() {
  # shellcheck disable=SC3028  # SECONDS is read from the environment on purpose (see above)
  _s=${DURATION:-${SECONDS:-}}
  case "$_s" in
    ''|0|*[!0-9]*) _s=$1 ;;
  esac
  printf '%s' "$_s"
}

rt_props() {
  RT_URL=${OPENAI_REALTIME_URL:-wss://api.openai.com/v1/realtime}
  RT_PROPS="session=$(q "${SESSION:-$1}") url=$(q "$RT_URL")"
  RT_PROPS="$RT_PROPS model=$(q "${OPENAI_REALTIME_MODEL:-gpt-realtime}")"
  RT_PROPS="$RT_PROPS voice=$(q "${OPENAI_REALTIME_VOICE:-marin}")"
  # No key: no Authorization header (the fake server, or a proxy that adds the key).
  if [ -n "${OPENAI_API_KEY:-}" ]; then RT_PROPS="$RT_PROPS api-key=$(q "$OPENAI_API_KEY")"; fi
  if [ -n "${INSTRUCTIONS:-}" ]; then RT_PROPS="$RT_PROPS instructions=$(q "$INSTRUCTIONS")"; fi
  if [ -n "${GREETING:-}" ]; then RT_PROPS="$RT_PROPS greeting=$(q "$GREETING")"; fi
  # Free-form extra properties in gst-launch syntax, e.g. EXTRA_PROPS="silence-duration-ms=300 vad-threshold=0.6".
  if [ -n "${EXTRA_PROPS:-}" ]; then RT_PROPS="$RT_PROPS $EXTRA_PROPS"; fi
}

# The audio format both elements speak (CONTRACT.md §7).
# shellcheck disable=SC2034  # used by the scripts that source this file
RT_CAPS='audio/x-raw,format=S16LE,rate=24000,channels=1,layout=interleaved'

GST_LAUNCH=${GST_LAUNCH:-gst-launch-1.0}

rt_need_file() {
  if [ ! -r "$1" ]; then
    echo "$(basename "$0"): cannot read $2 '$1'" >&2
    exit 2
  fi
}
