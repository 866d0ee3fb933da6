# nodeinit.sysctl and nodeinit.file against a fake host: effects inside it, none outside.
. "$(dirname "$0")/../lib/common.sh"
require_root

# ev: runs the Lua chunk on stdin in the fake host; stdout holds its results, stderr goes to $T/ev.err.
ev() { nodeinit eval - --target-pid "$FAKE" 2>"$T/ev.err"; }

fakehost_start

# --- sysctl: the fake host's network namespace, never ours -------------------------------------
real_fwd=$(cat /proc/sys/net/ipv4/ip_forward)
real_somax=$(cat /proc/sys/net/core/somaxconn)
real_range=$(cat /proc/sys/net/ipv4/ip_local_port_range)
fake_fwd=$(in_fake cat /proc/sys/net/ipv4/ip_forward)
want_fwd=$((1 - fake_fwd))

out=$(ev <<EOF
return sysctl.set("net.ipv4.ip_forward", $want_fwd), sysctl.set("net/ipv4/ip_forward", "$want_fwd"),
       sysctl.get("net.ipv4.ip_forward")
EOF
)
check_eq "sysctl.set changes, then reports unchanged; get reads it back" "true	false	$want_fwd" "$out"
check_eq "ip_forward set in the fake host's netns" "$want_fwd" "$(in_fake cat /proc/sys/net/ipv4/ip_forward)"
check_contains "the change is logged with key and value" "changed step=eval sysctl=net.ipv4.ip_forward value=$want_fwd" "$(cat "$T/ev.err")"

out=$(ev <<'EOF'
return sysctl.set("net.core.somaxconn", 1234), sysctl.set("net.core.somaxconn", "1234"),
       sysctl.set("net.ipv4.ip_local_port_range", "40000 50000"),
       sysctl.set("net.ipv4.ip_local_port_range", "40000\t50000  "),
       sysctl.get("net/ipv4/ip_local_port_range")
EOF
)
check_eq "somaxconn and a range: changed once, then equal (blanks collapsed)" "true	false	true	false	40000	50000" "$out"
check_eq "somaxconn set in the fake host" 1234 "$(in_fake cat /proc/sys/net/core/somaxconn)"
check_eq "real ip_forward untouched" "$real_fwd" "$(cat /proc/sys/net/ipv4/ip_forward)"
check_eq "real somaxconn untouched" "$real_somax" "$(cat /proc/sys/net/core/somaxconn)"
check_eq "real port range untouched" "$real_range" "$(cat /proc/sys/net/ipv4/ip_local_port_range)"

out=$(ev <<'EOF'
return sysctl.get("net.ipv4.no_such_key")
EOF
)
check_eq "missing key: nil, message, errno" "nil	net.ipv4.no_such_key: No such file or directory	2" "$out"
for key in 'net..ipv4' '/proc/sys/net/ipv4/ip_forward' 'net/../kernel/hostname' 'net.ipv4.ip forward' ''; do
	printf 'return sysctl.set([[%s]], "1")\n' "$key" | ev >/dev/null
	rc=$?
	check_eq "bad key '$key' raises (exit 1)" 1 "$rc"
	check_contains "bad key '$key' is named" "invalid sysctl key" "$(cat "$T/ev.err")"
done
printf 'return sysctl.set("net.ipv4.ip_forward", {})\n' | ev >/dev/null
check_contains "a table value raises" "string or integer expected" "$(cat "$T/ev.err")"

# --- file: write with mode and owner, names from the fake host's /etc/passwd -------------------
# The fake host's /etc is an overlay: this user exists there only.
in_fake sh -c 'echo "nitest:x:4242:4343:nodeinit test:/nonexistent:/bin/false" >> /etc/passwd
	echo "nitestg:x:4343:" >> /etc/group'
check "the test user is absent from the real /etc/passwd" sh -c '! grep -q "^nitest:" /etc/passwd'

out=$(ev <<'EOF'
local a = file.mkdir("/var/lib/nitest/conf.d", { parents = true, mode = "0750" })
local b = file.write("/var/lib/nitest/conf.d/app.conf", "key = 1\n", { mode = "0640", owner = "nitest", group = "nitestg" })
local c = file.write("/var/lib/nitest/conf.d/app.conf", "key = 1\n", { mode = "0640", owner = "nitest", group = "nitestg" })
local d = file.write("/var/lib/nitest/nobody", "", { owner = "nobody" })
return a, b, c, d, file.read("/var/lib/nitest/conf.d/app.conf")
EOF
)
check_eq "mkdir, write, same write again, write as nobody" "true true false true key = 1" "$(echo $out)"
check_eq "owner and mode from the fake host's passwd and group" "4242:4343 640" \
	"$(in_fake stat -c '%u:%g %a' /var/lib/nitest/conf.d/app.conf)"
check_eq "nobody resolved in the fake host" "$(in_fake awk -F: '$1 == "nobody" { print $3 }' /etc/passwd)" \
	"$(in_fake stat -c '%u' /var/lib/nitest/nobody)"
check_eq "mkdir mode" 750 "$(in_fake stat -c '%a' /var/lib/nitest/conf.d)"
check "written files absent from the real machine" test ! -e /var/lib/nitest
check_contains "the write is logged by path" "changed step=eval op=write path=/var/lib/nitest/nobody" "$(cat "$T/ev.err")"

out=$(ev <<'EOF'
return file.write("/var/lib/nitest/x", "", { owner = "no-such-user" })
EOF
)
check_eq "unknown owner: nil, message, errno" "nil	/var/lib/nitest/x: no user 'no-such-user' in the host's /etc/passwd	3" "$out"

