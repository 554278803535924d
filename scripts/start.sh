#!/usr/bin/env bash
# Installs, builds and starts the voicebridge service in the foreground. Without OPENAI_API_KEY (and
# OPENAI_REALTIME_URL) calls are answered by the built-in local agent. Any arguments go to
# voicebridge, e.g. scripts/start.sh --listen 0.0.0.0:8080 --log-format json
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
exec build/app/voicebridge "$@"
