#!/usr/bin/env bash
# Runs the unit tests (cmocka) and the integration tests (tests/integration/ and tests/reliability/),
# then prints one summary line.
# Usage: tests/run.sh [unit|integration]   (BUILD names the build directory)
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export BUILD
which=${1:-all}
passed=0 failed=0 skipped=0

count() { # reads a test's output, adds up its lines
	local line
	while IFS= read -r line; do
		printf '%s\n' "$line"
		case "$line" in
		"[  PASSED  ] "*) passed=$((passed + $(echo "$line" | awk '{print $4}'))) ;;
		"[  FAILED  ] "*" test(s), listed below:"*) ;;
		"[  FAILED  ] "[0-9]*) failed=$((failed + $(echo "$line" | awk '{print $4}'))) ;;
		"ok - "*) passed=$((passed + 1)) ;;
		"FAIL - "*) failed=$((failed + 1)) ;;
		"SKIP - "*) skipped=$((skipped + 1)) ;;
		esac
	done
}

if [ "$which" != integration ]; then
	for t in "$BUILD"/unit/test_*; do
		[ -x "$t" ] || continue
		echo "== unit: $(basename "$t")"
		count < <("$t" 2>&1; rc=$?; [ $rc = 0 ] || echo "FAIL - $(basename "$t") exited $rc")
	done
fi
if [ "$which" != unit ]; then
	# LeakSanitizer cannot follow nodeinit into a fake host: it reads /proc/<pid>/task, and /proc
	# there is the fake host's. The unit tests keep it; `make valgrind` checks leaks end to end.
	export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
	# tests/reliability/: faults (crashes, signals, full disks), bad inputs, secrets, the sandbox.
	for t in tests/integration/*.sh tests/reliability/*.sh; do
		echo "== integration: $(basename "$t" .sh)"
		count < <(bash "$t" 2>&1; rc=$?; [ $rc = 0 ] || echo "FAIL - $(basename "$t" .sh) broke off (exit $rc)")
	done
fi
echo
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