# --- atomicity: a reader in the fake host never sees a half-written file ------------------------
ev <<'EOF' >/dev/null
file.write("/var/lib/nitest/big", string.rep("a", 1 << 20))
EOF
sum_a=$(head -c 1048576 /dev/zero | tr '\0' a | md5sum | cut -c-32)
sum_b=$(head -c 1048576 /dev/zero | tr '\0' b | md5sum | cut -c-32)
in_fake sh -c 'while [ ! -e /tmp/stop ]; do md5sum < /var/lib/nitest/big || break; done > /tmp/sums 2>&1' &
reader=$!
# Writes go on until there were 50 of them and the reader read 50 times meanwhile (its sums file
# is in the fake host too), however slow either side is (valgrind).
out=$(ev <<'EOF'
local function reads() return select(2, (file.read("/tmp/sums") or ""):gsub("\n", "")) end
local a, b, i, start = string.rep("a", 1 << 20), string.rep("b", 1 << 20), 0, reads()
repeat
	i = i + 1
	assert(file.write("/var/lib/nitest/big", i % 2 == 0 and a or b))
until (i >= 50 and reads() - start >= 50) or i >= 20000
return i, reads() - start
EOF
)
check "alternating 1 MiB writes succeed ($(echo $out | cut -d' ' -f1) of them)" test "$(echo $out | cut -d' ' -f1)" -ge 50
check "the reader read the file while it was rewritten ($(echo $out | cut -d' ' -f2) times)" test "$(echo $out | cut -d' ' -f2)" -ge 50
in_fake touch /tmp/stop
wait $reader
torn=$(in_fake sh -c "grep -cv -e '^$sum_a' -e '^$sum_b' /tmp/sums")
check_eq "no read saw a torn or partial file" 0 "$torn"
check_eq "no temp files left behind" "" "$(in_fake find /var/lib/nitest /etc -name '*.tmp')"

# --- a bind-mounted target: rename is refused (EBUSY), the write happens in place and says so ---
in_fake sh -c 'echo old > /tmp/bind-src; touch /etc/nitest-bind; mount --bind /tmp/bind-src /etc/nitest-bind'
out=$(ev <<'EOF'
return file.write("/etc/nitest-bind", "new\n")
EOF
)
check_eq "write onto a bind-mounted file" true "$out"
check_eq "its content changed in place" new "$(in_fake cat /tmp/bind-src)"
check_contains "the in-place write is a warning" "rewritten in place" "$(cat "$T/ev.err")"
check_contains "the in-place write is logged as a change too" "op=write path=/etc/nitest-bind" "$(grep ' changed ' "$T/ev.err")"

# --- ensure_line, mkdir, remove, exists ---------------------------------------------------------
in_fake sh -c 'printf "# sshd\nPermitRootLogin yes\nPort 22" > /etc/nitest.conf'
out=$(ev <<'EOF'
local m = { match = "^PermitRootLogin%s" }
return file.ensure_line("/etc/nitest.conf", "PermitRootLogin no", m),
       file.ensure_line("/etc/nitest.conf", "PermitRootLogin no", m),
       file.ensure_line("/etc/nitest.conf", "UseDNS no"),
       file.ensure_line("/etc/nitest.conf", "UseDNS no")
EOF
)
check_eq "ensure_line: replace, keep, append, keep" "true	false	true	false" "$out"
check_eq "ensure_line content" "$(printf '# sshd\nPermitRootLogin no\nPort 22\nUseDNS no')" "$(in_fake cat /etc/nitest.conf)"
check "ensure_line's file absent from the real /etc" test ! -e /etc/nitest.conf

out=$(ev <<'EOF'
return file.exists("/var/lib/nitest/conf.d"), file.remove("/var/lib/nitest/conf.d/app.conf"),
       file.remove("/var/lib/nitest/conf.d/app.conf"), file.remove("/var/lib/nitest/conf.d"),
       file.exists("/var/lib/nitest/conf.d"), file.mkdir("/var/lib/nitest"), file.remove("/var/lib/nitest")
EOF
)
check_eq "exists, remove twice, remove dir, exists, mkdir existing, remove non-empty" \
	"true	true	false	true	false	false	nil	/var/lib/nitest: Directory not empty	39" "$out"
check "removed in the fake host" in_fake test ! -e /var/lib/nitest/conf.d

printf 'return file.write("etc/relative", "x")\n' | ev >/dev/null
check_eq "a relative path raises (exit 1)" 1 $?
check_contains "and says what it wants" "absolute path" "$(cat "$T/ev.err")"
printf 'return file.write("/etc/x", "x", { mode = 0644 })\n' | ev >/dev/null
check_contains "a numeric mode raises" "octal digits" "$(cat "$T/ev.err")"
check "nothing was created for them" in_fake test ! -e /etc/x

# Kernel interface files (procfs here; sysfs and cgroupfs alike) take one write, no temp file.
real_fwd=$(cat /proc/sys/net/ipv4/conf/lo/forwarding)
in_fake sh -c 'echo 0 > /proc/sys/net/ipv4/conf/lo/forwarding'
out=$(printf 'return file.write("/proc/sys/net/ipv4/conf/lo/forwarding", "1\\n"), file.write("/proc/sys/net/ipv4/conf/lo/forwarding", "1\\n")\n' | ev)
check_eq "file.write on a procfs file: changed, then unchanged" "$(printf 'true\tfalse')" "$out"
check_eq "the fake host's value was written" 1 "$(in_fake cat /proc/sys/net/ipv4/conf/lo/forwarding)"
check_eq "the real value untouched" "$real_fwd" "$(cat /proc/sys/net/ipv4/conf/lo/forwarding)"

finish
