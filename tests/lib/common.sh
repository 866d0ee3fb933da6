# Shared by the integration tests: assertions that print one line each, and fake hosts
# (fakehost_start below): nothing a test does in one can reach the real machine.
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
declare -A FAKE_NS=() FAKE_UNSHARE=()

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
# The fake host (DESIGN.md, "Testing without touching the real machine") is a process in fresh mount,
# UTS, IPC, network and PID namespaces, pivot_root'ed into an overlay over the real / whose upper
# layer is a tmpfs, so no write through any path reaches the machine's file systems:
#   - /tmp, /run, /var/lib and /dev/shm are fresh tmpfs; /dev is the real one (device nodes);
#   - /sys is a fresh sysfs, read-only (its network view is the fake host's own);
#   - /proc is a fresh proc of its PID namespace, and /proc/sys on it a tmpfs copy of the real values,
#     so vm.*, fs.*, kernel.* are plain files: writable, changing nothing real. /proc/sys/net is the
#     real one bound back on top: it shows the network namespace of whoever opens it, the fake
#     host's own for nodeinit once it joined;
#   - the test's work dir $T is bound at its own path (even under /tmp), shared with the outside;
#   - hostname fakehost, lo up.
fakehost_start() {
	local fifo=$T/fake.$$.$RANDOM.ready upid
	rm -f "$fifo" && mkfifo "$fifo"
	# The staging tmpfs on /mnt (private to the new mount namespace) holds the upper layer and the
	# /proc/sys copy; pivot_root puts the old root on the new root's /mnt, and it is then detached.
	# The copy is made before the pivot from the real /proc: the values, and the fake host's own
	# names for the namespaced ones (kernel.hostname). Unreadable (write-only) keys become empty files.
	unshare --mount --uts --ipc --net --pid --fork --propagation private -- sh -ec '
		work=$2
		exec 3>"$1"
		hostname fakehost
		ip link set lo up 2>/dev/null || true
		mount -t tmpfs -o mode=0755 fakehost-stage /mnt
		mkdir -p /mnt/upper /mnt/work /mnt/root /mnt/sysctl/net
		mount -t overlay fakehost-root -o lowerdir=/,upperdir=/mnt/upper,workdir=/mnt/work /mnt/root
		set --
		for d in /proc/sys/*; do [ "$d" = /proc/sys/net ] || set -- "$@" "$d"; done
		cp -r "$@" /mnt/sysctl/ 2>/dev/null || true
		find /proc/sys -path /proc/sys/net -prune -o -type f -print | while IFS= read -r f; do
			[ -e "/mnt/sysctl/${f#/proc/sys/}" ] || : > "/mnt/sysctl/${f#/proc/sys/}"
		done
		cd /mnt/root
		mount -t tmpfs -o mode=1777 fakehost-tmp tmp
		mount -t tmpfs -o mode=0755 fakehost-run run
		mount -t tmpfs -o mode=0755 fakehost-varlib var/lib
		mount --rbind /dev dev
		mount -t tmpfs -o mode=1777 fakehost-shm dev/shm
		mount -t sysfs -o ro,nosuid,nodev,noexec fakehost-sys sys
		mkdir -p "/mnt/root$work"
		mount --bind "$work" "/mnt/root$work"
		pivot_root /mnt/root /mnt/root/mnt
		cd /
		mount -t proc -o nosuid,nodev,noexec fakehost-proc /proc
		mount --bind /proc/sys/net /mnt/mnt/sysctl/net
		mount --rbind /mnt/mnt/sysctl /proc/sys
		umount -l /mnt
		echo ready >&3
		exec 3>&- sleep infinity' fakehost "$fifo" "$T" </dev/null >/dev/null 2>>"$T/unshare.err" &
	upid=$!
	read -r -t 60 _ < "$fifo" || { echo "fake host did not start: $(cat "$T/unshare.err")" >&2; rm -f "$fifo"; exit 1; }
	rm -f "$fifo"
	FAKE=$(cat /proc/$upid/task/$upid/children)
	FAKE=${FAKE%% *}
	FAKE_PIDS+=("$FAKE")
	FAKE_NS[$FAKE]=$(readlink "/proc/$FAKE/ns/pid")
	FAKE_UNSHARE[$FAKE]=$upid
}

# fakehost_kill PID [SIGNAL]: kills a fake host this test started (and forgets it), and only while
# PID still names the PID namespace made for it: pids wrap quickly on a busy machine, and a stale
# one may be someone else's process.
fakehost_kill() {
	local p=$1 sig=${2:-KILL} keep=() q
	if [ -n "${FAKE_NS[$p]:-}" ] && [ "$(readlink "/proc/$p/ns/pid" 2>/dev/null)" = "${FAKE_NS[$p]}" ]; then
		kill -"$sig" "$p" 2>/dev/null
	fi
	# The unshare parent exits with its child; reap it (only SIGKILL surely ends a PID namespace init).
	[ "$sig" = KILL ] && [ -n "${FAKE_UNSHARE[$p]:-}" ] && wait "${FAKE_UNSHARE[$p]}" 2>/dev/null
	unset "FAKE_NS[$p]" "FAKE_UNSHARE[$p]"
	for q in ${FAKE_PIDS[@]+"${FAKE_PIDS[@]}"}; do [ "$q" = "$p" ] || keep+=("$q"); done
	FAKE_PIDS=(${keep[@]+"${keep[@]}"})
}

# fakehost_stop: kills every fake host this test started (fakehost_kill's care for each).
fakehost_stop() {
	local p
	for p in ${FAKE_PIDS[@]+"${FAKE_PIDS[@]}"}; do fakehost_kill "$p"; done
	FAKE_PIDS=()
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
