# Legacy STARTUP_SCRIPT mode against fake hosts: the startup-script image's contract, observable parts.
. "$(dirname "$0")/../lib/common.sh"
require_root

md5_path() { echo "/tmp/startup-script.kubernetes.io_$(md5sum <<<"$1" | cut -c-32)"; }

fakehost_start

# Effects land in the fake host only: a file in its /tmp, its hostname, a sysctl in its netns.
script='echo ran >> /tmp/legacy-count
hostname legacy-host
echo 1 > /proc/sys/net/ipv4/ip_forward
readlink /proc/self/ns/pid > /tmp/legacy-pidns
pwd > /tmp/legacy-cwd
echo "$GREETING" > /tmp/legacy-env'
real_fwd=$(cat /proc/sys/net/ipv4/ip_forward)
real_host=$(hostname)
out=$(STARTUP_SCRIPT=$script GREETING="hello from the pod" nodeinit apply --target-pid "$FAKE" 2>&1)
check_eq "first apply exits 0" 0 $?
check_contains "success line printed" "!!! startup-script succeeded!" "$out"
check_eq "script ran once in the fake host" "ran" "$(in_fake cat /tmp/legacy-count)"
check "script's file absent from the real /tmp" test ! -e /tmp/legacy-count
check_eq "hostname changed in the fake host" legacy-host "$(in_fake hostname)"
check_eq "real hostname untouched" "$real_host" "$(hostname)"
check_eq "sysctl set in the fake host's netns" 1 "$(in_fake cat /proc/sys/net/ipv4/ip_forward)"
check_eq "real sysctl untouched" "$real_fwd" "$(cat /proc/sys/net/ipv4/ip_forward)"
check_eq "script ran in the fake host's PID namespace" "$(readlink /proc/$FAKE/ns/pid)" "$(in_fake cat /tmp/legacy-pidns)"
check_eq "script's cwd is /" / "$(in_fake cat /tmp/legacy-cwd)"
check_eq "container env reaches the script" "hello from the pod" "$(in_fake cat /tmp/legacy-env)"

cp=$(md5_path "$script")
check "checkpoint at the formula path in the fake host" in_fake test -f "$cp"
check_eq "checkpoint is an empty file" 0 "$(in_fake stat -c %s "$cp")"
check "checkpoint absent from the real machine" test ! -e "$cp"

out=$(STARTUP_SCRIPT=$script nodeinit apply --target-pid "$FAKE" 2>&1)
check_eq "second apply exits 0" 0 $?
check_eq "second apply does not re-run" "ran" "$(in_fake cat /tmp/legacy-count)"
check_eq "second apply prints nothing" "" "$(printf %s "$out" | grep -v ' info ' || true)"

# run: an idle pass prints nothing; deleting the checkpoint re-runs within one interval.
STARTUP_SCRIPT=$script $NODEINIT_WRAP "$NODEINIT" run --target-pid "$FAKE" --interval 1 > "$T/run.log" 2>&1 &
runner=$!
sleep 1.5
in_fake rm -f "$cp"
for _ in $(seq 1 30); do in_fake test -f "$cp" && break; sleep 0.1; done
check "checkpoint re-created after deletion" in_fake test -f "$cp"
check_eq "script re-ran after deletion" "ran ran" "$(in_fake cat /tmp/legacy-count | xargs)"
kill -TERM $runner
wait $runner
check_eq "run exits 0 on SIGTERM" 0 $?
check_eq "run printed one success line (for the re-run only)" 1 "$(grep -c '^!!! startup-script succeeded!$' "$T/run.log")"

# Idle: with the checkpoint present, passes fork and exec nothing (counted by strace over 3 intervals).
if command -v strace >/dev/null; then
	STARTUP_SCRIPT=$script strace -f -qq -e trace=fork,vfork,clone,clone3,execve -o "$T/idle.strace" \
		"$NODEINIT" run --target-pid "$FAKE" --interval 1 2>"$T/idle.log" &
	tracer=$!
	sleep 3.5
	kill -TERM $(cat /proc/$tracer/task/$tracer/children) 2>/dev/null
	wait $tracer
	check_eq "idle run: one execve (its own start)" 1 "$(grep -c 'execve(' "$T/idle.strace")"
	check_eq "idle run: no fork or clone over 3 intervals" 0 "$(grep -cE '(fork|clone3?)\(' "$T/idle.strace")"
	check_eq "idle run: script did not run" "ran ran" "$(in_fake cat /tmp/legacy-count | xargs)"
else
	echo "SKIP - $TEST_NAME: strace missing, idle forks not counted"
fi

