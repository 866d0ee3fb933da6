# The fake host cannot change the machine (DESIGN.md, "Testing without touching the real machine"):
# its /proc/sys outside net is a copy, /sys is read-only, its root an overlay, its net sysctls its own
# network namespace's; and a stale fake-host pid is never killed.
. "$(dirname "$0")/../lib/common.sh"
require_root

fakehost_start
mounts=/proc/$FAKE/mountinfo
# fs_at PATH: the file system type of the mount on top at PATH in the fake host.
fs_at() { awk -v p="$1" '$5 == p { for (i = 7; $i != "-"; i++); t = $(i + 1) } END { print t }' "$mounts"; }
opts_at() { awk -v p="$1" '$5 == p { o = $6 } END { print o }' "$mounts"; }

check_eq "the fake host's / is an overlay" overlay "$(fs_at /)"
check_eq "its /proc/sys is a tmpfs copy" tmpfs "$(fs_at /proc/sys)"
check_eq "its /proc/sys/net is procfs, bound back on top" proc "$(fs_at /proc/sys/net)"
check_contains "its /sys is read-only" "ro" ",$(opts_at /sys),"
for d in /tmp /run /var/lib; do check_eq "its $d is a fresh tmpfs" tmpfs "$(fs_at $d)"; done
check_eq "its /proc is its own PID namespace's" "$(readlink /proc/$FAKE/ns/pid)" "$(in_fake readlink /proc/self/ns/pid)"
check_eq "hostname fakehost" fakehost "$(in_fake hostname)"
check_contains "lo is up" "UP" "$(in_fake ip -o link show lo)"

# The work dir is shared, both ways, at its own path.
echo outside > "$T/from-outside"
check_eq "the work dir is visible inside at its own path" outside "$(in_fake cat "$T/from-outside")"
in_fake sh -c 'echo inside > "$1/from-inside"' sh "$T"
check_eq "what the fake host writes to the work dir is visible outside" inside "$(cat "$T/from-inside" 2>&1)"

# Non-namespaced sysctls: only written when /proc/sys is the copy (on a fake host without one, these
# writes would reach the machine: the checks above fail instead).
if [ "$(fs_at /proc/sys)" = tmpfs ]; then
	for k in vm/swappiness fs/inotify/max_user_watches; do
		real=$(cat /proc/sys/$k)
		want=$((real == 37 ? 38 : 37))
		check "${k//\//.}: writable inside" in_fake sh -c "echo $want > /proc/sys/$k"
		check_eq "${k//\//.}: the fake host reads what it wrote" "$want" "$(in_fake cat /proc/sys/$k)"
		check_eq "${k//\//.}: the real value is unchanged" "$real" "$(cat /proc/sys/$k)"
	done
	# nodeinit's own sysctl.set, as a recipe that forgot a stand-in would call it.
	real=$(cat /proc/sys/vm/overcommit_ratio)
	want=$((real == 77 ? 78 : 77))
	out=$(echo "return sysctl.set('vm.overcommit_ratio', '$want')" | nodeinit eval - --target-pid "$FAKE" 2>"$T/eval.err")
	check_eq "nodeinit sysctl.set vm.overcommit_ratio: reports changed" true "$out"
	check_eq "nodeinit sysctl.set: the fake host's copy changed" "$want" "$(in_fake cat /proc/sys/vm/overcommit_ratio)"
	check_eq "nodeinit sysctl.set: the real vm.overcommit_ratio is unchanged" "$real" "$(cat /proc/sys/vm/overcommit_ratio)"
else
	not_ok "non-namespaced sysctls not tried: /proc/sys in the fake host is not a copy"
fi

# /sys is read-only inside. The value written is the one there: on a writable /sys it changes nothing.
out=$(in_fake sh -c 'v=$(cat /sys/kernel/mm/ksm/run) && echo "$v" > /sys/kernel/mm/ksm/run' 2>&1)
check_contains "writing /sys inside fails: read-only" "Read-only file system" "$out"

# The root file system is an overlay: writes land in the fake host only.
probe=/etc/nodeinit-fakehost-probe.$$
check "a file written to /etc inside" in_fake sh -c "echo probe > $probe"
check_eq "it is there inside" probe "$(in_fake cat $probe)"
check "it is absent outside" test ! -e $probe
if [ "$(fs_at /)" = overlay ]; then
	check "a file written to /usr/lib inside" in_fake sh -c "echo probe > /usr/lib/nodeinit-fakehost-probe.$$"
	check "it is absent outside" test ! -e /usr/lib/nodeinit-fakehost-probe.$$
fi

# net.* is per network namespace: the fake host's own.
real=$(cat /proc/sys/net/ipv4/ip_forward)
want=$((1 - real))
check "net.ipv4.ip_forward: written inside" in_fake sh -c "echo $want > /proc/sys/net/ipv4/ip_forward"
check_eq "net.ipv4.ip_forward: the fake host reads its own value" "$want" "$(in_fake cat /proc/sys/net/ipv4/ip_forward)"
check_eq "net.ipv4.ip_forward: the fake host's netns has it" "$want" "$(nsenter -t "$FAKE" -n cat /proc/sys/net/ipv4/ip_forward)"
check_eq "net.ipv4.ip_forward: the real value is unchanged" "$real" "$(cat /proc/sys/net/ipv4/ip_forward)"
first=$FAKE
fakehost_start
check_eq "net.ipv4.ip_forward: another fake host has the default, not the first one's value" 0 \
	"$(in_fake cat /proc/sys/net/ipv4/ip_forward)"
fakehost_kill "$FAKE"
FAKE=$first

# fakehost_kill kills only a pid that still names the PID namespace made for it.
sleep 600 &
stranger=$!
FAKE_PIDS+=("$stranger")
FAKE_NS[$stranger]=$(readlink /proc/$FAKE/ns/pid) # as if a fake host's pid had been reused
fakehost_kill "$stranger"
check "fakehost_kill leaves a reused pid's process alive" kill -0 "$stranger"
kill "$stranger" && wait "$stranger" 2>/dev/null
fakehost_kill "$FAKE"
check "fakehost_kill ends the fake host" sh -c "! kill -0 $FAKE 2>/dev/null"

finish
