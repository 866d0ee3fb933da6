#!/usr/bin/env bash
# `make test-arm64`: the unit tests cross-built for arm64 (build/arm64/unit/) run under qemu-user,
# then tests/integration/arm64.sh (the static binary against fake hosts); one summary line at the end.
# Each unit binary runs inside a fake host: qemu-user has no openat2, so path resolution takes its
# old-kernel route, where an absolute symlink in a test's fake root leads out of it; in a fake host
# that lands on the fake host's tmpfs, never on the machine's /run or /etc.
# KNOWN lists the unit tests that cannot pass under qemu-user, each with the reason: such a test that
# fails is reported SKIP with it; any other failure is a failure.
. "$(dirname "$0")/../lib/common.sh"
require_root
TEST_NAME=test-arm64
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
QEMU=${QEMU:-qemu-aarch64-static}
UNIT_DIR=${UNIT_DIR:-$ROOT/build/arm64/unit}
# A hang guard, not a speed check: test_lua's instruction-limit test runs 2e9 Lua VM instructions,
# minutes under emulation.
UNIT_WATCHDOG=${UNIT_WATCHDOG:-3600}
SKIPPED=0

no_openat2="needs openat2 (RESOLVE_IN_ROOT), which qemu-user 7.2 answers with ENOSYS; nodeinit then uses plain openat, as on kernels before 5.6, and an absolute symlink in the test's fake root is not confined to it"
slow_fork="a 300 ms deadline counted from before fork; under qemu-user a forked child takes 0.2-2 s to reach exec (qemu starts its own thread again and translates code), so the deadline passes before the command runs"
no_subreaper="the test makes itself a subreaper (prctl PR_SET_CHILD_SUBREAPER) to reap and see the signal; qemu-user 7.2 refuses that prctl (EINVAL). nodeinit does not use it (its PR_SET_PDEATHSIG works under qemu)"
declare -A KNOWN=(
	[test_file/test_symlink_escape]=$no_openat2
	[test_file/test_mkdir]=$no_openat2
	[test_file/test_lua_ensure_line]="follows test_mkdir's failure: test_mkdir sets umask 077 and restores it only at its end"
	[test_exec/test_timeout_kills_tree]=$slow_fork
	[test_exec/test_timeout_chatty]=$slow_fork
	[test_exec/test_children_die_with_runner]=$no_subreaper
	[test_exec/test_command_dies_with_runner_keep_group]=$no_subreaper
)

# unit_run BINARY: one ok/FAIL/SKIP line per test, from its cmocka lines (each failure is listed
# again after "N test(s), listed below:"; those repeats are not counted).
unit_run() {
	local t=$1 name line test listing=no
	name=$(basename "$t")
	in_fake timeout -k 5 "$UNIT_WATCHDOG" sh -c 'cd "$1" && exec "$2" "$3"' sh "$ROOT" "$QEMU" "$t" > "$T/$name.out" 2>&1
	echo "# $name exited $?"
	while IFS= read -r line; do
		case $line in
		"[       OK ] "*) ok "$name/${line#"[       OK ] "}" ;;
		"[  FAILED  ] "*" test(s), listed below:") listing=yes ;;
		"[  FAILED  ] "[0-9]*) ;;
		"[  FAILED  ] "*)
			[ $listing = yes ] && continue
			test=${line#"[  FAILED  ] "}
			if [ -n "${KNOWN[$name/$test]:-}" ]; then
				SKIPPED=$((SKIPPED + 1))
				echo "SKIP - $TEST_NAME: $name/$test: ${KNOWN[$name/$test]}"
			else
				not_ok "$name/$test"
				grep -A3 "^\[ RUN      \] $test\$" "$T/$name.out" | sed 's/^/#   /'
			fi
			;;
		esac
	done < "$T/$name.out"
	grep -qE '^\[  (PASSED|FAILED)  \] [0-9]' "$T/$name.out" ||
		not_ok "$name ended without a cmocka summary (crash or watchdog): $(tail -n 3 "$T/$name.out")"
}

command -v "$QEMU" >/dev/null || { not_ok "$QEMU is installed"; finish; }
fakehost_start
units=("$UNIT_DIR"/test_*)
[ -x "${units[0]}" ] || not_ok "cross-built unit tests in $UNIT_DIR (make unit ARCH=arm64)"
for t in "${units[@]}"; do
	[ -x "$t" ] || continue
	echo "== unit (arm64, $QEMU): $(basename "$t")"
	unit_run "$t"
done
fakehost_stop

echo "== integration (arm64, $QEMU): arm64"
while IFS= read -r line; do
	printf '%s\n' "$line"
	case $line in
	"ok - "*) PASSED=$((PASSED + 1)) ;;
	"FAIL - "*) FAILED=$((FAILED + 1)) ;;
	"SKIP - "*) SKIPPED=$((SKIPPED + 1)) ;;
	esac
done < <(BUILD=$BUILD bash "$ROOT/tests/integration/arm64.sh" 2>&1; rc=$?; [ $rc = 0 ] || echo "FAIL - arm64 broke off (exit $rc)")

echo
echo "$PASSED passed, $FAILED failed, $SKIPPED skipped"
[ "$FAILED" = 0 ]