# CHECKPOINT_PATH is honoured, and created on the host side.
out=$(STARTUP_SCRIPT='true' CHECKPOINT_PATH=/tmp/node-configured nodeinit apply --target-pid "$FAKE" 2>&1)
check_eq "custom checkpoint: exit 0" 0 $?
check "custom checkpoint created in the fake host" in_fake test -f /tmp/node-configured
check "formula checkpoint not created when CHECKPOINT_PATH is set" in_fake test ! -e "$(md5_path true)"

# A failing script: exit 1, the exact failure line, and no checkpoint.
out=$(STARTUP_SCRIPT='echo partial > /tmp/partial; exit 3' nodeinit apply --target-pid "$FAKE" 2>"$T/fail.err")
check_eq "failing script exits 1" 1 $?
check "exact failure line on stderr" grep -qx "!!! startup-script failed! exit code '3'" "$T/fail.err"
check "no checkpoint after failure" in_fake test ! -e "$(md5_path 'echo partial > /tmp/partial; exit 3')"

# A script killed by a signal reports 128+signal, like bash's $?.
STARTUP_SCRIPT='kill -9 $$' nodeinit apply --target-pid "$FAKE" 2>"$T/sig.err"
check_eq "signaled script exits 1" 1 $?
check "signaled script reports 137" grep -qx "!!! startup-script failed! exit code '137'" "$T/sig.err"

# An empty script is valid (its checkpoint is a known vector).
STARTUP_SCRIPT= nodeinit apply --target-pid "$FAKE" 2>/dev/null
check_eq "empty script exits 0" 0 $?
check "empty script checkpoint" in_fake test -f /tmp/startup-script.kubernetes.io_68b329da9893e34099c7d8ad5cb9c940

# Unset STARTUP_SCRIPT with no recipes: a clear message, exit 2.
out=$(env -u STARTUP_SCRIPT "$NODEINIT" apply --target-pid "$FAKE" --recipes "$T/none" 2>&1)
check_eq "no script, no recipes: exit 2" 2 $?
check_contains "no script, no recipes: says why" "STARTUP_SCRIPT is not set" "$out"

# A pid that does not exist: exit 3, naming the pid.
out=$(STARTUP_SCRIPT=true nodeinit apply --target-pid 999999999 2>&1)
check_eq "missing pid: exit 3" 3 $?
check_contains "missing pid: names it" "no such process: pid 999999999" "$out"

# Without hostPID, pid 1 is nodeinit itself: exit 3 with the hint, not a run inside the container.
out=$(STARTUP_SCRIPT=true unshare --pid --fork --mount-proc "$NODEINIT" apply 2>&1)
check_eq "target is itself (no hostPID): exit 3" 3 $?
check_contains "target is itself: says hostPID" "hostPID: true" "$out"

# Not privileged: exit 3 naming what is missing.
if command -v setpriv >/dev/null; then
	out=$(STARTUP_SCRIPT=true setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all \
		"$NODEINIT" apply --target-pid "$FAKE" 2>&1)
	check_eq "unprivileged: exit 3" 3 $?
	check_contains "unprivileged: names the capability" "CAP_SYS_ADMIN" "$out"
else
	echo "SKIP - $TEST_NAME: setpriv missing, unprivileged start not tried"
fi

# The checkpoint lives in the host's world-writable /tmp: only a root-owned regular file counts as done.
as_nobody() { in_fake setpriv --reuid 65534 --regid 65534 --clear-groups "$@"; }
owner_file() { in_fake sh -c 'test -f "$1" && test ! -L "$1" && stat -c %u "$1"' sh "$1"; }

# A symlink nobody planted at the default path: the script runs, nothing appears where it points.
s_link='echo link >> /tmp/link-runs'
cp_link=$(md5_path "$s_link")
as_nobody ln -s /etc/nologin-planted "$cp_link"
out=$(STARTUP_SCRIPT=$s_link nodeinit apply --target-pid "$FAKE" 2>"$T/link.err")
check_eq "planted symlink: exit 0" 0 $?
check_eq "planted symlink: the script ran" link "$(in_fake cat /tmp/link-runs)"
check "planted symlink: nothing created where it points" in_fake test ! -e /etc/nologin-planted
check_contains "planted symlink: the log says why" "legacy checkpoint not trusted" "$(cat "$T/link.err")"
check_contains "planted symlink: the log names the link's owner" "a symbolic link owned by uid 65534" "$(cat "$T/link.err")"
check "planted symlink: exact success line" grep -qx '!!! startup-script succeeded!' "$T/link.err"
check_eq "planted symlink: replaced by a root-owned file" 0 "$(owner_file "$cp_link")"
STARTUP_SCRIPT=$s_link nodeinit apply --target-pid "$FAKE" 2>/dev/null
check_eq "planted symlink: the next apply does not re-run" link "$(in_fake cat /tmp/link-runs | xargs)"

