# Shared by the integration tests: assertions that print one line each, and fake hosts.
# A fake host is `unshare --mount --uts --ipc --net --pid --fork --mount-proc` with tmpfs over /tmp,
# /var/lib and /run and an overlay over /etc, so nothing a test does reaches the real machine.
# Work files live under $BUILD/t/, never in the real /tmp.

set -u
BUILD=${BUILD:-build}
NODEINIT=${NODEINIT:-$PWD/$BUILD/nodeinit}
# NODEINIT_WRAP (e.g. valgrind) is prefixed to every nodeinit run.
NODEINIT_WRAP=${NODEINIT_WRAP:-}
TEST_NAME=$(basename "$0" .sh)
T=$PWD/$BUILD/t/$TEST_NAME
rm -rf "$T" && mkdir -p "$T"
PASSED=0
FAILED=0
FAKE_PIDS=()

ok() { PASSED=$((PASSED + 1)); echo "ok - $TEST_NAME: $*"; }
not_ok() { FAILED=$((FAILED + 1)); echo "FAIL - $TEST_NAME: $*"; }
skip_all() { echo "SKIP - $TEST_NAME: $*"; exit 0; }

# check DESCRIPTION COMMAND...: passes when the command succeeds.
check() {
	local what=$1
	shift
	if "$@"; then ok "$what"; else not_ok "$what"; fi
}

# check_eq DESCRIPTION EXPECTED ACTUAL
check_eq() {
	if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1 (expected '$2', got '$3')"; fi
}

# check_contains DESCRIPTION NEEDLE HAYSTACK
check_contains() {
	case "$3" in
	*"$2"*) ok "$1" ;;
	*) not_ok "$1 (no '$2' in: $(printf %s "$3" | head -c 600))" ;;
	esac
}

nodeinit() { $NODEINIT_WRAP "$NODEINIT" "$@"; }

require_root() {
	[ "$(id -u)" = 0 ] || skip_all "needs root to make a fake host with unshare"
	unshare --mount --pid --fork --mount-proc true 2>/dev/null || skip_all "unshare cannot make namespaces here"
}

# fakehost_start: starts a fake host and sets FAKE (its init's pid, as seen from here).
fakehost_start() {
	local fifo=$T/fake.$RANDOM.ready up
	up=$T/overlay.$RANDOM
	mkdir -p "$up/upper" "$up/work"
	mkfifo "$fifo"
	# The ready fifo is opened and /etc overlaid before the tmpfs mounts, which may hide the work
	# dir (a checkout under /tmp, say); the work dir is then put back at its own path, through a
	# stash on a tmpfs of the fake host's own (nothing is written to the real file systems).
	unshare --mount --uts --ipc --net --pid --fork --mount-proc --propagation private -- sh -ec '
		exec 3>"$2"
		mount -t overlay fakehost-etc -o lowerdir=/etc,upperdir="$1/upper",workdir="$1/work" /etc
		mount -t tmpfs fakehost-stash /mnt
		mkdir /mnt/work
		mount --bind "$3" /mnt/work
		mount -t tmpfs -o mode=1777 fakehost-tmp /tmp
		mount -t tmpfs fakehost-varlib /var/lib
		mount -t tmpfs fakehost-run /run
		mkdir -p "$3"
		mount --bind /mnt/work "$3"
		umount /mnt/work
		umount /mnt
		hostname fakehost
		ip link set lo up 2>/dev/null || true
		echo ready >&3
		exec 3>&- sleep infinity' fakehost "$up" "$fifo" "$T" </dev/null >/dev/null 2>>"$T/unshare.err" &
	local upid=$!
	read -r -t 20 _ < "$fifo" || { echo "fake host did not start: $(cat "$T/unshare.err")" >&2; exit 1; }
	FAKE=$(cat /proc/$upid/task/$upid/children)
	FAKE=${FAKE%% *}
	FAKE_PIDS+=("$FAKE")
}

fakehost_stop() {
	local p
	for p in "${FAKE_PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
	FAKE_PIDS=()
	wait 2>/dev/null
}

# in_fake CMD...: runs a command inside the fake host (all its namespaces).
in_fake() { nsenter -t "$FAKE" -m -u -i -n -p -- "$@"; }

# The runner counts the ok/FAIL lines; a non-zero exit means the script itself broke.
finish() {
	fakehost_stop
	echo "# $TEST_NAME: $PASSED passed, $FAILED failed"
	exit 0
}
trap fakehost_stop EXIT
