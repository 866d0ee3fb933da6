# Children never outlive nodeinit: SIGKILL it (the OOM killer, the end of a grace period) while a
# command runs in a fake host, and nothing it started stays alive in the fake host's PID namespace.
. "$(dirname "$0")/../lib/common.sh"
require_root

fakehost_start
R=$T/recipes
mkdir -p "$R"

# live MATCH: the live processes (not zombies) of the fake host whose command line, arguments joined
# by spaces, is exactly MATCH; one "PID CMDLINE" per line. Looks inside the fake host only.
live() {
	in_fake ps -eww -o pid=,stat=,args= | awk -v m="$1" '{ pid = $1; st = $2; $1 = $2 = ""; sub(/^ +/, "") }
		st !~ /^Z/ && $0 == m { print pid, $0 }'
}
# wait_for SECONDS CMD...: polls CMD until it succeeds or SECONDS have passed.
wait_for() {
	local until=$((SECONDS + $1))
	shift
	until "$@"; do
		[ "$SECONDS" -lt "$until" ] || return 1
		sleep 0.1
	done
}
has_live() { [ -n "$(live "$1")" ]; }
none_live() { [ -z "$(live "$1")" ]; }

# killed_during WHAT PID MATCH...: waits until every MATCH runs in the fake host, SIGKILLs nodeinit
# (PID), then checks that none of them is left.
killed_during() {
	local what=$1 pid=$2 m missing=""
	shift 2
	for m in "$@"; do
		wait_for 20 has_live "$m" || missing="$missing '$m'"
	done
	check_eq "$what: all of it runs in the fake host before the kill" "" "$missing"
	kill -KILL "$pid"
	wait "$pid" 2>/dev/null
	for m in "$@"; do
		wait_for 10 none_live "$m"
		check_eq "$what: no '$m' left in the fake host after SIGKILL" "" "$(live "$m")"
	done
}

# exec.run: the command itself (the death signal).
echo 'exec.run{"sleep", "300"}' > "$T/one.lua"
$NODEINIT_WRAP "$NODEINIT" eval "$T/one.lua" --target-pid "$FAKE" >/dev/null 2>&1 &
killed_during "exec.run" $! "sleep 300"

# exec.run of a shell: the shell and the command it started (the guard kills the group).
echo 'exec.run{"sh", "-c", "sleep 301; echo never"}' > "$T/tree.lua"
$NODEINIT_WRAP "$NODEINIT" eval "$T/tree.lua" --target-pid "$FAKE" >/dev/null 2>&1 &
killed_during "exec.run of a shell" $! "sh -c sleep 301; echo never" "sleep 301"

# The legacy script: the host's bash and what it runs, in the foreground and in the background.
STARTUP_SCRIPT='sleep 303 & sleep 302; echo never' $NODEINIT_WRAP "$NODEINIT" apply --target-pid "$FAKE" >/dev/null 2>&1 &
killed_during "legacy script" $! "bash -c sleep 303 & sleep 302; echo never" "sleep 302" "sleep 303"
check "legacy script: not marked done" in_fake sh -c '! ls /tmp/startup-script.kubernetes.io_* 2>/dev/null'

# ns.exec, from a step of `run` (the DaemonSet's entry point).
cat > "$R/10-ns.lua" <<'EOF2'
recipe "ns" {
  step "sleep" { function() ns.exec({ pid = 1, namespaces = { "net", "uts" } }, { "sleep", "304" }) end },
}
EOF2
$NODEINIT_WRAP "$NODEINIT" run --target-pid "$FAKE" --recipes "$R" >/dev/null 2>&1 &
killed_during "ns.exec in run" $! "sleep 304"

finish
