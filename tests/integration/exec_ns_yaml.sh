# exec, ns and yaml through `nodeinit eval -` against a fake host: effects land there, never here.
. "$(dirname "$0")/../lib/common.sh"
require_root

fakehost_start

# ev: runs the Lua on stdin against the fake host; its results on stdout (tab-separated), the log in $T/ev.log.
ev() { nodeinit eval - --target-pid "$FAKE" 2>"$T/ev.log"; }

# exec runs in the fake host: its hostname, its /tmp, its PID namespace.
out=$(ev <<'EOF'
exec.ok{"sh", "-c", "echo from-exec > /tmp/exec-file"}
return (exec.run{"hostname"}.stdout:gsub("\n", "")), (exec.run{"readlink", "/proc/self/ns/pid"}.stdout:gsub("\n", ""))
EOF
)
check_eq "exec: eval exits 0" 0 $?
check_eq "exec: runs in the fake host's UTS namespace" fakehost "$(printf %s "$out" | cut -f1)"
check_eq "exec: runs in the fake host's PID namespace" "$(readlink /proc/$FAKE/ns/pid)" "$(printf %s "$out" | cut -f2)"
check_eq "exec: file written in the fake host's /tmp" from-exec "$(in_fake cat /tmp/exec-file)"
check "exec: nothing written to the real /tmp" test ! -e /tmp/exec-file
check_contains "exec: output streamed to the log with the step" "fakehost step=eval cmd=hostname stream=stdout" "$(cat "$T/ev.log")"

# env (merged over the container's), stdin, cwd.
out=$(GREETING="from the pod" ev <<'EOF'
local r = exec.run{"sh", "-c", 'echo "$GREETING|$EXTRA|${HOME-unset}"; cat; pwd', env = {EXTRA = "x y", HOME = false},
                   stdin = "line on stdin\n", cwd = "/tmp"}
return r.stdout
EOF
)
check_eq "exec: env, stdin and cwd" "from the pod|x y|unset
line on stdin
/tmp" "$out"
check_eq "exec: cwd defaults to /" "/" "$(echo 'return exec.run{"pwd"}.stdout' | ev)"

# A missing command is Lua's nil, message, errno; misuse raises and eval fails.
out=$(echo 'return exec.run{"ni-no-such-command"}' | ev)
check_eq "exec: missing command is nil, message, errno" "nil	ni-no-such-command: No such file or directory	2" "$out"
echo 'return exec.run{"echo", 42}' | ev >/dev/null
check_eq "exec: a non-string argument raises (eval exits 1)" 1 $?
check_contains "exec: the error says which argument" "argv[2] must be a string" "$(cat "$T/ev.log")"

# The timeout kills the whole process group: the background child too.
start=$(date +%s%N)
out=$(ev <<'EOF'
local r = exec.run{"sh", "-c", "sleep 100 & echo $! > /tmp/bg-pid; sleep 100", timeout = 0.5}
return r.timed_out, r.code, r.signal
EOF
)
ms=$(( ($(date +%s%N) - start) / 1000000 ))
check_eq "timeout: flagged, killed by SIGKILL" "true	137	9" "$out"
check "timeout: returned within seconds (${ms} ms)" test "$ms" -lt 5000
bg=$(in_fake cat /tmp/bg-pid)
state=""
for _ in $(seq 1 50); do
	state=$(in_fake awk '{print $3}' /proc/"$bg"/stat 2>/dev/null)
	[ -z "$state" ] || [ "$state" = Z ] && break
	sleep 0.1
done
check "timeout: the background sleep ($bg in the fake host) is dead too (state '${state:-gone}')" \
	test -z "$state" -o "$state" = Z

# 5 MiB of output: 1 MiB kept, the rest counted, the log bounded too.
out=$(ev <<'EOF'
local r = exec.run{"sh", "-c", "head -c 5242880 /dev/zero | tr '\\0' y"}
return #r.stdout, r.truncated, r.stdout_dropped, r.code
EOF
)
check_eq "output: 5 MiB bounded to 1 MiB and flagged" "1048576	true	4194304	0" "$out"
lines=$(wc -l < "$T/ev.log")
check "output: the log took at most about 1 MiB of it ($lines lines)" test "$lines" -le 300
check_contains "output: the log says the rest was not logged" "not logged" "$(cat "$T/ev.log")"

# YAML: values, and errors with line and column (a file read from the fake host).
in_fake sh -c 'printf "recipe: net\nsteps:\n  - name: a\n   when: boot\n" > /tmp/bad.yaml; printf "recipe: net\nsteps:\n  - name: fwd\n    sysctl: {net.ipv4.ip_forward: \"1\"}\n    timeout: 60\n" > /tmp/good.yaml'
out=$(ev <<'EOF'
local v, pos = yaml.decode(exec.run{"cat", "/tmp/good.yaml"}.stdout, {positions = true})
local s = v.steps[1]
return v.recipe, s.name, s.sysctl["net.ipv4.ip_forward"], math.type(s.timeout), pos[s].line
EOF
)
check_eq "yaml: a recipe file decodes, with positions" "net	fwd	1	integer	3" "$out"
out=$(echo 'return yaml.decode(exec.run{"cat", "/tmp/bad.yaml"}.stdout)' | ev)
check_contains "yaml: an error names line and column" "nil	yaml: line 4, column 4: " "$out"

