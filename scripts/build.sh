#!/usr/bin/env bash
# Installs the Debian packages voicebridge needs, then configures and builds it in ./build.
# Usage: scripts/build.sh [extra meson setup options]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
if [ ! -f build/build.ninja ]; then
  meson setup build "$@"
fi
ninja -C build
