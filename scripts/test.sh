#!/usr/bin/env bash
# Installs, builds and runs every test (meson test), then prints one summary line:
# "N passed, N failed". Extra arguments go to meson test (e.g. a test name, or --suite).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
status=0
meson test -C build --print-errorlogs "$@" || status=$?
python3 - build/meson-logs/testlog.json <<'PY'
import json, sys
passed = failed = skipped = 0
for line in open(sys.argv[1]):
    result = json.loads(line).get("result")
    if result in ("OK", "EXPECTEDFAIL"):
        passed += 1
    elif result == "SKIP":
        skipped += 1
    else:
        failed += 1
print(f"{passed} passed, {failed} failed, {skipped} skipped")
PY
exit $status
