# The test runner counts exactly: a cmocka binary and scripts with known results (tests/runner/)
# go through tests/run.sh (RUN_SH names another runner to try, e.g. an older one), and the counts,
# the skip reasons and the exit statuses are checked.
. "$(dirname "$0")/../lib/common.sh"

# A runner that does not know TEST arguments runs the whole suite, this script included: no recursion.
[ -z "${NI_RUNNER_TEST:-}" ] || exit 0
RUN_SH=${RUN_SH:-$PWD/tests/run.sh}
fx=$PWD/tests/runner
mkdir -p "$T/b/unit"
cc -o "$T/b/unit/test_fixture" "$fx/test_fixture.c" -lcmocka 2>"$T/cc.err" ||
	{ not_ok "the cmocka fixture builds: $(head -c 400 "$T/cc.err")"; finish; }

# run_runner ENV... -- ARGS...: runs the runner, sets OUT (its output), LAST (its last line), RC.
run_runner() {
	local env=()
	while [ "$1" != -- ]; do env+=("$1"); shift; done
	shift
	OUT=$(env -u ALLOW_SKIP -u RUN_SH NI_RUNNER_TEST=1 "${env[@]}" bash "$RUN_SH" "$@" 2>&1)
	RC=$?
	LAST=$(printf '%s\n' "$OUT" | tail -n 1)
}

run_runner BUILD="$T/b" -- unit
check_eq "cmocka: 1 pass, 2 failures and 1 skip are counted as such" "1 passed, 2 failed, 1 skipped" "$LAST"
check "cmocka: failures fail the run" test "$RC" != 0
check_contains "cmocka: the skipped test is named in the summary" "test_fixture: skips" "$OUT"
run_runner BUILD="$T/b" ALLOW_SKIP=1 -- unit
check "cmocka: ALLOW_SKIP=1 does not excuse failures" test "$RC" != 0

# A binary that dies before cmocka's summary is one failure, not zero.
printf '#include <stdlib.h>\nint main(void) { abort(); }\n' > "$T/crash.c"
mkdir -p "$T/c/unit" && cc -o "$T/c/unit/test_crash" "$T/crash.c"
run_runner BUILD="$T/c" -- unit
check_eq "a crashing binary counts as one failure" "0 passed, 1 failed, 0 skipped" "$LAST"
check "a crashing binary fails the run" test "$RC" != 0

run_runner BUILD="$T/b" -- "$fx/skips.sh"
check_eq "script: a pass and a skip are counted" "1 passed, 0 failed, 1 skipped" "$LAST"
check "script: a skip fails the run without ALLOW_SKIP" test "$RC" = 1
check_contains "script: the skip's reason is in the summary" "  skips: fixture skips on purpose" \
	"$(printf '%s\n' "$OUT" | sed -n '/^Skipped/,$p')"
run_runner BUILD="$T/b" ALLOW_SKIP=1 -- "$fx/skips.sh"
check_eq "script: ALLOW_SKIP=1 lets a skip pass" "0 1 passed, 0 failed, 1 skipped" "$RC $LAST"

run_runner BUILD="$T/b" -- "$fx/passes.sh"
check_eq "script: all passing exits 0" "0 2 passed, 0 failed, 0 skipped" "$RC $LAST"

finish
