# Shared by tests/reliability/*.sh, on top of tests/lib/common.sh.
# Fake hosts killed on purpose are killed through here: only while their pid still names the PID
# namespace we made (pids wrap quickly on a busy machine, and a stale pid may be someone else's).
. "$(dirname "${BASH_SOURCE[0]}")/../../lib/common.sh"

declare -A FAKE_NS=()

# fakehost_start, remembering the fake host's PID namespace.
rel_fakehost_start() {
	fakehost_start
	rm -f "$T"/fake.*.ready # fifo names come from $RANDOM: leave none to collide with
	FAKE_NS[$FAKE]=$(readlink "/proc/$FAKE/ns/pid")
}

# rel_kill_fake PID [SIGNAL]: kills a fake host we started (and forgets it), never a stranger.
rel_kill_fake() {
	local p=$1 sig=${2:-KILL} keep=() q
	if [ -n "${FAKE_NS[$p]:-}" ] && [ "$(readlink "/proc/$p/ns/pid" 2>/dev/null)" = "${FAKE_NS[$p]}" ]; then
		kill -"$sig" "$p" 2>/dev/null
	fi
	unset "FAKE_NS[$p]"
	for q in "${FAKE_PIDS[@]}"; do [ "$q" = "$p" ] || keep+=("$q"); done
	FAKE_PIDS=("${keep[@]}")
}

# Replaces common.sh's fakehost_stop (the EXIT trap calls it by name) with the careful kill.
fakehost_stop() {
	local p
	for p in "${FAKE_PIDS[@]}"; do
		if [ -n "${FAKE_NS[$p]:-}" ]; then rel_kill_fake "$p"; else kill -KILL "$p" 2>/dev/null; fi
	done
	FAKE_PIDS=()
	wait 2>/dev/null
}
