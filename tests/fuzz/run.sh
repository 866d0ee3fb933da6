#!/usr/bin/env bash
# Runs each libFuzzer target for FUZZ_SECONDS (built by `make fuzz`), from the committed seeds plus the
# corpus kept in the build dir, and prints the executions of each. Fails when any target finds a
# crash, a leak or a hang (the input is left in $FUZZ_BUILD/artifacts/ for a regression test).
# Usage: tests/fuzz/run.sh FUZZ_BUILD SECONDS TARGET...
set -u
cd "$(dirname "$0")/../.."
build=$1 secs=$2
shift 2
mkdir -p "$build/artifacts" "$build/work"
failed=0 total=0
printf '%-14s %10s %10s %8s  %s\n' target executions exec/s seconds result
for t in "$@"; do
	corpus=$build/corpus/$t
	mkdir -p "$corpus"
	log=$build/$t.log
	start=$(date +%s.%N)
	# -timeout: one input taking this long is a hang; -rss_limit_mb: the Lua cap is 64 MiB, so 1 GiB means a leak.
	(cd "$build/work" && FUZZ_WORKDIR=. ASAN_OPTIONS=detect_leaks=1 \
		"../fuzz_$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=1024 -print_final_stats=1 \
		-artifact_prefix="../artifacts/$t-" "../corpus/$t" "$OLDPWD/tests/fuzz/seeds/$t") >"$log" 2>&1
	rc=$?
	end=$(date +%s.%N)
	execs=$(awk '/stat::number_of_executed_units:/ {print $2}' "$log" | tail -1)
	rate=$(awk '/stat::average_exec_per_sec:/ {print $2}' "$log" | tail -1)
	if [ $rc = 0 ]; then result=ok; else result="FAILED (exit $rc, see $log)"; failed=$((failed + 1)); fi
	printf '%-14s %10s %10s %8.1f  %s\n' "$t" "${execs:-?}" "${rate:-?}" "$(awk -v a="$start" -v b="$end" 'BEGIN{print b-a}')" "$result"
	total=$((total + ${execs:-0}))
	[ $rc = 0 ] || grep -E 'ERROR|SUMMARY|Test unit written' "$log" | head -5 | sed 's/^/    /'
done
echo "fuzz: $# targets, $total executions, $failed failed"
[ $failed = 0 ]