# ns: a named netns inside the fake host, with its own sysctl and link.
if in_fake ip netns add blue 2>"$T/netns.err"; then
	in_fake ip netns exec blue sh -c 'echo 33 > /proc/sys/net/ipv4/ip_default_ttl'
	in_fake ip -n blue link set lo mtu 1234
	blue_ino=$(in_fake stat -L -c %i /run/netns/blue)
	fake_net=$(readlink /proc/$FAKE/ns/net)
	real_ttl=$(cat /proc/sys/net/ipv4/ip_default_ttl)

	out=$(ev <<'EOF'
local ttl, netns = ns.run({netns = "blue"}, function()
	return exec.run{"cat", "/proc/sys/net/ipv4/ip_default_ttl"}.stdout, exec.run{"readlink", "/proc/self/ns/net"}.stdout
end)
local after = exec.run{"readlink", "/proc/self/ns/net"}.stdout
return (ttl:gsub("\n", "")), (netns:gsub("\n", "")), (after:gsub("\n", "")),
	(exec.run{"cat", "/proc/sys/net/ipv4/ip_default_ttl"}.stdout:gsub("\n", ""))
EOF
)
	check_eq "ns.run: the function sees blue's sysctl and netns, then we are back in the fake host's" \
		"33	net:[$blue_ino]	$fake_net	64" "$out"

	out=$(ev <<'EOF'
local ok, err = pcall(ns.run, {netns = "blue"}, function() error("failed inside") end)
return ok, err, (exec.run{"readlink", "/proc/self/ns/net"}.stdout:gsub("\n", ""))
EOF
)
	check_contains "ns.run: an error inside comes out with its place" "false	stdin:1: failed inside" "$out"
	check_contains "ns.run: and we are back in the fake host's netns after it" "$fake_net" "$out"

	out=$(ev <<'EOF'
local ok, err = pcall(ns.run, {netns = "blue"}, function()
	local t = {}
	for i = 1, 1e9 do t[i] = ("x"):rep(4096) .. i end
end)
return ok, err, (exec.run{"readlink", "/proc/self/ns/net"}.stdout:gsub("\n", ""))
EOF
)
	check_eq "ns.run: back in the fake host's netns after the memory limit hit inside" "false	not enough memory	$fake_net" "$out"

	out=$(echo 'return ns.exec({netns = "blue"}, {"ip", "-o", "link", "show", "lo"}).stdout' | ev)
	check_contains "ns.exec: shows blue's links (its lo has mtu 1234)" "mtu 1234" "$out"
	out=$(echo 'return exec.run{"ip", "-o", "link", "show", "lo"}.stdout' | ev)
	check_contains "exec after ns.exec: the fake host's own lo again" "mtu 65536" "$out"

	# A host pid inside blue: looked up in the host's /proc (the fake host's pids), all its namespaces.
	in_fake sh -c 'ip netns exec blue sleep 1000 >/dev/null 2>&1 & echo $! > /tmp/blue-pid'
	bpid=$(in_fake cat /tmp/blue-pid)
	out=$(ev <<EOF
local r = ns.exec({pid = $bpid}, {"cat", "/proc/sys/net/ipv4/ip_default_ttl"})
local ttl = ns.run({pid = $bpid, namespaces = {"net"}}, function()
	return exec.run{"cat", "/proc/sys/net/ipv4/ip_default_ttl"}.stdout
end)
local mnt = ns.exec({pid = $bpid}, {"readlink", "/proc/self/ns/mnt"}).stdout
return (r.stdout:gsub("\n", "")), (ttl:gsub("\n", "")), (mnt:gsub("\n", "")),
	(exec.run{"readlink", "/proc/self/ns/mnt"}.stdout:gsub("\n", ""))
EOF
)
	bmnt=$(in_fake readlink /proc/$bpid/ns/mnt)
	check "the pid's mount namespace is not the fake host's (ip netns exec made one)" \
		test "$bmnt" != "$(readlink /proc/$FAKE/ns/mnt)"
	check_eq "ns.exec/ns.run with a pid of the fake host (pid $bpid there): its netns, its mount namespace, then back" \
		"33	33	$bmnt	$(readlink /proc/$FAKE/ns/mnt)" "$out"
	in_fake kill "$bpid" 2>/dev/null

	out=$(echo 'return ns.run({netns = "green"}, print)' | ev)
	check_eq "ns.run: a missing netns is nil, message, errno" "nil	/run/netns/green: No such file or directory	2" "$out"
	check_eq "real ip_default_ttl untouched" "$real_ttl" "$(cat /proc/sys/net/ipv4/ip_default_ttl)"
	check "blue exists in the fake host only" test ! -e /run/netns/blue
else
	echo "SKIP - $TEST_NAME: ip netns add failed in the fake host: $(cat "$T/netns.err")"
fi

finish
