#!/usr/bin/env bash
# Instruction counts (callgrind) of the bench's apply cases: repeatable on a loaded machine where
# wall time is not. Usage: tests/bench/icount.sh NODEINIT [CASE...]
# Cases: steps (1000 YAML steps, first apply), steps-noop, one (1 step of 1000 keys, first apply),
# one-noop, tiny (1 step of 1 key, first apply), tiny-noop, sysctl-p (`sysctl -p` of the same keys). Prints "case instructions" lines; with
# ICOUNT_KEEP=DIR the callgrind.out files are kept there for callgrind_annotate.
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
TEST_NAME=icount
NODEINIT=$(realpath "${1:-$BUILD/nodeinit}")
shift
CASES=${*:-steps steps-noop one one-noop tiny tiny-noop sysctl-p}
NKEYS=${ICOUNT_KEYS:-1000}
. tests/lib/common.sh
require_root
command -v valgrind >/dev/null || { echo "icount: needs valgrind" >&2; exit 1; }
trap fakehost_stop EXIT
# Under $T: the fake host sees it at the same path (nodeinit joins its mount namespace before exit).
OUT=$T/out
mkdir -p "$OUT"

fakehost_start
. tests/bench/keys.sh
bench_keys icount "$NKEYS"
bench_recipes
for p in 0 1; do
	mkdir -p "$T/tiny$p"
	printf 'recipe: tiny\nsteps:\n  - name: key1\n    sysctl: { %s: "%d" }\n' "$(head -n1 "$T/keys")" $(((1 + p) % 2)) > "$T/tiny$p/10-tiny.yaml"
done
in_fake sysctl -q -p /tmp/sysctl0.conf
mkdir -p "$T/state"
in_fake sh -c "mkdir -p /var/lib/nodeinit && mount --bind '$T/state' /var/lib/nodeinit"

# cg NAME CMD...: runs CMD under callgrind, prints "NAME instructions"; IN_FAKE=1 runs valgrind itself
# inside the fake host (for a command that runs there, without counting nsenter).
cg() {
	local name=$1 ir
	shift
	${IN_FAKE:+in_fake} valgrind --tool=callgrind --vgdb=no --callgrind-out-file="$OUT/callgrind.out.$name" --trace-children=no "$@" >"$OUT/$name.log" 2>&1 ||
		{ echo "icount: $name failed: $(tail -3 "$OUT/$name.log")" >&2; exit 1; }
	ir=$(awk '/^summary:/ {print $2}' "$OUT/callgrind.out.$name")
	[ -z "${ICOUNT_KEEP:-}" ] || { mkdir -p "$ICOUNT_KEEP" && cp "$OUT/callgrind.out.$name" "$ICOUNT_KEEP/"; }
	printf '%-12s %12s\n' "$name" "$ir"
}
ni() { cg "$1" "$NODEINIT" apply --target-pid "$FAKE" --interval 1 --recipes "$2" --state-dir "/var/lib/nodeinit/$3"; }
for c in $CASES; do
	case $c in
	steps) ni steps "$T/steps1" steps ;;      # every key flips from parity 0 to 1
	steps-noop) ni steps-noop "$T/steps1" steps ;;
	one) ni one "$T/one0" one ;;              # and back
	one-noop) ni one-noop "$T/one0" one ;;
	tiny) ni tiny "$T/tiny1" tiny ;;          # 1 step of 1 key
	tiny-noop) ni tiny-noop "$T/tiny1" tiny ;;
	sysctl-p) IN_FAKE=1 cg sysctl-p sysctl -q -p /tmp/sysctl1.conf ;;
	strace) # the syscalls of one first apply, 1000 steps (strace -c -f)
		strace -f -c -o "$T/strace-c" "$NODEINIT" apply --target-pid "$FAKE" --interval 1 --recipes "$T/steps0" \
			--state-dir /var/lib/nodeinit/straced >/dev/null 2>&1
		cat "$T/strace-c" ;;
	walltime) # not instructions: wall time of the 1-step (1000 keys) first apply and its no-op, 9 of each, interleaved
		for i in 1 2 3 4 5 6 7 8 9; do
			for what in first noop noop; do
				a=${EPOCHREALTIME/./}
				"$NODEINIT" apply --target-pid "$FAKE" --interval 1 --recipes "$T/one$((i % 2))" \
					--state-dir "/var/lib/nodeinit/wall$i" >/dev/null 2>&1
				b=${EPOCHREALTIME/./}
				echo "$what $((b - a))"
			done
			a=${EPOCHREALTIME/./}; /bin/true; b=${EPOCHREALTIME/./}; echo "true $((b - a))"
		done | awk '{v[$1] = v[$1] " " $2} END {for (k in v) print "walltime " k ":" v[k]}' ;;
	rusage) # not instructions: CPU seconds and context switches of 5 first applies, 1000 steps, natively
		for i in 1 2 3 4 5; do
			/usr/bin/time -o "$T/rusage" -f "rusage steps: %e s wall, %U user, %S sys, %c involuntary + %w voluntary switches" \
				"$NODEINIT" apply --target-pid "$FAKE" --interval 1 --recipes "$T/steps$((i % 2))" \
				--state-dir "/var/lib/nodeinit/rusage$i" >/dev/null 2>&1
			cat "$T/rusage"
			/usr/bin/time -o "$T/rusage" -f "rusage sysctl -p: %e s wall, %U user, %S sys, %c involuntary + %w voluntary switches" \
				nsenter -t "$FAKE" -m -u -i -n -p -- sysctl -q -p "/tmp/sysctl$(((i + 1) % 2)).conf" >/dev/null 2>&1
			cat "$T/rusage"
		done ;;
	*) echo "icount: unknown case $c" >&2; exit 2 ;;
	esac
done
