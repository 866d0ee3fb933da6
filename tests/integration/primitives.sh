# Issue 13's primitives against a fake host: host facts are the fake host's, file.list/stat/symlink,
# sleep bounded by the step timeout, sysctl.keys and sysctl.d text with globs (YAML and Lua), `only`
# guards (skipped, converged, `skip only` in plan), and lint positions (FILE:LINE[:COL]:).
. "$(dirname "$0")/../lib/common.sh"
require_root

R=$T/recipes
mkdir -p "$R"
ev() { nodeinit eval - --target-pid "$FAKE" 2>"$T/ev.err"; }
apply() { nodeinit apply --target-pid "$FAKE" --recipes "$R" "$@"; }
fakehost_start

# --- host: read in the fake host's mount (and so network) namespace --------------------------------
in_fake sh -c 'rm -f /etc/os-release && printf "%s\n" "NAME=Fake" "ID=fakeos" "VERSION_ID=\"7.1\"" \
	"PRETTY_NAME=\"Fake OS 7.1 (\\\"test\\\")\"" > /etc/os-release'
in_fake sh -c 'ip link add ni-dummy0 type bridge && ip link set ni-dummy0 mtu 1400 address 02:00:00:00:00:01 up' \
	|| not_ok "cannot make a bridge interface in the fake host"
