#!/usr/bin/env bash
# Builds voicebridge with AddressSanitizer (and LeakSanitizer) plus UndefinedBehaviorSanitizer, using
# g++ and meson's b_sanitize, in ./build-sanitize, and runs the whole meson test suite there. Prints
# the same "N passed, N failed, N skipped" line as scripts/test.sh, then the sanitizer reports, then
# the time taken. Exits non-zero when a test fails or any process reported an error: every report
# (of the test programs and of the voicebridge and voicebridge-call processes they start, which a
# test may kill or whose exit status it may not look at) goes to a file in
# build-sanitize/sanitizer-logs/, emptied at the start of each run. CI runs it after scripts/test.sh
# (.ci/run).
#
# Usage: scripts/sanitize.sh [meson test arguments]
#   e.g. scripts/sanitize.sh --suite pipelines        scripts/sanitize.sh sdp service-api
#   -h, --help  this text
#
# What the environment below is for:
#  - ASan aborts at the first error; LeakSanitizer runs at every process exit, with
#    scripts/sanitize.supp naming leaks of the system libraries (GLib, GStreamer, libsoup, OpenSSL),
#    not of ours; see the file. UBSan stops at the first report, with a stack trace.
#  - fast_unwind_on_malloc=0: the system libraries have no frame pointers, so ASan's fast unwinder
#    stops at g_malloc() and a leak through GLib would show no caller at all (and no suppression
#    could match it). The slow unwinder costs time in malloc-heavy code (DTLS key generation,
#    webrtcbin): on a loaded machine the service's 2 s ICE gathering timeout and the audio timing
#    checks of the load tests can then fail for lack of CPU, not for a bug.
#  - ASAN_OPTIONS, LSAN_OPTIONS and UBSAN_OPTIONS set in the environment replace these defaults.
#  - G_SLICE=always-malloc and G_DEBUG=gc-friendly: GLib memory goes through malloc/free and is
#    cleared when freed, so that ASan sees every block (GLib 2.74 still honours G_SLICE).
#  - Child processes of the tests (voicebridge, voicebridge-call) are built with ASan and inherit
#    this environment. gst-launch-1.0, gst-inspect-1.0 and GStreamer's plugin scanner are not: they
#    dlopen() our ASan-built plugin, and the ASan runtime must be the first library of a process, so
#    they run through wrappers (in build-sanitize/sanitize-bin) that LD_PRELOAD it into them alone.
#  - Instrumented code runs 2–3x slower: meson's timeouts and libcheck's (CK_TIMEOUT_MULTIPLIER)
#    are tripled. Tests that watch a process's RSS also see ASan's quarantine (up to 256 MiB of
#    freed memory held back to catch use-after-free); in this build leaks are LeakSanitizer's job.
#  - VOICEBRIDGE_SANITIZED=1 tells the few tests whose load or measurements assume the normal build
#    (fault-call-churn, service-load) to scale them to this one; each says how, at its top. Every
#    other test runs exactly as in scripts/test.sh.
#  - The build: -O1 (what ASan's authors recommend) and -g1 (line tables and function names: all
#    that symbolized reports need) compile three times faster than meson's default -O2 -g with
#    these sanitizers; no benchmarks and no fuzz targets (-Dbench=false, -Dfuzzing=false).
set -euo pipefail
cd "$(dirname "$0")/.."

for arg in "$@"; do
  case "$arg" in -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;; esac
done

start=$(date +%s)
bash scripts/install-deps.sh

build="build-sanitize"
# Frame pointers: ASan's fast unwinder then gives complete stacks in reports. -O1 -g1, no benchmarks
# (bench/ has no meson tests) and no fuzz targets (clang only; scripts/fuzz.sh): see above. The
# options are applied to an existing build directory too, so that one configured by an older
# version of this script gets them.
options=(-Db_sanitize=address,undefined -Doptimization=1 -Ddebug=true
  "-Dc_args=-fno-omit-frame-pointer -g1" "-Dcpp_args=-fno-omit-frame-pointer -g1"
  -Dbench=false -Dfuzzing=false)
if [ -f $build/build.ninja ]; then
  meson setup --reconfigure $build "${options[@]}"  # (meson configure refuses options it has not seen)
else
  CC=gcc CXX=g++ meson setup $build "${options[@]}"
