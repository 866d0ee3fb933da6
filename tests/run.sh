#!/usr/bin/env bash
# Runs the unit tests (cmocka) and the integration tests (tests/integration/ and tests/reliability/),
# then prints each skip with its reason and one summary line, "N passed, N failed, N skipped".
# Usage: tests/run.sh [unit|integration|all]   or   tests/run.sh TEST...  (cmocka binaries and *.sh
# scripts, as paths from the repository root or absolute)
# BUILD names the build directory. Exits non-zero when anything failed, and when anything was skipped
# unless ALLOW_SKIP=1 (without root every fake-host test skips, and a green run must mean tested).
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export BUILD
passed=0 failed=0 skipped=0
skips=()

# count_unit NAME: reads a cmocka binary's output. cmocka prints one summary per group:
# "[  PASSED  ] N test(s).", "[  FAILED  ] N test(s), listed below:", "[  SKIPPED ] N test(s), ..."
# followed by the names; the per-test lines are not counted, so nothing is counted twice.
count_unit() {
	local name=$1 line n listing=0
	while IFS= read -r line; do
		printf '%s\n' "$line"
		case "$line" in
		"[==========] Running "*) listing=0 ;;
		"[==========] "[0-9]*" test(s) run."*) listing=1 ;;
		"[  PASSED  ] "[0-9]*" test(s)"*) n=${line#"[  PASSED  ] "}; passed=$((passed + ${n%% *})) ;;
		"[  FAILED  ] "[0-9]*" test(s)"*) n=${line#"[  FAILED  ] "}; failed=$((failed + ${n%% *})) ;;
		"[  SKIPPED ] "[0-9]*" test(s)"*) n=${line#"[  SKIPPED ] "}; skipped=$((skipped + ${n%% *})) ;;
		"[  SKIPPED ] "*) [ $listing = 1 ] || skips+=("$name: ${line#"[  SKIPPED ] "} (cmocka skip())") ;;
		esac
	done
}

# count_script: reads a script's output, one "ok - ", "FAIL - " or "SKIP - NAME: REASON" line per result.
count_script() {
	local line
	while IFS= read -r line; do
		printf '%s\n' "$line"
		case "$line" in
		"ok - "*) passed=$((passed + 1)) ;;
		"FAIL - "*) failed=$((failed + 1)) ;;
		"SKIP - "*) skipped=$((skipped + 1)); skips+=("${line#"SKIP - "}") ;;
		esac
	done
}

run_script() {
	local t=$1
	echo "== integration: $(basename "$t" .sh)"
	count_script < <(bash "$t" 2>&1; rc=$?; [ $rc = 0 ] || echo "FAIL - $(basename "$t" .sh) broke off (exit $rc)")
}

# A binary's exit status is its number of failures: only a non-zero status that no counted failure
# explains (a crash, a missing summary) is one more failure.
run_unit() {
	local t=$1 before=$failed out rc
	echo "== unit: $(basename "$t")"
	out=$BUILD/.run-unit.$$
	mkdir -p "$BUILD"
	"$t" > "$out" 2>&1
	rc=$?
	count_unit "$(basename "$t")" < "$out"
	rm -f "$out"
	if [ "$failed" = "$before" ] && [ "$rc" != 0 ]; then
		echo "FAIL - $(basename "$t") exited $rc with no failed test counted"
		failed=$((failed + 1))
	fi
}

units=() scripts=()
case "${1:-all}" in
unit | integration | all)
	if [ "${1:-all}" != integration ]; then
		for t in "$BUILD"/unit/test_*; do [ -x "$t" ] && units+=("$t"); done
	fi
	# tests/reliability/: faults (crashes, signals, full disks), bad inputs, secrets, the sandbox.
	[ "${1:-all}" != unit ] && scripts=(tests/integration/*.sh tests/reliability/*.sh)
	;;
*)
	for t in "$@"; do
		case "$t" in *.sh) scripts+=("$t") ;; *) units+=("$t") ;; esac
	done
	;;
esac

for t in ${units[@]+"${units[@]}"}; do run_unit "$t"; done
if [ ${#scripts[@]} -gt 0 ]; then
	# LeakSanitizer cannot follow nodeinit into a fake host: it reads /proc/<pid>/task, and /proc
	# there is the fake host's. The unit tests keep it; `make valgrind` checks leaks end to end.
	export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
	for t in "${scripts[@]}"; do run_script "$t"; done
fi

echo
if [ "$skipped" -gt 0 ]; then
	echo "Skipped (each one fails the run unless ALLOW_SKIP=1):"
	for s in ${skips[@]+"${skips[@]}"}; do echo "  $s"; done
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ] || exit 1
[ "$skipped" = 0 ] || [ "${ALLOW_SKIP:-}" = 1 ] || exit 1
exit 0