# A regular file nobody created at the default path: not done either.
s_file='echo file >> /tmp/file-runs'
cp_file=$(md5_path "$s_file")
as_nobody touch "$cp_file"
STARTUP_SCRIPT=$s_file nodeinit apply --target-pid "$FAKE" 2>"$T/file.err"
check_eq "nobody's file: exit 0" 0 $?
check_eq "nobody's file: the script ran" file "$(in_fake cat /tmp/file-runs)"
check_contains "nobody's file: the log says why" "a file owned by uid 65534, not root" "$(cat "$T/file.err")"
check_eq "nobody's file: replaced by a root-owned file" 0 "$(owner_file "$cp_file")"
STARTUP_SCRIPT=$s_file nodeinit apply --target-pid "$FAKE" 2>/dev/null
check_eq "nobody's file: the next apply does not re-run" file "$(in_fake cat /tmp/file-runs | xargs)"

# A root-owned file (what the old images' `touch` made): done, silently, as before.
s_root='echo root >> /tmp/root-runs'
in_fake touch "$(md5_path "$s_root")"
out=$(STARTUP_SCRIPT=$s_root nodeinit apply --target-pid "$FAKE" 2>&1)
check_eq "root's file: exit 0" 0 $?
check "root's file: the script did not run" in_fake test ! -e /tmp/root-runs
check_eq "root's file: prints nothing" "" "$(printf %s "$out" | grep -v ' info ' || true)"

# A directory nobody made at the path: the script runs, the checkpoint cannot be made: exit 1.
s_dir='echo dir >> /tmp/dir-runs'
as_nobody mkdir "$(md5_path "$s_dir")"
STARTUP_SCRIPT=$s_dir nodeinit apply --target-pid "$FAKE" 2>"$T/dir.err"
check_eq "planted directory: exit 1" 1 $?
check_eq "planted directory: the script ran" dir "$(in_fake cat /tmp/dir-runs)"
check_contains "planted directory: the log says why" "not a regular file" "$(cat "$T/dir.err")"
check "planted directory: no !!! line" test "$(grep -c '^!!!' "$T/dir.err")" = 0

# The checkpoint cannot be created (its directory is missing): the script succeeded, so no "failed"
# line; exit 1 as the errexit loop did when touch failed, with our own error naming path and reason.
STARTUP_SCRIPT='echo ran > /tmp/missing-dir-ran' CHECKPOINT_PATH=/nonexistent-dir/done \
	nodeinit apply --target-pid "$FAKE" 2>"$T/missing.err"
check_eq "checkpoint dir missing: exit 1" 1 $?
check_eq "checkpoint dir missing: the script ran" ran "$(in_fake cat /tmp/missing-dir-ran)"
check "checkpoint dir missing: no !!! line" test "$(grep -c '^!!!' "$T/missing.err")" = 0
check_contains "checkpoint dir missing: own error" "legacy checkpoint cannot be created" "$(cat "$T/missing.err")"
check_contains "checkpoint dir missing: names the path and reason" \
	'checkpoint=/nonexistent-dir/done error="No such file or directory"' "$(cat "$T/missing.err")"

# The nsenter personality, as charts use it in hooks.
ln -sf "$NODEINIT" "$T/nsenter"
out=$("$T/nsenter" -t "$FAKE" -m -u -i -n -p -- sh -c 'hostname; readlink /proc/self/ns/pid; cat /tmp/legacy-count | wc -l')
check_eq "nsenter form runs in the fake host" "legacy-host $(readlink /proc/$FAKE/ns/pid) 2" "$(echo $out)"
out=$("$T/nsenter" --target="$FAKE" --mount --uts -- hostname)
check_eq "nsenter long forms" legacy-host "$out"
"$T/nsenter" -t "$FAKE" -m -- sh -c 'exit 7'
check_eq "nsenter passes the exit code through" 7 $?
out=$("$T/nsenter" -t "$FAKE" -m -u --preserve-credentials -- sh -c 'hostname; id -u')
check_eq "nsenter --preserve-credentials: accepted, credentials kept" "legacy-host 0" "$(echo $out)"
out=$("$T/nsenter" -t "$FAKE" -m/proc/1/ns/mnt -- true 2>&1)
check_eq "nsenter -m/FILE: exit 2" 2 $?
check_contains "nsenter -m/FILE: names the option and the file" "unsupported option '-m' with a file ('/proc/1/ns/mnt')" "$out"

finish