fi
ninja -C $build
built=$(date +%s)

# Wrappers for the uninstrumented GStreamer tools that load our plugin (see above). libstdc++ is
# preloaded too: these are C programs, and ASan resolves its __cxa_throw interceptor at start-up, so
# without it the first C++ exception in a library loaded later (libproxy throws internally when our
# plugin's WebSocket asks GIO for a proxy) aborts with "CHECK failed … real___cxa_throw". LSan is
# off in them: gst-launch-1.0 and the scanner exit without freeing what they built, by design; leaks
# of our elements are checked in the element tests, which load them into instrumented programs.
libasan=$(readlink -f "$(g++ -print-file-name=libasan.so)")
libstdcxx=$(readlink -f "$(g++ -print-file-name=libstdc++.so)")
wrappers=$PWD/$build/sanitize-bin
mkdir -p "$wrappers"
wrap() {  # wrap NAME REAL_PATH
  cat >"$wrappers/$1" <<EOF
#!/bin/sh
# Generated by scripts/sanitize.sh: runs $2 with the ASan runtime preloaded.
LD_PRELOAD="$libasan $libstdcxx\${LD_PRELOAD:+ \$LD_PRELOAD}" ASAN_OPTIONS="\$ASAN_OPTIONS:detect_leaks=0" exec "$2" "\$@"
EOF
  chmod +x "$wrappers/$1"
}
toolsdir=$(pkg-config --variable=toolsdir gstreamer-1.0)
scannerdir=$(pkg-config --variable=pluginscannerdir gstreamer-1.0)
wrap gst-launch-1.0 "$toolsdir/gst-launch-1.0"
wrap gst-inspect-1.0 "$toolsdir/gst-inspect-1.0"
wrap gst-plugin-scanner "$scannerdir/gst-plugin-scanner"
export PATH=$wrappers:$PATH
export GST_PLUGIN_SCANNER_1_0=$wrappers/gst-plugin-scanner
# A registry built before (by a scanner without the runtime) may have blacklisted the plugin.
rm -f $build/test.registry

# Reports go to files (log_path: one per process, PREFIX.PID), so that none is lost with the output
# of a child process that a test killed or did not look at; last run's reports are removed first.
logs=$PWD/$build/sanitizer-logs
rm -rf "$logs" && mkdir -p "$logs"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:fast_unwind_on_malloc=0:malloc_context_size=16:check_initialization_order=1:strict_init_order=1}:log_path=$logs/asan"
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/scripts/sanitize.supp:print_suppressions=0}
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}:log_path=$logs/ubsan"
export G_SLICE=always-malloc G_DEBUG=gc-friendly
export CK_TIMEOUT_MULTIPLIER=3
export VOICEBRIDGE_SANITIZED=1

status=0
rm -f $build/meson-logs/testlog.json  # the summary below must never count an earlier run's tests
meson test -C $build --no-rebuild --print-errorlogs --timeout-multiplier 3 "$@" || status=$?
end=$(date +%s)

# The same summary as scripts/test.sh, then which tests failed.
python3 - $build/meson-logs/testlog.json <<'PY'
import json, sys
passed = failed = skipped = 0
bad = []
for line in open(sys.argv[1]):
    test = json.loads(line)
    result = test.get("result")
    if result in ("OK", "EXPECTEDFAIL"):
        passed += 1
    elif result == "SKIP":
        skipped += 1
    else:
        failed += 1
        bad.append(f"{test.get('name')} ({result})")
print(f"{passed} passed, {failed} failed, {skipped} skipped")
if bad:
    print("failed under the sanitizers: " + ", ".join(bad))
PY

# Every report ends with a "SUMMARY:" line; a file without one holds only a warning (shown, not
# counted).
reports=0
for f in "$logs"/*; do
  [ -f "$f" ] || continue
  if grep -q '^SUMMARY: ' "$f"; then
    reports=$((reports + 1))
    if [ $reports -le 5 ]; then echo "---- $f"; head -n 60 "$f"; fi
  else
    echo "---- $f (warning only)"; head -n 5 "$f"
  fi
done
echo "sanitizer reports: $reports (in $build/sanitizer-logs/)"
[ $reports -eq 0 ] || status=1
echo "sanitize.sh: build $((built - start)) s, tests $((end - built)) s, total $((end - start)) s"
exit $status
