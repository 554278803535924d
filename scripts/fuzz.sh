#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/, meson option fuzzing) with clang in ./build-fuzz and runs each
# for SECONDS on its corpus, one after another. Exits non-zero if any target crashed, leaked, hit
# undefined behaviour, ran out of memory or hung on one input; the input is then saved under
# build-fuzz/artifacts/TARGET/ and the report is in build-fuzz/fuzz-logs/TARGET.log.
#
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
#   SECONDS  per target (default 600)
#   TARGET   realtime-event | sdp-offer | whatsapp-webhook (default: all three)
#   -h, --help  this text
# Environment: FUZZ_ARGS  extra libFuzzer flags for every target (e.g. "-jobs=2 -workers=2").
# Reproduce a saved crash: build-fuzz/fuzz/fuzz-TARGET build-fuzz/artifacts/TARGET/crash-…
#
# Corpora: build-fuzz/corpus/TARGET/ grows from run to run (libFuzzer adds the inputs that reach
# new code; after a clean run it is merged down to a minimal set), and is topped up at each run
# with the seeds: the real WhatsApp fixtures
# (tests/fixtures/whatsapp: *.sdp and the SDPs inside the webhooks for sdp-offer, *.json for
# whatsapp-webhook) and the committed seeds in fuzz/corpus/TARGET/ (the Realtime events of
# docs/openai-realtime.md §4). It lives in the build directory so that the thousands of generated
# inputs never show up in git.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }

seconds=600
targets=()
for arg in "$@"; do
  case "$arg" in
    -h|--help) usage; exit 0 ;;
    ''|*[!0-9]*)
      case "$arg" in
        realtime-event|sdp-offer|whatsapp-webhook) targets+=("$arg") ;;
        *) echo "fuzz.sh: unknown target or bad SECONDS: $arg" >&2; usage >&2; exit 2 ;;
      esac ;;
    *) seconds=$arg ;;
  esac
