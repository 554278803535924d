#!/usr/bin/env bash
# Installs everything voicebridge needs to build, run and test, from Debian bookworm packages only.
# Used by the README's commands, .ci/run and docker/Dockerfile, so all three install the same set.
# Usage: scripts/install-deps.sh [--fuzz]
#   --fuzz  also clang with libFuzzer and the sanitizer runtimes, and llvm-symbolizer, for
#           scripts/fuzz.sh (kept out of the default set: the image and CI do not need a second
#           compiler). scripts/sanitize.sh needs nothing more: g++'s libasan/libubsan come with it.
set -euo pipefail

packages=(
  # build
  build-essential meson ninja-build pkg-config
  libglib2.0-dev libsoup-3.0-dev libjson-glib-dev libopus-dev libnice-dev
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstreamer-plugins-bad1.0-dev
  # run: webrtcbin (bad), libnice transport, rtp/opus/resample, gst-launch and gst-inspect
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-nice gstreamer1.0-tools
  # tests and tools: curl for the walkthrough, graphviz to render graph dumps
  curl ca-certificates python3 graphviz
)
if [ "${1:-}" = "--fuzz" ]; then
  packages+=(clang-14 libclang-rt-14-dev llvm-14)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages already installed"
  exit 0
fi

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