out=$(ev <<'EOF'
local o, k = host.os(), host.kernel()
local names = {}
for _, i in ipairs(host.interfaces()) do names[#names + 1] = string.format("%s/%s/%d/%s", i.name, i.mac, i.mtu, tostring(i.up)) end
return o.id, o.version_id, o.pretty_name, k.release, k.arch, table.concat(names, " ")
EOF
)
check_eq "host.os: the fake host's os-release, quoting undone" "fakeos	7.1	Fake OS 7.1 (\"test\")	$(uname -r)	$(uname -m)	lo/00:00:00:00:00:00/65536/true ni-dummy0/02:00:00:00:00:01/1400/true" "$out"
check "the bridge interface exists only in the fake host" sh -c '! test -e /sys/class/net/ni-dummy0'
check "the real /etc/os-release does not say fakeos" sh -c '! grep -q fakeos /etc/os-release'

total=$(( $(in_fake awk '/^MemTotal:/ { print $2 }' /proc/meminfo) * 1024 ))
online=$(in_fake cat /sys/devices/system/cpu/online)
cpus=$(echo "$online" | tr ',' '\n' | awk -F- '{ n += ($2 == "" ? 1 : $2 - $1 + 1) } END { print n }')
nodes=$(in_fake sh -c 'ls -d /sys/devices/system/node/node[0-9]* 2>/dev/null | wc -l')
[ "$nodes" = 0 ] && nodes=1
blocks=$(in_fake sh -c 'ls /sys/block | sort | tr "\n" " "')
out=$(ev <<'EOF'
local m = host.memory()
local names = {}
for _, b in ipairs(host.block_devices()) do
  assert(math.type(b.size) == "integer" and type(b.rotational) == "boolean" and type(b.model) == "string")
  names[#names + 1] = b.name .. " "
end
return m.total, m.available <= m.total and "avail-ok" or "avail-bad", host.cpus(), host.numa_nodes(), table.concat(names)
EOF
)
check_eq "host.memory/cpus/numa_nodes/block_devices match the fake host's /proc and /sys" \
	"$total	avail-ok	$cpus	$nodes	$blocks" "$out"

# --- file.list, file.stat, file.symlink -------------------------------------------------------------
in_fake sh -c 'mkdir -p /srv/ni/d && printf ab > /srv/ni/d/b && : > /srv/ni/d/a && chmod 0640 /srv/ni/d/a'
out=$(ev <<'EOF'
local s = file.stat("/srv/ni/d/b")
return table.concat(file.list("/srv/ni/d"), ","), file.stat("/srv/ni/d/a").mode, s.type, s.size, s.uid,
       file.stat("/srv/ni/none"), file.symlink("/srv/ni/d/b", "/srv/ni/link"), file.symlink("/srv/ni/d/b", "/srv/ni/link")
EOF
)
check_eq "list sorted, stat mode/type/size/uid, missing is nil, symlink changed then not" "a,b	0640	file	2	0	nil	true	false" "$out"
check_eq "the link is in the fake host" "/srv/ni/d/b" "$(in_fake readlink /srv/ni/link)"
check "no link outside" sh -c '! test -e /srv/ni/link'
out=$(ev <<'EOF'
return file.symlink("x", "/srv/ni/d/a")
EOF
)
check_eq "a file at the path is not replaced" "nil	/srv/ni/d/a: exists and is not a symlink (not replaced)	17" "$out"
# The resolver's rule: a link another user planted in a directory of theirs is not followed.
in_fake sh -c 'mkdir -p /srv/ni/u && chown 65534 /srv/ni/u && ln -s /etc /srv/ni/u/etc && chown -h 65534 /srv/ni/u/etc'
out=$(ev <<'EOF'
return file.symlink("x", "/srv/ni/u/etc/planted")
EOF
)
check_contains "symlink through a link planted by another user is refused" "/srv/ni/u/etc/planted:" "$out"
check "nothing planted in the fake host's /etc" in_fake sh -c '! test -e /etc/planted'

# --- sysctl.keys and sysctl.d text with globs ---------------------------------------------------------
in_fake sh -c 'ip link add ni-dummy1 type bridge'
out=$(ev <<'EOF'
return table.concat(sysctl.keys("net.ipv4.conf.*.rp_filter"), " ")
EOF
)
check_eq "sysctl.keys: the fake host's interfaces, sorted" "net.ipv4.conf.all.rp_filter net.ipv4.conf.default.rp_filter net.ipv4.conf.lo.rp_filter net.ipv4.conf.ni-dummy0.rp_filter net.ipv4.conf.ni-dummy1.rp_filter" "$out"
real_rp=$(cat /proc/sys/net/ipv4/conf/all/rp_filter)
in_fake sh -c 'for f in /proc/sys/net/ipv4/conf/*/rp_filter; do echo 0 > $f; done'
cat > "$R/10-rp.yaml" <<'EOF'
recipe: rp
steps:
  - name: defaults
    sysctl: |
      # systemd's 50-default.conf
      net.ipv4.conf.default.rp_filter = 2
      -net.ipv4.conf.*.rp_filter = 2
      -net.ipv4.conf.all.rp_filter
      net.ipv4.conf.lo.rp_filter = 1
EOF
plan=$(nodeinit plan --target-pid "$FAKE" --recipes "$R" 2>&1)
check_contains "plan: the glob's keys, current -> desired" "sysctl net.ipv4.conf.ni-dummy1.rp_filter: 0 -> 2 (failure ignored)" "$plan"
apply >/dev/null 2>"$T/apply.err"
check_eq "sysctl.d text applies (exit 0)" 0 $?
got=$(in_fake sh -c 'for i in all default lo ni-dummy0 ni-dummy1; do printf "%s=%s " $i $(cat /proc/sys/net/ipv4/conf/$i/rp_filter); done')
check_eq "glob written, exclusion kept, explicit key wins" "all=0 default=2 lo=1 ni-dummy0=2 ni-dummy1=2 " "$got"
check_eq "real rp_filter untouched" "$real_rp" "$(cat /proc/sys/net/ipv4/conf/all/rp_filter)"
printf 'recipe: bad\nsteps:\n  - name: s\n    sysctl: |\n      a.b = 1\n      oops\n' > "$R/20-bad.yaml"
out=$(nodeinit lint --recipes "$R" 2>&1)
check_contains "lint: bad sysctl.d text names its line" "20-bad.yaml:3:5: step 's': sysctl: sysctl.d text line 2" "$out"
rm "$R/20-bad.yaml" "$R/10-rp.yaml"

# --- sleep: never outlasts the step's timeout ---------------------------------------------------------
cat > "$R/30-sleep.lua" <<'EOF'
recipe "sleepy" {
  step "nap" { timeout = 1, function() sleep(30) end },
}
EOF
t0=$(date +%s)
apply >/dev/null 2>"$T/apply.err"
rc=$?
t1=$(date +%s)
check_eq "sleep(30) with timeout = 1: the step fails" 1 "$rc"
check_contains "the step failed as timed out" "step timed out" "$(cat "$T/apply.err")"
check "it did not sleep 30 s" test $((t1 - t0)) -lt 25
rm "$R/30-sleep.lua"

# --- only: skipped, converged, `skip only` --------------------------------------------------------------
cat > "$R/40-only.lua" <<'EOF'
recipe "guards" {
  step "other-arch" { only = function() return host.kernel().arch == "no-such-arch" end,
    function() file.write("/tmp/ran-other", "x") end },
  step "this-arch" { only = function() return host.kernel().arch ~= "no-such-arch" end,
    function() file.write("/tmp/ran-this", "x") end },
}
EOF
cat > "$R/41-only.yaml" <<'EOF'
recipe: yguards
steps:
  - name: never
    only: host.os().id == "not-this-os"
    exec: [sh, -c, "touch /tmp/ran-yaml"]
  - name: always-here
    only: host.os().id == "fakeos"
    exec: [sh, -c, "touch /tmp/ran-yaml-here"]
EOF
plan=$(nodeinit plan --target-pid "$FAKE" --recipes "$R" 2>&1)
check_contains "plan: a false only is skip only" "guards/other-arch skip only" "$plan"
check_contains "plan: a true only runs" "guards/this-arch run new" "$plan"
check_contains "plan: a YAML only expression" "yguards/never skip only" "$plan"
apply >/dev/null 2>"$T/apply.err"
check_eq "apply with skipped steps: exit 0" 0 $?
check "the skipped steps did not run" in_fake sh -c '! test -e /tmp/ran-other && ! test -e /tmp/ran-yaml'
check "the applicable steps ran" in_fake sh -c 'test -e /tmp/ran-this && test -e /tmp/ran-yaml-here'
json=$(nodeinit status --json --target-pid "$FAKE" 2>/dev/null)
check_contains "status: recorded skipped" '"name":"other-arch","when":"once","result":"skipped"' "$json"
check_contains "status: converged with skipped steps" '"converged":true' "$json"
nodeinit status --ready --target-pid "$FAKE" >/dev/null 2>&1
check_eq "status --ready: 0" 0 $?
plan=$(nodeinit plan --target-pid "$FAKE" --recipes "$R" 2>&1)
check_contains "plan after apply: a skipped record plans as skip only" "guards/other-arch skip only" "$plan"
check_contains "plan after apply: the run step is done" "guards/this-arch skip done" "$plan"
rm "$R/40-only.lua" "$R/41-only.yaml"

# --- lint positions: FILE:LINE:COL: or FILE:LINE: -------------------------------------------------------
L=$T/lint
mkdir -p "$L"
printf 'recipe: y\nsteps:\n  - name: a\n    exec: [true\n  - name: b\n' > "$L/10-syntax.yaml"
printf 'recipe: y2\nsteps:\n  - name: a\n    bogus: 1\n    exec: [true]\n' > "$L/20-key.yaml"
printf 'recipe "l" {\n  step "a" { only = 5, function() end },\n}\n' > "$L/30-only.lua"
out=$(nodeinit lint --recipes "$L" 2>&1)
check_eq "lint fails on problems" 2 "$(nodeinit lint --recipes "$L" >/dev/null 2>&1; echo $?)"
bad=$(echo "$out" | grep -v '^nodeinit: ' | grep -Ev '^[^:]+:[0-9]+:([0-9]+:)? ' || true)
check_eq "every problem line reads FILE:LINE[:COL]: message" "" "$bad"
check_contains "a YAML syntax error has line and column" "10-syntax.yaml:5:" "$out"
check_contains "an unknown key has its line" "20-key.yaml:4: step 'a': unknown key 'bogus'" "$out"
check_contains "only must be a function" "30-only.lua:2: step 'a': only must be a function" "$out"

finish