done
if [ ${#targets[@]} -eq 0 ]; then
  targets=(realtime-event sdp-offer whatsapp-webhook)
fi

# Longest input per target: well above the real inputs (events up to a few KiB of audio, offers
# ~1 KiB, webhooks ~3 KiB), small enough that libFuzzer spends its time on structure, not bulk.
declare -A max_len=([realtime-event]=16384 [sdp-offer]=8192 [whatsapp-webhook]=16384)

bash scripts/install-deps.sh --fuzz

# Debian's clang-14 package installs clang-14/clang++-14; the unversioned names come with "clang".
if command -v clang++-14 >/dev/null; then cc=clang-14 cxx=clang++-14; else cc=clang cxx=clang++; fi
build="build-fuzz"
if [ ! -f $build/build.ninja ]; then
  CC=$cc CXX=$cxx meson setup $build -Dfuzzing=true -Dbuildtype=debugoptimized
else
  meson configure $build -Dfuzzing=true >/dev/null
fi
# Only the fuzz targets: they compile their unit under test themselves (fuzz/meson.build), so a
# fuzz run does not need (or wait for) the rest of the project.
ninja -C $build "${targets[@]/#/fuzz/fuzz-}"

# copy_new DIR FILE…: copies the files that DIR does not hold yet (what the corpus holds is kept;
# not `cp -n`, whose exit status for skipped files differs between coreutils versions).
copy_new() {
  local dir=$1 f
  shift
  for f in "$@"; do
    if [ ! -e "$dir/$(basename "$f")" ]; then cp "$f" "$dir"/; fi
  done
}

seed() {
  local target=$1 dir=$build/corpus/$1
  mkdir -p "$dir"
  if [ -d "fuzz/corpus/$target" ]; then copy_new "$dir" fuzz/corpus/"$target"/*; fi
  case "$target" in
    sdp-offer)
      copy_new "$dir" tests/fixtures/whatsapp/*.sdp
      # The SDPs carried inside the webhook fixtures (session.sdp), exactly as Meta sends them.
      python3 - "$dir" tests/fixtures/whatsapp/*.json <<'PY'
import json, os, sys
out = sys.argv[1]
for path in sys.argv[2:]:
    for e, entry in enumerate(json.load(open(path)).get("entry", [])):
        for c, change in enumerate(entry.get("changes", [])):
            for k, call in enumerate(change.get("value", {}).get("calls", [])):
                sdp = call.get("session", {}).get("sdp")
                if sdp:
                    name = "%s-%d-%d-%d.sdp" % (os.path.basename(path)[:-5], e, c, k)
                    dest = os.path.join(out, name)
                    if not os.path.exists(dest):
                        open(dest, "w", newline="").write(sdp)
PY
      ;;
    whatsapp-webhook) copy_new "$dir" tests/fixtures/whatsapp/*.json ;;
  esac
}

# halt_on_error: UB is a crash (the targets are also built without UB recovery). Leaks are found by
# libFuzzer's own leak check (ASan's detect_leaks, on by default).
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
if symbolizer=$(command -v llvm-symbolizer-14); then export ASAN_SYMBOLIZER_PATH=$symbolizer; fi

mkdir -p $build/fuzz-logs
failed=()
for target in "${targets[@]}"; do
  seed "$target"
  mkdir -p $build/artifacts/"$target"
  log=$build/fuzz-logs/$target.log
  echo "fuzz.sh: fuzz-$target for ${seconds}s (corpus $build/corpus/$target: $(find $build/corpus/"$target" -type f | wc -l) inputs)"
  status=0
  started=$(date +%s)
  # -timeout: one input taking 10 s is a hang (real inputs take microseconds).
  # shellcheck disable=SC2086
  $build/fuzz/fuzz-"$target" \
    -max_total_time="$seconds" -max_len="${max_len[$target]}" -timeout=10 -rss_limit_mb=2048 \
    -dict=fuzz/"$target".dict -artifact_prefix=$build/artifacts/"$target"/ -print_final_stats=1 \
    ${FUZZ_ARGS:-} $build/corpus/"$target" >"$log" 2>&1 || status=$?

  # The last status line ("#N DONE cov: C ft: F corp: …  exec/s: E rss: …") and the final stats.
  python3 - "$target" "$status" "$log" "$(($(date +%s) - started))" <<'PY'
import re, sys
target, status, log, elapsed = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
text = open(log, errors="replace").read()
status_lines = [l for l in text.splitlines() if re.match(r"#\d+\s", l)]
last = status_lines[-1] if status_lines else ""
def field(pattern, where, default="?"):
    m = re.search(pattern, where)
    return m.group(1) if m else default
runs = field(r"stat::number_of_executed_units:\s*(\d+)", text, field(r"#(\d+)", last))
execs = field(r"stat::average_exec_per_sec:\s*(\d+)", text, field(r"exec/s: (\d+)", last))
secs = field(r"Done \d+ runs in (\d+) second", text, elapsed)  # no "Done" line after a crash
cov, ft, corp = field(r"cov: (\d+)", last), field(r"ft: (\d+)", last), field(r"corp: (\S+)", last)
verdict = "OK" if status == 0 else "FAILED (exit %d)" % status
print(f"fuzz-{target}: {runs} runs in {secs} s, {execs} exec/s, cov {cov}, ft {ft}, corpus {corp}, {verdict}")
print(f"  final: {last}")
if status != 0:
    for l in text.splitlines():
        if re.search(r"ERROR: |SUMMARY: |Test unit written to|fuzz-[a-z-]+: |^\s+#[0-9] ", l):
            print("  " + l)
PY
  if [ "$status" -ne 0 ]; then
    failed+=("$target")
  else
    # Keep the corpus minimal: libFuzzer adds a file for every improvement and deletes none, so
    # merge it into the smallest set with the same coverage before the next run.
    corpus=$build/corpus/$target
    rm -rf "$corpus.min" && mkdir "$corpus.min"
    if $build/fuzz/fuzz-"$target" -merge=1 -max_len="${max_len[$target]}" "$corpus.min" "$corpus" >>"$log" 2>&1; then
      rm -rf "$corpus" && mv "$corpus.min" "$corpus"
    else
      rm -rf "$corpus.min"
    fi
  fi
done

if [ ${#failed[@]} -ne 0 ]; then
  echo "fuzz.sh: FAILED: ${failed[*]} (logs in $build/fuzz-logs/, inputs in $build/artifacts/)" >&2
  exit 1
fi
echo "fuzz.sh: no finding in ${targets[*]} (${seconds} s each)"
